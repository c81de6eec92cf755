"""The SQS-triggered Lambdas: the generation worker and the dead-letter handler.

A batch's records run concurrently (Powertools' async batch processor over
a thread pool), so a batch of ten takes about as long as its slowest job.
Only the records that must be retried come back as ``batchItemFailures``,
and each of them is made visible again after its own backoff
(``retry_delay``): the queue's visibility timeout (150 s, the Lambda's 120 s
plus a 30 s margin, ``infra.resources.VISIBILITY_TIMEOUT_SECONDS``) is what a
crashed or timed-out attempt waits; a retry left to it would take half of a
generation's 300 s life, where a Telegram ``retry_after`` or a short backoff
is enough.
"""

from __future__ import annotations

import asyncio
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.batch import AsyncBatchProcessor, EventType, async_process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chalicelib import aws, bootstrap, jobs
from chalicelib.config import Settings
from chalicelib.generate import RetryLater
from chalicelib.http import flush_metrics
from chalicelib.jobs import Job, MalformedJob
from chalicelib.observability import logger
from chalicelib.runtime import ready

# Seconds kept back from the Lambda's remaining time for storing, completing
# and delivering after the provider answers.
SAFETY_MARGIN_SECONDS = 10.0
# A retried record comes back after RETRY_BASE_SECONDS, doubled at each
# receive, at most RETRY_MAX_SECONDS; unless its failure says when (Telegram's
# retry_after, the end of another worker's lease). With the default five
# receives the dead-letter queue is reached well within GENERATION_TIMEOUT_SECONDS.
RETRY_BASE_SECONDS = 10
RETRY_MAX_SECONDS = 60
_MAX_VISIBILITY_SECONDS = 12 * 3600  # SQS's limit
# One long-lived pool: its threads keep their DynamoDB sessions warm across
# invocations of a warm Lambda.
_POOL = ThreadPoolExecutor(max_workers=10, thread_name_prefix="job")


@dataclass(frozen=True)
class _Retry:
    receipt_handle: str
    delay_seconds: int


def retry_delay(error: BaseException, receive_count: int) -> int:
    """Seconds before a failed record is delivered again."""
    if isinstance(error, RetryLater) and error.retry_after is not None:
        return min(max(0, math.ceil(error.retry_after)), _MAX_VISIBILITY_SECONDS)
    return min(RETRY_BASE_SECONDS * 2 ** max(0, receive_count - 1), RETRY_MAX_SECONDS)


def _receive_count(record: SQSRecord) -> int:
    try:
        return int(record.raw_event.get("attributes", {}).get("ApproximateReceiveCount", 1))
    except (TypeError, ValueError):
        return 1


def _deadline(context: Any) -> float:
    remaining_ms = context.get_remaining_time_in_millis() if context is not None else 60_000
    return time.monotonic() + remaining_ms / 1000 - SAFETY_MARGIN_SECONDS


def _run_job(body: str, deadline: float) -> None:
    album_check = jobs.album_check_of(body)
    if album_check is not None:
        from chalicelib import photos

        # A complete album's generation runs here and now. A retry of this message
        # replays the charge (idempotent) and runs the same job again: Worker.run
        # generates it if still pending, delivers it if completed but undelivered.
        worker = bootstrap.worker()
        started = photos.check_album(album_check, worker.bot, worker.settings)
        if started is None:
            return
        job = started
    else:
        try:
            job = Job.from_message(body)
        except MalformedJob:
            logger.error("dropping a message that is not a generation job")
            return  # it can never succeed; retrying would only fill the dead-letter queue
    try:
        bootstrap.worker().run(job, deadline=deadline)
    except RetryLater as retry:
        logger.warning("job will be retried: %s", retry, extra={"retry_after": retry.retry_after})
        raise
    except Exception:
        logger.exception("job failed unexpectedly; it will be retried")
        raise


def _delay_retries(retries: list[_Retry], settings: Settings) -> None:
    """Set each failed record's visibility to its backoff. Best effort: else the queue's timeout applies."""
    if not retries:
        return
    try:
        sqs = aws.client("sqs")
        url = jobs.generation_queue_url(settings)
        for start in range(0, len(retries), 10):
            chunk = retries[start : start + 10]
            response = sqs.change_message_visibility_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": retry.receipt_handle, "VisibilityTimeout": retry.delay_seconds}
                    for index, retry in enumerate(chunk)
                ],
            )
            for failure in response.get("Failed", []):
                logger.warning("could not set a retry's visibility", extra={"sqs_failure": failure})
    except Exception:
        logger.exception("could not set the retries' visibility; the queue's visibility timeout applies")


def process_batch(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    settings = ready()
    deadline = _deadline(context)
    processor = AsyncBatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    retries: list[_Retry] = []

    async def handle(record: SQSRecord) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(_POOL, _run_job, record.body, deadline)
        except Exception as error:
            retries.append(_Retry(record.receipt_handle, retry_delay(error, _receive_count(record))))
            raise

    try:
        response = async_process_partial_response(
            event=event, record_handler=handle, processor=processor, context=context
        )
        _delay_retries(retries, settings)
        return response
    finally:
        flush_metrics()


def _give_up(body: str) -> None:
    album_check = jobs.album_check_of(body)
    if album_check is not None:
        from chalicelib import photos

        # The album check is the only message of an album's generation (it runs it
        # itself): if it ordered one, that generation gets the dead-letter treatment of
        # any job (delivered if completed, else failed and refunded unless still live).
        album_job = photos.album_generation(album_check)
        if album_job is None:
            logger.warning("dead-lettered album check without a generation dropped")
            return
        job = album_job
    else:
        try:
            job = Job.from_message(body)
        except MalformedJob:
            logger.error("dead-lettered message is not a generation job; dropped")
            return
    try:
        bootstrap.worker().give_up(job)
    except RetryLater as retry:
        logger.info("dead-lettered job left for later: %s", retry)
        raise


def process_dead_letters(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    ready()
    processor = AsyncBatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

    async def handle(record: SQSRecord) -> None:
        await asyncio.get_running_loop().run_in_executor(_POOL, _give_up, record.body)

    try:
        return async_process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
    finally:
        flush_metrics()
