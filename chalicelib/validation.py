"""Request input, parsed and checked before anything else runs.

Every function here either returns clean, typed values or raises
``InvalidRequest`` (400) with a message that tells the caller which field is
wrong and how to fix it. Types are checked strictly (``true`` is not a string,
``true`` is not an integer) so that what is stored is exactly what was meant.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn, TypeGuard
from urllib.parse import SplitResult, unquote, urlsplit

from chalicelib.addresses import is_public_ip
from chalicelib.auth import MAX_TELEGRAM_ID
from chalicelib.catalogue import ImageModel, get_model, models, prompt_model_for, prompt_models
from chalicelib.config import Settings
from chalicelib.errors import InvalidRequest
from chalicelib.model import GenerationOrder

MAX_BODY_BYTES = 16_384
MAX_PROMPT_CHARS = 2000
MAX_IMAGE_URL_CHARS = 2048
MAX_REASON_CHARS = 200
MAX_CREDIT_CHANGE = 1_000_000
DEFAULT_LIMIT = 20
MAX_LIMIT = 50

_GENERATION_FIELDS = ("prompt", "model", "aspect_ratio", "image_urls", "upload_ids")
_CREDIT_CHANGE_FIELDS = ("amount", "reason")
_SETTINGS_FIELDS = ("language", "model", "aspect_ratio")
USER_LANGUAGES = ("ru", "en")  # chalicelib.i18n.LANGUAGES

# Telegram's chat ids have at most 52 significant bits and are signed (groups
# are negative); message ids are positive 32-bit numbers. Anything larger did
# not come from Telegram, and past 38 digits DynamoDB refuses the write.
MAX_MESSAGE_ID = 2**31 - 1

# C0 controls other than tab/newline/carriage return, DEL, and lone UTF-16
# surrogates (JSON's "\ud800" decodes to one, and it cannot be stored as UTF-8).
_FORBIDDEN_TEXT_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
# Printable ASCII (CONTRACT §5); no space at either end, where HTTP would trim it.
_IDEMPOTENCY_KEY_RE = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]{0,126}[\x21-\x7e])?")
_LIMIT_RE = re.compile(r"[0-9]{1,6}")
_USER_ID_RE = re.compile(r"[0-9]{1,16}")
# An upload id is a ULID (chalicelib.ids.new_id).
UPLOAD_ID_RE = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")

# Host names that only mean something inside a network, never on the internet.
_INTERNAL_TLDS = ("localhost", "local", "localdomain", "internal", "arpa")
_HOST_LABEL_RE = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
# WHATWG URL parsers (browsers, many HTTP clients) read a host whose last label
# is a number as IPv4: 2130706433, 0x7f000001, 0177.0.0.1 and 127.1 all mean
# 127.0.0.1. Only the canonical dotted quad is accepted, and then classified.
_NUMERIC_LABEL_RE = re.compile(r"0x[0-9a-f]*|[0-9]+")
# A Bot API token (<bot id>:<secret>) anywhere in a URL would hand it to the provider.
_BOT_TOKEN_RE = re.compile(r"[0-9]{5,}:[A-Za-z0-9_-]{30,}")


def is_chat_id(value: object) -> TypeGuard[int]:
    """A Telegram chat id the bot may store and key by (``bool`` is not one)."""
    return type(value) is int and value != 0 and -MAX_TELEGRAM_ID <= value <= MAX_TELEGRAM_ID


def is_message_id(value: object) -> TypeGuard[int]:
    """A Telegram message id the bot may store and key by."""
    return type(value) is int and 0 < value <= MAX_MESSAGE_ID


def _invalid(message: str) -> NoReturn:
    raise InvalidRequest(message)


def _shown(value: object) -> str:
    """A client value quoted in an error message, cut short so errors stay small."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_json_object(raw_body: bytes | str | None, *, max_bytes: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """The request body as a JSON object; duplicated keys and NaN/Infinity are refused as ambiguous."""
    if raw_body is None:
        _invalid("The request body is empty; send a JSON object.")
    data = raw_body.encode("utf-8", "surrogatepass") if isinstance(raw_body, str) else raw_body
    if len(data) > max_bytes:
        _invalid(f"The request body is larger than {max_bytes} bytes.")
    if not data.strip():
        _invalid("The request body is empty; send a JSON object.")
    try:
        value = json.loads(data.decode("utf-8"), object_pairs_hook=_object_without_duplicates, parse_constant=_not_json)
    except (ValueError, RecursionError):  # bad UTF-8, bad JSON, an integer of thousands of digits, deep nesting
        _invalid("The request body is not valid JSON.")
    if not isinstance(value, dict):
        _invalid("The request body must be a JSON object.")
    return value


def _not_json(constant: str) -> NoReturn:
    _invalid(f"The request body is not valid JSON: {constant} is not a JSON number.")


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        _invalid("The request body repeats a key; send each field once.")
    return obj


def _reject_unknown_fields(body: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        _invalid(f"Unknown field(s): {', '.join(_shown(key) for key in unknown[:5])}. Allowed: {', '.join(allowed)}.")


def _text(value: object, field: str, *, max_chars: int) -> str:
    """A required, trimmed, non-empty single string of at most ``max_chars`` characters."""
    if not isinstance(value, str):
        _invalid(f"{field} is required and must be a string.")
    text = value.strip()
    if not text:
        _invalid(f"{field} must not be empty.")
    if len(text) > max_chars:
        _invalid(f"{field} is {len(text)} characters long; the limit is {max_chars}.")
    if _FORBIDDEN_TEXT_RE.search(text):
        _invalid(f"{field} contains control characters.")
    return text


def _optional_string(body: Mapping[str, Any], field: str) -> str | None:
    """An optional string field; JSON ``null`` means "not given", as clients often send it."""
    value = body.get(field)
    if value is not None and not isinstance(value, str):
        _invalid(f"{field} must be a string.")
    return value


@dataclass(frozen=True)
class GenerationRequest:
    """A checked ``POST /api/generation`` body."""

    prompt: str
    model: ImageModel
    aspect_ratio: str
    image_urls: tuple[str, ...]
    upload_ids: tuple[str, ...] = ()

    def order(self) -> GenerationOrder:
        """What the money core charges for: these parameters at the model's price."""
        return GenerationOrder(
            prompt=self.prompt,
            model=self.model.id,
            aspect_ratio=self.aspect_ratio,
            image_urls=self.image_urls,
            cost=self.model.cost,
            fingerprint=self.fingerprint(),
            upload_ids=self.upload_ids,
        )

    def fingerprint(self) -> str:
        """Stable digest of the parameters: an Idempotency-Key reused with another one is a 422."""
        parts: list[object] = [self.prompt, self.model.id, self.aspect_ratio, list(self.image_urls)]
        if self.upload_ids:  # appended only when present: earlier requests keep their fingerprints
            parts.append(list(self.upload_ids))
        material = json.dumps(parts, separators=(",", ":"))
        return hashlib.sha256(material.encode()).hexdigest()


def parse_generation_request(
    body: Mapping[str, Any],
    settings: Settings,
    *,
    saved_model: str | None = None,
    saved_aspect_ratio: str | None = None,
) -> GenerationRequest:
    """``{"prompt", "model"?, "aspect_ratio"?, "image_urls"?, "upload_ids"?}`` checked against the catalogue.

    ``model`` and ``aspect_ratio`` default to the user's saved settings, then
    to the catalogue's defaults; a saved aspect ratio the model lacks gives
    way to the model's default. Upload ids are only checked for their form
    here; whether they are the caller's and hold a picture is
    ``chalicelib.uploads.check_uploads``.
    """
    _reject_unknown_fields(body, _GENERATION_FIELDS)
    prompt = _text(body.get("prompt"), "prompt", max_chars=MAX_PROMPT_CHARS)

    model_id = _optional_string(body, "model")
    model = get_model(model_id, settings) if model_id is not None else prompt_model_for(saved_model, settings)

    aspect_ratio = _optional_string(body, "aspect_ratio")
    if aspect_ratio is None:
        fits = saved_aspect_ratio is not None and saved_aspect_ratio in model.aspect_ratios
        aspect_ratio = saved_aspect_ratio if fits and saved_aspect_ratio else model.default_aspect_ratio
    elif aspect_ratio not in model.aspect_ratios:
        _invalid(
            f"aspect_ratio {_shown(aspect_ratio)} is not available for {model.name}; "
            f"choose one of: {', '.join(model.aspect_ratios)}."
        )

    image_urls, upload_ids = _reference_images(body.get("image_urls"), body.get("upload_ids"), model, settings)
    return GenerationRequest(
        prompt=prompt, model=model, aspect_ratio=aspect_ratio, image_urls=image_urls, upload_ids=upload_ids
    )


def _reference_images(
    urls: object, upload_ids: object, model: ImageModel, settings: Settings
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Edit models need 1..max_images pictures, URLs and uploads together; other models take none."""
    if not model.edit:
        for field, value in (("image_urls", urls), ("upload_ids", upload_ids)):
            if value is not None and value != []:
                edit_ids = ", ".join(m.id for m in models(settings) if m.edit)
                _invalid(f"{model.name} does not take {field}; to edit pictures choose {edit_ids}.")
        return (), ()
    wrong_shape = any(value is not None and not isinstance(value, list) for value in (urls, upload_ids))
    url_list: list[object] = urls if isinstance(urls, list) else []
    id_list: list[object] = upload_ids if isinstance(upload_ids, list) else []
    if wrong_shape or not 1 <= len(url_list) + len(id_list) <= model.max_images:
        _invalid(
            f"{model.name} needs image_urls and/or upload_ids: lists of 1 to {model.max_images} pictures "
            "to edit together (public https URLs, or your uploads from POST /api/uploads)."
        )
    checked_urls = tuple(_image_url(url, f"image_urls[{index}]") for index, url in enumerate(url_list))
    checked_ids = tuple(_upload_id(value, f"upload_ids[{index}]") for index, value in enumerate(id_list))
    if len(set(checked_ids)) != len(checked_ids):
        _invalid("upload_ids names the same upload twice.")
    return checked_urls, checked_ids


def _upload_id(value: object, where: str) -> str:
    if not isinstance(value, str) or not UPLOAD_ID_RE.fullmatch(value):
        _invalid(f"{where} is not an upload id; use the upload_id that POST /api/uploads answered.")
    return value


def _image_url(value: object, where: str) -> str:
    """A URL the image provider will fetch: public https only (SSRF), never a bot-token URL.

    This is a syntactic check: a public name can still resolve to a private
    address, so anything in NanoGen that fetches such a URL itself must check
    the resolved address and not follow redirects.
    """
    if not isinstance(value, str):
        _invalid(f"{where} must be a string.")
    if len(value) > MAX_IMAGE_URL_CHARS:
        _invalid(f"{where} is longer than {MAX_IMAGE_URL_CHARS} characters.")
    # Spaces, controls, backslashes and raw non-ASCII are read differently by
    # different URL parsers; a well-formed URL percent-encodes them.
    if not value.isascii() or "\\" in value or any(char <= " " or char == "\x7f" for char in value):
        _invalid(
            f"{where} must be ASCII without spaces or backslashes: percent-encode the path "
            "and write international domain names as punycode (xn--)."
        )
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        _invalid(f"{where} is not a valid URL.")
    if parts.scheme != "https":
        _invalid(f"{where} must start with https://.")
    if "@" in parts.netloc:
        _invalid(f"{where} must not contain a user name or password.")
    _check_public_host(parts.hostname or "", where)
    if _carries_bot_token(parts):
        _invalid(f"{where} contains a Telegram bot token (a Telegram file link); upload the picture elsewhere.")
    return value


def _check_public_host(host: str, where: str) -> None:
    name = host.removesuffix(".")
    if not name:
        _invalid(f"{where} has no host name.")
    if ":" in name:  # an IPv6 literal; urlsplit has taken its brackets off
        try:
            ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv6Address(name)
        except ValueError:
            _invalid(f"{where} has an invalid IPv6 address.")
    elif _NUMERIC_LABEL_RE.fullmatch(name.rsplit(".", 1)[-1]):
        try:
            ip = ipaddress.IPv4Address(name)
        except ValueError:
            _invalid(f"{where} writes an IP address in a non-standard form; use a host name.")
    else:
        labels = name.split(".")
        if len(name) > 253 or not all(_HOST_LABEL_RE.fullmatch(label) for label in labels):
            _invalid(f"{where} has an invalid host name.")
        # A name without a dot is completed by the resolver's search domains: internal.
        if len(labels) < 2 or labels[-1] in _INTERNAL_TLDS:
            _invalid(f"{where} points at a local or internal host; use a public URL.")
        return
    if not is_public_ip(ip):
        _invalid(f"{where} points at a private, local or reserved address; use a public URL.")


def _carries_bot_token(parts: SplitResult) -> bool:
    """Telegram file URLs are ``/file/bot<token>/...``: the token must never reach a third party."""
    host = (parts.hostname or "").removesuffix(".")
    if host == "api.telegram.org" and unquote(parts.path).lower().startswith("/file/bot"):
        return True
    return _BOT_TOKEN_RE.search(unquote(parts.geturl())) is not None


# What a Telegram payment charge id looks like (letters, digits, _ . : -).
CHARGE_ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,256}")


def parse_idempotency_key(value: str | None) -> str | None:
    """The ``Idempotency-Key`` header: 1-128 printable ASCII characters (CONTRACT §5).

    Spaces are allowed inside, not at either end: HTTP trims those, so two
    keys differing only there would collide.
    """
    if value is None:
        return None
    if not _IDEMPOTENCY_KEY_RE.fullmatch(value):
        _invalid("Idempotency-Key must be 1 to 128 printable ASCII characters, not starting or ending with a space.")
    return value


@dataclass(frozen=True)
class SettingsChange:
    """A checked ``PUT /api/user/settings`` body (or a bot button): what to store; None keeps a value."""

    language: str | None = None
    model: str | None = None
    aspect_ratio: str | None = None


def parse_settings_change(
    body: Mapping[str, Any], settings: Settings, *, saved_model: str | None, saved_aspect_ratio: str | None
) -> SettingsChange:
    """``{"language"?, "model"?, "aspect_ratio"?}``: known values only, and an aspect ratio
    that suits the model it will be used with (the new one if given, else the saved one).

    The model must be one a text prompt can use: it draws every later prompt,
    and a photo is edited with the edit model the catalogue pairs with it (a
    saved ratio that edit model lacks gives way to its default there), so an
    edit model is refused. A new model that lacks the saved aspect ratio gets
    its own default one.
    """
    _reject_unknown_fields(body, _SETTINGS_FIELDS)
    if not any(body.get(name) is not None for name in _SETTINGS_FIELDS):
        _invalid(f"give at least one of: {', '.join(_SETTINGS_FIELDS)}.")
    language = _optional_string(body, "language")
    if language is not None and language not in USER_LANGUAGES:
        _invalid(f"language {_shown(language)} is not supported; choose one of: {', '.join(USER_LANGUAGES)}.")
    model_id = _optional_string(body, "model")
    if model_id is None:
        model = prompt_model_for(saved_model, settings)  # the one the saved settings apply with
    else:
        model = get_model(model_id, settings)
        if model.edit:
            _refuse_edit_model_as_saved(model, settings)
    aspect_ratio = _optional_string(body, "aspect_ratio")
    if aspect_ratio is not None and aspect_ratio not in model.aspect_ratios:
        _invalid(
            f"aspect_ratio {_shown(aspect_ratio)} is not available for {model.name}; "
            f"choose one of: {', '.join(model.aspect_ratios)}."
        )
    if aspect_ratio is None and model_id is not None and saved_aspect_ratio not in model.aspect_ratios:
        aspect_ratio = model.default_aspect_ratio
    return SettingsChange(language=language, model=model_id, aspect_ratio=aspect_ratio)


def _refuse_edit_model_as_saved(model: ImageModel, settings: Settings) -> NoReturn:
    """The saved model draws every later text prompt, which an edit model cannot do without pictures."""
    choices = ", ".join(m.id for m in prompt_models(settings))
    _invalid(
        f"{model.id} is an edit model: it needs pictures, so it cannot draw your text prompts. "
        f"Choose a text-to-image model ({choices}); pictures you send are edited with its paired "
        "edit model automatically."
    )


def parse_limit(value: str | None) -> int:
    """``?limit=``: digits only, 1 to 50, default 20."""
    if value is None:
        return DEFAULT_LIMIT
    if not _LIMIT_RE.fullmatch(value) or not 1 <= int(value) <= MAX_LIMIT:
        _invalid(f"limit must be a whole number from 1 to {MAX_LIMIT}.")
    return int(value)


def parse_admin_credit_change(body: Mapping[str, Any]) -> tuple[int, str]:
    """``{"amount": non-zero int, "reason": str}``: positive grants, negative takes away."""
    _reject_unknown_fields(body, _CREDIT_CHANGE_FIELDS)
    amount = body.get("amount")
    if type(amount) is not int:  # bool is an int subclass; 1.0 is not a credit count
        _invalid("amount must be an integer number of credits.")
    if amount == 0 or abs(amount) > MAX_CREDIT_CHANGE:
        _invalid(f"amount must be non-zero and between -{MAX_CREDIT_CHANGE} and {MAX_CREDIT_CHANGE}.")
    return amount, _text(body.get("reason"), "reason", max_chars=MAX_REASON_CHARS)


def credit_change_fingerprint(amount: int, reason: str) -> str:
    """Stable digest of a credit change: its Idempotency-Key reused with another amount or reason is a 422."""
    material = json.dumps([amount, reason], separators=(",", ":"))
    return hashlib.sha256(material.encode()).hexdigest()


def parse_user_id(value: str) -> int:
    """A ``{user_id}`` path parameter: a Telegram user id, positive and at most 2**53."""
    if not _USER_ID_RE.fullmatch(value) or not 1 <= int(value) <= MAX_TELEGRAM_ID:
        _invalid("user_id must be a positive Telegram user id.")
    return int(value)


# --------------------------------------------------------------------------
# Growth: promo codes, packs, broadcasts (CONTRACT §5)
# --------------------------------------------------------------------------

PROMO_CODE_RE = re.compile(r"[A-Za-z0-9_-]{4,32}")
MAX_PROMO_CREDITS = 100_000
MAX_PROMO_USES = 1_000_000
MAX_BROADCAST_CHARS = 4096
BROADCAST_AUDIENCES = ("all", "paying", "active_30d")
BROADCAST_LANGUAGES = ("ru", "en")


@dataclass(frozen=True)
class PromoCodeRequest:
    code: str
    credits: int
    max_uses: int
    expires_at: str | None  # ISO 8601 UTC, as chalicelib.ids.iso_utc writes it


@dataclass(frozen=True)
class BroadcastRequest:
    texts: Mapping[str, str]  # {"all": text} or {"ru": text, "en": text}
    audience: str


def _bounded_int(value: object, field: str, maximum: int) -> int:
    if type(value) is not int or not 1 <= value <= maximum:
        _invalid(f"{field} must be a whole number from 1 to {maximum}.")
    return value


def _iso_utc(value: object, field: str) -> str:
    """An ISO 8601 date-time (a missing zone means UTC), normalised to ``2026-12-01T18:00:00.000Z``."""
    from datetime import UTC, datetime

    from chalicelib.ids import iso_utc

    if not isinstance(value, str) or len(value) > 40:
        _invalid(f"{field} must be an ISO 8601 date-time, e.g. 2026-12-31T23:59:59Z.")
    try:
        moment = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        _invalid(f"{field} must be an ISO 8601 date-time, e.g. 2026-12-31T23:59:59Z.")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return iso_utc(moment.timestamp())
    except (OverflowError, OSError, ValueError):
        _invalid(f"{field} is out of range.")


def parse_promo_code_creation(body: Mapping[str, Any]) -> PromoCodeRequest:
    """``{"code", "credits", "max_uses", "expires_at"?}`` of ``POST /api/admin/promo-codes``."""
    _reject_unknown_fields(body, ("code", "credits", "max_uses", "expires_at"))
    code = body.get("code")
    if not isinstance(code, str) or not PROMO_CODE_RE.fullmatch(code):
        _invalid("code must be 4 to 32 characters of A-Z a-z 0-9 _ -.")
    expires_at = body.get("expires_at")
    return PromoCodeRequest(
        code=code.upper(),
        credits=_bounded_int(body.get("credits"), "credits", MAX_PROMO_CREDITS),
        max_uses=_bounded_int(body.get("max_uses"), "max_uses", MAX_PROMO_USES),
        expires_at=None if expires_at is None else _iso_utc(expires_at, "expires_at"),
    )


def parse_promo_code(value: object) -> str | None:
    """A code a user typed (any case); None when it cannot be any code (the caller answers 404)."""
    if not isinstance(value, str):
        _invalid("code is required and must be a string.")
    code = value.strip()
    return code.upper() if PROMO_CODE_RE.fullmatch(code) else None


def parse_promo_redemption(body: Mapping[str, Any]) -> str | None:
    """``{"code"}`` of ``POST /api/promo/redeem``."""
    _reject_unknown_fields(body, ("code",))
    return parse_promo_code(body.get("code"))


def parse_pack_id(body: Mapping[str, Any]) -> str:
    """``{"pack_id"}`` of ``POST /api/payments/invoice``; the pack must be on sale."""
    from chalicelib import catalogue

    _reject_unknown_fields(body, ("pack_id",))
    pack_id = body.get("pack_id")
    if not isinstance(pack_id, str) or catalogue.pack_by_id(pack_id) is None:
        on_sale = ", ".join(pack.id for pack in catalogue.PACKS)
        _invalid(f"pack_id must be one of: {on_sale}.")
    return pack_id


def parse_broadcast(body: Mapping[str, Any]) -> BroadcastRequest:
    """``{"text": str or {"ru", "en"}, "audience"}`` of ``POST /api/admin/broadcasts``."""
    _reject_unknown_fields(body, ("text", "audience"))
    audience = body.get("audience")
    if audience not in BROADCAST_AUDIENCES:
        _invalid(f"audience must be one of: {', '.join(BROADCAST_AUDIENCES)}.")
    text = body.get("text")
    if isinstance(text, dict):
        _reject_unknown_fields(text, BROADCAST_LANGUAGES)
        texts = {
            language: _text(text.get(language), f"text.{language}", max_chars=MAX_BROADCAST_CHARS)
            for language in BROADCAST_LANGUAGES
        }
    else:
        if not isinstance(text, str):
            _invalid('text is required: a string, or {"ru": string, "en": string}.')
        texts = {"all": _text(text, "text", max_chars=MAX_BROADCAST_CHARS)}
    assert isinstance(audience, str)
    return BroadcastRequest(texts=texts, audience=audience)
