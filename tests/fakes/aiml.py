"""The one fake AIML API: ``POST /v1/images/generations`` as AIML answers it, scripted per prompt.

Both documented response shapes (``data`` with ``b64_json``, ``images``
with a ``url``, whose files it serves), and AIML's error body.
"""

from __future__ import annotations

import base64
import io
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from PIL import Image
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

AIML_KEY = "sk-aiml-worker-test-4b1d9e"
GENERATIONS_PATH = "/v1/images/generations"


def png(width: int = 4, height: int = 3, colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG")
    return buffer.getvalue()


B64_PICTURE = png(colour=(200, 30, 30))  # what a b64_json answer carries
URL_PICTURE = png(colour=(30, 30, 200))  # what a url answer points at


@dataclass(frozen=True)
class AimlAnswer:
    status: int
    body: dict[str, Any]


def b64_answer(*pictures: bytes) -> AimlAnswer:
    """The ``data`` shape, with the pictures inline (B64_PICTURE when none is given; several: several items)."""
    items = [{"url": None, "b64_json": base64.b64encode(picture).decode()} for picture in pictures or (B64_PICTURE,)]
    return AimlAnswer(200, {"data": items, "meta": {"usage": {"tokens_used": 1290}}})


def aiml_error(status: int, message: str) -> AimlAnswer:
    """AIML's error body: ``{"message", "path", "requestId", "statusCode", "timestamp"}``."""
    body = {
        "message": message,
        "path": GENERATIONS_PATH,
        "requestId": str(uuid.uuid4()),
        "statusCode": status,
        "timestamp": "2026-11-27T20:00:00.000Z",
    }
    return AimlAnswer(status, body)


@dataclass(frozen=True)
class AimlRequest:
    body: dict[str, Any]
    authorization: str | None


@dataclass(frozen=True)
class Download:
    name: str
    authorization: str | None


class FakeAiml:
    """Plays AIML: each prompt follows its script (the last answer repeats); unscripted prompts succeed."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.requests: list[AimlRequest] = []
        self.downloads: list[Download] = []
        self.delay = 0.0  # seconds each generation takes
        self._scripts: dict[str, list[AimlAnswer]] = {}
        self._files: dict[str, bytes] = {}
        self._lock = threading.Lock()
        server.expect_request(GENERATIONS_PATH, method="POST").respond_with_handler(self._generate)
        server.expect_request(re.compile(r"/files/[\w.-]+"), method="GET").respond_with_handler(self._download)

    def script(self, prompt: str, *answers: AimlAnswer) -> None:
        self._scripts[prompt] = list(answers)

    def url_answer(self, picture: bytes = URL_PICTURE) -> AimlAnswer:
        """The ``images`` shape, with a link (served here) instead of the picture."""
        name = f"{uuid.uuid4().hex}.png"
        self._files[name] = picture
        item = {"url": self.server.url_for(f"/files/{name}"), "content_type": "image/png", "width": 4, "height": 3}
        return AimlAnswer(200, {"images": [item]})

    def calls_for(self, prompt: str) -> int:
        return sum(1 for request in self.requests if request.body.get("prompt") == prompt)

    def _generate(self, request: Request) -> Response:
        body = request.get_json(force=True)
        with self._lock:
            self.requests.append(AimlRequest(body=body, authorization=request.headers.get("Authorization")))
            script = self._scripts.get(str(body.get("prompt")))
            answer = (script.pop(0) if len(script) > 1 else script[0]) if script else b64_answer()
        if self.delay:
            time.sleep(self.delay)
        return Response(json.dumps(answer.body), status=answer.status, content_type="application/json")

    def _download(self, request: Request) -> Response:
        name = request.path.rsplit("/", 1)[-1]
        with self._lock:
            self.downloads.append(Download(name, request.headers.get("Authorization")))
        if name not in self._files:
            return Response("not found", status=404)
        return Response(self._files[name], content_type="image/png")
