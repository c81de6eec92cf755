"""The one fake Telegram Bot API: answers ``/bot<token>/<method>`` as Telegram does and records every call.

Answers are ``{"ok": true, "result": ...}`` (a message for ``send*``
methods), or ``{"ok": false, "error_code", "description"[, "parameters"]}``
when scripted with ``refuse_next``. JSON bodies and multipart uploads are
both recorded (``Call.fields``, ``Call.files``).
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
class Call:
    token: str
    method: str
    fields: dict[str, Any]  # JSON body, or the form fields of a multipart upload
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # field -> (file name, content)

    @property
    def payload(self) -> dict[str, Any]:
        return self.fields

    @property
    def chat_id(self) -> str:
        return str(self.fields.get("chat_id"))


class FakeTelegram:
    """Plays the Bot API on ``server``; ``refuse_next`` scripts errors, ``delay`` slows every answer.

    ``record=False`` keeps only the count of calls (``total``), for long fuzz runs.
    """

    def __init__(self, server: HTTPServer, *, record: bool = True) -> None:
        self.server = server
        self.calls: list[Call] = []
        self.total = 0
        self.delay = 0.0  # seconds each answer takes (to widen race windows)
        self._record = record
        self._refusals: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        self._lock = threading.Lock()
        self._message_ids = itertools.count(1)
        server.expect_request(re.compile(r"/bot[^/]+/\w+"), method="POST").respond_with_handler(self._answer)

    @property
    def api_base(self) -> str:
        """The TELEGRAM_API_BASE that reaches this fake."""
        return str(self.server.url_for("/")).rstrip("/")

    def refuse_next(
        self, method: str, error_code: int, description: str, *, retry_after: int | None = None, times: int = 1
    ) -> None:
        """The next ``times`` calls of ``method`` get ``ok: false`` (later calls succeed again)."""
        body: dict[str, Any] = {"ok": False, "error_code": error_code, "description": description}
        if retry_after is not None:
            body["parameters"] = {"retry_after": retry_after}
        self._refusals.setdefault(method, []).extend([(error_code, body)] * times)

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
                self.calls.append(Call(token=token, method=method, fields=fields, files=files))
            refusals = self._refusals.get(method)
            status, body = refusals.pop(0) if refusals else (200, {"ok": True, "result": self._result(method, fields)})
        if self.delay:
            time.sleep(self.delay)
        return Response(json.dumps(body), status=status, content_type="application/json")

    def _result(self, method: str, fields: dict[str, Any]) -> Any:
        if method.startswith("send"):
            message = {"message_id": next(self._message_ids), "date": int(time.time())}
            return {**message, "chat": {"id": fields.get("chat_id")}, "text": fields.get("text")}
        if method == "getWebhookInfo":
            return {"url": "https://example.com/api/telegram/webhook", "pending_update_count": 0}
        return _DEFAULT_RESULTS.get(method, True)
