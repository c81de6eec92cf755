"""What 1000 generations cost on AWS, item by item, from measured DynamoDB traffic and list prices.

    .venv/bin/python -m bench.cost_model [--provider-latency 8] [--aiml-price-per-image 0] [--stage prod]

DynamoDB traffic is measured, not assumed: this runs the use cases of
``bench.dynamodb_calls`` on moto (its hooks count every call and every
TransactWriteItems item) and adds a poll (``GET /api/generation/{id}``).
Request units follow DynamoDB's billing rules rather than moto's capacity
figures (which are constants): every NanoGen read is strongly consistent,
1 RRU per item up to 4 KB; a single write is 1 WRU per 1 KB; a
TransactWriteItems item is 2 WRU. Lambda memory sizes and timeouts come
from ``.chalice/config.json`` for the stage.

Prices are us-east-1 *list prices* (on-demand, x86 Lambda, S3 Standard, no
free tier, no savings plan) as published on the AWS pricing pages on
``PRICES_AS_OF``. This script cannot fetch them; check them before using
the figures for a budget. The AIML API's own price dominates and varies by
model and plan, so it is a parameter (``--aiml-price-per-image``, default 0).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from bench import dynamodb_calls
from chalicelib import queries
from chalicelib.model import GenerationOrder, Profile

ROOT = Path(__file__).resolve().parent.parent
PRICES_AS_OF = "2025-06-01"
REGION = "us-east-1"

# --- list prices, us-east-1, as of PRICES_AS_OF (dollars per unit) ------------------
LAMBDA_GB_SECOND = 0.0000166667  # x86_64, first 6 billion GB-s a month
LAMBDA_REQUEST = 0.20 / 1_000_000
DYNAMODB_WRITE_REQUEST_UNIT = 0.625 / 1_000_000  # on demand, Standard table class (since the Nov 2024 cut)
DYNAMODB_READ_REQUEST_UNIT = 0.125 / 1_000_000
SQS_REQUEST = 0.40 / 1_000_000  # standard queue, each 64 KB chunk of a request
API_GATEWAY_REST_REQUEST = 3.50 / 1_000_000  # REST API, first 333 million a month
S3_PUT_REQUEST = 0.005 / 1000  # S3 Standard PUT, COPY, POST, LIST
S3_GET_REQUEST = 0.0004 / 1000  # S3 Standard GET, SELECT
S3_STORAGE_GB_MONTH = 0.023  # S3 Standard, first 50 TB
DATA_TRANSFER_OUT_GB = 0.09  # to the internet, first 10 TB a month (after the free 100 GB)
CLOUDWATCH_LOGS_INGEST_GB = 0.50

# --- how NanoGen uses them -------------------------------------------------------------
GB = 1024**3
API_FUNCTION = "api_handler"
WORKER_FUNCTION = "generation_worker"
SWEEPER_FUNCTION = "sweeper"
MINUTES_PER_MONTH = 30 * 24 * 60
# Lambda's SQS event source long-polls (20 s) with at least 5 pollers per queue,
# whether or not there are messages; the requests are billed to the account.
SQS_IDLE_POLLERS = 5
SQS_LONG_POLL_SECONDS = 20
QUEUES = 2  # the generation queue and its dead-letter queue


@dataclass(frozen=True)
class FunctionConfig:
    memory_mb: int
    timeout_s: int

    @property
    def memory_gb(self) -> float:
        return self.memory_mb / 1024


def function_configs(stage: str) -> dict[str, FunctionConfig]:
    """Memory and timeout of each Lambda, as ``.chalice/config.json`` sets them for ``stage``."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    stage_config = config["stages"][stage]
    memory = stage_config.get("lambda_memory_size", config.get("lambda_memory_size", 128))
    timeout = stage_config.get("lambda_timeout", config.get("lambda_timeout", 60))
    functions = {}
    for name in (API_FUNCTION, WORKER_FUNCTION, "dead_letter_worker", SWEEPER_FUNCTION):
        own = stage_config.get("lambda_functions", {}).get(name, {})
        functions[name] = FunctionConfig(
            memory_mb=int(own.get("lambda_memory_size", memory)), timeout_s=int(own.get("lambda_timeout", timeout))
        )
    return functions


# --- DynamoDB request units, measured ----------------------------------------------------

_READS = {"GetItem", "Query", "Scan"}
_SINGLE_WRITES = {"PutItem", "UpdateItem", "DeleteItem"}


@dataclass(frozen=True)
class Units:
    calls: int
    read_units: float
    write_units: float

    def __add__(self, other: Units) -> Units:
        return Units(self.calls + other.calls, self.read_units + other.read_units, self.write_units + other.write_units)

    def __mul__(self, factor: float) -> Units:
        return Units(round(self.calls * factor), self.read_units * factor, self.write_units * factor)


def billed_units(tally: dynamodb_calls.Tally) -> Units:
    """DynamoDB's billing rules applied to the counted calls (items are under 1 KB / 4 KB)."""
    reads = sum(n for op, n in tally.calls.items() if op in _READS)
    reads += 2 * tally.calls.get("TransactGetItems", 0)
    writes = sum(n for op, n in tally.calls.items() if op in _SINGLE_WRITES)
    writes += 2 * tally.transact_items
    unknown = set(tally.calls) - _READS - _SINGLE_WRITES - {"TransactWriteItems", "TransactGetItems"}
    if unknown:
        raise RuntimeError(f"no billing rule for {sorted(unknown)}: add one to bench.cost_model")
    return Units(sum(tally.calls.values()), float(reads), float(writes))


def measure_dynamodb() -> dict[str, Units]:
    """Run ``bench.dynamodb_calls``'s use cases on moto, plus a poll; billed units by use case."""
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1", NANOGEN_STAGE="bench", TELEGRAM_BOT_TOKEN="1:bench",
    )  # fmt: skip
    os.environ.pop("AWS_ENDPOINT_URL", None)
    dynamodb_calls._install_hooks()
    from moto import mock_aws

    with mock_aws():
        rows = dynamodb_calls.run_use_cases()
        from chalicelib import money
        from chalicelib.runtime import ready

        settings = ready()
        profile = Profile(user_id=43, first_name="Poller")
        order = GenerationOrder("a fox", "google/gemini-2.5-flash-image", "1:1", (), 1, "fp")
        generation = money.start_generation(profile, order, settings, chat_id=43, source="api").generation
        with dynamodb_calls.counting() as poll:
            queries.get_generation(43, generation.generation_id)
        rows.append(("GET /api/generation/{id}", poll))
    return {name: billed_units(tally) for name, tally in rows}


# --- the model -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    item: str
    quantity: float
    unit: str
    unit_price: float

    @property
    def dollars(self) -> float:
        return self.quantity * self.unit_price


def per_thousand(args: argparse.Namespace, functions: dict[str, FunctionConfig], units: dict[str, Units]) -> list[Line]:
    """Line items for 1000 generations."""
    n = 1000
    api, worker = functions[API_FUNCTION], functions[WORKER_FUNCTION]
    completed = n * (1 - args.failed_share)
    failed = n * args.failed_share
    api_requests = n * (1 + args.polls + args.me_calls)

    worker_seconds = min(args.provider_latency + args.worker_overhead_ms / 1000, worker.timeout_s)
    worker_invocations = n / args.batch_fill
    # A batch's jobs run concurrently: the invocation lasts about as long as one job.
    worker_gb_seconds = worker_invocations * worker_seconds * worker.memory_gb
    api_gb_seconds = api_requests * min(args.api_ms / 1000, api.timeout_s) * api.memory_gb

    dynamo = (
        units["start_generation (with Idempotency-Key)"] * n
        + units["claim (worker)"] * n
        + (units["complete (worker)"] + units["mark delivered (worker)"]) * completed
        + units["fail + refund (worker, permanent error)"] * failed
        + units["GET /api/generation/{id}"] * (n * args.polls)
        + units["GET /api/user/me"] * (n * args.me_calls)
    )
    # The API sends one SendMessageBatch per start; Lambda receives and deletes per batch.
    sqs_requests = n + 2 * worker_invocations
    picture_gb = args.image_mb * 1024**2 / GB
    invocations = api_requests + worker_invocations
    return [
        Line(
            f"Lambda API: {api.memory_mb} MB x {args.api_ms:g} ms x {1 + args.polls + args.me_calls:g} requests/gen",
            api_gb_seconds,
            "GB-s",
            LAMBDA_GB_SECOND,
        ),
        Line(
            f"Lambda worker: {worker.memory_mb} MB x {worker_seconds:g} s / {args.batch_fill:g} jobs per batch",
            worker_gb_seconds,
            "GB-s",
            LAMBDA_GB_SECOND,
        ),
        Line("Lambda requests (API + worker)", invocations, "requests", LAMBDA_REQUEST),
        Line(
            f"DynamoDB writes ({dynamo.calls:,} calls in all, reads included)",
            dynamo.write_units,
            "WRU",
            DYNAMODB_WRITE_REQUEST_UNIT,
        ),
        Line("DynamoDB reads (strongly consistent)", dynamo.read_units, "RRU", DYNAMODB_READ_REQUEST_UNIT),
        Line("SQS (send batch, receive, delete)", sqs_requests, "requests", SQS_REQUEST),
        Line("API Gateway REST requests", api_requests, "requests", API_GATEWAY_REST_REQUEST),
        Line("S3 PUT (one picture per completed generation)", completed, "requests", S3_PUT_REQUEST),
        Line(
            f"S3 GET (presigned, {args.views_per_picture:g} views per picture)",
            completed * args.views_per_picture,
            "requests",
            S3_GET_REQUEST,
        ),
        Line(
            f"S3 storage, one month ({args.image_mb:g} MB per picture)",
            completed * picture_gb,
            "GB-month",
            S3_STORAGE_GB_MONTH,
        ),
        Line(
            "data out: picture to Telegram + presigned views",
            completed * picture_gb * (1 + args.views_per_picture),
            "GB",
            DATA_TRANSFER_OUT_GB,
        ),
        Line(
            f"CloudWatch Logs ({args.log_kb:g} KB per invocation)",
            invocations * args.log_kb * 1024 / GB,
            "GB",
            CLOUDWATCH_LOGS_INGEST_GB,
        ),
    ]


def fixed_per_month(
    args: argparse.Namespace, functions: dict[str, FunctionConfig], units: dict[str, Units]
) -> list[Line]:
    """What the stack costs a month with no traffic at all."""
    sweeper = functions[SWEEPER_FUNCTION]
    runs = MINUTES_PER_MONTH  # the sweeper runs every minute
    sweep_reads = units["sweep (1 expired generation)"].read_units  # its queries, whatever they find
    polls = QUEUES * SQS_IDLE_POLLERS * MINUTES_PER_MONTH * 60 / SQS_LONG_POLL_SECONDS
    return [
        Line(
            f"sweeper: {sweeper.memory_mb} MB x {args.sweeper_ms:g} ms every minute",
            runs * args.sweeper_ms / 1000 * sweeper.memory_gb,
            "GB-s",
            LAMBDA_GB_SECOND,
        ),
        Line("sweeper requests", runs, "requests", LAMBDA_REQUEST),
        Line("sweeper DynamoDB queries", runs * sweep_reads, "RRU", DYNAMODB_READ_REQUEST_UNIT),
        Line(f"SQS long polls of Lambda's event sources ({QUEUES} queues)", polls, "requests", SQS_REQUEST),
    ]


def print_table(title: str, lines: list[Line], total_label: str) -> float:
    print(f"\n{title}")
    print(f"{'item':<66} {'quantity':>14} {'unit':<9} {'$ per unit':>12} {'$':>10}")
    for line in lines:
        print(f"{line.item:<66} {line.quantity:>14,.3f} {line.unit:<9} {line.unit_price:>12.4g} {line.dollars:>10.4f}")
    total = sum(line.dollars for line in lines)
    print_sum(total_label, total)
    return total


def print_sum(label: str, dollars: float) -> None:
    print(f"{label:<66} {'':>38} {dollars:>10.4f}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="prod", help="stage of .chalice/config.json for memory and timeouts")
    parser.add_argument("--provider-latency", type=float, default=8.0, help="seconds the image model takes")
    parser.add_argument("--aiml-price-per-image", type=float, default=0.0, help="dollars AIML charges per picture")
    parser.add_argument("--worker-overhead-ms", type=float, default=1500.0, help="store, book, send to Telegram")
    parser.add_argument("--batch-fill", type=float, default=1.0, help="jobs per worker invocation (1 to 10)")
    parser.add_argument("--api-ms", type=float, default=80.0, help="billed ms of one warm API request")
    parser.add_argument("--poll-interval", type=float, default=2.0, help="seconds between the Mini App's polls")
    parser.add_argument("--polls", type=float, default=None, help="polls per generation (default: from latency)")
    parser.add_argument("--me-calls", type=float, default=1.0, help="GET /api/user/me per generation")
    parser.add_argument("--failed-share", type=float, default=0.02, help="share of generations that fail")
    parser.add_argument("--image-mb", type=float, default=1.5, help="size of one picture")
    parser.add_argument("--views-per-picture", type=float, default=2.0, help="presigned downloads per picture")
    parser.add_argument("--log-kb", type=float, default=1.0, help="log written per invocation")
    parser.add_argument("--sweeper-ms", type=float, default=300.0, help="billed ms of one sweep")
    args = parser.parse_args(argv)
    if args.polls is None:
        # Polling lasts the queue wait (~1 s) plus the provider's latency.
        args.polls = float(math.ceil((args.provider_latency + 1.0) / args.poll_interval))
    if not 1 <= args.batch_fill <= 10:
        parser.error("--batch-fill must be between 1 and 10 (the worker's SQS batch size)")
    return args


def reproduce_command(argv: list[str]) -> str:
    return " ".join([".venv/bin/python -m bench.cost_model", *(shlex.quote(arg) for arg in argv)])


def main(argv: list[str] | None = None) -> None:
    raw = sys.argv[1:] if argv is None else argv
    args = parse_args(raw)
    functions = function_configs(args.stage)
    units = measure_dynamodb()
    print(f"NanoGen on AWS ({REGION}): dollars per 1000 generations")
    print(
        f"Prices: AWS list prices as published on {PRICES_AS_OF} (on demand, x86 Lambda, S3 Standard, no free tier);"
        " not fetched by this script: check them before budgeting."
    )
    print(
        f"Assumptions: provider latency {args.provider_latency:g} s, {args.polls:g} polls + {args.me_calls:g} "
        f"GET /api/user/me per generation, {args.failed_share:.0%} failed, "
        f"stage '{args.stage}' of .chalice/config.json "
        f"(API {functions[API_FUNCTION].memory_mb} MB, worker {functions[WORKER_FUNCTION].memory_mb} MB / "
        f"{functions[WORKER_FUNCTION].timeout_s} s)."
    )
    print("DynamoDB per use case, measured on moto (bench.dynamodb_calls), billed by DynamoDB's rules:")
    for name in (
        "start_generation (with Idempotency-Key)",
        "claim (worker)",
        "complete (worker)",
        "mark delivered (worker)",
        "fail + refund (worker, permanent error)",
        "GET /api/generation/{id}",
        "GET /api/user/me",
    ):
        measured = units[name]
        print(f"  {name:<44} {measured.calls} calls, {measured.read_units:g} RRU, {measured.write_units:g} WRU")

    aws_total = print_table("Per 1000 generations", per_thousand(args, functions, units), "AWS total")
    aiml = 1000 * args.aiml_price_per_image
    print_sum(f"AIML API (--aiml-price-per-image {args.aiml_price_per_image:g})", aiml)
    print_sum("TOTAL per 1000 generations", aws_total + aiml)
    print(
        "\nS3 storage recurs every month a picture is kept (the results bucket has no expiry rule); "
        "full worker batches (--batch-fill 10) divide the worker's GB-s by up to 10."
    )
    print_table("Fixed per month, with no traffic", fixed_per_month(args, functions, units), "fixed total per month")
    print(f"\nreproduce: {reproduce_command(raw)}")


if __name__ == "__main__":
    main()
