"""The scheduled sweeper: what timed out is failed and refunded once; what lost its message is queued again."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

import app
from chalicelib import money
from chalicelib.errors import SweepFailed
from chalicelib.model import ClaimOutcome
from local.lambda_context import LocalLambdaContext
from local.worker import scheduled_event
from tests.worker_helpers import CHARGED, REFUNDED, Stack, generation, ledger, metrics_in


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

    assert sweep() == {"expired": 2, "requeued": 0, "failures": 0, "failed_phases": []}
    # The next minute: nothing twice.
    assert sweep() == {"expired": 0, "requeued": 0, "failures": 0, "failed_phases": []}

    # Each is told the truth about where its time went, that its credit is back, and what to do now.
    for job, why in ((waiting, "it waited too long in the queue."), (stuck, "drawing it took too long.")):
        failed = generation(job)
        assert (failed.status, failed.error) == ("failed", "Timed out.")  # the API's error is the same
        assert ledger(job) == REFUNDED
        [told] = stack.telegram.texts_to(job.user_id)
        assert told == (
            f"Sorry, your picture could not be made: {why}\n"
            "The 1 credit it cost went back to your balance. Please try again later."
        )
    assert generation(finished).status == "completed" and ledger(finished) == CHARGED
    assert generation(young).status == "pending" and ledger(young) == CHARGED
    assert stack.telegram.texts_to(young.user_id) == []
    money.cancel_generation(young.user_id, young.generation_id)


def test_a_pending_generation_older_than_a_minute_is_queued_again(stack: Stack) -> None:
    lost = stack.start_job("message lost", now=time.time() - 90)
    recent = stack.start_job("message on its way", now=time.time() - 20)

    assert sweep() == {"expired": 0, "requeued": 1, "failures": 0, "failed_phases": []}

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

    assert sweep() == {"expired": 3, "requeued": 0, "failures": 1, "failed_phases": []}

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
    assert sweep() == {"expired": 1, "requeued": 0, "failures": 0, "failed_phases": []}
    assert generation(broken).status == "failed" and ledger(broken) == REFUNDED
    assert len(stack.telegram.texts_to(broken.user_id)) == 1
    assert all(len(stack.telegram.texts_to(job.user_id)) == 1 for job in jobs)


# --- each phase on its own ---------------------------------------------------------
#
# Both phases read the unfinished-generations index: the expiry phase asks for
# ``timeout_at`` before now (+1 s), the re-queue phase before now + the timeout
# less a minute. A fault on every attempt of one phase's queries (botocore's
# retries included) makes that whole phase fail.


def phase_query(phase: str) -> Callable[[Any], bool]:
    """Selects the index queries of one phase ("expire" or "requeue") by the horizon they ask for."""

    def matches(call: Any) -> bool:
        values = call.params.get("ExpressionAttributeValues", {}).values()
        horizon = max(float(value["N"]) for value in values if "N" in value)
        return (horizon > time.time() + 60) == (phase == "requeue")

    return matches


def test_a_failing_expiry_query_still_lets_lost_generations_be_queued_again(
    stack: Stack, faults: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    expired = stack.start_job("timed out", now=time.time() - stack.settings.generation_timeout_seconds - 60)
    lost = stack.start_job("message lost", now=time.time() - 90)
    throttled = faults.throttle("Query", table="generations", times=None, where=phase_query("expire"))

    assert sweep() == {"expired": 0, "requeued": 1, "failures": 1, "failed_phases": ["expire"]}

    assert throttled.fired == 4  # the first query's every attempt; the phase stops there
    [record] = stack.receive()["Records"]
    assert json.loads(record["body"])["generation_id"] == lost.generation_id
    assert generation(expired).status == "pending" and ledger(expired) == CHARGED  # not refunded yet...
    assert stack.telegram.texts_to(expired.user_id) == []
    assert metrics_in(capsys.readouterr().out)["SweepFailures"] == 1

    faults.rules.clear()
    assert sweep()["expired"] == 1  # ... but by the next sweep, once
    assert generation(expired).status == "failed" and ledger(expired) == REFUNDED
    assert len(stack.telegram.texts_to(expired.user_id)) == 1
    money.cancel_generation(lost.user_id, lost.generation_id)


def test_a_failing_requeue_query_still_lets_expired_generations_be_refunded(
    stack: Stack, faults: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    expired = stack.start_job("timed out", now=time.time() - stack.settings.generation_timeout_seconds - 60)
    lost = stack.start_job("message lost", now=time.time() - 90)
    failing = faults.server_error("Query", table="generations", times=None, where=phase_query("requeue"))

    assert sweep() == {"expired": 1, "requeued": 0, "failures": 1, "failed_phases": ["requeue"]}

    assert failing.fired == 4
    assert generation(expired).status == "failed" and ledger(expired) == REFUNDED
    [told] = stack.telegram.texts_to(expired.user_id)
    assert "waited too long" in told
    assert stack.receive()["Records"] == [] and generation(lost).requeued_at is None
    assert metrics_in(capsys.readouterr().out)["SweepFailures"] == 1

    faults.rules.clear()
    assert sweep() == {"expired": 0, "requeued": 1, "failures": 0, "failed_phases": []}
    assert ledger(expired) == REFUNDED and len(stack.telegram.texts_to(expired.user_id)) == 1
    money.cancel_generation(lost.user_id, lost.generation_id)


def test_a_failing_enqueue_fails_only_the_requeue_phase(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    expired = stack.start_job("timed out", now=time.time() - stack.settings.generation_timeout_seconds - 60)
    lost = stack.start_job("message lost", now=time.time() - 90)
    with monkeypatch.context() as patch:
        patch.setattr("chalicelib.jobs.enqueue", lambda *args: (_ for _ in ()).throw(OSError("SQS unreachable")))
        assert sweep() == {"expired": 1, "requeued": 0, "failures": 1, "failed_phases": ["requeue"]}

    assert ledger(expired) == REFUNDED and generation(lost).status == "pending"
    money.cancel_generation(lost.user_id, lost.generation_id)


def test_when_every_phase_fails_the_sweeper_raises_so_its_errors_alarm_fires(
    stack: Stack, faults: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    expired = stack.start_job("timed out", now=time.time() - stack.settings.generation_timeout_seconds - 60)
    lost = stack.start_job("message lost", now=time.time() - 90)
    faults.time_out("Query", table="generations", times=None)

    with pytest.raises(SweepFailed, match="every phase of the sweep failed: expire, requeue"):
        sweep()

    assert metrics_in(capsys.readouterr().out)["SweepFailures"] == 2  # flushed although it raised
    assert generation(expired).status == "pending" and ledger(expired) == CHARGED
    assert stack.telegram.texts_to(expired.user_id) == [] and stack.receive()["Records"] == []

    faults.rules.clear()
    assert sweep() == {"expired": 1, "requeued": 1, "failures": 0, "failed_phases": []}
    assert ledger(expired) == REFUNDED
    money.cancel_generation(lost.user_id, lost.generation_id)
