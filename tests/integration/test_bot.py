"""The bot's commands and prompts, delivered through the webhook as Telegram would (CONTRACT §7)."""

from __future__ import annotations

import time

import pytest

from chalicelib import catalogue, i18n, money, queries, records
from chalicelib.model import FailureReason, Profile
from chalicelib.runtime import ready
from chalicelib.tables import User
from tests.api_helpers import configure
from tests.conftest import TEST_BOT_TOKEN
from tests.fakes.telegram import FakeTelegram
from tests.probes import balance, charges_of, generations_of, queued_jobs
from tests.telegram_helpers import (
    ALICE_ID,
    BOB_ID,
    handled,
    next_update_id,
    text_update,
)

MINI_APP_URL = "https://app.example.com/nanogen"


# --- /start ------------------------------------------------------------------


def test_start_registers_once_greets_with_the_balance_and_offers_the_mini_app(
    fake_telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    handled(text_update("/start ref_42"))

    [greeting] = fake_telegram.sent("sendMessage")
    assert greeting["chat_id"] == ALICE_ID
    assert "Alice" in greeting["text"] and "Your balance: 10 credits." in greeting["text"]
    assert "reply_markup" not in greeting  # no MINI_APP_URL: no button
    stored = User.get(ALICE_ID)
    assert (int(stored.credits), stored.start_payload, stored.first_name) == (10, "ref_42", "Alice")

    configure(monkeypatch, MINI_APP_URL=MINI_APP_URL)
    handled(text_update("/start@NanoGenBot another_payload"))

    again = fake_telegram.sent("sendMessage")[1]
    assert "Welcome back" in again["text"] and "Your balance: 10 credits." in again["text"]
    assert again["reply_markup"] == {"inline_keyboard": [[{"text": "Open NanoGen", "web_app": {"url": MINI_APP_URL}}]]}
    assert [int(entry.delta) for entry in queries.latest_ledger(ALICE_ID)] == [10]  # welcome credits once
    assert all(call.token == TEST_BOT_TOKEN for call in fake_telegram.calls)

    # A payload Telegram's deep links cannot carry is not stored.
    handled(text_update("/START <script>", user_id=BOB_ID))
    handled(text_update("/start " + "x" * 65, user_id=BOB_ID + 1))
    assert User.get(BOB_ID).start_payload is None and User.get(BOB_ID + 1).start_payload is None


# --- /balance, /help, unknown commands ----------------------------------------------


def test_balance_help_and_unknown_commands_say_what_they_should(fake_telegram: FakeTelegram) -> None:
    handled(text_update("/balance"))  # registers a user who never sent /start
    money.change_credits(ALICE_ID, -3, note="test")
    handled(text_update("/balance@NanoGenBot"))
    handled(text_update("/help"))
    unknown = text_update("/draw a cat")
    handled(unknown)

    first, second, help_text, hint = fake_telegram.sent("sendMessage")
    assert "Your balance: 10 credits." in first["text"]
    assert "Your balance: 7 credits." in second["text"]
    for model in catalogue.models(ready()):
        assert f"{model.name}: {model.cost} credit" in help_text["text"]
    for command in ("/start", "/balance", "/buy", "/help"):
        assert command in help_text["text"]
    assert "/help" in hint["text"] and "don't know that command" in hint["text"]
    assert hint["reply_parameters"]["message_id"] == unknown["message"]["message_id"]
    assert queued_jobs() == [] and charges_of(ALICE_ID) == []


# --- /buy ----------------------------------------------------------------------


def test_buy_sends_one_stars_invoice_per_pack_but_none_to_a_banned_user(fake_telegram: FakeTelegram) -> None:
    handled(text_update("/buy"))

    invoices = fake_telegram.sent("sendInvoice")
    assert [invoice["payload"] for invoice in invoices] == [pack.payload for pack in catalogue.PACKS]
    for invoice, pack in zip(invoices, catalogue.PACKS, strict=True):
        assert invoice["chat_id"] == ALICE_ID
        assert (invoice["currency"], invoice["provider_token"]) == ("XTR", "")
        assert invoice["prices"] == [{"label": pack.title, "amount": pack.stars}]
        assert invoice["title"] == pack.title

    money.register(Profile(user_id=BOB_ID, first_name="Bob"), ready())
    records.set_banned(BOB_ID, True)
    handled(text_update("/buy", user_id=BOB_ID))

    assert len(fake_telegram.sent("sendInvoice")) == len(catalogue.PACKS)
    assert fake_telegram.texts() == [i18n.t("en", "account-banned")]


# --- prompts -------------------------------------------------------------------------


def test_a_prompt_is_charged_queued_and_acknowledged(fake_telegram: FakeTelegram) -> None:
    update = text_update("  a lighthouse at dawn, oil painting  ")

    handled(update)

    [generation] = generations_of(ALICE_ID)
    message = update["message"]
    assert generation.status == "pending"
    assert (generation.prompt, generation.model, generation.aspect_ratio) == (
        "a lighthouse at dawn, oil painting",
        catalogue.DEFAULT_MODEL_ID,
        "1:1",
    )
    assert (generation.source, int(generation.chat_id)) == ("bot", ALICE_ID)
    assert generation.idempotency_key == f"tg:{ALICE_ID}:{message['message_id']}"
    assert balance(ALICE_ID) == 9
    assert [(job.user_id, job.generation_id) for job in queued_jobs()] == [(ALICE_ID, generation.generation_id)]
    [reply] = fake_telegram.sent("sendMessage")
    assert "Queued" in reply["text"] and "Cost: 1 credit." in reply["text"] and "Balance: 9 credits." in reply["text"]
    assert reply["reply_parameters"]["message_id"] == message["message_id"]
    assert fake_telegram.methods() == ["sendMessage"]  # no image provider, no other call inline


def test_a_prompt_delivered_three_times_under_different_update_ids_is_charged_once(
    fake_telegram: FakeTelegram,
) -> None:
    first = text_update("a red fox in the snow")

    for update_id in (first["update_id"], next_update_id(), next_update_id()):
        handled({**first, "update_id": update_id})

    [generation] = generations_of(ALICE_ID)
    assert len(charges_of(ALICE_ID)) == 1
    assert balance(ALICE_ID) == 9
    assert [job.generation_id for job in queued_jobs()] == [generation.generation_id]
    replies = fake_telegram.texts()
    assert len(replies) == 3 and "Queued" in replies[0]
    assert all("charged once" in reply for reply in replies[1:])


def test_a_prompt_re_sent_after_its_generation_failed_is_not_charged_again(fake_telegram: FakeTelegram) -> None:
    first = text_update("a red fox in the snow")
    handled(first)
    [generation] = generations_of(ALICE_ID)
    assert money.fail_generation(generation, error=FailureReason.PROVIDER_REJECTED)  # refunded: 10 again

    handled({**first, "update_id": next_update_id()})  # Telegram re-sends the same message

    assert [g.generation_id for g in generations_of(ALICE_ID)] == [generation.generation_id]
    assert len(charges_of(ALICE_ID)) == 1 and balance(ALICE_ID) == 10
    assert "already failed; send the prompt again" in fake_telegram.texts()[-1]


def test_prompts_are_refused_with_the_apis_reasons_and_nothing_is_charged(
    fake_telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, MAX_ACTIVE_GENERATIONS="1", MODEL_COSTS=f"{catalogue.DEFAULT_MODEL_ID}=4")
    settings = ready()
    money.register(Profile(user_id=BOB_ID, first_name="Bob"), settings)
    money.change_credits(BOB_ID, -7, note="test")  # 3 left, a picture costs 4

    handled(text_update("x" * 2001))
    handled(text_update("a cat", user_id=BOB_ID))
    handled(text_update("a dog"))  # accepted: Alice's one active generation
    handled(text_update("a second dog"))
    records.set_banned(ALICE_ID, True)
    handled(text_update("a third dog"))

    too_long, poor, queued, too_many, banned = fake_telegram.texts()
    assert "at most 2,000 characters, yours has 2,001" in too_long
    assert "costs 4 credits" in poor and "Your balance: 3 credits." in poor and "/buy" in poor
    assert "Queued" in queued
    assert "At most 1 picture can be drawn at once" in too_many
    assert banned == i18n.t("en", "account-banned")
    assert (balance(ALICE_ID), balance(BOB_ID)) == (6, 3)
    assert len(generations_of(ALICE_ID)) == 1 and generations_of(BOB_ID) == []
    assert len(queued_jobs()) == 1


def test_a_prompt_over_the_per_minute_limit_is_refused(
    fake_telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, RATE_LIMIT_PER_MINUTE="1", MAX_ACTIVE_GENERATIONS="5")
    # The money clock pinned 45 s into a minute: both prompts in one window, even if the wall clock's
    # minute rolls over between them (the second prompt was then queued as well).
    minute = (int(time.time()) // 60) * 60
    monkeypatch.setattr(money, "_now", lambda now: minute + 45.0 if now is None else now)

    handled(text_update("a cat"))
    handled(text_update("another cat"))

    queued, limited = fake_telegram.texts()
    assert "Queued" in queued
    assert "Too many pictures this minute. Try again in 15 seconds" in limited
    assert balance(ALICE_ID) == 9 and len(queued_jobs()) == 1
