"""The operator's API through the real routes (CONTRACT §3 admin, §4, §5 admin rows).

Operators authenticate with ``Bearer <ADMIN_API_TOKEN>`` or with the initData
of a user in ``ADMIN_USER_IDS``. Each test reads the tables back: a refused
credit change must leave the balance and the ledger as they were.
"""

from __future__ import annotations

import io
import json
import time
from typing import Any

import pytest

from chalicelib import money
from chalicelib.observability import logger
from tests.api_helpers import (
    ALICE,
    BOB,
    MALLORY,
    PRO_MODEL,
    USER_FIELDS,
    Reply,
    assert_error,
    bearer,
    call,
    complete_with_picture,
    configure,
    fail,
    get,
    post,
    register,
    start,
    tma,
)
from tests.conftest import TEST_ADMIN_TOKEN
from tests.faults import Faults
from tests.probes import balance, ledger, snapshot, stored_user, users_snapshot

pytestmark = pytest.mark.usefixtures("aws")

LEDGER_FIELDS = {"id", "delta", "reason", "generation_id", "payment_charge_id", "note", "created_at"}
UNKNOWN_USER = 424242


def admin(method: str, path: str, body: Any = None, *, headers: dict[str, str] | None = None) -> Reply:
    return call(method, path, headers=bearer() if headers is None else headers, json_body=body)


def credits(user_id: int | str, amount: Any, reason: Any = "support", **kwargs: Any) -> Reply:
    return admin("POST", f"/api/admin/users/{user_id}/credits", {"amount": amount, "reason": reason}, **kwargs)


def _admin_routes(user_id: int | str) -> list[tuple[str, str, Any]]:
    return [
        ("GET", f"/api/admin/users/{user_id}", None),
        ("POST", f"/api/admin/users/{user_id}/credits", {"amount": 5, "reason": "goodwill"}),
        ("POST", f"/api/admin/users/{user_id}/ban", None),
        ("POST", f"/api/admin/users/{user_id}/unban", None),
        ("GET", "/api/admin/stats", None),
    ]


# --- who may call ------------------------------------------------------------------------------


def test_admin_routes_refuse_missing_credentials_401_and_wrong_ones_403(monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, ADMIN_USER_IDS=str(BOB["id"]))
    register(ALICE)
    before, users_before = snapshot(), users_snapshot()
    now = int(time.time())
    signed = tma(BOB)["Authorization"]
    forged = signed[:-1] + ("1" if signed[-1] == "0" else "0")  # the hash's last hex digit, always changed
    refusals = {
        "no header": ({}, 401, "unauthorized"),
        "unknown scheme": ({"Authorization": f"Basic {TEST_ADMIN_TOKEN}"}, 401, "unauthorized"),
        "Bearer without token": ({"Authorization": "Bearer"}, 401, "unauthorized"),
        "forged initData of the admin": (
            {"Authorization": forged},
            401,
            "unauthorized",
        ),
        "expired initData of the admin": (tma(BOB, auth_date=now - 2 * 86_400), 401, "unauthorized"),
        "wrong token": (bearer("not-the-admin-token"), 403, "forbidden"),
        "token with a suffix": (bearer(TEST_ADMIN_TOKEN + "x"), 403, "forbidden"),
        "token prefix": (bearer(TEST_ADMIN_TOKEN[:-1]), 403, "forbidden"),
        "initData of a user who is not an admin": (tma(ALICE), 403, "forbidden"),
        "initData as a bearer token": (bearer(tma(BOB)["Authorization"].removeprefix("tma ")), 403, "forbidden"),
    }
    for case, (headers, status, code) in refusals.items():
        for method, path, body in _admin_routes(ALICE["id"]):
            reply = admin(method, path, body, headers=headers)
            assert (reply.status, reply.code) == (status, code), f"{case}: {method} {path} -> {reply}"
            assert_error(reply, status, code)
    # The admin token is not a Mini App credential either.
    assert_error(call("GET", "/api/user/me", headers=bearer()), 401, "unauthorized")
    assert_error(call("GET", "/api/user/me", headers={"Authorization": f"tma {TEST_ADMIN_TOKEN}"}), 401, "unauthorized")

    # Without ADMIN_API_TOKEN no bearer token is an admin's, not even the old one.
    monkeypatch.delenv("ADMIN_API_TOKEN")
    configure(monkeypatch)
    for token in (TEST_ADMIN_TOKEN, "None", "null"):
        assert_error(credits(ALICE["id"], 5, headers=bearer(token)), 403, "forbidden")

    assert snapshot() == before and users_snapshot() == users_before
    assert balance(ALICE["id"]) == 10 and not stored_user(ALICE["id"]).banned


def test_admin_by_token_or_by_initdata_of_a_listed_user(monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, ADMIN_USER_IDS=f"{BOB['id']}, 777")
    register(ALICE)
    by_token = credits(ALICE["id"], 5, "refund for a bad picture")
    by_bob = credits(ALICE["id"], 2, "birthday", headers=tma(BOB))
    assert by_token.status == 200 and by_bob.status == 200 and by_bob.body["credits"] == 17
    notes = [entry["note"] for entry in get_detail(ALICE["id"])["ledger"][:2]]
    assert notes == [f"admin:init_data:{BOB['id']}: birthday", "admin:token: refund for a bad picture"]
    # Bob's own Mini App calls are unaffected by his being an admin.
    assert get("/api/user/me", BOB).body["credits"] == 10

    # In a warm Lambda the logger outlives the request: who was admin must not stick to the next one.
    written = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", written)
    assert_error(get("/api/generation/01JZZZZZZZZZZZZZZZZZZZZZZZ", ALICE), 404, "not_found")
    lines = [json.loads(line) for line in written.getvalue().splitlines() if line.startswith("{")]
    refused = [line for line in lines if line.get("message") == "request refused"]
    assert refused, lines
    for line in refused:
        assert line.get("user_id") == ALICE["id"]
        assert not {"admin", "admin_user_id"} & set(line), line


# --- GET /api/admin/users/{id} -----------------------------------------------------------------------


def get_detail(user_id: int) -> dict[str, Any]:
    reply = admin("GET", f"/api/admin/users/{user_id}")
    assert reply.status == 200, reply.body
    body: dict[str, Any] = reply.body
    return body


def test_user_detail_shows_the_user_and_the_latest_ledger_entries_newest_first() -> None:
    register(ALICE)
    generation = start(ALICE).body["generation"]
    assert credits(ALICE["id"], 3, "goodwill").status == 200

    detail = get_detail(ALICE["id"])
    assert set(detail) == {"user", "ledger"}
    assert set(detail["user"]) == USER_FIELDS
    me = get("/api/user/me", ALICE).body
    assert detail["user"] == {key: value for key, value in me.items() if key != "referral"}
    assert detail["user"]["credits"] == 12
    assert all(set(entry) == LEDGER_FIELDS for entry in detail["ledger"])
    assert [(e["delta"], e["reason"]) for e in detail["ledger"]] == [(3, "admin"), (-1, "generation"), (10, "welcome")]
    assert detail["ledger"][1]["generation_id"] == generation["id"]
    assert detail["ledger"][0]["note"] == "admin:token: goodwill"

    for n in range(25):
        money.change_credits(ALICE["id"], 1, note=f"bulk {n}")
    latest = get_detail(ALICE["id"])["ledger"]
    assert [entry["note"] for entry in latest] == [f"bulk {n}" for n in range(24, 4, -1)]


def test_the_mini_apps_admin_probe_reads_nothing_for_a_user_and_two_items_for_an_admin(
    monkeypatch: pytest.MonkeyPatch, faults: Faults
) -> None:
    # The Mini App learns whether to show the operator's tab by asking for the caller's own user.
    configure(monkeypatch, ADMIN_USER_IDS=str(BOB["id"]))
    register(ALICE)
    register(BOB)
    faults.calls.clear()

    assert_error(get(f"/api/admin/users/{ALICE['id']}", ALICE), 403, "forbidden")
    assert faults.calls == []  # refused by the admin check, before any DynamoDB read

    reply = get(f"/api/admin/users/{BOB['id']}", BOB)
    assert reply.status == 200 and reply.body["user"]["id"] == BOB["id"]
    assert sorted(call.operation for call in faults.calls) == ["GetItem", "Query"]
    faults.calls.clear()
    assert get("/api/admin/stats", BOB).status == 200
    assert {call.operation for call in faults.calls} == {"Scan"}  # what the probe used to cost: whole tables


BAD_CREDIT_CHANGES: list[Any] = [
    {"amount": 0, "reason": "nothing"},
    {"amount": "5", "reason": "a string"},
    {"amount": 1.5, "reason": "a fraction"},
    {"amount": 5.0, "reason": "a float"},
    {"amount": True, "reason": "a boolean"},
    {"amount": None, "reason": "null"},
    {"amount": 10**7, "reason": "too much"},
    {"reason": "no amount"},
    {"amount": 5},
    {"amount": 5, "reason": ""},
    {"amount": 5, "reason": "x" * 201},
    {"amount": 5, "reason": "ok", "user_id": BOB["id"]},
    [5, "list"],
]


def test_unknown_user_is_404_and_malformed_requests_are_400_changing_nothing() -> None:
    register(ALICE)
    before = snapshot()
    for method, path, body in _admin_routes(UNKNOWN_USER)[:4]:
        assert_error(admin(method, path, body), 404, "not_found")
    for bad_id in ("abc", "0", "-5", "1.5", "1e3", str(2**53 + 1), "12345678901234567"):
        for method, path, body in _admin_routes(bad_id)[:4]:
            reply = admin(method, path, body)
            assert (reply.status, reply.code) == (400, "invalid_request"), f"{bad_id}: {method} {path} -> {reply}"
    for body in BAD_CREDIT_CHANGES:
        reply = admin("POST", f"/api/admin/users/{ALICE['id']}/credits", body)
        assert (reply.status, reply.code) == (400, "invalid_request"), f"{body!r} -> {reply}"
    for raw in (b"", b"{", b'{"amount": 5, "amount": 6, "reason": "dup"}'):
        reply = call("POST", f"/api/admin/users/{ALICE['id']}/credits", headers=bearer(), raw_body=raw)
        assert_error(reply, 400, "invalid_request")
    assert snapshot() == before
    assert balance(UNKNOWN_USER) is None and balance(ALICE["id"]) == 10


# --- credits ---------------------------------------------------------------------------------------------


def test_grant_and_remove_credits_never_below_zero() -> None:
    register(ALICE)
    granted = credits(ALICE["id"], 15, "compensation")
    assert granted.status == 200 and set(granted.body) == USER_FIELDS and granted.body["credits"] == 25

    removed = credits(ALICE["id"], -20, "chargeback")
    assert removed.status == 200 and removed.body["credits"] == 5

    too_much = credits(ALICE["id"], -6, "chargeback")
    assert_error(too_much, 409, "conflict")
    assert "5" in too_much.body["error"]["message"]
    assert balance(ALICE["id"]) == 5

    assert credits(ALICE["id"], -5, "chargeback").body["credits"] == 0
    assert ledger(ALICE["id"]) == [(-20, "admin"), (-5, "admin"), (10, "welcome"), (15, "admin")]


# --- credits with an Idempotency-Key: a retry after an unknown outcome is applied once -----------------


def keyed(key: str) -> dict[str, str]:
    return {**bearer(), "Idempotency-Key": key}


UNKNOWN_OUTCOMES: dict[str, Any] = {
    "a 500 after the write was applied": lambda faults: faults.server_error(
        "TransactWriteItems", after_apply=True, times=None
    ),
    "every answer lost (read timeouts)": lambda faults: faults.lose_response("TransactWriteItems", times=None),
}


@pytest.mark.parametrize("outcome", list(UNKNOWN_OUTCOMES))
# The debit leaves less than itself: its retry fails the balance's condition too, and must still replay.
@pytest.mark.parametrize(("amount", "after"), [(5, 15), (-8, 2)], ids=["credit", "debit"])
def test_a_change_retried_with_its_key_after_an_unknown_outcome_is_applied_once(
    faults: Faults, outcome: str, amount: int, after: int
) -> None:
    """Review 5: the change was applied, every answer lost; the 503 asks for the same request with the
    same key, and that retry answers the user as it is, with one ledger entry, not a second change."""
    register(ALICE)  # 10 welcome credits
    failing = UNKNOWN_OUTCOMES[outcome](faults)

    first = credits(ALICE["id"], amount, "goodwill for ticket 17", headers=keyed("ticket-17"))

    assert_error(first, 503, "temporarily_unavailable")
    assert first.headers["retry-after"] == "2"
    assert "will not be applied twice" in first.body["error"]["message"]
    assert failing.fired > 0
    faults.clear()
    assert balance(ALICE["id"]) == after  # it was applied

    for _ in range(2):  # the retry the answer asked for, and one more
        retried = credits(ALICE["id"], amount, "goodwill for ticket 17", headers=keyed("ticket-17"))
        assert retried.status == 200, retried.body
        assert set(retried.body) == USER_FIELDS and retried.body["credits"] == after

    assert balance(ALICE["id"]) == after
    assert ledger(ALICE["id"]) == sorted([(10, "welcome"), (amount, "admin")])


def test_a_key_whose_first_request_was_not_applied_applies_its_retry(faults: Faults) -> None:
    """A 5xx before the write: nothing was recorded, so the retry with the key is the change."""
    register(ALICE)
    faults.server_error("TransactWriteItems", times=None)
    assert_error(credits(ALICE["id"], 5, "goodwill", headers=keyed("k-1")), 503, "temporarily_unavailable")
    faults.clear()
    assert balance(ALICE["id"]) == 10

    assert credits(ALICE["id"], 5, "goodwill", headers=keyed("k-1")).body["credits"] == 15
    assert ledger(ALICE["id"]) == [(5, "admin"), (10, "welcome")]


def test_a_key_is_free_again_once_its_record_has_expired_even_before_dynamodb_deletes_it() -> None:
    register(ALICE)
    now = time.time()
    change = {"note": "goodwill", "idempotency_key": "k-1", "fingerprint": "f"}
    money.change_credits(int(ALICE["id"]), 5, **change, now=now)
    money.change_credits(int(ALICE["id"]), 5, **change, now=now + money.IDEMPOTENCY_TTL_SECONDS - 1)
    assert balance(ALICE["id"]) == 15  # within its time: a replay
    money.change_credits(int(ALICE["id"]), 5, **change, now=now + money.IDEMPOTENCY_TTL_SECONDS + 1)
    assert balance(ALICE["id"]) == 20 and ledger(ALICE["id"]) == [(5, "admin"), (5, "admin"), (10, "welcome")]


def test_the_same_key_with_another_amount_or_reason_is_422_and_changes_nothing() -> None:
    register(ALICE)
    assert credits(ALICE["id"], 5, "goodwill", headers=keyed("k-1")).body["credits"] == 15
    before = snapshot()

    for amount, reason in ((6, "goodwill"), (5, "goodwill!"), (-5, "goodwill")):
        reply = credits(ALICE["id"], amount, reason, headers=keyed("k-1"))
        assert_error(reply, 422, "idempotency_key_reused")

    assert snapshot() == before
    assert balance(ALICE["id"]) == 15 and ledger(ALICE["id"]) == [(5, "admin"), (10, "welcome")]
    # The key is the operator's for this user: the same key on another user is that user's change.
    register(BOB)
    assert credits(BOB["id"], 6, "goodwill", headers=keyed("k-1")).body["credits"] == 16


def test_a_refused_debit_retried_with_its_key_is_refused_again_and_changes_nothing() -> None:
    register(ALICE)
    before = snapshot()

    for _ in range(2):
        assert_error(credits(ALICE["id"], -11, "chargeback", headers=keyed("k-409")), 409, "conflict")

    assert snapshot() == before  # no record: the refused attempt wrote nothing
    assert balance(ALICE["id"]) == 10
    assert_error(credits(UNKNOWN_USER, 5, "nobody", headers=keyed("k-404")), 404, "not_found")
    assert snapshot() == before


@pytest.mark.parametrize("key", ["", " leading", "trailing ", "x" * 129, "ключ", "tab\there"])
def test_a_malformed_idempotency_key_is_400_and_changes_nothing(key: str) -> None:
    register(ALICE)
    before = snapshot()

    assert_error(credits(ALICE["id"], 5, "goodwill", headers=keyed(key)), 400, "invalid_request")

    assert snapshot() == before and balance(ALICE["id"]) == 10


def test_without_a_key_an_unknown_outcome_does_not_promise_that_a_retry_is_safe(faults: Faults) -> None:
    """Without a key a retry is a new change: the 503 sends the operator to the ledger first."""
    register(ALICE)
    faults.server_error("TransactWriteItems", after_apply=True, times=None)

    reply = credits(ALICE["id"], 5, "goodwill for ticket 17")

    assert_error(reply, 503, "temporarily_unavailable")
    assert reply.headers["retry-after"] == "2"
    message = reply.body["error"]["message"]
    assert "ledger" in message and "Idempotency-Key" in message, message
    assert "will not be applied twice" not in message and "same request" not in message, message


def test_a_key_adds_no_round_trip_and_its_replay_reads_only_the_user(faults: Faults) -> None:
    """First request: the guard's put rides in the change's transaction. Replay: that transaction,
    cancelled by the guard (which comes back in the cancellation, so it is not read), and the user."""
    register(ALICE)
    register(BOB)
    faults.calls.clear()

    assert credits(ALICE["id"], 5, "goodwill").status == 200
    without_key = [call.operation for call in faults.calls]
    faults.calls.clear()
    assert credits(BOB["id"], 5, "goodwill", headers=keyed("k-1")).status == 200
    with_key = [(call.operation, len(call.params.get("TransactItems", []))) for call in faults.calls]
    faults.calls.clear()
    assert credits(BOB["id"], 5, "goodwill", headers=keyed("k-1")).status == 200
    replay = [call.operation for call in faults.calls]

    assert without_key == ["TransactWriteItems", "GetItem"]
    assert with_key == [("TransactWriteItems", 3), ("GetItem", 0)]  # user, ledger, guard
    assert replay == ["TransactWriteItems", "GetItem"]
    assert balance(BOB["id"]) == 15


def test_the_books_check_finds_a_key_recorded_without_its_change() -> None:
    from chalicelib.tables import AdminCreditRecord
    from local.invariants import violations

    register(ALICE)
    assert credits(ALICE["id"], 5, "goodwill", headers=keyed("k-1")).status == 200
    assert violations() == []
    orphan = AdminCreditRecord(
        pk=AdminCreditRecord.key(ALICE["id"], "k-2"), fingerprint="f", entry_id="01NOSUCHENTRY", expires_at=2**31
    )
    orphan.save()

    assert violations() == [f"admin credit key {orphan.pk} names no admin ledger entry 01NOSUCHENTRY"]
    orphan.delete()


# --- ban -----------------------------------------------------------------------------------------------


def test_a_ban_meeting_a_transaction_conflict_is_retried_and_a_lasting_one_answers_503(faults: Faults) -> None:
    """Issue 12 #8: ``TransactionConflictException`` on a plain conditional write escaped as a 500."""
    register(ALICE)
    conflicting = faults.conflict("UpdateItem", table="users", times=2)

    banned = admin("POST", f"/api/admin/users/{ALICE['id']}/ban")

    assert banned.status == 200 and banned.body["banned"] is True, banned.body
    assert conflicting.fired == 2
    faults.clear()
    lasting = faults.conflict("UpdateItem", table="users", times=None)

    unbanned = admin("POST", f"/api/admin/users/{ALICE['id']}/unban")

    assert_error(unbanned, 503, "temporarily_unavailable")
    assert unbanned.headers["retry-after"] == "2"
    assert lasting.fired == 6  # conditional_update's own attempts (botocore does not retry a conflict)
    faults.clear()
    assert stored_user(ALICE["id"]).banned  # nothing was changed


def test_banned_user_cannot_generate_until_unbanned() -> None:
    register(ALICE)
    pending = start(ALICE).body["generation"]

    banned = admin("POST", f"/api/admin/users/{ALICE['id']}/ban")
    assert banned.status == 200 and banned.body["banned"] is True and set(banned.body) == USER_FIELDS
    assert admin("POST", f"/api/admin/users/{ALICE['id']}/ban").body["banned"] is True  # idempotent

    before = snapshot()
    assert_error(start(ALICE, "another picture"), 403, "user_banned")
    assert_error(start(ALICE, "with a key", key="k1"), 403, "user_banned")
    assert snapshot() == before and balance(ALICE["id"]) == 9
    assert get("/api/user/me", ALICE).body["banned"] is True
    # What was already bought stays visible, and may still be cancelled (and refunded).
    assert get(f"/api/generation/{pending['id']}", ALICE).status == 200
    assert post(f"/api/generation/{pending['id']}/cancel", ALICE).status == 200
    assert balance(ALICE["id"]) == 10

    unbanned = admin("POST", f"/api/admin/users/{ALICE['id']}/unban")
    assert unbanned.status == 200 and unbanned.body["banned"] is False
    assert start(ALICE, "another picture").status == 202
    assert balance(ALICE["id"]) == 9


# --- stats -------------------------------------------------------------------------------------------


def test_stats_count_users_generations_and_credits_exactly() -> None:
    empty = admin("GET", "/api/admin/stats")
    assert empty.status == 200
    assert empty.body == {
        "users": 0,
        "generations": {"pending": 0, "processing": 0, "completed": 0, "failed": 0, "cancelled": 0},
        "credits": {
            "granted": 0,
            "removed": 0,
            "spent": 0,
            "refunded": 0,
            "purchased": 0,
            "welcome": 0,
            "promo": 0,
            "referral": 0,
        },
    }

    register(ALICE)
    register(BOB)
    completed = start(ALICE).body["generation"]
    complete_with_picture(ALICE["id"], completed["id"], "results/a.png")
    cancelled = start(ALICE, model=PRO_MODEL).body["generation"]
    assert post(f"/api/generation/{cancelled['id']}/cancel", ALICE).status == 200
    failed = start(BOB).body["generation"]
    fail(BOB["id"], failed["id"])
    start(BOB, "stays pending")
    processing = start(BOB, "is being drawn").body["generation"]
    assert money.claim_generation(BOB["id"], processing["id"], lease_seconds=60).generation is not None
    assert credits(BOB["id"], 5).status == 200
    assert credits(ALICE["id"], -2).status == 200
    assert_error(start(MALLORY, model="no/such-model"), 400, "invalid_request")  # not a user, not a generation

    stats = admin("GET", "/api/admin/stats")
    assert stats.status == 200
    assert stats.body == {
        "users": 2,
        "generations": {"pending": 1, "processing": 1, "completed": 1, "failed": 1, "cancelled": 1},
        # spent: 1 + 4 + 1 + 1 + 1; refunded: the cancelled 4 and the failed 1;
        # the operators granted 5 and removed 2.
        "credits": {
            "granted": 5,
            "removed": 2,
            "spent": 8,
            "refunded": 5,
            "purchased": 0,
            "welcome": 20,
            "promo": 0,
            "referral": 0,
        },
    }
    # The same numbers follow from the balances: 20 + 3 - 8 + 5 = 20.
    assert int(stored_user(ALICE["id"]).credits) + int(stored_user(BOB["id"]).credits) == 20
