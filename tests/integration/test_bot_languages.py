"""The bot in the user's language, its settings and its other commands (CONTRACT §7, §8), through the webhook."""
# ruff: noqa: RUF001 - Russian texts are Cyrillic on purpose

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib import bot, buttons, catalogue, money, records
from chalicelib.model import Profile
from chalicelib.runtime import ready
from chalicelib.tables import User
from chalicelib.telegram import CALLBACK_DATA_BYTES
from tests.api_helpers import configure
from tests.fakes.telegram import FakeTelegram
from tests.probes import balance, charges_of, generations_of
from tests.telegram_helpers import (
    ALICE_ID,
    BOB_ID,
    callback_update,
    handled,
    payment_update,
    text_update,
)


def set_balance(user_id: int, credits: int) -> None:
    money.change_credits(user_id, credits - (balance(user_id) or 0), note="test")


def keyboards(fake_telegram: FakeTelegram) -> list[dict[str, Any]]:
    """Every inline keyboard the bot sent or edited in."""
    found = []
    for call in fake_telegram.calls:
        markup = call.fields.get("reply_markup")
        if isinstance(markup, str):
            markup = json.loads(markup)
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            found.append(markup)
    return found


def button_data(markup: dict[str, Any]) -> dict[str, str]:
    """Label -> callback_data of a keyboard's buttons."""
    return {b["text"]: b["callback_data"] for row in markup["inline_keyboard"] for b in row if "callback_data" in b}


def answers(fake_telegram: FakeTelegram) -> list[str | None]:
    return [payload.get("text") for payload in fake_telegram.sent("answerCallbackQuery")]


# --- Russian and English ----------------------------------------------------------


def test_a_russian_users_start_balance_help_and_invoices_are_in_russian(fake_telegram: FakeTelegram) -> None:
    handled(text_update("/start", language_code="ru-RU"))
    [greeting] = fake_telegram.texts()
    assert greeting.startswith("Добро пожаловать в NanoGen, Alice! Для начала дарим вам 10 кредитов.")
    assert "Ваш баланс: 10 кредитов." in greeting

    plurals = ((1, "1 кредит"), (2, "2 кредита"), (5, "5 кредитов"), (11, "11 кредитов"), (21, "21 кредит"))
    for credits, phrase in plurals:
        set_balance(ALICE_ID, credits)
        handled(text_update("/balance", language_code="ru"))
        assert fake_telegram.texts()[-1].startswith(f"Ваш баланс: {phrase}."), credits

    handled(text_update("/help", language_code="ru"))
    help_text = fake_telegram.texts()[-1]
    assert help_text.startswith("NanoGen рисует картинки с помощью ИИ.")
    assert "Команды:" in help_text and "/settings — Модель и формат картинки" in help_text
    assert "• Nano Banana Pro: 4 кредита за картинку" in help_text
    assert "Чтобы изменить картинку, пришлите её с подписью, что поменять" in help_text  # editing is explained

    handled(text_update("/buy", language_code="ru"))
    invoices = fake_telegram.sent("sendInvoice")
    assert [invoice["title"] for invoice in invoices] == ["10 кредитов", "50 кредитов", "200 кредитов"]
    assert invoices[0]["description"] == "10 кредитов на картинки с ИИ в NanoGen."
    assert "на 20% дешевле, чем в пакете на 10" in invoices[1]["description"]
    for invoice in invoices:
        assert invoice["prices"][0]["label"] == invoice["title"] and len(invoice["title"]) <= 32
        assert len(invoice["description"]) <= 255


def test_an_english_users_texts_are_in_english(fake_telegram: FakeTelegram) -> None:
    handled(text_update("/start", language_code="en-GB"))
    assert fake_telegram.texts()[-1].startswith("Welcome to NanoGen, Alice! You got 10 credits to start.")
    for credits, phrase in ((1, "1 credit"), (2, "2 credits"), (21, "21 credits")):
        set_balance(ALICE_ID, credits)
        handled(text_update("/balance"))
        assert fake_telegram.texts()[-1].startswith(f"Your balance: {phrase}.")
    handled(text_update("/help"))
    assert "/paysupport: Help with a payment" in fake_telegram.texts()[-1]
    handled(text_update("/buy"))
    assert [invoice["title"] for invoice in fake_telegram.sent("sendInvoice")] == [
        "10 credits",
        "50 credits",
        "200 credits",
    ]


def test_a_missing_or_unsupported_language_code_gives_the_default_language(
    fake_telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    handled(text_update("/balance", language_code=None))
    handled(text_update("/balance", user_id=BOB_ID, language_code="de"))
    assert [text.split(".")[0] for text in fake_telegram.texts()] == ["Your balance: 10 credits"] * 2

    configure(monkeypatch, DEFAULT_LANGUAGE="ru")
    handled(text_update("/balance", language_code=None))
    handled(text_update("/balance", user_id=BOB_ID, language_code="de"))
    handled(text_update("/balance", user_id=BOB_ID + 1, language_code="en"))  # a supported one still wins
    assert [text.split(".")[0] for text in fake_telegram.texts()[2:]] == [
        "Ваш баланс: 10 кредитов",
        "Ваш баланс: 10 кредитов",
        "Your balance: 10 credits",
    ]


def test_language_changes_the_next_reply_and_edits_its_own_message(fake_telegram: FakeTelegram) -> None:
    handled(text_update("/language"))
    [choose] = fake_telegram.sent("sendMessage")
    assert choose["text"] == "Choose your language:"
    options = button_data(choose["reply_markup"])
    assert options == {"Русский": "lang:ru", "✓ English": "lang:en"}

    handled(callback_update("lang:ru", message_id=77))

    assert answers(fake_telegram) == ["Язык: русский."]
    [edit] = fake_telegram.sent("editMessageText")
    assert (edit["chat_id"], edit["message_id"], edit["text"]) == (ALICE_ID, 77, "Язык: русский.")
    assert User.get(ALICE_ID).language == "ru"
    assert len(fake_telegram.sent("sendMessage")) == 1  # the tap sent no new message

    handled(text_update("/balance"))  # Telegram still says "en": the choice wins
    assert fake_telegram.texts()[-1].startswith("Ваш баланс: 10 кредитов.")


# --- /settings -------------------------------------------------------------------------


def test_settings_taps_save_the_aspect_ratio_and_model_used_by_the_next_prompt(fake_telegram: FakeTelegram) -> None:
    handled(text_update("/settings"))
    [menu] = fake_telegram.sent("sendMessage")
    assert "Model: Nano Banana" in menu["text"] and "Aspect ratio: 1:1" in menu["text"]
    assert "One picture costs 1 credit." in menu["text"]

    handled(callback_update(button_data(menu["reply_markup"])["Aspect ratio: 1:1"], message_id=5))
    [ratios] = fake_telegram.sent("editMessageText")
    assert ratios["message_id"] == 5 and ratios["text"] == "Choose the aspect ratio:"
    ratio_buttons = button_data(ratios["reply_markup"])
    assert ratio_buttons["✓ 1:1"] == "set:r:1:1"

    handled(callback_update(ratio_buttons["16:9"], message_id=5))
    assert User.get(ALICE_ID).aspect_ratio == "16:9"
    assert "Aspect ratio: 16:9" in fake_telegram.sent("editMessageText")[-1]["text"]
    assert answers(fake_telegram)[-1] == "Saved"

    handled(text_update("a harbour at night"))
    [generation] = generations_of(ALICE_ID)
    assert (generation.model, generation.aspect_ratio) == (catalogue.DEFAULT_MODEL_ID, "16:9")
    assert "Cost: 1 credit." in fake_telegram.texts()[-1]

    handled(callback_update("set:models", message_id=5))
    models = button_data(fake_telegram.sent("editMessageText")[-1]["reply_markup"])
    assert models["Nano Banana Pro · 4 credits"] == "set:m:google/nano-banana-pro"
    assert not any("Edit" in label for label in models)  # chat prompts draw from text
    handled(callback_update("set:m:google/nano-banana-pro", message_id=5))

    handled(text_update("a harbour at dawn"))
    latest = max(generations_of(ALICE_ID), key=lambda g: g.generation_id)
    assert (latest.model, latest.aspect_ratio, int(latest.cost)) == ("google/nano-banana-pro", "16:9", 4)
    assert "Nano Banana Pro is drawing" in fake_telegram.texts()[-1] and "Cost: 4 credits." in fake_telegram.texts()[-1]
    for markup in keyboards(fake_telegram):
        assert all(len(data.encode()) <= CALLBACK_DATA_BYTES for data in button_data(markup).values())


def test_settings_offer_only_models_a_prompt_can_use_and_show_what_a_prompt_costs(
    fake_telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The text model and its edit pair priced apart, so the cost shown tells them apart.
    configure(monkeypatch, MODEL_COSTS=f"{catalogue.DEFAULT_MODEL_ID}=2")
    handled(text_update("/start"))
    records.save_settings(ALICE_ID, model="google/nano-banana-edit", aspect_ratio="3:4")  # saved before the fix

    handled(text_update("/settings"))
    menu = fake_telegram.sent("sendMessage")[-1]
    assert "Model: Nano Banana\n" in menu["text"] and "Aspect ratio: 3:4" in menu["text"]
    assert "One picture costs 2 credits." in menu["text"]
    handled(callback_update("set:models", message_id=5))
    offered = button_data(fake_telegram.sent("editMessageText")[-1]["reply_markup"])
    assert offered == {
        "✓ Nano Banana · 2 credits": f"set:m:{catalogue.DEFAULT_MODEL_ID}",  # what applies is the one marked
        "Nano Banana Pro · 4 credits": "set:m:google/nano-banana-pro",
        "« Back": "set:menu",
    }
    assert {data.removeprefix("set:m:") for data in offered.values()} - {"set:menu"} == {
        model.id for model in catalogue.models(ready()) if not model.edit
    }

    handled(text_update("a harbour at night"))  # the prompt is charged what /settings said
    [generation] = generations_of(ALICE_ID)
    assert (generation.model, generation.aspect_ratio, int(generation.cost)) == (catalogue.DEFAULT_MODEL_ID, "3:4", 2)


def test_a_model_without_the_saved_aspect_ratio_falls_back_to_its_default(
    fake_telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    handled(text_update("/settings"))
    handled(callback_update("set:r:21:9", message_id=5))
    assert User.get(ALICE_ID).aspect_ratio == "21:9"
    # A text-to-image model without 21:9 (the catalogue has none today: pretend one).
    narrow = catalogue.ImageModel(
        id="test/narrow", name="Narrow", cost=2, edit=False, aspect_ratios=("1:1", "3:4"), max_images=0
    )
    monkeypatch.setattr(catalogue, "_MODELS", (*catalogue._MODELS, narrow))

    handled(callback_update("set:m:test/narrow", message_id=5))

    stored = User.get(ALICE_ID)
    assert (stored.model, stored.aspect_ratio) == ("test/narrow", "1:1")
    assert answers(fake_telegram)[-1] == "Narrow has no 21:9 format; it will use 1:1."


def test_unknown_stale_or_forged_taps_are_answered_and_change_nothing(fake_telegram: FakeTelegram) -> None:
    money.register(Profile(user_id=BOB_ID, first_name="Bob"), ready())
    handled(text_update("a cat", user_id=BOB_ID))
    [bobs] = generations_of(BOB_ID)
    handled(text_update("/settings"))
    before = User.get(ALICE_ID).attribute_values
    fake_telegram.calls.clear()

    for data in (
        "garbage",
        "lang:de",
        "set:r:7:3",  # not a ratio of the model
        "set:m:google/nano-banana-edit",  # an edit model cannot draw a chat prompt
        "set:m:nobody/none",
        f"again:{bobs.generation_id}",  # another user's picture
        f"orig:{bobs.generation_id}",
        "again:01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "x" * 65,
    ):
        handled(callback_update(data, message_id=5))

    assert answers(fake_telegram) == ["This button is out of date."] * 9
    assert fake_telegram.methods() == ["answerCallbackQuery"] * 9  # no edit, no message, no document
    assert User.get(ALICE_ID).attribute_values == before
    assert len(generations_of(ALICE_ID)) == 0 and len(charges_of(BOB_ID)) == 1


def test_a_tap_delivered_twice_is_acted_on_once(fake_telegram: FakeTelegram) -> None:
    handled(text_update("/settings"))
    tap = callback_update("set:r:16:9", message_id=5)

    handled(tap)
    handled(tap)  # Telegram re-sent the update

    assert len(fake_telegram.sent("answerCallbackQuery")) == 1
    assert len(fake_telegram.sent("editMessageText")) == 1


def test_every_button_the_bot_makes_fits_telegrams_callback_data_limit() -> None:
    longest_model = max((m.id for m in catalogue.models(ready())), key=len)
    for kind, value in (("model", longest_model), ("again", "01ARZ3NDEKTSV4RRFFQ69G5FAV"), ("ratio", "21:9")):
        assert len(buttons.data(kind, value).encode()) <= CALLBACK_DATA_BYTES
    with pytest.raises(ValueError):
        buttons.data("model", "m" * 80)


# --- /history, /paysupport, /terms, /help ----------------------------------------------------


def test_history_lists_the_latest_ten_with_status_and_prompt(
    fake_telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, RATE_LIMIT_PER_MINUTE="50")
    handled(text_update("/history", language_code="ru"))
    assert fake_telegram.texts()[-1] == "Картинок пока нет. Пришлите описание, и я нарисую первую."

    set_balance(ALICE_ID, 20)
    for number in range(12):
        generation = money.start_generation(
            Profile(user_id=ALICE_ID), _order(f"picture number {number}"), ready(), chat_id=ALICE_ID, source="bot"
        ).generation
        money.cancel_generation(ALICE_ID, generation.generation_id)

    handled(text_update("/history"))
    lines = fake_telegram.texts()[-1].splitlines()
    assert lines[0] == "Your latest pictures:"
    assert lines[1:] == [f"{n}. Cancelled: picture number {12 - n}" for n in range(1, 11)]


def _order(prompt: str) -> Any:
    from tests.money_helpers import order

    return order(prompt, 1)


def test_paysupport_shows_the_contact_and_purchases_and_reaches_the_operator(
    fake_telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    handled(text_update("/paysupport"))
    assert fake_telegram.texts() == ["Payment support is not set up yet. Please try again later."]

    configure(monkeypatch, SUPPORT_CONTACT="@nanogen_help", ALERT_CHAT_ID="-100777")
    pack = catalogue.PACKS[0]
    charge_id = "stxABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    handled(payment_update(charge_id, pack.payload, pack.stars))
    handled(text_update("/paysupport", language_code="ru"))

    to_user = fake_telegram.texts_to(ALICE_ID)[-1]
    assert "С вопросами об оплате пишите @nanogen_help." in to_user
    assert "10 кредитов за 50 ⭐ (платёж stxABC…456789)" in to_user
    assert charge_id not in to_user
    assert "Мы передали ваш запрос команде" in to_user
    [to_operator] = fake_telegram.texts_to("-100777")
    assert f"(id {ALICE_ID})" in to_operator and f"tg://user?id={ALICE_ID}" in to_operator
    assert "10 credits for 50 ⭐" in to_operator  # the operator reads DEFAULT_LANGUAGE

    handled(text_update("/paysupport"))  # again at once: the operator is not flooded
    assert len(fake_telegram.texts_to("-100777")) == 1


def test_terms_show_the_operators_link_or_the_built_in_text(
    fake_telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    handled(text_update("/terms", language_code="ru"))
    assert fake_telegram.texts()[-1].startswith("Условия NanoGen, коротко:")
    configure(monkeypatch, TERMS_URL="https://example.com/terms")
    handled(text_update("/terms"))
    assert fake_telegram.texts()[-1] == "Terms of service: https://example.com/terms"


def test_help_lists_every_command_the_bot_answers(fake_telegram: FakeTelegram) -> None:
    handled(text_update("/help"))
    text = fake_telegram.texts()[-1]
    assert "To change a picture, send it with a caption saying what to change" in text
    commands = {
        "start",
        "balance",
        "buy",
        "settings",
        "language",
        "history",
        "promo",
        "invite",
        "paysupport",
        "terms",
        "help",
    }
    assert set(bot.MENU) == commands
    for name in bot.MENU:
        assert f"/{name}: " in text
        handled(text_update(f"/{name}"))
    assert "don't know that command" not in "".join(fake_telegram.texts())
