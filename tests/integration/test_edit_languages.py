"""Picture edits from the chat in the user's language (CONTRACT §7, §8), through the webhook and the worker.

Every text the bot sends about an edit, once for a Russian user and once
for an English one; the sent text itself is compared. i18n is strict in the
tests (``tests/conftest.py``): a text that fails to format fails the test.
"""
# ruff: noqa: RUF001 - Russian texts are Cyrillic on purpose

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from chalicelib import config, guards, money
from chalicelib.runtime import ready
from tests.edit_helpers import document_message, photo_message, run_queue, text_message, update_of
from tests.fakes.telegram import FakeTelegram
from tests.integration.test_edits import BLUE, GREEN, GREY, RED, deliver_at_once, handled
from tests.probes import balance, charges_of, generations_of
from tests.telegram_helpers import ALICE_ID, BOB_ID, callback_update, text_update
from tests.worker_helpers import Stack

NBSP = "\u00a0"


def set_balance(credits: int, lang: str) -> None:
    handled(text_update("/start", language_code=lang))  # registered, with the welcome credits
    money.change_credits(ALICE_ID, credits - (balance(ALICE_ID) or 0), note="test")


def album_of(telegram: FakeTelegram, pictures: list[bytes], *, caption: str | None, lang: str) -> list[dict[str, Any]]:
    group = f"album-{time.monotonic_ns()}"
    return [
        update_of(
            photo_message(
                telegram.add_file(data),
                caption=caption if index == 0 else None,
                media_group_id=group,
                language_code=lang,
            )
        )
        for index, data in enumerate(pictures)
    ]


# --- each edit text, in Russian and in English --------------------------------------------
#
# A scenario makes the bot send one text to Alice, whose Telegram language is ``lang``.


def _pdf(stack: Stack, telegram: FakeTelegram, lang: str) -> None:
    pdf = telegram.add_file(b"%PDF-1.7\n...", folder="documents", extension="pdf")
    handled(update_of(document_message(pdf, "application/pdf", caption="make it pretty", language_code=lang)))


def _sticker(stack: Stack, telegram: FakeTelegram, lang: str) -> None:
    sticker = update_of(text_message("ignored", language_code=lang))
    del sticker["message"]["text"]
    sticker["message"]["sticker"] = {"file_id": "s1", "file_unique_id": "s1", "width": 512, "height": 512}
    handled(sticker)


def _voice_note(stack: Stack, telegram: FakeTelegram, lang: str) -> None:
    voice = update_of(text_message("ignored", language_code=lang))
    del voice["message"]["text"]
    voice["message"]["voice"] = {"file_id": "v1", "file_unique_id": "v1", "duration": 3, "mime_type": "audio/ogg"}
    handled(voice)


def _media(kind: str, **fields: Any) -> Callable[[Stack, FakeTelegram, str], None]:
    """A message that carries only ``kind`` (audio, a video note, a GIF...), as Telegram sends it."""

    def scenario(stack: Stack, telegram: FakeTelegram, lang: str) -> None:
        update = update_of(text_message("ignored", language_code=lang))
        del update["message"]["text"]
        update["message"][kind] = {"file_id": f"{kind}-1", "file_unique_id": f"{kind}-1", **fields}
        handled(update)

    return scenario


def _video(stack: Stack, telegram: FakeTelegram, lang: str) -> None:
    video = update_of(text_message("ignored", language_code=lang))
    del video["message"]["text"]
    video["message"]["caption"] = "make it brighter"
    video["message"]["video"] = {"file_id": "m1", "file_unique_id": "m1", "width": 640, "height": 360, "duration": 5}
    handled(video)


def _fake_png(stack: Stack, telegram: FakeTelegram, lang: str) -> None:
    fake = telegram.add_file(b"<html>surprise</html>", folder="documents", extension="png")
    handled(update_of(document_message(fake, "image/png", caption="edit this", language_code=lang)))


def _too_large(stack: Stack, telegram: FakeTelegram, lang: str) -> None:
    photo = telegram.add_file(RED)
    handled(update_of(photo_message(photo, caption="bigger", file_size=11 * 1024 * 1024, language_code=lang)))


def _download_failed(stack: Stack, telegram: FakeTelegram, lang: str) -> None:
    telegram.refuse_next("getFile", 400, "Bad Request: invalid file_id")
    handled(update_of(photo_message(telegram.add_file(RED), caption="brighter", language_code=lang)))


def _someone_elses_result(stack: Stack, telegram: FakeTelegram, lang: str) -> None:
    # A chat message that shows a result stored under another user (Alice cannot copy it).
    guards.remember_picture(
        ALICE_ID, 990_001, user_id=BOB_ID, s3_key=f"results/{BOB_ID}/g/0.png", expires_at=int(time.time()) + 60
    )
    replied = {"message_id": 990_001, "date": int(time.time()), "chat": {"id": ALICE_ID, "type": "private"}}
    handled(update_of(text_message("make it blue", reply_to=replied, language_code=lang)))


def _photo_without_caption(stack: Stack, telegram: FakeTelegram, lang: str) -> None:
    handled(update_of(photo_message(telegram.add_file(BLUE), language_code=lang)))


def _album_without_caption(stack: Stack, telegram: FakeTelegram, lang: str) -> None:
    deliver_at_once(album_of(telegram, [RED, BLUE], caption=None, lang=lang))
    time.sleep(1.1)  # ALBUM_QUIET_SECONDS, shortened for the test
    run_queue(stack)


def _photo_with_caption(stack: Stack, telegram: FakeTelegram, lang: str) -> None:
    handled(update_of(photo_message(telegram.add_file(RED), caption="make it a watercolour", language_code=lang)))


def _photo_delivered_twice(stack: Stack, telegram: FakeTelegram, lang: str) -> None:
    update = update_of(photo_message(telegram.add_file(RED), caption="make it night", language_code=lang))
    handled(update)
    handled({**update, "update_id": update["update_id"] + 10_000})  # Telegram sends the same message anew


def _four_photo_album(stack: Stack, telegram: FakeTelegram, lang: str) -> None:
    deliver_at_once(album_of(telegram, [RED, GREEN, BLUE, GREY], caption="one scene", lang=lang))
    time.sleep(1.1)
    run_queue(stack)


def _no_credits(stack: Stack, telegram: FakeTelegram, lang: str) -> None:
    set_balance(0, lang)
    handled(update_of(photo_message(telegram.add_file(RED), caption="add a hat", language_code=lang)))


def _instruction_too_long(stack: Stack, telegram: FakeTelegram, lang: str) -> None:
    photo = photo_message(telegram.add_file(GREEN), language_code=lang)
    handled(update_of(photo))
    handled(update_of(text_message("x" * 2001, reply_to=photo, language_code=lang)))


NOT_UNDERSTOOD_EN = (
    "I can't take voice messages, audio, video or GIFs. "
    "Write what I should draw as text, or send a photo with a caption saying what to change."
)
NOT_UNDERSTOOD_RU = (
    "Голосовые, аудио, видео и GIF я не понимаю. "
    "Напишите текстом, что нарисовать, — или пришлите фото с подписью, что изменить."
)


@dataclass(frozen=True)
class EditText:
    scenario: Callable[[Stack, FakeTelegram, str], None]
    en: str
    ru: str


EDIT_TEXTS = {
    "not-an-image": EditText(
        _pdf,
        "I can only edit pictures: send a photo, or a JPEG, PNG or WebP file, with what to change.",
        "Я редактирую только картинки: пришлите фото или файл JPEG, PNG или WebP с подписью, что изменить.",
    ),
    # Sent on their own, voice, audio, video and GIFs are told that a text draws (CONTRACT §7: what to do next).
    "voice-note": EditText(_voice_note, NOT_UNDERSTOOD_EN, NOT_UNDERSTOOD_RU),
    "audio": EditText(_media("audio", duration=180, mime_type="audio/mpeg"), NOT_UNDERSTOOD_EN, NOT_UNDERSTOOD_RU),
    "video-with-caption": EditText(_video, NOT_UNDERSTOOD_EN, NOT_UNDERSTOOD_RU),
    "video-note": EditText(_media("video_note", length=240, duration=4), NOT_UNDERSTOOD_EN, NOT_UNDERSTOOD_RU),
    "gif": EditText(
        _media("animation", width=320, height=240, duration=2, mime_type="video/mp4"),
        NOT_UNDERSTOOD_EN,
        NOT_UNDERSTOOD_RU,
    ),
    "sticker": EditText(
        _sticker,
        "Stickers can't be edited. Send a photo, or a JPEG, PNG or WebP file, with what to change.",
        "Стикеры редактировать нельзя. Пришлите фото или файл JPEG, PNG или WebP с подписью, что изменить.",
    ),
    "not-a-picture-file": EditText(
        _fake_png,
        "That file is not a JPEG, PNG or WebP picture, so I can't edit it.",
        "Этот файл — не картинка JPEG, PNG или WebP, поэтому отредактировать его не получится.",
    ),
    "too-large": EditText(
        _too_large,
        "That picture is too large: I can edit pictures of up to 10 MB.",
        "Картинка слишком большая: я редактирую картинки размером до 10 МБ.",
    ),
    "download-failed": EditText(
        _download_failed,
        "I couldn't fetch that picture from Telegram. Please send it again.",
        "Не удалось получить эту картинку из Telegram. Пожалуйста, пришлите её ещё раз.",
    ),
    "not-yours": EditText(
        _someone_elses_result,
        "I can only edit pictures from this chat. Send the picture itself with what to change.",
        "Я редактирую только картинки из этого чата. Пришлите саму картинку с подписью, что изменить.",
    ),
    "ask-instruction": EditText(
        _photo_without_caption,
        "Got the picture! What should I change? Send the instruction as your next message, "
        "or reply to the picture with it.",
        "Картинка получена! Что на ней изменить? Напишите указание следующим сообщением или ответьте им на картинку.",
    ),
    "ask-instruction-album": EditText(
        _album_without_caption,
        "Got 2 pictures! What should I do with them? Send the instruction as your next message.",
        "2 картинки получены! Что с ними сделать? Напишите указание следующим сообщением.",
    ),
    "queued": EditText(
        _photo_with_caption,
        "Queued! Nano Banana Edit is editing your picture; the result will arrive in this chat shortly.\n"
        "Cost: 1 credit. Balance: 9 credits.",
        "Принято! Nano Banana Edit редактирует вашу картинку, результат скоро придёт в этот чат.\n"
        "Стоимость: 1 кредит. Баланс: 9 кредитов.",
    ),
    "replayed": EditText(
        _photo_delivered_twice,
        "This edit is already on its way; it was charged once. Balance: 9 credits.",
        "Эта картинка уже редактируется; кредиты списаны один раз. Баланс: 9 кредитов.",
    ),
    "album-queued-and-trimmed": EditText(
        _four_photo_album,
        "Queued! Nano Banana Edit is editing your 3 pictures; the result will arrive in this chat shortly.\n"
        "Cost: 1 credit. Balance: 9 credits.\n"
        "Nano Banana Edit takes at most 3 pictures, so I used the first 3 of the 4 you sent.",
        "Принято! Nano Banana Edit редактирует 3 картинки, результат скоро придёт в этот чат.\n"
        "Стоимость: 1 кредит. Баланс: 9 кредитов.\n"
        "Nano Banana Edit принимает не больше 3 фото, поэтому беру первые 3 из 4.",
    ),
    "not-enough-credits": EditText(
        _no_credits,
        "Not enough credits: this picture costs 1 credit. Send /buy to get more.\nYour balance: 0 credits.",
        "Не хватает кредитов: эта картинка стоит 1 кредит. Пополнить баланс — /buy.\nВаш баланс: 0 кредитов.",
    ),
    "instruction-too-long": EditText(
        _instruction_too_long,
        "The description is too long: at most 2,000 characters, yours has 2,001.",
        f"Описание слишком длинное: можно до 2{NBSP}000 символов, а в вашем 2{NBSP}001.",
    ),
}


@pytest.mark.parametrize("lang", ["ru", "en"])
@pytest.mark.parametrize("case", EDIT_TEXTS)
def test_each_edit_text_is_in_the_users_telegram_language(
    edits: tuple[Stack, FakeTelegram], case: str, lang: str
) -> None:
    stack, telegram = edits
    text = EDIT_TEXTS[case]

    text.scenario(stack, telegram, lang)

    assert telegram.texts_to(ALICE_ID)[-1] == (text.ru if lang == "ru" else text.en)


def test_a_chosen_language_wins_over_telegrams_and_the_default_applies_without_one(
    edits: tuple[Stack, FakeTelegram], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, telegram = edits
    handled(text_update("/start", language_code="en"))
    handled(callback_update("lang:ru", message_id=77))  # Alice chooses Russian; Telegram still says "en"
    _photo_without_caption(*edits, "en")
    assert telegram.texts_to(ALICE_ID)[-1].startswith("Картинка получена! Что на ней изменить?")

    monkeypatch.setenv("DEFAULT_LANGUAGE", "ru")
    config.reset_settings()
    ready()
    stranger = photo_message(telegram.add_file(RED), user_id=BOB_ID)
    del stranger["from"]["language_code"]  # Telegram sent none: DEFAULT_LANGUAGE
    handled(update_of(stranger))
    assert telegram.texts_to(BOB_ID)[-1].startswith("Картинка получена!")


# --- credits agree with their number (CONTRACT §8) ----------------------------------------


@pytest.mark.parametrize(
    ("credits", "russian", "english"),
    [
        pytest.param(1, "1 кредит", "1 credit", id="1"),
        pytest.param(2, "2 кредита", "2 credits", id="2"),
        pytest.param(5, "5 кредитов", "5 credits", id="5"),
        pytest.param(21, "21 кредит", "21 credits", id="21"),
    ],
)
@pytest.mark.parametrize("lang", ["ru", "en"])
def test_the_queued_edits_cost_and_balance_agree_with_their_number(
    edits: tuple[Stack, FakeTelegram],
    monkeypatch: pytest.MonkeyPatch,
    lang: str,
    credits: int,
    russian: str,
    english: str,
) -> None:
    _, telegram = edits
    monkeypatch.setenv("MODEL_COSTS", f"google/nano-banana-edit={credits}")
    config.reset_settings()
    ready()
    set_balance(2 * credits, lang)  # the edit costs ``credits`` and leaves as many

    _photo_with_caption(*edits, lang)

    [generation] = generations_of(ALICE_ID)
    assert int(generation.cost) == credits and balance(ALICE_ID) == credits
    last_line = telegram.texts_to(ALICE_ID)[-1].splitlines()[-1]
    if lang == "ru":
        assert last_line == f"Стоимость: {russian}. Баланс: {russian}."
    else:
        assert last_line == f"Cost: {english}. Balance: {english}."
    assert len(charges_of(ALICE_ID)) == 1
