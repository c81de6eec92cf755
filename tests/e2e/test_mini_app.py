"""The Mini App as a user sees it: the built page in Chromium against the real local stack (CONTRACT §9)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.e2e.conftest import ADMIN_ID, OUTPUT, MiniApp, Stack, new_user, shot

pytestmark = pytest.mark.e2e


def _wait_until(check: Any, timeout: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _generations(stack: Stack, user: dict[str, Any]) -> list[dict[str, Any]]:
    answer = stack.api("GET", "/api/generation?limit=50", user=user)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def _write_prompt(app: MiniApp, prompt: str) -> None:
    app.page.fill("textarea[name=prompt]", prompt)


def _picture_shown(app: MiniApp) -> None:
    img = app.page.wait_for_selector(".current[data-status=completed] img", timeout=45000)
    assert img is not None
    # The picture really loaded (from the local S3), not a broken image.
    app.page.wait_for_function(
        "() => { const i = document.querySelector('.current img'); return i && i.complete && i.naturalWidth > 0; }"
    )


def test_first_open_registers_the_user_and_shows_the_welcome_balance(stack: Stack, open_app: Any) -> None:
    user = new_user()
    app = open_app(user)

    assert app.balance() == "10 credits"
    assert app.page.evaluate("window.__tg.ready") is True
    answer = stack.api("GET", "/api/user/me", user=user)
    assert answer.json()["credits"] == 10
    # The primary action is Telegram's main button, with the cost of the default model.
    app.page.wait_for_function("window.__tg.mainButton().visible")
    assert app.main_button() == {"text": "Generate · 1 credit", "visible": True, "active": True, "progress": False}
    assert app.page.locator(".main-action").count() == 0  # Telegram draws it, not the page


def test_a_generation_is_watched_until_its_picture_is_displayed(stack: Stack, open_app: Any) -> None:
    user = new_user()
    app = open_app(user)
    _write_prompt(app, "a lighthouse on a cliff at sunset, oil painting")
    app.page.select_option("select[name=aspect_ratio]", "16:9")

    app.tap_main_button()

    _picture_shown(app)
    assert app.balance() == "9 credits"
    [generation] = _generations(stack, user)
    assert generation["status"] == "completed"
    assert generation["aspect_ratio"] == "16:9"
    assert generation["prompt"] == "a lighthouse on a cliff at sunset, oil painting"
    # Tapping the picture opens it full screen; Telegram's back button closes it.
    app.page.click(".current .picture")
    app.page.wait_for_selector(".viewer img")
    assert app.page.locator(".viewer .hint").inner_text() == "Nano Banana · 16:9 · 1 credit"  # its name, not its id
    assert app.page.evaluate("window.__tg.backVisible()") is True
    app.page.evaluate("window.__tg.clickBack()")
    app.page.wait_for_selector(".viewer", state="detached")


def test_a_double_tap_makes_one_generation(stack: Stack, open_app: Any) -> None:
    user = new_user()
    app = open_app(user)
    keys: list[str] = []
    app.page.on(
        "request",
        lambda request: (
            keys.append(request.headers.get("idempotency-key", ""))
            if request.method == "POST" and request.url.endswith("/api/generation")
            else None
        ),
    )
    _write_prompt(app, "a red fox in the snow, watercolour")

    app.tap_main_button(times=2)

    _picture_shown(app)
    assert len(_generations(stack, user)) == 1
    assert stack.api("GET", "/api/user/me", user=user).json()["credits"] == 9
    assert len(keys) == 1 and keys[0]


def test_history_pages_through_every_generation_and_opens_a_picture(stack: Stack, open_app: Any) -> None:
    user = new_user()
    stack.api("GET", "/api/user/me", user=user)
    stack.grant(user["id"], 20)
    for n in range(25):
        body = {"prompt": f"picture number {n}"}
        answer = stack.api("POST", "/api/generation", user=user, json=body, headers={"Idempotency-Key": f"h{n}"})
        assert answer.status_code == 202, answer.text
    app = open_app(user)
    pages: list[str] = []
    app.page.on("request", lambda r: pages.append(r.url) if "/api/generation?" in r.url else None)

    app.page.click("[data-tab=history]")
    app.page.wait_for_selector(".grid li")
    app.page.mouse.wheel(0, 5000)
    app.page.wait_for_selector(".history .end")

    assert app.page.locator(".grid li").count() == 25
    assert len(pages) == 2 and "cursor=" in pages[1]
    # Newest first.
    assert app.page.locator(".grid li button").first.get_attribute("title") == "picture number 24"
    _wait_until(lambda: all(g["status"] == "completed" for g in _generations(stack, user)), 60, "the worker")
    app.page.reload()
    app.page.wait_for_selector(".balance")
    app.page.click("[data-tab=history]")
    app.page.locator(".grid li[data-status=completed] button").first.click()
    app.page.wait_for_function(
        "() => { const i = document.querySelector('.viewer img'); return i && i.complete && i.naturalWidth > 0; }"
    )


def test_without_credits_the_app_offers_to_buy(stack: Stack, open_app: Any) -> None:
    user = new_user()
    stack.api("GET", "/api/user/me", user=user)
    stack.grant(user["id"], -10)
    app = open_app(user)
    assert app.balance() == "0 credits"
    _write_prompt(app, "a castle made of sand")

    app.tap_main_button()

    note = app.page.wait_for_selector(".error[data-action=buy]")
    assert note is not None
    assert "Not enough credits" in note.inner_text()
    app.page.click(".error[data-action=buy] button")
    app.page.wait_for_selector(".screen.account")
    assert _generations(stack, user) == []


def test_expired_init_data_asks_to_reopen_the_app(stack: Stack, open_app: Any) -> None:
    app = open_app(new_user(), age=2 * 86400, wait=".error")

    note = app.page.locator(".error[data-action=reopen]")
    assert "Close the app and open it again" in note.inner_text()
    assert app.page.locator(".balance").count() == 0


def test_an_admin_sees_the_operator_pages_and_grants_credits(stack: Stack, open_app: Any) -> None:
    customer = new_user(first_name="Carol")
    stack.api("GET", "/api/user/me", user=customer)
    app = open_app(new_user(id=ADMIN_ID, first_name="Olga"))

    app.page.click("[data-tab=admin]")
    app.page.wait_for_selector(".admin .stats")
    users = int(app.page.locator(".stats td[data-key=users]").inner_text())
    assert users >= 2
    assert "Done" in app.page.locator(".stats").inner_text()  # generations by status, not the raw `completed`

    app.page.fill("input[name=user_id]", str(customer["id"]))
    app.page.click(".admin form.inline button[type=submit] >> nth=0")
    app.page.wait_for_selector(f".user-card[data-user='{customer['id']}']")
    assert app.page.locator(".admin-credits").inner_text() == "10 credits"
    app.page.fill("input[name=amount]", "5")
    app.page.fill("input[name=reason]", "support: sorry for the wait")
    app.page.click(".user-card form button[type=submit]")
    app.page.wait_for_function("document.querySelector('.admin-credits').textContent === '15 credits'")

    assert stack.api("GET", "/api/user/me", user=customer).json()["credits"] == 15
    [grant] = app.requested(f"/api/admin/users/{customer['id']}/credits")  # a retry after a lost answer replays
    assert 1 <= len(grant.headers.get("idempotency-key", "")) <= 128, grant.headers
    assert app.page.locator(".user-card th").all_inner_texts() == [
        "Telegram id",
        "Name",
        "Balance",
        "Pictures in progress",
        "Banned",
    ]
    granted = app.page.locator(".ledger li[data-reason=admin]").inner_text()
    assert granted.startswith("+5 By an operator · ") and "support: sorry for the wait" in granted
    assert app.page.locator(".ledger li[data-reason=welcome]").inner_text().startswith("+10 Welcome credits")
    shot(app, "admin-en-light")


def test_opening_the_app_as_an_admin_scans_no_table_until_the_stats_are_opened(stack: Stack, open_app: Any) -> None:
    app = open_app(new_user(id=ADMIN_ID, first_name="Olga"))

    app.page.wait_for_selector("[data-tab=admin]")
    app.page.wait_for_load_state("networkidle")
    [probe] = app.requested(f"/api/admin/users/{ADMIN_ID}")  # a GetItem and a Query
    assert probe.response().status == 200
    assert app.requested("/api/admin/stats") == []  # three Scans of whole tables
    # Only the operator's statistics page asks for them.
    app.page.click("[data-tab=admin]")
    app.page.wait_for_selector(".admin .stats")
    assert len(app.requested("/api/admin/stats")) == 1


def test_an_ordinary_user_sees_no_operator_pages(stack: Stack, open_app: Any) -> None:
    user = new_user()
    app = open_app(user)

    probe = _wait_until(lambda: _answered(app, f"/api/admin/users/{user['id']}"), 20, "the admin probe")
    assert [r.status for r in probe] == [403]
    app.page.wait_for_selector(".tabs [data-tab=account]")
    assert app.page.locator("[data-tab=admin]").count() == 0
    assert app.requested("/api/admin/stats") == []


def _answered(app: MiniApp, path: str) -> list[Any]:
    """The answers to ``path`` so far; a short wait on the page lets Playwright deliver new ones."""
    app.page.wait_for_timeout(100)
    answers = [request.response() for request in app.requested(path)]
    return [answer for answer in answers if answer is not None]


@pytest.mark.parametrize("language", ["en", "ru"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_screens_in_each_language_and_theme(stack: Stack, open_app: Any, language: str, scheme: str) -> None:
    user = new_user(language_code=language)
    app = open_app(user, scheme=scheme)

    expected = {"en": "10 credits", "ru": "10 кредитов"}[language]
    assert app.balance() == expected
    assert app.page.evaluate("document.documentElement.dataset.scheme") == scheme
    background = app.page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == {"light": "rgb(255, 255, 255)", "dark": "rgb(23, 33, 43)"}[scheme]
    _write_prompt(app, {"en": "a cat reading a newspaper", "ru": "кот читает газету"}[language])
    app.tap_main_button()
    _picture_shown(app)
    shot(app, f"create-{language}-{scheme}")
    app.page.click("[data-tab=history]")
    app.page.wait_for_selector(".grid li img")
    shot(app, f"history-{language}-{scheme}")
    app.page.click("[data-tab=account]")
    app.page.wait_for_selector(".screen.account")
    shot(app, f"account-{language}-{scheme}")
    assert (OUTPUT / f"create-{language}-{scheme}.png").stat().st_size > 10_000
