"""Referrals: a link per user, the inviter recorded for new users only, one bonus per invited user (CONTRACT §6.7)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_httpserver import HTTPServer

from chalicelib import catalogue, money, referrals
from chalicelib.runtime import ready
from chalicelib.tables import LedgerEntry, User
from tests.api_helpers import configure, get, register
from tests.growth_helpers import race
from tests.probes import balance
from tests.telegram_helpers import (
    ALICE_ID,
    BOB_ID,
    FakeTelegram,
    handled,
    payment_update,
    start_fake_telegram,
    stop_fake_telegram,
    text_update,
)

PACK = catalogue.PACKS[0]
CAROL_ID = 1003


@pytest.fixture
def fake_telegram(aws: None, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTelegram]:
    yield start_fake_telegram(httpserver, monkeypatch)
    stop_fake_telegram()


def link_payload(user_id: int) -> str:
    return f"ref_{referrals.code_of(user_id)}"


def referral_entries(user_id: int) -> list[tuple[int, int | None]]:
    return [
        (int(e.delta), None if e.referred_user_id is None else int(e.referred_user_id))
        for e in LedgerEntry.query(user_id)
        if e.reason == "referral"
    ]


def test_codes_round_trip_and_only_referral_payloads_name_an_inviter() -> None:
    for user_id in (1, 35, 36, 1001, 2**53):
        assert referrals.inviter_of(f"ref_{referrals.code_of(user_id)}") == user_id
    for payload in (None, "", "ref_", "promo_x", "ref_!!", "ref_" + "z" * 13, "ref_0"):
        assert referrals.inviter_of(payload) is None


def test_an_invited_new_user_paying_twice_earns_the_inviter_one_bonus(fake_telegram: FakeTelegram) -> None:
    handled(text_update("/start", user_id=ALICE_ID))
    handled(text_update(f"/start {link_payload(ALICE_ID)}", user_id=BOB_ID))
    bob = User.get(BOB_ID)
    assert bob.invited_by == ALICE_ID and bob.paid_at is None
    assert int(User.get(ALICE_ID).invited_count) == 1

    handled(payment_update("charge-b1", PACK.payload, PACK.stars, user_id=BOB_ID))
    handled(payment_update("charge-b2", PACK.payload, PACK.stars, user_id=BOB_ID))
    assert balance(ALICE_ID) == 10 + 10  # welcome + one bonus
    assert referral_entries(ALICE_ID) == [(10, BOB_ID)]
    assert balance(BOB_ID) == 10 + 2 * PACK.credits
    assert int(User.get(ALICE_ID).referral_earned) == 10

    me = get("/api/user/me", {"id": ALICE_ID, "first_name": "Alice"}).body
    assert me["referral"] == {
        "link": f"https://t.me/NanoGenTestBot?start={link_payload(ALICE_ID)}",
        "invited": 1,
        "earned": 10,
    }


def test_a_redelivered_first_payment_pays_the_bonus_once(fake_telegram: FakeTelegram) -> None:
    register({"id": ALICE_ID, "first_name": "Alice"})
    handled(text_update(f"/start {link_payload(ALICE_ID)}", user_id=BOB_ID))
    update = payment_update("charge-once", PACK.payload, PACK.stars, user_id=BOB_ID)
    for _ in range(3):
        handled(update)
    money.credit_purchase(
        money.Profile(user_id=BOB_ID, first_name="Bob"),
        ready(),
        charge_id="charge-once",
        provider_charge_id=None,
        pack_id=PACK.id,
        credits=PACK.credits,
        stars=PACK.stars,
    )
    assert referral_entries(ALICE_ID) == [(10, BOB_ID)]
    assert balance(BOB_ID) == 10 + PACK.credits


def test_following_ones_own_link_or_following_it_as_an_existing_user_records_nothing(
    fake_telegram: FakeTelegram,
) -> None:
    handled(text_update(f"/start {link_payload(ALICE_ID)}", user_id=ALICE_ID))  # new, but oneself
    register({"id": CAROL_ID, "first_name": "Carol"})  # opened the Mini App first
    handled(text_update(f"/start {link_payload(ALICE_ID)}", user_id=CAROL_ID))
    handled(text_update("/start", user_id=BOB_ID))
    handled(text_update(f"/start {link_payload(ALICE_ID)}", user_id=BOB_ID))  # registered a moment ago
    for user_id in (ALICE_ID, BOB_ID, CAROL_ID):
        assert User.get(user_id).invited_by is None
    for user_id in (ALICE_ID, CAROL_ID):
        handled(payment_update(f"charge-{user_id}", PACK.payload, PACK.stars, user_id=user_id))
    assert User.get(ALICE_ID).invited_count is None
    assert referral_entries(ALICE_ID) == [] and balance(ALICE_ID) == 10 + PACK.credits


def test_a_link_of_an_unknown_user_registers_without_an_inviter(fake_telegram: FakeTelegram) -> None:
    handled(text_update(f"/start {link_payload(999_999)}", user_id=BOB_ID))
    bob = User.get(BOB_ID)
    assert bob.invited_by is None and int(bob.credits) == 10


def test_referrals_off_record_no_inviter_pay_no_bonus_and_show_no_link(
    fake_telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, REFERRAL_BONUS_CREDITS="0")
    fake_telegram_calls = len(fake_telegram.calls)
    handled(text_update("/start", user_id=ALICE_ID))
    handled(text_update(f"/start {link_payload(ALICE_ID)}", user_id=BOB_ID))
    handled(payment_update("charge-off", PACK.payload, PACK.stars, user_id=BOB_ID))
    assert User.get(BOB_ID).invited_by is None and referral_entries(ALICE_ID) == []
    assert get("/api/user/me", {"id": ALICE_ID, "first_name": "Alice"}).body["referral"]["link"] is None
    handled(text_update("/invite", user_id=ALICE_ID))
    assert fake_telegram.texts()[-1] == "Invitations are switched off right now."
    assert len(fake_telegram.calls) > fake_telegram_calls


def test_invite_shows_the_link_and_what_it_brought_asking_telegram_for_the_username_once(
    fake_telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BOT_USERNAME")
    configure(monkeypatch)
    fake_telegram.result_of["getMe"] = {"id": 4242424242, "is_bot": True, "username": "NanoGenRealBot"}
    handled(text_update("/invite", user_id=ALICE_ID))
    handled(text_update(f"/start {link_payload(ALICE_ID)}", user_id=BOB_ID))
    handled(text_update("/invite", user_id=ALICE_ID))
    link = f"https://t.me/NanoGenRealBot?start={link_payload(ALICE_ID)}"
    first, second = (text for text in fake_telegram.texts() if "Invite friends" in text)
    assert link in first and "Friends invited: 0. Credits earned: 0." in first
    assert "you get 10 credits" in first
    assert "Friends invited: 1." in second
    assert fake_telegram.methods().count("getMe") == 1


# --- races, on the serialized emulator -------------------------------------------------


@pytest.mark.emulator
@pytest.mark.usefixtures("emulator")
def test_racing_first_purchases_and_redeliveries_pay_one_bonus() -> None:
    settings = ready()
    alice = money.Profile(user_id=ALICE_ID, first_name="Alice")
    bob = money.Profile(user_id=BOB_ID, first_name="Bob")
    money.register(alice, settings)
    money.register(bob, settings, invited_by=ALICE_ID)

    def pay(index: int) -> bool:
        return money.credit_purchase(
            bob,
            settings,
            charge_id=f"race-{index % 4}",  # four payments, each delivered three times
            provider_charge_id=None,
            pack_id=PACK.id,
            credits=PACK.credits,
            stars=PACK.stars,
        )

    results = race(12, pay)
    assert results.count(True) == 4 and results.count(False) == 8, results
    assert referral_entries(ALICE_ID) == [(10, BOB_ID)]
    assert balance(ALICE_ID) == 20 and balance(BOB_ID) == 10 + 4 * PACK.credits


@pytest.mark.emulator
@pytest.mark.usefixtures("emulator")
def test_racing_registrations_through_one_link_count_one_invitation_each() -> None:
    settings = ready()
    money.register(money.Profile(user_id=ALICE_ID, first_name="Alice"), settings)
    bob = money.Profile(user_id=BOB_ID, first_name="Bob")
    results = race(8, lambda _: money.register(bob, settings, invited_by=ALICE_ID))
    assert sum(1 for result in results if isinstance(result, tuple) and result[1]) == 1
    assert int(User.get(ALICE_ID).invited_count) == 1
