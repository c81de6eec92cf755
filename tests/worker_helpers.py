"""The worker tests' stack: the fakes of ``tests.fakes`` tied to moto.

* ``Stack`` ties ``FakeAiml`` and ``FakeTelegram`` to moto: generations are charged through
  ``money.start_generation``, jobs go through the real generation queue and
  come back as the SQS event Lambda would give ``app.generation_worker``.

A test module wires them up with two fixtures, in this order, so the
environment is in place before the ``aws`` fixture reads the settings::

    @pytest.fixture
    def stack_env(httpserver, monkeypatch): point_env(httpserver, monkeypatch)

    @pytest.fixture
    def stack(stack_env, aws, httpserver, monkeypatch): return make_stack(httpserver, monkeypatch)
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from chalicelib import aws, bootstrap, money, queries
from chalicelib.config import Settings, get_settings
from chalicelib.generate import Worker
from chalicelib.jobs import Job, generation_queue_url
from chalicelib.model import Profile
from chalicelib.providers import AimlClient
from chalicelib.runtime import ready
from chalicelib.tables import Generation, LedgerEntry
from local.lambda_context import LocalLambdaContext
from local.worker import lambda_sqs_event
from tests.conftest import reset_process_state
from tests.fakes.aiml import AIML_KEY, FakeAiml
from tests.fakes.telegram import FakeTelegram
from tests.money_helpers import order

ALERT_CHAT_ID = "-1009876543210"
LAMBDA_SECONDS = 120  # the worker Lambda's timeout


# --- The stack ------------------------------------------------------------------


def point_env(server: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Send AIML and Telegram calls to ``server``; operator alerts to ALERT_CHAT_ID."""
    base = server.url_for("/").rstrip("/")
    monkeypatch.setenv("AIML_API_KEY", AIML_KEY)
    monkeypatch.setenv("AIML_API_BASE", base)
    monkeypatch.setenv("TELEGRAM_API_BASE", base)
    monkeypatch.setenv("ALERT_CHAT_ID", ALERT_CHAT_ID)
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)


def serialize_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let in-process moto answer one request at a time, as AWS (and ``local.aws_server``) would.

    The worker runs a batch's jobs on a thread pool. moto's DynamoDB is not
    thread-safe (a transaction deep-copies whole tables and restores them on
    failure), so concurrent requests could corrupt the books in ways AWS never
    would. The jobs still run concurrently; only moto's request handling is serialized.
    """
    from moto.core.botocore_stubber import BotocoreStubber

    from local.aws_server import one_request_at_a_time

    monkeypatch.setattr(BotocoreStubber, "process_request", one_request_at_a_time(BotocoreStubber.process_request))


_user_ids = itertools.count(7001)


@dataclass
class Stack:
    server: HTTPServer
    aiml: FakeAiml
    telegram: FakeTelegram
    settings: Settings
    worker: Worker

    # -- generations -------------------------------------------------------

    def start_job(self, prompt: str = "a red fox in the snow", *, now: float | None = None, cost: int = 1) -> Job:
        """A new user (10 welcome credits) starts one generation: charged, pending, not yet queued."""
        user_id = next(_user_ids)
        profile = Profile(user_id=user_id, first_name=f"User{user_id}")
        result = money.start_generation(
            profile, order(prompt, cost), self.settings, chat_id=user_id, source="bot", now=now
        )
        return Job(user_id, result.generation.generation_id)

    # -- the queue and the Lambda ------------------------------------------------

    def queue_url(self) -> str:
        return generation_queue_url(self.settings)

    def queue_arn(self, queue_url: str | None = None) -> str:
        attributes = aws.client("sqs").get_queue_attributes(
            QueueUrl=queue_url or self.queue_url(), AttributeNames=["QueueArn"]
        )
        return str(attributes["Attributes"]["QueueArn"])

    def send(self, *bodies: str, queue_url: str | None = None) -> list[str]:
        """Put messages on the generation queue (or another); returns their message ids."""
        sqs, url = aws.client("sqs"), queue_url or self.queue_url()
        return [str(sqs.send_message(QueueUrl=url, MessageBody=body)["MessageId"]) for body in bodies]

    def receive(self, queue_url: str | None = None) -> dict[str, Any]:
        """Every visible message of the queue, as the SQS event Lambda would hand the function."""
        url = queue_url or self.queue_url()
        sqs = aws.client("sqs")
        messages: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])
            if not batch.get("Messages"):
                break
            messages.extend(batch["Messages"])
        return lambda_sqs_event(messages, self.queue_arn(url))

    def deliver(self, *jobs: Job) -> dict[str, Any]:
        """Queue the jobs and receive them: the event of one Lambda invocation."""
        self.send(*(job.to_message() for job in jobs))
        event = self.receive()
        assert len(event["Records"]) == len(jobs)
        return event

    def run(self, event: dict[str, Any], *, seconds_left: float = LAMBDA_SECONDS) -> list[str]:
        """Invoke ``app.generation_worker`` as Lambda does; returns the reported messageIds."""
        import app

        response = app.generation_worker(event, LocalLambdaContext("generation_worker", seconds_left))
        return failed_ids(response)

    def dead_letter_queue_url(self) -> str:
        return aws.queue_url(self.settings.dead_letter_queue_name)

    def shorten_queue_timing(self, *, visibility_timeout: int = 1, max_receive_count: int = 2) -> None:
        """The generation queue's timing shortened so a test can watch SQS redeliver and dead-letter."""
        redrive = {
            "deadLetterTargetArn": self.queue_arn(self.dead_letter_queue_url()),
            "maxReceiveCount": max_receive_count,
        }
        aws.client("sqs").set_queue_attributes(
            QueueUrl=self.queue_url(),
            Attributes={"VisibilityTimeout": str(visibility_timeout), "RedrivePolicy": json.dumps(redrive)},
        )

    def queue_depth(self, queue_url: str | None = None) -> tuple[int, int]:
        """(visible, in flight) messages of the queue."""
        attributes = aws.client("sqs").get_queue_attributes(
            QueueUrl=queue_url or self.queue_url(),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def run_dead_letters(self, event: dict[str, Any]) -> list[str]:
        import app

        response = app.dead_letter_worker(event, LocalLambdaContext("dead_letter_worker", 60))
        return failed_ids(response)

    def use(self, worker: Worker) -> Worker:
        """Run the next jobs with this worker (another provider, lease or clock)."""
        bootstrap.use_worker(worker)
        self.worker = worker
        return worker

    def worker_with(self, **changes: Any) -> Worker:
        """A copy of the installed worker with some fields changed, installed."""
        fields = {
            "settings": self.worker.settings,
            "provider": self.worker.provider,
            "bot": self.worker.bot,
            "lease_seconds": self.worker.lease_seconds,
            "clock": self.worker.clock,
            "wall_clock": self.worker.wall_clock,
        }
        return self.use(Worker(**{**fields, **changes}))

    # -- reading back ------------------------------------------------------------------

    def alerts(self) -> list[str]:
        return self.telegram.texts_to(ALERT_CHAT_ID)


def make_stack(server: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> Stack:
    """After ``point_env`` and the ``aws`` fixture: fakes registered, a fast-retrying worker installed."""
    if get_settings().aiml_api_base != server.url_for("/").rstrip("/"):
        reset_process_state()  # the environment was changed after the aws fixture read it
    settings = ready()
    serialize_moto(monkeypatch)
    aiml, telegram = FakeAiml(server), FakeTelegram(server)
    # The real client against the fake server; only the backoff between attempts is shortened.
    provider = AimlClient(AIML_KEY, settings.aiml_api_base, backoff_base=0.01)
    worker = Worker(settings=settings, provider=provider, bot=bootstrap.bot_api())
    bootstrap.use_worker(worker)
    return Stack(server=server, aiml=aiml, telegram=telegram, settings=settings, worker=worker)


# --- Assertions' helpers -----------------------------------------------------------


def failed_ids(response: Any) -> list[str]:
    assert isinstance(response, dict), f"the handler must answer with batchItemFailures, got {response!r}"
    return sorted(str(item["itemIdentifier"]) for item in response["batchItemFailures"])


def message_id(event: dict[str, Any], job: Job) -> str:
    [record] = [r for r in event["Records"] if json.loads(r["body"])["generation_id"] == job.generation_id]
    return str(record["messageId"])


def generation(job: Job) -> Generation:
    stored = queries.get_generation(job.user_id, job.generation_id)
    assert stored is not None
    return stored


def ledger(job: Job) -> list[tuple[str, int]]:
    """(reason, delta) of the user's ledger entries about this generation, oldest first."""
    entries = LedgerEntry.query(job.user_id, consistent_read=True)
    return [(str(e.reason), int(e.delta)) for e in entries if e.generation_id == job.generation_id]


def stored_result(settings: Settings, key: str) -> tuple[bytes, str]:
    stored = aws.client("s3").get_object(Bucket=settings.results_bucket, Key=key)
    return stored["Body"].read(), str(stored["ContentType"])


def metrics_in(output: str) -> dict[str, float]:
    """Sum of every CloudWatch EMF metric printed to ``output`` (Powertools' flush)."""
    totals: dict[str, float] = {}
    for line in output.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                name = metric["Name"]
                values = document[name] if isinstance(document[name], list) else [document[name]]
                totals[name] = totals.get(name, 0) + sum(values)
    return totals


@contextmanager
def crashing_after(
    monkeypatch: pytest.MonkeyPatch, target: Any, name: str, error: type[BaseException]
) -> Iterator[None]:
    """``target.name`` does its work, then raises ``error``: a crash right after that write."""
    original: Callable[..., Any] = getattr(target, name)

    def crash(*args: Any, **kwargs: Any) -> Any:
        original(*args, **kwargs)
        raise error(f"injected crash after {name}")

    with monkeypatch.context() as patch:
        patch.setattr(target, name, crash)
        yield


# What a user's ledger shows after one generation charged, and after its refund.
CHARGED = [("generation", -1)]
REFUNDED = [("generation", -1), ("refund", 1)]


@pytest.fixture
def stack_env(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The app pointed at the fake AIML and Telegram servers (before moto starts)."""
    point_env(httpserver, monkeypatch)


@pytest.fixture
def stack(stack_env: None, aws: None, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> Stack:
    return make_stack(httpserver, monkeypatch)
