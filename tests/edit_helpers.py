"""Builders for the picture-edit tests: photo, document and text messages, and the whole path.

The one fake Bot API (``tests.fakes.telegram``) serves ``getFile`` and the
file download path; ``edit_stack`` is the worker tests' ``Stack`` (fake
AIML, fake Telegram, the real worker on moto), so a test can deliver
updates to the webhook, run the queue through ``app.generation_worker``
and look at what AIML received.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from chalicelib import aws
from chalicelib.runtime import ready
from tests.fakes.telegram import FakeTelegram, StoredFile
from tests.telegram_helpers import ALICE_ID, next_update_id, user
from tests.worker_helpers import Stack, make_stack

BOT_USER = {"id": 4242424242, "is_bot": True, "first_name": "NanoGen", "username": "nanogen_bot"}


_message_ids = itertools.count(20_000)


def photo_message(
    stored: StoredFile,
    *,
    caption: str | None = None,
    media_group_id: str | None = None,
    message_id: int | None = None,
    user_id: int = ALICE_ID,
    file_size: int | None = None,
    language_code: str = "en",
) -> dict[str, Any]:
    """A private-chat message with a photo: a small thumbnail first, the full size last."""
    small = {**stored.photo_size(90, 60), "file_id": f"thumb-of-{stored.file_id}", "file_unique_id": "thumb"}
    large = stored.photo_size(1280, 853)
    if file_size is not None:
        large["file_size"] = file_size
    message: dict[str, Any] = {
        "message_id": next(_message_ids) if message_id is None else message_id,
        "date": int(time.time()),
        "from": user(user_id, language_code=language_code),
        "chat": {"id": user_id, "type": "private"},
        "photo": [small, large],
    }
    if caption is not None:
        message["caption"] = caption
    if media_group_id is not None:
        message["media_group_id"] = media_group_id
    return message


def document_message(
    stored: StoredFile,
    mime_type: str,
    *,
    caption: str | None = None,
    file_size: int | None = None,
    language_code: str = "en",
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": next(_message_ids),
        "date": int(time.time()),
        "from": user(ALICE_ID, language_code=language_code),
        "chat": {"id": ALICE_ID, "type": "private"},
        "document": {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_name": stored.file_path.rsplit("/", 1)[-1],
            "mime_type": mime_type,
            "file_size": len(stored.data) if file_size is None else file_size,
        },
    }
    if caption is not None:
        message["caption"] = caption
    return message


def text_message(text: str, *, reply_to: dict[str, Any] | None = None, language_code: str = "en") -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": next(_message_ids),
        "date": int(time.time()),
        "from": user(ALICE_ID, language_code=language_code),
        "chat": {"id": ALICE_ID, "type": "private"},
        "text": text,
    }
    if reply_to is not None:
        message["reply_to_message"] = reply_to
    return message


def update_of(message: dict[str, Any]) -> dict[str, Any]:
    return {"update_id": next_update_id(), "message": message}


def edit_stack(server: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> tuple[Stack, FakeTelegram]:
    """After ``point_env`` and an AWS fixture: the fakes registered and the real worker installed."""
    stack = make_stack(server, monkeypatch)
    return stack, stack.telegram


def run_queue(stack: Stack, *, rounds: int = 3) -> None:
    """Hand every visible message to the worker Lambda until the queue is empty (album checks, then jobs)."""
    for _ in range(rounds):
        event = stack.receive()
        if not event["Records"]:
            return
        assert stack.run(event) == []


def all_rows_text() -> str:
    """Every item of every table, as text (to look for what must never be stored)."""
    dynamodb = aws.client("dynamodb")
    settings = ready()
    texts = []
    for name in (
        settings.users_table,
        settings.generations_table,
        settings.ledger_table,
        settings.payments_table,
        settings.guards_table,
    ):
        texts.append(json.dumps(dynamodb.scan(TableName=name, ConsistentRead=True)["Items"]))
    return "\n".join(texts)
