"""The SQS-triggered Lambdas: the generation worker and the dead-letter handler.

A batch's records run concurrently (Powertools' async batch processor over
a thread pool), so a batch of ten takes about as long as its slowest job.
Only the records that must be retried come back as ``batchItemFailures``.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.batch import AsyncBatchProcessor, EventType, async_process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chalicelib.generate import Worker
from chalicelib.http import flush_metrics
from chalicelib.jobs import Job, MalformedJob
from chalicelib.observability import logger
from chalicelib.providers import provider_from_settings
from chalicelib.runtime import ready
from chalicelib.telegram import get_bot_api

# Seconds kept back from the Lambda's remaining time for storing, completing
# and delivering after the provider answers.
SAFETY_MARGIN_SECONDS = 10.0
# One long-lived pool: its threads keep their DynamoDB sessions warm across
# invocations of a warm Lambda.
_POOL = ThreadPoolExecutor(max_workers=10, thread_name_prefix="job")


@lru_cache(maxsize=1)
def _worker() -> Worker:
    settings = ready()
    return Worker(settings=settings, provider=provider_from_settings(settings), bot=get_bot_api())


def reset_worker() -> None:
    _worker.cache_clear()


def _deadline(context: Any) -> float:
    remaining_ms = context.get_remaining_time_in_millis() if context is not None else 60_000
    return time.monotonic() + remaining_ms / 1000 - SAFETY_MARGIN_SECONDS


def _run_job(body: str, deadline: float) -> None:
    try:
        job = Job.from_message(body)
    except MalformedJob:
        logger.error("dropping a message that is not a generation job")
        return  # it can never succeed; retrying would only fill the dead-letter queue
    _worker().run(job, deadline=deadline)


def process_batch(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    ready()
    deadline = _deadline(context)
    processor = AsyncBatchProcessor(event_type=EventType.SQS)

    async def handle(record: SQSRecord) -> None:
        await asyncio.get_running_loop().run_in_executor(_POOL, _run_job, record.body, deadline)

    try:
        return async_process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
    finally:
        flush_metrics()


def _give_up(body: str) -> None:
    try:
        job = Job.from_message(body)
    except MalformedJob:
        logger.error("dead-lettered message is not a generation job; dropped")
        return
    _worker().give_up(job)


def process_dead_letters(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    ready()
    processor = AsyncBatchProcessor(event_type=EventType.SQS)

    async def handle(record: SQSRecord) -> None:
        await asyncio.get_running_loop().run_in_executor(_POOL, _give_up, record.body)

    try:
        return async_process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
    finally:
        flush_metrics()
