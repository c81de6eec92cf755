"""Shared fixtures: a clean environment, moto in-process, and the local emulator.

* ``aws``: moto's in-process mock with every table, queue and bucket
  created from ``infra.resources``; the money invariants are checked after
  the test.
* ``emulator``: the same resources on the one-request-at-a-time local AWS
  endpoint (``local.aws_server``) in a subprocess: the only honest target
  for race tests, since in-process moto is not thread-safe.
"""

from __future__ import annotations

import itertools
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytest_plugins = ["tests.telegram_helpers", "tests.worker_helpers", "tests.faults"]
TEST_BOT_TOKEN = "4242424242:TestTokenForNanoGenUnitTests_abcdefgh"
TEST_WEBHOOK_SECRET = "test-webhook-secret"
TEST_ADMIN_TOKEN = "test-admin-token-0123456789"

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
}
_CLEARED = [
    "AWS_ENDPOINT_URL",
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
    reset_process_state()
    yield
    reset_process_state()


def _assert_books_balance() -> None:
    from local.invariants import violations

    problems = violations()
    assert problems == [], "money invariants broken:\n" + "\n".join(problems)


@pytest.fixture
def aws(clean_env: None) -> Iterator[None]:
    """moto in-process, with the stack's resources; invariants checked afterwards."""
    from moto import mock_aws

    from chalicelib.runtime import ready
    from infra.resources import create_locally

    with mock_aws():
        reset_process_state()
        settings = ready()
        create_locally(settings)
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
    """Fresh resources (a new stage name) on the serialized local endpoint."""
    from chalicelib.runtime import ready
    from infra.resources import create_locally

    monkeypatch.setenv("AWS_ENDPOINT_URL", emulator_endpoint)
    monkeypatch.setenv("NANOGEN_STAGE", f"race{next(_stage_numbers)}")
    reset_process_state()
    create_locally(ready())
    yield emulator_endpoint
    _assert_books_balance()
