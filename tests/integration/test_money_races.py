"""Races, on the one-request-at-a-time local AWS endpoint.

In-process moto is not thread-safe, and moto's threaded server loses
conditional updates, so only the serialized emulator can tell a correct
condition from a lucky one. The ``emulator`` fixture checks the money
invariants from the tables after each test.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import pytest

from chalicelib import money, queries
from chalicelib.errors import InsufficientCredits, NotCancellable
from chalicelib.model import Claim, ClaimOutcome, FailureReason, StartResult
from chalicelib.runtime import ready
from chalicelib.tables import Generation, LedgerEntry, User
from chalicelib.validation import credit_change_fingerprint
from tests.growth_helpers import race
from tests.money_helpers import ALICE, balance, settings_with, start

pytestmark = [pytest.mark.emulator, pytest.mark.usefixtures("emulator")]


def kinds(results: Sequence[object]) -> Counter[str]:
    return Counter(type(result).__name__ for result in results)


def test_fifty_concurrent_starts_accept_exactly_the_balance() -> None:
    settings = settings_with(MAX_ACTIVE_GENERATIONS="100", RATE_LIMIT_PER_MINUTE="1000")
    money.register(ALICE, settings)
    results = race(50, lambda i: start(ALICE, settings, cost=1, prompt=f"fox {i}"))
    assert kinds(results) == Counter({"StartResult": 10, "InsufficientCredits": 40})
    assert balance(ALICE.user_id) == 0
    assert len(list(Generation.query(ALICE.user_id))) == 10


def test_concurrent_registration_credits_the_welcome_bonus_once() -> None:
    settings = ready()
    results = race(20, lambda _: money.register(ALICE, settings))
    created = [result for result in results if isinstance(result, tuple) and result[1]]
    assert len(created) == 1
    assert all(isinstance(result, tuple) for result in results)
    welcome = [e for e in LedgerEntry.query(ALICE.user_id) if e.reason == "welcome"]
    assert len(welcome) == 1 and balance(ALICE.user_id) == 10


def test_concurrent_starts_with_one_idempotency_key_charge_once() -> None:
    settings = settings_with(MAX_ACTIVE_GENERATIONS="100")
    money.register(ALICE, settings)
    results = race(12, lambda _: start(ALICE, settings, key="same-key"))
    ids = {result.generation.generation_id for result in results if isinstance(result, StartResult)}
    assert kinds(results) == Counter({"StartResult": 12})
    assert len(ids) == 1
    assert balance(ALICE.user_id) == 9


def test_concurrent_cancel_and_claim_exactly_one_wins() -> None:
    settings = ready()
    for _ in range(5):  # a few rounds: either side may win, never both
        generation = start(ALICE, settings).generation

        def act(index: int, gid: str = generation.generation_id) -> object:
            if index == 0:
                return money.cancel_generation(ALICE.user_id, gid)
            return money.claim_generation(ALICE.user_id, gid, lease_seconds=60)

        cancel_result, claim_result = race(2, act)
        cancelled = isinstance(cancel_result, Generation)
        claimed = isinstance(claim_result, Claim) and claim_result.outcome == ClaimOutcome.CLAIMED
        assert cancelled != claimed, (cancel_result, claim_result)
        if cancelled:
            assert isinstance(claim_result, Claim) and claim_result.outcome == ClaimOutcome.FINISHED
        else:
            assert isinstance(cancel_result, NotCancellable)
            stored = queries.get_generation(ALICE.user_id, generation.generation_id)
            assert stored is not None
            money.fail_generation(stored, error=FailureReason.PROVIDER_FAILED)
    assert int(User.get(ALICE.user_id).active_generations) == 0


def test_concurrent_double_fail_refunds_once() -> None:
    generation = start(ALICE, ready(), cost=3).generation
    results = race(8, lambda _: money.fail_generation(generation, error=FailureReason.PROVIDER_FAILED))
    assert results.count(True) == 1 and results.count(False) == 7
    assert balance(ALICE.user_id) == 10
    refunds = [e for e in LedgerEntry.query(ALICE.user_id) if e.reason == "refund"]
    assert len(refunds) == 1


def test_concurrent_admin_debits_never_go_negative() -> None:
    money.register(ALICE, ready())
    results = race(16, lambda _: money.change_credits(ALICE.user_id, -3, note="race"))
    accepted = [result for result in results if isinstance(result, User)]
    assert len(accepted) == 3  # 10 credits cover three debits of 3
    assert balance(ALICE.user_id) == 1


def test_one_admin_credit_key_sent_at_once_from_many_threads_is_applied_once() -> None:
    """The operator's retries of one change, concurrent (a double tap, a retry racing a slow first try)."""
    money.register(ALICE, ready())
    fingerprint = credit_change_fingerprint(5, "goodwill")
    results = race(
        12,
        lambda _: money.change_credits(
            ALICE.user_id, 5, note="admin:token: goodwill", idempotency_key="same-key", fingerprint=fingerprint
        ),
    )
    assert kinds(results) == Counter({"User": 12})
    assert {int(result.credits) for result in results if isinstance(result, User)} == {15}
    assert balance(ALICE.user_id) == 15
    assert [int(e.delta) for e in LedgerEntry.query(ALICE.user_id) if e.reason == "admin"] == [5]


def test_one_admin_credit_key_with_two_bodies_at_once_applies_one_body_once() -> None:
    money.register(ALICE, ready())

    def act(index: int) -> object:
        amount = -3 if index % 2 else 4
        return money.change_credits(
            ALICE.user_id,
            amount,
            note="admin:token: fix",
            idempotency_key="same-key",
            fingerprint=credit_change_fingerprint(amount, "fix"),
        )

    results = race(10, act)
    [applied] = [int(e.delta) for e in LedgerEntry.query(ALICE.user_id) if e.reason == "admin"]
    winners = [result for index, result in enumerate(results) if (-3 if index % 2 else 4) == applied]
    losers = [result for index, result in enumerate(results) if (-3 if index % 2 else 4) != applied]
    assert all(isinstance(result, User) and int(result.credits) == 10 + applied for result in winners)
    assert kinds(losers) == Counter({"IdempotencyKeyReused": 5})
    assert balance(ALICE.user_id) == 10 + applied


def test_concurrent_sweeps_and_worker_fail_refund_once() -> None:
    settings = ready()
    generation = start(ALICE, settings, now=0 + 1_700_000_000).generation
    now = 1_700_000_000 + settings.generation_timeout_seconds + 5

    def act(index: int) -> object:
        if index % 2:
            return money.sweep_expired(now=now)
        return money.fail_generation(generation, error=FailureReason.RETRIES_EXHAUSTED, now=now)

    race(6, act)
    assert balance(ALICE.user_id) == 10
    refunds = [e for e in LedgerEntry.query(ALICE.user_id) if e.reason == "refund"]
    assert len(refunds) == 1


def test_insufficient_credit_races_leave_no_partial_state() -> None:
    settings = settings_with(MAX_ACTIVE_GENERATIONS="100", RATE_LIMIT_PER_MINUTE="1000")
    money.register(ALICE, settings)
    results = race(10, lambda _: start(ALICE, settings, cost=4))
    assert sum(isinstance(result, StartResult) for result in results) == 2
    assert sum(isinstance(result, InsufficientCredits) for result in results) == 8
    assert balance(ALICE.user_id) == 2
