"""Read-only questions about generations: a user's history, page by page."""

from __future__ import annotations

import base64
import binascii
import json
import re

from chalicelib.errors import InvalidRequest
from chalicelib.tables import Generation

# A ULID in Crockford base32, as ``chalicelib.ids.new_id`` writes it.
_GENERATION_ID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")
_MAX_CURSOR_CHARS = 200


def encode_cursor(generation_id: str) -> str:
    """Opaque to clients: base64url of the last generation id shown."""
    raw = json.dumps({"g": generation_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        if len(cursor) > _MAX_CURSOR_CHARS:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)["g"]
        if not isinstance(value, str) or not _GENERATION_ID.fullmatch(value):
            raise ValueError("bad id")
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError):
        raise InvalidRequest("cursor is not valid; use the next_cursor of a previous page.") from None
    return value


def is_generation_id(value: str) -> bool:
    return _GENERATION_ID.fullmatch(value) is not None


def history_page(user_id: int, *, limit: int, cursor: str | None) -> tuple[list[Generation], str | None]:
    """The user's generations, newest first, ``limit`` at a time (one Query).

    One item more than the page is read: DynamoDB returns a LastEvaluatedKey
    whenever it stops at ``Limit``, even when nothing follows, so only that
    extra item tells whether there is a next page (and no client is sent to
    an empty one).
    """
    start_key = None
    if cursor is not None:
        start_key = {"user_id": {"N": str(user_id)}, "generation_id": {"S": decode_cursor(cursor)}}
    results = Generation.query(user_id, scan_index_forward=False, limit=limit + 1, last_evaluated_key=start_key)
    items = list(results)
    if len(items) <= limit:
        return items, None
    page = items[:limit]
    return page, encode_cursor(page[-1].generation_id)
