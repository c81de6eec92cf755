"""Hypothesis strategies and the fuzz driver shared by ``tests/integration/test_fuzz.py`` and ``bench/fuzz_long.py``.

What is fuzzed:

* every operation of ``openapi.yaml`` that app.py serves: request bodies
  generated from the documented request schemas, then broken on purpose
  (wrong types, missing and unknown fields, boundary lengths, lone
  surrogates, non-JSON bytes, huge numbers, deep nesting); path parameters,
  query strings and headers from their schemas and from hand-written
  malicious shapes;
* credentials: valid initData of known users (one of them an admin by
  ``ADMIN_USER_IDS``), signed initData whose ``user`` is malformed, forged,
  expired or future initData, the admin token and wrong ones, other schemes;
* Telegram updates: messages, commands, prompts, edited messages, channel
  posts, pre-checkout queries, Stars payments (charge ids drawn from a small
  pool, so the same payment arrives again under another update id), updates
  the bot ignores and garbage, with and without the secret header; the Bot
  API is a local fake (``install_fake_bot_api``), so nothing leaves the machine.

``Fuzzer.send`` is the oracle. For every answer: no 5xx; JSON with
``Content-Type: application/json``; an error body is exactly CONTRACT §4's
``{"error": {"code", "message"}}`` with a code that belongs to the status;
the status is one ``openapi.yaml`` documents for the operation and a 2xx
body matches the documented schema; refused credentials give 401/403 as
CONTRACT §3 says and valid ones never do; a refused or malformed update
calls no Bot API method; a replay of an earlier
``POST /api/generation`` (same user, key and body) returns that generation
with 200 while it is not failed or cancelled. The money invariants of
CONTRACT §6 are checked from the tables by the caller
(``local.invariants.violations()``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import yaml
from hypothesis import strategies as st

from chalicelib import queries
from tests.conftest import TEST_ADMIN_TOKEN, TEST_BOT_TOKEN, TEST_WEBHOOK_SECRET

ROOT = Path(__file__).resolve().parent.parent
SPEC_PATH = ROOT / "openapi.yaml"
WEBHOOK_ROUTE = "/api/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

# Users the fuzzer signs initData for. FUZZ_ADMIN_ID goes into ADMIN_USER_IDS.
FUZZ_USER_IDS = (3001, 3002, 3003, 3004)
FUZZ_ADMIN_ID = 3999
CHARGE_IDS = tuple(f"fuzz-charge-{n}" for n in range(4))
OTHER_BOT_TOKEN = "5151515151:AnotherBotsTokenNotOursAtAll_0123456"

# CONTRACT §4: which codes each status may carry (503 is the webhook's documented retry-later).
CODES_BY_STATUS: dict[int, frozenset[str]] = {
    400: frozenset({"invalid_request"}),
    401: frozenset({"unauthorized"}),
    402: frozenset({"insufficient_credits"}),
    403: frozenset({"forbidden", "user_banned"}),
    404: frozenset({"not_found"}),
    409: frozenset({"not_cancellable", "conflict"}),
    422: frozenset({"idempotency_key_reused"}),
    429: frozenset({"rate_limited", "too_many_active"}),
    500: frozenset({"internal_error"}),
    503: frozenset({"update_in_progress"}),
}

JsonStrategy = st.SearchStrategy[Any]
T = TypeVar("T")

# Text that Telegram signs or sends (names, charge ids) with a lone UTF-16 surrogate
# (JSON "\ud800") gets a 500 today: it reaches DynamoDB, which cannot store it. The
# long run (bench/fuzz_long.py) sends such text; `make test` does not until that is
# fixed (tests/integration/test_fuzz.py has the reproductions as strict xfails).
LONE_SURROGATES_IN_TELEGRAM_TEXT = True
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def telegram_text(value: Any) -> Any:
    """``value``, or with its lone surrogates replaced while LONE_SURROGATES_IN_TELEGRAM_TEXT is off."""
    if isinstance(value, str) and not LONE_SURROGATES_IN_TELEGRAM_TEXT:
        return _LONE_SURROGATE.sub("?", value)
    return value


SURROGATE_NAMES = ["\ud800", "Fox \udfff", "\udc00\ud800"]


# ---------------------------------------------------------------------------
# The document
# ---------------------------------------------------------------------------


@cache
def spec() -> dict[str, Any]:
    document = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def resolve(node: Any) -> Any:
    """Follow local ``$ref``s of ``openapi.yaml`` until a real object."""
    while isinstance(node, dict) and "$ref" in node:
        target: Any = spec()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def inline(node: Any) -> Any:
    """A copy of ``node`` with every ``$ref`` replaced by its target (the document has no cycles)."""
    node = resolve(node)
    if isinstance(node, dict):
        return {key: inline(value) for key, value in node.items()}
    if isinstance(node, list):
        return [inline(value) for value in node]
    return node


@dataclass(frozen=True)
class Operation:
    """One method on one route of ``openapi.yaml``."""

    method: str
    route: str
    security: frozenset[str]
    path_params: tuple[tuple[str, dict[str, Any]], ...]
    query_params: tuple[tuple[str, dict[str, Any]], ...]
    header_params: tuple[tuple[str, dict[str, Any]], ...]
    body_schema: dict[str, Any] | None
    responses: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.method} {self.route}"

    @property
    def is_admin(self) -> bool:
        return "adminToken" in self.security

    @property
    def is_user(self) -> bool:
        return self.security == frozenset({"tma"})

    @property
    def is_webhook(self) -> bool:
        return "telegramSecret" in self.security

    def response_schema(self, status: int) -> dict[str, Any] | None:
        item = self._operation()["responses"].get(str(status))
        content = resolve(item or {}).get("content", {}).get("application/json", {})
        schema = content.get("schema")
        return inline(schema) if schema is not None else None

    def _operation(self) -> dict[str, Any]:
        document = spec()
        paths = {**document.get("paths", {}), **document.get("x-planned-paths", {})}
        operation: dict[str, Any] = paths[self.route][self.method.lower()]
        return operation


@cache
def operations() -> tuple[Operation, ...]:
    """Every operation ``openapi.yaml`` documents (or plans) that app.py serves."""
    import app as application

    served = application.app.routes
    document = spec()
    found = []
    for section in ("paths", "x-planned-paths"):
        for route, item in document.get(section, {}).items():
            for method, operation in item.items():
                if method.upper() not in served.get(route, {}):
                    continue
                parameters = [resolve(p) for p in operation.get("parameters", [])]
                body = resolve(operation.get("requestBody", {})).get("content", {}).get("application/json", {})
                security = frozenset(name for entry in operation.get("security", []) for name in entry)
                found.append(
                    Operation(
                        method=method.upper(),
                        route=route,
                        security=security,
                        path_params=tuple((p["name"], inline(p["schema"])) for p in parameters if p["in"] == "path"),
                        query_params=tuple((p["name"], inline(p["schema"])) for p in parameters if p["in"] == "query"),
                        header_params=tuple(
                            (p["name"], inline(p["schema"])) for p in parameters if p["in"] == "header"
                        ),
                        body_schema=inline(body["schema"]) if "schema" in body else None,
                        responses=tuple(str(status) for status in operation.get("responses", {})),
                    )
                )
    return tuple(found)


def error_codes() -> frozenset[str]:
    return frozenset(resolve(spec()["components"]["schemas"]["ErrorCode"])["enum"])


def known(items: Sequence[T], fallback: T, *, latest: int | None = None) -> st.SearchStrategy[T]:
    """One of ``items`` (of the ``latest`` ones) as the list is when drawn, else ``fallback``.

    Hypothesis sees the same choice (an index) however long the list has
    grown, so strategies may refer to what earlier examples created without
    making data generation depend on external state.
    """

    def pick(index: int) -> T:
        if not items:
            return fallback
        return items[-1 - index % min(len(items), latest or len(items))]

    return st.integers(0, 2**16).map(pick)


def weighted(*options: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """``options`` drawn in proportion to their weights (``one_of`` gives each branch an equal share)."""
    branches = [strategy for weight, strategy in options for _ in range(weight)]
    return st.sampled_from(range(len(branches))).flatmap(lambda index: branches[index])


def fresh(make: Callable[[], T]) -> st.SearchStrategy[T]:
    """A new value each draw (a counter). It consumes a choice that means nothing: a strategy
    that consumes none is, to hypothesis, one example, which it soon stops generating."""
    return st.integers(0, 2**32).map(lambda _: make())


# ---------------------------------------------------------------------------
# Values from JSON schemas (the OpenAPI 3.0 subset the document uses)
# ---------------------------------------------------------------------------

# Text without lone surrogates (they cannot travel as UTF-8); surrogates are sent as JSON escapes instead.
TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=40)
NASTY_STRINGS = [
    "",
    " ",
    "\t\n",
    "\x00",
    "a\x00b",
    "\x1b[31m",
    "\u202etxet",
    "\u200b",
    "\ufeff",
    "null",
    "undefined",
    "../../etc/passwd",
    "%00",
    "%2e%2e%2f",
    "'; DROP TABLE users; --",
    "${jndi:ldap://127.0.0.1/a}",
    "{{7*7}}",
    "<script>alert(1)</script>",
    "🦊" * 3,
    "\uff21",  # fullwidth A
    "İ",
    "ß",
    "a" * 129,
    "0",
    "-1",
    "1e309",
    "NaN",
    "true",
    "#",
    "?",
    "/",
    "\\",
]


def nasty_text() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(NASTY_STRINGS), TEXT, st.text(max_size=3000).map(lambda s: s or "x"))


def json_values(max_leaves: int = 10) -> JsonStrategy:
    """Any JSON value."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        TEXT,
        st.sampled_from(NASTY_STRINGS),
    )
    return st.recursive(
        scalars,
        lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(TEXT, children, max_size=4)),
        max_leaves=max_leaves,
    )


def from_schema(schema: Mapping[str, Any], hints: Mapping[str, JsonStrategy] | None = None) -> JsonStrategy:
    """Values valid for ``schema``; ``hints`` replace the strategy of object properties by name."""
    hints = hints or {}
    schema = resolve(schema)
    if "enum" in schema:
        base: JsonStrategy = st.sampled_from(schema["enum"])
    else:
        kind = schema.get("type")
        if kind == "string":
            base = _string(schema)
        elif kind == "integer":
            base = st.integers(min_value=schema.get("minimum"), max_value=schema.get("maximum"))
        elif kind == "number":
            base = st.floats(schema.get("minimum"), schema.get("maximum"), allow_nan=False, allow_infinity=False)
        elif kind == "boolean":
            base = st.booleans()
        elif kind == "array":
            items = from_schema(schema.get("items", {}), hints)
            base = st.lists(items, min_size=schema.get("minItems", 0), max_size=min(schema.get("maxItems", 4), 4))
        elif kind == "object" or "properties" in schema:
            properties = schema.get("properties", {})
            required = set(schema.get("required", []))

            def member(name: str) -> JsonStrategy:
                return hints[name] if name in hints else from_schema(properties[name], hints)

            base = st.fixed_dictionaries(
                {name: member(name) for name in properties if name in required},
                optional={name: member(name) for name in properties if name not in required},
            )
        else:
            base = json_values()
    excluded = schema.get("not", {}).get("enum")
    if excluded:
        base = base.filter(lambda value: value not in excluded)
    if schema.get("nullable"):
        base = st.one_of(st.none(), base)
    return base


def _string(schema: Mapping[str, Any]) -> st.SearchStrategy[str]:
    if "pattern" in schema:
        return st.from_regex(schema["pattern"], fullmatch=True)
    if schema.get("format") == "uri":
        return image_urls()
    low = schema.get("minLength", 0)
    high = min(schema.get("maxLength", 60), 3000)
    alphabet = st.characters(blacklist_categories=["Cs"])
    short = st.text(alphabet, min_size=low, max_size=min(high, 60))
    return st.one_of(short, st.text(alphabet, min_size=max(low, high - 2), max_size=high)) if high > 60 else short


def broken(schema: Mapping[str, Any], valid: JsonStrategy) -> JsonStrategy:
    """Objects that break ``schema`` in one place: a wrong value, a missing or unknown field, a wrong top level."""
    schema = resolve(schema)
    properties = list(schema.get("properties", {}))
    required = list(schema.get("required", []))
    wrong: JsonStrategy = st.one_of(
        json_values(),
        st.sampled_from([None, True, False, 0, -1, 2**53 + 1, 10**30, 1.5, -0.0, "", " ", [], {}]),
        nasty_text(),
    )
    variants: list[JsonStrategy] = [json_values(), st.sampled_from([[], "text", 1, None, True])]
    if properties:
        variants.append(
            st.tuples(valid, st.sampled_from(properties), wrong).map(lambda t: {**_as_dict(t[0]), t[1]: t[2]})
        )
        variants.append(st.tuples(valid, TEXT, json_values(3)).map(lambda t: {**_as_dict(t[0]), t[1]: t[2]}))
    if required:
        variants.append(
            st.tuples(valid, st.sampled_from(required)).map(
                lambda t: {k: v for k, v in _as_dict(t[0]).items() if k != t[1]}
            )
        )
    return st.one_of(variants)


def _as_dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


# ---------------------------------------------------------------------------
# Field hints: values with a meaning in NanoGen
# ---------------------------------------------------------------------------


def model_ids() -> st.SearchStrategy[str]:
    from chalicelib import catalogue
    from chalicelib.config import load_settings

    return st.sampled_from([model.id for model in catalogue.models(load_settings({}))])


def aspect_ratios() -> st.SearchStrategy[str]:
    return st.sampled_from(["1:1", "16:9", "9:16", "4:3", "3:4", "21:9", "2:3", "3:2", "0:0", "1:0", "999:1", "1:1 "])


def image_urls() -> st.SearchStrategy[str]:
    """Public pictures, and every way of pointing the provider somewhere it must not go."""
    public = st.sampled_from(
        [
            "https://example.com/photo.jpg",
            "https://images.example.org/a/b.png?size=large",
            "https://xn--80ak6aa92e.com/p.png",
            "https://8.8.8.8/x.png",
        ]
    )
    hostile = st.sampled_from(
        [
            "http://example.com/photo.jpg",
            "https://127.0.0.1/x",
            "https://2130706433/x",
            "https://0x7f000001/x",
            "https://127.1/x",
            "https://[::1]/x",
            "https://[::ffff:127.0.0.1]/x",
            "https://[2002:7f00:1::]/x",
            "https://169.254.169.254/latest/meta-data/",
            "https://localhost/x",
            "https://metadata.google.internal/x",
            "https://user:pass@example.com/x",
            "https://example.com@127.0.0.1/x",
            "https://api.telegram.org/file/bot123456:ABCdefGhIJKlmNoPQRsTUVwxyZ123456789/photo.jpg",
            "https://example.com/%2Ffile%2Fbot123456:ABCdefGhIJKlmNoPQRsTUVwxyZ123456789",
            "https://exa mple.com/x",
            "https://exämple.com/x",
            "https://example.com:99999/x",
            "https://example.com:-1/x",
            "https://[::1/x",
            "https:///x",
            "file:///etc/passwd",
            "javascript:alert(1)",
            "data:image/png;base64,AAAA",
            "https://" + "a" * 64 + ".com/x",
            "https://example.com/" + "a" * 2100,
            "https://example.com\\@127.0.0.1/",
        ]
    )
    return st.one_of(public, hostile, nasty_text())


GENERATION_HINTS: dict[str, JsonStrategy] = {
    "model": weighted((6, model_ids()), (2, st.none()), (1, nasty_text())),
    "aspect_ratio": weighted((3, aspect_ratios()), (3, st.none())),
    "image_urls": weighted((6, st.none()), (1, st.just([])), (2, st.lists(image_urls(), max_size=5))),
    "prompt": weighted(
        (4, st.sampled_from(["a red fox in the snow", "a lighthouse, oil painting", "  padded  ", "x" * 2000])),
        (3, st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=80)),
        (1, nasty_text()),
    ),
}

CREDIT_HINTS: dict[str, JsonStrategy] = {
    "amount": weighted(
        (4, st.integers(-20, 50).filter(bool)),
        (1, st.integers(-1_000_000, 1_000_000).filter(bool)),
    ),
    "reason": weighted(
        (4, st.sampled_from(["goodwill", "refund for a bad picture", "test grant", "fraud"])),
        (1, st.text(st.characters(blacklist_categories=["Cs", "Cc"]), min_size=1, max_size=200)),
    ),
}
HINTS_BY_ROUTE = {"/api/generation": GENERATION_HINTS, "/api/admin/users/{user_id}/credits": CREDIT_HINTS}


# ---------------------------------------------------------------------------
# Bodies as bytes
# ---------------------------------------------------------------------------

RAW_BODIES = [
    b"",
    b" ",
    b"{",
    b"}",
    b"null",
    b"[]",
    b'"text"',
    b"{'prompt': 'single quotes'}",
    b'{"prompt": "a", "prompt": "b"}',
    b'{"amount": NaN, "reason": "x"}',
    b'{"amount": Infinity, "reason": "x"}',
    b'{"amount": -Infinity, "reason": "x"}',
    b'{"amount": 1e400, "reason": "x"}',
    b'{"amount": 1' + b"0" * 5000 + b', "reason": "x"}',
    b'{"prompt": "\\ud800"}',
    b'{"prompt": "\\udfff\\ud800"}',
    b'{"reason": "\\ud800", "amount": 1}',
    b'{"prompt": "a\\u0000b"}',
    b'{"update_id": 1, "update_id": 2}',
    b'{"update_id": 1.0}',
    b'{"update_id": "1"}',
    b'{"update_id": true}',
    b'{"update_id": -1}',
    b'{"update_id": 9007199254740993}',
    b"\xef\xbb\xbf{}",
    b"\xff\xfe{\x00}\x00",
    b"\x80\x81\x82",
    b'{"prompt": "\xc3\x28"}',
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 5000 + b"1" + b"}" * 5000,
    b"x" * 20_000,
    b'{"prompt": "' + b"a" * 17_000 + b'"}',
    b"prompt=a+fox&model=x",
    b"--boundary\r\nContent-Disposition: form-data; name=prompt\r\n\r\na\r\n--boundary--",
]


def encoded(value: JsonStrategy) -> st.SearchStrategy[bytes]:
    """JSON text of ``value``, ASCII-escaped or raw UTF-8."""
    return st.tuples(value, st.booleans()).map(
        lambda t: json.dumps(t[0], ensure_ascii=t[1]).encode("utf-8", "surrogatepass")
    )


def bodies_for(
    schema: Mapping[str, Any] | None, hints: Mapping[str, JsonStrategy] | None = None
) -> st.SearchStrategy[bytes]:
    if schema is None:
        return st.one_of(st.just(b""), st.sampled_from(RAW_BODIES), encoded(json_values()))
    valid = from_schema(schema, hints)
    return weighted(
        (6, encoded(valid)),
        (2, encoded(broken(schema, valid))),
        (1, st.sampled_from(RAW_BODIES)),
        (1, st.binary(max_size=64)),
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
    ascii_json = draw(st.booleans())
    user_json = json.dumps(user, separators=(",", ":"), ensure_ascii=ascii_json)
    fields = {
        "user": user_json,
        "auth_date": str(int(time.time()) - draw(st.sampled_from([0, 5, 3600, 80_000]))),
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
# Telegram updates
# ---------------------------------------------------------------------------

_update_ids = itertools.count(7_000_000)
_new_user_ids = itertools.count(5_000_000)  # users seen for the first time: registration writes their names
_new_charge_ids = itertools.count(1)
_idempotency_keys = itertools.count(1)
_message_ids = itertools.count(1)


def new_user_ids() -> st.SearchStrategy[int]:
    return fresh(lambda: next(_new_user_ids))


def telegram_user(user_ids: tuple[int, ...]) -> JsonStrategy:
    valid = st.builds(
        lambda user_id, name, lang: {
            "id": user_id,
            "is_bot": False,
            "first_name": telegram_text(name),
            "language_code": lang,
        },
        weighted((8, st.sampled_from(user_ids)), (2, new_user_ids())),
        weighted((4, st.just("Fuzz")), (3, TEXT), (2, st.sampled_from(SURROGATE_NAMES))),
        st.sampled_from(["en", "ru", "es"]),
    )
    odd = st.sampled_from(
        [
            {"id": 3001, "is_bot": True, "first_name": "Bot"},
            {"id": 3001, "first_name": "No is_bot"},
            {"id": "3001", "is_bot": False, "first_name": "String id"},
            {"id": 0, "is_bot": False, "first_name": "Zero"},
            {"id": 2**60, "is_bot": False, "first_name": "Huge"},
            {"is_bot": False, "first_name": "No id"},
        ]
    )
    return weighted((8, valid), (1, odd), (1, json_values(4)))


def command_texts() -> st.SearchStrategy[str]:
    commands = st.sampled_from(["/start", "/balance", "/help", "/buy", "/START", "/unknown", "/", "/start@NanoGenBot"])
    arguments = st.one_of(st.just(""), st.sampled_from([" ref_abc", " " + "x" * 65, " a b c", "\n", " 🦊"]), TEXT)
    return st.tuples(commands, arguments).map(lambda t: t[0] + t[1])


def message_texts() -> st.SearchStrategy[str | None]:
    return st.one_of(
        command_texts(),
        st.sampled_from(["a red fox in the snow", "  ", "x" * 2001, "\u0000", "a\x1bb", "🦊" * 10]),
        st.text(max_size=100),
        st.none(),
    )


def successful_payment() -> JsonStrategy:
    from chalicelib import catalogue

    packs = [(pack.payload, pack.stars) for pack in catalogue.PACKS]
    matching = st.sampled_from(packs).map(lambda p: {"invoice_payload": p[0], "total_amount": p[1], "currency": "XTR"})
    odd = st.fixed_dictionaries(
        {
            "invoice_payload": st.one_of(st.sampled_from([p for p, _ in packs]), TEXT, json_values(2)),
            "total_amount": st.one_of(st.sampled_from([s for _, s in packs]), st.integers(-5, 10_000), json_values(2)),
            "currency": st.sampled_from(["XTR", "USD", "", "xtr"]),
        }
    )
    charge = weighted(
        (6, st.sampled_from(CHARGE_IDS)),
        (2, fresh(lambda: f"fuzz-charge-new-{next(_new_charge_ids)}")),
        (1, st.sampled_from(["", "x" * 300, "charge\ud800"])),
        (1, TEXT),
        (1, json_values(2)),
    )
    provider = st.sampled_from(["p", "", "provider\udfff"])
    return st.tuples(weighted((2, matching), (1, odd)), charge, provider).map(
        lambda t: {
            **t[0],
            "telegram_payment_charge_id": telegram_text(t[1]),
            "provider_payment_charge_id": telegram_text(t[2]),
        }
    )


@st.composite
def telegram_message(draw: st.DrawFn, user_ids: tuple[int, ...]) -> Any:
    sender = draw(telegram_user(user_ids))
    chat_type = draw(st.sampled_from(["private", "private", "private", "group", "supergroup", "channel"]))
    sender_id = sender.get("id") if isinstance(sender, dict) else None
    chat_id = sender_id if chat_type == "private" and isinstance(sender_id, int) else -1001234567890
    message: dict[str, Any] = {
        "message_id": draw(weighted((8, st.just(next(_message_ids))), (1, st.integers(-1, 5)), (1, json_values(2)))),
        "date": int(time.time()),
        "from": sender,
        "chat": draw(weighted((9, st.just({"id": chat_id, "type": chat_type})), (1, json_values(3)))),
    }
    text = draw(message_texts())
    if text is not None:
        message["text"] = text
    if draw(st.integers(0, 3)) == 0:
        message["successful_payment"] = draw(successful_payment())
    if draw(st.integers(0, 9)) == 0:
        message.update(draw(st.dictionaries(TEXT, json_values(3), max_size=3)))
    return message


@st.composite
def pre_checkout_query(draw: st.DrawFn, user_ids: tuple[int, ...]) -> Any:
    from chalicelib import catalogue

    pack = draw(st.sampled_from(catalogue.PACKS))
    return {
        "id": draw(st.one_of(st.just("pcq-fuzz"), TEXT, json_values(2))),
        "from": draw(telegram_user(user_ids)),
        "currency": draw(st.sampled_from(["XTR", "XTR", "USD"])),
        "total_amount": draw(st.one_of(st.just(pack.stars), st.integers(-1, 1000))),
        "invoice_payload": draw(st.one_of(st.just(pack.payload), TEXT)),
    }


@st.composite
def telegram_updates(draw: st.DrawFn, user_ids: tuple[int, ...], seen_update_ids: Sequence[int]) -> Any:
    """A Telegram-like update: mostly well formed, sometimes not; update ids sometimes repeated."""
    update_id = draw(
        st.one_of(
            st.just(next(_update_ids)),
            st.just(next(_update_ids)),
            known(seen_update_ids, 0),
            st.sampled_from([0, -1, 2**53, 2**53 + 1, 2**64, 1.5, "1", None, True]),
        )
    )
    kind = draw(
        st.sampled_from(
            [
                "message",
                "message",
                "message",
                "edited_message",
                "channel_post",
                "edited_channel_post",
                "pre_checkout_query",
                "callback_query",
                "my_chat_member",
                "inline_query",
                "garbage",
            ]
        )
    )
    update: dict[str, Any] = {"update_id": update_id}
    if kind == "pre_checkout_query":
        update[kind] = draw(weighted((4, pre_checkout_query(user_ids)), (1, json_values(3))))
    elif kind == "garbage":
        update.update(draw(st.dictionaries(TEXT, json_values(4), max_size=4)))
    elif kind in ("callback_query", "inline_query", "my_chat_member"):
        update[kind] = {"id": "q", "from": draw(telegram_user(user_ids)), "data": draw(TEXT)}
    else:
        update[kind] = draw(weighted((8, telegram_message(user_ids)), (1, json_values(3))))
    if draw(st.integers(0, 19)) == 0:
        del update["update_id"]
    return update


def webhook_secrets() -> st.SearchStrategy[tuple[str, tuple[tuple[str, str], ...]]]:
    """``(kind, headers)``: ``ok`` with the right secret, ``bad`` otherwise."""
    right = st.sampled_from([SECRET_HEADER, SECRET_HEADER.lower(), SECRET_HEADER.upper()]).map(
        lambda name: ("ok", ((name, TEST_WEBHOOK_SECRET),))
    )
    wrong_value = st.one_of(
        st.sampled_from(
            [
                "",
                TEST_WEBHOOK_SECRET.upper(),
                TEST_WEBHOOK_SECRET[:-1],
                TEST_WEBHOOK_SECRET + "x",
                " " + TEST_WEBHOOK_SECRET,
            ]
        ),
        TEXT,
    ).filter(lambda value: value != TEST_WEBHOOK_SECRET)
    wrong = wrong_value.map(lambda value: ("bad", ((SECRET_HEADER, value),)))
    return weighted((8, right), (1, wrong), (1, st.just(("bad", ()))))


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


# ---------------------------------------------------------------------------
# The driver and its oracle
# ---------------------------------------------------------------------------


@dataclass
class Finding:
    kind: str
    signature: str
    detail: str
    reproduction: str
    count: int = 1


@dataclass
class World:
    """What the fuzzer has learnt so far, so later requests can refer to real things."""

    user_ids: tuple[int, ...] = (*FUZZ_USER_IDS, FUZZ_ADMIN_ID)
    generations: list[tuple[int, str]] = field(default_factory=list)
    starts: list[tuple[int, str, bytes, str]] = field(default_factory=list)  # user, key, body, generation id
    cursors: list[str] = field(default_factory=list)
    update_ids: list[int] = field(default_factory=list)


class OracleError(AssertionError):
    """A request broke the contract; the message says how and how to send it again."""


class Fuzzer:
    """Sends requests through the Chalice app and checks every answer against the contract.

    ``strict``: raise ``OracleError`` at the first broken rule (for pytest and
    hypothesis' shrinking); otherwise record it in ``findings`` and go on.
    """

    def __init__(self, client: Any, *, strict: bool) -> None:
        self.client = client
        self.strict = strict
        self.world = World()
        self.statuses: Counter[tuple[str, int]] = Counter()
        self.findings: dict[str, Finding] = {}
        self.journal: list[str] = []  # what happened since the books were last checked

    # -- reporting --------------------------------------------------------

    def problem(self, kind: str, signature: str, detail: str, request: Request | None) -> None:
        reproduction = request.reproduction() if request is not None else ""
        if self.strict:
            raise OracleError(f"{kind}: {detail}\nreproduce: {reproduction}")
        key = f"{kind}|{signature}"
        found = self.findings.get(key)
        if found is None:
            self.findings[key] = Finding(kind, signature, detail, reproduction)
            return
        found.count += 1
        if len(reproduction) < len(found.reproduction):  # keep the smallest example
            found.detail, found.reproduction = detail, reproduction

    # -- sending ------------------------------------------------------------

    def send(self, request: Request) -> tuple[int, Any]:
        operation = request.operation
        before = self._generation_status(request.replay)
        bot_calls = BOT_API_CALLS.total()
        response = self.client.http.request(
            operation.method, request.path, headers=dict(request.headers), body=request.body
        )
        status = int(response.status_code)
        self.statuses[(operation.label, status)] += 1
        self.journal.append(f"{request.reproduction()}  # -> {status}")
        if operation.is_webhook and status in (400, 401) and BOT_API_CALLS.total() != bot_calls:
            # CONTRACT §3: a refused update is not processed; a malformed one cannot be.
            self.problem("webhook_acted", f"{status}", f"{status} but the Bot API was called", request)
        body = self._check_shape(request, status, response)
        self._check_auth(request, status, body)
        self._check_replay(request, status, body, before)
        self._learn(request, status, body)
        return status, body

    def _check_shape(self, request: Request, status: int, response: Any) -> Any:
        label = request.operation.label
        headers = {str(k).lower(): v for k, v in response.headers.items()}
        try:
            body = json.loads(response.body)
        except ValueError:
            detail = f"{status} body is not JSON: {response.body[:200]!r}"
            self.problem("not_json", f"{label} {status}", detail, request)
            return None
        error = body.get("error") if isinstance(body, dict) else None
        code = error.get("code") if isinstance(error, dict) else None
        if status >= 500:
            self.problem("5xx", f"{label} {status} {code}", f"{status} {body}", request)
        if not str(headers.get("content-type", "")).startswith("application/json"):
            self.problem("content_type", f"{label} {status}", f"Content-Type {headers.get('content-type')!r}", request)
        if status >= 400:
            self._check_error_body(request, status, body, headers)
        if str(status) not in request.operation.responses:
            self.problem("undocumented_status", f"{label} {status} {code}", f"{status} {body}", request)
        elif 200 <= status < 300:
            self._check_schema(request, status, body)
        return body

    def _check_error_body(self, request: Request, status: int, body: Any, headers: Mapping[str, Any]) -> None:
        label = request.operation.label
        error = body.get("error") if isinstance(body, dict) else None
        keys_ok = isinstance(body, dict) and set(body) == {"error"} and isinstance(error, dict)
        if (
            not keys_ok
            or not {"code", "message"} <= set(error or {})
            or set(error or {})
            - {
                "code",
                "message",
                "request_id",
            }
        ):
            self.problem("error_shape", f"{label} {status}", f"{status} body {body!r}", request)
            return
        assert isinstance(error, dict)
        code, message = error.get("code"), error.get("message")
        if code not in error_codes() or code not in CODES_BY_STATUS.get(status, frozenset()):
            self.problem("error_code", f"{label} {status} {code}", f"{status} with code {code!r}", request)
        if not isinstance(message, str) or not message.strip() or "Traceback" in message:
            self.problem("error_message", f"{label} {status}", f"message {message!r}", request)
        if status == 429 and not str(headers.get("retry-after", "")).isdigit():
            self.problem("retry_after", f"{label} {code}", f"429 without a Retry-After: {dict(headers)}", request)

    def _check_schema(self, request: Request, status: int, body: Any) -> None:
        from openapi_schema_validator import OAS30Validator

        schema = request.operation.response_schema(status)
        if schema is None:
            return
        errors = sorted(OAS30Validator(schema).iter_errors(body), key=lambda e: list(e.path))
        if errors:
            where = "/".join(str(p) for p in errors[0].path)
            self.problem(
                "response_schema",
                f"{request.operation.label} {status} {where}",
                f"{status} body does not match openapi.yaml at '{where}': {errors[0].message[:300]}",
                request,
            )

    def _check_auth(self, request: Request, status: int, body: Any) -> None:
        """CONTRACT §3: refused credentials are 401/403, accepted ones never are."""
        operation, kind = request.operation, request.auth_kind
        if kind == "unchecked":
            return
        if operation.is_webhook:
            expected_refusal = {"ok": None, "bad": 401}[kind]
            accepted = kind == "ok"
            refusals = {401}
        elif operation.is_admin:
            expected_refusal = {
                "admin_token": None,
                "admin_user": None,
                "wrong_token": 403,
                "user": 403,
                "none": 401,
                "bad": 401,
            }[kind]
            accepted = expected_refusal is None
            refusals = {401, 403}
        elif operation.is_user:
            expected_refusal = None if kind in ("user", "admin_user") else 401
            accepted = expected_refusal is None
            refusals = {401}
        else:
            return
        label = operation.label
        if expected_refusal is not None and status != expected_refusal:
            detail = f"{kind} credentials got {status}, not {expected_refusal}"
            self.problem("auth", f"{label} {kind} -> {status}", detail, request)
        if accepted and status in refusals:
            self.problem("auth", f"{label} {kind} -> {status}", f"valid {kind} credentials refused: {body}", request)

    def _generation_status(self, replay: Replay | None) -> str | None:
        if replay is None:
            return None

        generation = queries.get_generation(replay.user_id, replay.generation_id)
        return None if generation is None else str(generation.status)

    def _check_replay(self, request: Request, status: int, body: Any, before: str | None) -> None:
        """CONTRACT §5: the same key and parameters return the earlier generation, uncharged."""
        if request.replay is None or before not in ("pending", "processing", "completed"):
            return
        if status in (401, 403):  # a user banned since: refused before the key is looked at
            return
        generation_id = body.get("generation", {}).get("id") if isinstance(body, dict) else None
        if status != 200 or generation_id != request.replay.generation_id:
            self.problem(
                "idempotency",
                f"replay of a {before} generation -> {status}",
                f"replay of {request.replay.generation_id} ({before}) got {status} {generation_id}",
                request,
            )

    def _learn(self, request: Request, status: int, body: Any) -> None:
        if not isinstance(body, dict):
            return
        label = request.operation.label
        if label == "POST /api/generation" and status == 202 and request.user_id is not None:
            generation_id = body.get("generation", {}).get("id")
            if isinstance(generation_id, str):
                self.world.generations.append((request.user_id, generation_id))
                key = dict(request.headers).get("Idempotency-Key")
                if key is not None:
                    self.world.starts.append((request.user_id, key, request.body, generation_id))
        if label == "GET /api/generation" and isinstance(body.get("next_cursor"), str):
            self.world.cursors.append(body["next_cursor"])
        if request.operation.is_webhook and status == 200:
            try:
                update_id = json.loads(request.body).get("update_id")
            except (ValueError, AttributeError):
                update_id = None
            if type(update_id) is int:
                self.world.update_ids.append(update_id)
        for bucket in (self.world.generations, self.world.starts, self.world.cursors, self.world.update_ids):
            del bucket[:-200]  # keep the lists (and hypothesis' choices) small

    # -- background work and the books --------------------------------------------

    def run_worker(self) -> int:
        """Hand what is queued to ``app.generation_worker`` and the dead-letter handler, as Lambda would."""
        import app as application
        from chalicelib import aws
        from chalicelib.runtime import ready
        from local.worker import run_batch

        settings = ready()
        sqs = aws.client("sqs")
        handled = 0
        for handler, queue_name, name in (
            (application.generation_worker, settings.generation_queue_name, "generation_worker"),
            (application.dead_letter_worker, settings.dead_letter_queue_name, "dead_letter_worker"),
        ):
            url = aws.queue_url(queue_name)
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            for _ in range(3):
                received = run_batch(handler, url, arn, name)
                handled += received
                if not received:
                    break
        return handled

    def time_passes(self) -> int:
        """The sweeper, as if GENERATION_TIMEOUT_SECONDS had passed: every unfinished generation fails, refunded."""
        from chalicelib import money
        from chalicelib.runtime import ready

        settings = ready()
        return len(money.sweep_expired(now=time.time() + settings.generation_timeout_seconds + 5))

    def check_books(self) -> list[str]:
        """CONTRACT §6 from the tables; a broken invariant comes with the steps since the last check."""
        from local.invariants import violations

        problems = violations()
        steps = "\n    ".join(self.journal[-40:])
        self.journal.clear()
        for problem in problems:
            if self.strict:
                raise OracleError(f"invariant broken: {problem}\nsteps since the last check:\n    {steps}")
            signature = re.sub(r"-?\d+", "N", problem)
            if f"invariant|{signature}" not in self.findings:
                self.findings[f"invariant|{signature}"] = Finding("invariant", signature, problem, steps)
            else:
                self.findings[f"invariant|{signature}"].count += 1
        return problems


# ---------------------------------------------------------------------------
# Wiring: a fake Bot API and the app(s) to send requests to
# ---------------------------------------------------------------------------


# Bot API calls answered by the fake, by method (the server answers in its own thread).
BOT_API_CALLS: Counter[str] = Counter()


def fake_bot_api_answer(request: Any) -> Any:
    """Every Bot API method answers ``{"ok": true, "result": ...}``, as Telegram does."""
    from werkzeug import Response

    method = request.path.rsplit("/", 1)[-1]
    BOT_API_CALLS[method] += 1
    if method.startswith("send"):
        result: Any = {"message_id": 1, "date": int(time.time()), "chat": {"id": 1, "type": "private"}}
    elif method == "getWebhookInfo":
        result = {"url": "", "pending_update_count": 0}
    else:
        result = True
    return Response(json.dumps({"ok": True, "result": result}), content_type="application/json")


def install_fake_bot_api(server: Any) -> str:
    """Make ``server`` (a pytest-httpserver) play the Bot API; returns the TELEGRAM_API_BASE to use."""
    server.expect_request(re.compile(r"/.*")).respond_with_handler(fake_bot_api_answer)
    return str(server.url_for("/")).rstrip("/")


def fuzz_environment(telegram_api_base: str) -> dict[str, str]:
    """Variables on top of the test environment (tests/conftest.py)."""
    return {"TELEGRAM_API_BASE": telegram_api_base, "ADMIN_USER_IDS": str(FUZZ_ADMIN_ID)}


def app_client() -> Any:
    """``chalice.test.Client`` over app.py's app: the routing, content types and error handling Lambda sees."""
    from chalice.test import Client

    import app as application

    return Client(application.app)


def mixed_steps(world: World) -> st.SearchStrategy[tuple[str, Request | None]]:
    """What happens next: a request, an update, the worker running, or time passing."""
    return weighted(
        (6, api_requests(world).map(lambda r: ("request", r))),
        (3, webhook_requests(world).map(lambda r: ("request", r))),
        (2, st.just(("worker", None))),
        (1, st.just(("time_passes", None))),
    )


def perform(fuzzer: Fuzzer, step: tuple[str, Request | None]) -> None:
    kind, request = step
    if kind == "worker":
        fuzzer.journal.append(f"# the worker ran {fuzzer.run_worker()} queued jobs")
    elif kind == "time_passes":
        fuzzer.journal.append(f"# the sweeper, after the timeout, failed {fuzzer.time_passes()} generations")
    else:
        assert request is not None
        fuzzer.send(request)
