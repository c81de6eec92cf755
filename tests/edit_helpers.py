"""Builders for the picture-edit tests: a Bot API that also serves files, photo updates, the whole path.

``TelegramWithFiles`` is the worker tests' fake Bot API plus what Telegram
offers for files: ``getFile`` answers a ``file_path`` for a known
``file_id`` and ``GET /file/bot<token>/<file_path>`` serves its bytes.
``edit_stack`` wires it, the fake AIML server and the real worker to moto,
so a test can deliver updates to the webhook, run the queue through
``app.generation_worker`` and look at what AIML received.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from dataclasses import dataclass
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from chalicelib import aws
from chalicelib.config import get_settings
from chalicelib.generate import Worker
from chalicelib.handlers import worker as worker_handler
from chalicelib.providers import AimlClient
from chalicelib.runtime import ready
from chalicelib.telegram import get_bot_api
from tests.conftest import reset_process_state
from tests.telegram_helpers import ALICE_ID, next_update_id, user
from tests.worker_helpers import AIML_KEY, FakeAiml, FakeTelegram, Stack, TelegramCall, serialize_moto

BOT_USER = {"id": 4242424242, "is_bot": True, "first_name": "NanoGen", "username": "nanogen_bot"}


@dataclass(frozen=True)
class StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes


class TelegramWithFiles(FakeTelegram):
    """The Bot API: records every call, answers send* with a message and getFile with a path."""

    def __init__(self, server: HTTPServer) -> None:
        self.files: dict[str, StoredFile] = {}
        self.downloads: list[str] = []  # file paths fetched
        self.download_tokens: list[str] = []
        self.hide_file_size = False  # getFile without file_size (Telegram omits it sometimes)
        self._ids = itertools.count(1)
        self._sent_ids = itertools.count(9000)
        super().__init__(server)
        server.expect_request(re.compile(r"/file/bot[^/]+/.+"), method="GET").respond_with_handler(self._download)

    def add_file(self, data: bytes, *, folder: str = "photos", extension: str = "jpg") -> StoredFile:
        number = next(self._ids)
        stored = StoredFile(f"file-{number}", f"unique-{number}", f"{folder}/file_{number}.{extension}", data)
        self.files[stored.file_id] = stored
        return stored

    def _answer(self, request: Request) -> Response:
        token, method = request.path.removeprefix("/bot").split("/", 1)
        if request.mimetype == "multipart/form-data":
            fields: dict[str, Any] = dict(request.form)
            files = {name: (upload.filename or "", upload.read()) for name, upload in request.files.items()}
        else:
            fields, files = request.get_json(force=True, silent=True) or {}, {}
        with self._lock:
            self.calls.append(TelegramCall(token=token, method=method, fields=fields, files=files))
            refusals = self._refusals.get(method)
            if refusals:
                status, body = refusals.pop(0)
            else:
                status, body = 200, {"ok": True, "result": self._method_result(method, fields, files)}
        return Response(json.dumps(body), status=status, content_type="application/json")

    def _method_result(self, method: str, fields: dict[str, Any], files: dict[str, tuple[str, bytes]]) -> Any:
        if method == "getFile":
            stored = self.files.get(str(fields.get("file_id")))
            if stored is None:
                return {"file_id": fields.get("file_id"), "file_unique_id": "gone"}
            result: dict[str, Any] = {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "file_path": stored.file_path,
            }
            if not self.hide_file_size:
                result["file_size"] = len(stored.data)
            return result
        message: dict[str, Any] = {
            "message_id": next(self._sent_ids),
            "date": int(time.time()),
            "chat": {"id": fields.get("chat_id")},
        }
        if method == "sendPhoto" and "photo" in files:
            stored = self.add_file(files["photo"][1])
            message["photo"] = [photo_size(stored, 90, 90), photo_size(stored, 1024, 1024)]
        return message

    def _download(self, request: Request) -> Response:
        token, path = request.path.removeprefix("/file/bot").split("/", 1)
        with self._lock:
            self.downloads.append(path)
            self.download_tokens.append(token)
        for stored in self.files.values():
            if stored.file_path == path:
                return Response(stored.data, content_type="application/octet-stream")
        return Response("not found", status=404)

    def photos_sent(self) -> list[TelegramCall]:
        return self.sent("sendPhoto")


def photo_size(stored: StoredFile, width: int, height: int) -> dict[str, Any]:
    return {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": len(stored.data),
        "width": width,
        "height": height,
    }


_message_ids = itertools.count(20_000)


def photo_message(
    stored: StoredFile,
    *,
    caption: str | None = None,
    media_group_id: str | None = None,
    message_id: int | None = None,
    user_id: int = ALICE_ID,
    file_size: int | None = None,
) -> dict[str, Any]:
    """A private-chat message with a photo: a small thumbnail first, the full size last."""
    small = {**photo_size(stored, 90, 60), "file_id": f"thumb-of-{stored.file_id}", "file_unique_id": "thumb"}
    large = photo_size(stored, 1280, 853)
    if file_size is not None:
        large["file_size"] = file_size
    message: dict[str, Any] = {
        "message_id": next(_message_ids) if message_id is None else message_id,
        "date": int(time.time()),
        "from": user(user_id),
        "chat": {"id": user_id, "type": "private"},
        "photo": [small, large],
    }
    if caption is not None:
        message["caption"] = caption
    if media_group_id is not None:
        message["media_group_id"] = media_group_id
    return message


def document_message(
    stored: StoredFile, mime_type: str, *, caption: str | None = None, file_size: int | None = None
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": next(_message_ids),
        "date": int(time.time()),
        "from": user(ALICE_ID),
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


def text_message(text: str, *, reply_to: dict[str, Any] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": next(_message_ids),
        "date": int(time.time()),
        "from": user(ALICE_ID),
        "chat": {"id": ALICE_ID, "type": "private"},
        "text": text,
    }
    if reply_to is not None:
        message["reply_to_message"] = reply_to
    return message


def update_of(message: dict[str, Any]) -> dict[str, Any]:
    return {"update_id": next_update_id(), "message": message}


def edit_stack(server: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> tuple[Stack, TelegramWithFiles]:
    """After ``point_env`` and an AWS fixture: the fakes registered and the real worker installed."""
    if get_settings().aiml_api_base != server.url_for("/").rstrip("/"):
        reset_process_state()
    settings = ready()
    serialize_moto(monkeypatch)
    telegram = TelegramWithFiles(server)  # registered first: its handler answers the Bot API
    aiml = FakeAiml(server)
    provider = AimlClient(AIML_KEY, settings.aiml_api_base, backoff_base=0.01)
    worker = Worker(settings=settings, provider=provider, bot=get_bot_api())
    worker_handler.use_worker(worker)
    return Stack(server=server, aiml=aiml, telegram=telegram, settings=settings, worker=worker), telegram


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
