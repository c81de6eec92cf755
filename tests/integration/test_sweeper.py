"""The scheduled sweeper: what timed out is failed and refunded once; what lost its message is queued again."""

from __future__ import annotations

import json
import time
from typing import Any

import app
from chalicelib import money
from chalicelib.model import ClaimOutcome
from local.lambda_context import LocalLambdaContext
from local.worker import scheduled_event
from tests.worker_helpers import CHARGED, REFUNDED, Stack, generation, ledger


def sweep() -> Any:
    return app.sweeper(scheduled_event(), LocalLambdaContext("sweeper", 60))


def test_expired_generations_are_refunded_once_and_their_users_told(stack: Stack) -> None:
    long_ago = time.time() - stack.settings.generation_timeout_seconds - 60
    waiting = stack.start_job("never picked up", now=long_ago)
    stuck = stack.start_job("worker died", now=long_ago)
    claim = money.claim_generation(stuck.user_id, stuck.generation_id, lease_seconds=150, now=long_ago + 5)
    assert claim.outcome == ClaimOutcome.CLAIMED
    finished = stack.start_job("done long ago", now=long_ago)
    stack.worker_with(wall_clock=lambda: long_ago + 10)  # its worker ran in time
    assert stack.run(stack.deliver(finished)) == []
    stack.worker_with(wall_clock=time.time)
    young = stack.start_job("just started")

    assert sweep() == {"expired": 2, "requeued": 0, "failures": 0}
    assert sweep() == {"expired": 0, "requeued": 0, "failures": 0}  # the next minute: nothing twice

    for job in (waiting, stuck):
        failed = generation(job)
        assert (failed.status, failed.error) == ("failed", "Timed out.")
        assert ledger(job) == REFUNDED
        [told] = stack.telegram.texts_to(job.user_id)
        assert "waited too long" in told and "The 1 credit it cost went back to your balance." in told
    assert generation(finished).status == "completed" and ledger(finished) == CHARGED
    assert generation(young).status == "pending" and ledger(young) == CHARGED
    assert stack.telegram.texts_to(young.user_id) == []
    money.cancel_generation(young.user_id, young.generation_id)


def test_a_pending_generation_older_than_a_minute_is_queued_again(stack: Stack) -> None:
    lost = stack.start_job("message lost", now=time.time() - 90)
    recent = stack.start_job("message on its way", now=time.time() - 20)

    assert sweep() == {"expired": 0, "requeued": 1, "failures": 0}

    event = stack.receive()
    assert [json.loads(record["body"]) for record in event["Records"]] == [
        {"user_id": lost.user_id, "generation_id": lost.generation_id}
    ]
    assert stack.run(event) == []  # and the worker takes it from there
    assert generation(lost).status == "completed" and len(stack.telegram.pictures_to(lost.user_id)) == 1
    assert ledger(lost) == CHARGED
    assert generation(recent).status == "pending"
    money.cancel_generation(recent.user_id, recent.generation_id)


def test_one_failing_generation_does_not_stop_the_sweep_and_each_refunded_user_is_told(
    stack: Stack, faults: Any
) -> None:
    long_ago = time.time() - stack.settings.generation_timeout_seconds - 60
    jobs = [stack.start_job(f"expired {n}", now=long_ago + n) for n in range(4)]
    broken = jobs[1]
    # Every attempt at that one generation's refund times out (botocore's retries included).
    fault = faults.time_out(
        "TransactWriteItems", times=None, where=lambda call: broken.generation_id in json.dumps(call.params)
    )

    assert sweep() == {"expired": 3, "requeued": 0, "failures": 1}

    assert fault.fired >= 1
    for job in jobs:
        if job is broken:
            assert generation(job).status == "pending" and ledger(job) == CHARGED
            assert stack.telegram.texts_to(job.user_id) == []
        else:
            assert generation(job).status == "failed" and ledger(job) == REFUNDED
            [told] = stack.telegram.texts_to(job.user_id)
            assert "waited too long" in told and "went back to your balance" in told

    # The next sweep, with DynamoDB well again, ends the one left and tells its user once.
    faults.rules.clear()
    assert sweep() == {"expired": 1, "requeued": 0, "failures": 0}
    assert generation(broken).status == "failed" and ledger(broken) == REFUNDED
    assert len(stack.telegram.texts_to(broken.user_id)) == 1
    assert all(len(stack.telegram.texts_to(job.user_id)) == 1 for job in jobs)
