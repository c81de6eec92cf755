"""How long a batch of 10 jobs takes in ``app.generation_worker``, against 10 x the provider's latency.

The worker runs a batch's records concurrently, so a batch should take about
as long as one job (the provider's latency L plus some bookkeeping), not
10 x L. This runs the real handler with a real SQS event against moto
(in-process, answering one request at a time as ``local.aws_server`` does
for ``make run``). The provider is the real AIML client talking to a local
threaded server (its own process) that answers like AIML after L seconds;
Telegram is the real Bot API client talking to the same server. ``--offline`` uses the offline
provider instead (it sleeps L, then draws a PNG: ~80 ms of CPU per picture
that the GIL serializes, so it measures Pillow as much as the worker).

The bookkeeping (about 40 moto requests per batch: claim, S3 upload,
completion transaction, delivered flag) is served one request at a time
here, where AWS serves it concurrently; it is most of what the batch takes
beyond L, and it grows when other processes compete for the CPU.

    .venv/bin/python -m bench.worker_batch [--latency 1.0] [--jobs 10] [--offline]

Exit status 0 when the median warm batch takes less than 1.5 x L.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import multiprocessing
import os
import socket
import sys
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from statistics import median
from typing import Any

from chalicelib import queries
from chalicelib.model import GenerationOrder, Profile

JOBS_PER_BATCH = 10  # the worker's SQS batch size (app.py)
WARM_BATCHES = 3  # judged on their median, so another process's burst does not decide
LIMIT_FACTOR = 1.5
BOT_TOKEN = "4242424242:BenchTokenForNanoGenWorkerBatch_abc"  # noqa: S105 - a fake, for the local fake Bot API
AIML_KEY = "sk-bench-not-a-real-key"


def _environment() -> None:
    """A private stage; Telegram and AIML are pointed at the fake services later (or stay offline / dry run)."""
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "NANOGEN_STAGE": "bench",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_METRICS_DISABLED": "true",
        }
    )
    for name in ("TELEGRAM_BOT_TOKEN", "AIML_API_KEY", "GENERATION_QUEUE_URL", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)


@contextlib.contextmanager
def _moto_one_request_at_a_time() -> Iterator[None]:
    """moto in this process, answering one request at a time (as ``local.aws_server`` does for ``make run``).

    moto's DynamoDB is not thread-safe (a transaction copies and restores whole
    tables), so the batch's threads must not reach it concurrently; in-process
    it costs about half as much per request as over HTTP.
    """
    from moto import mock_aws
    from moto.core.botocore_stubber import BotocoreStubber

    from local.aws_server import one_request_at_a_time

    original = BotocoreStubber.process_request
    with mock_aws():
        BotocoreStubber.process_request = one_request_at_a_time(original)  # type: ignore[method-assign]
        try:
            yield
        finally:
            BotocoreStubber.process_request = original  # type: ignore[method-assign]


def _serve_fake_services(latency: float, port: int, ready: Any) -> None:
    """AIML (answers after ``latency`` s with a base64 PNG) and the Bot API (at once), a thread per request."""
    from local.offline_provider import OfflineProvider

    [picture] = OfflineProvider().generate(
        model="google/gemini-2.5-flash-image", prompt="benchmark", aspect_ratio="1:1", image_urls=[], deadline=1e12
    )
    aiml_answer = json.dumps({"data": [{"url": None, "b64_json": base64.b64encode(picture.data).decode()}]}).encode()

    class Services(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the real services

        def do_POST(self) -> None:  # the name http.server dispatches to
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path == "/v1/images/generations":
                time.sleep(latency)
                body = aiml_answer
            else:  # /bot<token>/<method>
                body = json.dumps({"ok": True, "result": {"message_id": 1, "date": int(time.time())}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Services)
    server.daemon_threads = True
    ready.set()
    server.serve_forever()


@contextlib.contextmanager
def _fake_services(latency: float) -> Iterator[str]:
    """The fake AIML and Bot API in their own process: remote services do not share the worker's CPU."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    process = context.Process(target=_serve_fake_services, args=(latency, port, ready), daemon=True)
    process.start()
    try:
        if not ready.wait(timeout=30):
            raise SystemExit("the fake AIML / Bot API server did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.join(timeout=10)


def _one_batch(batch: int, jobs_count: int) -> float:
    """Charge ``jobs_count`` generations (one user each), queue them, and time one handler invocation."""
    import app
    from chalicelib import aws, jobs, money
    from chalicelib.runtime import ready
    from local.lambda_context import LocalLambdaContext
    from local.worker import lambda_sqs_event

    settings = ready()
    started_jobs = []
    for index in range(jobs_count):
        user_id = 900_000 + batch * 100 + index
        profile = Profile(user_id=user_id, first_name=f"Bench{index}")
        order = GenerationOrder(
            prompt=f"benchmark picture {batch}-{index}",
            model="google/gemini-2.5-flash-image",
            aspect_ratio="1:1",
            image_urls=(),
            cost=1,
            fingerprint=f"bench-{batch}-{index}",
        )
        result = money.start_generation(profile, order, settings, chat_id=user_id, source="api")
        started_jobs.append(jobs.Job(user_id, result.generation.generation_id))
    jobs.enqueue(started_jobs, settings)

    sqs, url = aws.client("sqs"), jobs.generation_queue_url(settings)
    messages: list[dict[str, Any]] = []
    while len(messages) < jobs_count:
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])
        messages.extend(received.get("Messages", []))
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    event = lambda_sqs_event(messages, arn)

    started = time.perf_counter()
    response = app.generation_worker(event, LocalLambdaContext("generation_worker", 120))
    elapsed = time.perf_counter() - started

    statuses = [getattr(queries.get_generation(job.user_id, job.generation_id), "status", None) for job in started_jobs]
    if response.get("batchItemFailures") or statuses != ["completed"] * jobs_count:
        raise SystemExit(f"batch {batch} did not complete: {response}, statuses {statuses}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=1.0, help="provider latency L in seconds (default 1.0)")
    parser.add_argument("--jobs", type=int, default=JOBS_PER_BATCH, help="jobs per batch (default 10)")
    parser.add_argument("--offline", action="store_true", help="use the offline provider (CPU-bound drawing)")
    args = parser.parse_args(argv)
    latency, jobs_count = args.latency, args.jobs

    _environment()
    with contextlib.ExitStack() as stack:
        if not args.offline:
            services = stack.enter_context(_fake_services(latency))
            os.environ.update(
                {
                    "AIML_API_KEY": AIML_KEY,
                    "AIML_API_BASE": services,
                    "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
                    "TELEGRAM_API_BASE": services,
                }
            )
        stack.enter_context(_moto_one_request_at_a_time())
        return _measure(latency, jobs_count, offline=args.offline)


def _measure(latency: float, jobs_count: int, *, offline: bool) -> int:
    from chalicelib import bootstrap
    from chalicelib.generate import Worker
    from chalicelib.runtime import ready
    from infra.resources import create_locally
    from local.invariants import violations
    from local.offline_provider import OfflineProvider

    settings = ready()
    create_locally(settings)
    provider = OfflineProvider(latency=latency) if offline else bootstrap.build_provider(settings)
    bootstrap.use_worker(Worker(settings=settings, provider=provider, bot=bootstrap.bot_api()))

    cold = _one_batch(1, jobs_count)  # a fresh container: the pool's threads open their connections
    warm_runs = [_one_batch(2 + index, jobs_count) for index in range(WARM_BATCHES)]
    warm = median(warm_runs)
    sequential = jobs_count * latency
    problems = violations()

    kind = "offline provider (sleep + PNG drawing)" if offline else "AIML client -> local AIML-like server"
    print(f"NanoGen worker batch: {jobs_count} jobs through app.generation_worker; {kind}, latency L = {latency:.2f} s")
    print(f"  first batch (cold container): {cold:6.2f} s = {cold / latency:.2f} x L")
    runs = ", ".join(f"{elapsed:.2f}" for elapsed in warm_runs)
    print(f"  warm batches: {runs} s; median {warm:.2f} s = {warm / latency:.2f} x L   (limit {LIMIT_FACTOR} x L)")
    print(
        f"  sequential {jobs_count} x L:           {sequential:6.2f} s -> the batch is {sequential / warm:.1f}x faster"
    )
    print(f"  money invariants after all batches: {problems or 'ok'}")
    flag = " --offline" if offline else ""
    print(f"reproduce: .venv/bin/python -m bench.worker_batch --latency {latency} --jobs {jobs_count}{flag}")
    return 0 if warm < LIMIT_FACTOR * latency and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
