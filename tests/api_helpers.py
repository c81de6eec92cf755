"""Builders shared by the REST API tests: signed callers, a JSON client, table probes.

Requests go through the real ``app`` with ``chalice.test.Client`` (the same
routing, content-type checks and error handling API Gateway's Lambda sees);
state is read back from the moto tables, so a test can assert what moved,
not only what was answered.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import pytest
from chalice.test import Client

from chalicelib import aws, money
from chalicelib.auth import sign_init_data
from chalicelib.model import Claim, ClaimOutcome, FailureReason
from chalicelib.runtime import ready
from chalicelib.tables import Generation
from tests.conftest import TEST_ADMIN_TOKEN, TEST_BOT_TOKEN
from tests.probes import stored_generation

ALICE: dict[str, Any] = {"id": 1001, "first_name": "Alice", "username": "alice", "language_code": "en"}
BOB: dict[str, Any] = {"id": 1002, "first_name": "Bob"}
MALLORY: dict[str, Any] = {"id": 6666, "first_name": "Mallory", "username": "mallory"}

DEFAULT_MODEL = "google/gemini-2.5-flash-image"
EDIT_MODEL = "google/nano-banana-edit"
PRO_MODEL = "google/nano-banana-pro"

GENERATION_FIELDS = {
    "id",
    "status",
    "prompt",
    "model",
    "aspect_ratio",
    "image_urls",
    "upload_ids",
    "cost",
    "result_urls",
    "error",
    "created_at",
    "updated_at",
}
USER_FIELDS = {"id", "first_name", "username", "credits", "active_generations", "banned", "language", "settings"}


def init_data(user: dict[str, Any], *, token: str = TEST_BOT_TOKEN, auth_date: int | None = None) -> str:
    """initData signed as Telegram signs it, fresh unless ``auth_date`` says otherwise."""
    return sign_init_data(user, token, auth_date=int(time.time()) if auth_date is None else auth_date)


def tma(user: dict[str, Any], **kwargs: Any) -> dict[str, str]:
    """The Mini App's ``Authorization`` header for ``user``."""
    return {"Authorization": f"tma {init_data(user, **kwargs)}"}


def bearer(token: str = TEST_ADMIN_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: Any  # parsed JSON

    @property
    def code(self) -> str | None:
        """The CONTRACT §4 error code, or None for a success body."""
        error = self.body.get("error") if isinstance(self.body, dict) else None
        return error.get("code") if isinstance(error, dict) else None


def _app_client() -> Client:
    from app import app

    return Client(app)


def call(
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    json_body: Any = None,
    raw_body: bytes | None = None,
) -> Reply:
    """One HTTP request through the Chalice app; the answer must be JSON."""
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    body = raw_body if raw_body is not None else (b"" if json_body is None else json.dumps(json_body).encode())
    with _app_client() as client:
        response = client.http.request(method, path, headers=all_headers, body=body)
    headers_out = {key.lower(): value for key, value in response.headers.items()}
    assert headers_out.get("content-type", "").startswith("application/json"), response.headers
    return Reply(status=response.status_code, headers=headers_out, body=json.loads(response.body))


def get(path: str, user: dict[str, Any] | None = None, **kwargs: Any) -> Reply:
    headers = kwargs.pop("headers", None) or (tma(user) if user is not None else {})
    return call("GET", path, headers=headers, **kwargs)


def post(path: str, user: dict[str, Any] | None = None, **kwargs: Any) -> Reply:
    headers = kwargs.pop("headers", None) or (tma(user) if user is not None else {})
    return call("POST", path, headers=headers, **kwargs)


def start(
    user: dict[str, Any], prompt: str = "a red fox in the snow", *, key: str | None = None, **fields: Any
) -> Reply:
    """``POST /api/generation`` as ``user``."""
    headers = tma(user)
    if key is not None:
        headers["Idempotency-Key"] = key
    return call("POST", "/api/generation", headers=headers, json_body={"prompt": prompt, **fields})


def register(user: dict[str, Any]) -> dict[str, Any]:
    """``GET /api/user/me``: the user, registered with the welcome credits if new."""
    reply = get("/api/user/me", user)
    assert reply.status == 200, reply.body
    body: dict[str, Any] = reply.body
    return body


def assert_error(reply: Reply, status: int, code: str) -> None:
    assert (reply.status, reply.code) == (status, code), reply.body
    assert set(reply.body) == {"error"}
    message = reply.body["error"]["message"]
    assert isinstance(message, str) and message.strip(), reply.body
    assert "Traceback" not in message


# --- what the tables say --------------------------------------------------------


def complete_with_picture(user_id: int, generation_id: str, key: str, *, claim: Claim | None = None) -> Generation:
    """Run a generation to ``completed`` as the worker would, its picture stored at ``key``.

    ``claim`` is the worker's claim when the test already moved it to ``processing``.
    """
    settings = ready()
    s3 = aws.client("s3")
    s3.put_object(Bucket=settings.results_bucket, Key=key, Body=b"\x89PNG\r\n\x1a\n", ContentType="image/png")
    if claim is None:
        claim = money.claim_generation(user_id, generation_id, lease_seconds=60)
    assert claim.outcome == ClaimOutcome.CLAIMED and claim.generation is not None
    assert money.complete_generation(claim.generation, result_keys=[key], provider="test")
    return stored_generation(user_id, generation_id)


def fail(user_id: int, generation_id: str, error: FailureReason = FailureReason.PROVIDER_REJECTED) -> Generation:
    """End a generation as ``failed`` (refunded) as the worker would."""
    claim = money.claim_generation(user_id, generation_id, lease_seconds=60)
    assert claim.outcome == ClaimOutcome.CLAIMED and claim.generation is not None
    assert money.fail_generation(claim.generation, error=error, claim_token=claim.generation.claim_token)
    return stored_generation(user_id, generation_id)


def configure(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    """Change environment variables mid-test and make the app read them again."""
    from tests.conftest import reset_process_state

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reset_process_state()
