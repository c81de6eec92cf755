"""Broadcasts: sent in the background, each user at most once, at the shared rate (CONTRACT §6.8, §10).

The sending tests run on the serialized emulator (the worker sends from
several threads) against a local server speaking the Bot API; the
``emulator`` fixture checks the invariants (rule 8: counters equal the
recorded deliveries) afterwards.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from chalicelib import broadcasts, guards, money, records
from chalicelib.model import BroadcastOutcome
from chalicelib.runtime import ready
from chalicelib.tables import BroadcastDelivery, User
from tests.api_helpers import assert_error, bearer, call, configure, post
from tests.conftest import ON_DYNAMODB_LOCAL
from tests.faults import Call, Faults
from tests.growth_helpers import (
    broadcast_status,
    create_broadcast,
    drain_broadcasts,
    queued_pages,
    race,
    run_broadcast_worker,
)
from tests.iam_calls import needs, not_allowed
from tests.telegram_helpers import (
    FakeTelegram,
    deliver,
    message,
    next_update_id,
    start_fake_telegram,
    stop_fake_telegram,
    text_update,
)

BLOCKED = "Forbidden: bot was blocked by the user"
FIRST_USER = 20_000


@pytest.fixture
def telegram(emulator: str, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTelegram]:
    """A local Bot API for a stack on the emulator; sends are fast (1000/s) unless a test says otherwise."""
    monkeypatch.setenv("BROADCAST_RATE_PER_SECOND", "1000")
    yield start_fake_telegram(httpserver, monkeypatch)
    stop_fake_telegram()


def register_users(count: int, *, russian_every: int = 4) -> list[int]:
    settings = ready()
    ids = [FIRST_USER + index for index in range(count)]
    for index, user_id in enumerate(ids):
        language = "ru" if index % russian_every == 0 else "en"
        money.register(money.Profile(user_id=user_id, first_name=f"User{index}", language_code=language), settings)
    return ids


def messages_per_chat(fake: FakeTelegram) -> Counter[int]:
    return Counter(int(payload["chat_id"]) for payload in fake.sent("sendMessage"))


def test_two_hundred_users_get_it_once_with_a_page_redelivered_and_ten_blocked(
    telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(broadcasts, "PAGE_SIZE", 60)
    users = register_users(200)
    blocked = users[5::20]
    assert len(blocked) == 10
    for user_id in blocked:
        telegram.refused_chats[str(user_id)] = (403, BLOCKED)

    reply = create_broadcast({"ru": "Привет!", "en": "Hello!"})
    assert reply.status == 202, reply.body
    assert reply.body["status"] == "queued" and reply.body["sent"] == 0
    assert telegram.sent("sendMessage") == []  # nothing is sent inside the API request
    broadcast_id = reply.body["id"]

    [first_page] = queued_pages()
    advance = broadcasts._advance

    def advance_then_die(broadcast: object, number: int, cursor: object, token: str) -> bool:
        moved = advance(broadcast, number, cursor, token)  # type: ignore[arg-type]
        if number == 1:
            raise RuntimeError("the Lambda died after its second page")
        return moved

    monkeypatch.setattr(broadcasts, "_advance", advance_then_die)
    with pytest.raises(RuntimeError):
        run_broadcast_worker(first_page)
    monkeypatch.setattr(broadcasts, "_advance", advance)
    run_broadcast_worker(first_page)  # a duplicate delivery of the first message: nothing to do
    assert queued_pages() == []
    run_broadcast_worker(first_page, receive_count=2)  # SQS delivers the message again: carry on
    run_broadcast_worker(first_page, receive_count=3)  # and once more
    drain_broadcasts()
    run_broadcast_worker(first_page, receive_count=4)  # after the end: still nothing twice

    per_chat = messages_per_chat(telegram)
    assert set(per_chat) == set(users) and set(per_chat.values()) == {1}
    texts = {int(p["chat_id"]): p["text"] for p in telegram.sent("sendMessage")}
    assert texts[users[0]] == "Привет!" and texts[users[1]] == "Hello!"
    status = broadcast_status(broadcast_id).body
    assert status == {**status, "status": "done", "total": 200, "sent": 190, "failed": 0, "blocked": 10}
    assert {int(u.user_id) for u in User.scan(User.blocked == True)} == set(blocked)  # noqa: E712

    # Later broadcasts skip who blocked the bot, until they write again.
    deliver(text_update("/balance", user_id=blocked[0]))
    assert User.get(blocked[0]).blocked is None
    # Editing a message they sent earlier is writing too.
    edited = {"update_id": next_update_id(), "edited_message": message("a cat on the Moon", user_id=blocked[1])}
    deliver(edited)
    assert User.get(blocked[1]).blocked is None
    telegram.calls.clear()
    telegram.refused_chats.clear()
    second = create_broadcast("Second news").body["id"]
    drain_broadcasts()
    assert set(messages_per_chat(telegram)) == set(users) - set(blocked[2:])
    assert broadcast_status(second).body["total"] == 192


def test_a_page_that_crashed_mid_way_is_redelivered_and_nobody_gets_it_twice(
    telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = register_users(30)
    crash_for = users[7]
    original = guards.record_broadcast_deliveries

    def record(broadcast_id: str, results: dict[int, BroadcastOutcome]) -> None:
        if crash_for in results:
            raise RuntimeError("Lambda died after sending")
        original(broadcast_id, results)

    monkeypatch.setattr(guards, "record_broadcast_deliveries", record)
    broadcast_id = create_broadcast("Once only").body["id"]
    [page] = queued_pages()
    with pytest.raises(RuntimeError):
        run_broadcast_worker(page)
    monkeypatch.setattr(guards, "record_broadcast_deliveries", original)
    run_broadcast_worker(page, receive_count=2)
    drain_broadcasts()

    assert set(messages_per_chat(telegram).values()) == {1} and len(messages_per_chat(telegram)) == 30
    # The chunk whose recording crashed stays unconfirmed ("sending"): never sent again, not counted.
    stuck = {u for u in users if BroadcastDelivery.get(BroadcastDelivery.key(broadcast_id, u)).state == "sending"}
    assert crash_for in stuck and len(stuck) <= broadcasts.CHUNK
    status = broadcast_status(broadcast_id).body
    assert (status["status"], status["sent"]) == ("done", 30 - len(stuck))


def _claims(call: Call, *, users: int | None = None, of: int | None = None) -> bool:
    """A TransactWriteItems that claims broadcast deliveries (``users`` of them; one of them ``of``)."""
    puts = [item["Put"]["Item"]["pk"]["S"] for item in call.params.get("TransactItems", []) if "Put" in item]
    claims = [pk for pk in puts if pk.startswith("bcast#")]
    return (
        bool(claims)
        and (users is None or len(claims) == users)
        and (of is None or any(pk.endswith(f"#{of}") for pk in claims))
    )


def _read_backs(faults: Faults) -> int:
    return sum(1 for call in faults.calls if call.operation == "BatchGetItem")


# On moto a retried transaction is applied again (``honour_tokens`` False: its retry fails against our
# own claims and the token read back recognises them); DynamoDB, and DynamoDB Local, answer the
# retry from its ClientRequestToken. The read-back runs only where the engine applies the retry.
READ_BACK_ON_RETRY = not ON_DYNAMODB_LOCAL


def _advances_a_middle_page(call: Call) -> bool:
    """records.advance_broadcast of a page that is not the last: SET page and cursor, nothing removed."""
    if call.operation != "UpdateItem":
        return False
    names = set(call.params.get("ExpressionAttributeNames", {}).values())
    return {"page", "cursor"} <= names and "REMOVE" not in str(call.params.get("UpdateExpression", ""))


def test_a_page_advance_whose_answer_was_lost_still_goes_on_to_the_next_page(
    telegram: FakeTelegram, faults: Faults, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Applied, its answer lost, botocore's retry refused by its own condition: read as "another delivery
    # moved on", it ended the only chain there was, and the broadcast stayed "sending" for ever.
    monkeypatch.setattr(broadcasts, "PAGE_SIZE", 10)
    users = register_users(40)
    lost = faults.lose_response("UpdateItem", table="growth", where=_advances_a_middle_page, times=1)
    broadcast_id = create_broadcast("Four pages").body["id"]
    drain_broadcasts()

    assert lost.fired == 1
    assert messages_per_chat(telegram) == Counter(dict.fromkeys(users, 1))
    status = broadcast_status(broadcast_id).body
    assert (status["status"], status["sent"]) == ("done", 40)


def test_a_broadcast_whose_creation_lost_its_answer_is_created_and_sent(telegram: FakeTelegram, faults: Faults) -> None:
    # botocore's retry of the applied put fails its condition: it was a 500, and the broadcast stayed
    # "queued" with nothing on the queue.
    users = register_users(3)
    lost = faults.lose_response("PutItem", table="growth", times=1)
    created = create_broadcast("Hi")
    assert lost.fired == 1
    assert created.status == 202, created.body
    drain_broadcasts()

    assert messages_per_chat(telegram) == Counter(dict.fromkeys(users, 1))
    assert broadcast_status(created.body["id"]).body["status"] == "done"


@pytest.mark.parametrize("honour_tokens", [False, True], ids=["retry-applied-again", "retry-answered-from-token"])
def test_a_claim_whose_answer_was_lost_still_sends_to_its_users(
    telegram: FakeTelegram, faults: Faults, honour_tokens: bool
) -> None:
    users = register_users(20)
    faults.honour_tokens = honour_tokens
    lost = faults.lose_response("TransactWriteItems", where=_claims, times=1)
    broadcast_id = create_broadcast("Lost and found").body["id"]
    drain_broadcasts()

    assert lost.fired == 1
    # botocore retried the applied claim: either way the claims are ours and their users get it.
    assert messages_per_chat(telegram) == Counter(dict.fromkeys(users, 1))
    status = broadcast_status(broadcast_id).body
    assert (status["status"], status["sent"]) == ("done", 20)
    if honour_tokens:
        assert len(faults.replayed) == 1 and _read_backs(faults) == 0
    else:
        assert faults.replayed == [] and _read_backs(faults) == (1 if READ_BACK_ON_RETRY else 0)


@pytest.mark.parametrize("every_answer", [False, True], ids=["answer-lost-once", "outcome-unknown"])
def test_a_single_claim_whose_answer_was_lost_still_sends(
    telegram: FakeTelegram, faults: Faults, every_answer: bool
) -> None:
    """A redelivered page claims one by one; one of those claims loses its answer (once: applied
    again on moto; on every attempt: its outcome unknown) and is recognised as ours."""
    users = register_users(10)
    broadcast_id = create_broadcast("One by one").body["id"]
    records.start_broadcast(broadcast_id, total=10, now=time.time())
    assert guards.claim_broadcast_deliveries(broadcast_id, [users[3]]) == {users[3]}  # an earlier delivery's
    faults.honour_tokens = every_answer  # on every attempt, the token's replay is what gets lost
    lost = faults.lose_response(
        "TransactWriteItems", where=lambda call: _claims(call, users=1, of=users[0]), times=None if every_answer else 1
    )
    drain_broadcasts()

    assert lost.fired >= 1
    # users[3]'s claim is another delivery's (it may have sent): never sent again.
    assert messages_per_chat(telegram) == Counter({user: 1 for user in users if user != users[3]})
    assert _read_backs(faults) >= (2 if READ_BACK_ON_RETRY or every_answer else 1)


@pytest.mark.parametrize("honour_tokens", [False, True], ids=["retry-applied-again", "retry-answered-from-token"])
def test_a_claim_whose_outcome_stayed_unknown_is_recognised_as_ours(
    telegram: FakeTelegram, faults: Faults, honour_tokens: bool
) -> None:
    """Every answer of one chunk's claim is lost (OutcomeUnknown): its claims were written with our
    token, so its users are sent to now; a redelivery would have found them claimed and skipped them."""
    users = register_users(20)
    faults.honour_tokens = honour_tokens
    lost = faults.lose_response(
        "TransactWriteItems", where=lambda call: _claims(call, users=broadcasts.CHUNK, of=users[0]), times=None
    )
    broadcast_id = create_broadcast("Unknown, then known").body["id"]
    drain_broadcasts()

    assert lost.fired > 1
    assert messages_per_chat(telegram) == Counter(dict.fromkeys(users, 1))
    status = broadcast_status(broadcast_id).body
    assert (status["status"], status["sent"]) == ("done", 20)


def _records(call: Call) -> bool:
    """A TransactWriteItems that records broadcast deliveries' outcomes."""
    updates = [item["Update"]["Key"]["pk"]["S"] for item in call.params.get("TransactItems", []) if "Update" in item]
    return any(pk.startswith("bcast#") for pk in updates)


@pytest.mark.parametrize("every_answer", [False, True], ids=["retry-applied-again", "outcome-unknown"])
def test_a_record_whose_answer_was_lost_is_recognised_as_applied(
    telegram: FakeTelegram, faults: Faults, every_answer: bool
) -> None:
    """The outcomes and counters went in; the lost answer must not fail the page (or count twice)."""
    users = register_users(12)
    faults.honour_tokens = False
    lost = faults.lose_response("TransactWriteItems", where=_records, times=None if every_answer else 1)
    broadcast_id = create_broadcast("Recorded once").body["id"]
    pages = drain_broadcasts()

    assert lost.fired >= 1
    assert len(pages) == 1  # the page was not failed and redelivered
    assert messages_per_chat(telegram) == Counter(dict.fromkeys(users, 1))
    status = broadcast_status(broadcast_id).body
    assert (status["status"], status["sent"], status["failed"]) == ("done", 12, 0)


def test_the_broadcast_workers_role_allows_every_dynamodb_call_it_makes(telegram: FakeTelegram, faults: Faults) -> None:
    """A redelivered page (claims read back one by one), a 403 (user blocked), pages chained: each call
    the worker makes is one its IAM role grants (moto and DynamoDB Local check no IAM)."""
    users = register_users(30)
    telegram.refused_chats[str(users[1])] = (403, BLOCKED)
    broadcast_id = create_broadcast({"ru": "Привет", "en": "Hi"}).body["id"]
    records.start_broadcast(broadcast_id, total=30, now=time.time())
    guards.claim_broadcast_deliveries(broadcast_id, [users[3]])
    faults.calls.clear()
    drain_broadcasts()

    needed = needs(faults.calls, ready())
    assert ("dynamodb:BatchGetItem", "guards", False) in needed  # the read-back ran
    assert ("dynamodb:Scan", "users", False) in needed
    assert not_allowed("BroadcastWorker", needed) == set()


def test_an_invocation_short_of_time_hands_the_rest_back_to_the_queue(
    telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(broadcasts, "PAGE_SIZE", 10)
    users = register_users(30)
    broadcast_id = create_broadcast("In parts").body["id"]
    ran = drain_broadcasts(remaining_seconds=20)  # below two margins: one page per invocation
    assert len(ran) >= 3
    assert set(messages_per_chat(telegram)) == set(users) and set(messages_per_chat(telegram).values()) == {1}
    assert broadcast_status(broadcast_id).body["status"] == "done"


def test_cancel_stops_within_a_page(telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, BROADCAST_RATE_PER_SECOND="50")
    register_users(100)
    broadcast_id = create_broadcast("Stop me").body["id"]
    [page] = queued_pages()
    worker = threading.Thread(target=run_broadcast_worker, args=(page,))
    worker.start()
    deadline = time.monotonic() + 20
    while len(telegram.sent("sendMessage")) < 10 and time.monotonic() < deadline:
        time.sleep(0.02)
    cancelled = post(f"/api/admin/broadcasts/{broadcast_id}/cancel", headers=bearer())
    sent_at_cancel = len(telegram.sent("sendMessage"))
    worker.join(timeout=30)
    assert cancelled.status == 200 and cancelled.body["status"] == "cancelled"
    drain_broadcasts()
    sent = len(telegram.sent("sendMessage"))
    assert sent <= sent_at_cancel + broadcasts.SENDERS  # only sends already in flight
    assert sent < 100
    final = broadcast_status(broadcast_id).body
    assert final["status"] == "cancelled" and final["sent"] == sent
    again = post(f"/api/admin/broadcasts/{broadcast_id}/cancel", headers=bearer())
    assert again.status == 200 and again.body["status"] == "cancelled"


def test_telegrams_retry_after_is_honoured_by_every_sender(
    telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Slots 0.2 s apart. Every send whose slot starts once the worker has Telegram's 429 waits out its
    # retry_after; a send whose slot started while the 429 was on its way (on a busy machine its answer
    # can take longer than a slot) has gone, as it would to Telegram, and is not held to that.
    configure(monkeypatch, BROADCAST_RATE_PER_SECOND="5")
    slot_of: dict[int, float] = {}  # chat -> the start of the slot its message was last booked (the one it was sent in)
    known_at: list[float] = []  # when the worker's clock had the pause
    real_send, real_pause = broadcasts._send, broadcasts.SendClock.pause

    def send(bot: Any, clock: broadcasts.SendClock, chat_id: int, text: str, start: float) -> BroadcastOutcome:
        slot_of[chat_id] = start
        return real_send(bot, clock, chat_id, text, start)

    def pause(clock: broadcasts.SendClock, seconds: float) -> None:
        real_pause(clock, seconds)
        known_at.append(time.time())  # the slots' clock

    monkeypatch.setattr(broadcasts, "_send", send)
    monkeypatch.setattr(broadcasts.SendClock, "pause", pause)
    users = register_users(4)
    telegram.refuse_next("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    broadcast_id = create_broadcast("Patience").body["id"]
    drain_broadcasts()
    calls = [c for c in telegram.calls if c.method == "sendMessage"]
    assert len(calls) == 5  # one refused with 429, then each user once
    assert set(messages_per_chat(telegram)) == set(users)
    refused, later = calls[0], calls[1:]
    [paused] = known_at
    held = [c for c in later if c.chat_id == refused.chat_id or slot_of[int(c.chat_id)] > paused]
    assert held and all(c.at - refused.at >= 0.95 for c in held)
    assert broadcast_status(broadcast_id).body["sent"] == 4


def test_audiences_paying_and_active(telegram: FakeTelegram) -> None:
    settings = ready()
    now = time.time()
    old = now - 40 * 86400
    payer, active, dormant = (money.Profile(user_id=FIRST_USER + i, first_name=f"U{i}") for i in range(3))
    money.register(payer, settings, now=old)
    money.register(active, settings, now=now)
    money.register(dormant, settings, now=old)
    money.credit_purchase(
        payer, settings, charge_id="c1", provider_charge_id=None, pack_id="pack_10", credits=10, stars=50, now=old
    )
    create_broadcast("For payers", audience="paying")
    drain_broadcasts()
    assert set(messages_per_chat(telegram)) == {payer.user_id}
    telegram.calls.clear()
    create_broadcast("For the active", audience="active_30d")
    drain_broadcasts()
    assert set(messages_per_chat(telegram)) == {active.user_id}
    records.note_activity(dormant.user_id)  # wrote to the bot today
    telegram.calls.clear()
    create_broadcast("For the active", audience="active_30d")
    drain_broadcasts()
    assert set(messages_per_chat(telegram)) == {active.user_id, dormant.user_id}


def test_the_shared_clock_never_exceeds_the_rate_across_workers(emulator: str) -> None:
    rate, per_thread = 20, 8
    width = broadcasts.SPACING / rate
    clocks = [broadcasts.SendClock(rate), broadcasts.SendClock(rate)]  # two "workers"
    sends: list[tuple[float, float]] = []  # (the start of the slot a message used, when it went)
    lost: list[float] = []  # slots given up: woken too late to use them
    lock = threading.Lock()

    def sender(index: int) -> None:
        # As a worker sends a chunk (deliver_chunk, _send): one booking for its slots, each used at its
        # start, one woken too late given up for a new one.
        clock = clocks[index % 2]
        for start in clock.book(per_thread):
            slot = start
            while not clock.wait_until_usable(slot):
                with lock:
                    lost.append(slot)
                [slot] = clock.book(1)
            went = time.time()
            with lock:
                sends.append((slot, went))

    race(6, sender)
    slots = sorted(slot for slot, _ in sends)
    assert len(slots) == 6 * per_thread and not set(slots) & set(lost)
    # No slot given twice or crowded, across both workers: no second of slots holds more than the rate.
    assert all(later - earlier >= 0.999 * width for earlier, later in itertools.pairwise(slots))
    assert max(sum(1 for s in slots if start <= s < start + 1) for start in slots) <= rate
    assert all(went >= slot for slot, went in sends)  # never before its slot
    # The rate itself (slots used on time) depends on the machine: bench.broadcast measures it on a
    # quiet one. Measured here, in wall-clock time, it failed on a busy machine (7 a second seen).


# --- the admin API ------------------------------------------------------------------


@pytest.mark.usefixtures("aws")
@pytest.mark.parametrize(
    "body",
    [
        {"text": "", "audience": "all"},
        {"text": "x" * 4097, "audience": "all"},
        {"text": {"ru": "Привет"}, "audience": "all"},
        {"text": {"ru": "Привет", "en": "Hi", "de": "Hallo"}, "audience": "all"},
        {"text": 42, "audience": "all"},
        {"text": "Hi", "audience": "everyone"},
        {"text": "Hi"},
        {"text": "Hi", "audience": "all", "priority": "high"},
    ],
)
def test_invalid_broadcasts_are_refused_and_nothing_is_queued(body: dict) -> None:
    reply = call("POST", "/api/admin/broadcasts", headers=bearer(), json_body=body)
    assert_error(reply, 400, "invalid_request")
    assert queued_pages() == []


@pytest.mark.usefixtures("aws")
def test_broadcast_routes_need_an_admin_and_known_ids() -> None:
    assert_error(
        call("POST", "/api/admin/broadcasts", json_body={"text": "Hi", "audience": "all"}), 401, "unauthorized"
    )
    assert_error(
        post("/api/admin/broadcasts", {"id": 5, "first_name": "E"}, json_body={"text": "Hi", "audience": "all"}),
        403,
        "forbidden",
    )
    assert_error(call("GET", "/api/admin/broadcasts/01JD6YJ8Q4W5ZK3M2N7P9R0S1T", headers=bearer()), 404, "not_found")
    assert_error(call("GET", "/api/admin/broadcasts/not-an-id", headers=bearer()), 404, "not_found")
    assert_error(post("/api/admin/broadcasts/not-an-id/cancel", headers=bearer()), 404, "not_found")
    assert queued_pages() == []


@pytest.mark.usefixtures("aws")
def test_cancelling_a_finished_broadcast_answers_it_as_it_is() -> None:
    broadcast_id = create_broadcast("Done soon").body["id"]
    drain_broadcasts()  # nobody registered: the one empty page finishes it
    assert broadcast_status(broadcast_id).body["status"] == "done"
    # Nothing more is sent either way (CONTRACT §5): 200, the broadcast stays done.
    reply = post(f"/api/admin/broadcasts/{broadcast_id}/cancel", headers=bearer())
    assert (reply.status, reply.body["status"], reply.body["id"]) == (200, "done", broadcast_id)
    assert broadcast_status(broadcast_id).body["status"] == "done"
