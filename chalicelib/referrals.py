"""Referral codes and links: ``https://t.me/<bot>?start=ref_<code>`` (CONTRACT §6.7, §7 ``/invite``).

A user's code is their Telegram id in base 36, so it needs no table and no
write to exist, and ``/start ref_<code>`` finds the inviter without a
lookup. Recording the inviter and paying the bonus are money moves
(``chalicelib.money.register`` and ``credit_purchase``).

The bot's username comes from ``BOT_USERNAME`` or, once per container,
from ``getMe``.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from typing import Any

from chalicelib.auth import MAX_TELEGRAM_ID
from chalicelib.config import Settings
from chalicelib.errors import TelegramError
from chalicelib.observability import logger

PAYLOAD_PREFIX = "ref_"
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_CODE_RE = re.compile(r"[0-9a-z]{1,12}")

_lock = threading.Lock()
_usernames: dict[str, str] = {}  # sha256(bot token) -> username, per container
_failed_at: dict[str, float] = {}  # sha256(bot token) -> when getMe last failed
# After a failed getMe, links are left out for this long rather than every request waiting on Telegram.
RETRY_GET_ME_SECONDS = 60.0


def code_of(user_id: int) -> str:
    digits = []
    value = user_id
    while True:
        value, digit = divmod(value, 36)
        digits.append(_ALPHABET[digit])
        if value == 0:
            return "".join(reversed(digits))


def inviter_of(start_payload: str | None) -> int | None:
    """The inviter a ``/start`` payload names, or None when it is not a referral (or names nobody possible)."""
    if not start_payload or not start_payload.startswith(PAYLOAD_PREFIX):
        return None
    code = start_payload.removeprefix(PAYLOAD_PREFIX).lower()
    if not _CODE_RE.fullmatch(code):
        return None
    user_id = int(code, 36)
    return user_id if 0 < user_id <= MAX_TELEGRAM_ID else None


def bot_username(settings: Settings, bot: Any = None) -> str | None:
    """``BOT_USERNAME``, else ``getMe``'s answer (cached per container); None while Telegram cannot say."""
    if settings.bot_username:
        return settings.bot_username
    token_key = hashlib.sha256(settings.telegram_bot_token.encode()).hexdigest()
    with _lock:
        cached = _usernames.get(token_key)
        failed_at = _failed_at.get(token_key)
    if cached is not None:
        return cached
    if failed_at is not None and time.monotonic() - failed_at < RETRY_GET_ME_SECONDS:
        return None
    if bot is None:
        from chalicelib import bootstrap

        bot = bootstrap.bot_api()
    try:
        username = bot.get_me().get("username")
    except (TelegramError, AttributeError):
        username = None
    if not isinstance(username, str) or not username:
        logger.warning("getMe failed: referral links are left out for a minute")
        with _lock:
            _failed_at[token_key] = time.monotonic()
        return None
    with _lock:
        _usernames[token_key] = username
    return username


def link(user_id: int, settings: Settings, bot: Any = None) -> str | None:
    """The user's referral link; None when referrals are off or the bot's username is unknown."""
    if settings.referral_bonus_credits == 0:
        return None
    username = bot_username(settings, bot)
    if username is None:
        return None
    return f"https://t.me/{username}?start={PAYLOAD_PREFIX}{code_of(user_id)}"


def summary(user: Any, settings: Settings, bot: Any = None) -> dict[str, Any]:
    """``referral`` of ``GET /api/user/me``: ``{"link", "invited", "earned"}``."""
    return {
        "link": link(int(user.user_id), settings, bot),
        "invited": int(user.invited_count or 0),
        "earned": int(user.referral_earned or 0),
    }


def reset_cache() -> None:
    """Forget cached usernames (tests)."""
    with _lock:
        _usernames.clear()
        _failed_at.clear()
