"""Who is calling: Mini App users (Telegram initData) and operators (admin).

Mini App requests carry ``Authorization: tma <initData>``; the user is taken
only from the signed ``user`` field, so nothing a client writes in a body or
query string can choose whose credits move (CONTRACT §3). The algorithm is
Telegram's, as written in EXTERNAL-APIS.md; every failure is a 401 whose
message says what kind of problem it is and nothing more.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qsl, urlencode

from chalicelib.config import Settings
from chalicelib.errors import Forbidden, Unauthorized
from chalicelib.text import storable_text

# Real initData is well under 1 KB; the bound keeps parsing and hashing cheap.
MAX_INIT_DATA_BYTES = 4096
# Telegram's clock and ours are both NTP-synced, but not to the second: an
# auth_date up to this far ahead is accepted rather than refusing a fresh login.
CLOCK_SKEW_SECONDS = 60
# Telegram ids fit in 52 bits; this keeps them exact in JavaScript and DynamoDB.
MAX_TELEGRAM_ID = 2**53

_HASH_RE = re.compile(r"[0-9a-fA-F]{64}")
_AUTH_DATE_RE = re.compile(r"[0-9]{1,12}")


@dataclass(frozen=True)
class TelegramUser:
    id: int
    first_name: str
    last_name: str | None
    username: str | None
    language_code: str | None


@dataclass(frozen=True)
class InitData:
    """Validated initData. ``fields`` holds every signed field (all but ``hash``)."""

    user: TelegramUser
    auth_date: int
    start_param: str | None
    fields: Mapping[str, str]


@dataclass(frozen=True)
class Admin:
    """An operator: ``via`` is ``"token"`` (ADMIN_API_TOKEN) or ``"init_data"`` (with ``user_id``)."""

    via: str
    user_id: int | None


def _secret_key(bot_token: str) -> bytes:
    return hmac.new(b"WebAppData", bot_token.encode(), hashlib.sha256).digest()


def _check_hash(fields: Mapping[str, str], bot_token: str) -> str:
    """Hex HMAC of the data-check-string: the sorted ``key=value`` lines of ``fields``."""
    data_check_string = "\n".join(f"{key}={fields[key]}" for key in sorted(fields))
    return hmac.new(_secret_key(bot_token), data_check_string.encode(), hashlib.sha256).hexdigest()


def _parse_fields(raw: str) -> dict[str, str]:
    """Parse the query string strictly: a duplicated key could make two parsers disagree."""
    if len(raw) > MAX_INIT_DATA_BYTES or not raw.isascii():
        # initData is URL-encoded, so ASCII: characters and bytes are the same count.
        raise Unauthorized("initData is too long or not URL-encoded.")
    try:
        pairs = parse_qsl(raw, keep_blank_values=True, strict_parsing=True, errors="strict")
    except ValueError:  # also UnicodeDecodeError: a percent-escape that is not UTF-8
        raise Unauthorized("initData is not a valid query string.") from None
    fields: dict[str, str] = {}
    for key, value in pairs:
        if not key or key in fields:
            raise Unauthorized("initData has an empty or duplicated field.")
        fields[key] = value
    return fields


def _optional_text(user: Mapping[str, Any], key: str) -> str | None:
    value = user.get(key)
    if value is not None and storable_text(value) is None:
        raise Unauthorized("initData user is malformed.")
    return value


def _parse_user(raw_user: str) -> TelegramUser:
    try:
        user = json.loads(raw_user)
    except (ValueError, RecursionError):
        raise Unauthorized("initData user is malformed.") from None
    if not isinstance(user, dict):
        raise Unauthorized("initData user is malformed.")
    user_id = user.get("id")
    first_name = storable_text(user.get("first_name"))
    # bool is an int in Python; ``"id": true`` must not become user 1.
    if type(user_id) is not int or not 0 < user_id <= MAX_TELEGRAM_ID:
        raise Unauthorized("initData user has no valid id.")
    if first_name is None:
        raise Unauthorized("initData user has no first name.")
    return TelegramUser(
        id=user_id,
        first_name=first_name,
        last_name=_optional_text(user, "last_name"),
        username=_optional_text(user, "username"),
        language_code=_optional_text(user, "language_code"),
    )


def validate_init_data(raw: str, bot_token: str, *, max_age_seconds: int, now: float | None = None) -> InitData:
    """Check Telegram's signature and freshness of ``raw`` initData; raise ``Unauthorized`` if anything is off.

    Only ``hash`` leaves the data-check-string: ``signature`` (the Ed25519
    signature for third parties) is signed by the HMAC too and stays in it.
    Any other set of fields is accepted, since clients differ.
    """
    fields = _parse_fields(raw)
    received_hash = fields.pop("hash", "")
    # The format check also keeps compare_digest from raising on non-ASCII text.
    if not _HASH_RE.fullmatch(received_hash):
        raise Unauthorized("initData has no valid hash.")
    if not hmac.compare_digest(_check_hash(fields, bot_token), received_hash.lower()):
        raise Unauthorized("initData signature is invalid.")

    raw_auth_date = fields.get("auth_date", "")
    if not _AUTH_DATE_RE.fullmatch(raw_auth_date):
        raise Unauthorized("initData has no valid auth_date.")
    auth_date = int(raw_auth_date)
    current = time.time() if now is None else now
    if auth_date > current + CLOCK_SKEW_SECONDS:
        raise Unauthorized("initData auth_date is in the future.")
    if current - auth_date > max_age_seconds:
        raise Unauthorized("initData has expired; reopen the Mini App.")

    if "user" not in fields:
        raise Unauthorized("initData has no user.")
    return InitData(
        user=_parse_user(fields["user"]),
        auth_date=auth_date,
        start_param=fields.get("start_param"),
        fields=MappingProxyType(fields),
    )


def sign_init_data(
    user: dict[str, Any], bot_token: str, *, auth_date: int, extra: Mapping[str, str] | None = None
) -> str:
    """Build initData signed the way Telegram signs it (``make run``'s example header, tests)."""
    extra = dict(extra or {})
    reserved = {"hash", "user", "auth_date"} & set(extra)
    if reserved:
        raise ValueError(f"extra must not set {sorted(reserved)}")
    fields = {**extra, "user": json.dumps(user, separators=(",", ":"), ensure_ascii=False), "auth_date": str(auth_date)}
    return urlencode({**fields, "hash": _check_hash(fields, bot_token)})


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup on any mapping (Chalice's is already case-insensitive)."""
    wanted = name.lower()
    values = [value for key, value in headers.items() if key.lower() == wanted]
    # Two spellings of one header in a plain dict are ambiguous: trust neither.
    return values[0] if len(values) == 1 else None


def _credentials(headers: Mapping[str, str]) -> tuple[str, str]:
    """``(scheme in lower case, credentials)`` from ``Authorization``; 401 when absent or malformed."""
    value = _header(headers, "Authorization")
    if value is None:
        raise Unauthorized("Missing Authorization header.")
    parts = value.split()
    if len(parts) != 2:
        raise Unauthorized("Authorization header must be '<scheme> <credentials>'.")
    return parts[0].lower(), parts[1]


def authenticate_user(headers: Mapping[str, str], settings: Settings) -> InitData:
    """The Mini App user behind ``Authorization: tma <initData>``."""
    scheme, credentials = _credentials(headers)
    if scheme != "tma":
        raise Unauthorized("Authorization must use the 'tma' scheme with Telegram initData.")
    return validate_init_data(
        credentials, settings.telegram_bot_token, max_age_seconds=settings.init_data_max_age_seconds
    )


def authenticate_admin(headers: Mapping[str, str], settings: Settings) -> Admin:
    """An operator, by ``Bearer <ADMIN_API_TOKEN>`` or by initData of a user in ``ADMIN_USER_IDS``.

    No or unreadable credentials: 401. Credentials that are understood but
    not an admin's (a wrong token, a valid non-admin user): 403.
    """
    scheme, credentials = _credentials(headers)
    if scheme == "bearer":
        expected = settings.admin_api_token
        given = credentials.encode("utf-8", "surrogatepass")
        if expected is None or not hmac.compare_digest(given, expected.encode()):
            raise Forbidden("Invalid admin token.")
        return Admin(via="token", user_id=None)
    if scheme == "tma":
        init_data = validate_init_data(
            credentials, settings.telegram_bot_token, max_age_seconds=settings.init_data_max_age_seconds
        )
        if init_data.user.id not in settings.admin_user_ids:
            raise Forbidden("This Telegram account is not an admin.")
        # An admin's initData is a session with power over every balance: it expires sooner
        # (ADMIN_INIT_DATA_MAX_AGE_SECONDS) than the same user's Mini App session.
        if time.time() - init_data.auth_date > settings.admin_init_data_max_age_seconds:
            raise Unauthorized("initData has expired for the admin pages; reopen the Mini App.")
        return Admin(via="init_data", user_id=init_data.user.id)
    raise Unauthorized("Authorization must use the 'Bearer' or 'tma' scheme.")
