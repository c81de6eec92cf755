"""Strategies for HTTP requests: credentials (initData, admin tokens) and whole API and webhook requests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from hypothesis import strategies as st

from tests.conftest import TEST_ADMIN_TOKEN, TEST_BOT_TOKEN
from tests.fuzz.updates import _idempotency_keys, new_user_ids, telegram_updates, webhook_secrets
from tests.fuzz.values import (
    _LONE_SURROGATE,
    CHARGE_IDS,
    FUZZ_ADMIN_ID,
    FUZZ_USER_IDS,
    HINTS_BY_ROUTE,
    OTHER_BOT_TOKEN,
    RAW_BODIES,
    SURROGATE_NAMES,
    TEXT,
    WEBHOOK_ROUTE,
    JsonStrategy,
    Operation,
    World,
    bodies_for,
    encoded,
    fresh,
    from_schema,
    json_values,
    known,
    nasty_text,
    operations,
    telegram_text,
    weighted,
)

# ---------------------------------------------------------------------------
# Credentials
# ---------------------------------------------------------------------------


def sign(fields: Mapping[str, str], token: str = TEST_BOT_TOKEN) -> str:
    """initData as Telegram signs it (its published algorithm), for any ``user`` text."""
    secret = hmac.new(b"WebAppData", token.encode(), hashlib.sha256).digest()
    check = "\n".join(f"{key}={fields[key]}" for key in sorted(fields))
    digest = hmac.new(secret, check.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
    return urlencode({**fields, "hash": digest}, encoding="utf-8", errors="surrogatepass")


def profile(user_id: int, **extra: Any) -> dict[str, Any]:
    return {"id": user_id, "first_name": f"Fuzz{user_id}", **extra}


@dataclass(frozen=True)
class Auth:
    """An ``Authorization`` header (or none) and what CONTRACT §3 makes of it.

    ``kind``: ``none``, ``user`` (valid initData), ``admin_user`` (valid
    initData of an ADMIN_USER_IDS id), ``admin_token``, ``wrong_token``
    (Bearer with another single token), ``bad`` (anything unreadable,
    forged, expired, or a signed user that is not a valid one) or
    ``unchecked`` (either answer is right; only the rest of the oracle applies).
    """

    kind: str
    headers: tuple[tuple[str, str], ...]
    user_id: int | None = None


def signed_auth(user_id: int) -> Auth:
    """Fresh, valid initData of ``user_id``."""
    raw = sign({"user": json.dumps(profile(user_id)), "auth_date": str(int(time.time()))})
    return _tma(raw, "admin_user" if user_id == FUZZ_ADMIN_ID else "user", user_id)


def _tma(value: str, kind: str, user_id: int | None = None, name: str = "Authorization") -> Auth:
    return Auth(kind, ((name, f"tma {value}"),), user_id)


AGES_OF_USERS = (0, 5, 3600, 80_000)  # seconds, all within INIT_DATA_MAX_AGE_SECONDS
AGES_OF_ADMINS = (0, 5, 1800)


@st.composite
def valid_user_auth(draw: st.DrawFn, user_ids: tuple[int, ...]) -> Auth:
    user_id = draw(weighted((8, st.sampled_from(user_ids)), (2, new_user_ids())))
    extra = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "last_name": st.one_of(st.none(), TEXT),
                "username": st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9_]{5,32}", fullmatch=True)),
                "language_code": st.sampled_from(["en", "ru", "de", "pt-br"]),
                "is_premium": st.booleans(),
                "allows_write_to_pm": st.booleans(),
                "photo_url": st.just("https://t.me/i/userpic/320/x.svg"),
            },
        )
    )
    first_name = draw(
        weighted(
            (4, st.just(f"Fuzz{user_id}")),
            (2, TEXT),
            (1, st.sampled_from(["", "🦊 Fox", "\u202eevil"])),
            (2, st.sampled_from(SURROGATE_NAMES)),
        )
    )
    user = {"id": user_id, "first_name": telegram_text(first_name), **extra}
    admin = user_id == FUZZ_ADMIN_ID
    ascii_json = draw(st.booleans())
    user_json = json.dumps(user, separators=(",", ":"), ensure_ascii=ascii_json)
    fields = {
        "user": user_json,
        # An admin's initData is valid for ADMIN_INIT_DATA_MAX_AGE_SECONDS (1 h) on the admin API.
        "auth_date": str(int(time.time()) - draw(st.sampled_from(AGES_OF_ADMINS if admin else AGES_OF_USERS))),
    }
    fields.update(
        draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "query_id": st.just("AAHdF6IQAAAAAN0XohDhrOrc"),
                    "chat_instance": st.just("-3788475317572404878"),
                    "chat_type": st.sampled_from(["private", "sender"]),
                    "start_param": TEXT,
                    "signature": st.just("A" * 86),
                },
            )
        )
    )
    raw = sign(fields)
    from chalicelib.auth import MAX_INIT_DATA_BYTES

    # Too long, or a raw lone surrogate (not UTF-8 once percent-encoded): refused.
    if len(raw) > MAX_INIT_DATA_BYTES or _LONE_SURROGATE.search(user_json):
        return _tma(raw, "bad")
    kind = "admin_user" if user_id == FUZZ_ADMIN_ID else "user"
    if _LONE_SURROGATE.search(str(user["first_name"])):
        kind = "unchecked"  # a JSON-escaped lone surrogate: the name cleaned or the initData refused, both fine
    name = draw(st.sampled_from(["Authorization", "authorization", "AUTHORIZATION"]))
    scheme = draw(st.sampled_from(["tma", "tma", "TMA", "Tma"]))
    return Auth(kind, ((name, f"{scheme} {raw}"),), user_id)


def _malformed_users() -> JsonStrategy:
    """Signed ``user`` values that are not a valid user: initData must still be refused."""
    return st.one_of(
        st.sampled_from(
            [
                {"id": True, "first_name": "Bool"},
                {"id": 0, "first_name": "Zero"},
                {"id": -5, "first_name": "Negative"},
                {"id": 2**53 + 1, "first_name": "Huge"},
                {"id": "3001", "first_name": "String id"},
                {"id": 3001.0, "first_name": "Float id"},
                {"id": 3001},
                {"id": 3001, "first_name": None},
                {"id": 3001, "first_name": "X", "username": 5},
                {"first_name": "No id"},
                [],
                "3001",
                None,
            ]
        ),
        json_values(5).filter(
            lambda v: not (isinstance(v, dict) and type(v.get("id")) is int and isinstance(v.get("first_name"), str))
        ),
    )


@st.composite
def bad_auth(draw: st.DrawFn) -> Auth:
    """Every way to present credentials that must be refused with 401."""
    now = int(time.time())
    good_fields = {"user": json.dumps(profile(FUZZ_USER_IDS[0])), "auth_date": str(now)}
    choice = draw(st.integers(0, 11))
    if choice == 0:
        user = draw(_malformed_users())
        return _tma(sign({"user": json.dumps(user), "auth_date": str(now)}), "bad")
    if choice == 1:
        return _tma(sign({**good_fields, "auth_date": str(now - 90_000)}), "bad")  # expired
    if choice == 2:
        return _tma(sign({**good_fields, "auth_date": str(now + 3600)}), "bad")  # from the future
    if choice == 3:
        return _tma(sign(good_fields, OTHER_BOT_TOKEN), "bad")  # another bot's signature
    if choice == 4:
        raw = sign(good_fields)
        return _tma(raw.replace(str(FUZZ_USER_IDS[0]), str(FUZZ_ADMIN_ID)), "bad")  # tampered user
    if choice == 5:
        return _tma(sign({"user": json.dumps(profile(FUZZ_USER_IDS[0]))}), "bad")  # no auth_date
    if choice == 6:
        return _tma(sign({"auth_date": str(now)}), "bad")  # no user
    if choice == 7:
        raw = sign(good_fields)
        return _tma(raw + "&" + draw(st.sampled_from(["hash=" + "0" * 64, "user=x", "auth_date=1", "=", "&"])), "bad")
    if choice == 8:
        return _tma(draw(st.one_of(nasty_text(), st.text(max_size=5000))).replace(" ", "") or "x", "bad")
    if choice == 9:
        value = draw(
            st.sampled_from(
                ["", "tma", "tma ", "Bearer", "Basic dXNlcjpwYXNz", "tma a b", "Bearer a b", "Token x", "tma  "]
            )
        )
        return Auth("bad", (("Authorization", value),))
    if choice == 10:
        return Auth("none", ())
    raw = sign(good_fields)
    return _tma(raw[: draw(st.integers(0, len(raw) - 1))], "bad")  # cut short


def _bearer_kind(token: str) -> str:
    parts = f"Bearer {token}".split()
    if len(parts) != 2:
        return "bad"
    return "admin_token" if parts[1] == TEST_ADMIN_TOKEN else "wrong_token"


@st.composite
def bearer_auth(draw: st.DrawFn) -> Auth:
    token = draw(
        weighted(
            (6, st.just(TEST_ADMIN_TOKEN)),
            (1, st.sampled_from([TEST_ADMIN_TOKEN.upper(), TEST_ADMIN_TOKEN[:-1], TEST_ADMIN_TOKEN + "x", "null"])),
            (1, TEXT.filter(bool)),
        )
    )
    scheme = draw(st.sampled_from(["Bearer", "bearer", "BEARER"]))
    return Auth(_bearer_kind(token), (("Authorization", f"{scheme} {token}"),))


def auth_for(operation: Operation, user_ids: tuple[int, ...]) -> st.SearchStrategy[Auth]:
    if operation.is_admin:
        return weighted(
            (3, bearer_auth()), (2, valid_user_auth((FUZZ_ADMIN_ID,))), (1, valid_user_auth(user_ids)), (2, bad_auth())
        )
    if operation.is_user:
        return weighted((4, valid_user_auth(user_ids)), (1, bad_auth()))
    return weighted((2, st.just(Auth("none", ()))), (1, valid_user_auth(user_ids)), (1, bad_auth()))


# ---------------------------------------------------------------------------
# A whole request
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Replay:
    """This request repeats an earlier generation start: same user, key and body."""

    user_id: int
    generation_id: str


@dataclass(frozen=True)
class Request:
    operation: Operation
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    auth_kind: str
    user_id: int | None = None
    replay: Replay | None = None

    def reproduction(self) -> str:
        """Python that sends this request through ``chalice.test.Client``."""
        body = self.body if len(self.body) <= 300 else self.body[:300] + b"...(truncated)"
        return (
            f"client.http.request({self.operation.method!r}, {self.path!r}, "
            f"headers={dict(self.headers)!r}, body={body!r})"
        )


CONTENT_TYPES = [
    "application/json",
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "application/x-www-form-urlencoded",
    "application/octet-stream",
    "multipart/form-data; boundary=boundary",
    "",
]


def path_values(name: str, schema: Mapping[str, Any], world: World) -> st.SearchStrategy[tuple[str, int | None]]:
    """A path parameter and, for a known generation, its owner: known ids, valid-looking ones, malicious ones."""
    options: list[tuple[int, st.SearchStrategy[str]]] = [(2, from_schema(schema)), (1, nasty_text())]
    if name == "generation_id":
        fallback = (0, "01ARZ3NDEKTSV4RRFFQ69G5FAV")
        return weighted(
            (3, known(world.generations, fallback, latest=3).map(lambda pair: (pair[1], pair[0] or None))),
            (3, known(world.generations, fallback).map(lambda pair: (pair[1], pair[0] or None))),
            (2, from_schema(schema).map(lambda value: (value, None))),
            (1, nasty_text().map(lambda value: (value, None))),
        )
    if name == "user_id":
        options.append((5, st.sampled_from([str(u) for u in (*FUZZ_USER_IDS, FUZZ_ADMIN_ID)])))
        options.append(
            (
                1,
                st.sampled_from(
                    ["0", "-1", "00003001", str(2**53 + 1), "9" * 17, "1e3", " 3001", "\uff13\uff10\uff10\uff11"]
                ),
            )
        )
    if name == "charge_id":
        options.append((4, st.sampled_from(CHARGE_IDS)))
    return weighted(*options).map(lambda value: (value, None))


def _in_path(value: str, raw: bool) -> str:
    """Raw (as API Gateway hands the decoded value over) or percent-encoded; never breaks the route's shape."""
    if raw:
        cleaned = re.sub(r"[/?#%]", "_", value)
        return cleaned or "_"
    return quote(value, safe="") or "_"


def query_strings(operation: Operation, world: World) -> st.SearchStrategy[str]:
    values = st.one_of(
        st.sampled_from(["1", "20", "50", "0", "51", "-1", "abc", "1e1", " 5", "5 ", "", "9" * 30, "0x10", "٣"]),
        known(world.cursors, "eyJnIjoiMDEifQ"),
        st.sampled_from(
            [
                base64.urlsafe_b64encode(b'{"g": 1}').decode(),
                base64.urlsafe_b64encode(b'["g"]').decode(),
                base64.urlsafe_b64encode(b'"g"').decode(),
                base64.urlsafe_b64encode(b"\xff\xfe").decode(),
                base64.urlsafe_b64encode(b'{"g": "01ARZ3NDEKTSV4RRFFQ69G5FAV"}').decode(),
                base64.urlsafe_b64encode(b"[" * 140 + b"]" * 140).decode()[:200],
                "!!!",
                "a" * 201,
            ]
        ),
        TEXT,
    )
    names = st.sampled_from([name for name, _ in operation.query_params] + ["limit", "cursor", "user_id", "x"])
    pairs = st.lists(st.tuples(names, values), max_size=4)
    encoded_query = pairs.map(lambda p: urlencode(p, encoding="utf-8", errors="surrogatepass"))
    raw = st.sampled_from(["limit=1&limit=2", "%zz", "limit=%ff", "=&&=", "limit", "cursor=%00"])
    return weighted((2, st.just("")), (4, encoded_query), (1, raw)).map(lambda q: f"?{q}" if q else "")


def idempotency_keys() -> st.SearchStrategy[str]:
    return weighted(
        (8, fresh(lambda: f"fuzz-key-{next(_idempotency_keys)}")),  # hypothesis' UUIDs repeat
        (1, st.from_regex(r"[\x21-\x7e]{1,128}", fullmatch=True)),
        (1, st.sampled_from(["", " ", "a b", "x" * 129, "ключ", "k\x00", "k\n", "\t"])),
    )


# Where money moves gets most of the requests; the rest get enough to be covered.
OPERATION_WEIGHTS = {
    "POST /api/generation": 10,
    "GET /api/generation/{generation_id}": 4,
    "POST /api/generation/{generation_id}/cancel": 4,
    "GET /api/generation": 3,
    "GET /api/user/me": 3,
    "POST /api/admin/users/{user_id}/credits": 3,
    "POST /api/admin/payments/{charge_id}/refund": 3,
    "GET /api/health": 1,
    "GET /api/generation/models": 1,
}


@st.composite
def api_requests(draw: st.DrawFn, world: World) -> Request:
    """One request to an operation of ``openapi.yaml`` other than the webhook."""
    # Heaviest first: hypothesis often draws the first choice, so it had better be a useful one.
    choices = sorted(
        ((OPERATION_WEIGHTS.get(op.label, 2), st.just(op)) for op in operations() if not op.is_webhook),
        key=lambda choice: -choice[0],
    )
    operation = draw(weighted(*choices))
    return draw(request_for(operation, world))


@st.composite
def request_for(draw: st.DrawFn, operation: Operation, world: World) -> Request:
    auth = draw(auth_for(operation, world.user_ids))
    path = operation.route
    for name, schema in operation.path_params:
        value, owner = draw(path_values(name, schema, world))
        path = path.replace("{" + name + "}", _in_path(value, draw(st.booleans())))
        if name == "generation_id" and draw(st.integers(0, 2)) and owner is not None and auth.user_id is not None:
            auth = signed_auth(owner)  # mostly as its owner: another user's generation is simply not found
    path += draw(query_strings(operation, world)) if operation.query_params or draw(st.integers(0, 9)) == 0 else ""
    headers = dict(auth.headers)
    content_type = draw(st.sampled_from(CONTENT_TYPES))
    if content_type:
        headers["Content-Type"] = content_type
    declared = any(name == "Idempotency-Key" for name, _ in operation.header_params)
    if (declared or draw(st.integers(0, 19)) == 0) and draw(st.integers(0, 3)):
        headers["Idempotency-Key"] = draw(idempotency_keys())
    if draw(st.integers(0, 9)) == 0:
        headers.update(draw(st.dictionaries(st.sampled_from(["X-Forwarded-For", "Origin", "X-Api-Key"]), TEXT)))
    hints = HINTS_BY_ROUTE.get(operation.route)
    body = draw(bodies_for(operation.body_schema, hints))
    replay = None
    if operation.label == "POST /api/generation":
        # Now and then a double tap: an earlier start of this user, with the same key and
        # (mostly) the same body. Drawn whatever the world holds, so generation stays stable.
        roll, pick, same_body = draw(st.integers(0, 2)), draw(st.integers(0, 2**16)), draw(st.integers(0, 3))
        earlier = [start for start in world.starts if start[0] == auth.user_id]
        if earlier and roll == 0:
            user_id, key, earlier_body, generation_id = earlier[pick % len(earlier)]
            headers["Idempotency-Key"] = key
            headers["Content-Type"] = "application/json"
            body = earlier_body if same_body else body
            replay = Replay(user_id, generation_id) if body == earlier_body else None
    return Request(operation, path, tuple(headers.items()), body, auth.kind, auth.user_id, replay)


def request_to(label: str, *, headers: Mapping[str, str], body: bytes = b"") -> Request:
    """A hand-written request to the operation ``label`` (``"GET /api/user/me"``); the caller judges its status."""
    operation = next(op for op in operations() if op.label == label)
    return Request(operation, operation.route, tuple(headers.items()), body, "unchecked")


@st.composite
def webhook_requests(draw: st.DrawFn, world: World) -> Request:
    operation = next(op for op in operations() if op.route == WEBHOOK_ROUTE)
    kind, secret_headers = draw(webhook_secrets())
    update = draw(telegram_updates(world.user_ids, world.update_ids))
    body = draw(weighted((8, encoded(st.just(update))), (1, st.sampled_from(RAW_BODIES)), (1, encoded(json_values()))))
    headers = {"Content-Type": draw(st.sampled_from(CONTENT_TYPES)) or "application/json", **dict(secret_headers)}
    return Request(operation, WEBHOOK_ROUTE, tuple(headers.items()), body, kind)
