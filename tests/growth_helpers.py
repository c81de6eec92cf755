"""Shared by the growth tests: races, promo and broadcast calls, and running the broadcast queue."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from chalicelib import aws, broadcasts
from chalicelib.runtime import ready
from tests.api_helpers import Reply, bearer, call

T = TypeVar("T")


def race(count: int, action: Callable[[int], T]) -> list[T | BaseException]:
    """Run ``action(i)`` ``count`` times at once, released together by a barrier."""
    barrier = threading.Barrier(count)

    def run(index: int) -> T | BaseException:
        barrier.wait()
        try:
            return action(index)
        except BaseException as error:  # the caller inspects what each attempt got
            return error

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def create_promo(code: str = "SPRING-25", credits: int = 25, max_uses: int = 5, **fields: Any) -> Reply:
    body = {"code": code, "credits": credits, "max_uses": max_uses, **fields}
    return call("POST", "/api/admin/promo-codes", headers=bearer(), json_body=body)


def create_broadcast(text: Any = "Hello from NanoGen!", audience: str = "all") -> Reply:
    return call("POST", "/api/admin/broadcasts", headers=bearer(), json_body={"text": text, "audience": audience})


def broadcast_status(broadcast_id: str) -> Reply:
    return call("GET", f"/api/admin/broadcasts/{broadcast_id}", headers=bearer())


def queued_pages() -> list[dict[str, Any]]:
    """Receive (and delete) every message on the broadcast queue, as Lambda's SQS records."""
    sqs = aws.client("sqs")
    url = broadcasts.queue_url(ready())
    records: list[dict[str, Any]] = []
    while True:
        answer = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, AttributeNames=["ApproximateReceiveCount"]
        )
        messages = answer.get("Messages", [])
        if not messages:
            return records
        for message in messages:
            records.append(
                {
                    "messageId": message["MessageId"],
                    "body": message["Body"],
                    "attributes": message.get("Attributes", {}),
                }
            )
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


class _Context:
    """Just enough of a Lambda context: the time left, fixed."""

    def __init__(self, remaining_seconds: float) -> None:
        self.remaining_seconds = remaining_seconds

    def get_remaining_time_in_millis(self) -> int:
        return int(self.remaining_seconds * 1000)


def run_broadcast_worker(
    record: dict[str, Any], *, receive_count: int | None = None, remaining_seconds: float | None = None
) -> None:
    """Invoke the deployed handler (``app.broadcast_worker``) with one SQS record."""
    import app

    if receive_count is not None:
        record = {
            **record,
            "attributes": {**record.get("attributes", {}), "ApproximateReceiveCount": str(receive_count)},
        }
    event = {"Records": [{**record, "eventSource": "aws:sqs", "receiptHandle": "r", "md5OfBody": ""}]}
    app.broadcast_worker(event, None if remaining_seconds is None else _Context(remaining_seconds))


def drain_broadcasts(max_pages: int = 1000, *, remaining_seconds: float | None = None) -> list[dict[str, Any]]:
    """Run the broadcast worker until its queue is empty; returns every record it ran."""
    ran: list[dict[str, Any]] = []
    while len(ran) < max_pages:
        records = queued_pages()
        if not records:
            return ran
        for record in records:
            run_broadcast_worker(record, remaining_seconds=remaining_seconds)
            ran.append(record)
    raise AssertionError("the broadcast queue never drained")
