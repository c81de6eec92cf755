"""The local AWS endpoint must be exact under concurrency, as DynamoDB is."""

from __future__ import annotations

import pytest

from bench.moto_concurrency import race

pytestmark = pytest.mark.emulator

STARTING_BALANCE = 200
THREADS = 16
ATTEMPTS = 400


def test_conditional_decrements_never_exceed_the_balance(emulator: str) -> None:
    successes, final, other_errors = race(emulator, THREADS, ATTEMPTS, STARTING_BALANCE)

    assert other_errors == 0  # every refusal is a ConditionalCheckFailedException
    assert successes == STARTING_BALANCE
    assert final == 0
