"""The one fake Telegram Bot API: answers ``/bot<token>/<method>`` as Telegram does and records every call.

Answers are ``{"ok": true, "result": ...}`` (a message for ``send*``
methods), or ``{"ok": false, "error_code", "description"[, "parameters"]}``
when scripted with ``refuse_next``. JSON bodies and multipart uploads are
both recorded (``Call.fields``, ``Call.files``).

Files as Telegram serves them to bots: ``add_file`` stores one, ``getFile``
answers its ``file_path`` (and ``file_size``), and ``GET
/file/bot<token>/<file_path>`` serves its bytes (``downloads`` records the
paths, ``download_tokens`` the tokens). A photo sent with ``sendPhoto`` is
stored too, and the answered message carries its ``photo`` sizes, as
Telegram's does.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

_DEFAULT_RESULTS: dict[str, Any] = {"answerPreCheckoutQuery": True, "refundStarPayment": True, "setWebhook": True}


@dataclass(frozen=True)
class StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes

    def photo_size(self, width: int, height: int) -> dict[str, Any]:
        """A ``PhotoSize`` of this file."""
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.data),
            "width": width,
            "height": height,
        }


@dataclass(frozen=True)
class Call:
    token: str
    method: str
    fields: dict[str, Any]  # JSON body, or the form fields of a multipart upload
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # field -> (file name, content)
    at: float = 0.0  # time.monotonic() when the call arrived

    @property
    def payload(self) -> dict[str, Any]:
        return self.fields

    @property
    def chat_id(self) -> str:
        return str(self.fields.get("chat_id"))


class FakeTelegram:
    """Plays the Bot API on ``server``; ``refuse_next`` scripts errors, ``delay`` slows every answer,
    ``hold`` keeps every answer back until the test sets it.

    ``record=False`` keeps only the count of calls (``total``), for long fuzz runs.
    """

    def __init__(self, server: HTTPServer, *, record: bool = True) -> None:
        self.server = server
        self.calls: list[Call] = []
        self.total = 0
        self.delay = 0.0  # seconds each answer takes (to widen race windows)
        self.hold: threading.Event | None = None  # answers wait until it is set (10 s at most): orders a race
        self.result_of: dict[str, Any] = {}  # method -> the result it answers instead of the default
        self.refused_chats: dict[str, tuple[int, str]] = {}  # chat id -> (error_code, description), every call
        self._record = record
        self._refusals: dict[str, list[tuple[int, dict[str, Any]] | None]] = {}  # None: answered as usual
        self._lock = threading.Lock()
        self._message_ids = itertools.count(1)
        self.files: dict[str, StoredFile] = {}
        self.downloads: list[str] = []  # file paths fetched from /file/bot<token>/...
        self.download_tokens: list[str] = []
        self.hide_file_size = False  # getFile without file_size (Telegram may omit it)
        self._file_numbers = itertools.count(1)
        server.expect_request(re.compile(r"/bot[^/]+/\w+"), method="POST").respond_with_handler(self._answer)
        server.expect_request(re.compile(r"/file/bot[^/]+/.+"), method="GET").respond_with_handler(self._download)

    @property
    def api_base(self) -> str:
        """The TELEGRAM_API_BASE that reaches this fake."""
        return str(self.server.url_for("/")).rstrip("/")

    def refuse_next(
        self,
        method: str,
        error_code: int,
        description: str,
        *,
        retry_after: int | None = None,
        times: int = 1,
        after: int = 0,
    ) -> None:
        """The next ``times`` calls of ``method`` get ``ok: false`` (later calls succeed again).

        ``after``: that many calls of ``method`` are answered as usual first (``after=1``: the second fails).
        """
        body: dict[str, Any] = {"ok": False, "error_code": error_code, "description": description}
        if retry_after is not None:
            body["parameters"] = {"retry_after": retry_after}
        self._refusals.setdefault(method, []).extend([None] * after + [(error_code, body)] * times)

    def sent(self, method: str) -> list[dict[str, Any]]:
        """The payloads of every call of ``method``."""
        return [call.fields for call in self.calls if call.method == method]

    def methods(self) -> list[str]:
        return [call.method for call in self.calls]

    def texts(self) -> list[str]:
        return [str(payload["text"]) for payload in self.sent("sendMessage")]

    def texts_to(self, chat_id: int | str) -> list[str]:
        return [
            str(call.fields["text"])
            for call in self.calls
            if call.method == "sendMessage" and call.chat_id == str(chat_id)
        ]

    def pictures_to(self, chat_id: int | str) -> list[Call]:
        """Successful or not, every sendPhoto / sendDocument aimed at this chat."""
        return [
            call for call in self.calls if call.method in ("sendPhoto", "sendDocument") and call.chat_id == str(chat_id)
        ]

    def _answer(self, request: Request) -> Response:
        token, method = request.path.removeprefix("/bot").split("/", 1)
        if request.mimetype == "multipart/form-data":
            fields: dict[str, Any] = dict(request.form)
            files = {name: (upload.filename or "", upload.read()) for name, upload in request.files.items()}
        else:
            fields, files = request.get_json(force=True, silent=True) or dict(request.form), {}
        with self._lock:
            self.total += 1
            if self._record:
                self.calls.append(Call(token=token, method=method, fields=fields, files=files, at=time.monotonic()))
            refusals = self._refusals.get(method)
            refusal = refusals.pop(0) if refusals else None
            refused_chat = self.refused_chats.get(str(fields.get("chat_id")))
            if refusal is not None:
                status, body = refusal
            elif refused_chat is not None:
                status, body = (
                    refused_chat[0],
                    {"ok": False, "error_code": refused_chat[0], "description": refused_chat[1]},
                )
            else:
                status, body = 200, {"ok": True, "result": self._result(method, fields, files)}
        if self.delay:
            time.sleep(self.delay)
        if self.hold is not None:
            self.hold.wait(timeout=10)
        return Response(json.dumps(body), status=status, content_type="application/json")

    def add_file(self, data: bytes, *, folder: str = "photos", extension: str = "jpg") -> StoredFile:
        """A file Telegram holds for the bot (a photo or document a user sent)."""
        number = next(self._file_numbers)
        stored = StoredFile(f"file-{number}", f"unique-{number}", f"{folder}/file_{number}.{extension}", data)
        self.files[stored.file_id] = stored
        return stored

    def _download(self, request: Request) -> Response:
        token, path = request.path.removeprefix("/file/bot").split("/", 1)
        with self._lock:
            self.downloads.append(path)
            self.download_tokens.append(token)
        for stored in list(self.files.values()):
            if stored.file_path == path:
                return Response(stored.data, content_type="application/octet-stream")
        return Response("not found", status=404)

    def _result(self, method: str, fields: dict[str, Any], files: dict[str, tuple[str, bytes]] | None = None) -> Any:
        if method in self.result_of:
            return self.result_of[method]
        if method == "getFile":
            stored = self.files.get(str(fields.get("file_id")))
            if stored is None:
                return {"file_id": fields.get("file_id"), "file_unique_id": "gone"}
            found: dict[str, Any] = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id}
            found["file_path"] = stored.file_path
            if not self.hide_file_size:
                found["file_size"] = len(stored.data)
            return found
        if method.startswith("send"):
            message = {"message_id": next(self._message_ids), "date": int(time.time())}
            sent: dict[str, Any] = {**message, "chat": {"id": fields.get("chat_id")}, "text": fields.get("text")}
            if method == "sendPhoto" and files and "photo" in files:
                stored = self.add_file(files["photo"][1])
                sent["photo"] = [stored.photo_size(90, 90), stored.photo_size(1024, 1024)]
            return sent
        if method == "getWebhookInfo":
            return {"url": "https://example.com/api/telegram/webhook", "pending_update_count": 0}
        return _DEFAULT_RESULTS.get(method, True)
