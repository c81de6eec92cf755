"""The Telegram webhook: only Telegram gets in, and each update is acted on exactly once.

Updates go through the route (``chalice.test.Client`` on app.py) against moto, with a local server
playing the Bot API at TELEGRAM_API_BASE; the race test uses the serialized
emulator and threads. Shared helpers live in ``tests/telegram_helpers.py``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from chalice.app import Request
from pytest_httpserver import HTTPServer

from chalicelib import catalogue, config, money, queries, telegram
from chalicelib.errors import UpdateInProgress
from chalicelib.handlers import webhook
from chalicelib.runtime import ready
from chalicelib.tables import LedgerEntry, ProcessedUpdate, User
from tests.conftest import TEST_BOT_TOKEN, TEST_WEBHOOK_SECRET
from tests.fakes.telegram import FakeTelegram
from tests.faults import Call, Faults
from tests.probes import balance, charges_of, generations_of, processed, queued_jobs
from tests.telegram_helpers import (
    ALICE_ID,
    BOB_ID,
    deliver,
    message,
    next_update_id,
    start_fake_telegram,
    stop_fake_telegram,
    text_update,
)

# --------------------------------------------------------------------------
# Only Telegram gets in
# --------------------------------------------------------------------------


FORGED_SECRETS = ["", "wrong-secret", TEST_WEBHOOK_SECRET.upper(), TEST_WEBHOOK_SECRET[:-1], TEST_WEBHOOK_SECRET + "x"]


def test_missing_or_forged_secret_is_refused_and_nothing_is_processed(
    fake_telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    update = text_update("/start")

    for secret in [None, *FORGED_SECRETS]:
        response = deliver(update, secret=secret)
        assert response.status_code == 401, secret
        assert response.json_body["error"]["code"] == "unauthorized"

    assert fake_telegram.calls == []
    assert queries.get_user(ALICE_ID) is None
    assert processed(update["update_id"]) is None
    assert deliver(update).status_code == 200  # the same update with the right secret is handled

    # Without TELEGRAM_WEBHOOK_SECRET configured, nobody gets in.
    monkeypatch.delenv("TELEGRAM_WEBHOOK_SECRET")
    config.reset_settings()
    ready()
    for secret in (TEST_WEBHOOK_SECRET, "", None):
        assert deliver(text_update("/start", user_id=BOB_ID), secret=secret).status_code == 401
    assert queries.get_user(BOB_ID) is None
    assert len(fake_telegram.calls) == 1


GARBAGE = [
    "not json",
    "",
    "[1, 2]",
    "{}",
    '{"update_id": "7", "message": {}}',
    '{"update_id": true}',
    '{"update_id": -1}',
    '{"update_id": 1.5}',
    '{"update_id": 1, "update_id": 2}',
]


def test_garbage_is_a_400_and_changes_nothing(fake_telegram: FakeTelegram) -> None:
    for body in GARBAGE:
        response = deliver(body)
        assert response.status_code == 400, body
        assert response.json_body["error"]["code"] == "invalid_request"

    assert fake_telegram.calls == []
    assert list(ProcessedUpdate.scan()) == []


# --------------------------------------------------------------------------
# Exactly once
# --------------------------------------------------------------------------


def test_the_same_update_delivered_twice_is_acted_on_once(fake_telegram: FakeTelegram) -> None:
    update = text_update("/start")

    first, second = deliver(update), deliver(update)

    assert (first.status_code, second.status_code) == (200, 200)
    assert len(fake_telegram.sent("sendMessage")) == 1
    assert [int(e.delta) for e in LedgerEntry.query(ALICE_ID)] == [10]
    record = processed(update["update_id"])
    assert record is not None and record.state == "done"
    # Kept past Telegram's 24 h retry window, and expires by TTL.
    assert record.expires_at > time.time() + 24 * 3600


def test_a_live_claim_gets_retry_later_and_an_expired_one_is_taken_over(fake_telegram: FakeTelegram) -> None:
    now = int(time.time())
    # Another delivery of this update is being handled right now: a 200 would lose it if that one failed.
    busy = text_update("/start")
    ProcessedUpdate(pk=ProcessedUpdate.key(busy["update_id"]), state="processing", expires_at=now + 60).save()
    # A handler that died (Lambda timeout) left its claim behind.
    abandoned = text_update("/start")
    ProcessedUpdate(pk=ProcessedUpdate.key(abandoned["update_id"]), state="processing", expires_at=now - 1).save()
    # Telegram restarts update ids after a week without updates; DynamoDB deletes expired items lazily.
    reused = text_update("/balance")
    ProcessedUpdate(pk=ProcessedUpdate.key(reused["update_id"]), state="done", expires_at=now - 1).save()

    response = deliver(busy)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert fake_telegram.calls == [] and queries.get_user(ALICE_ID) is None

    assert (deliver(abandoned).status_code, deliver(reused).status_code) == (200, 200)
    assert len(fake_telegram.sent("sendMessage")) == 2
    for update in (abandoned, reused):
        record = processed(update["update_id"])
        assert record is not None and record.state == "done"


def _marks_done(call: Call) -> bool:
    return {"S": "done"} in call.params.get("ExpressionAttributeValues", {}).values()


def test_a_timeout_marking_an_update_done_still_answers_200_and_a_redelivery_acts_no_more(
    fake_telegram: FakeTelegram, faults: Faults
) -> None:
    """Issue 12 #3: a read timeout used to become an AttributeError (PynamoDB reads ``cause.response``),
    so the webhook answered 500 after acting and Telegram's redelivery sent the invoices again."""
    update = text_update("/buy")
    marking = faults.time_out("UpdateItem", table="guards", where=_marks_done, times=None)

    first = deliver(update)

    assert first.status_code == 200, first.body
    assert marking.fired == 4  # every botocore attempt timed out: the record stays "processing"
    assert len(fake_telegram.sent("sendInvoice")) == len(catalogue.PACKS)

    faults.clear()
    redelivered = deliver(update)  # Telegram sends it again all the same

    assert redelivered.status_code in (200, 503)
    assert len(fake_telegram.sent("sendInvoice")) == len(catalogue.PACKS)


@pytest.mark.parametrize("crash_at", ["start_generation", "reply"], ids=["before-the-charge", "after-the-charge"])
def test_a_crash_mid_handling_leaves_the_update_retryable_and_the_retry_acts_once(
    fake_telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch, crash_at: str
) -> None:
    crashes = {"left": 1}

    def crash_once(real: Callable[..., Any]) -> Callable[..., Any]:
        def step(*args: Any, **kwargs: Any) -> Any:
            if crashes["left"]:
                crashes["left"] -= 1
                raise RuntimeError("crash in the middle of handling")
            return real(*args, **kwargs)

        return step

    if crash_at == "start_generation":
        monkeypatch.setattr(money, "start_generation", crash_once(money.start_generation))
    else:
        monkeypatch.setattr(telegram.BotApi, "send_message", crash_once(telegram.BotApi.send_message))
    update = text_update("a lighthouse at dawn")

    crashed = deliver(update)

    assert crashed.status_code == 500
    assert crashed.json_body["error"]["code"] == "internal_error"
    assert processed(update["update_id"]) is None  # the claim was released: the retry may act

    retried = deliver(update)
    again = deliver(update)

    assert (retried.status_code, again.status_code) == (200, 200)
    assert len(charges_of(ALICE_ID)) == 1
    assert balance(ALICE_ID) == 9
    [generation] = generations_of(ALICE_ID)
    assert [job.generation_id for job in queued_jobs()] == [generation.generation_id]
    assert len(fake_telegram.sent("sendMessage")) == 1


def test_telegram_failing_a_reply_makes_the_update_retryable_unless_the_chat_is_gone(
    fake_telegram: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    fake_telegram.refuse_next("sendMessage", 502, "Bad Gateway")
    update = text_update("/start")

    assert deliver(update).status_code == 500
    assert deliver(update).status_code == 200
    assert len(fake_telegram.sent("sendMessage")) == 2  # the failed attempt and the retry
    assert [int(e.delta) for e in LedgerEntry.query(ALICE_ID)] == [10]

    # Blocked by the user: a re-sent update would fail the same way for 24 h, so it is done.
    fake_telegram.refuse_next("sendMessage", 403, "Forbidden: bot was blocked by the user")
    blocked = text_update("/balance")
    assert deliver(blocked).status_code == 200
    record = processed(blocked["update_id"])
    assert record is not None and record.state == "done"

    # The failures were logged, and no log record shows the token. The test rig's own loggers see the
    # path, of course: the fake server's access log, and moto's `responses` mock letting the call pass.
    ours = [record for record in caplog.records if record.name.split(".")[0] not in ("werkzeug", "responses")]
    assert any("Bad Gateway" in repr(vars(record)) for record in ours)
    assert not [record for record in ours if TEST_BOT_TOKEN.split(":")[1] in repr(vars(record))]


IGNORED: dict[str, dict[str, Any]] = {
    "from a bot": {"message": {**message("draw a cat"), "from": {"id": 7, "is_bot": True, "first_name": "Bot"}}},
    "channel post": {"channel_post": {"message_id": 1, "chat": {"id": -100, "type": "channel"}, "text": "a cat"}},
    # An edited text is answered (tests/integration/test_bot_next_steps.py); these edits are not.
    "edited live location": {"edited_message": message(None, location={"latitude": 48.85, "longitude": 2.36})},
    "edited message in a group": {"edited_message": message("draw a dog", chat_type="group")},
    "edited message from a bot": {
        "edited_message": {**message("draw a dog"), "from": {"id": 7, "is_bot": True, "first_name": "Bot"}}
    },
    "no text": {"message": message(None, location={"latitude": 48.85, "longitude": 2.35})},  # a sticker is answered
    "group text": {"message": message("draw a cat in a group", chat_type="group")},
    "group command": {"message": message("/start", chat_type="supergroup")},
    "callback query from a bot": {"callback_query": {"id": "1", "from": {"id": 7, "is_bot": True}, "data": "x"}},
    "chat member": {"my_chat_member": {"chat": {"id": ALICE_ID, "type": "private"}}},
    "malformed message": {"message": "not an object"},
    "pre-checkout from a bot": {"pre_checkout_query": {"id": "q", "from": {"id": 7, "is_bot": True}}},
}


def test_updates_the_bot_does_not_handle_have_no_effect_at_all(fake_telegram: FakeTelegram) -> None:
    for name, body in IGNORED.items():
        assert deliver({"update_id": next_update_id(), **body}).status_code == 200, name

    assert fake_telegram.calls == []
    assert list(ProcessedUpdate.scan()) == []
    assert list(User.scan()) == []
    assert queued_jobs() == []


# --------------------------------------------------------------------------
# Twice at once (serialized emulator, threads)
# --------------------------------------------------------------------------


def chalice_request(update: dict[str, Any]) -> Request:
    """The request API Gateway would hand the route (the test client is not thread-safe)."""
    return Request(
        {
            "multiValueQueryStringParameters": None,
            "headers": {"content-type": "application/json", webhook.SECRET_HEADER.lower(): TEST_WEBHOOK_SECRET},
            "pathParameters": None,
            "requestContext": {"httpMethod": "POST", "resourcePath": "/api/telegram/webhook"},
            "body": json.dumps(update),
            "stageVariables": None,
        }
    )


@pytest.mark.emulator
def test_the_same_update_delivered_at_once_is_acted_on_once(
    emulator: str, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = start_fake_telegram(httpserver, monkeypatch)
    # The first delivery is still replying while the others arrive: Telegram answers it only once
    # every other delivery has been answered (a fixed delay let a late thread arrive after it was done).
    fake.hold = hold = threading.Event()
    update = text_update("a fox in the snow")
    deliveries = 6
    barrier = threading.Barrier(deliveries)
    lock, busy_answers = threading.Lock(), [0]

    def deliver_concurrently(_: int) -> int:
        barrier.wait()
        try:
            webhook.handle(chalice_request(update))
        except UpdateInProgress as busy:
            assert busy.headers["Retry-After"] == str(webhook.RETRY_AFTER_SECONDS)
            with lock:
                busy_answers[0] += 1
                if busy_answers[0] == deliveries - 1:
                    hold.set()
            return busy.status
        return 200

    try:
        with ThreadPoolExecutor(deliveries) as pool:
            statuses = Counter(pool.map(deliver_concurrently, range(deliveries)))
        after = webhook.handle(chalice_request(update))
    finally:
        hold.set()
        stop_fake_telegram()

    assert statuses == Counter({200: 1, 503: deliveries - 1})
    assert after == {"ok": True}
    assert len(fake.sent("sendMessage")) == 1
    assert len(charges_of(ALICE_ID)) == 1
    [generation] = generations_of(ALICE_ID)
    assert [job.generation_id for job in queued_jobs()] == [generation.generation_id]
    assert all(call.token == TEST_BOT_TOKEN for call in fake.calls)


# --------------------------------------------------------------------------
# Faults on the update claim (issue 12 #6, and the webhook's side of #3)
# --------------------------------------------------------------------------


def test_an_update_claim_whose_response_was_lost_is_ours_and_acted_on_once(
    fake_telegram: FakeTelegram, faults: Any
) -> None:
    update = text_update("/start")
    # The claim's put is applied, its response lost; the retry fails its condition
    # against our own record: without the token that was a 503 for 60 s.
    lost = faults.lose_response("PutItem", table="guards", nth=1, times=1)

    response = deliver(update)

    assert lost.fired == 1
    assert response.status_code == 200
    assert len(fake_telegram.sent("sendMessage")) == 1
    record = processed(update["update_id"])
    assert record is not None and record.state == "done"
    assert deliver(update).status_code == 200 and len(fake_telegram.sent("sendMessage")) == 1


def test_a_timeout_marking_an_update_done_or_releasing_it_is_logged_not_an_attribute_error(
    fake_telegram: FakeTelegram, faults: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Marking done times out on every attempt: the bot has acted, so the answer is still 200.
    done = faults.time_out("UpdateItem", table="guards", times=None)
    update = text_update("/start")
    with caplog.at_level(logging.ERROR):
        assert deliver(update).status_code == 200
    assert done.fired >= 1
    assert len(fake_telegram.sent("sendMessage")) == 1
    assert "AttributeError" not in caplog.text
    assert "could not be marked done" in caplog.text
    faults.rules.clear()

    # Releasing after a failed handling times out too: the handling's own error answers 5xx.
    fake_telegram.refuse_next("sendMessage", 500, "Internal Server Error", times=10)
    released = faults.time_out("DeleteItem", table="guards", times=None)
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        failed = deliver(text_update("/balance", user_id=BOB_ID))
    assert failed.status_code >= 500
    assert released.fired >= 1
    assert "AttributeError" not in caplog.text
