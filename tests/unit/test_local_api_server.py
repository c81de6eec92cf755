"""`make run`'s API server never echoes a request header for an unknown route (Chalice's own local gateway does)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from chalice.config import Config
from chalice.local import LocalGateway

from local.api_server import NoEchoGateway, NoSuchRoute
from tests.conftest import ROOT

INIT_DATA = "user=%7B%22id%22%3A1%7D&auth_date=1700000000&hash=" + "ab" * 32


def _gateway(cls: type[LocalGateway]) -> LocalGateway:
    from app import app

    return cls(app, Config.create(chalice_app=app, app_name="nanogen", chalice_stage="local"))


def test_chalice_local_itself_echoes_the_authorization_header() -> None:
    """The behaviour worked around: if Chalice ever stops echoing, local/api_server.py can go."""
    with pytest.raises(Exception) as raised:
        _gateway(LocalGateway).handle_request("GET", "/api/nope", {"Authorization": f"tma {INIT_DATA}"}, None)

    assert INIT_DATA.encode() in getattr(raised.value, "body", b"")


@pytest.mark.parametrize("path", ["/api/nope", "/", "/api/user/me/extra", "/api/admin/users/1/credits/x"])
def test_an_unknown_route_is_a_404_in_the_contract_shape_quoting_nothing(path: str) -> None:
    headers = {"Authorization": f"tma {INIT_DATA}", "X-Telegram-Bot-Api-Secret-Token": "secret-of-the-webhook"}

    with pytest.raises(NoSuchRoute) as raised:
        _gateway(NoEchoGateway).handle_request("POST", path, headers, b"{}")

    body = raised.value.body or b""
    assert raised.value.CODE == 404
    assert json.loads(body) == {"error": {"code": "not_found", "message": "No such route."}}
    assert b"tma" not in body and b"secret" not in body


def test_known_routes_still_reach_the_app() -> None:
    response = _gateway(NoEchoGateway).handle_request("GET", "/api/health", {}, None)

    assert response["statusCode"] == 200 and json.loads(response["body"]) == {"status": "ok"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    """``python -m local.api_server`` as `make run` starts it."""
    port = _free_port()
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "local.api_server", "--no-autoreload", "--stage", "local"]
    process = subprocess.Popen(
        [*argv, "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/health", timeout=2):  # noqa: S310 - loopback
                    break
            except OSError:
                assert process.poll() is None, "local.api_server exited"
                assert time.monotonic() < deadline, "local.api_server did not start"
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_served_api_answers_an_unknown_route_without_the_header(served: str) -> None:
    request = urllib.request.Request(f"{served}/api/nope", headers={"Authorization": f"tma {INIT_DATA}"})  # noqa: S310

    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=10)  # noqa: S310 - loopback

    assert raised.value.code == 404
    body = raised.value.read()
    assert json.loads(body)["error"]["code"] == "not_found"
    assert INIT_DATA.encode() not in body and b"tma" not in body
