"""The Mini App in headless Chromium against the real local stack.

* ``stack``: ``python -m local.stack`` (what ``make run`` runs: the serialized
  moto endpoint, ``chalice local``, the worker and the front door serving
  ``webapp/dist`` at ``/app/``) on free ports, with the offline image
  provider and a fake Bot API server that records every call;
* ``browser``: Debian's Chromium (``/usr/bin/chromium``) driven by Playwright;
* ``open_app``: a 390x844 page of the Mini App as a given Telegram user, with
  a stand-in ``window.Telegram.WebApp`` (``telegram_stub.js``) that records
  the main button and ``openInvoice`` calls.

Each test uses its own Telegram user, so tests share one stack.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
OUTPUT = ROOT / "test-output" / "e2e"
STUB = (Path(__file__).with_name("telegram_stub.js")).read_text()
BOT_TOKEN = "5555555555:E2eTokenForTheMiniAppTestsOnlyAbcdef"
WEBHOOK_SECRET = "e2e-webhook-secret"
ADMIN_TOKEN = "e2e-admin-token-0123456789abcdefghijklmnop"
ADMIN_ID = 700000001
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
_user_ids = itertools.count(700000100)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def new_user(**extra: Any) -> dict[str, Any]:
    """A Telegram user nobody has used yet in this session."""
    return {"id": next(_user_ids), "first_name": "Tess", "username": "tess", "language_code": "en", **extra}


# --- a fake Bot API ----------------------------------------------------------------


@dataclass
class FakeBotApi:
    """Answers every Bot API method the way Telegram would, and remembers the calls."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, method: str, payload: dict[str, Any]) -> Any:
        with self.lock:
            self.calls.append((method, payload))
        if method == "getMe":
            return {"id": 5555555555, "is_bot": True, "first_name": "NanoGen", "username": "nanogen_e2e_bot"}
        if method == "createInvoiceLink":
            return f"https://t.me/$e2e-invoice-{len(self.calls)}"
        if method in ("sendMessage", "sendPhoto", "sendDocument", "sendInvoice"):
            chat = payload.get("chat_id", 0)
            return {"message_id": len(self.calls), "date": int(time.time()), "chat": {"id": chat, "type": "private"}}
        return True

    def sent(self, method: str) -> list[dict[str, Any]]:
        with self.lock:
            return [payload for name, payload in self.calls if name == method]


def _start_fake_bot_api() -> tuple[ThreadingHTTPServer, FakeBotApi]:
    fake = FakeBotApi()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def do_POST(self) -> None:
            method = self.path.rsplit("/", 1)[-1]
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            payload: dict[str, Any] = {}
            if self.headers.get("Content-Type", "").startswith("application/json") and body:
                payload = json.loads(body)
            elif body and not self.headers.get("Content-Type", "").startswith("multipart/"):
                payload = dict(urllib.parse.parse_qsl(body.decode()))
            answer = json.dumps({"ok": True, "result": fake.record(method, payload)}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        do_GET = do_POST

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, fake


# --- the stack ----------------------------------------------------------------------


@dataclass
class Stack:
    base: str
    bot_api: FakeBotApi

    def init_data(self, user: dict[str, Any], *, age: int = 0) -> str:
        from chalicelib.auth import sign_init_data

        return sign_init_data(user, BOT_TOKEN, auth_date=int(time.time()) - age)

    def app_link(self, user: dict[str, Any], *, age: int = 0) -> str:
        from local.stack import mini_app_link

        port = int(urllib.parse.urlsplit(self.base).port or 80)
        return mini_app_link(port, self.init_data(user, age=age))

    def as_user(self, user: dict[str, Any]) -> dict[str, str]:
        return {"Authorization": f"tma {self.init_data(user)}"}

    def api(self, method: str, path: str, *, user: dict[str, Any] | None = None, **kwargs: Any) -> requests.Response:
        """A call to the API; as ``user`` with initData, else as the operator with the admin token."""
        headers = self.as_user(user) if user else {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        headers.update(kwargs.pop("headers", {}))
        return requests.request(method, self.base + path, headers=headers, timeout=30, **kwargs)

    def grant(self, user_id: int, amount: int) -> None:
        answer = self.api("POST", f"/api/admin/users/{user_id}/credits", json={"amount": amount, "reason": "e2e"})
        assert answer.status_code == 200, answer.text

    def webhook(self, update: dict[str, Any]) -> requests.Response:
        return requests.post(
            self.base + "/api/telegram/webhook",
            json=update,
            headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET},
            timeout=30,
        )


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"local.stack exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(f"local.stack did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


# Package scope: the stack and Playwright's event loop end with the browser tests, before other tests run.
@pytest.fixture(scope="package")
def stack() -> Iterator[Stack]:
    dist = ROOT / "webapp" / "dist" / "index.html"
    assert dist.is_file(), "webapp/dist is missing: run `make webapp` (make test builds it first)"
    bot_server, bot_api = _start_fake_bot_api()
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "TELEGRAM_", "AIML_", "NANOGEN_", "ADMIN_"))
    }
    env.update(
        {
            "PORT": str(port),
            "NANOGEN_AWS_PORT": str(free_port()),
            "NANOGEN_TELEGRAM_JS": "local",  # never reach for telegram.org
            "NANOGEN_STAGE": "e2e",
            "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
            "TELEGRAM_API_BASE": f"http://127.0.0.1:{bot_server.server_address[1]}",
            "TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "ADMIN_API_TOKEN": ADMIN_TOKEN,
            "ADMIN_USER_IDS": str(ADMIN_ID),
            "BOT_USERNAME": "nanogen_e2e_bot",
            # One user makes 25 generations for the history test.
            "RATE_LIMIT_PER_MINUTE": "100",
            "MAX_ACTIVE_GENERATIONS": "50",
        }
    )
    OUTPUT.mkdir(parents=True, exist_ok=True)
    log = OUTPUT / "stack.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "local.stack"],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_until_up(f"http://127.0.0.1:{port}/api/health", process, log)
        yield Stack(base=f"http://127.0.0.1:{port}", bot_api=bot_api)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)  # local.stack stops its children itself
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        bot_server.shutdown()


# --- the browser --------------------------------------------------------------------


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.is_file(), f"{CHROMIUM} is missing: `make chromium` installs Debian's package"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class MiniApp:
    """A page of the Mini App and what the stand-in Telegram recorded."""

    page: Any
    requests: list[Any] = field(default_factory=list)
    responses: list[Any] = field(default_factory=list)

    def main_button(self) -> dict[str, Any]:
        state: dict[str, Any] = self.page.evaluate("window.__tg.mainButton()")
        return state

    def main_button_active_history(self) -> list[bool]:
        """Whether the main button was active, for every state the app gave it, oldest first."""
        history: list[bool] = self.page.evaluate("window.__tg.mainActiveHistory()")
        return history

    def tap_main_button(self, times: int = 1) -> None:
        """Taps in one go, as fast as a finger on a phone can double-tap."""
        self.page.evaluate(f"() => {{ for (let i = 0; i < {times}; i++) window.__tg.clickMain(); }}")

    def invoices(self) -> list[str]:
        links: list[str] = self.page.evaluate("window.__tg.invoices")
        return links

    def requested(self, path: str) -> list[Any]:
        """The page's requests to ``path`` so far (delivered while Playwright is waiting on something)."""
        return [request for request in self.requests if urllib.parse.urlsplit(request.url).path == path]

    def balance(self) -> str:
        text: str = self.page.locator(".balance").inner_text()
        return text


@pytest.fixture
def open_app(stack: Stack, browser: Any) -> Iterator[Callable[..., MiniApp]]:
    contexts: list[Any] = []

    def open_as(user: dict[str, Any], *, age: int = 0, scheme: str = "light", wait: str | None = ".balance") -> MiniApp:
        context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=1)
        contexts.append(context)
        context.add_init_script(f"window.__tgScheme = {json.dumps(scheme)};\n{STUB}")
        page = context.new_page()
        page.set_default_timeout(20000)
        app = MiniApp(page)
        page.on("request", lambda request: app.requests.append(request))
        page.on("response", lambda response: app.responses.append(response))
        page.goto(stack.app_link(user, age=age))
        if wait:
            page.wait_for_selector(wait)
        return app

    yield open_as
    for context in contexts:
        context.close()


def shot(app: MiniApp, name: str) -> Path:
    """A screenshot in test-output/e2e (not committed), once requests and pictures have settled."""
    app.page.wait_for_load_state("networkidle")
    app.page.wait_for_function("[...document.images].every((i) => i.complete)")
    path = OUTPUT / f"{name}.png"
    app.page.screenshot(path=str(path))
    return path
