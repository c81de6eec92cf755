"""Shared fixtures: a clean environment, moto in-process, and the local emulator.

* ``aws``: moto's in-process mock with every table, queue and bucket
  created from ``infra.resources``; the money invariants are checked after
  the test.
* ``emulator``: the same resources on the one-request-at-a-time local AWS
  endpoint (``local.aws_server``) in a subprocess: the only honest target
  for race tests, since in-process moto is not thread-safe.

The DynamoDB engine behind both is chosen by ``NANOGEN_TEST_DYNAMODB``:
``moto`` (the default) or ``local``, AWS's DynamoDB Local
(``local/dynamodb_local.py``), started once per session (or reused from
``NANOGEN_TEST_DYNAMODB_ENDPOINT``). On ``local`` only DynamoDB goes there
(``AWS_ENDPOINT_URL_DYNAMODB``), SQS and S3 stay on moto, and each test gets
its own tables (a fresh stage name), deleted afterwards.
"""

from __future__ import annotations

import itertools
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytest_plugins = ["tests.telegram_helpers", "tests.worker_helpers", "tests.faults"]
TEST_BOT_TOKEN = "4242424242:TestTokenForNanoGenUnitTests_abcdefgh"
TEST_WEBHOOK_SECRET = "test-webhook-secret"
TEST_ADMIN_TOKEN = "test-admin-token-0123456789abcdefghijklmnop"

ENGINES = ("moto", "local")
DYNAMODB_ENGINE = os.environ.get("NANOGEN_TEST_DYNAMODB", "moto") or "moto"
if DYNAMODB_ENGINE not in ENGINES:
    raise pytest.UsageError(f"NANOGEN_TEST_DYNAMODB must be one of {ENGINES}, got {DYNAMODB_ENGINE!r}")
ON_DYNAMODB_LOCAL = DYNAMODB_ENGINE == "local"


def on_dynamodb_local_xfail(reason: str) -> pytest.MarkDecorator:
    """A known difference of DynamoDB Local that shows a bug: strict, so the test flips when it is fixed."""
    return pytest.mark.xfail(ON_DYNAMODB_LOCAL, reason=f"DynamoDB Local: {reason}", strict=True)


_BASE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "TELEGRAM_BOT_TOKEN": TEST_BOT_TOKEN,
    "TELEGRAM_WEBHOOK_SECRET": TEST_WEBHOOK_SECRET,
    "ADMIN_API_TOKEN": TEST_ADMIN_TOKEN,
    "NANOGEN_STAGE": "test",
    "BOT_USERNAME": "NanoGenTestBot",  # no getMe to the real Telegram from a test
}
_CLEARED = [
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_PROFILE",
    "TELEGRAM_API_BASE",
    "AIML_API_KEY",
    "AIML_API_BASE",
    "MINI_APP_URL",
    "ADMIN_USER_IDS",
    "ALERT_CHAT_ID",
    "WELCOME_CREDITS",
    "RATE_LIMIT_PER_MINUTE",
    "MAX_ACTIVE_GENERATIONS",
    "GENERATION_TIMEOUT_SECONDS",
    "MODEL_COSTS",
    "GENERATION_QUEUE_URL",
    "UPLOAD_MAX_BYTES",
    "AWS_LAMBDA_FUNCTION_NAME",
    "REFERRAL_BONUS_CREDITS",
    "BROADCAST_RATE_PER_SECOND",
    "BROADCAST_QUEUE_URL",
    "DEFAULT_LANGUAGE",
    "SUPPORT_CONTACT",
    "TERMS_URL",
]


def reset_process_state() -> None:
    """Forget cached settings, clients and workers after an env change; tests run as ``make run`` does."""
    from chalicelib import bootstrap
    from local.offline_provider import OfflineProvider

    bootstrap.reset()
    bootstrap.install_local_provider(OfflineProvider)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in _CLEARED:
        monkeypatch.delenv(name, raising=False)
    for name, value in _BASE_ENV.items():
        monkeypatch.setenv(name, value)
    from chalicelib import i18n

    monkeypatch.setattr(i18n, "strict", True)  # a text that fails to format fails the test
    reset_process_state()
    yield
    reset_process_state()


def _assert_books_balance() -> None:
    from local.invariants import violations
    from tests.faults import suspended

    with suspended():  # reading the books back is not part of a test's faults
        problems = violations()
    assert problems == [], "money invariants broken:\n" + "\n".join(problems)


# --- The DynamoDB engine --------------------------------------------------------------


class _DynamoDBLocalSession:
    """The session's DynamoDB Local: started on first use, stopped when pytest ends (Ctrl-C too)."""

    def __init__(self) -> None:
        self.server: object = None
        self.endpoint = os.environ.get("NANOGEN_TEST_DYNAMODB_ENDPOINT", "")
        self.description = f"reused at {self.endpoint}" if self.endpoint else "not started"
        self.tests = 0
        self.table_seconds = 0.0
        self._stages = itertools.count(1)
        self._session = secrets.token_hex(2)  # table names unique even on a reused endpoint

    def ensure(self) -> str:
        process = getattr(self.server, "process", None)
        if process is not None and process.poll() is not None:
            pytest.exit(
                f"DynamoDB Local died (exit {process.returncode}); see .pytest-dynamodb-local.log", returncode=3
            )
        if not self.endpoint:
            from local import dynamodb_local

            server = dynamodb_local.start(log=ROOT / ".pytest-dynamodb-local.log")
            self.server, self.endpoint = server, server.endpoint
            self.description = (
                f"DynamoDB Local {server.version} at {server.endpoint} (started in {server.started_in:.1f} s)"
            )
        return self.endpoint

    def stage(self) -> str:
        return f"d{self._session}-{next(self._stages)}"

    def stop(self) -> None:
        stop = getattr(self.server, "stop", None)
        if stop is not None:
            stop()


_dynamodb_local = _DynamoDBLocalSession()


def pytest_report_header(config: pytest.Config) -> str:
    if ON_DYNAMODB_LOCAL:
        return "DynamoDB engine: DynamoDB Local (NANOGEN_TEST_DYNAMODB=local); SQS and S3 on moto"
    return "DynamoDB engine: moto (set NANOGEN_TEST_DYNAMODB=local for DynamoDB Local)"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if ON_DYNAMODB_LOCAL:
        local = _dynamodb_local
        terminalreporter.write_line(
            f"DynamoDB engine: {local.description}; {local.tests} tests on their own tables "
            f"({local.table_seconds:.1f} s setting up and removing each test's resources, moto's included)"
        )
    else:
        terminalreporter.write_line("DynamoDB engine: moto")


def pytest_unconfigure(config: pytest.Config) -> None:
    _dynamodb_local.stop()


@contextmanager
def _dynamodb_engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """On DynamoDB Local: route DynamoDB there under a fresh stage name; delete its tables afterwards."""
    if not ON_DYNAMODB_LOCAL:
        yield
        return
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", _dynamodb_local.ensure())
    monkeypatch.setenv("NANOGEN_STAGE", _dynamodb_local.stage())
    _dynamodb_local.tests += 1
    try:
        yield
    finally:
        began = time.monotonic()
        _delete_tables()
        _dynamodb_local.table_seconds += time.monotonic() - began


def _delete_tables() -> None:
    from botocore.exceptions import ClientError

    from chalicelib import aws as aws_clients
    from chalicelib.config import get_settings
    from chalicelib.tables import table_names
    from tests.faults import suspended

    client = aws_clients.client("dynamodb")
    with suspended():
        for name in table_names(get_settings()).values():
            try:
                client.delete_table(TableName=name)
            except ClientError as error:
                if error.response["Error"]["Code"] != "ResourceNotFoundException":
                    raise


def _create_resources() -> None:
    from chalicelib.runtime import ready
    from infra.resources import create_locally

    began = time.monotonic()
    reset_process_state()
    create_locally(ready())
    if ON_DYNAMODB_LOCAL:
        _dynamodb_local.table_seconds += time.monotonic() - began


@pytest.fixture
def aws(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto in-process, with the stack's resources; invariants checked afterwards.

    With ``NANOGEN_TEST_DYNAMODB=local`` the tables are on DynamoDB Local instead.
    """
    from moto import mock_aws

    from chalicelib.runtime import ready

    with mock_aws(), _dynamodb_engine(monkeypatch):
        _create_resources()
        yield
        ready()
        _assert_books_balance()


@pytest.fixture(scope="session")
def emulator_endpoint() -> Iterator[str]:
    """Start ``local.aws_server`` once per session on a free port."""
    from local import aws_server

    process, endpoint = aws_server.start(stderr=subprocess.DEVNULL)
    try:
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)


_stage_numbers = itertools.count(1)


@pytest.fixture
def emulator(emulator_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Fresh resources (a new stage name) on the serialized local endpoint (DynamoDB: see the engine)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", emulator_endpoint)
    monkeypatch.setenv("NANOGEN_STAGE", f"race{next(_stage_numbers)}")
    with _dynamodb_engine(monkeypatch):
        _create_resources()
        yield emulator_endpoint
        _assert_books_balance()
