"""Errors become CONTRACT §4 JSON; the unexpected becomes a 500 with a request id."""

from __future__ import annotations

import json
import logging

import pytest
from chalice import Chalice
from chalice.test import Client

from chalicelib import errors
from chalicelib.http import JsonApi

CASES = [
    (errors.InvalidRequest("prompt is empty"), 400, "invalid_request"),
    (errors.Unauthorized(), 401, "unauthorized"),
    (errors.InsufficientCredits(), 402, "insufficient_credits"),
    (errors.Forbidden(), 403, "forbidden"),
    (errors.UserBanned(), 403, "user_banned"),
    (errors.NotFound(), 404, "not_found"),
    (errors.NotCancellable(), 409, "not_cancellable"),
    (errors.Conflict(), 409, "conflict"),
    (errors.IdempotencyKeyReused(), 422, "idempotency_key_reused"),
    (errors.RateLimited(retry_after=17), 429, "rate_limited"),
    (errors.TooManyActive(retry_after=5), 429, "too_many_active"),
    (errors.UpdateInProgress(retry_after=5), 503, "update_in_progress"),
    (errors.InternalError(), 500, "internal_error"),
]


def app_raising(error: BaseException) -> Chalice:
    app = Chalice(app_name="errors-under-test")
    api = JsonApi(app)

    @api.route("/boom", methods=("GET", "POST"))
    def boom() -> None:
        raise error

    return app


@pytest.mark.parametrize(("error", "status", "code"), CASES, ids=[c[2] + str(c[1]) for c in CASES])
def test_every_api_error_is_rendered_as_the_contract_says(error: errors.ApiError, status: int, code: str) -> None:
    with Client(app_raising(error)) as client:
        response = client.http.get("/boom")
    assert response.status_code == status
    body = json.loads(response.body)
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"] == error.message and error.message
    assert response.headers["Content-Type"] == "application/json"


def test_rate_limit_errors_carry_retry_after() -> None:
    with Client(app_raising(errors.RateLimited(retry_after=17))) as client:
        response = client.http.get("/boom")
    assert response.headers["Retry-After"] == "17"


def test_unexpected_exception_is_a_500_with_a_request_id_and_no_detail(caplog: pytest.LogCaptureFixture) -> None:
    secret_detail = "database password is hunter2"
    with Client(app_raising(RuntimeError(secret_detail))) as client, caplog.at_level(logging.ERROR):
        response = client.http.get("/boom")
    assert response.status_code == 500
    body = json.loads(response.body)
    assert body["error"]["code"] == "internal_error"
    request_id = body["error"]["request_id"]
    assert request_id and response.headers["X-Request-Id"] == request_id
    text = response.body.decode()
    assert secret_detail not in text and "Traceback" not in text and "RuntimeError" not in text


def test_health_answers_ok() -> None:
    from app import app

    with Client(app) as client:
        response = client.http.get("/api/health")
    assert response.status_code == 200 and json.loads(response.body) == {"status": "ok"}
