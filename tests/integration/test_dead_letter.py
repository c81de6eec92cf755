"""The dead-letter path: a job SQS gave up on is failed and refunded exactly once, with one operator alert.

The generation queue runs with real SQS semantics on moto (receive counts,
visibility, redrive to the dead-letter queue after ``maxReceiveCount``),
polled by ``local.worker.run_batch`` exactly as Lambda's event source would.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

import app
from chalicelib import money
from chalicelib.handlers import worker as worker_handler
from local.worker import run_batch
from tests.fakes.aiml import aiml_error
from tests.worker_helpers import CHARGED, REFUNDED, Stack, failed_ids, generation, ledger, message_id


def test_a_job_that_keeps_failing_is_dead_lettered_then_refunded_once_with_one_alert(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack.shorten_queue_timing(visibility_timeout=1, max_receive_count=2)
    monkeypatch.setattr(worker_handler, "RETRY_BASE_SECONDS", 0)  # each retry visible at once: no sleeping
    job = stack.start_job("always failing")
    stack.aiml.script("always failing", aiml_error(500, "Internal server error"))
    [sent_id] = stack.send(job.to_message())
    queue, dlq = stack.queue_url(), stack.dead_letter_queue_url()
    reported: list[list[str]] = []

    def generation_worker(event: dict[str, Any], context: Any) -> Any:
        response = app.generation_worker(event, context)
        reported.append(failed_ids(response))
        return response

    for receive in (1, 2):
        assert run_batch(generation_worker, queue, stack.queue_arn(), "generation_worker") == 1
        released = generation(job)
        assert (released.status, released.claim_token, int(released.attempts)) == ("pending", None, receive)
    # The third receive finds the message past maxReceiveCount: SQS moves it to the dead-letter queue.
    assert run_batch(generation_worker, queue, stack.queue_arn(), "generation_worker") == 0
    assert reported == [[sent_id], [sent_id]]
    assert stack.aiml.calls_for("always failing") == 2 * 3
    assert ledger(job) == CHARGED and stack.telegram.calls == []
    assert stack.queue_depth(dlq) == (1, 0)

    assert run_batch(app.dead_letter_worker, dlq, stack.queue_arn(dlq), "dead_letter_worker") == 1

    failed = generation(job)
    assert (failed.status, failed.error) == ("failed", "Failed after repeated attempts.")
    assert ledger(job) == REFUNDED
    [told] = stack.telegram.texts_to(job.user_id)
    assert "kept failing" in told and "went back to your balance" in told
    [alert] = stack.alerts()
    assert "dead-letter" in alert and job.generation_id in alert
    assert stack.queue_depth(dlq) == (0, 0)  # handled: deleted

    # The same message dead-lettered again (a duplicate) changes nothing.
    calls = len(stack.telegram.calls)
    stack.send(job.to_message(), queue_url=dlq)
    assert run_batch(app.dead_letter_worker, dlq, stack.queue_arn(dlq), "dead_letter_worker") == 1
    assert ledger(job) == REFUNDED and len(stack.telegram.calls) == calls
    assert stack.queue_depth(dlq) == (0, 0)


def test_dead_letters_for_finished_missing_or_malformed_jobs_change_nothing(stack: Stack) -> None:
    completed, cancelled = stack.start_job("finished"), stack.start_job("cancelled")
    assert stack.run(stack.deliver(completed)) == []
    money.cancel_generation(cancelled.user_id, cancelled.generation_id)
    missing = '{"user_id": 424242, "generation_id": "01NOSUCHGENERATION000000000"}'
    dlq = stack.dead_letter_queue_url()
    stack.send(completed.to_message(), cancelled.to_message(), missing, "{broken", queue_url=dlq)
    telegram_calls = len(stack.telegram.calls)

    assert stack.run_dead_letters(stack.receive(dlq)) == []

    assert generation(completed).status == "completed" and ledger(completed) == CHARGED
    assert generation(cancelled).status == "cancelled" and ledger(cancelled) == REFUNDED
    assert len(stack.telegram.calls) == telegram_calls and stack.alerts() == []


def test_a_dead_letter_waits_while_a_worker_holds_a_live_lease(stack: Stack) -> None:
    job = stack.start_job()
    now = time.time()
    assert money.claim_generation(job.user_id, job.generation_id, lease_seconds=150, now=now).generation
    dlq = stack.dead_letter_queue_url()
    stack.send(job.to_message(), queue_url=dlq)
    event = stack.receive(dlq)

    # Someone may still be generating it: failing it now would throw away a paid picture.
    assert stack.run_dead_letters(event) == [message_id(event, job)]
    assert generation(job).status == "processing" and ledger(job) == CHARGED

    # Once the lease is over nobody holds it: fail, refund, alert.
    stack.worker_with(wall_clock=lambda: now + 151)
    assert stack.run_dead_letters(event) == []
    assert generation(job).status == "failed" and ledger(job) == REFUNDED
    assert len(stack.alerts()) == 1


def test_a_completed_picture_whose_five_deliveries_were_deferred_is_delivered_by_the_dead_letter_handler(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack.shorten_queue_timing(visibility_timeout=1, max_receive_count=5)
    job = stack.start_job("telegram is busy")
    # Telegram answers 429 to every delivery SQS makes (the Bot API client tries 3 times
    # within a receive): each of the five receives defers it.
    stack.telegram.refuse_next("sendPhoto", 429, "Too Many Requests: retry after 0", retry_after=0, times=5 * 3)
    stack.send(job.to_message())
    queue, dlq = stack.queue_url(), stack.dead_letter_queue_url()

    for _ in range(5):
        assert run_batch(app.generation_worker, queue, stack.queue_arn(), "generation_worker") == 1
        assert generation(job).status == "completed" and not generation(job).delivered
    assert run_batch(app.generation_worker, queue, stack.queue_arn(), "generation_worker") == 0
    assert stack.queue_depth(dlq) == (1, 0)
    assert stack.aiml.calls_for("telegram is busy") == 1 and ledger(job) == CHARGED

    # Charged and completed, never sent: the dead-letter handler delivers it (before: it ignored it).
    assert run_batch(app.dead_letter_worker, dlq, stack.queue_arn(dlq), "dead_letter_worker") == 1

    done = generation(job)
    assert (done.status, done.delivered) == ("completed", True)
    sends = stack.telegram.pictures_to(job.user_id)
    assert len(sends) == 5 * 3 + 1  # five deliveries refused, the dead-letter handler's sent
    assert ledger(job) == CHARGED and stack.alerts() == []
    assert stack.queue_depth(dlq) == (0, 0)

    # A duplicate dead letter sends nothing again.
    stack.send(job.to_message(), queue_url=dlq)
    assert run_batch(app.dead_letter_worker, dlq, stack.queue_arn(dlq), "dead_letter_worker") == 1
    assert len(stack.telegram.pictures_to(job.user_id)) == 5 * 3 + 1 and ledger(job) == CHARGED


def test_a_dead_lettered_picture_that_still_cannot_be_delivered_alerts_the_operator_and_stays(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = stack.start_job("still busy")
    # The worker's delivery and the dead-letter handler's first one are refused (3 tries each).
    stack.telegram.refuse_next("sendPhoto", 429, "Too Many Requests: retry after 0", retry_after=0, times=2 * 3)
    event = stack.deliver(job)
    assert stack.run(event) == [message_id(event, job)]
    dlq = stack.dead_letter_queue_url()
    stack.send(job.to_message(), queue_url=dlq)
    dead = stack.receive(dlq)

    assert stack.run_dead_letters(dead) == [message_id(dead, job)]  # kept: tried again later
    [alert] = stack.alerts()
    assert "undelivered" in alert and job.generation_id in alert
    assert generation(job).status == "completed" and not generation(job).delivered and ledger(job) == CHARGED

    assert stack.run_dead_letters(dead) == []
    assert generation(job).delivered and ledger(job) == CHARGED
    assert len(stack.telegram.pictures_to(job.user_id)) == 2 * 3 + 1


def test_a_dead_lettered_picture_whose_results_cannot_be_read_alerts_the_operator_and_stays(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import ClientError

    from chalicelib import results

    job = stack.start_job("results unreadable")
    stack.telegram.refuse_next("sendPhoto", 429, "Too Many Requests: retry after 0", retry_after=0, times=3)
    event = stack.deliver(job)
    assert stack.run(event) == [message_id(event, job)]
    load_images = results.load_images

    def access_denied(*args: Any, **kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "GetObject")

    monkeypatch.setattr(results, "load_images", access_denied)  # e.g. a role without s3:GetObject
    dlq = stack.dead_letter_queue_url()
    stack.send(job.to_message(), queue_url=dlq)
    dead = stack.receive(dlq)

    assert stack.run_dead_letters(dead) == [message_id(dead, job)]  # kept: tried again later
    [alert] = stack.alerts()
    assert "undelivered" in alert and job.generation_id in alert and "AccessDenied" in alert
    assert generation(job).status == "completed" and not generation(job).delivered and ledger(job) == CHARGED

    monkeypatch.setattr(results, "load_images", load_images)
    assert stack.run_dead_letters(dead) == []
    assert generation(job).delivered and ledger(job) == CHARGED
