# ruff: noqa: RUF001 - Russian texts are Cyrillic on purpose
"""Errors of CONTRACT §4 as a Russian user reads them in the Mini App: in Russian, with what to do (§8, §9)."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest

from chalicelib.errors import TooManyActive
from chalicelib.model import FailureReason
from tests.e2e.conftest import MiniApp, Stack, new_user

pytestmark = pytest.mark.e2e


def _generations(stack: Stack, user: dict[str, Any]) -> list[dict[str, Any]]:
    answer = stack.api("GET", "/api/generation?limit=50", user=user)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def _error_text(app: MiniApp) -> str:
    text: str = app.page.wait_for_selector(".error").inner_text()
    return text


def test_the_active_generation_limit_is_explained_in_russian_and_counts_down(stack: Stack, open_app: Any) -> None:
    user = new_user(language_code="ru")
    app = open_app(user)
    app.page.wait_for_function("window.__tg.mainButton().visible")
    # The API's own 429 body and header for a user at MAX_ACTIVE_GENERATIONS (the stack allows 50).
    limit = TooManyActive("You already have 2 generations in progress (the limit is 2).", retry_after=3)
    refused: list[str] = []

    def answer_too_many_active(route: Any) -> None:
        if route.request.method != "POST" or refused:
            route.continue_()
            return
        refused.append(route.request.headers.get("idempotency-key", ""))
        route.fulfill(
            status=limit.status,
            headers={"Content-Type": "application/json", **limit.headers},
            body=json.dumps(limit.body()),
        )

    app.page.route("**/api/generation", answer_too_many_active)
    app.page.fill("textarea[name=prompt]", "кот читает газету")
    before_tap = len(app.main_button_active_history())
    # The page's clock paused: the countdown moves only when the test runs it, not by the 3 s of
    # Retry-After passing on a busy machine before the note's text and the main button are read.
    app.page.clock.install()
    app.page.clock.pause_at(time.time() * 1000 + 1000)

    app.tap_main_button()

    note = app.page.wait_for_selector(".error[data-action=wait]")
    assert note is not None
    text = note.inner_text()
    assert "Сейчас рисуется столько картинок, сколько можно одновременно." in text
    assert "Дождитесь, пока одна будет готова, и повторите через" in text
    assert "секунд" in text
    assert "generations in progress" not in text  # the server's English message is not what a Russian user reads
    assert app.main_button()["active"] is False  # no tap until Retry-After has passed
    # At 0 the note says to try again, and the main button works again.
    app.page.clock.run_for(3000)
    app.page.clock.resume()
    app.page.wait_for_function(
        "document.querySelector('.error').innerText.includes('Дождитесь, пока одна будет готова, и попробуйте снова.')",
        timeout=10000,
    )
    app.page.wait_for_function("window.__tg.mainButton().active")
    # Not active for a single state between the refusal and the end of the countdown: the render that
    # shows the note already holds Retry-After (a frame of "active" there let a second tap through).
    since_tap = app.main_button_active_history()[before_tap:]
    assert False in since_tap and since_tap[-1] is True
    assert since_tap == sorted(since_tap), since_tap
    assert _generations(stack, user) == []

    app.tap_main_button()

    app.page.wait_for_selector(".current[data-status]")
    [generation] = _generations(stack, user)
    assert generation["prompt"] == "кот читает газету"
    assert app.page.locator(".error").count() == 0


def test_a_refused_prompt_is_explained_in_russian_with_the_field_as_a_detail(stack: Stack, open_app: Any) -> None:
    user = new_user(language_code="ru-RU")
    app = open_app(user)
    app.page.wait_for_function("window.__tg.mainButton().visible")
    # A control character: the real API answers 400 invalid_request ("prompt contains control characters.").
    app.page.fill("textarea[name=prompt]", "кот\x01 читает газету")

    app.tap_main_button()

    app.page.wait_for_selector(".error")
    assert app.page.locator(".error p").all_inner_texts() == [
        "Эту картинку не удалось заказать. Проверьте описание, модель, формат и фото и попробуйте снова.",
        "Ответ сервера: prompt contains control characters.",
    ]
    assert app.balance() == "10 кредитов"
    assert _generations(stack, user) == []


def test_without_credits_a_russian_user_is_offered_to_buy(stack: Stack, open_app: Any) -> None:
    user = new_user(language_code="ru")
    stack.api("GET", "/api/user/me", user=user)
    stack.grant(user["id"], -10)
    app = open_app(user)
    app.page.fill("textarea[name=prompt]", "замок из песка")

    app.tap_main_button()

    app.page.wait_for_selector(".error[data-action=buy]")
    assert app.page.locator(".error p").inner_text() == (
        "Не хватает кредитов на эту картинку. Купите кредиты или выберите модель дешевле."
    )
    app.page.click(".error button:text('Купить кредиты')")
    app.page.wait_for_selector(".screen.account")


def test_an_unknown_promo_code_is_said_in_russian(stack: Stack, open_app: Any) -> None:
    app = open_app(new_user(language_code="ru"))
    app.page.click("[data-tab=account]")
    app.page.fill("input[name=promo]", "NO-SUCH-CODE")
    app.page.click("form.inline button[type=submit]")
    assert _error_text(app) == "Такого промокода нет, или срок его действия истёк. Проверьте, как он написан."


def test_before_me_answers_the_telegram_language_is_used(stack: Stack, open_app: Any) -> None:
    # Expired initData: /api/user/me answers 401, so only Telegram's language_code can choose the language.
    app = open_app(new_user(language_code="ru-RU"), age=2 * 86400, wait=".error[data-action=reopen]")

    assert _error_text(app) == "Сессия истекла. Закройте приложение и откройте его снова из бота."
    assert app.page.evaluate("document.documentElement.lang") == "ru"


def test_a_failed_generation_gives_its_reason_in_russian_not_the_stored_english(stack: Stack, open_app: Any) -> None:
    user = new_user(language_code="ru")
    app = open_app(user)
    app.page.wait_for_function("window.__tg.mainButton().visible")
    # The offline provider never refuses: the API's answers about this user's generations are
    # turned into the failure a refusing AIML leaves behind (status, the stored English error).
    reason = FailureReason.PROVIDER_REJECTED

    def as_failed(route: Any) -> None:
        answer = route.fetch()
        body = answer.json()
        for generation in body.get("items", [body]):  # one generation, or a page of them
            generation.update(status="failed", error=reason.value, result_urls=[])
        route.fulfill(response=answer, json=body)

    app.page.route(re.compile(r"/api/generation/[0-9A-Z]{26}$"), as_failed)  # the Create screen's polling
    app.page.route(re.compile(r"/api/generation\?"), as_failed)  # the history's pages
    app.page.fill("textarea[name=prompt]", "кот читает газету")

    app.tap_main_button()

    status = app.page.wait_for_selector(".current[data-status=failed] .status")
    assert status is not None
    expected = "Не получилось: сервис изображений отклонил это описание или картинки. Кредиты возвращены."
    assert status.inner_text() == expected
    assert reason.value.rstrip(".") not in app.page.inner_text("main")
    # The history's viewer says it the same way.
    app.page.click("[data-tab=history]")
    app.page.click(".history li[data-status=failed] button")
    assert app.page.locator(".viewer .status").inner_text() == expected
