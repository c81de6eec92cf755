"""Mini App authentication through the real routes (CONTRACT §3, §4 401, §4 404).

Every refused request must be a 401 ``unauthorized`` *and* change nothing:
no user registered, no credit moved, no generation started or cancelled,
no guard (rate-limit slot, idempotency key) taken. The signature algorithm
itself is proven against Telegram's reference vectors in
``tests/unit/test_auth.py``; here we prove that every route is behind it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest

from chalicelib.auth import MAX_INIT_DATA_BYTES, sign_init_data
from tests.api_helpers import (
    ALICE,
    BOB,
    MALLORY,
    Reply,
    assert_error,
    call,
    configure,
    get,
    init_data,
    post,
    register,
    start,
    tma,
)
from tests.conftest import TEST_BOT_TOKEN
from tests.probes import balance, ledger, snapshot, stored_generation, users_snapshot

pytestmark = pytest.mark.usefixtures("aws")

OTHER_BOT_TOKEN = "5151515151:AnotherBotsTokenNotOursAtAll_0123456"
DAY = 86_400


def _replace_field(raw: str, name: str, value: str) -> str:
    """Re-encode initData with one field changed and the original hash kept."""
    return urlencode([(key, value if key == name else old) for key, old in parse_qsl(raw)])


def _bad_headers(user: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Every way CONTRACT §3 says a caller claiming to be ``user`` must be refused."""
    now = int(time.time())
    # Signed at ``now`` itself: a second read of the clock could fall in the next second, and then the
    # "tampered" auth_date (now + 1) would be the signed one, accepted.
    good = init_data(user, auth_date=now)
    other_user = json.dumps({**user, "id": MALLORY["id"] if user["id"] != MALLORY["id"] else BOB["id"]})
    forged_hash = "0" * 64 if not good.endswith("0" * 64) else "1" * 64
    return {
        "missing header": {},
        "empty header": {"Authorization": ""},
        "wrong scheme (Bearer)": {"Authorization": f"Bearer {good}"},
        "wrong scheme (Basic)": {"Authorization": f"Basic {good}"},
        "scheme without credentials": {"Authorization": "tma"},
        "raw initData without scheme": {"Authorization": good},
        "forged hash": {"Authorization": f"tma {_replace_field(good, 'hash', forged_hash)}"},
        "no hash": {"Authorization": "tma " + urlencode([(k, v) for k, v in parse_qsl(good) if k != "hash"])},
        "tampered user": {"Authorization": f"tma {_replace_field(good, 'user', other_user)}"},
        "tampered auth_date": {"Authorization": f"tma {_replace_field(good, 'auth_date', str(now + 1))}"},
        "another bot's token": tma(user, token=OTHER_BOT_TOKEN),
        "expired auth_date": tma(user, auth_date=now - DAY - 120),
        "future auth_date": tma(user, auth_date=now + 3600),
        "duplicated user key": {"Authorization": f"tma {good}&user={json.dumps(MALLORY)}"},
        "duplicated hash key": {"Authorization": f"tma {good}&hash={'0' * 64}"},
        "oversized header": {
            "Authorization": "tma "
            + sign_init_data(user, TEST_BOT_TOKEN, auth_date=now, extra={"padding": "x" * MAX_INIT_DATA_BYTES})
        },
    }


def _user_routes(generation_id: str) -> list[tuple[str, str, bytes]]:
    """Every route that takes initData, with a body that would be accepted."""
    body = json.dumps({"prompt": "a lighthouse at dusk"}).encode()
    return [
        ("GET", "/api/user/me", b""),
        ("POST", "/api/generation", body),
        ("GET", "/api/generation", b""),
        ("GET", f"/api/generation/{generation_id}", b""),
        ("POST", f"/api/generation/{generation_id}/cancel", b""),
    ]


def _alice_with_a_pending_generation() -> str:
    register(ALICE)
    reply = start(ALICE)
    assert reply.status == 202, reply.body
    generation_id: str = reply.body["generation"]["id"]
    return generation_id


@pytest.mark.parametrize("claimed", [ALICE, MALLORY], ids=["existing user", "unknown user"])
def test_every_user_route_refuses_bad_credentials_with_401_and_touches_nothing(claimed: dict[str, Any]) -> None:
    """Whether the forger claims an existing user (to spend or cancel) or a new one (to register)."""
    generation_id = _alice_with_a_pending_generation()
    tables_before, users_before = snapshot(), users_snapshot()

    refused = 0
    for attack, headers in _bad_headers(claimed).items():
        for method, path, body in _user_routes(generation_id):
            reply = call(method, path, headers={**headers, "Idempotency-Key": "k-1"}, raw_body=body)
            assert (reply.status, reply.code) == (401, "unauthorized"), f"{attack}: {method} {path} -> {reply}"
            assert_error(reply, 401, "unauthorized")
            refused += 1

    assert refused == len(_bad_headers(claimed)) * 5
    assert snapshot() == tables_before
    assert users_snapshot() == users_before
    assert balance(MALLORY["id"]) is None  # never registered
    assert stored_generation(ALICE["id"], generation_id).status == "pending"
    assert balance(ALICE["id"]) == 9
    # The same requests with good credentials are accepted: the refusals above were about credentials.
    assert get("/api/user/me", claimed).status == 200


def test_initdata_is_accepted_as_telegram_sends_it_within_the_configured_age(monkeypatch: pytest.MonkeyPatch) -> None:
    # Telegram also signs query_id, chat_type, signature...: they are part of the check, not a problem.
    extra = {"query_id": "AAHdF6IQAAAAAN0XohDhrOrc", "chat_type": "private", "signature": "TYJxVcisqbWj-_x"}
    header = {"Authorization": "tma " + sign_init_data(ALICE, TEST_BOT_TOKEN, auth_date=int(time.time()), extra=extra)}
    reply = call("GET", "/api/user/me", headers=header)
    assert reply.status == 200 and reply.body["id"] == ALICE["id"]

    configure(monkeypatch, INIT_DATA_MAX_AGE_SECONDS="600")
    now = int(time.time())
    assert_error(get("/api/user/me", headers=tma(BOB, auth_date=now - 700)), 401, "unauthorized")
    assert balance(BOB["id"]) is None
    assert get("/api/user/me", headers=tma(BOB, auth_date=now - 500)).status == 200
    assert balance(BOB["id"]) == 10


def _as(user: dict[str, Any]) -> Callable[[str, str], Reply]:
    def request(method: str, path: str) -> Reply:
        return call(method, path, headers=tma(user))

    return request


def test_another_users_generation_is_not_found_and_no_parameter_chooses_the_user() -> None:
    alice_generation = _alice_with_a_pending_generation()
    register(BOB)
    bob = _as(BOB)

    assert_error(bob("GET", f"/api/generation/{alice_generation}"), 404, "not_found")
    assert_error(bob("POST", f"/api/generation/{alice_generation}/cancel"), 404, "not_found")
    # Not found is indistinguishable from "never existed": same status, same code, same message.
    never = "01JZZZZZZZZZZZZZZZZZZZZZZZ"
    assert bob("GET", f"/api/generation/{never}").body == bob("GET", f"/api/generation/{alice_generation}").body
    assert bob("GET", "/api/generation").body["items"] == []

    assert stored_generation(ALICE["id"], alice_generation).status == "pending"
    assert balance(ALICE["id"]) == 9 and balance(BOB["id"]) == 10
    assert ledger(BOB["id"]) == [(10, "welcome")]
    # Nothing in a body or query string chooses the user: a body field naming Alice is refused as
    # unknown, query parameters naming her are ignored.
    assert_error(start(BOB, user_id=ALICE["id"]), 400, "invalid_request")
    history = get(f"/api/generation?user_id={ALICE['id']}&user={ALICE['id']}", BOB)
    assert history.status == 200 and history.body == {"items": [], "next_cursor": None}
    assert get(f"/api/user/me?user_id={ALICE['id']}", BOB).body["id"] == BOB["id"]
    assert balance(ALICE["id"]) == 9 and balance(BOB["id"]) == 10

    # Alice can still see and cancel it: the 404s were about ownership.
    assert _as(ALICE)("GET", f"/api/generation/{alice_generation}").status == 200
    assert post(f"/api/generation/{alice_generation}/cancel", ALICE).status == 200
    assert balance(ALICE["id"]) == 10
