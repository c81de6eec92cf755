"""From a chat prompt to the delivered picture and its buttons: settings reach the provider, the
buttons again / edit / original, and notices in the user's language (CONTRACT §7, §8)."""
# ruff: noqa: RUF001 - Russian texts are Cyrillic on purpose

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, cast

import pytest

from chalicelib import aws, bot, records
from chalicelib.catalogue import DEFAULT_MODEL_ID
from chalicelib.handlers import sweeper, webhook
from chalicelib.jobs import Job
from chalicelib.tables import Generation
from chalicelib.uploads import upload_key
from tests.conftest import TEST_WEBHOOK_SECRET
from tests.fakes.aiml import B64_PICTURE, aiml_error
from tests.growth_helpers import race
from tests.probes import balance, charges_of, generations_of
from tests.telegram_helpers import ALICE_ID, callback_update, deliver, handled, text_update
from tests.worker_helpers import Stack, crashing_after, generation, stored_result


def run_queued(stack: Stack) -> None:
    assert stack.run(stack.receive()) == []


def buttons_of(call: Any) -> dict[str, str]:
    markup = json.loads(call.fields["reply_markup"])
    return {b["text"]: b["callback_data"] for row in markup["inline_keyboard"] for b in row}


def answers(stack: Stack) -> list[str | None]:
    return [payload.get("text") for payload in stack.telegram.sent("answerCallbackQuery")]


def test_a_16_9_chosen_in_settings_reaches_the_provider_and_the_picture_has_its_buttons(stack: Stack) -> None:
    handled(text_update("/settings"))
    handled(callback_update("set:ratios", message_id=3))
    handled(callback_update("set:r:16:9", message_id=3))
    handled(text_update("a lighthouse in a storm"))

    run_queued(stack)

    [request] = stack.aiml.requests
    assert (request.body["prompt"], request.body["aspect_ratio"]) == ("a lighthouse in a storm", "16:9")
    [photo] = stack.telegram.pictures_to(ALICE_ID)
    [done] = generations_of(ALICE_ID)
    assert buttons_of(photo) == {
        "🔁 Again": f"again:{done.generation_id}",
        "✏️ Edit": f"edit:{done.generation_id}",
        "📎 Original": f"orig:{done.generation_id}",
    }


def test_a_user_who_saved_an_edit_model_before_the_fix_gets_the_paired_text_model_for_a_prompt(
    stack: Stack,
) -> None:
    handled(text_update("/start"))
    records.save_settings(ALICE_ID, model="google/nano-banana-edit", aspect_ratio="9:16")  # as PUT once let them

    handled(text_update("a lighthouse in a storm"))

    [queued] = generations_of(ALICE_ID)  # not refused for lack of pictures
    assert (queued.status, queued.model, queued.aspect_ratio) == ("pending", DEFAULT_MODEL_ID, "9:16")
    assert "Nano Banana is drawing" in stack.telegram.texts_to(ALICE_ID)[-1]
    assert balance(ALICE_ID) == 9
    run_queued(stack)
    [request] = stack.aiml.requests
    assert (request.body["model"], request.body["aspect_ratio"]) == (DEFAULT_MODEL_ID, "9:16")
    assert "image_urls" not in request.body
    assert generation(Job(ALICE_ID, queued.generation_id)).status == "completed"
    assert len(stack.telegram.pictures_to(ALICE_ID)) == 1


def test_a_double_tapped_again_charges_once(stack: Stack) -> None:
    handled(text_update("a red fox in the snow"))
    run_queued(stack)
    [first] = generations_of(ALICE_ID)
    assert balance(ALICE_ID) == 9

    # Two taps of one button: two callback queries, one message and data.
    handled(callback_update(f"again:{first.generation_id}", message_id=40))
    handled(callback_update(f"again:{first.generation_id}", message_id=40))

    assert len(generations_of(ALICE_ID)) == 2 and len(charges_of(ALICE_ID)) == 2 and balance(ALICE_ID) == 8
    again = max(generations_of(ALICE_ID), key=lambda g: g.generation_id)
    assert (again.prompt, again.model, again.aspect_ratio) == (first.prompt, first.model, first.aspect_ratio)
    # The second tap says what happened to it: no second "queued, cost" for a charge that did not happen.
    assert answers(stack) == [
        "Queued again. Cost: 1 credit.",
        "Already being drawn again: taps this close together count as one.",
    ]
    run_queued(stack)
    assert generation(Job(ALICE_ID, again.generation_id)).status == "completed"
    assert len(stack.telegram.pictures_to(ALICE_ID)) == 2

    handled(callback_update(f"again:{first.generation_id}", message_id=41))  # the button of another message
    assert len(charges_of(ALICE_ID)) == 3


def test_a_later_tap_of_the_same_again_button_is_a_new_request_charged_as_new(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    handled(text_update("a red fox in the snow"))
    run_queued(stack)
    [first] = generations_of(ALICE_ID)
    now = time.time()
    monkeypatch.setattr(bot.time, "time", lambda: now)
    handled(callback_update(f"again:{first.generation_id}", message_id=40))
    monkeypatch.setattr(bot.time, "time", lambda: now + bot.AGAIN_DOUBLE_TAP_SECONDS + 1)
    handled(callback_update(f"again:{first.generation_id}", message_id=40))  # a deliberate tap, later

    assert len(generations_of(ALICE_ID)) == 3 and len(charges_of(ALICE_ID)) == 3 and balance(ALICE_ID) == 7
    assert answers(stack) == ["Queued again. Cost: 1 credit."] * 2


@dataclass(frozen=True)
class _Request:
    headers: dict[str, str]
    raw_body: bytes


def test_four_racing_taps_of_one_again_button_charge_once(stack: Stack) -> None:
    """A double (or quadruple) tap: its callback queries race through the webhook at once."""
    handled(text_update("a red fox in the snow"))
    run_queued(stack)
    [first] = generations_of(ALICE_ID)
    taps = [callback_update(f"again:{first.generation_id}", message_id=40) for _ in range(4)]

    # Straight into the webhook handler, one request object each: Chalice's test client keeps one
    # current request per app, which threads would share (a Lambda serves one request at a time).
    def tap(index: int) -> object:
        headers = {webhook.SECRET_HEADER: TEST_WEBHOOK_SECRET}
        return webhook.handle(cast(Any, _Request(headers=headers, raw_body=json.dumps(taps[index]).encode())))

    outcomes = race(4, tap)

    assert outcomes == [{"ok": True}] * 4
    assert len(charges_of(ALICE_ID)) == 2 and len(generations_of(ALICE_ID)) == 2 and balance(ALICE_ID) == 8
    # The first tap's request is queued (by whichever tap got there first); the others say they are
    # the same request. Never a second "queued" for a second charge: there is none.
    queued = "Queued again. Cost: 1 credit."
    already = "Already being drawn again: taps this close together count as one."
    assert queued in answers(stack) and set(answers(stack)) <= {queued, already} and len(answers(stack)) == 4


def _an_again_tap_that_crashed_after_its_charge(
    monkeypatch: pytest.MonkeyPatch, stack: Stack
) -> tuple[Generation, dict[str, Any], float]:
    """A delivered picture whose again tap was charged, then its Lambda died (Telegram will re-send it);
    the bot's clock is held at ``now``."""
    handled(text_update("a red fox in the snow"))
    run_queued(stack)
    [first] = generations_of(ALICE_ID)
    tap = callback_update(f"again:{first.generation_id}", message_id=40)
    now = time.time()
    monkeypatch.setattr(bot.time, "time", lambda: now)
    with crashing_after(monkeypatch, bot, "order_generation", RuntimeError):
        assert deliver(tap).status_code == 500  # charged, then the crash: Telegram will re-send
    assert len(charges_of(ALICE_ID)) == 2
    return first, tap, now


def test_a_tap_telegram_sends_again_after_a_crash_is_never_charged_twice(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Lambda died after the charge (the update's claim released): Telegram re-sends the same tap,
    even after the double-tap window, and it is the same request, not a new one."""
    _, tap, now = _an_again_tap_that_crashed_after_its_charge(monkeypatch, stack)

    monkeypatch.setattr(bot.time, "time", lambda: now + 5 * bot.AGAIN_DOUBLE_TAP_SECONDS)
    handled(tap)  # the same callback query, re-sent later

    assert len(charges_of(ALICE_ID)) == 2 and len(generations_of(ALICE_ID)) == 2 and balance(ALICE_ID) == 8
    assert answers(stack)[-1] == "Queued again. Cost: 1 credit."  # its own request, answered as it was meant


def test_a_re_sent_tap_does_not_reopen_the_window_for_a_real_tap_soon_after(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Telegram re-sends a tap whose handling died, a minute later; the user taps again 5 s after
    that re-send: a new request, charged and drawn, not merged into the re-sent tap."""
    first, tap, now = _an_again_tap_that_crashed_after_its_charge(monkeypatch, stack)
    monkeypatch.setattr(bot.time, "time", lambda: now + 60)
    handled(tap)  # re-sent: the same request, nothing charged
    assert len(charges_of(ALICE_ID)) == 2

    monkeypatch.setattr(bot.time, "time", lambda: now + 65)
    handled(callback_update(f"again:{first.generation_id}", message_id=40))  # the user, for real

    assert len(charges_of(ALICE_ID)) == 3 and len(generations_of(ALICE_ID)) == 3 and balance(ALICE_ID) == 7
    assert answers(stack)[-1] == "Queued again. Cost: 1 credit."


def test_the_second_tap_of_a_double_tap_re_sent_after_the_window_is_still_the_first_request(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A double tap is merged into its first tap. The second one's handling died (after the replay that
    charged nothing), and Telegram re-sends it once the window is over: still the first tap's request."""
    handled(text_update("a red fox in the snow"))
    run_queued(stack)
    [first] = generations_of(ALICE_ID)
    first_tap = callback_update(f"again:{first.generation_id}", message_id=40)
    second_tap = callback_update(f"again:{first.generation_id}", message_id=40)
    now = time.time()
    monkeypatch.setattr(bot.time, "time", lambda: now)
    handled(first_tap)
    with crashing_after(monkeypatch, bot, "order_generation", RuntimeError):
        assert deliver(second_tap).status_code == 500  # merged into the first, then the crash
    assert len(charges_of(ALICE_ID)) == 2

    monkeypatch.setattr(bot.time, "time", lambda: now + 5 * bot.AGAIN_DOUBLE_TAP_SECONDS)
    handled(second_tap)  # the same callback query, re-sent after the window

    assert len(charges_of(ALICE_ID)) == 2 and len(generations_of(ALICE_ID)) == 2 and balance(ALICE_ID) == 8
    assert answers(stack)[-1] == "Already being drawn again: taps this close together count as one."
    handled(callback_update(f"again:{first.generation_id}", message_id=40))  # a new tap, later: charged
    assert len(charges_of(ALICE_ID)) == 3


def test_again_under_an_edited_picture_edits_the_same_picture_once_more(stack: Stack) -> None:
    handled(text_update("a red fox in the snow"))
    run_queued(stack)
    [first] = generations_of(ALICE_ID)
    handled(callback_update(f"edit:{first.generation_id}", message_id=40))
    handled(text_update("make it night", message_id=41))
    run_queued(stack)
    edit = max(generations_of(ALICE_ID), key=lambda g: g.generation_id)
    assert generation(Job(ALICE_ID, edit.generation_id)).status == "completed"

    handled(callback_update(f"again:{edit.generation_id}", message_id=42))

    again = max(generations_of(ALICE_ID), key=lambda g: g.generation_id)
    assert again.generation_id != edit.generation_id
    assert (again.prompt, again.model, list(again.upload_ids)) == (edit.prompt, edit.model, list(edit.upload_ids))
    assert answers(stack)[-1] == "Queued again. Cost: 1 credit." and len(charges_of(ALICE_ID)) == 3
    run_queued(stack)
    assert generation(Job(ALICE_ID, again.generation_id)).status == "completed"


def test_again_under_an_edit_whose_pictures_expired_says_to_send_the_photo_again(stack: Stack) -> None:
    handled(text_update("a red fox in the snow"))
    run_queued(stack)
    [first] = generations_of(ALICE_ID)
    handled(callback_update(f"edit:{first.generation_id}", message_id=40))
    handled(text_update("make it night", message_id=41))
    run_queued(stack)
    edit = max(generations_of(ALICE_ID), key=lambda g: g.generation_id)
    for upload_id in edit.upload_ids:  # the bucket's expiry rule removed the copy
        aws.client("s3").delete_object(Bucket=stack.settings.results_bucket, Key=upload_key(ALICE_ID, str(upload_id)))
    before = len(charges_of(ALICE_ID))

    handled(callback_update(f"again:{edit.generation_id}", message_id=42))

    assert answers(stack)[-1] == (
        "The pictures this edit used are no longer kept. Send the photo again with what to change."
    )
    assert len(charges_of(ALICE_ID)) == before and len(generations_of(ALICE_ID)) == 2


def test_edit_asks_for_an_instruction_and_the_next_text_edits_that_picture(stack: Stack) -> None:
    handled(text_update("a red fox in the snow"))
    run_queued(stack)
    [first] = generations_of(ALICE_ID)

    handled(callback_update(f"edit:{first.generation_id}", message_id=40))

    assert answers(stack) == [None]
    assert stack.telegram.texts_to(ALICE_ID)[-1] == "Write what to change in this picture."
    handled(text_update("make it night", message_id=41))  # the user's next message
    edit = max(generations_of(ALICE_ID), key=lambda g: g.generation_id)
    assert (edit.prompt, edit.model) == ("make it night", "google/nano-banana-edit")
    assert len(edit.upload_ids or []) == 1 and len(charges_of(ALICE_ID)) == 2
    run_queued(stack)
    assert generation(Job(ALICE_ID, edit.generation_id)).status == "completed"


def test_original_sends_the_stored_file_as_a_document_for_free(stack: Stack) -> None:
    handled(text_update("a castle on a hill"))
    run_queued(stack)
    [done] = generations_of(ALICE_ID)
    credits = balance(ALICE_ID)

    handled(callback_update(f"orig:{done.generation_id}", message_id=9))

    document = stack.telegram.pictures_to(ALICE_ID)[-1]
    assert document.method == "sendDocument"
    stored, _ = stored_result(stack.settings, str(done.result_keys[0]))
    assert document.files["document"] == (f"nanogen-{done.generation_id}-0.png", stored) and stored == B64_PICTURE
    assert answers(stack) == ["Sending the original file."]
    assert balance(ALICE_ID) == credits and len(charges_of(ALICE_ID)) == 1


def test_a_russian_users_failure_notice_and_buttons_are_in_russian(stack: Stack) -> None:
    stack.aiml.script("запрещённое", aiml_error(400, "prompt: must not contain forbidden content"))
    handled(text_update("запрещённое", language_code="ru"))
    handled(text_update("кот в сапогах", language_code="ru"))
    queued = stack.telegram.texts_to(ALICE_ID)
    assert queued[0].startswith("Принято! Nano Banana рисует вашу картинку")
    assert "Стоимость: 1 кредит. Баланс: 9 кредитов." in queued[0]

    run_queued(stack)

    told = stack.telegram.texts_to(ALICE_ID)[-1]
    assert told == (
        "К сожалению, картинка не получилась: сервис изображений отклонил это описание или картинки.\n"
        "Мы вернули на баланс 1 кредит. Попробуйте описать иначе и отправьте снова."
    )
    [photo] = stack.telegram.pictures_to(ALICE_ID)
    assert set(buttons_of(photo)) == {"🔁 Ещё раз", "✏️ Изменить", "📎 Оригинал"}


def test_a_timed_out_generation_is_told_in_the_users_language_by_the_sweeper(stack: Stack) -> None:
    handled(text_update("медленный кот", language_code="ru"))
    [pending] = generations_of(ALICE_ID)
    assert pending.language == "ru"
    # Its time is up (the sweeper's index carries no language: the notice reads the user's).
    pending.update(actions=[Generation.timeout_at.set(int(time.time()) - 1)])

    assert sweeper.sweep()["expired"] == 1

    assert stack.telegram.texts_to(ALICE_ID)[-1] == (
        "К сожалению, картинка не получилась: она слишком долго ждала в очереди.\n"
        "Мы вернули на баланс 1 кредит. Попробуйте ещё раз позже."
    )
    assert balance(ALICE_ID) == 10
