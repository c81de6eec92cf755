"""What the fuzz strategies share: constants, the OpenAPI document, JSON values and bodies, the World."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import yaml
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
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


@dataclass
class World:
    """What the fuzzer has learnt so far, so later requests can refer to real things."""

    user_ids: tuple[int, ...] = (*FUZZ_USER_IDS, FUZZ_ADMIN_ID)
    generations: list[tuple[int, str]] = field(default_factory=list)
    starts: list[tuple[int, str, bytes, str]] = field(default_factory=list)  # user, key, body, generation id
    cursors: list[str] = field(default_factory=list)
    update_ids: list[int] = field(default_factory=list)


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
