"""`make run`'s front door: the built Mini App at /app/ and the API beside it, on one origin.

    python -m local.webapp_server --port 8000 --api-port 8123 [--dist webapp/dist]

* ``/app/`` serves ``webapp/dist`` (what ``npm run build`` wrote);
* ``/app/telegram-web-app.js`` is a local stand-in for Telegram's script
  (``local/telegram-web-app.js``). ``index.html`` loads Telegram's official
  script; when telegram.org cannot be reached (or NANOGEN_TELEGRAM_JS=local)
  the page is served pointing at the stand-in instead, so the app opens with
  no internet;
* everything else is forwarded to ``chalice local`` on ``--api-port``.

Same origin as the API, as in AWS (CloudFront routes ``/api/*``), so the
Mini App needs no CORS. Local only: never deployed.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import mimetypes
import os
import signal
import sys
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "webapp" / "dist"
TELEGRAM_JS_URL = "https://telegram.org/js/telegram-web-app.js"
STAND_IN = Path(__file__).resolve().with_name("telegram-web-app.js")
STAND_IN_PATH = "/app/telegram-web-app.js"
# Hop-by-hop headers (RFC 9110 §7.6.1) are the proxy's own business, not forwarded.
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}


def telegram_reachable(timeout: float = 3.0) -> bool:
    request = urllib.request.Request(TELEGRAM_JS_URL, method="HEAD")  # noqa: S310 - a fixed https URL
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return bool(response.status == 200)
    except OSError:
        return False


def use_stand_in(mode: str) -> bool:
    """``local`` and ``remote`` force a choice; ``auto`` uses the stand-in only without internet."""
    if mode == "local":
        return True
    if mode == "remote":
        return False
    return not telegram_reachable()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "NanoGenLocal"
    # Set by make_server.
    dist: Path = DIST
    api_port: int = 0
    stand_in: bool = False

    def log_message(self, format: str, *args: object) -> None:
        if os.environ.get("NANOGEN_WEBAPP_LOG"):
            super().log_message(format, *args)

    # --- the app -------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _serve_app(self, path: str) -> None:
        if path == "/app":
            self._send(301, b"", "text/plain", {"Location": "/app/"})
            return
        if path == STAND_IN_PATH:
            self._send(200, STAND_IN.read_bytes(), "text/javascript; charset=utf-8", {"Cache-Control": "no-cache"})
            return
        relative = path.removeprefix("/app/") or "index.html"
        target = (self.dist / relative).resolve()
        if not target.is_relative_to(self.dist.resolve()) or not target.is_file():
            if not (self.dist / "index.html").is_file():
                message = b"The Mini App is not built: run `make webapp` (npm ci && npm run build in webapp/).\n"
                self._send(503, message, "text/plain; charset=utf-8")
            else:
                self._send(404, b"Not found\n", "text/plain; charset=utf-8")
            return
        body = target.read_bytes()
        if target.name == "index.html":
            if self.stand_in:
                body = body.replace(TELEGRAM_JS_URL.encode(), STAND_IN_PATH.encode())
            cache = "no-cache"
        else:
            cache = "public, max-age=31536000, immutable"  # Vite names assets by content hash
        content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type.endswith("javascript"):
            content_type += "; charset=utf-8"
        self._send(200, body, content_type, {"Cache-Control": cache, "X-Content-Type-Options": "nosniff"})

    # --- the API -------------------------------------------------------------

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {name: value for name, value in self.headers.items() if name.lower() not in HOP_BY_HOP}
        connection = http.client.HTTPConnection("127.0.0.1", self.api_port, timeout=60)
        try:
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
        except OSError as error:
            message = f'{{"error": {{"code": "internal_error", "message": "local API unreachable: {error}"}}}}'
            self._send(502, message.encode(), "application/json")
            return
        finally:
            connection.close()
        self.send_response(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP and name.lower() != "server" and name.lower() != "date":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _route(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/":
            self._send(302, b"", "text/plain", {"Location": "/app/"})
        elif (path == "/app" or path.startswith("/app/")) and self.command in ("GET", "HEAD"):
            self._serve_app(path)
        else:
            self._forward()

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _route


def make_server(port: int, api_port: int, dist: Path = DIST, *, stand_in: bool = False) -> ThreadingHTTPServer:
    handler = type("BoundHandler", (Handler,), {"dist": dist, "api_port": api_port, "stand_in": stand_in})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-port", type=int, required=True)
    parser.add_argument("--dist", type=Path, default=DIST)
    parser.add_argument("--telegram-js", choices=("auto", "local", "remote"), default="auto")
    args = parser.parse_args(argv)
    server = make_server(args.port, args.api_port, args.dist, stand_in=use_stand_in(args.telegram_js))

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
