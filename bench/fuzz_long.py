"""The long fuzz run: thousands of hypothesis examples over every endpoint and Telegram update.

    .venv/bin/python -m bench.fuzz_long [--examples 2000] [--seed 0] [--check-every 25] [--in-process]

The same strategies and oracle as ``tests/integration/test_fuzz.py``
(``tests/fuzz/``), with a local server playing the Bot API
(nothing leaves the machine), but it does not stop at the first problem:
each kind of finding is counted and kept with its smallest reproduction.
Each example is a few steps (API requests, Telegram updates, the worker
running what is queued, the sweeper after the generation timeout); the money
invariants of CONTRACT §6 are checked every ``--check-every`` examples and at
the end, and a broken one is reported with the steps since the last check.

The tables live on the one-request-at-a-time local AWS endpoint
(``local.aws_server``), as in ``make run``; ``--in-process`` uses moto in
process, serialized the same way (``tests.worker_helpers.serialize_moto``:
the worker runs a batch's jobs in threads, and concurrent requests corrupt
moto's tables). Prints the requests by operation and status, then the
findings. Exit status 0 when there are none.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import subprocess
import sys
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from local import aws_server

ROOT = Path(__file__).resolve().parent.parent


class _Errors(logging.Handler):
    """Keeps the last line of each exception NanoGen logs, so a 500 in the report says what raised."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            frames = traceback.extract_tb(record.exc_info[2])
            where = f"{frames[-1].filename.removeprefix(str(ROOT) + '/')}:{frames[-1].lineno}" if frames else "?"
            self.seen[f"{type(record.exc_info[1]).__name__}: {str(record.exc_info[1])[:160]} (at {where})"] += 1


def _environment() -> None:
    """The test environment of tests/conftest.py, with NanoGen's output kept to errors."""
    from tests.conftest import _BASE_ENV, _CLEARED

    for name in _CLEARED:
        os.environ.pop(name, None)
    os.environ.update(_BASE_ENV)
    os.environ["NANOGEN_STAGE"] = "fuzz"
    os.environ["POWERTOOLS_LOG_LEVEL"] = "ERROR"


def _quiet(errors: _Errors) -> None:
    """NanoGen's log lines go to ``errors`` only; the fake Bot API's access log is dropped."""
    import app  # noqa: F401 - first: Chalice adds its own log handler unless NanoGen's is on stdout
    from chalicelib.observability import logger

    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 - for the whole run
    nanogen = logging.getLogger(logger.name)
    nanogen.addHandler(errors)
    nanogen.propagate = False
    logging.getLogger("werkzeug").setLevel(logging.ERROR)


@contextlib.contextmanager
def tables(in_process: bool) -> Iterator[str]:
    """Every table, queue and bucket, on moto in process or on the serialized local endpoint."""
    from chalicelib.runtime import ready
    from infra.resources import create_locally
    from tests.conftest import reset_process_state

    if in_process:
        import pytest
        from moto import mock_aws

        from tests.worker_helpers import serialize_moto

        with mock_aws(), pytest.MonkeyPatch.context() as patch:
            serialize_moto(patch)  # the worker's threads would corrupt moto otherwise
            reset_process_state()
            create_locally(ready())
            yield "moto in process (one request at a time)"
        return
    server, endpoint = aws_server.start(stderr=subprocess.DEVNULL)
    try:
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        reset_process_state()
        create_locally(ready())
        yield f"local.aws_server at {endpoint} (one request at a time)"
    finally:
        server.terminate()
        server.wait(timeout=10)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check-every", type=int, default=25, help="examples between invariant checks")
    parser.add_argument("--max-steps", type=int, default=5, help="steps per example at most")
    parser.add_argument("--in-process", action="store_true", help="moto in process instead of local.aws_server")
    parser.add_argument(
        "--without-known-5xx",
        action="store_true",
        help="send no lone surrogates in Telegram text (a known 500, see tests/fuzz/values.py)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _environment()
    from hypothesis import HealthCheck, Phase, given, seed, settings
    from hypothesis import strategies as st
    from pytest_httpserver import HTTPServer

    from tests.fuzz import values as fuzz_values
    from tests.fuzz.oracle import Fuzzer, app_client, fuzz_environment, install_fake_bot_api, mixed_steps, perform

    fuzz_values.LONE_SURROGATES_IN_TELEGRAM_TEXT = not args.without_known_5xx

    errors = _Errors()
    _quiet(errors)
    console = sys.stdout  # the run's own stdout carries NanoGen's metric lines (EMF): dropped below
    bot_api = HTTPServer(host="127.0.0.1", port=0)
    bot_api.start()
    started = time.monotonic()
    examples = 0
    steps: Counter[str] = Counter()
    try:
        os.environ.update(fuzz_environment(install_fake_bot_api(bot_api)))
        with (
            tables(args.in_process) as where,
            open(os.devnull, "w") as devnull,
            contextlib.redirect_stdout(devnull),
        ):
            fuzzer = Fuzzer(app_client(), strict=False)

            @seed(args.seed)
            @settings(
                max_examples=args.examples,
                deadline=None,
                database=None,
                phases=[Phase.generate],  # nothing fails in this mode, so there is nothing to shrink
                suppress_health_check=list(HealthCheck),
            )
            @given(data=st.data())
            def one_example(data: Any) -> None:
                nonlocal examples
                for _ in range(data.draw(st.integers(1, args.max_steps))):
                    step = data.draw(mixed_steps(fuzzer.world))
                    steps[step[0]] += 1
                    perform(fuzzer, step)
                examples += 1
                if examples % args.check_every == 0:
                    fuzzer.check_books()
                if examples % 250 == 0:
                    requests, seconds = sum(fuzzer.statuses.values()), time.monotonic() - started
                    kinds = len(fuzzer.findings)
                    print(
                        f"  {examples} examples, {requests} requests, {kinds} kinds of finding, {seconds:.0f} s",
                        file=console,
                        flush=True,
                    )

            banner = f"fuzzing: {args.examples} examples, seed {args.seed}; tables on {where}; Bot API faked locally"
            print(banner, file=console, flush=True)
            one_example()
            problems = fuzzer.check_books()
    finally:
        bot_api.clear()
        if bot_api.is_running():
            bot_api.stop()

    report(fuzzer, steps, errors, examples, time.monotonic() - started, problems)
    command = f"--examples {args.examples} --seed {args.seed} --check-every {args.check_every}"
    command += f" --max-steps {args.max_steps}" + (" --in-process" if args.in_process else "")
    command += " --without-known-5xx" if args.without_known_5xx else ""
    print(f"\nreproduce: .venv/bin/python -m bench.fuzz_long {command}")
    return 1 if fuzzer.findings else 0


def report(
    fuzzer: Any, steps: Counter[str], errors: _Errors, examples: int, elapsed: float, problems: list[str]
) -> None:
    total = sum(fuzzer.statuses.values())
    others = f"worker runs {steps['worker']}, sweeps {steps['time_passes']}"
    print(f"\n{examples} examples, {total} requests in {elapsed:.0f} s; other steps: {others}")
    by_operation: dict[str, Counter[int]] = defaultdict(Counter)
    for (label, status), count in fuzzer.statuses.items():
        by_operation[label][status] += count
    every = sorted({status for counter in by_operation.values() for status in counter})
    print(f"\n{'operation':<46}" + "".join(f"{status:>7}" for status in every) + f"{'total':>8}")
    for label in sorted(by_operation):
        counter = by_operation[label]
        cells = "".join(f"{counter.get(status, 0) or '.':>7}" for status in every)
        print(f"{label:<46}{cells}{sum(counter.values()):>8}")
    sums = "".join(f"{sum(counter.get(status, 0) for counter in by_operation.values()):>7}" for status in every)
    print(f"{'all':<46}{sums}{total:>8}")
    print(f"\ninvariants of CONTRACT §6 at the end: {len(problems)} violations")
    if errors.seen:
        print("\nexceptions NanoGen logged:")
        for text, count in errors.seen.most_common():
            print(f"  {count:>5} x {text}")
    if not fuzzer.findings:
        print("\nfindings: none (no 5xx, every error in CONTRACT §4's shape, statuses as documented, books balanced)")
        return
    print(f"\nfindings: {len(fuzzer.findings)} kinds")
    for finding in sorted(fuzzer.findings.values(), key=lambda f: (f.kind, -f.count)):
        print(f"\n[{finding.kind}] {finding.signature}  ({finding.count} x)")
        print(f"  {finding.detail[:600]}")
        if finding.reproduction:
            print(f"  reproduce: {finding.reproduction}")


if __name__ == "__main__":
    sys.exit(main())
