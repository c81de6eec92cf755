"""Buying credits from the Mini App: packs, ``createInvoiceLink``, and the one crediting path (CONTRACT §5, §7)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_httpserver import HTTPServer

from chalicelib import catalogue, records
from chalicelib.usecases.purchases import invoice_texts
from tests.api_helpers import ALICE, BOB, assert_error, call, get, post, register, tma
from tests.probes import balance, snapshot
from tests.telegram_helpers import (
    FakeTelegram,
    deliver,
    payment_update,
    pre_checkout_update,
    start_fake_telegram,
    stop_fake_telegram,
)

PACK = catalogue.PACKS[1]


@pytest.fixture
def fake_telegram(aws: None, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTelegram]:
    fake = start_fake_telegram(httpserver, monkeypatch)
    fake.result_of["createInvoiceLink"] = "https://t.me/$AbCdEfGh"
    yield fake
    stop_fake_telegram()


@pytest.mark.usefixtures("aws")
def test_packs_are_listed_without_authentication() -> None:
    reply = get("/api/packs")
    assert reply.status == 200
    assert reply.body == {
        "packs": [{"id": p.id, "credits": p.credits, "stars": p.stars, "title": p.title} for p in catalogue.PACKS]
    }


def test_an_invoice_link_names_the_pack_and_the_buyer_in_stars(fake_telegram: FakeTelegram) -> None:
    reply = post("/api/payments/invoice", ALICE, json_body={"pack_id": PACK.id})
    assert (reply.status, reply.body) == (200, {"invoice_link": "https://t.me/$AbCdEfGh"})
    [sent] = fake_telegram.sent("createInvoiceLink")
    title, description = invoice_texts(PACK, "en")  # Alice's Telegram language; /buy writes the same
    assert sent == {
        "title": title,
        "description": description,
        "payload": f"nanogen:{PACK.id}:{ALICE['id']}",
        "provider_token": "",
        "currency": "XTR",
        "prices": [{"label": title, "amount": PACK.stars}],
    }
    assert len(sent["payload"].encode()) <= 128


def test_an_invoice_link_speaks_the_buyers_language(fake_telegram: FakeTelegram) -> None:
    ivan = {"id": 3003, "first_name": "Иван", "language_code": "ru"}
    assert post("/api/payments/invoice", ivan, json_body={"pack_id": PACK.id}).status == 200
    [sent] = fake_telegram.sent("createInvoiceLink")
    assert (sent["title"], sent["description"]) == invoice_texts(PACK, "ru")
    assert "кредит" in sent["title"] and sent["prices"] == [{"label": sent["title"], "amount": PACK.stars}]
    # A language chosen in the bot wins over Telegram's.
    assert call("PUT", "/api/user/settings", headers=tma(ivan), json_body={"language": "en"}).status == 200
    assert post("/api/payments/invoice", ivan, json_body={"pack_id": PACK.id}).status == 200
    assert (fake_telegram.sent("createInvoiceLink")[1]["title"]) == invoice_texts(PACK, "en")[0]


def test_a_mini_app_payment_is_credited_once_by_the_same_path_as_buy(fake_telegram: FakeTelegram) -> None:
    assert post("/api/payments/invoice", ALICE, json_body={"pack_id": PACK.id}).status == 200
    payload = fake_telegram.sent("createInvoiceLink")[0]["payload"]
    assert deliver(pre_checkout_update(payload, PACK.stars, user_id=ALICE["id"])).status_code == 200
    assert fake_telegram.sent("answerPreCheckoutQuery")[-1]["ok"] is True
    update = payment_update("mini-app-charge", payload, PACK.stars, user_id=ALICE["id"])
    for _ in range(3):
        assert deliver(update).status_code == 200
    assert balance(ALICE["id"]) == 10 + PACK.credits
    # /buy's payload and the Mini App's are one crediting path: the same charge id is never credited twice.
    assert deliver(payment_update("mini-app-charge", PACK.payload, PACK.stars, user_id=ALICE["id"])).status_code == 200
    assert balance(ALICE["id"]) == 10 + PACK.credits


def test_an_invoice_made_for_someone_else_is_refused_at_checkout(fake_telegram: FakeTelegram) -> None:
    payload = PACK.payload_for(ALICE["id"])
    deliver(pre_checkout_update(payload, PACK.stars, user_id=BOB["id"], query_id="pcq-bob"))
    answer = fake_telegram.sent("answerPreCheckoutQuery")[-1]
    assert answer["ok"] is False and "another Telegram account" in answer["error_message"]
    # Stars that arrive anyway are never ignored: the payer is credited.
    deliver(payment_update("odd-charge", payload, PACK.stars, user_id=BOB["id"]))
    assert balance(BOB["id"]) == 10 + PACK.credits


def test_invoice_refusals_change_nothing(fake_telegram: FakeTelegram) -> None:
    register(BOB)
    records.set_banned(BOB["id"], True)
    before = snapshot()
    assert_error(post("/api/payments/invoice", BOB, json_body={"pack_id": PACK.id}), 403, "user_banned")
    assert_error(post("/api/payments/invoice", ALICE, json_body={"pack_id": "pack_1000000"}), 400, "invalid_request")
    assert_error(post("/api/payments/invoice", ALICE, json_body={"pack_id": 10}), 400, "invalid_request")
    assert_error(post("/api/payments/invoice", ALICE, json_body={}), 400, "invalid_request")
    assert_error(call("POST", "/api/payments/invoice", json_body={"pack_id": PACK.id}), 401, "unauthorized")
    assert snapshot() == before
    assert fake_telegram.sent("createInvoiceLink") == []


def test_payloads_parse_to_pack_and_buyer_and_nothing_else() -> None:
    assert catalogue.parse_payload(PACK.payload) == (PACK, None)
    assert catalogue.parse_payload(PACK.payload_for(1001)) == (PACK, 1001)
    for payload in ("nanogen:nope:1", f"{PACK.payload}:", f"{PACK.payload}:-1", f"{PACK.payload}:1:2", "x"):
        assert catalogue.parse_payload(payload) == (None, None)
