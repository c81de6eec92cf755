"""Every reply says what to do next, in the user's language (CONTRACT §7, §8), through the webhook.

The cases a walk-through of the bot as a Russian and an English user found:
media the bot cannot use, /paysupport without purchases, a banned user's
/start, a new user without welcome credits, edited messages and a photo
whose caption is a command. Expected texts come from the catalogues
(``chalicelib/locales``); i18n is strict in the tests, so a text that
fails to format fails the test.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from chalicelib import bot, catalogue, money, records
from chalicelib.i18n import t
from chalicelib.model import NOT_PICTURE_MEDIA, Profile
from chalicelib.runtime import ready
from tests.api_helpers import configure
from tests.edit_helpers import photo_message, update_of
from tests.fakes.telegram import FakeTelegram
from tests.probes import balance, charges_of, generations_of, processed, queued_jobs
from tests.telegram_helpers import ALICE_ID, handled, message, next_update_id, payment_update, text_update
from tests.worker_helpers import Stack

LANGUAGES = ["ru", "en"]
CONTACT = "@nanogen_help"


def media_message(kind: str, lang: str) -> dict[str, Any]:
    """A private message that carries only ``kind`` (a voice message, a GIF...), as Telegram sends it."""
    sent = message(None, language_code=lang)
    sent[kind] = {"file_id": f"{kind}-1", "file_unique_id": f"{kind}-1", "duration": 3, "width": 320, "height": 240}
    return sent


def nothing_charged() -> None:
    assert generations_of(ALICE_ID) == [] and charges_of(ALICE_ID) == [] and queued_jobs() == []


# --- voice, audio, video, video notes, GIFs ----------------------------------------------------


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("kind", NOT_PICTURE_MEDIA)
def test_voice_audio_video_and_gifs_are_told_that_a_text_draws_and_nothing_is_charged(
    fake_telegram: FakeTelegram, kind: str, lang: str
) -> None:
    sent = media_message(kind, lang)

    handled({"update_id": next_update_id(), "message": sent})

    [reply] = fake_telegram.sent("sendMessage")
    assert reply["text"] == t(lang, "media-not-understood")
    assert reply["reply_parameters"]["message_id"] == sent["message_id"]
    assert fake_telegram.sent("getFile") == []
    nothing_charged()


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("kind", ["voice", "audio"])
def test_a_text_reply_to_a_voice_message_or_audio_is_a_new_prompt(
    fake_telegram: FakeTelegram, kind: str, lang: str
) -> None:
    # Nothing in a sound could be edited: the text can only be a description of what to draw.
    heard = media_message(kind, lang)

    handled(text_update("a lighthouse at dusk", language_code=lang, reply_to_message=heard))

    [ordered] = generations_of(ALICE_ID)
    assert (ordered.prompt, list(ordered.upload_ids or [])) == ("a lighthouse at dusk", [])
    model = catalogue.get_model(str(ordered.model), ready())
    [queued] = fake_telegram.texts()
    assert queued.startswith(t(lang, "generation-queued", model=model.name, cost=model.cost))
    assert fake_telegram.sent("getFile") == []
    money.cancel_generation(ALICE_ID, ordered.generation_id)


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize(
    ("kind", "refusal"),
    [
        ("video", "edit-not-an-image"),
        ("video_note", "edit-not-an-image"),
        ("animation", "edit-not-an-image"),
        ("sticker", "edit-sticker-refused"),
    ],
)
def test_a_text_reply_to_a_video_gif_or_sticker_is_refused_and_not_drawn_from_scratch(
    fake_telegram: FakeTelegram, kind: str, refusal: str, lang: str
) -> None:
    # "Make it blue" under a video asks to change the video: drawing "make it blue" would charge for
    # a picture nobody asked for. The answer says what can be edited, and nothing is charged.
    seen = media_message(kind, lang)

    handled(text_update("make it blue", language_code=lang, reply_to_message=seen))

    assert fake_telegram.texts() == [t(lang, refusal)]
    nothing_charged()


# --- failure notices: why, the credits back, and what to do now -----------------------------------


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_rejected_generation_is_told_to_reword_it_after_the_refund(stack: Stack, lang: str) -> None:
    from tests.fakes.aiml import aiml_error

    stack.aiml.script("forbidden thing", aiml_error(400, "prompt: must not contain forbidden content"))
    handled(text_update("forbidden thing", language_code=lang))
    run_queue_once(stack)

    told = stack.telegram.texts_to(ALICE_ID)[-1]
    assert told == t(
        lang,
        "generation-failed",
        reason=t(lang, "failure-reason-rejected"),
        cost=1,
        next=t(lang, "failure-next-rephrase"),
    )
    assert told.endswith(t(lang, "failure-next-rephrase"))
    assert balance(ALICE_ID) == 10


def run_queue_once(stack: Stack) -> None:
    event = stack.receive()
    assert event["Records"]
    assert stack.run(event) == []


# --- /paysupport -----------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGUAGES)
def test_paysupport_asks_for_a_payment_code_only_when_it_lists_payments(
    fake_telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch, lang: str
) -> None:
    configure(monkeypatch, SUPPORT_CONTACT=CONTACT)

    handled(text_update("/paysupport", language_code=lang))

    assert fake_telegram.texts() == [
        f"{t(lang, 'paysupport-contact', contact=CONTACT)}\n{t(lang, 'paysupport-no-purchases')}"
    ]

    pack = catalogue.PACKS[0]
    handled(payment_update("stx-paysupport-1", pack.payload, pack.stars))
    handled(text_update("/paysupport", language_code=lang))

    with_purchases = fake_telegram.texts()[-1].split("\n")
    assert with_purchases[:2] == [
        t(lang, "paysupport-contact-with-purchases", contact=CONTACT),
        t(lang, "paysupport-purchases-title"),
    ]
    assert f"{bot.short_charge_id('stx-paysupport-1')})" in with_purchases[2]


# --- /start --------------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_banned_users_start_says_only_that_it_is_banned_and_where_to_turn(
    fake_telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch, lang: str
) -> None:
    configure(monkeypatch, MINI_APP_URL="https://app.example.com/nanogen", SUPPORT_CONTACT=CONTACT)
    money.register(Profile(user_id=ALICE_ID, first_name="Alice"), ready())
    records.set_banned(ALICE_ID, True)

    handled(text_update("/start", language_code=lang))

    [banned] = fake_telegram.sent("sendMessage")
    assert banned["text"] == t(lang, "account-banned")  # no greeting, no invitation to draw
    assert "/paysupport" in banned["text"]
    assert "reply_markup" not in banned
    # ... and what it names does answer a banned user.
    handled(text_update("/paysupport", language_code=lang))
    assert fake_telegram.texts()[-1].startswith(t(lang, "paysupport-contact", contact=CONTACT))


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_new_user_is_welcomed_as_new_even_without_welcome_credits(
    fake_telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch, lang: str
) -> None:
    configure(monkeypatch, WELCOME_CREDITS="0")

    handled(text_update("/start", language_code=lang))
    handled(text_update("/start", language_code=lang))

    first, second = fake_telegram.texts()
    assert first == "\n".join(
        [
            t(lang, "start-greeting-new-no-gift", name="Alice"),
            t(lang, "balance-line", balance=0),
            t(lang, "start-intro"),
        ]
    )
    assert second.startswith(t(lang, "start-greeting-back", name="Alice"))
    assert balance(ALICE_ID) == 0


# --- edited messages ---------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGUAGES)
def test_each_edit_of_a_prompt_is_answered_once_and_changes_nothing(fake_telegram: FakeTelegram, lang: str) -> None:
    original = message("a cat wering a hat", language_code=lang)
    handled({"update_id": next_update_id(), "message": original})
    fixed = {**original, "text": "a cat wearing a hat", "edit_date": int(time.time())}
    update_id = next_update_id()
    edit = {"update_id": update_id, "edited_message": fixed}

    handled(edit)
    handled(edit)  # Telegram re-sends the same update: acted on once
    handled({"update_id": next_update_id(), "edited_message": {**fixed, "text": "a cat wearing a red hat"}})

    edits = fake_telegram.sent("sendMessage")[1:]
    assert [sent["text"] for sent in edits] == [t(lang, "edited-message-ignored")] * 2
    assert {sent["reply_parameters"]["message_id"] for sent in edits} == {original["message_id"]}
    [drawn] = generations_of(ALICE_ID)  # the prompt as first sent, charged once; the edits cost nothing
    assert drawn.prompt == "a cat wering a hat" and len(charges_of(ALICE_ID)) == 1
    record = processed(update_id)  # claimed like any update
    assert record is not None and record.state == "done"
    money.cancel_generation(ALICE_ID, drawn.generation_id)


def test_a_banned_users_edit_gets_only_the_banned_text(fake_telegram: FakeTelegram) -> None:
    money.register(Profile(user_id=ALICE_ID, first_name="Alice"), ready())
    records.set_banned(ALICE_ID, True)
    edited = {**message("a cat wearing a hat"), "edit_date": int(time.time())}

    handled({"update_id": next_update_id(), "edited_message": edited})

    assert fake_telegram.texts() == [t("en", "account-banned")]  # not invited to send the fix anew
    nothing_charged()


def test_an_edited_caption_is_answered_too(fake_telegram: FakeTelegram) -> None:
    photo = message(None, photo=[{"file_id": "p", "file_unique_id": "p", "width": 90, "height": 60}])

    handled({"update_id": next_update_id(), "edited_message": {**photo, "caption": "make it blue"}})

    assert fake_telegram.texts() == [t("en", "edited-message-ignored")]
    assert fake_telegram.sent("getFile") == []
    nothing_charged()


# --- a photo whose caption is a command -----------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_photo_captioned_with_a_command_runs_the_command_free(edits: tuple[Stack, FakeTelegram], lang: str) -> None:
    _, telegram = edits
    from tests.integration.test_edits import RED

    handled(update_of(photo_message(telegram.add_file(RED), caption="/help", language_code=lang)))
    handled(update_of(photo_message(telegram.add_file(RED), caption=" /balance@NanoGenBot ", language_code=lang)))

    help_text, balance_text = telegram.texts_to(ALICE_ID)
    assert help_text == bot.help_text(ready(), lang)
    assert balance_text.startswith(t(lang, "balance-line", balance=10))
    assert telegram.sent("getFile") == [] and telegram.downloads == []
    nothing_charged()


def test_an_album_captioned_with_a_command_stays_whole_and_asks_what_to_change(
    edits: tuple[Stack, FakeTelegram],
) -> None:
    """Telegram puts an album's caption on one photo: that photo must not leave the others waiting alone."""
    stack, telegram = edits
    from tests.edit_helpers import run_queue, text_message
    from tests.integration.test_edits import GREEN, RED

    for index, data in enumerate((RED, GREEN)):
        caption = "/help" if index == 0 else None
        handled(update_of(photo_message(telegram.add_file(data), caption=caption, media_group_id="album-help")))
    time.sleep(1.1)  # ALBUM_QUIET_SECONDS, shortened for the test
    run_queue(stack)

    nothing_charged()
    assert telegram.texts_to(ALICE_ID) == [t("en", "edit-album-remembered", pictures=2)]
    handled(update_of(text_message("put them side by side")))  # a later message than the photos
    [edit] = generations_of(ALICE_ID)
    assert edit.prompt == "put them side by side" and len(edit.upload_ids) == 2
    assert len(charges_of(ALICE_ID)) == 1
    money.cancel_generation(ALICE_ID, edit.generation_id)


def test_a_caption_that_is_not_one_of_our_commands_is_still_the_instruction(
    edits: tuple[Stack, FakeTelegram],
) -> None:
    _, telegram = edits
    from tests.integration.test_edits import RED

    handled(update_of(photo_message(telegram.add_file(RED), caption="/r/aww style, softer light")))

    [edit] = generations_of(ALICE_ID)
    assert edit.prompt == "/r/aww style, softer light" and len(edit.upload_ids) == 1
    money.cancel_generation(ALICE_ID, edit.generation_id)
