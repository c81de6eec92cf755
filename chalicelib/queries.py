"""Read-only questions about generations: a user's history, page by page."""

from __future__ import annotations

import base64
import binascii
import json
import re

from chalicelib.errors import InvalidRequest
from chalicelib.tables import Generation

_GENERATION_ID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")


def encode_cursor(generation_id: str) -> str:
    """Opaque to clients: base64url of the last generation id shown."""
    raw = json.dumps({"g": generation_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        if len(cursor) > 200:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)["g"]
        if not isinstance(value, str) or not _GENERATION_ID.match(value):
            raise ValueError("bad id")
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError):
        raise InvalidRequest("cursor is not valid; use the next_cursor of a previous page.") from None
    return value


def is_generation_id(value: str) -> bool:
    return bool(_GENERATION_ID.match(value))


def history_page(user_id: int, *, limit: int, cursor: str | None) -> tuple[list[Generation], str | None]:
    """The user's generations, newest first, ``limit`` at a time (one Query)."""
    start_key = None
    if cursor is not None:
        start_key = {"user_id": {"N": str(user_id)}, "generation_id": {"S": decode_cursor(cursor)}}
    results = Generation.query(user_id, scan_index_forward=False, limit=limit, last_evaluated_key=start_key)
    items = list(results)
    next_cursor = None
    if results.last_evaluated_key and len(items) == limit:
        next_cursor = encode_cursor(items[-1].generation_id)
    return items, next_cursor
