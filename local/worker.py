"""The local stand-in for Lambda's SQS triggers and the sweeper's schedule.

Polls the generation queue, the dead-letter queue and the broadcast queue
and hands each batch, shaped as Lambda's SQS event, to the very handlers
deployed as Lambdas (``app.generation_worker``, ``app.dead_letter_worker``,
``app.broadcast_worker``). As Lambda
does with ``ReportBatchItemFailures``, it deletes the records that succeeded
and leaves the reported failures to become visible again, so SQS redelivers
them and, after ``maxReceiveCount``, moves them to the dead-letter queue.
It also invokes ``app.sweeper`` every few seconds.

    python -m local.worker
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from chalicelib import aws
from chalicelib.observability import logger
from chalicelib.runtime import ready
from local.lambda_context import LocalLambdaContext

WORKER_TIMEOUT_SECONDS = 120
POLL_INTERVAL_SECONDS = 0.3
SWEEP_INTERVAL_SECONDS = float(os.environ.get("NANOGEN_SWEEP_INTERVAL", "10"))
_stop = threading.Event()


def lambda_sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """SQS messages (as ``ReceiveMessage`` returns them) in the shape Lambda gives an SQS-triggered function."""
    region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "messageAttributes": _lambda_message_attributes(message.get("MessageAttributes", {})),
                "md5OfBody": message.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for message in messages
        ]
    }


def _lambda_message_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """``{"StringValue", "DataType"}`` as the SQS API has it -> ``{"stringValue", "dataType"}`` as Lambda has it."""
    renamed = {
        "StringValue": "stringValue",
        "BinaryValue": "binaryValue",
        "StringListValues": "stringListValues",
        "BinaryListValues": "binaryListValues",
        "DataType": "dataType",
    }
    return {
        name: {renamed.get(key, key): value for key, value in attribute.items()}
        for name, attribute in attributes.items()
    }


def scheduled_event() -> dict[str, Any]:
    """An EventBridge scheduled event, as the sweeper receives it in AWS."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "resources": ["arn:aws:events:us-east-1:000000000000:rule/nanogen-sweeper"],
        "detail": {},
    }


def run_batch(
    handler: Callable[[dict[str, Any], Any], Any], queue_url: str, queue_arn: str, name: str, *, wait_seconds: int = 0
) -> int:
    """Receive one batch, invoke the handler, delete what succeeded. Returns the batch size."""
    sqs = aws.client("sqs")
    received = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=wait_seconds,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    )
    messages = received.get("Messages", [])
    if not messages:
        return 0
    event = lambda_sqs_event(messages, queue_arn)
    try:
        response = handler(event, LocalLambdaContext(name, WORKER_TIMEOUT_SECONDS)) or {}
        failed = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
    except Exception:
        logger.exception("handler %s raised: the whole batch will be redelivered", name)
        return len(messages)
    done = [m for m in messages if m["MessageId"] not in failed]
    if done:
        deleted = sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
        )
        for failure in deleted.get("Failed", []):
            logger.warning("could not delete a processed message; it will be redelivered", extra={"failure": failure})
    return len(messages)


def _poll_forever(handler: Callable[..., Any], queue_name: str, name: str) -> None:
    sqs = aws.client("sqs")
    url = aws.queue_url(queue_name)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    while not _stop.is_set():
        try:
            # Short polls: the local AWS serves one request at a time, so a
            # 20 s long poll would hold everyone else up for 20 s.
            if run_batch(handler, url, arn, name) == 0:
                _stop.wait(POLL_INTERVAL_SECONDS)
        except Exception:
            logger.exception("polling %s failed; retrying", queue_name)
            _stop.wait(2)


def _sweep_forever(sweeper: Callable[..., Any]) -> None:
    while not _stop.wait(SWEEP_INTERVAL_SECONDS):
        try:
            sweeper(scheduled_event(), LocalLambdaContext("sweeper", 60))
        except Exception:
            logger.exception("sweeper failed")


def main() -> None:
    import app as deployed  # the same module Lambda loads
    from chalicelib import bootstrap
    from local.offline_provider import OfflineProvider

    bootstrap.install_local_provider(OfflineProvider)  # used only while AIML_API_KEY is unset
    settings = ready()
    threads = [
        threading.Thread(
            target=_poll_forever,
            args=(deployed.generation_worker, settings.generation_queue_name, "generation_worker"),
            daemon=True,
        ),
        threading.Thread(
            target=_poll_forever,
            args=(deployed.dead_letter_worker, settings.dead_letter_queue_name, "dead_letter_worker"),
            daemon=True,
        ),
        threading.Thread(
            target=_poll_forever,
            args=(deployed.broadcast_worker, settings.broadcast_queue_name, "broadcast_worker"),
            daemon=True,
        ),
        threading.Thread(target=_sweep_forever, args=(deployed.sweeper,), daemon=True),
    ]
    signal.signal(signal.SIGTERM, lambda *_: _stop.set())
    signal.signal(signal.SIGINT, lambda *_: _stop.set())
    for thread in threads:
        thread.start()
    while not _stop.is_set():
        time.sleep(0.2)
    for thread in threads:
        thread.join(timeout=5)


if __name__ == "__main__":
    main()
