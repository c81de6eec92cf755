"""Telegram Stars: pre-checkout, crediting exactly once, and the operator's refund."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from chalicelib import catalogue, i18n, money, queries, records, telegram
from chalicelib.errors import TelegramError
from chalicelib.model import Profile
from chalicelib.runtime import ready
from chalicelib.tables import LedgerEntry, Payment
from tests.fakes.telegram import FakeTelegram
from tests.faults import Call, Faults
from tests.probes import balance
from tests.telegram_helpers import (
    ALICE_ID,
    BOB_ID,
    admin_refund,
    handled,
    payment_update,
    pre_checkout_update,
    start_fake_telegram,
    stop_fake_telegram,
)

PACK = catalogue.PACKS[0]
ALERT_CHAT_ID = "-100777"


@pytest.fixture
def fake_telegram(aws: None, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTelegram]:
    monkeypatch.setenv("ALERT_CHAT_ID", ALERT_CHAT_ID)
    yield start_fake_telegram(httpserver, monkeypatch)
    stop_fake_telegram()


def paid(charge_id: str = "charge-1", user_id: int = ALICE_ID) -> None:
    handled(payment_update(charge_id, PACK.payload, PACK.stars, user_id=user_id))


def purchases_of(user_id: int) -> list[tuple[int, str]]:
    return [
        (int(entry.delta), entry.reason)
        for entry in LedgerEntry.query(user_id)
        if entry.reason in ("purchase", "purchase_refund")
    ]


# --- pre-checkout ---------------------------------------------------------------


def test_pre_checkout_accepts_only_a_known_pack_at_its_price_for_a_user_not_banned(
    fake_telegram: FakeTelegram,
) -> None:
    money.register(Profile(user_id=BOB_ID, first_name="Bob"), ready())
    records.set_banned(BOB_ID, True)
    cases = {
        "good": pre_checkout_update(PACK.payload, PACK.stars, query_id="good"),
        "unknown": pre_checkout_update("nanogen:pack_1000000", PACK.stars, query_id="unknown"),
        "amount": pre_checkout_update(PACK.payload, PACK.stars - 1, query_id="amount"),
        "currency": pre_checkout_update(PACK.payload, PACK.stars, currency="USD", query_id="currency"),
        "banned": pre_checkout_update(PACK.payload, PACK.stars, user_id=BOB_ID, query_id="banned"),
    }

    for update in cases.values():
        handled(update)

    answers = {answer["pre_checkout_query_id"]: answer for answer in fake_telegram.sent("answerPreCheckoutQuery")}
    assert answers["good"] == {"pre_checkout_query_id": "good", "ok": True}
    assert answers["unknown"]["ok"] is False and "no longer available" in answers["unknown"]["error_message"]
    assert answers["amount"]["ok"] is False and "price" in answers["amount"]["error_message"]
    assert answers["currency"]["ok"] is False and "price" in answers["currency"]["error_message"]
    assert answers["banned"] == {
        "pre_checkout_query_id": "banned",
        "ok": False,
        "error_message": i18n.t("en", "account-banned"),
    }
    assert fake_telegram.methods() == ["answerPreCheckoutQuery"] * 5
    assert list(Payment.scan()) == []


# --- successful_payment -------------------------------------------------------------------


def test_a_payment_is_credited_once_even_when_its_message_arrives_twice(fake_telegram: FakeTelegram) -> None:
    first = payment_update("charge-1", PACK.payload, PACK.stars)

    handled(first)
    handled(first)  # the same update again
    handled({**first, "update_id": first["update_id"] + 1})  # the same payment under another update id

    assert balance(ALICE_ID) == 10 + PACK.credits  # welcome credits, then the pack once
    assert purchases_of(ALICE_ID) == [(PACK.credits, "purchase")]
    payment = Payment.get("charge-1")
    assert (int(payment.user_id), payment.pack_id, int(payment.credits), int(payment.stars), payment.status) == (
        ALICE_ID,
        PACK.id,
        PACK.credits,
        PACK.stars,
        "credited",
    )
    assert payment.provider_charge_id == "provider-charge-1"
    [confirmation] = fake_telegram.sent("sendMessage")
    assert confirmation["chat_id"] == ALICE_ID
    assert f"{PACK.credits} credits added" in confirmation["text"]
    assert f"Your balance: {10 + PACK.credits} credits." in confirmation["text"]


def test_a_payment_that_matches_no_pack_is_not_credited_and_the_operator_is_alerted(
    fake_telegram: FakeTelegram,
) -> None:
    handled(payment_update("charge-unknown", "nanogen:pack_bogus", PACK.stars))
    handled(payment_update("charge-cheap", PACK.payload, 1))
    handled(payment_update("charge-usd", PACK.payload, PACK.stars, currency="USD"))

    assert list(Payment.scan()) == []
    assert queries.get_user(ALICE_ID) is None
    alerts = fake_telegram.sent("sendMessage")
    assert [alert["chat_id"] for alert in alerts] == [ALERT_CHAT_ID] * 3  # the operator, never the user
    assert "charge-unknown" in alerts[0]["text"] and "not credited" in alerts[0]["text"]


def test_an_amount_that_is_not_an_integer_is_refused_at_pre_checkout_and_never_credited(
    fake_telegram: FakeTelegram,
) -> None:
    # 50.0 == 50 and True == 1 in Python: only an int is an amount of Stars.
    for index, amount in enumerate((float(PACK.stars), str(PACK.stars), True)):
        query = pre_checkout_update(PACK.payload, PACK.stars, query_id=f"q{index}")
        query["pre_checkout_query"]["total_amount"] = amount
        handled(query)
        payment = payment_update(f"charge-{index}", PACK.payload, PACK.stars)
        payment["message"]["successful_payment"]["total_amount"] = amount
        handled(payment)

    assert list(Payment.scan()) == [] and queries.get_user(ALICE_ID) is None
    alerts = fake_telegram.sent("sendMessage")
    assert [alert["chat_id"] for alert in alerts] == [ALERT_CHAT_ID] * 3  # the operator, never the user
    assert all("not credited" in alert["text"] for alert in alerts)
    answers = fake_telegram.sent("answerPreCheckoutQuery")
    assert [(answer["ok"], answer.get("error_message")) for answer in answers] == [
        (False, i18n.t("en", "pre-checkout-wrong-price"))
    ] * 3


# --- the operator's refund ------------------------------------------------------------------


def test_a_refund_is_refused_without_admin_rights_for_spent_credits_and_for_unknown_payments(
    fake_telegram: FakeTelegram,
) -> None:
    paid()
    money.change_credits(ALICE_ID, -15, note="spent on pictures")  # 5 of the pack's 10 credits left

    assert admin_refund("charge-1", token=None).status_code == 401
    assert admin_refund("charge-1", token="not-the-admin-token").status_code == 403
    spent = admin_refund("charge-1")
    assert spent.status_code == 409 and "spent" in spent.json_body["error"]["message"]
    assert admin_refund("no-such-charge").status_code == 404
    assert admin_refund("bad%20id").status_code == 404

    assert fake_telegram.sent("refundStarPayment") == []
    assert balance(ALICE_ID) == 5
    assert Payment.get("charge-1").status == "credited"


def test_telegram_refusing_the_refund_restores_the_credits_and_a_later_refund_goes_through(
    fake_telegram: FakeTelegram,
) -> None:
    paid()
    fake_telegram.refuse_next("refundStarPayment", 400, "Bad Request: CHARGE_NOT_FOUND")

    refused = admin_refund("charge-1")

    assert refused.status_code == 409
    assert "CHARGE_NOT_FOUND" in refused.json_body["error"]["message"]
    assert balance(ALICE_ID) == 10 + PACK.credits
    assert Payment.get("charge-1").status == "credited"

    response = admin_refund("charge-1")

    assert response.status_code == 200, response.body
    assert (
        fake_telegram.sent("refundStarPayment") == [{"user_id": ALICE_ID, "telegram_payment_charge_id": "charge-1"}] * 2
    )
    body = response.json_body
    assert body["payment"]["charge_id"] == "charge-1" and body["payment"]["status"] == "refunded"
    assert body["user"]["id"] == ALICE_ID and body["user"]["credits"] == 10
    assert balance(ALICE_ID) == 10
    assert purchases_of(ALICE_ID) == [
        (PACK.credits, "purchase"),
        (-PACK.credits, "purchase_refund"),
        (PACK.credits, "purchase"),  # restored after the refusal
        (-PACK.credits, "purchase_refund"),
    ]

    again = admin_refund("charge-1")
    assert again.status_code == 409 and again.json_body["error"]["code"] == "conflict"
    assert len(fake_telegram.sent("refundStarPayment")) == 2


def test_stars_already_refunded_by_telegram_leave_the_credits_taken(fake_telegram: FakeTelegram) -> None:
    paid()
    # An earlier refund went through but its answer never came back (a timeout).
    fake_telegram.refuse_next("refundStarPayment", 400, "Bad Request: CHARGE_ALREADY_REFUNDED")

    response = admin_refund("charge-1")

    assert response.status_code == 200
    assert response.json_body["payment"]["status"] == "refunded"
    assert balance(ALICE_ID) == 10


def test_a_refund_telegram_does_not_answer_keeps_the_credits_taken_until_a_retry(fake_telegram: FakeTelegram) -> None:
    paid()
    fake_telegram.refuse_next("refundStarPayment", 502, "Bad Gateway")  # the Stars may have been returned

    unknown = admin_refund("charge-1")

    assert unknown.status_code == 409 and "call this again" in unknown.json_body["error"]["message"]
    assert balance(ALICE_ID) == 10  # the pack's credits stay removed: no Stars-and-credits
    assert queries.get_payment("charge-1").status == "refunding"  # type: ignore[union-attr]

    retried = admin_refund("charge-1")

    assert retried.status_code == 200 and retried.json_body["payment"]["status"] == "refunded"
    assert balance(ALICE_ID) == 10
    assert len(fake_telegram.sent("refundStarPayment")) == 2


def _takes_over(call: Call) -> bool:
    """money._take_over_refund's UpdateItem: a new hold on the payment, its status left as it is."""
    names = set(call.params.get("ExpressionAttributeNames", {}).values())
    return (
        "refund_attempt_until" in names
        and "SET" in str(call.params.get("UpdateExpression", ""))
        and ("REMOVE" not in str(call.params.get("UpdateExpression", "")))
    )


@pytest.mark.parametrize("every_answer", [False, True], ids=["retry-refused-by-itself", "every-answer-lost"])
def test_a_retried_refund_whose_take_over_lost_its_answer_goes_through(
    fake_telegram: FakeTelegram, faults: Faults, every_answer: bool
) -> None:
    # The retry takes over the refunding payment and its update is applied, its answer lost. botocore's
    # retry failed its own condition and the attempt read its own hold as "another refund in progress"
    # (a 409); with every answer lost it was a 503, then 409s for a minute.
    paid()
    fake_telegram.refuse_next("refundStarPayment", 502, "Bad Gateway")
    assert admin_refund("charge-1").status_code == 409
    lost = faults.lose_response("UpdateItem", table="payments", where=_takes_over, times=None if every_answer else 1)

    retried = admin_refund("charge-1")

    assert lost.fired >= 1
    faults.clear()
    assert retried.status_code == 200, retried.json_body
    assert retried.json_body["payment"]["status"] == "refunded"
    assert balance(ALICE_ID) == 10 and len(fake_telegram.sent("refundStarPayment")) == 2


# --- overlapping refunds (issue 12 #1) -----------------------------------------------------------


def _during_the_telegram_call(monkeypatch: pytest.MonkeyPatch, meanwhile: Callable[[], Any]) -> list[str]:
    """Run ``meanwhile`` while Telegram handles the first refundStarPayment; returns every call's charge id.

    A refund Telegram receives while it is still handling one for the same
    charge is refused with a 400.
    """
    calls: list[str] = []
    in_flight: list[bool] = []
    real = telegram.BotApi.refund_star_payment

    def refund(self: telegram.BotApi, user_id: int, charge_id: str) -> bool:
        calls.append(charge_id)
        if in_flight:
            raise TelegramError("Bad Request: CHARGE_REFUND_IN_PROGRESS", error_code=400)
        if len(calls) == 1:
            in_flight.append(True)
            meanwhile()
            in_flight.clear()
        return real(self, user_id, charge_id)

    monkeypatch.setattr(telegram.BotApi, "refund_star_payment", refund)
    return calls


def test_two_overlapping_refunds_call_telegram_once_and_never_leave_both_stars_and_credits(
    fake_telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    paid()
    overlapping: list[Any] = []
    calls = _during_the_telegram_call(monkeypatch, lambda: overlapping.append(admin_refund("charge-1")))

    first = admin_refund("charge-1")

    [second] = overlapping
    assert second.status_code == 409 and second.json_body["error"]["code"] == "conflict"
    assert "in progress" in second.json_body["error"]["message"] and int(second.headers["Retry-After"]) > 0
    assert calls == ["charge-1"]  # the second refund never reached Telegram
    assert first.status_code == 200, first.body
    assert first.json_body["payment"]["status"] == "refunded"
    # Stars returned once and the pack's credits taken, once.
    assert len(fake_telegram.sent("refundStarPayment")) == 1
    assert balance(ALICE_ID) == 10
    assert purchases_of(ALICE_ID) == [(PACK.credits, "purchase"), (-PACK.credits, "purchase_refund")]


def test_a_confirm_that_finds_the_payment_overtaken_alerts_the_operator_instead_of_answering_200(
    fake_telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    paid()

    # The first attempt's hold ran out while Telegram answered (it never should: the hold outlives
    # the Lambda), and another attempt took the payment over, a second after the hold's end. (Counted
    # from a clock read before the refund, the takeover came too early when the refund's hold was
    # taken in the next second.)
    def take_over() -> Any:
        held = queries.get_payment("charge-1")
        assert held is not None and held.refund_attempt_until is not None
        return money.take_back_purchase("charge-1", attempt="other", now=int(held.refund_attempt_until) + 1)

    _during_the_telegram_call(monkeypatch, take_over)

    response = admin_refund("charge-1")

    assert response.status_code == 500 and "operator was alerted" in response.json_body["error"]["message"]
    [alert] = fake_telegram.texts_to(ALERT_CHAT_ID)
    assert "charge-1" in alert and "another refund attempt" in alert
    payment = queries.get_payment("charge-1")
    assert payment is not None and payment.status == "refunding" and payment.refund_attempt == "other"
    assert balance(ALICE_ID) == 10  # the credits stay taken: never both


def test_a_take_back_whose_every_answer_is_lost_is_read_back_and_the_refund_goes_on(
    fake_telegram: FakeTelegram, faults: Faults
) -> None:
    """OutcomeUnknown is not "nothing happened": the payment says whether this attempt took the credits."""
    paid()
    lost = faults.server_error("TransactWriteItems", table="payments", after_apply=True, times=None)

    response = admin_refund("charge-1")

    assert lost.fired == 4 * 6  # every attempt applied once (by its token) and answered 500
    faults.clear()
    assert response.status_code == 200, response.body
    assert response.json_body["payment"]["status"] == "refunded"
    assert len(fake_telegram.sent("refundStarPayment")) == 1
    assert balance(ALICE_ID) == 10
