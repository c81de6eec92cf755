"""The generation queue: what the API and the bot send to the worker."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from chalicelib import aws
from chalicelib.config import Settings
from chalicelib.errors import NanoGenError
from chalicelib.observability import count, logger


@dataclass(frozen=True)
class Job:
    user_id: int
    generation_id: str

    def to_message(self) -> str:
        return json.dumps({"user_id": self.user_id, "generation_id": self.generation_id})

    @classmethod
    def from_message(cls, body: str) -> Job:
        try:
            data: Any = json.loads(body)
            user_id, generation_id = data["user_id"], data["generation_id"]
        except (ValueError, TypeError, KeyError) as error:
            raise MalformedJob(f"not a generation job: {error}") from None
        if not isinstance(user_id, int) or isinstance(user_id, bool) or not isinstance(generation_id, str):
            raise MalformedJob("user_id must be an integer and generation_id a string")
        return cls(user_id=user_id, generation_id=generation_id)


ALBUM_CHECK = "album_check"


def album_check_message(check: dict[str, Any]) -> str:
    """A delayed "is this album complete?" message (``chalicelib.photos``), on the same queue."""
    return json.dumps({"kind": ALBUM_CHECK, **check})


def album_check_of(body: str) -> dict[str, Any] | None:
    """The album check a message carries, or None for anything else (a generation job)."""
    try:
        data: Any = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) and data.get("kind") == ALBUM_CHECK else None


def send_album_check(check: dict[str, Any], delay_seconds: int, settings: Settings) -> None:
    """Queue the check, visible after ``delay_seconds`` (SQS DelaySeconds: no sleeping in the webhook)."""
    aws.client("sqs").send_message(
        QueueUrl=generation_queue_url(settings),
        MessageBody=album_check_message(check),
        DelaySeconds=delay_seconds,
    )


class MalformedJob(NanoGenError):
    """A queue message that is not a generation job: it can never succeed."""


def generation_queue_url(settings: Settings) -> str:
    return settings.generation_queue_url or aws.queue_url(settings.generation_queue_name)


def send_to_worker(user_id: int, generation_id: str, settings: Settings) -> None:
    """Queue one paid generation. If SQS fails the charge stands: the sweeper re-queues it."""
    try:
        enqueue([Job(user_id=user_id, generation_id=generation_id)], settings)
    except Exception:
        logger.exception("could not queue the generation; the sweeper will retry")
        count("EnqueueFailures")


def enqueue(jobs: list[Job], settings: Settings) -> None:
    """Send jobs to the generation queue (batches of 10, SQS's limit)."""
    url = generation_queue_url(settings)
    sqs = aws.client("sqs")
    for start in range(0, len(jobs), 10):
        batch = jobs[start : start + 10]
        response = sqs.send_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(index), "MessageBody": job.to_message()} for index, job in enumerate(batch)],
        )
        if response.get("Failed"):
            raise NanoGenError(f"SQS refused {len(response['Failed'])} generation jobs")
