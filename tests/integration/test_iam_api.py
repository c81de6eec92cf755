"""The API function's IAM role grants every DynamoDB call its routes and the webhook make (moto checks no IAM).

One pass over the Mini App's routes, the operator's routes and the bot's
main updates, with the fault layer recording the wire (nothing injected);
``tests.iam_calls`` maps the calls to IAM actions and reads ``APIHandler``'s
role from ``infra.template``.
"""

from __future__ import annotations

import pytest
from pytest_httpserver import HTTPServer

from chalicelib import catalogue, referrals
from tests.api_helpers import ALICE, bearer, call, get, post, start
from tests.faults import Faults
from tests.iam_calls import needs, not_allowed
from tests.telegram_helpers import (
    FakeTelegram,
    deliver,
    message,
    next_update_id,
    payment_update,
    pre_checkout_update,
    start_fake_telegram,
    stop_fake_telegram,
    text_update,
)

BOB = 2002
PACK = catalogue.PACKS[0]


@pytest.mark.usefixtures("aws")
def test_the_api_handlers_role_allows_every_routes_calls(
    faults: Faults, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    telegram = start_fake_telegram(httpserver, monkeypatch)
    try:
        _every_route_once(telegram, faults)
    finally:
        stop_fake_telegram()


def _every_route_once(telegram: FakeTelegram, faults: Faults) -> None:
    from chalicelib.runtime import ready

    telegram.result_of["createInvoiceLink"] = "https://t.me/$IamInvoice"
    admin = bearer()
    statuses = {
        "me": get("/api/user/me", ALICE).status,
        "settings": call("PUT", "/api/user/settings", headers=_tma(), json_body={"language": "ru"}).status,
        "models": get("/api/generation/models", ALICE).status,
    }
    started = start(ALICE, "a lighthouse", key="iam-1")
    replayed = start(ALICE, "a lighthouse", key="iam-1")
    generation_id = started.body["generation"]["id"]
    statuses |= {
        "start": started.status,
        "replay": replayed.status,
        "history": get("/api/generation", ALICE).status,
        "one": get(f"/api/generation/{generation_id}", ALICE).status,
        "cancel": post(f"/api/generation/{generation_id}/cancel", ALICE).status,
        "ledger": get("/api/user/ledger", ALICE).status,
        "upload": post("/api/uploads", ALICE, json_body={"content_type": "image/png", "size": 1000}).status,
        "packs": get("/api/packs", ALICE).status,
        "invoice": post("/api/payments/invoice", ALICE, json_body={"pack_id": PACK.id}).status,
        "promo": call(
            "POST", "/api/admin/promo-codes", headers=admin, json_body={"code": "IAM10", "credits": 5, "max_uses": 3}
        ).status,
        "promo read": call("GET", "/api/admin/promo-codes/IAM10", headers=admin).status,
        "redeem": post("/api/promo/redeem", ALICE, json_body={"code": "iam10"}).status,
    }
    # The bot: a new user from Alice's link, a payment (Alice's bonus), a prompt and an edit of it,
    # /promo, /history.
    for update in (
        text_update(f"/start ref_{referrals.code_of(ALICE['id'])}", user_id=BOB),
        payment_update("iam-charge-1", PACK.payload, PACK.stars, user_id=BOB),
        text_update("a cat on the moon", user_id=BOB),
        {"update_id": next_update_id(), "edited_message": message("a cat on the Moon", user_id=BOB)},
        text_update("/promo IAM10", user_id=BOB),
        text_update("/history", user_id=BOB),
        text_update("/balance", user_id=BOB),
        pre_checkout_update(PACK.payload, PACK.stars, user_id=BOB),
    ):
        statuses[f"webhook {update['update_id']}"] = deliver(update).status_code
    broadcast = call("POST", "/api/admin/broadcasts", headers=admin, json_body={"text": "News", "audience": "all"})
    statuses |= {
        "user": call("GET", f"/api/admin/users/{BOB}", headers=admin).status,
        "credits": call(
            "POST", f"/api/admin/users/{BOB}/credits", headers=admin, json_body={"amount": 3, "reason": "goodwill"}
        ).status,
        "ban": call("POST", f"/api/admin/users/{BOB}/ban", headers=admin).status,
        "unban": call("POST", f"/api/admin/users/{BOB}/unban", headers=admin).status,
        "stats": call("GET", "/api/admin/stats", headers=admin).status,
        "refund": call("POST", "/api/admin/payments/iam-charge-1/refund", headers=admin).status,
        "broadcast": broadcast.status,
        "broadcast read": call("GET", f"/api/admin/broadcasts/{broadcast.body['id']}", headers=admin).status,
        "broadcast cancel": call("POST", f"/api/admin/broadcasts/{broadcast.body['id']}/cancel", headers=admin).status,
    }
    needed = needs(faults.calls, ready())

    assert {name: status for name, status in statuses.items() if not 200 <= status < 300} == {}
    # The pass reached the stats' Scans, the money transactions' items, the webhook's update claims
    # and the broadcast's creation (growth).
    assert {
        ("dynamodb:Scan", "users", False),
        ("dynamodb:PutItem", "ledger", False),
        ("dynamodb:PutItem", "guards", False),
        ("dynamodb:UpdateItem", "growth", False),
    } <= needed
    assert not_allowed("APIHandler", needed) == set()


def _tma() -> dict[str, str]:
    from tests.api_helpers import tma

    return tma(ALICE)
