"""The Mini App's growth and settings flows in Chromium: buying a pack (invoice, paid, new balance),
a cancelled invoice, promo codes, the language switch, the referral link, and the operator's promo-code and
broadcast pages, against the real local stack."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.e2e.conftest import ADMIN_ID, MiniApp, Stack, new_user, shot

pytestmark = pytest.mark.e2e


def _credits(stack: Stack, user: dict[str, Any]) -> int:
    credits: int = stack.api("GET", "/api/user/me", user=user).json()["credits"]
    return credits


def _wait_for_balance(app: MiniApp, text: str) -> None:
    app.page.wait_for_function(f"document.querySelector('.balance').textContent === {text!r}", timeout=30000)


def test_buying_a_pack_opens_the_invoice_and_shows_the_new_balance(stack: Stack, open_app: Any) -> None:
    user = new_user()
    app = open_app(user)
    app.page.click("[data-tab=account]")
    pack_button = app.page.wait_for_selector(".pack")
    assert pack_button is not None
    packs = stack.api("GET", "/api/packs").json()["packs"]
    pack = packs[0]

    app.page.click(f".pack[data-pack='{pack['id']}']")

    app.page.wait_for_function("window.__tg.invoices.length === 1")
    [link] = app.invoices()
    [created] = [p for p in stack.bot_api.sent("createInvoiceLink") if p.get("currency") == "XTR"][-1:]
    assert link.startswith("https://t.me/$e2e-invoice-")
    assert app.page.locator(".pack:disabled").count() == len(packs)  # no second invoice while one is open
    # Telegram sends the payment to the bot, then tells the Mini App "paid".
    update = {
        "update_id": int(time.time() * 1000) % 2_000_000_000,
        "message": {
            "message_id": 1,
            "date": int(time.time()),
            "chat": {"id": user["id"], "type": "private"},
            "from": {"id": user["id"], "is_bot": False, "first_name": user["first_name"], "language_code": "en"},
            "successful_payment": {
                "currency": "XTR",
                "total_amount": pack["stars"],
                "invoice_payload": created["payload"],
                "telegram_payment_charge_id": f"e2e-charge-{user['id']}",
                "provider_payment_charge_id": "",
            },
        },
    }
    assert stack.webhook(update).status_code == 200
    app.page.evaluate("window.__tg.finishInvoice('paid')")

    _wait_for_balance(app, f"{10 + pack['credits']} credits")
    assert app.page.locator(".note[data-note=paid]").count() == 1
    assert app.page.locator(".pack:disabled").count() == 0


def _successful_payment(user: dict[str, Any], pack: dict[str, Any], payload: str) -> dict[str, Any]:
    return {
        "update_id": int(time.time() * 1000) % 2_000_000_000,
        "message": {
            "message_id": 1,
            "date": int(time.time()),
            "chat": {"id": user["id"], "type": "private"},
            "from": {"id": user["id"], "is_bot": False, "first_name": user["first_name"], "language_code": "ru"},
            "successful_payment": {
                "currency": "XTR",
                "total_amount": pack["stars"],
                "invoice_payload": payload,
                "telegram_payment_charge_id": f"e2e-late-charge-{user['id']}",
                "provider_payment_charge_id": "",
            },
        },
    }


def test_credits_later_than_paid_are_said_to_be_on_their_way_and_shown_when_the_app_is_back(
    stack: Stack, open_app: Any
) -> None:
    user = new_user(language_code="ru")
    app = open_app(user)
    app.page.click("[data-tab=account]")
    app.page.wait_for_selector(".pack")
    pack = stack.api("GET", "/api/packs").json()["packs"][0]
    app.page.clock.install()  # the page's half a minute of asking for the balance, in a moment
    app.page.click(f".pack[data-pack='{pack['id']}']")
    app.page.wait_for_function("window.__tg.invoices.length === 1")
    [created] = [p for p in stack.bot_api.sent("createInvoiceLink") if p.get("currency") == "XTR"][-1:]

    app.page.evaluate("window.__tg.finishInvoice('paid')")  # Telegram's successful_payment is late

    crediting = app.page.locator(".note[data-note=payment_crediting]")
    for _ in range(40):
        if crediting.count():
            break
        app.page.clock.run_for(3000)
        time.sleep(0.1)  # the balance request the timer sent (real time: the page's clock is stopped)
    assert crediting.inner_text().startswith("Оплата получена, кредиты зачисляются. Баланс скоро обновится")
    assert app.balance() == "10 кредитов"
    assert app.page.locator(".pack:disabled").count() == 0
    # The credits arrive; the user comes back to the app, which asks for the balance again.
    assert stack.webhook(_successful_payment(user, pack, created["payload"])).status_code == 200
    app.page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    app.page.wait_for_selector(".note[data-note=paid]")
    assert app.balance() == f"{10 + pack['credits']} кредитов"


def test_a_cancelled_invoice_changes_nothing(stack: Stack, open_app: Any) -> None:
    user = new_user()
    app = open_app(user)
    app.page.click("[data-tab=account]")
    app.page.locator(".pack").first.click()
    app.page.wait_for_function("window.__tg.invoices.length === 1")
    app.page.evaluate("window.__tg.finishInvoice('cancelled')")
    app.page.wait_for_selector(".note[data-note=invoice_cancelled]")
    assert _credits(stack, user) == 10


def test_a_promo_code_grants_its_credits_once(stack: Stack, open_app: Any) -> None:
    code = f"E2E{int(time.time())}"
    created = stack.api("POST", "/api/admin/promo-codes", json={"code": code, "credits": 7, "max_uses": 5})
    assert created.status_code == 201, created.text
    user = new_user()
    app = open_app(user)
    app.page.click("[data-tab=account]")

    app.page.fill("input[name=promo]", code.lower())
    app.page.click("form.inline button[type=submit]")

    app.page.wait_for_selector(".note.ok")
    _wait_for_balance(app, "17 credits")
    app.page.fill("input[name=promo]", code)
    app.page.click("form.inline button[type=submit]")
    assert "already used" in app.page.wait_for_selector(".error").inner_text()
    assert _credits(stack, user) == 17


def test_an_unknown_promo_code_is_said_so(stack: Stack, open_app: Any) -> None:
    app = open_app(new_user())
    app.page.click("[data-tab=account]")
    app.page.fill("input[name=promo]", "NO-SUCH-CODE")
    app.page.click("form.inline button[type=submit]")
    assert "No such promo code" in app.page.wait_for_selector(".error").inner_text()


def _settings_saved(response: Any) -> bool:
    return bool(response.request.method == "PUT" and response.url.endswith("/api/user/settings"))


def test_the_language_switch_is_saved(stack: Stack, open_app: Any) -> None:
    user = new_user(language_code="en")
    app = open_app(user)
    app.page.click("[data-tab=account]")

    # The texts switch at once; the choice is saved by a PUT the page answers later. Wait for that answer:
    # wait_for_load_state("networkidle") returns at once on a page that went idle before the tap.
    with app.page.expect_response(_settings_saved) as saved:
        app.page.click("[data-lang=ru]")

    _wait_for_balance(app, "10 кредитов")
    assert saved.value.status == 200
    assert stack.api("GET", "/api/user/me", user=user).json()["language"] == "ru"
    app.page.reload()
    app.page.wait_for_selector(".balance")
    assert app.balance() == "10 кредитов"


def test_the_referral_link_is_shown_and_copied(stack: Stack, open_app: Any) -> None:
    user = new_user()
    app = open_app(user)
    app.page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    app.page.click("[data-tab=account]")
    link = stack.api("GET", "/api/user/me", user=user).json()["referral"]["link"]
    assert app.page.input_value("input[name=referral]") == link

    app.page.click("input[name=referral] + button")

    app.page.wait_for_selector("text=Copied")
    assert app.page.evaluate("navigator.clipboard.readText()") == link


def test_an_admin_creates_and_reads_a_promo_code_and_a_broadcast(stack: Stack, open_app: Any) -> None:
    app = open_app(new_user(id=ADMIN_ID, first_name="Olga"))
    app.page.click("[data-tab=admin]")
    app.page.wait_for_selector(".admin .stats")
    code = f"ADM{int(time.time())}"
    app.page.fill("input[name=code]", code)
    app.page.fill("input[name=credits]", "3")
    app.page.fill("input[name=max_uses]", "2")
    app.page.click("form[data-form=promo] button[type=submit]")
    app.page.wait_for_selector(f"[data-promo={code}]")
    assert stack.api("GET", f"/api/admin/promo-codes/{code}").json()["max_uses"] == 2

    app.page.fill("textarea[name=text_en]", "Hello from NanoGen")
    app.page.fill("textarea[name=text_ru]", "Привет от NanoGen")
    app.page.click("form[data-form=broadcast] button[type=submit]")
    note = app.page.wait_for_selector("[data-broadcast]")
    assert note is not None
    broadcast_id = note.get_attribute("data-broadcast")
    app.page.wait_for_function(
        "['sending', 'done', 'cancelled', 'queued'].includes(document.querySelector('[data-broadcast]').dataset.status)"
    )
    assert stack.api("GET", f"/api/admin/broadcasts/{broadcast_id}").status_code == 200
    shot(app, "admin-broadcast-en-light")
