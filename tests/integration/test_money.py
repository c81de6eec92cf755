"""The money core on moto: charges, refunds, idempotency and the lifecycle.

Every test runs with the ``aws`` fixture, which checks the invariants of
CONTRACT §6 from the tables after the test.
"""

from __future__ import annotations

import time

import pytest

from chalicelib import money, queries, records
from chalicelib.errors import (
    Conflict,
    IdempotencyKeyReused,
    InsufficientCredits,
    NotCancellable,
    NotFound,
    RateLimited,
    TemporarilyUnavailable,
    TooManyActive,
    TransactionCancelled,
    UserBanned,
)
from chalicelib.model import Claim, ClaimOutcome, FailureReason
from chalicelib.runtime import ready
from chalicelib.tables import Generation, LedgerEntry, RateLimitWindow, User
from chalicelib.transactions import Transaction
from tests.faults import Faults
from tests.money_helpers import ALICE, BOB, balance, order, settings_with, start

pytestmark = pytest.mark.usefixtures("aws")
LEASE = 60


def ledger_of(user_id: int) -> list[LedgerEntry]:
    return list(LedgerEntry.query(user_id))


def generations_of(user_id: int) -> list[Generation]:
    return list(Generation.query(user_id))


# --- register ----------------------------------------------------------------


def test_register_grants_welcome_credits_once() -> None:
    settings = ready()
    user, created = money.register(ALICE, settings)
    again, created_again = money.register(ALICE, settings)
    assert created and not created_again
    assert int(user.credits) == int(again.credits) == settings.welcome_credits == 10
    assert [(int(e.delta), e.reason) for e in ledger_of(ALICE.user_id)] == [(10, "welcome")]


def test_get_or_register_registers_on_first_sight_only() -> None:
    settings = ready()
    first = money.get_or_register(ALICE, settings)
    money.change_credits(ALICE.user_id, -3, note="test")
    assert int(first.credits) == 10
    assert int(money.get_or_register(ALICE, settings).credits) == 7


# --- start_generation ----------------------------------------------------------


def test_start_charges_once_and_creates_a_pending_generation() -> None:
    settings = ready()
    now = time.time()
    result = start(ALICE, settings, cost=3, now=now)
    generation = result.generation
    assert result.credits == 7 and not result.replayed
    stored = queries.get_generation(ALICE.user_id, generation.generation_id)
    assert stored is not None
    assert stored.status == "pending"
    assert stored.timeout_at == int(now) + settings.generation_timeout_seconds
    assert stored.sweep_shard is not None
    assert int(User.get(ALICE.user_id).active_generations) == 1
    charges = [e for e in ledger_of(ALICE.user_id) if e.reason == "generation"]
    assert [(int(e.delta), e.generation_id) for e in charges] == [(-3, generation.generation_id)]


def test_start_registers_an_unknown_user_first() -> None:
    result = start(BOB, ready())
    assert result.credits == 9
    assert sorted(e.reason for e in ledger_of(BOB.user_id)) == ["generation", "welcome"]


def test_insufficient_credits_is_402_and_changes_nothing() -> None:
    settings = ready()
    money.register(ALICE, settings)
    with pytest.raises(InsufficientCredits):
        start(ALICE, settings, cost=11)
    assert balance(ALICE.user_id) == 10
    assert generations_of(ALICE.user_id) == []
    assert list(RateLimitWindow.scan()) == []  # no rate-limit slot taken either


def test_banned_user_cannot_start() -> None:
    settings = ready()
    money.register(ALICE, settings)
    records.set_banned(ALICE.user_id, True)
    with pytest.raises(UserBanned):
        start(ALICE, settings)
    records.set_banned(ALICE.user_id, False)
    assert start(ALICE, settings).credits == 9


def test_active_generation_limit_is_429_with_retry_after() -> None:
    settings = ready()  # MAX_ACTIVE_GENERATIONS = 2
    start(ALICE, settings)
    start(ALICE, settings)
    with pytest.raises(TooManyActive) as refused:
        start(ALICE, settings)
    assert refused.value.status == 429 and int(refused.value.headers["Retry-After"]) >= 1
    assert balance(ALICE.user_id) == 8


def test_rate_limit_per_minute_then_next_window() -> None:
    settings = settings_with(RATE_LIMIT_PER_MINUTE="3", MAX_ACTIVE_GENERATIONS="50")
    minute = (int(time.time()) // 60) * 60
    for second in range(3):
        start(ALICE, settings, now=minute + second)
    with pytest.raises(RateLimited) as refused:
        start(ALICE, settings, now=minute + 10)
    assert refused.value.headers["Retry-After"] == "50"
    assert balance(ALICE.user_id) == 7
    assert start(ALICE, settings, now=minute + 61).credits == 6


# --- idempotency (CONTRACT §5) ------------------------------------------------------


def test_same_key_same_parameters_pending_replays_without_charge() -> None:
    settings = ready()
    first = start(ALICE, settings, key="k-1")
    replay = start(ALICE, settings, key="k-1")
    assert replay.replayed and replay.generation.generation_id == first.generation.generation_id
    assert replay.credits == first.credits == 9
    assert len(generations_of(ALICE.user_id)) == 1


@pytest.mark.parametrize("finish", ["processing", "completed"])
def test_same_key_replays_processing_and_completed(finish: str) -> None:
    settings = ready()
    first = start(ALICE, settings, key="k-1")
    claim = money.claim_generation(ALICE.user_id, first.generation.generation_id, lease_seconds=LEASE)
    assert claim.generation is not None
    if finish == "completed":
        assert money.complete_generation(claim.generation, result_keys=["k"], provider="test")
    replay = start(ALICE, settings, key="k-1")
    assert replay.replayed and replay.generation.status == finish
    assert balance(ALICE.user_id) == 9


def test_same_key_different_parameters_is_422() -> None:
    settings = ready()
    start(ALICE, settings, key="k-1")
    with pytest.raises(IdempotencyKeyReused):
        start(ALICE, settings, key="k-1", prompt="something else")
    assert balance(ALICE.user_id) == 9


@pytest.mark.parametrize("ending", ["failed", "cancelled"])
def test_same_key_after_failure_or_cancel_is_charged_as_new(ending: str) -> None:
    settings = ready()
    first = start(ALICE, settings, key="k-1")
    if ending == "cancelled":
        money.cancel_generation(ALICE.user_id, first.generation.generation_id)
    else:
        money.fail_generation(first.generation, error=FailureReason.PROVIDER_FAILED)
    second = start(ALICE, settings, key="k-1")
    assert not second.replayed
    assert second.generation.generation_id != first.generation.generation_id
    assert second.credits == 9  # refunded once, charged once again
    third = start(ALICE, settings, key="k-1")
    assert third.replayed and third.generation.generation_id == second.generation.generation_id


def test_keys_are_per_user() -> None:
    settings = ready()
    alice = start(ALICE, settings, key="shared")
    bob = start(BOB, settings, key="shared")
    assert not bob.replayed and bob.generation.generation_id != alice.generation.generation_id
    assert balance(ALICE.user_id) == balance(BOB.user_id) == 9


def test_expired_key_is_free_again() -> None:
    settings = ready()
    now = time.time()
    first = start(ALICE, settings, key="k-1", now=now)
    later = now + money.IDEMPOTENCY_TTL_SECONDS + 120
    # End it so the limits allow another.
    money.fail_generation(first.generation, error=FailureReason.PROVIDER_FAILED, now=now + 1)
    second = start(ALICE, settings, key="k-1", prompt="different, but the key expired", now=later)
    assert not second.replayed


# --- cancel ------------------------------------------------------------------------


def test_cancel_pending_refunds_once() -> None:
    settings = ready()
    generation = start(ALICE, settings, cost=2).generation
    cancelled = money.cancel_generation(ALICE.user_id, generation.generation_id)
    assert cancelled.status == "cancelled"
    assert balance(ALICE.user_id) == 10
    with pytest.raises(NotCancellable):
        money.cancel_generation(ALICE.user_id, generation.generation_id)
    assert balance(ALICE.user_id) == 10


def test_cancel_processing_is_409() -> None:
    generation = start(ALICE, ready()).generation
    money.claim_generation(ALICE.user_id, generation.generation_id, lease_seconds=LEASE)
    with pytest.raises(NotCancellable):
        money.cancel_generation(ALICE.user_id, generation.generation_id)
    assert balance(ALICE.user_id) == 9


def test_cancel_of_someone_elses_generation_is_404() -> None:
    generation = start(ALICE, ready()).generation
    money.register(BOB, ready())
    with pytest.raises(NotFound):
        money.cancel_generation(BOB.user_id, generation.generation_id)
    assert queries.get_generation(ALICE.user_id, generation.generation_id).status == "pending"  # type: ignore[union-attr]


# --- claim, complete, fail -------------------------------------------------------------


def test_claim_moves_pending_to_processing_once() -> None:
    generation = start(ALICE, ready()).generation
    first = money.claim_generation(ALICE.user_id, generation.generation_id, lease_seconds=LEASE)
    second = money.claim_generation(ALICE.user_id, generation.generation_id, lease_seconds=LEASE)
    assert first.outcome == ClaimOutcome.CLAIMED
    assert first.generation is not None and first.generation.status == "processing"
    assert first.generation.claim_token and first.generation.prompt == "a red fox in the snow"
    assert second.outcome == ClaimOutcome.BUSY


def test_claim_takes_over_an_expired_lease_and_the_old_worker_cannot_complete() -> None:
    now = time.time()
    generation = start(ALICE, ready(), now=now).generation
    old = money.claim_generation(ALICE.user_id, generation.generation_id, lease_seconds=30, now=now)
    new = money.claim_generation(ALICE.user_id, generation.generation_id, lease_seconds=30, now=now + 31)
    assert new.outcome == ClaimOutcome.CLAIMED and new.generation is not None
    assert int(new.generation.attempts) == 2
    assert old.generation is not None
    assert not money.complete_generation(old.generation, result_keys=["stale"], provider="t")
    assert money.complete_generation(new.generation, result_keys=["fresh"], provider="t")
    stored = queries.get_generation(ALICE.user_id, generation.generation_id)
    assert stored is not None and list(stored.result_keys) == ["fresh"]


def test_claim_past_timeout_fails_and_refunds_instead() -> None:
    settings = ready()
    now = time.time()
    generation = start(ALICE, settings, now=now).generation
    late = now + settings.generation_timeout_seconds + 1
    claim = money.claim_generation(ALICE.user_id, generation.generation_id, lease_seconds=LEASE, now=late)
    assert claim.outcome == ClaimOutcome.EXPIRED
    assert claim.generation is not None and claim.generation.status == "failed"
    assert balance(ALICE.user_id) == 10


def test_claim_of_missing_or_finished_generation_does_nothing() -> None:
    generation = start(ALICE, ready()).generation
    money.cancel_generation(ALICE.user_id, generation.generation_id)
    assert money.claim_generation(ALICE.user_id, "01ARZ3NDEKTSV4RRFFQ69G5FAV", lease_seconds=LEASE).outcome == (
        ClaimOutcome.MISSING
    )
    finished = money.claim_generation(ALICE.user_id, generation.generation_id, lease_seconds=LEASE)
    assert finished.outcome == ClaimOutcome.FINISHED
    assert balance(ALICE.user_id) == 10


def test_complete_frees_the_active_slot_and_keeps_the_charge() -> None:
    generation = start(ALICE, ready(), cost=2).generation
    claimed = money.claim_generation(ALICE.user_id, generation.generation_id, lease_seconds=LEASE).generation
    assert claimed is not None
    assert money.complete_generation(claimed, result_keys=["results/1001/x/0.png"], provider="test")
    assert not money.complete_generation(claimed, result_keys=["again"], provider="test")
    assert not money.fail_generation(claimed, error=FailureReason.PROVIDER_FAILED)  # a completed one is never refunded
    user = User.get(ALICE.user_id)
    assert int(user.credits) == 8 and int(user.active_generations) == 0


def test_double_fail_refunds_once() -> None:
    generation = start(ALICE, ready(), cost=4).generation
    assert money.fail_generation(generation, error=FailureReason.PROVIDER_FAILED)
    assert not money.fail_generation(generation, error=FailureReason.TIMED_OUT)
    assert balance(ALICE.user_id) == 10
    stored = queries.get_generation(ALICE.user_id, generation.generation_id)
    assert stored is not None and stored.error == "the image service could not make it." and stored.sweep_shard is None


def test_release_claim_returns_to_pending_for_the_owner_only() -> None:
    generation = start(ALICE, ready()).generation
    claimed = money.claim_generation(ALICE.user_id, generation.generation_id, lease_seconds=LEASE).generation
    assert claimed is not None
    stranger = Claim(ClaimOutcome.CLAIMED, generation).generation
    assert stranger is not None and stranger.claim_token is None
    assert not money.release_claim(stranger)
    assert money.release_claim(claimed)
    again = money.claim_generation(ALICE.user_id, generation.generation_id, lease_seconds=LEASE)
    assert again.outcome == ClaimOutcome.CLAIMED
    assert balance(ALICE.user_id) == 9


def test_a_release_that_times_out_returns_false_and_the_lease_frees_the_job(faults: Faults) -> None:
    """Issue 12 #3: a timeout in ``release_claim`` raised AttributeError, masking the failure being handled."""
    generation = start(ALICE, ready()).generation
    claimed = money.claim_generation(ALICE.user_id, generation.generation_id, lease_seconds=LEASE).generation
    assert claimed is not None
    releasing = faults.time_out("UpdateItem", table="generations", times=None)

    assert money.release_claim(claimed) is False

    assert releasing.fired == 4
    faults.clear()
    stored = queries.get_generation(ALICE.user_id, generation.generation_id)
    assert stored is not None and stored.status == "processing"  # freed by the lease's expiry instead
    later = money.claim_generation(
        ALICE.user_id, generation.generation_id, lease_seconds=LEASE, now=time.time() + LEASE + 1
    )
    assert later.outcome == ClaimOutcome.CLAIMED
    assert balance(ALICE.user_id) == 9


def test_a_plain_conditional_write_meeting_transaction_conflicts_is_retried_then_answers_busy(faults: Faults) -> None:
    """Issue 12 #8: the conflict escaped ``conditional_update`` as UpdateError (a 500)."""
    money.register(ALICE, ready())
    conflicting = faults.conflict("UpdateItem", table="users", times=3)
    assert records.set_banned(ALICE.user_id, True).banned
    assert conflicting.fired == 3
    faults.clear()
    faults.conflict("UpdateItem", table="users", times=None)
    with pytest.raises(TemporarilyUnavailable):
        records.set_banned(ALICE.user_id, False)
    faults.clear()
    user = queries.get_user(ALICE.user_id)
    assert user is not None and user.banned


def test_ordering_queues_the_job_before_reading_the_balance_which_may_fail(faults: Faults) -> None:
    """Issue 12 #7: a failed balance read no longer loses the queue message (nor answers an error)."""
    from chalicelib.usecases.generation import order_generation
    from tests.probes import queued_jobs

    settings = ready()
    money.register(ALICE, settings)
    faults.time_out("GetItem", table="users", times=None)

    result = order_generation(ALICE, order(), settings, chat_id=ALICE.user_id, source="api", idempotency_key="k")

    assert result.credits is None and not result.replayed
    faults.clear()
    assert [job.generation_id for job in queued_jobs()] == [result.generation.generation_id]
    assert balance(ALICE.user_id) == 9


def test_fail_with_a_stale_claim_token_changes_nothing() -> None:
    generation = start(ALICE, ready()).generation
    money.claim_generation(ALICE.user_id, generation.generation_id, lease_seconds=LEASE)
    assert not money.fail_generation(generation, error=FailureReason.PROVIDER_FAILED, claim_token="not-the-owner")
    assert balance(ALICE.user_id) == 9


# --- sweeper ------------------------------------------------------------------------


def test_sweep_fails_and_refunds_only_expired_unfinished_generations() -> None:
    settings = settings_with(MAX_ACTIVE_GENERATIONS="10")
    now = time.time()
    old_pending = start(ALICE, settings, now=now - 400).generation
    old_processing = start(ALICE, settings, now=now - 400).generation
    money.claim_generation(ALICE.user_id, old_processing.generation_id, lease_seconds=LEASE, now=now - 399)
    old_completed = start(ALICE, settings, now=now - 400).generation
    claimed = money.claim_generation(ALICE.user_id, old_completed.generation_id, lease_seconds=LEASE, now=now - 399)
    assert claimed.generation is not None
    money.complete_generation(claimed.generation, result_keys=["k"], provider="t")
    fresh = start(ALICE, settings, now=now).generation

    swept = money.sweep_expired(now=now)
    assert sorted(g.generation_id for g in swept) == sorted([old_pending.generation_id, old_processing.generation_id])
    assert money.sweep_expired(now=now) == []
    statuses = {g.generation_id: g.status for g in generations_of(ALICE.user_id)}
    assert statuses == {
        old_pending.generation_id: "failed",
        old_processing.generation_id: "failed",
        old_completed.generation_id: "completed",
        fresh.generation_id: "pending",
    }
    assert balance(ALICE.user_id) == 10 - 2  # the completed and the fresh one stay charged


def test_stale_pending_finds_lost_jobs_but_not_fresh_or_expired_ones() -> None:
    settings = settings_with(MAX_ACTIVE_GENERATIONS="10")
    now = time.time()
    lost = start(ALICE, settings, now=now - 120).generation
    orphaned = start(ALICE, settings, now=now - 120).generation  # its worker died: lease over
    money.claim_generation(ALICE.user_id, orphaned.generation_id, lease_seconds=30, now=now - 100)
    held = start(ALICE, settings, now=now - 120).generation  # a live worker holds it
    money.claim_generation(ALICE.user_id, held.generation_id, lease_seconds=150, now=now - 100)
    start(ALICE, settings, now=now)  # fresh
    start(ALICE, settings, now=now - 1000)  # expired: the sweeper's job, not a requeue
    found = queries.stale_pending(settings, older_than_seconds=60, now=now)
    assert sorted(g.generation_id for g in found) == sorted([lost.generation_id, orphaned.generation_id])
    money.sweep_expired(now=now)


# --- admin --------------------------------------------------------------------------


def test_admin_grant_and_remove_never_below_zero() -> None:
    money.register(ALICE, ready())
    assert int(money.change_credits(ALICE.user_id, 5, note="gift").credits) == 15
    assert int(money.change_credits(ALICE.user_id, -15, note="reset").credits) == 0
    with pytest.raises(Conflict):
        money.change_credits(ALICE.user_id, -1, note="too much")
    with pytest.raises(NotFound):
        money.change_credits(999, 5, note="nobody")
    reasons = [(e.reason, int(e.delta)) for e in queries.latest_ledger(ALICE.user_id)]
    assert reasons == [("admin", -15), ("admin", 5), ("welcome", 10)]


def test_ban_and_unban_unknown_user_is_404() -> None:
    with pytest.raises(NotFound):
        records.set_banned(999, True)


def test_stats_count_users_generations_and_credits() -> None:
    settings = ready()
    money.register(ALICE, settings)
    money.change_credits(ALICE.user_id, 5, note="gift")
    generation = start(ALICE, settings, cost=2).generation
    start(ALICE, settings, cost=1)
    money.cancel_generation(ALICE.user_id, generation.generation_id)
    stats = queries.stats()
    assert stats["users"] == 1
    assert stats["generations"]["pending"] == 1 and stats["generations"]["cancelled"] == 1
    assert stats["credits"] == {
        "granted": 5,
        "removed": 0,
        "spent": 3,
        "refunded": 2,
        "purchased": 0,
        "welcome": 10,
        "promo": 0,
        "referral": 0,
    }


# --- Stars purchases ------------------------------------------------------------------


def test_purchase_is_credited_once_per_charge_id() -> None:
    settings = ready()
    kwargs = {"charge_id": "ch-1", "provider_charge_id": None, "pack_id": "pack_10", "credits": 10, "stars": 50}
    assert money.credit_purchase(ALICE, settings, **kwargs)  # type: ignore[arg-type]
    assert not money.credit_purchase(ALICE, settings, **kwargs)  # type: ignore[arg-type]
    assert balance(ALICE.user_id) == 20


def test_take_back_purchase_refuses_when_spent_and_can_be_restored() -> None:
    settings = ready()
    money.credit_purchase(
        ALICE, settings, charge_id="ch-1", provider_charge_id=None, pack_id="pack_10", credits=10, stars=50
    )
    money.change_credits(ALICE.user_id, -15, note="spent")
    with pytest.raises(Conflict):
        money.take_back_purchase("ch-1", attempt="a")
    money.change_credits(ALICE.user_id, 20, note="topped up")
    money.take_back_purchase("ch-1", attempt="a")
    assert balance(ALICE.user_id) == 15
    # Telegram's answer was lost: the attempt lets go, and a retry takes over without moving money.
    assert money.release_purchase_refund("ch-1", attempt="a")
    assert money.take_back_purchase("ch-1", attempt="b").status == "refunding"
    assert balance(ALICE.user_id) == 15
    assert not money.restore_purchase("ch-1", attempt="a")  # no longer a's to restore
    assert money.restore_purchase("ch-1", attempt="b")  # Telegram definitely refused
    assert balance(ALICE.user_id) == 25
    money.take_back_purchase("ch-1", attempt="c")
    assert money.confirm_purchase_refund("ch-1", attempt="c")  # Telegram returned the Stars
    assert queries.get_payment("ch-1").status == "refunded"  # type: ignore[union-attr]
    with pytest.raises(Conflict):
        money.take_back_purchase("ch-1", attempt="d")
    assert not money.restore_purchase("ch-1", attempt="c")  # too late: a confirmed refund is final
    assert balance(ALICE.user_id) == 15


def test_a_refund_attempt_holds_its_payment_until_it_ends_or_its_time_runs_out() -> None:
    """Issue 12 #1: only the attempt that took the credits back may restore or confirm."""
    settings = ready()
    money.credit_purchase(
        ALICE, settings, charge_id="ch-1", provider_charge_id=None, pack_id="pack_10", credits=10, stars=50
    )
    now = time.time()
    money.take_back_purchase("ch-1", attempt="first", now=now)

    with pytest.raises(Conflict) as busy:
        money.take_back_purchase("ch-1", attempt="second", now=now + 1)
    assert busy.value.headers["Retry-After"] == str(money.REFUND_ATTEMPT_SECONDS - 1)
    assert not money.restore_purchase("ch-1", attempt="second")
    assert not money.confirm_purchase_refund("ch-1", attempt="second")
    assert balance(ALICE.user_id) == 10  # the credits stay taken, once

    # The first attempt died (a Lambda timeout): its hold runs out and a retry takes over.
    later = now + money.REFUND_ATTEMPT_SECONDS + 1
    assert money.take_back_purchase("ch-1", attempt="second", now=later).refund_attempt == "second"
    assert not money.confirm_purchase_refund("ch-1", attempt="first")  # checked, not silent
    assert money.confirm_purchase_refund("ch-1", attempt="second")
    payment = queries.get_payment("ch-1")
    assert payment is not None and payment.status == "refunded" and payment.refund_attempt is None
    assert balance(ALICE.user_id) == 10


# --- the transaction wrapper -------------------------------------------------------------


def test_cancellation_reasons_are_mapped_to_items_not_call_order() -> None:
    money.register(ALICE, ready())
    # Added as update, put, check: PynamoDB sends check, put, update.
    tx = Transaction()
    tx.update("first-update", User(user_id=ALICE.user_id), [User.credits.add(1)], condition=User.credits > 1000)
    tx.put("a-put", LedgerEntry(user_id=1, entry_id="e", delta=1, reason="admin", created_at="t"))
    tx.check("a-check", User, BOB.user_id, None, User.user_id.does_not_exist())
    assert tx.labels == ["a-check", "a-put", "first-update"]
    with pytest.raises(TransactionCancelled) as cancelled:
        tx.commit()
    assert cancelled.value.failed("first-update")
    assert not cancelled.value.failed("a-put") and not cancelled.value.failed("a-check")
    assert balance(ALICE.user_id) == 10 and ledger_of(1) == []


def test_order_helper_fingerprint_differs_by_prompt() -> None:
    assert order("a").fingerprint != order("b").fingerprint


def test_a_pending_generation_is_requeued_at_most_once_per_interval() -> None:
    now = time.time()
    generation = start(ALICE, settings_with(GENERATION_TIMEOUT_SECONDS="3600"), now=now - 120).generation
    assert records.mark_requeued(generation, every_seconds=180, now=now)
    assert not records.mark_requeued(generation, every_seconds=180, now=now + 60)
    assert records.mark_requeued(generation, every_seconds=180, now=now + 180)
    money.claim_generation(ALICE.user_id, generation.generation_id, lease_seconds=LEASE, now=now + 181)
    assert not records.mark_requeued(generation, every_seconds=0, now=now + 181 + LEASE - 1)  # a worker holds it
    assert records.mark_requeued(generation, every_seconds=0, now=now + 181 + LEASE + 1)  # its lease ran out


def test_a_bot_key_replays_even_after_the_generation_failed() -> None:
    settings = ready()
    first = money.start_generation(
        ALICE, order(), settings, chat_id=1, source="bot", idempotency_key="tg:1:5", replay_any_status=True
    )
    money.fail_generation(first.generation, error=FailureReason.PROVIDER_FAILED)
    again = money.start_generation(
        ALICE, order(), settings, chat_id=1, source="bot", idempotency_key="tg:1:5", replay_any_status=True
    )
    assert again.replayed and again.generation.generation_id == first.generation.generation_id
    assert again.generation.status == "failed" and balance(ALICE.user_id) == 10


def test_fail_only_if_unclaimed_spares_a_generation_under_a_live_lease() -> None:
    now = time.time()
    generation = start(ALICE, ready(), now=now).generation
    claimed = money.claim_generation(ALICE.user_id, generation.generation_id, lease_seconds=60, now=now)
    assert claimed.generation is not None
    dead_letter = FailureReason.RETRIES_EXHAUSTED
    assert not money.fail_generation(generation, error=dead_letter, only_if_unclaimed=True, now=now + 30)
    assert balance(ALICE.user_id) == 9
    assert money.fail_generation(generation, error=dead_letter, only_if_unclaimed=True, now=now + 61)
    assert balance(ALICE.user_id) == 10
