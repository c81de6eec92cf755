"""`make run`: the whole NanoGen stack on loopback, in the foreground.

1. a local AWS endpoint (moto, one request at a time) with every table,
   queue and bucket created from ``infra.resources``;
2. the REST API and webhook: ``chalice local`` over the real app object, on
   an internal port;
3. the worker (``local.worker``): the SQS-triggered handlers and the sweeper;
4. the front door on PORT (``local.webapp_server``): the built Mini App at
   ``/app/`` and everything else forwarded to the API, one origin as in AWS.

Ctrl-C or SIGTERM stops every child. Without TELEGRAM_BOT_TOKEN the bot
uses the public development token and only logs what it would send;
without AIML_API_KEY the offline provider draws the pictures.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from types import FrameType

from local import aws_server

ROOT = Path(__file__).resolve().parent.parent
DEV_USER = {"id": 100000001, "first_name": "Dev", "last_name": "User", "username": "nanogen_dev", "language_code": "en"}
# The webhook secret `make run` uses when none is configured: public, like the dev bot token.
DEV_WEBHOOK_SECRET = "local-webhook-secret"  # noqa: S105 - public by design
# Local queue timing: a failed job is retried after seconds, not minutes.
LOCAL_VISIBILITY_TIMEOUT = 20
LOCAL_MAX_RECEIVE_COUNT = 3


class Stack:
    def __init__(self) -> None:
        self.children: list[tuple[str, subprocess.Popen[str]]] = []
        self.stopping = False

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            text=True,
            start_new_session=True,  # so stopping can signal the child's whole group
        )
        self.children.append((name, process))
        return process

    def stop(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        for _, process in reversed(self.children):
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + 8
        for _, process in self.children:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait()


def _signal_group(process: subprocess.Popen[str], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def _base_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if environ is None else environ)
    env.setdefault("AWS_ACCESS_KEY_ID", "local")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    env.setdefault("AWS_REGION", env["AWS_DEFAULT_REGION"])
    env.setdefault("NANOGEN_STAGE", "local")
    if not env.get("TELEGRAM_BOT_TOKEN", "").strip():
        # Public development defaults, only while the bot itself is the public dev one (dry run):
        # with a real token, a public webhook secret would let anyone post updates, and the dev
        # user's id may be a real Telegram account's.
        env.setdefault("TELEGRAM_WEBHOOK_SECRET", DEV_WEBHOOK_SECRET)
        # The development user also sees the Mini App's operator pages.
        env.setdefault("ADMIN_USER_IDS", str(DEV_USER["id"]))
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("AWS_PROFILE", None)
    return env


def _wait_for_health(url: str, process: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the API server exited during start-up")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own loopback URL
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def mini_app_link(port: int, init_data: str) -> str:
    """Opens the Mini App in an ordinary browser: Telegram passes initData in the URL fragment."""
    fragment = urllib.parse.urlencode(
        {"tgWebAppData": init_data, "tgWebAppVersion": "8.0", "tgWebAppPlatform": "web"},
        quote_via=urllib.parse.quote,
    )
    return f"http://127.0.0.1:{port}/app/#{fragment}"


def _banner(port: int, api_port: int, aws_endpoint: str, env: dict[str, str]) -> str:
    from chalicelib.auth import sign_init_data
    from chalicelib.config import load_settings

    settings = load_settings(env)
    api = f"http://127.0.0.1:{port}"
    # Shown only while they are the public development defaults: a configured secret, or initData
    # signed with a real bot token (a valid login), must not end up in a terminal's scrollback.
    webhook_header = "X-Telegram-Bot-Api-Secret-Token: " + DEV_WEBHOOK_SECRET
    if settings.telegram_webhook_secret != DEV_WEBHOOK_SECRET:
        webhook_header = "TELEGRAM_WEBHOOK_SECRET as configured (not shown)"
    if settings.telegram_dry_run:
        init_data = sign_init_data(DEV_USER, settings.telegram_bot_token, auth_date=int(time.time()))
        app_link = mini_app_link(port, init_data)
    else:
        init_data = "<initData: TELEGRAM_BOT_TOKEN is set, so none is signed here; unset it for a dev one>"
        app_link = "(not shown: with TELEGRAM_BOT_TOKEN set, a signed link would be a valid login)"
    header = f"Authorization: tma {init_data}"
    telegram = settings.telegram_api_base
    if settings.telegram_dry_run:
        telegram = "dry run: Bot API calls are logged, not sent"
    provider = "AIML API" if settings.aiml_api_key else "offline provider (draws a preview PNG, no AI called)"
    body = json.dumps({"prompt": "a lighthouse on a cliff at sunset, oil painting", "aspect_ratio": "16:9"})
    valid = f"valid for {settings.init_data_max_age_seconds} s"
    return f"""
NanoGen is running (Ctrl-C stops everything)
  Mini App             {api}/app/   (built from webapp/; the link below signs you in)
  REST API + webhook   {api}   (health: {api}/api/health; chalice local itself on :{api_port})
  local AWS (moto)     {aws_endpoint}   stage '{settings.stage}'
  worker + sweeper     generation, dead-letter and broadcast queues, sweep every few seconds
  Telegram             {telegram}
  images               {provider}
  webhook secret       {webhook_header}

Open the Mini App in a browser as the development user {DEV_USER["id"]} ({valid}):

  {app_link}

Or try the API with curl:

  AUTH={shlex.quote(header)}
  curl -s {api}/api/user/me -H "$AUTH"
  curl -s -X POST {api}/api/generation -H "$AUTH" -H 'Content-Type: application/json' \\
       -H 'Idempotency-Key: first-try' -d {shlex.quote(body)}
  # then, with the "id" it returned, until "status" is "completed" (the picture is in "result_urls"):
  curl -s {api}/api/generation/<id> -H "$AUTH"
"""


def main() -> int:
    env = _base_env()
    os.environ.update(env)
    port = int(env.get("PORT", "8000"))
    aws_port = env.get("NANOGEN_AWS_PORT", "4566")
    stack = Stack()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        print(f"\nstopping NanoGen (signal {signum})...", flush=True)
        stack.stop()
        sys.exit(0)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        server, aws_endpoint = aws_server.start(int(aws_port), env=env, start_new_session=True)
        stack.children.append(("local AWS", server))
        env["AWS_ENDPOINT_URL"] = os.environ["AWS_ENDPOINT_URL"] = aws_endpoint

        from chalicelib.runtime import ready
        from infra.resources import create_locally

        create_locally(ready(), visibility_timeout=LOCAL_VISIBILITY_TIMEOUT, max_receive_count=LOCAL_MAX_RECEIVE_COUNT)
        api_port = int(env.get("NANOGEN_API_PORT") or _free_port())
        # `chalice local`, with unknown routes answered without echoing request headers (local/api_server.py).
        api_argv = [sys.executable, "-m", "local.api_server", "--no-autoreload", "--stage", "local"]
        api = stack.start("API", [*api_argv, "--host", "127.0.0.1", "--port", str(api_port)], env)
        stack.start("worker", [sys.executable, "-m", "local.worker"], env)
        front_door = [sys.executable, "-m", "local.webapp_server", "--port", str(port), "--api-port", str(api_port)]
        front_door += ["--telegram-js", env.get("NANOGEN_TELEGRAM_JS", "auto")]
        front = stack.start("Mini App server", front_door, env)
        _wait_for_health(f"http://127.0.0.1:{api_port}/api/health", api)
        _wait_for_health(f"http://127.0.0.1:{port}/api/health", front)
        print(_banner(port, api_port, aws_endpoint, env), flush=True)
        parent = os.getppid()
        while True:
            if os.getppid() != parent:  # make (or the shell) was killed: do not outlive it
                raise RuntimeError("the parent process went away")
            for name, process in stack.children:
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with code {process.returncode}")
            time.sleep(0.5)
    except RuntimeError as error:
        print(f"NanoGen stopped: {error}", file=sys.stderr, flush=True)
        stack.stop()
        return 1
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
