"""Picture edits from the chat (CONTRACT §7), from the photo update to what AIML receives.

Updates go through the webhook as Telegram sends them; the fake Bot API
serves ``getFile`` and ``/file/bot<token>/<path>``; the queue (album checks
and generation jobs) runs through ``app.generation_worker``; the fake AIML
server records each request, whose reference pictures are fetched back from
their presigned URLs (or decoded from base64) and compared byte for byte.
The money invariants of CONTRACT §6 are checked after every test by the AWS
fixtures.
"""
# ruff: noqa: RUF001 - Russian texts are Cyrillic on purpose

from __future__ import annotations

import base64
import io
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from PIL import Image
from pytest_httpserver import HTTPServer

from chalicelib import money, photos, records
from chalicelib.generate import RetryLater
from chalicelib.handlers import webhook
from chalicelib.tables import AlbumRecord, Generation
from tests.conftest import TEST_BOT_TOKEN
from tests.edit_helpers import (
    BOT_USER,
    all_rows_text,
    document_message,
    edit_stack,
    photo_message,
    run_queue,
    text_message,
    update_of,
)
from tests.fakes.aiml import B64_PICTURE
from tests.fakes.telegram import FakeTelegram, StoredFile
from tests.faults import Call, Faults
from tests.integration.test_webhook import chalice_request
from tests.probes import balance, charges_of, generations_of
from tests.telegram_helpers import ALICE_ID, deliver, handled, text_update
from tests.worker_helpers import Stack

EDIT_MODEL = "google/nano-banana-edit"


def picture(colour: tuple[int, int, int], kind: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), colour).save(buffer, format=kind)
    return buffer.getvalue()


RED, GREEN, BLUE, GREY = (picture(c) for c in ((200, 0, 0), (0, 200, 0), (0, 0, 200), (90, 90, 90)))


def reference_pictures(request_body: dict[str, Any]) -> list[bytes]:
    """The bytes behind each of AIML's ``image_urls``: fetched (presigned S3 URL) or decoded (data URL)."""
    pictures = []
    for url in request_body["image_urls"]:
        if url.startswith("data:"):
            pictures.append(base64.b64decode(url.split(",", 1)[1]))
        else:
            assert url.startswith("https://s3.amazonaws.com/") and "X-Amz-Expires=600" in url, url
            response = requests.get(url, timeout=5)  # moto answers presigned S3 URLs in process
            assert response.status_code == 200
            pictures.append(response.content)
    return pictures


def last_text(telegram: FakeTelegram) -> str:
    return telegram.texts_to(ALICE_ID)[-1]


def nothing_charged() -> None:
    assert generations_of(ALICE_ID) == []
    assert charges_of(ALICE_ID) == []


# --- a photo with a caption ----------------------------------------------------------


def test_a_photo_with_a_caption_is_one_edit_whose_provider_request_carries_its_exact_bytes(
    edits: tuple[Stack, FakeTelegram],
) -> None:
    stack, telegram = edits
    photo = telegram.add_file(RED)

    handled(update_of(photo_message(photo, caption="make it a watercolour")))

    [generation] = generations_of(ALICE_ID)
    assert (generation.model, generation.prompt, generation.aspect_ratio) == (
        EDIT_MODEL,
        "make it a watercolour",
        "1:1",
    )
    assert len(generation.upload_ids) == 1 and list(generation.image_urls) == []
    assert balance(ALICE_ID) == 9 and len(charges_of(ALICE_ID)) == 1
    assert "Queued! Nano Banana Edit is editing your picture" in last_text(telegram)
    [get_file] = telegram.sent("getFile")
    assert get_file == {"file_id": photo.file_id}  # the largest size, not the thumbnail
    assert telegram.downloads == [photo.file_path] and telegram.download_tokens == [TEST_BOT_TOKEN]

    run_queue(stack)

    [request] = stack.aiml.requests
    assert (request.body["model"], request.body["prompt"]) == (EDIT_MODEL, "make it a watercolour")
    assert reference_pictures(request.body) == [RED]
    assert TEST_BOT_TOKEN not in json.dumps(request.body)
    done = Generation.get(ALICE_ID, generation.generation_id)
    assert (done.status, done.delivered) == ("completed", True)
    assert telegram.pictures_to(ALICE_ID)[-1].files["photo"][1] == B64_PICTURE


def test_an_image_sent_as_a_file_with_a_caption_is_an_edit_too(edits: tuple[Stack, FakeTelegram]) -> None:
    stack, telegram = edits
    png = picture((1, 2, 3), "PNG")
    document = telegram.add_file(png, folder="documents", extension="png")

    handled(update_of(document_message(document, "image/png", caption="add a hat")))
    run_queue(stack)

    [request] = stack.aiml.requests
    assert request.body["prompt"] == "add a hat" and reference_pictures(request.body) == [png]
    assert balance(ALICE_ID) == 9


def test_a_retried_photo_update_charges_once_and_queues_one_job(edits: tuple[Stack, FakeTelegram]) -> None:
    stack, telegram = edits
    photo = telegram.add_file(RED)
    update = update_of(photo_message(photo, caption="make it night"))
    telegram.refuse_next("sendMessage", 500, "Internal Server Error")  # the queued reply fails once...

    assert deliver(update).status_code == 200  # ...which is only logged: the charge stands
    webhook_claim_free = deliver({**update, "update_id": update["update_id"] + 10_000})  # Telegram re-sends anew

    assert webhook_claim_free.status_code == 200
    assert len(generations_of(ALICE_ID)) == 1 and len(charges_of(ALICE_ID)) == 1
    assert "already on its way" in last_text(telegram)
    run_queue(stack)
    assert len(stack.aiml.requests) == 1


@pytest.fixture
def edits_on_emulator(
    stack_env: None, emulator: str, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> tuple[Stack, FakeTelegram]:
    return edit_stack(httpserver, monkeypatch)


@pytest.mark.emulator
def test_with_a_local_s3_the_provider_gets_the_photo_inline_as_base64(
    edits_on_emulator: tuple[Stack, FakeTelegram],
) -> None:
    stack, telegram = edits_on_emulator
    photo = telegram.add_file(GREEN)

    handled(update_of(photo_message(photo, caption="a sunset behind it")))
    run_queue(stack)

    [request] = stack.aiml.requests
    [url] = request.body["image_urls"]
    assert url.startswith("data:image/jpeg;base64,")  # AIML could not fetch from 127.0.0.1
    assert reference_pictures(request.body) == [GREEN]


# --- albums ----------------------------------------------------------------------------


def deliver_at_once(updates: list[dict[str, Any]]) -> None:
    """Each update on its own thread, released together (the test client is not thread-safe)."""
    barrier = threading.Barrier(len(updates))

    def one(update: dict[str, Any]) -> Any:
        barrier.wait()
        return webhook.handle(chalice_request(update))

    with ThreadPoolExecutor(len(updates)) as pool:
        assert list(pool.map(one, updates)) == [{"ok": True}] * len(updates)


def album(telegram: FakeTelegram, pictures: list[bytes], caption_on: int, group: str) -> list[dict[str, Any]]:
    return [
        update_of(
            photo_message(
                telegram.add_file(data),
                caption="combine these into one scene" if index == caption_on else None,
                media_group_id=group,
            )
        )
        for index, data in enumerate(pictures)  # message ids grow in this order, as in a chat
    ]


def test_an_album_delivered_out_of_order_and_at_once_is_one_generation_charged_once(
    edits: tuple[Stack, FakeTelegram],
) -> None:
    stack, telegram = edits
    updates = album(telegram, [RED, GREEN, BLUE], caption_on=1, group="album-1")

    deliver_at_once([updates[2], updates[0], updates[1]])

    assert generations_of(ALICE_ID) == []  # nothing starts while the album may still grow
    assert telegram.texts_to(ALICE_ID) == []
    time.sleep(1.1)  # ALBUM_QUIET_SECONDS, shortened for the test
    run_queue(stack)

    [generation] = generations_of(ALICE_ID)
    assert generation.prompt == "combine these into one scene" and len(generation.upload_ids) == 3
    assert balance(ALICE_ID) == 9 and len(charges_of(ALICE_ID)) == 1
    [request] = stack.aiml.requests
    assert reference_pictures(request.body) == [RED, GREEN, BLUE]  # in the order the user sent them
    assert "editing your 3 pictures" in telegram.texts_to(ALICE_ID)[0]


def _starts_album(call: Call) -> bool:
    """guards.start_album's UpdateItem: it sets started_version and nothing else of the album."""
    if call.operation != "UpdateItem":
        return False
    names = set(call.params.get("ExpressionAttributeNames", {}).values())
    return "started_version" in names and not names & {"photos", "arriving", "user_id"}


def test_an_album_whose_start_lost_its_answer_is_still_ordered_once(
    edits: tuple[Stack, FakeTelegram], faults: Faults
) -> None:
    # Applied, its answer lost, botocore's retry refused by its own condition: the check took that as
    # "another check started it", and the album, marked started, was never ordered nor answered.
    stack, telegram = edits
    for update in album(telegram, [RED, GREEN], caption_on=0, group="album-lost-start"):
        handled(update)
    time.sleep(1.1)  # ALBUM_QUIET_SECONDS, shortened for the test
    lost = faults.lose_response("UpdateItem", table="guards", where=_starts_album, times=1)
    run_queue(stack)

    assert lost.fired == 1
    [generation] = generations_of(ALICE_ID)
    assert len(generation.upload_ids) == 2 and balance(ALICE_ID) == 9 and len(charges_of(ALICE_ID)) == 1
    assert "editing your 2 pictures" in telegram.texts_to(ALICE_ID)[0]


def test_a_four_photo_album_on_a_three_image_model_uses_three_and_says_so(
    edits: tuple[Stack, FakeTelegram],
) -> None:
    stack, telegram = edits
    updates = album(telegram, [RED, GREEN, BLUE, GREY], caption_on=3, group="album-4")

    deliver_at_once(updates)
    time.sleep(1.1)
    run_queue(stack)

    [generation] = generations_of(ALICE_ID)
    assert len(generation.upload_ids) == 3 and len(charges_of(ALICE_ID)) == 1
    [request] = stack.aiml.requests
    assert reference_pictures(request.body) == [RED, GREEN, BLUE]
    [queued] = telegram.texts_to(ALICE_ID)
    assert "I used the first 3 of the 4 you sent" in queued


def test_an_album_check_that_comes_too_early_waits_and_a_stale_one_does_nothing(
    edits: tuple[Stack, FakeTelegram],
) -> None:
    stack, telegram = edits
    updates = album(telegram, [RED, GREEN], caption_on=0, group="album-2")
    for update in updates:
        handled(update)
    record = AlbumRecord.get(AlbumRecord.key(ALICE_ID, "album-2"))
    check = {"chat_id": ALICE_ID, "media_group_id": "album-2", "user": {"id": ALICE_ID, "first_name": "Alice"}}

    with pytest.raises(RetryLater):
        photos.check_album({**check, "version": 2}, stack.worker.bot, stack.settings, now=record.last_photo_at + 0.2)
    photos.check_album({**check, "version": 1}, stack.worker.bot, stack.settings, now=record.last_photo_at + 5)

    assert generations_of(ALICE_ID) == []
    photos.check_album({**check, "version": 2}, stack.worker.bot, stack.settings, now=record.last_photo_at + 5)
    photos.check_album({**check, "version": 2}, stack.worker.bot, stack.settings, now=record.last_photo_at + 6)
    assert len(generations_of(ALICE_ID)) == 1 and len(charges_of(ALICE_ID)) == 1


def test_a_slow_download_of_an_albums_second_photo_still_lands_in_the_same_album(
    edits: tuple[Stack, FakeTelegram], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack, telegram = edits
    first, second = album(telegram, [RED, GREEN], caption_on=0, group="album-slow")
    check = {"chat_id": ALICE_ID, "media_group_id": "album-slow", "user": {"id": ALICE_ID, "first_name": "Alice"}}
    copy = photos.copy_from_telegram
    checked: list[str] = []

    def slow_copy(*args: Any, **kwargs: Any) -> str:
        if kwargs["source"].endswith(f":{second['message']['message_id']}"):
            # The first photo's check comes while this download is still running (a cold start).
            with pytest.raises(RetryLater, match="still being downloaded"):
                photos.check_album({**check, "version": 1}, stack.worker.bot, stack.settings, now=time.time() + 5)
            checked.append("waited")
        return copy(*args, **kwargs)

    monkeypatch.setattr(photos, "copy_from_telegram", slow_copy)
    handled(first)
    handled(second)
    time.sleep(1.1)
    run_queue(stack)

    assert checked == ["waited"]
    [generation] = generations_of(ALICE_ID)
    assert len(generation.upload_ids) == 2 and len(charges_of(ALICE_ID)) == 1
    assert reference_pictures(stack.aiml.requests[0].body) == [RED, GREEN]


def test_an_album_photo_whose_download_never_finishes_is_given_up_on_after_a_while(
    edits: tuple[Stack, FakeTelegram], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack, telegram = edits
    first, second = album(telegram, [RED, GREEN], caption_on=0, group="album-stuck")
    handled(first)
    telegram.refuse_next("getFile", 502, "Bad Gateway", times=3)  # the second photo's download keeps failing
    assert deliver(second).status_code != 200  # Telegram will re-send it; say it never does
    check = {
        "chat_id": ALICE_ID,
        "media_group_id": "album-stuck",
        "version": 1,
        "user": {"id": ALICE_ID, "first_name": "Alice"},
    }
    record = AlbumRecord.get(AlbumRecord.key(ALICE_ID, "album-stuck"))

    with pytest.raises(RetryLater, match="still being downloaded"):
        photos.check_album(check, stack.worker.bot, stack.settings, now=record.arrived_at + 5)
    assert generations_of(ALICE_ID) == []
    job = photos.check_album(
        check, stack.worker.bot, stack.settings, now=record.arrived_at + photos.ALBUM_ARRIVAL_SECONDS + 1
    )
    assert job is not None
    [generation] = generations_of(ALICE_ID)
    assert len(generation.upload_ids) == 1


def test_an_album_without_a_caption_asks_for_the_instruction_and_the_next_text_edits_it(
    edits: tuple[Stack, FakeTelegram],
) -> None:
    stack, telegram = edits
    deliver_at_once(album(telegram, [RED, BLUE], caption_on=-1, group="album-q"))
    time.sleep(1.1)
    run_queue(stack)
    assert "Got 2 pictures!" in last_text(telegram) and generations_of(ALICE_ID) == []

    handled(update_of(text_message("swap their colours")))
    run_queue(stack)

    [request] = stack.aiml.requests
    assert request.body["prompt"] == "swap their colours" and reference_pictures(request.body) == [RED, BLUE]


LATE_PHOTO = {
    "en": "This picture came too late to be part of its album's edit: the album was already put together "
    "without it. Nothing was charged for it. To edit it, send it again with a caption saying what to change, "
    "or in a new album.",
    "ru": "Эта картинка пришла слишком поздно и не вошла в альбом для редактирования: он уже собран без неё. "
    "За неё ничего не списано. Чтобы изменить её, пришлите её ещё раз с подписью, что поменять, "
    "или в новом альбоме.",
}


def late_photo_of(telegram: FakeTelegram, group: str, lang: str) -> dict[str, Any]:
    late = photo_message(telegram.add_file(GREY), media_group_id=group, language_code=lang)
    return update_of(late)


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_a_photo_that_comes_after_its_album_started_is_told_so_in_its_language_and_charged_nothing(
    edits: tuple[Stack, FakeTelegram], lang: str
) -> None:
    stack, telegram = edits
    deliver_at_once(album(telegram, [RED, GREEN], caption_on=0, group="album-then"))
    time.sleep(1.1)
    run_queue(stack)
    [generation] = generations_of(ALICE_ID)
    replies = len(telegram.texts_to(ALICE_ID))

    late = late_photo_of(telegram, "album-then", lang)
    handled(late)

    assert telegram.texts_to(ALICE_ID)[replies:] == [LATE_PHOTO[lang]]
    [answer] = telegram.sent("sendMessage")[-1:]
    assert answer["reply_parameters"]["message_id"] == late["message"]["message_id"]
    assert len(telegram.downloads) == 2  # the late photo is not even fetched
    run_queue(stack)  # nothing was queued for it: no album check, no job
    assert [g.generation_id for g in generations_of(ALICE_ID)] == [generation.generation_id]
    assert len(generation.upload_ids) == 2
    assert balance(ALICE_ID) == 9 and len(charges_of(ALICE_ID)) == 1
    assert len(stack.aiml.requests) == 1
    record = AlbumRecord.get(AlbumRecord.key(ALICE_ID, "album-then"))
    assert (int(record.version), len(record.photos), int(record.started_version)) == (2, 2, 2)


def test_a_photo_whose_album_starts_during_its_download_is_left_out_and_told_so(
    edits: tuple[Stack, FakeTelegram], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack, telegram = edits
    first, second = album(telegram, [RED, GREEN], caption_on=0, group="album-race")
    check = {"chat_id": ALICE_ID, "media_group_id": "album-race", "user": {"id": ALICE_ID, "first_name": "Alice"}}
    copy = photos.copy_from_telegram

    def album_starts_meanwhile(*args: Any, **kwargs: Any) -> str:
        if kwargs["source"].endswith(f":{second['message']['message_id']}"):
            # The first photo's check gives up waiting for this download (ALBUM_ARRIVAL_SECONDS) and starts.
            later = time.time() + photos.ALBUM_ARRIVAL_SECONDS + 5
            assert photos.check_album({**check, "version": 1}, stack.worker.bot, stack.settings, now=later)
        return copy(*args, **kwargs)

    monkeypatch.setattr(photos, "copy_from_telegram", album_starts_meanwhile)
    handled(first)
    handled(second)  # downloaded, then refused by the album: it has started

    assert telegram.texts_to(ALICE_ID)[-1] == LATE_PHOTO["en"]
    time.sleep(1.1)  # the first photo's album check, delayed by ALBUM_QUIET_SECONDS
    run_queue(stack)
    [generation] = generations_of(ALICE_ID)
    assert len(generation.upload_ids) == 1 and len(charges_of(ALICE_ID)) == 1 and balance(ALICE_ID) == 9
    [request] = stack.aiml.requests
    assert reference_pictures(request.body) == [RED]
    assert sum(text == LATE_PHOTO["en"] for text in telegram.texts_to(ALICE_ID)) == 1


def test_a_resent_update_of_a_photo_that_made_it_into_the_started_album_is_not_called_late(
    edits: tuple[Stack, FakeTelegram],
) -> None:
    stack, telegram = edits
    updates = album(telegram, [RED, GREEN], caption_on=0, group="album-again")
    deliver_at_once(updates)
    time.sleep(1.1)
    run_queue(stack)
    replies = len(telegram.texts_to(ALICE_ID))

    handled({**updates[1], "update_id": updates[1]["update_id"] + 10_000})  # Telegram re-sends it anew

    assert telegram.texts_to(ALICE_ID)[replies:] == []
    run_queue(stack)
    assert len(generations_of(ALICE_ID)) == 1 and len(charges_of(ALICE_ID)) == 1


# --- a photo, then the instruction --------------------------------------------------------


def test_a_photo_without_a_caption_asks_and_the_next_text_edits_it(edits: tuple[Stack, FakeTelegram]) -> None:
    stack, telegram = edits
    photo = telegram.add_file(BLUE)

    handled(update_of(photo_message(photo)))

    assert "What should I change?" in last_text(telegram) and generations_of(ALICE_ID) == []
    handled(update_of(text_message("put it on the moon")))
    handled(update_of(text_message("a red fox in the snow")))  # the text after that is a new picture again
    run_queue(stack)

    edit, drawing = sorted(generations_of(ALICE_ID), key=lambda g: g.generation_id)
    assert (edit.model, edit.prompt, len(edit.upload_ids)) == (EDIT_MODEL, "put it on the moon", 1)
    assert (drawing.model, len(drawing.upload_ids)) == ("google/gemini-2.5-flash-image", 0)
    by_prompt = {request.body["prompt"]: request.body for request in stack.aiml.requests}
    assert reference_pictures(by_prompt["put it on the moon"]) == [BLUE]
    assert "image_urls" not in by_prompt["a red fox in the snow"]
    assert balance(ALICE_ID) == 8


def test_a_text_refused_for_credits_leaves_the_photo_waiting_for_the_next_text(
    edits: tuple[Stack, FakeTelegram],
) -> None:
    # The refused text used to take the photo with it: the same instruction, sent again after buying,
    # drew a new picture from scratch instead of changing the photo.
    stack, telegram = edits
    handled(update_of(text_message("/start")))
    money.change_credits(ALICE_ID, -10, note="test: spent")
    handled(update_of(photo_message(telegram.add_file(BLUE))))

    handled(update_of(text_message("put it on the moon")))

    assert "Not enough credits" in last_text(telegram) and generations_of(ALICE_ID) == []
    money.change_credits(ALICE_ID, 5, note="test: bought")
    handled(update_of(text_message("put it on the moon")))
    run_queue(stack)

    [edit] = generations_of(ALICE_ID)
    assert (edit.model, len(edit.upload_ids)) == (EDIT_MODEL, 1)
    [request] = stack.aiml.requests
    assert reference_pictures(request.body) == [BLUE] and balance(ALICE_ID) == 4


def test_a_text_reply_to_a_photo_edits_that_photo(edits: tuple[Stack, FakeTelegram]) -> None:
    stack, telegram = edits
    photo = photo_message(telegram.add_file(GREEN))
    handled(update_of(photo))

    handled(update_of(text_message("make it snow", reply_to=photo)))
    run_queue(stack)

    [request] = stack.aiml.requests
    assert request.body["prompt"] == "make it snow" and reference_pictures(request.body) == [GREEN]


# --- a reply to one of the bot's results ------------------------------------------------


def test_a_text_reply_to_a_delivered_result_edits_the_result(edits: tuple[Stack, FakeTelegram]) -> None:
    stack, telegram = edits
    handled(update_of(text_message("a castle on a hill")))
    run_queue(stack)
    [delivered] = telegram.pictures_to(ALICE_ID)
    sends = [call.method for call in telegram.calls if call.method.startswith("send")]
    result_message_id = sends.index("sendPhoto") + 1  # the fake numbers its sent messages from 1
    replied = {
        "message_id": result_message_id,
        "date": int(time.time()),
        "from": BOT_USER,
        "chat": {"id": ALICE_ID, "type": "private"},
        "photo": [{"file_id": "not-fetched", "file_unique_id": "x", "width": 1024, "height": 1024}],
    }

    handled(update_of(text_message("now at night", reply_to=replied)))
    run_queue(stack)

    first, second = stack.aiml.requests
    assert "image_urls" not in first.body
    assert second.body["prompt"] == "now at night" and second.body["model"] == EDIT_MODEL
    assert reference_pictures(second.body) == [delivered.files["photo"][1]]  # the stored result itself
    assert telegram.sent("getFile") == []  # copied inside S3, not fetched from Telegram
    assert balance(ALICE_ID) == 8


# --- refusals: a clear answer, nothing charged ------------------------------------------


def test_a_pdf_is_refused_without_a_download_or_a_charge(edits: tuple[Stack, FakeTelegram]) -> None:
    _, telegram = edits
    pdf = telegram.add_file(b"%PDF-1.7\n...", folder="documents", extension="pdf")

    handled(update_of(document_message(pdf, "application/pdf", caption="make it pretty")))

    assert "I can only edit pictures" in last_text(telegram)
    assert telegram.downloads == []
    nothing_charged()


def test_a_file_that_claims_to_be_an_image_but_is_not_is_refused(edits: tuple[Stack, FakeTelegram]) -> None:
    _, telegram = edits
    fake = telegram.add_file(b"<html>surprise</html>", folder="documents", extension="png")

    handled(update_of(document_message(fake, "image/png", caption="edit this")))

    assert "not a JPEG, PNG or WebP picture" in last_text(telegram)
    nothing_charged()


def test_a_sticker_is_refused(edits: tuple[Stack, FakeTelegram]) -> None:
    _, telegram = edits
    sticker = update_of(text_message("ignored"))
    del sticker["message"]["text"]
    sticker["message"]["sticker"] = {"file_id": "s1", "file_unique_id": "s1", "width": 512, "height": 512}

    handled(sticker)

    assert "Stickers can't be edited" in last_text(telegram)
    assert telegram.sent("getFile") == []
    nothing_charged()


@pytest.mark.parametrize(
    "declared",
    [pytest.param(25 * 1024 * 1024, id="over-telegrams-20-mb"), pytest.param(11 * 1024 * 1024, id="over-10-mb")],
)
def test_an_oversized_image_is_refused_before_any_download(edits: tuple[Stack, FakeTelegram], declared: int) -> None:
    _, telegram = edits
    photo = telegram.add_file(RED)

    handled(update_of(photo_message(photo, caption="bigger", file_size=declared)))

    assert "too large: I can edit pictures of up to 10 MB" in last_text(telegram)
    assert telegram.downloads == []
    nothing_charged()


def test_an_image_larger_than_its_declared_size_is_cut_off_and_refused(
    edits: tuple[Stack, FakeTelegram], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, telegram = edits
    monkeypatch.setattr(photos, "TELEGRAM_DOWNLOAD_LIMIT", 4096)
    telegram.hide_file_size = True
    photo = telegram.add_file(RED + b"\0" * 8192)

    handled(update_of(photo_message(photo, caption="bigger", file_size=100)))

    assert "too large" in last_text(telegram)
    nothing_charged()


# --- the token never leaves the bot -----------------------------------------------------


def test_the_bot_token_is_in_no_provider_request_message_body_row_or_log_line(
    edits: tuple[Stack, FakeTelegram], caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    stack, telegram = edits
    caplog.set_level(logging.DEBUG)
    single = photo_message(telegram.add_file(RED), caption="watercolour")
    handled(update_of(single))
    run_queue(stack)
    deliver_at_once(album(telegram, [GREEN, BLUE], caption_on=0, group="album-t"))
    time.sleep(1.1)
    run_queue(stack)
    handled(update_of(photo_message(telegram.add_file(GREY))))
    handled(update_of(text_message("as a mosaic")))
    run_queue(stack)
    handled(update_of(text_message("in the rain", reply_to=single)))
    run_queue(stack)
    assert len(stack.aiml.requests) == 4 and len(telegram.downloads) == 5  # every path was taken

    secret = TEST_BOT_TOKEN.split(":", 1)[1]
    for request in stack.aiml.requests:
        assert secret not in json.dumps(request.body) and secret not in str(request.authorization)
    for call in telegram.calls:  # the token is in each Bot API path by design; never in what is sent
        assert secret not in json.dumps(call.fields)
        assert all(secret.encode() not in content for _, content in call.files.values())
    # Not the fake servers' access logs (werkzeug: they are "Telegram"), nor moto's HTTP mock (responses:
    # it logs each URL it lets through to the fakes, and exists only in tests). urllib3 stays in: it is real.
    ours = [record for record in caplog.records if record.name not in ("werkzeug", "responses")]
    logs = "\n".join(record.getMessage() + json.dumps(record.__dict__, default=str) for record in ours)
    assert secret not in logs and secret not in capsys.readouterr().out
    assert secret not in all_rows_text()


@pytest.mark.parametrize(
    ("model", "saved", "used"),
    [
        ("google/nano-banana-pro", "21:9", "1:1"),
        ("google/nano-banana-pro", "16:9", "16:9"),
        (EDIT_MODEL, "9:16", "9:16"),  # an edit model saved before PUT /api/user/settings refused them
    ],
)
def test_the_edit_model_is_paired_with_the_users_model_and_keeps_a_ratio_it_has(
    edits: tuple[Stack, FakeTelegram], model: str, saved: str, used: str
) -> None:
    _, telegram = edits
    handled(text_update("/start"))
    records.save_settings(ALICE_ID, model=model, aspect_ratio=saved)  # as /settings (or, once, PUT) saved them

    handled(update_of(photo_message(telegram.add_file(RED), caption="wider")))

    [generation] = generations_of(ALICE_ID)
    assert (generation.model, generation.aspect_ratio) == (EDIT_MODEL, used)  # 21:9 is not an edit ratio


def test_with_the_development_token_a_photo_is_answered_and_nothing_is_charged(
    aws: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.conftest import reset_process_state

    monkeypatch.delenv("TELEGRAM_BOT_TOKEN")
    reset_process_state()
    photo = StoredFile("f", "u", "photos/f.jpg", RED)

    handled(update_of(photo_message(photo, caption="make it pop")))

    assert "dry run: a photo cannot be downloaded" in caplog.text
    nothing_charged()


def test_a_dead_lettered_album_check_is_dropped_without_a_refund(edits: tuple[Stack, FakeTelegram]) -> None:
    from chalicelib import jobs

    stack, _ = edits
    body = jobs.album_check_message({"chat_id": ALICE_ID, "media_group_id": "g", "version": 1, "user": {"id": 1}})
    dead = stack.dead_letter_queue_url()
    stack.send(body, queue_url=dead)

    assert stack.run_dead_letters(stack.receive(dead)) == []
    nothing_charged()


def _album_completed_but_undelivered(stack: Stack, telegram: FakeTelegram, group: str) -> dict[str, Any]:
    """An album whose check charged and ran the generation, whose one picture Telegram then refused (500)."""
    deliver_at_once(album(telegram, [RED, GREEN], caption_on=0, group=group))
    time.sleep(1.1)
    for method in ("sendPhoto", "sendDocument", "sendMediaGroup"):
        telegram.refuse_next(method, 500, "Internal Server Error")
    event = stack.receive()
    assert stack.run(event) != []  # the album check is kept for a retry
    [generation] = generations_of(ALICE_ID)
    assert (generation.status, generation.delivered) == ("completed", False)
    assert len(telegram.pictures_to(ALICE_ID)) == 1  # the refused attempt
    return event


def test_a_retried_album_check_delivers_a_completed_generation_whose_delivery_failed(
    edits: tuple[Stack, FakeTelegram],
) -> None:
    stack, telegram = edits
    event = _album_completed_but_undelivered(stack, telegram, "album-late")

    assert stack.run(event) == []  # SQS delivers the same album check again

    [generation] = generations_of(ALICE_ID)
    assert (generation.status, generation.delivered) == ("completed", True)
    assert len(telegram.pictures_to(ALICE_ID)) == 2  # refused, then delivered
    assert len(stack.aiml.requests) == 1 and len(charges_of(ALICE_ID)) == 1  # generated and charged once


def test_a_dead_lettered_album_check_delivers_its_completed_undelivered_generation(
    edits: tuple[Stack, FakeTelegram],
) -> None:
    stack, telegram = edits
    event = _album_completed_but_undelivered(stack, telegram, "album-dead")
    stack.send(event["Records"][0]["body"], queue_url=stack.dead_letter_queue_url())

    assert stack.run_dead_letters(stack.receive(stack.dead_letter_queue_url())) == []

    [generation] = generations_of(ALICE_ID)
    assert (generation.status, generation.delivered) == ("completed", True)
    assert len(telegram.pictures_to(ALICE_ID)) == 2 and len(charges_of(ALICE_ID)) == 1


@pytest.mark.emulator
def test_on_the_serialized_emulator_an_album_at_once_is_still_one_generation(
    edits_on_emulator: tuple[Stack, FakeTelegram], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack, telegram = edits_on_emulator
    monkeypatch.setattr(photos, "ALBUM_QUIET_SECONDS", 1)
    updates = album(telegram, [BLUE, RED, GREEN], caption_on=2, group="album-e")

    deliver_at_once([updates[1], updates[2], updates[0]])
    time.sleep(1.1)
    run_queue(stack)

    assert len(generations_of(ALICE_ID)) == 1 and len(charges_of(ALICE_ID)) == 1
    [request] = stack.aiml.requests
    assert reference_pictures(request.body) == [BLUE, RED, GREEN]
