"""Identifiers and timestamps."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id(now: float | None = None) -> str:
    """A ULID: 26 characters that sort by creation time (millisecond), then at random.

    Generation and ledger ids sort newest-last in DynamoDB range keys, which
    is what history and the ledger view need.
    """
    millis = int((time.time() if now is None else now) * 1000)
    value = (millis << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def iso_utc(epoch_seconds: float) -> str:
    """ISO 8601 UTC with milliseconds and a ``Z``: ``2026-11-27T20:13:52.123Z``."""
    moment = datetime.fromtimestamp(epoch_seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
