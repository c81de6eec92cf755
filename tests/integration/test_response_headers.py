"""The headers every REST answer carries (README "Response headers"), on every route, success or error.

Authenticated answers hold balances, ledgers and initData-derived profiles:
no browser, proxy or CDN may keep them (``Cache-Control: no-store``), and a
JSON body must never be sniffed into something a browser would run.
"""

from __future__ import annotations

import re

import pytest
from chalice.test import Client

from tests.api_helpers import ALICE, bearer, tma
from tests.conftest import TEST_WEBHOOK_SECRET

pytestmark = pytest.mark.usefixtures("aws")

EXPECTED = {
    "content-type": "application/json",
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "access-control-allow-origin": "*",
}
PATH_VALUES = {
    "generation_id": "0" * 26,
    "user_id": str(ALICE["id"]),
    "charge_id": "charge-1",
    "broadcast_id": "0" * 26,
    "code": "SPRING-25",
}


def _routes() -> list[tuple[str, str]]:
    from app import app

    return sorted((path, method) for path, methods in app.routes.items() for method in methods)


def _filled(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda match: PATH_VALUES[match.group(1)], path)


CALLERS: dict[str, dict[str, str]] = {
    "anonymous": {},
    "user": {},  # filled per call: initData must be fresh
    "admin": bearer(),
    "webhook": {"X-Telegram-Bot-Api-Secret-Token": TEST_WEBHOOK_SECRET},
    "forged": {"Authorization": "tma user=%7B%7D&auth_date=1&hash=" + "0" * 64},
}


@pytest.mark.parametrize(("path", "method"), _routes())
def test_every_answer_carries_the_documented_headers(path: str, method: str) -> None:
    from app import app

    body = b'{"update_id": 1}' if path == "/api/telegram/webhook" else b"{}"
    for caller, credentials in CALLERS.items():
        headers = {"Content-Type": "application/json", **credentials, **(tma(ALICE) if caller == "user" else {})}
        with Client(app) as client:
            response = client.http.request(method, _filled(path), headers=headers, body=body)
        received = {key.lower(): value for key, value in response.headers.items()}
        for name, value in EXPECTED.items():
            assert received.get(name, "").split(";")[0] == value, (method, path, caller, response.status_code, name)


def test_a_users_own_profile_is_never_cached() -> None:
    from app import app

    with Client(app) as client:
        response = client.http.get("/api/user/me", headers=tma(ALICE))

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
