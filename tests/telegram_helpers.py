"""Shared by the Telegram tests: the fake Bot API wired in, update builders, delivery through the webhook.

Registered as a pytest plugin in ``tests/conftest.py``, so ``fake_telegram``
is a fixture everywhere.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.test import Client
from pytest_httpserver import HTTPServer

from chalicelib import bootstrap, config
from chalicelib.handlers import webhook
from chalicelib.runtime import ready
from tests.conftest import TEST_ADMIN_TOKEN, TEST_WEBHOOK_SECRET
from tests.fakes.telegram import FakeTelegram

ALICE_ID = 1001
BOB_ID = 1002

# --------------------------------------------------------------------------
# The fake Bot API wired in, update builders, delivery
# --------------------------------------------------------------------------


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


def sender(user_id: int = ALICE_ID, language_code: str | None = "en") -> dict[str, Any]:
    """``from`` with this Telegram language_code (None: Telegram sent none)."""
    person = user(user_id, language_code=language_code)
    if language_code is None:
        del person["language_code"]
    return person


def message(
    text: str | None = None,
    *,
    user_id: int = ALICE_ID,
    chat_type: str = "private",
    message_id: int | None = None,
    language_code: str | None = "en",
    **extra: Any,
) -> dict[str, Any]:
    """A ``message`` object; in a private chat the chat id is the user id."""
    body: dict[str, Any] = {
        "message_id": next(_message_ids) if message_id is None else message_id,
        "date": int(time.time()),
        "from": sender(user_id, language_code),
        "chat": {"id": user_id if chat_type == "private" else -100123, "type": chat_type},
        **extra,
    }
    if text is not None:
        body["text"] = text
    return body


def text_update(text: str, *, update_id: int | None = None, **options: Any) -> dict[str, Any]:
    return {"update_id": next_update_id() if update_id is None else update_id, "message": message(text, **options)}


_callback_ids = itertools.count(9_000)


def callback_update(
    data: str,
    *,
    message_id: int,
    user_id: int = ALICE_ID,
    query_id: str | None = None,
    language_code: str | None = "en",
) -> dict[str, Any]:
    """A tap on an inline button of the bot's message ``message_id`` in the user's private chat."""
    query = {
        "id": query_id or str(next(_callback_ids)),
        "from": sender(user_id, language_code),
        "chat_instance": "42",
        "data": data,
        "message": {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": user_id, "type": "private"},
            "text": "...",
        },
    }
    return {"update_id": next_update_id(), "callback_query": query}


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


def handled(update: dict[str, Any]) -> None:
    """Deliver an update the webhook must acknowledge with 200."""
    response = deliver(update)
    assert response.status_code == 200, response.body


def admin_refund(charge_id: str, *, token: str | None = TEST_ADMIN_TOKEN) -> Any:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return client().http.post(f"/api/admin/payments/{charge_id}/refund", headers=headers, body=b"")
