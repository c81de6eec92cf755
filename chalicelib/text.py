"""Text from outside that NanoGen stores."""

from __future__ import annotations

import re

# A lone UTF-16 surrogate (JSON "\ud800") has no UTF-8 form: DynamoDB refuses
# the whole write, so such text must be refused or dropped before it gets there.
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def storable_text(value: object) -> str | None:
    """``value`` if it is a string DynamoDB can store, else None."""
    if isinstance(value, str) and not _LONE_SURROGATE.search(value):
        return value
    return None


def counted(number: int, noun: str) -> str:
    """``1 credit``, ``2 credits``: English API messages (the bot's texts take plurals from the catalogues)."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
