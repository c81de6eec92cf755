"""Shared by the Telegram tests: a fake Bot API, update builders, delivery through the webhook.

Registered as a pytest plugin in ``tests/conftest.py``, so ``fake_telegram``
is a fixture everywhere.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from chalice.test import Client
from pytest_httpserver import HTTPServer
from werkzeug import Request as WerkzeugRequest
from werkzeug import Response as WerkzeugResponse

from chalicelib import bootstrap, config, queries
from chalicelib.handlers import webhook
from chalicelib.runtime import ready
from chalicelib.tables import Generation, LedgerEntry, ProcessedUpdate
from tests.conftest import TEST_ADMIN_TOKEN, TEST_WEBHOOK_SECRET

ALICE_ID = 1001
BOB_ID = 1002

# --------------------------------------------------------------------------
# Shared helpers: a fake Bot API, update builders, delivery
# --------------------------------------------------------------------------

_DEFAULT_RESULTS: dict[str, Any] = {"answerPreCheckoutQuery": True, "refundStarPayment": True, "setWebhook": True}


@dataclass(frozen=True)
class Call:
    token: str
    method: str
    payload: dict[str, Any]


class FakeTelegram:
    """Plays the Bot API: answers ``{"ok": true, "result": ...}`` like Telegram and records every call."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.calls: list[Call] = []
        self.delay = 0.0  # seconds each answer takes (to widen race windows)
        self._answers: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        self._lock = threading.Lock()
        self._message_ids = itertools.count(1)
        server.expect_request(re.compile(r"/bot[^/]+/\w+"), method="POST").respond_with_handler(self._answer)

    def refuse_next(self, method: str, error_code: int, description: str) -> None:
        """The next call of ``method`` gets ``ok: false`` (later calls succeed again)."""
        body = {"ok": False, "error_code": error_code, "description": description}
        self._answers.setdefault(method, []).append((error_code, body))

    def sent(self, method: str) -> list[dict[str, Any]]:
        return [call.payload for call in self.calls if call.method == method]

    def methods(self) -> list[str]:
        return [call.method for call in self.calls]

    def texts(self) -> list[str]:
        return [str(payload["text"]) for payload in self.sent("sendMessage")]

    def _answer(self, request: WerkzeugRequest) -> WerkzeugResponse:
        token, method = request.path.removeprefix("/bot").split("/", 1)
        payload = request.get_json(silent=True) or dict(request.form)
        with self._lock:
            self.calls.append(Call(token=token, method=method, payload=payload))
            queued = self._answers.get(method)
            status, body = queued.pop(0) if queued else (200, {"ok": True, "result": self._result(method, payload)})
        if self.delay:
            time.sleep(self.delay)
        return WerkzeugResponse(json.dumps(body), status=status, content_type="application/json")

    def _result(self, method: str, payload: dict[str, Any]) -> Any:
        if method.startswith("send"):
            message = {"message_id": next(self._message_ids), "date": int(time.time())}
            return {**message, "chat": {"id": payload.get("chat_id")}, "text": payload.get("text")}
        if method == "getWebhookInfo":
            return {"url": "https://example.com/api/telegram/webhook", "pending_update_count": 0}
        return _DEFAULT_RESULTS.get(method, True)


def start_fake_telegram(server: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> FakeTelegram:
    """Point TELEGRAM_API_BASE at ``server``; call ``stop_fake_telegram`` after the test."""
    monkeypatch.setenv("TELEGRAM_API_BASE", server.url_for("/").rstrip("/"))
    config.reset_settings()
    bootstrap.reset()
    ready()
    return FakeTelegram(server)


def stop_fake_telegram() -> None:
    bootstrap.reset()


@pytest.fixture
def fake_telegram(aws: None, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTelegram]:
    yield start_fake_telegram(httpserver, monkeypatch)
    stop_fake_telegram()


_update_ids = itertools.count(500_000)
_message_ids = itertools.count(1)


def next_update_id() -> int:
    return next(_update_ids)


def user(user_id: int = ALICE_ID, first_name: str = "Alice", **extra: Any) -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "en", **extra}


def message(
    text: str | None = None,
    *,
    user_id: int = ALICE_ID,
    chat_type: str = "private",
    message_id: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A ``message`` object; in a private chat the chat id is the user id."""
    body: dict[str, Any] = {
        "message_id": next(_message_ids) if message_id is None else message_id,
        "date": int(time.time()),
        "from": user(user_id),
        "chat": {"id": user_id if chat_type == "private" else -100123, "type": chat_type},
        **extra,
    }
    if text is not None:
        body["text"] = text
    return body


def text_update(text: str, *, update_id: int | None = None, **options: Any) -> dict[str, Any]:
    return {"update_id": next_update_id() if update_id is None else update_id, "message": message(text, **options)}


def pre_checkout_update(
    payload: str, amount: int, *, currency: str = "XTR", user_id: int = ALICE_ID, query_id: str = "pcq-1"
) -> dict[str, Any]:
    query = {
        "id": query_id,
        "from": user(user_id),
        "currency": currency,
        "total_amount": amount,
        "invoice_payload": payload,
    }
    return {"update_id": next_update_id(), "pre_checkout_query": query}


def payment_update(
    charge_id: str, payload: str, amount: int, *, currency: str = "XTR", user_id: int = ALICE_ID
) -> dict[str, Any]:
    payment = {
        "currency": currency,
        "total_amount": amount,
        "invoice_payload": payload,
        "telegram_payment_charge_id": charge_id,
        "provider_payment_charge_id": f"provider-{charge_id}",
    }
    return {"update_id": next_update_id(), "message": message(user_id=user_id, successful_payment=payment)}


def client() -> Client:
    from app import app

    return Client(app)


def deliver(update: dict[str, Any] | str, *, secret: str | None = TEST_WEBHOOK_SECRET) -> Any:
    """POST an update to the webhook as Telegram does; returns chalice's test response."""
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers[webhook.SECRET_HEADER] = secret
    body = update if isinstance(update, str) else json.dumps(update)
    return client().http.post("/api/telegram/webhook", headers=headers, body=body.encode())


def admin_refund(charge_id: str, *, token: str | None = TEST_ADMIN_TOKEN) -> Any:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return client().http.post(f"/api/admin/payments/{charge_id}/refund", headers=headers, body=b"")


def balance(user_id: int) -> int:
    found = queries.get_user(user_id)
    assert found is not None
    return int(found.credits)


def generations_of(user_id: int) -> list[Generation]:
    return list(Generation.query(user_id))


def charges_of(user_id: int) -> list[LedgerEntry]:
    return [entry for entry in LedgerEntry.query(user_id) if entry.reason == "generation"]


def processed(update_id: int) -> ProcessedUpdate | None:
    try:
        return ProcessedUpdate.get(ProcessedUpdate.key(update_id), consistent_read=True)
    except ProcessedUpdate.DoesNotExist:
        return None
