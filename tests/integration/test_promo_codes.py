"""Promo codes: the operator creates them, users redeem them once each, never past ``max_uses`` (CONTRACT §6.6)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from pytest_httpserver import HTTPServer

from chalicelib import money, records
from chalicelib.errors import AlreadyRedeemed, PromoExhausted
from chalicelib.runtime import ready
from chalicelib.tables import LedgerEntry, PromoCode
from tests.api_helpers import ALICE, BOB, Reply, assert_error, bearer, call, get, post, register
from tests.faults import Faults
from tests.growth_helpers import create_promo, race
from tests.probes import balance, snapshot
from tests.telegram_helpers import FakeTelegram, deliver, start_fake_telegram, stop_fake_telegram, text_update


def redeem(user: dict, code: str) -> Reply:
    return post("/api/promo/redeem", user, json_body={"code": code})


# --- the operator's side ------------------------------------------------------


@pytest.mark.usefixtures("aws")
def test_admin_creates_a_code_and_reads_it_back_case_insensitively() -> None:
    reply = create_promo("Spring-25", credits=25, max_uses=5, expires_at="2031-01-01T00:00:00+02:00")
    assert reply.status == 201, reply.body
    expected = {"code": "SPRING-25", "credits": 25, "max_uses": 5, "uses": 0, "expires_at": "2030-12-31T22:00:00.000Z"}
    assert reply.body == expected
    again = call("GET", "/api/admin/promo-codes/spring-25", headers=bearer())
    assert (again.status, again.body) == (200, expected)


@pytest.mark.usefixtures("aws")
def test_creating_an_existing_code_in_any_case_is_a_conflict_and_changes_nothing() -> None:
    assert create_promo("SPRING-25", credits=25).status == 201
    assert_error(create_promo("spring-25", credits=99), 409, "conflict")
    assert int(PromoCode.get(PromoCode.key("SPRING-25")).credits) == 25


@pytest.mark.usefixtures("aws")
@pytest.mark.parametrize(
    "body",
    [
        {"code": "abc", "credits": 1, "max_uses": 1},  # too short
        {"code": "x" * 33, "credits": 1, "max_uses": 1},  # too long
        {"code": "no spaces", "credits": 1, "max_uses": 1},
        {"code": "ÄBCD", "credits": 1, "max_uses": 1},
        {"code": "GOOD", "credits": 0, "max_uses": 1},
        {"code": "GOOD", "credits": 100_001, "max_uses": 1},
        {"code": "GOOD", "credits": True, "max_uses": 1},
        {"code": "GOOD", "credits": 1, "max_uses": 0},
        {"code": "GOOD", "credits": 1, "max_uses": 1_000_001},
        {"code": "GOOD", "credits": 1, "max_uses": 1.5},
        {"code": "GOOD", "credits": 1, "max_uses": 1, "expires_at": "next tuesday"},
        {"code": "GOOD", "credits": 1, "max_uses": 1, "expires_at": 1767225600},
        {"code": "GOOD", "credits": 1, "max_uses": 1, "owner": "me"},
        {"credits": 1, "max_uses": 1},
    ],
)
def test_invalid_codes_are_refused_and_nothing_is_stored(body: dict) -> None:
    before = snapshot()
    assert_error(call("POST", "/api/admin/promo-codes", headers=bearer(), json_body=body), 400, "invalid_request")
    assert snapshot() == before
    assert list(PromoCode.scan()) == []


@pytest.mark.usefixtures("aws")
def test_a_code_whose_write_timed_out_is_a_500_with_a_request_id_and_a_retry_stores_it_once(faults: Faults) -> None:
    body = {"code": "SLOW", "credits": 2, "max_uses": 3}
    faults.time_out("PutItem", table="growth", times=None)  # every attempt, before DynamoDB applied it
    reply = call("POST", "/api/admin/promo-codes", headers=bearer(), json_body=body)
    assert_error(reply, 500, "internal_error")  # an unexpected failure: a 500 with the request id to quote
    assert reply.body["error"]["request_id"] == reply.headers["x-request-id"]
    faults.clear()
    assert call("POST", "/api/admin/promo-codes", headers=bearer(), json_body=body).status == 201
    assert [promo.code for promo in PromoCode.scan()] == ["SLOW"]


@pytest.mark.usefixtures("aws")
def test_a_code_whose_answer_was_lost_is_created_not_a_conflict_with_itself(faults: Faults) -> None:
    # botocore's retry of the applied put failed its own condition: the operator was told their new code
    # "already exists". Another operator's code of that name is still a conflict.
    lost = faults.lose_response("PutItem", table="growth", times=1)
    reply = create_promo("LOST-ANSWER", credits=3, max_uses=2)
    assert lost.fired == 1
    assert reply.status == 201, reply.body
    assert reply.body == {"code": "LOST-ANSWER", "credits": 3, "max_uses": 2, "uses": 0, "expires_at": None}
    assert_error(create_promo("LOST-ANSWER", credits=3, max_uses=2), 409, "conflict")
    assert [promo.code for promo in PromoCode.scan()] == ["LOST-ANSWER"]


@pytest.mark.usefixtures("aws")
def test_promo_admin_routes_need_an_admin() -> None:
    assert_error(
        call("POST", "/api/admin/promo-codes", json_body={"code": "GOOD", "credits": 1, "max_uses": 1}),
        401,
        "unauthorized",
    )
    assert_error(
        post("/api/admin/promo-codes", ALICE, json_body={"code": "GOOD", "credits": 1, "max_uses": 1}), 403, "forbidden"
    )
    assert_error(
        call("GET", "/api/admin/promo-codes/GOOD", headers=bearer("wrong-token-wrong-token-wrong-token")),
        403,
        "forbidden",
    )
    assert_error(call("GET", "/api/admin/promo-codes/NOPE", headers=bearer()), 404, "not_found")


# --- redeeming ----------------------------------------------------------------


@pytest.mark.usefixtures("aws")
def test_a_user_redeems_a_code_once_with_its_ledger_entry() -> None:
    create_promo("SPRING-25", credits=25)
    reply = redeem(ALICE, "spring-25")
    assert (reply.status, reply.body) == (200, {"granted": 25, "credits": 35})  # 10 welcome + 25
    promo = [(int(e.delta), e.reason, e.promo_code) for e in LedgerEntry.query(ALICE["id"]) if e.reason == "promo"]
    assert promo == [(25, "promo", "SPRING-25")]
    assert_error(redeem(ALICE, "SPRING-25"), 409, "already_redeemed")
    assert balance(ALICE["id"]) == 35
    assert call("GET", "/api/admin/promo-codes/SPRING-25", headers=bearer()).body["uses"] == 1


@pytest.mark.usefixtures("aws")
def test_unknown_expired_and_exhausted_codes_grant_nothing() -> None:
    create_promo("ONCE", credits=5, max_uses=1)
    create_promo("OLD-CODE", credits=5, expires_at="2020-01-01T00:00:00Z")
    register(BOB)
    assert redeem(ALICE, "ONCE").status == 200
    before = snapshot()
    assert_error(redeem(BOB, "ONCE"), 409, "promo_exhausted")
    assert_error(redeem(BOB, "OLD-CODE"), 404, "not_found")
    assert_error(redeem(BOB, "NO-SUCH-CODE"), 404, "not_found")
    assert_error(redeem(BOB, "a b"), 404, "not_found")
    assert snapshot() == before
    assert balance(BOB["id"]) == 10


@pytest.mark.usefixtures("aws")
def test_a_banned_user_cannot_redeem_and_bad_bodies_are_400() -> None:
    create_promo("SPRING-25")
    register(BOB)
    records.set_banned(BOB["id"], True)
    assert_error(redeem(BOB, "SPRING-25"), 403, "user_banned")
    assert_error(post("/api/promo/redeem", ALICE, json_body={"code": 12345}), 400, "invalid_request")
    assert_error(post("/api/promo/redeem", ALICE, json_body={}), 400, "invalid_request")
    assert_error(
        post("/api/promo/redeem", ALICE, json_body={"code": "SPRING-25", "user_id": 1}), 400, "invalid_request"
    )
    assert_error(call("POST", "/api/promo/redeem", json_body={"code": "SPRING-25"}), 401, "unauthorized")
    assert get("/api/admin/promo-codes/SPRING-25", headers=bearer()).body["uses"] == 0


# --- the bot ------------------------------------------------------------------


@pytest.fixture
def fake_telegram(aws: None, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTelegram]:
    yield start_fake_telegram(httpserver, monkeypatch)
    stop_fake_telegram()


def test_promo_command_redeems_and_explains_every_refusal(fake_telegram: FakeTelegram) -> None:
    create_promo("SPRING-25", credits=25, max_uses=1)
    for text in ("/promo", "/promo spring-25", "/promo SPRING-25", "/promo NOPE"):
        assert deliver(text_update(text)).status_code == 200
    deliver(text_update("/promo spring-25", user_id=BOB["id"]))
    assert fake_telegram.texts() == [
        "Send the code after the command, for example: /promo SPRING",
        "Code accepted: 25 credits added. Your balance: 35 credits.",
        "You have already used this code.",
        "There is no such code, or it has expired.",
        "This code has been used up.",
    ]
    assert balance(ALICE["id"]) == 35 and balance(BOB["id"]) == 10


def test_a_redelivered_promo_update_grants_once(fake_telegram: FakeTelegram) -> None:
    create_promo("SPRING-25", credits=25)
    update = text_update("/promo SPRING-25")
    for _ in range(3):
        assert deliver(update).status_code == 200
    assert balance(ALICE["id"]) == 35
    assert len(fake_telegram.texts()) == 1


def test_a_promo_reply_that_telegram_failed_is_not_redone_as_already_used(fake_telegram: FakeTelegram) -> None:
    create_promo("SPRING-25", credits=25)
    fake_telegram.refuse_next("sendMessage", 502, "Bad Gateway")
    update = text_update("/promo SPRING-25")

    assert deliver(update).status_code == 200  # granted: the update is done, not handed back to Telegram
    assert deliver(update).status_code == 200  # Telegram's re-send (if any) changes nothing
    assert balance(ALICE["id"]) == 35
    # One reply, tried once and lost; no "you have already used this code" follows the grant.
    assert fake_telegram.texts() == ["Code accepted: 25 credits added. Your balance: 35 credits."]


# --- races, on the serialized emulator ------------------------------------------------


@pytest.mark.emulator
@pytest.mark.usefixtures("emulator")
def test_fifty_users_racing_for_a_five_use_code_get_exactly_five_grants() -> None:
    settings = ready()
    records.create_promo_code("RACE-5", credits=7, max_uses=5, expires_at=None, created_by="test")
    users = [money.Profile(user_id=5000 + index, first_name=f"U{index}") for index in range(50)]
    for profile in users:
        money.register(profile, settings)
    results = race(50, lambda index: money.redeem_promo_code(users[index], "race-5", settings))
    assert Counter(type(result).__name__ for result in results) == Counter({"Redeemed": 5, "PromoExhausted": 45})
    assert int(PromoCode.get(PromoCode.key("RACE-5")).uses) == 5
    granted = [e for p in users for e in LedgerEntry.query(p.user_id) if e.reason == "promo"]
    assert len(granted) == 5 and sum(int(e.delta) for e in granted) == 35


@pytest.mark.emulator
@pytest.mark.usefixtures("emulator")
def test_one_user_redeeming_ten_times_at_once_is_granted_once() -> None:
    settings = ready()
    records.create_promo_code("TEN-TIMES", credits=3, max_uses=100, expires_at=None, created_by="test")
    alice = money.Profile(user_id=ALICE["id"], first_name="Alice")
    money.register(alice, settings)
    results = race(10, lambda _: money.redeem_promo_code(alice, "TEN-TIMES", settings))
    assert sum(isinstance(result, money.Redeemed) for result in results) == 1
    assert all(isinstance(result, (money.Redeemed, AlreadyRedeemed)) for result in results), results
    assert not any(isinstance(result, PromoExhausted) for result in results)
    assert int(PromoCode.get(PromoCode.key("TEN-TIMES")).uses) == 1
    user = money.get_user(ALICE["id"])
    assert user is not None and int(user.credits) == 13
