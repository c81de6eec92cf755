"""The fuzz driver and its oracle: ``Fuzzer.send`` checks every answer against the contract."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from chalicelib import queries
from tests.fakes.telegram import FakeTelegram
from tests.fuzz.requests import Replay, Request, api_requests, webhook_requests
from tests.fuzz.values import CODES_BY_STATUS, FUZZ_ADMIN_ID, World, error_codes, weighted

# ---------------------------------------------------------------------------
# The driver and its oracle
# ---------------------------------------------------------------------------


@dataclass
class Finding:
    kind: str
    signature: str
    detail: str
    reproduction: str
    count: int = 1


class OracleError(AssertionError):
    """A request broke the contract; the message says how and how to send it again."""


class Fuzzer:
    """Sends requests through the Chalice app and checks every answer against the contract.

    ``strict``: raise ``OracleError`` at the first broken rule (for pytest and
    hypothesis' shrinking); otherwise record it in ``findings`` and go on.
    """

    def __init__(self, client: Any, *, strict: bool) -> None:
        self.client = client
        self.strict = strict
        self.world = World()
        self.statuses: Counter[tuple[str, int]] = Counter()
        self.findings: dict[str, Finding] = {}
        self.journal: list[str] = []  # what happened since the books were last checked

    # -- reporting --------------------------------------------------------

    def problem(self, kind: str, signature: str, detail: str, request: Request | None) -> None:
        reproduction = request.reproduction() if request is not None else ""
        if self.strict:
            raise OracleError(f"{kind}: {detail}\nreproduce: {reproduction}")
        key = f"{kind}|{signature}"
        found = self.findings.get(key)
        if found is None:
            self.findings[key] = Finding(kind, signature, detail, reproduction)
            return
        found.count += 1
        if len(reproduction) < len(found.reproduction):  # keep the smallest example
            found.detail, found.reproduction = detail, reproduction

    # -- sending ------------------------------------------------------------

    def send(self, request: Request) -> tuple[int, Any]:
        operation = request.operation
        before = self._generation_status(request.replay)
        bot_calls = bot_api_calls()
        response = self.client.http.request(
            operation.method, request.path, headers=dict(request.headers), body=request.body
        )
        status = int(response.status_code)
        self.statuses[(operation.label, status)] += 1
        self.journal.append(f"{request.reproduction()}  # -> {status}")
        if operation.is_webhook and status in (400, 401) and bot_api_calls() != bot_calls:
            # CONTRACT §3: a refused update is not processed; a malformed one cannot be.
            self.problem("webhook_acted", f"{status}", f"{status} but the Bot API was called", request)
        body = self._check_shape(request, status, response)
        self._check_auth(request, status, body)
        self._check_replay(request, status, body, before)
        self._learn(request, status, body)
        return status, body

    def _check_shape(self, request: Request, status: int, response: Any) -> Any:
        label = request.operation.label
        headers = {str(k).lower(): v for k, v in response.headers.items()}
        try:
            body = json.loads(response.body)
        except ValueError:
            detail = f"{status} body is not JSON: {response.body[:200]!r}"
            self.problem("not_json", f"{label} {status}", detail, request)
            return None
        error = body.get("error") if isinstance(body, dict) else None
        code = error.get("code") if isinstance(error, dict) else None
        if status >= 500:
            self.problem("5xx", f"{label} {status} {code}", f"{status} {body}", request)
        if not str(headers.get("content-type", "")).startswith("application/json"):
            self.problem("content_type", f"{label} {status}", f"Content-Type {headers.get('content-type')!r}", request)
        if status >= 400:
            self._check_error_body(request, status, body, headers)
        if str(status) not in request.operation.responses:
            self.problem("undocumented_status", f"{label} {status} {code}", f"{status} {body}", request)
        elif 200 <= status < 300:
            self._check_schema(request, status, body)
        return body

    def _check_error_body(self, request: Request, status: int, body: Any, headers: Mapping[str, Any]) -> None:
        label = request.operation.label
        error = body.get("error") if isinstance(body, dict) else None
        keys_ok = isinstance(body, dict) and set(body) == {"error"} and isinstance(error, dict)
        if (
            not keys_ok
            or not {"code", "message"} <= set(error or {})
            or set(error or {})
            - {
                "code",
                "message",
                "request_id",
            }
        ):
            self.problem("error_shape", f"{label} {status}", f"{status} body {body!r}", request)
            return
        assert isinstance(error, dict)
        code, message = error.get("code"), error.get("message")
        if code not in error_codes() or code not in CODES_BY_STATUS.get(status, frozenset()):
            self.problem("error_code", f"{label} {status} {code}", f"{status} with code {code!r}", request)
        if not isinstance(message, str) or not message.strip() or "Traceback" in message:
            self.problem("error_message", f"{label} {status}", f"message {message!r}", request)
        if status == 429 and not str(headers.get("retry-after", "")).isdigit():
            self.problem("retry_after", f"{label} {code}", f"429 without a Retry-After: {dict(headers)}", request)

    def _check_schema(self, request: Request, status: int, body: Any) -> None:
        from openapi_schema_validator import OAS30Validator

        schema = request.operation.response_schema(status)
        if schema is None:
            return
        errors = sorted(OAS30Validator(schema).iter_errors(body), key=lambda e: list(e.path))
        if errors:
            where = "/".join(str(p) for p in errors[0].path)
            self.problem(
                "response_schema",
                f"{request.operation.label} {status} {where}",
                f"{status} body does not match openapi.yaml at '{where}': {errors[0].message[:300]}",
                request,
            )

    def _check_auth(self, request: Request, status: int, body: Any) -> None:
        """CONTRACT §3: refused credentials are 401/403, accepted ones never are."""
        operation, kind = request.operation, request.auth_kind
        if kind == "unchecked":
            return
        if operation.is_webhook:
            expected_refusal = {"ok": None, "bad": 401}[kind]
            accepted = kind == "ok"
            refusals = {401}
        elif operation.is_admin:
            expected_refusal = {
                "admin_token": None,
                "admin_user": None,
                "wrong_token": 403,
                "user": 403,
                "none": 401,
                "bad": 401,
            }[kind]
            accepted = expected_refusal is None
            refusals = {401, 403}
        elif operation.is_user:
            expected_refusal = None if kind in ("user", "admin_user") else 401
            accepted = expected_refusal is None
            refusals = {401}
        else:
            return
        label = operation.label
        if expected_refusal is not None and status != expected_refusal:
            detail = f"{kind} credentials got {status}, not {expected_refusal}"
            self.problem("auth", f"{label} {kind} -> {status}", detail, request)
        if accepted and status in refusals:
            self.problem("auth", f"{label} {kind} -> {status}", f"valid {kind} credentials refused: {body}", request)

    def _generation_status(self, replay: Replay | None) -> str | None:
        if replay is None:
            return None

        generation = queries.get_generation(replay.user_id, replay.generation_id)
        return None if generation is None else str(generation.status)

    def _check_replay(self, request: Request, status: int, body: Any, before: str | None) -> None:
        """CONTRACT §5: the same key and parameters return the earlier generation, uncharged."""
        if request.replay is None or before not in ("pending", "processing", "completed"):
            return
        if status in (401, 403):  # a user banned since: refused before the key is looked at
            return
        generation_id = body.get("generation", {}).get("id") if isinstance(body, dict) else None
        if status != 200 or generation_id != request.replay.generation_id:
            self.problem(
                "idempotency",
                f"replay of a {before} generation -> {status}",
                f"replay of {request.replay.generation_id} ({before}) got {status} {generation_id}",
                request,
            )

    def _learn(self, request: Request, status: int, body: Any) -> None:
        if not isinstance(body, dict):
            return
        label = request.operation.label
        if label == "POST /api/generation" and status == 202 and request.user_id is not None:
            generation_id = body.get("generation", {}).get("id")
            if isinstance(generation_id, str):
                self.world.generations.append((request.user_id, generation_id))
                key = dict(request.headers).get("Idempotency-Key")
                if key is not None:
                    self.world.starts.append((request.user_id, key, request.body, generation_id))
        if label == "GET /api/generation" and isinstance(body.get("next_cursor"), str):
            self.world.cursors.append(body["next_cursor"])
        if request.operation.is_webhook and status == 200:
            try:
                update_id = json.loads(request.body).get("update_id")
            except (ValueError, AttributeError):
                update_id = None
            if type(update_id) is int:
                self.world.update_ids.append(update_id)
        for bucket in (self.world.generations, self.world.starts, self.world.cursors, self.world.update_ids):
            del bucket[:-200]  # keep the lists (and hypothesis' choices) small

    # -- background work and the books --------------------------------------------

    def run_worker(self) -> int:
        """Hand what is queued to ``app.generation_worker`` and the dead-letter handler, as Lambda would."""
        import app as application
        from chalicelib import aws
        from chalicelib.runtime import ready
        from local.worker import run_batch

        settings = ready()
        sqs = aws.client("sqs")
        handled = 0
        for handler, queue_name, name in (
            (application.generation_worker, settings.generation_queue_name, "generation_worker"),
            (application.dead_letter_worker, settings.dead_letter_queue_name, "dead_letter_worker"),
        ):
            url = aws.queue_url(queue_name)
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            for _ in range(3):
                received = run_batch(handler, url, arn, name)
                handled += received
                if not received:
                    break
        return handled

    def time_passes(self) -> int:
        """The sweeper, as if GENERATION_TIMEOUT_SECONDS had passed: every unfinished generation fails, refunded."""
        from chalicelib import money
        from chalicelib.runtime import ready

        settings = ready()
        return len(money.sweep_expired(now=time.time() + settings.generation_timeout_seconds + 5))

    def check_books(self) -> list[str]:
        """CONTRACT §6 from the tables; a broken invariant comes with the steps since the last check."""
        from local.invariants import violations

        problems = violations()
        steps = "\n    ".join(self.journal[-40:])
        self.journal.clear()
        for problem in problems:
            if self.strict:
                raise OracleError(f"invariant broken: {problem}\nsteps since the last check:\n    {steps}")
            signature = re.sub(r"-?\d+", "N", problem)
            if f"invariant|{signature}" not in self.findings:
                self.findings[f"invariant|{signature}"] = Finding("invariant", signature, problem, steps)
            else:
                self.findings[f"invariant|{signature}"].count += 1
        return problems


BOT_API: FakeTelegram | None = None


# ---------------------------------------------------------------------------
# Wiring: the fake Bot API (tests.fakes.telegram) and the app to send requests to
# ---------------------------------------------------------------------------


def install_fake_bot_api(server: Any) -> str:
    """Make ``server`` (a pytest-httpserver) play the Bot API; returns the TELEGRAM_API_BASE to use."""
    global BOT_API
    BOT_API = FakeTelegram(server, record=False)  # a long run would otherwise keep every call
    return BOT_API.api_base


def bot_api_calls() -> int:
    """Bot API calls answered so far (the server answers in its own thread)."""
    return BOT_API.total if BOT_API is not None else 0


def fuzz_environment(telegram_api_base: str) -> dict[str, str]:
    """Variables on top of the test environment (tests/conftest.py)."""
    return {"TELEGRAM_API_BASE": telegram_api_base, "ADMIN_USER_IDS": str(FUZZ_ADMIN_ID)}


def app_client() -> Any:
    """``chalice.test.Client`` over app.py's app: the routing, content types and error handling Lambda sees."""
    from chalice.test import Client

    import app as application

    return Client(application.app)


def mixed_steps(world: World) -> st.SearchStrategy[tuple[str, Request | None]]:
    """What happens next: a request, an update, the worker running, or time passing."""
    return weighted(
        (6, api_requests(world).map(lambda r: ("request", r))),
        (3, webhook_requests(world).map(lambda r: ("request", r))),
        (2, st.just(("worker", None))),
        (1, st.just(("time_passes", None))),
    )


def perform(fuzzer: Fuzzer, step: tuple[str, Request | None]) -> None:
    kind, request = step
    if kind == "worker":
        fuzzer.journal.append(f"# the worker ran {fuzzer.run_worker()} queued jobs")
    elif kind == "time_passes":
        fuzzer.journal.append(f"# the sweeper, after the timeout, failed {fuzzer.time_passes()} generations")
    else:
        assert request is not None
        fuzzer.send(request)
