"""The bot's inline buttons: the ``callback_data`` they carry, made and read in one place.

Telegram returns a button's ``callback_data`` (at most 64 bytes) when it is
tapped. Anyone can send any data, so it is read strictly: ``parse`` gives a
``Tap`` only for data this module could have made, and every value in it is
checked again against the catalogue or the tapping user's own records
before anything changes. A tap on anything else is answered as stale.

    lang:<ru|en>                  /language
    set:menu | set:models | set:ratios | set:m:<model id> | set:r:<ratio>    /settings
    again:<generation id> | edit:<generation id> | orig:<generation id>     under a picture
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from chalicelib.i18n import t
from chalicelib.telegram import CALLBACK_DATA_BYTES

AGAIN, EDIT, ORIGINAL = "again", "edit", "orig"
_RESULT_KINDS = (AGAIN, EDIT, ORIGINAL)
_GENERATION_ID = r"[0-9A-HJKMNP-TV-Z]{26}"
_PATTERNS = (
    ("language", re.compile(r"lang:(ru|en)")),
    ("settings", re.compile(r"set:(menu|models|ratios)")),
    ("model", re.compile(r"set:m:([A-Za-z0-9._/-]{1,56})")),
    ("ratio", re.compile(r"set:r:(\d{1,2}:\d{1,2})")),
    *((kind, re.compile(rf"{kind}:({_GENERATION_ID})")) for kind in _RESULT_KINDS),
)


@dataclass(frozen=True)
class Tap:
    kind: str  # language | settings | model | ratio | again | edit | orig
    value: str


def data(kind: str, value: str) -> str:
    """The callback_data of a button; refuses what Telegram would refuse or ``parse`` would not read back."""
    prefix = {"language": "lang", "settings": "set", "model": "set:m", "ratio": "set:r"}.get(kind, kind)
    made = f"{prefix}:{value}"
    if len(made.encode()) > CALLBACK_DATA_BYTES or parse(made) != Tap(kind, value):
        raise ValueError(f"cannot make callback data for {kind} {value!r}")
    return made


def parse(raw: object) -> Tap | None:
    if not isinstance(raw, str) or len(raw.encode()) > CALLBACK_DATA_BYTES:
        return None
    for kind, pattern in _PATTERNS:
        match = pattern.fullmatch(raw)
        if match:
            return Tap(kind, match.group(1))
    return None


def button(text: str, kind: str, value: str) -> dict[str, str]:
    return {"text": text, "callback_data": data(kind, value)}


def result_keyboard(lang: str, generation_id: str) -> dict[str, Any]:
    """Under a delivered picture: again, edit, original."""
    return {
        "inline_keyboard": [
            [
                button(t(lang, "button-again"), AGAIN, generation_id),
                button(t(lang, "button-edit"), EDIT, generation_id),
                button(t(lang, "button-original"), ORIGINAL, generation_id),
            ]
        ]
    }
