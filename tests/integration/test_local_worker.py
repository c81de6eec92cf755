"""The local stand-in for Lambda's SQS event source (``local.worker``) and its context object.

``run_batch`` must keep Lambda's partial-batch contract: records reported in
``batchItemFailures`` stay on the queue and come back, the rest are deleted,
and a handler that raises leaves the whole batch for redelivery.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from moto.sqs import models as sqs_models

import app
from chalicelib import aws
from chalicelib.handlers import worker as worker_handler
from local.lambda_context import LocalLambdaContext
from local.worker import lambda_sqs_event, run_batch
from tests.fakes.aiml import aiml_error, b64_answer
from tests.worker_helpers import Stack, generation, ledger


def test_lambda_sqs_event_has_lambdas_record_shape(stack: Stack) -> None:
    sqs = aws.client("sqs")
    for body in ("first", "second"):
        sqs.send_message(
            QueueUrl=stack.queue_url(),
            MessageBody=body,
            MessageAttributes={"source": {"DataType": "String", "StringValue": "bot"}},
        )
    received = sqs.receive_message(
        QueueUrl=stack.queue_url(), MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
    )["Messages"]

    event = lambda_sqs_event(received, stack.queue_arn())

    records = event["Records"]
    assert sorted(record["body"] for record in records) == ["first", "second"]
    assert len({record["messageId"] for record in records}) == 2
    for record, message in zip(records, received, strict=True):
        assert record["messageId"] == message["MessageId"] and record["receiptHandle"] == message["ReceiptHandle"]
        assert record["attributes"]["ApproximateReceiveCount"] == "1"
        assert record["messageAttributes"] == {"source": {"dataType": "String", "stringValue": "bot"}}
        assert (record["eventSource"], record["eventSourceARN"]) == ("aws:sqs", stack.queue_arn())


def test_run_batch_deletes_what_succeeded_and_redelivers_failures_after_their_backoff(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The queue keeps its deployed 12-minute visibility timeout; the worker's own backoff brings retries back.
    monkeypatch.setattr(worker_handler, "RETRY_BASE_SECONDS", 1)
    # SQS's clock stands still unless moved: "not before its backoff" no longer depends on the next
    # receive coming within the second (a busy machine), nor "after it" on a sleep.
    sqs_now = [sqs_models.unix_time_millis()]
    monkeypatch.setattr(sqs_models, "unix_time_millis", lambda: sqs_now[0])
    fine, flaky = stack.start_job("fine"), stack.start_job("flaky")
    outage = aiml_error(503, "Service unavailable")
    stack.aiml.script("flaky", outage, outage, outage, b64_answer())
    stack.send(fine.to_message(), flaky.to_message())
    url, arn = stack.queue_url(), stack.queue_arn()

    assert run_batch(app.generation_worker, url, arn, "generation_worker") == 2
    assert generation(fine).status == "completed" and generation(flaky).status == "pending"
    assert stack.queue_depth() == (0, 1)  # fine deleted; flaky in flight until its backoff ends
    assert run_batch(app.generation_worker, url, arn, "generation_worker") == 0

    sqs_now[0] += 999
    assert run_batch(app.generation_worker, url, arn, "generation_worker") == 0  # not a moment before
    sqs_now[0] += 2
    assert run_batch(app.generation_worker, url, arn, "generation_worker") == 1
    assert generation(flaky).status == "completed" and int(generation(flaky).attempts) == 2
    assert stack.queue_depth() == (0, 0)
    assert ledger(fine) == ledger(flaky) == [("generation", -1)]


def test_run_batch_leaves_the_whole_batch_when_the_handler_raises(stack: Stack) -> None:
    stack.send("one", "two")

    def broken(event: dict[str, Any], context: Any) -> Any:
        raise RuntimeError("the function crashed")

    assert run_batch(broken, stack.queue_url(), stack.queue_arn(), "generation_worker") == 2
    assert stack.queue_depth() == (0, 2)  # nothing deleted: both come back after the visibility timeout


def test_local_lambda_context_counts_down_and_never_below_zero() -> None:
    context = LocalLambdaContext("generation_worker", 120)
    first = context.get_remaining_time_in_millis()
    time.sleep(0.05)
    assert 119_000 < context.get_remaining_time_in_millis() < first <= 120_000
    assert LocalLambdaContext("generation_worker", -5).get_remaining_time_in_millis() == 0
    assert context.function_name == "generation_worker" and context.aws_request_id
