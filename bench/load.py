"""Load on the whole local stack: many Mini App users at once, then the books are checked.

    .venv/bin/python -m bench.load [--users 50] [--duration 30] [--max-requests 400] [--seed 1]

Starts ``python -m local.stack`` (what ``make run`` runs: the serialized
moto endpoint, ``chalice local`` over the real app, ``local.worker``) on free
ports, with limits raised so the load measures the system rather than the
limits (WELCOME_CREDITS, RATE_LIMIT_PER_MINUTE, MAX_ACTIVE_GENERATIONS; see
the output). Each simulated user is a thread with its own initData, signed
with the development token as Telegram would sign it, and behaves like the
Mini App: it opens (``GET /api/user/me``), starts a generation with an
``Idempotency-Key`` (now and then a double tap: the same request again,
which must be a 200 replay), polls ``GET /api/generation/{id}`` until the
generation has finished, and starts the next one. Every user stops at
``--duration`` seconds or ``--max-requests`` requests, whichever comes first.

Then it waits for the worker to drain the queue, checks CONTRACT §6 over
every table (``local.invariants.violations()``) and stops the stack.
Exit status 0 only with no 5xx, no transport error, no wrong replay and no
violation.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
# Raised so that the load measures the system, not the per-user limits.
RAISED_LIMITS = {
    "WELCOME_CREDITS": "1000000",
    "RATE_LIMIT_PER_MINUTE": "100000",
    "MAX_ACTIVE_GENERATIONS": "1000",
}
FINISHED = {"completed", "failed", "cancelled"}
PROMPTS = [
    "a red fox in the snow, watercolour",
    "a lighthouse on a cliff at sunset, oil painting",
    "a bowl of ramen, studio photo",
    "an astronaut riding a horse on the moon",
    "a cat reading a newspaper in a Paris cafe",
]
ASPECT_RATIOS = ["1:1", "16:9", "9:16", "4:3"]
# Endpoint labels, in the order the report lists them.
START, REPLAY, POLL, ME = (
    "POST /api/generation",
    "POST /api/generation (replay)",
    "GET /api/generation/{id}",
    "GET /api/user/me",
)
ENDPOINTS = [START, REPLAY, POLL, ME]
# Variables of the caller's environment that would send traffic off this machine or change the run.
_STRIPPED_ENV = [
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_API_BASE",
    "AIML_API_KEY",
    "AIML_API_BASE",
    "ALERT_CHAT_ID",
    "MINI_APP_URL",
    "AWS_ENDPOINT_URL",
    "AWS_PROFILE",
    "MODEL_COSTS",
    "GENERATION_QUEUE_URL",
    "RESULTS_BUCKET",
    "NANOGEN_SWEEP_INTERVAL",
]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- the stack ----------------------------------------------------------------


@dataclass
class LocalStack:
    """``python -m local.stack`` in its own process group, its output in a log file."""

    port: int
    aws_port: int
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def aws_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.aws_port}"

    def start(self, timeout: float = 90) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "local.stack"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the stack exited with code {self.process.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(f"{self.api}/api/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{self.api}/api/health did not answer within {timeout} s:\n{self.log_tail()}")

    def stop(self) -> int | None:
        """SIGTERM (local.stack stops its children), then SIGKILL the group if it hangs."""
        process = self.process
        if process is None or process.poll() is not None:
            return None if process is None else process.returncode
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            return process.wait()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def stack_environment(port: int, aws_port: int) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in _STRIPPED_ENV and not name.endswith(("_TABLE", "_QUEUE_NAME"))
    }
    env.update(
        PORT=str(port),
        NANOGEN_AWS_PORT=str(aws_port),
        NANOGEN_STAGE="local",
        AWS_ACCESS_KEY_ID="local",
        AWS_SECRET_ACCESS_KEY="local",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        POWERTOOLS_LOG_LEVEL=os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
        **RAISED_LIMITS,
    )
    env.pop("AWS_SESSION_TOKEN", None)
    return env


# --- the users -------------------------------------------------------------------


@dataclass
class Results:
    """Every request's latency and status, by endpoint label; shared by the user threads."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    transport_errors: Counter[str] = field(default_factory=Counter)
    wrong_replays: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    time_to_finish: list[float] = field(default_factory=list)
    finished: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, label: str, status: int, seconds: float) -> None:
        with self.lock:
            self.latencies[label].append(seconds)
            self.statuses[label][status] += 1

    def note(self, bucket: list[str], text: str) -> None:
        with self.lock:
            if len(bucket) < 20:
                bucket.append(text)


class User:
    """One Mini App user: open, start, (maybe double-tap), poll until finished, repeat."""

    def __init__(self, number: int, args: argparse.Namespace, api: str, token: str, results: Results) -> None:
        from chalicelib.auth import sign_init_data

        self.user_id = 700_000_000 + number
        profile = {"id": self.user_id, "first_name": f"Load{number}", "username": f"load_{number}"}
        headers = {"Authorization": f"tma {sign_init_data(profile, token, auth_date=int(time.time()))}"}
        self.args = args
        self.api = api
        self.results = results
        self.random = random.Random(f"{args.seed}:{number}")
        self.session = requests.Session()
        self.session.headers.update(headers)
        self.requests = 0

    def _call(self, label: str, method: str, path: str, **kwargs: Any) -> tuple[int, Any] | None:
        self.requests += 1
        started = time.perf_counter()
        try:
            response = self.session.request(method, self.api + path, timeout=60, **kwargs)
        except requests.RequestException as error:
            with self.results.lock:
                self.results.transport_errors[f"{label}: {type(error).__name__}"] += 1
            return None
        self.results.record(label, response.status_code, time.perf_counter() - started)
        try:
            return response.status_code, response.json()
        except ValueError:
            self.results.note(self.results.unexpected, f"{label}: {response.status_code} body is not JSON")
            return response.status_code, None

    def _budget_left(self, deadline: float) -> bool:
        return time.monotonic() < deadline and self.requests < self.args.max_requests

    def run(self, deadline: float) -> None:
        try:
            self._run(deadline)
        except Exception as error:  # a bug of this script must fail the run, not vanish with its thread
            self.results.note(self.results.unexpected, f"user {self.user_id} crashed: {error!r}")
        finally:
            self.session.close()

    def _run(self, deadline: float) -> None:
        self._call(ME, "GET", "/api/user/me")
        while self._budget_left(deadline):
            body = {"prompt": self.random.choice(PROMPTS), "aspect_ratio": self.random.choice(ASPECT_RATIOS)}
            key = str(uuid.uuid4())
            started = time.monotonic()
            answer = self._call(START, "POST", "/api/generation", json=body, headers={"Idempotency-Key": key})
            if answer is None or answer[0] != 202:
                time.sleep(self.args.poll_interval)
                continue
            generation_id = answer[1]["generation"]["id"]
            if self.random.random() < self.args.replay_share and self._budget_left(deadline):
                self._replay(body, key, generation_id)
            self._poll_until_finished(generation_id, started, deadline)
            if self.random.random() < 0.3 and self._budget_left(deadline):
                self._call(ME, "GET", "/api/user/me")

    def _replay(self, body: dict[str, str], key: str, generation_id: str) -> None:
        """A double tap: the same request and key must return the same generation, uncharged (200)."""
        answer = self._call(REPLAY, "POST", "/api/generation", json=body, headers={"Idempotency-Key": key})
        if answer is None:
            return
        status, payload = answer
        replayed_id = payload.get("generation", {}).get("id") if isinstance(payload, dict) else None
        if status != 200 or replayed_id != generation_id:
            self.results.note(self.results.wrong_replays, f"user {self.user_id}: replay gave {status} {replayed_id}")

    def _poll_until_finished(self, generation_id: str, started: float, deadline: float) -> None:
        while self._budget_left(deadline):
            time.sleep(self.args.poll_interval)
            answer = self._call(POLL, "GET", f"/api/generation/{generation_id}")
            if answer is None or answer[0] != 200 or not isinstance(answer[1], dict):
                continue
            status = answer[1].get("status")
            if status in FINISHED:
                with self.results.lock:
                    self.results.finished[str(status)] += 1
                    self.results.time_to_finish.append(time.monotonic() - started)
                return


def warm_up(api: str, token: str) -> None:
    """One request per route first, so the figures are of a warm server (cold start: bench.cold_start)."""
    from chalicelib.auth import sign_init_data

    profile = {"id": 699_999_999, "first_name": "Warmup"}
    session = requests.Session()
    session.headers["Authorization"] = f"tma {sign_init_data(profile, token, auth_date=int(time.time()))}"
    started = time.perf_counter()
    session.get(f"{api}/api/user/me", timeout=60)
    started_generation = session.post(f"{api}/api/generation", json={"prompt": "warm up"}, timeout=60).json()
    session.get(f"{api}/api/generation/{started_generation['generation']['id']}", timeout=60)
    session.close()
    print(f"warm-up (first call of each route, not counted): {time.perf_counter() - started:.2f} s")


# --- the report --------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile of ``values`` (0 < share <= 1)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(share * len(ordered) + 0.5)))
    return ordered[rank - 1]


def print_report(results: Results, elapsed: float) -> None:
    total = sum(len(v) for v in results.latencies.values())
    print(f"\n{total} requests in {elapsed:.1f} s: {total / elapsed:.1f} requests/s\n")
    print(f"{'endpoint':<32} {'count':>6} {'rps':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}  statuses")
    for label in ENDPOINTS:
        values = results.latencies.get(label, [])
        if not values:
            continue
        statuses = ", ".join(f"{status}: {n}" for status, n in sorted(results.statuses[label].items()))
        figures = [percentile(values, share) * 1000 for share in (0.50, 0.95, 0.99)] + [max(values) * 1000]
        columns = " ".join(f"{figure:>8.1f}" for figure in figures)
        print(f"{label:<32} {len(values):>6} {len(values) / elapsed:>7.1f} {columns}  {statuses}")
    everything = Counter[int]()
    for counter in results.statuses.values():
        everything.update(counter)
    print(f"\nstatus codes: {dict(sorted(everything.items()))}")
    if results.transport_errors:
        print(f"transport errors: {dict(results.transport_errors)}")
    if results.time_to_finish:
        finish = results.time_to_finish
        print(
            f"generations seen finished by their user: {dict(results.finished)}; start -> finished as polled: "
            f"p50 {percentile(finish, 0.5):.2f} s, p95 {percentile(finish, 0.95):.2f} s"
        )
    for text in results.wrong_replays:
        print(f"WRONG REPLAY: {text}")
    for text in results.unexpected:
        print(f"UNEXPECTED: {text}")


# --- after the load: drain and check the books -----------------------------------------


def point_models_at(stack: LocalStack) -> None:
    """Make this process's PynamoDB models and clients talk to the stack's tables."""
    os.environ.update(
        AWS_ENDPOINT_URL=stack.aws_endpoint,
        NANOGEN_STAGE="local",
        AWS_ACCESS_KEY_ID="local",
        AWS_SECRET_ACCESS_KEY="local",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
    )
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)
    from chalicelib import aws, config
    from chalicelib.runtime import ready

    config.reset_settings()
    aws.reset_clients()
    ready()


def generations_by_status() -> Counter[str]:
    from chalicelib.tables import Generation

    return Counter(str(generation.status) for generation in Generation.scan(consistent_read=True))


def wait_for_drain(timeout: float) -> tuple[Counter[str], float]:
    """Wait until no generation is pending or processing; the last counts and the seconds waited."""
    started = time.monotonic()
    while True:
        counts = generations_by_status()
        active = counts["pending"] + counts["processing"]
        waited = time.monotonic() - started
        if active == 0 or waited > timeout:
            return counts, waited
        time.sleep(1.0)


# --- main ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50, help="simulated Mini App users (threads)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument("--max-requests", type=int, default=400, help="requests per user at most")
    parser.add_argument("--poll-interval", type=float, default=0.5, help="seconds between polls of a generation")
    parser.add_argument("--replay-share", type=float, default=0.2, help="share of starts sent twice (double tap)")
    parser.add_argument("--drain-timeout", type=float, default=180.0, help="seconds to wait for the worker")
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args(argv)


def reproduce_command(args: argparse.Namespace) -> str:
    return (
        f".venv/bin/python -m bench.load --users {args.users} --duration {args.duration:g} "
        f"--max-requests {args.max_requests} --poll-interval {args.poll_interval:g} "
        f"--replay-share {args.replay_share:g} --seed {args.seed}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from chalicelib.config import DEV_BOT_TOKEN

    port, aws_port = free_port(), free_port()
    log_fd, log_name = tempfile.mkstemp(prefix="nanogen-load-", suffix=".log")
    os.close(log_fd)
    stack = LocalStack(port, aws_port, stack_environment(port, aws_port), Path(log_name))

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stack.stop()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    failures: list[str] = []
    try:
        print(f"starting the local stack (python -m local.stack): API {stack.api}, AWS {stack.aws_endpoint}")
        raised = ", ".join(f"{name}={value}" for name, value in RAISED_LIMITS.items())
        print(f"limits raised so the load measures the system, not the limits: {raised}")
        print("images: offline provider (no AI called); Telegram: dry run with the development token")
        stack.start()
        warm_up(stack.api, DEV_BOT_TOKEN)
        results = Results()
        users = [User(number, args, stack.api, DEV_BOT_TOKEN, results) for number in range(args.users)]
        print(
            f"{args.users} users for {args.duration:g} s (at most {args.max_requests} requests each), "
            f"poll every {args.poll_interval:g} s, {args.replay_share:.0%} of starts replayed"
        )
        started = time.monotonic()
        deadline = started + args.duration
        threads = [threading.Thread(target=user.run, args=(deadline,), daemon=True) for user in users]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        print_report(results, elapsed)

        point_models_at(stack)
        counts, waited = wait_for_drain(args.drain_timeout)
        active = counts["pending"] + counts["processing"]
        print(f"\nworker drained the queue in {waited:.1f} s after the load; generations by status: {dict(counts)}")
        if active:
            failures.append(f"{active} generations still pending or processing after {args.drain_timeout:g} s")

        from local.invariants import violations

        problems = violations()
        if problems:
            print(f"{len(problems)} violations of CONTRACT §6:")
            for problem in problems[:50]:
                print(f"  {problem}")
            failures.append(f"{len(problems)} invariant violations")
        else:
            print("invariants of CONTRACT §6 over every table: 0 violations")

        server_errors = sum(
            n for counter in results.statuses.values() for status, n in counter.items() if status >= 500
        )
        if server_errors:
            failures.append(f"{server_errors} responses with a 5xx status")
        if results.transport_errors:
            failures.append(f"{sum(results.transport_errors.values())} transport errors")
        if results.wrong_replays:
            failures.append(f"{len(results.wrong_replays)}+ replays not answered 200 with the same generation")
        if results.unexpected:
            failures.append(f"{len(results.unexpected)}+ unexpected answers")
    except RuntimeError as error:
        failures.append(str(error))
    finally:
        code = stack.stop()
        print(f"\nstack stopped (exit code {code}); its log: {stack.log_path}")

    print(f"\nreproduce: {reproduce_command(args)}")
    if failures:
        print("FAILED: " + "; ".join(failures))
        return 1
    print("OK: no 5xx, every replay answered 200, 0 violations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
