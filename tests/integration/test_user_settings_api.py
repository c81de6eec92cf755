"""GET /api/user/me's language and settings, PUT /api/user/settings, GET /api/user/ledger (CONTRACT §5)."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib import money, records
from tests.api_helpers import (
    ALICE,
    BOB,
    DEFAULT_MODEL,
    EDIT_MODEL,
    PRO_MODEL,
    USER_FIELDS,
    Reply,
    assert_error,
    call,
    configure,
    get,
    register,
    start,
    tma,
)
from tests.probes import balance, stored_user

pytestmark = pytest.mark.usefixtures("aws")


def put_settings(user: dict[str, Any], body: Any) -> Reply:
    return call("PUT", "/api/user/settings", headers=tma(user), json_body=body)


def test_me_shows_the_language_and_the_defaults_until_settings_are_saved() -> None:
    assert register(ALICE)["language"] == "en" and register(ALICE)["settings"] == {
        "model": DEFAULT_MODEL,
        "aspect_ratio": "1:1",
    }
    assert register({**BOB, "language_code": "ru-RU"})["language"] == "ru"


def test_put_settings_saves_any_of_them_and_answers_the_user_as_me_does() -> None:
    register(ALICE)

    saved = put_settings(ALICE, {"language": "ru", "model": PRO_MODEL, "aspect_ratio": "16:9"})

    assert saved.status == 200, saved.body
    assert set(saved.body) == USER_FIELDS | {"referral"}  # the user exactly as /me shows it
    assert (saved.body["language"], saved.body["settings"]) == ("ru", {"model": PRO_MODEL, "aspect_ratio": "16:9"})
    assert get("/api/user/me", ALICE).body == saved.body
    stored = stored_user(ALICE["id"])
    assert (stored.language, stored.model, stored.aspect_ratio) == ("ru", PRO_MODEL, "16:9")

    # One field at a time; the others stay.
    assert put_settings(ALICE, {"aspect_ratio": "9:16"}).body["settings"] == {
        "model": PRO_MODEL,
        "aspect_ratio": "9:16",
    }
    assert put_settings(ALICE, {"language": "en"}).body["language"] == "en"
    # 21:9 suits the text model; the photos' edit model, which lacks it, uses its own default there (§7).
    assert put_settings(ALICE, {"model": DEFAULT_MODEL, "aspect_ratio": "21:9"}).status == 200


def test_put_settings_refuses_unknown_values_and_ratios_the_model_lacks() -> None:
    register(ALICE)
    put_settings(ALICE, {"model": PRO_MODEL, "aspect_ratio": "21:9"})
    before = stored_user(ALICE["id"]).attribute_values

    bodies: tuple[Any, ...] = (
        {},
        {"language": "de"},
        {"model": "nobody/none"},
        {"aspect_ratio": "7:3"},
        {"model": EDIT_MODEL, "aspect_ratio": "21:9"},  # an edit model, which lacks it too
        {"language": 1},
        {"colour": "red"},
        [],
    )
    for body in bodies:
        assert_error(put_settings(ALICE, body), 400, "invalid_request")
    assert_error(call("PUT", "/api/user/settings", json_body={"language": "ru"}), 401, "unauthorized")
    assert stored_user(ALICE["id"]).attribute_values == before


def test_put_settings_refuses_an_edit_model_as_the_saved_one_and_changes_nothing() -> None:
    register(ALICE)
    put_settings(ALICE, {"model": PRO_MODEL, "aspect_ratio": "16:9"})
    before = stored_user(ALICE["id"]).attribute_values

    for body in ({"model": EDIT_MODEL}, {"model": EDIT_MODEL, "aspect_ratio": "1:1", "language": "ru"}):
        refused = put_settings(ALICE, body)

        # Every later text prompt would need pictures it does not have.
        assert_error(refused, 400, "invalid_request")
        message = refused.body["error"]["message"]
        assert EDIT_MODEL in message and "text-to-image" in message
        assert DEFAULT_MODEL in message and PRO_MODEL in message  # what to choose instead
        assert "edit model automatically" in message  # and why the edit model is not lost
    assert stored_user(ALICE["id"]).attribute_values == before
    assert get("/api/user/me", ALICE).body["settings"] == {"model": PRO_MODEL, "aspect_ratio": "16:9"}
    assert start(ALICE).body["generation"]["model"] == PRO_MODEL


def test_a_user_who_saved_an_edit_model_before_the_fix_gets_its_paired_text_model() -> None:
    register(ALICE)
    records.save_settings(ALICE["id"], model=EDIT_MODEL, aspect_ratio="9:16")  # as PUT once let them

    # What applies is shown, and a prompt without a model uses it instead of failing.
    assert get("/api/user/me", ALICE).body["settings"] == {"model": DEFAULT_MODEL, "aspect_ratio": "9:16"}
    started = start(ALICE)
    assert started.status == 202, started.body
    generation = started.body["generation"]
    assert (generation["model"], generation["aspect_ratio"], generation["cost"]) == (DEFAULT_MODEL, "9:16", 1)
    # A new ratio is checked against that text model (the edit model lacks 21:9).
    assert put_settings(ALICE, {"aspect_ratio": "21:9"}).body["settings"] == {
        "model": DEFAULT_MODEL,
        "aspect_ratio": "21:9",
    }


def test_a_generation_defaults_to_the_saved_model_and_aspect_ratio(monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, MAX_ACTIVE_GENERATIONS="5")
    register(ALICE)
    put_settings(ALICE, {"model": PRO_MODEL, "aspect_ratio": "16:9", "language": "ru"})

    generation = start(ALICE).body["generation"]
    assert (generation["model"], generation["aspect_ratio"], generation["cost"]) == (PRO_MODEL, "16:9", 4)
    # A model given in the body without the saved ratio uses its own default.
    given = start(ALICE, "a second fox", model=EDIT_MODEL, image_urls=["https://images.example.com/cat.png"])
    assert given.body["generation"]["aspect_ratio"] == "16:9"  # the edit model has 16:9
    explicit = start(ALICE, "a third fox", model=DEFAULT_MODEL, aspect_ratio="1:1").body["generation"]
    assert (explicit["model"], explicit["aspect_ratio"]) == (DEFAULT_MODEL, "1:1")


def test_ledger_lists_the_callers_entries_newest_first_in_pages() -> None:
    register(ALICE)
    register(BOB)
    first = start(ALICE).body["generation"]
    money.cancel_generation(ALICE["id"], first["id"])
    money.change_credits(ALICE["id"], 5, note="operator's private note")

    page = get("/api/user/ledger", ALICE)
    assert page.status == 200 and page.body["next_cursor"] is None
    items = page.body["items"]
    assert [(item["delta"], item["reason"]) for item in items] == [
        (5, "admin"),
        (1, "refund"),
        (-1, "generation"),
        (10, "welcome"),
    ]
    assert items[1]["generation_id"] == items[2]["generation_id"] == first["id"]
    assert "generation_id" not in items[3] and all("note" not in item for item in items)
    assert sum(item["delta"] for item in items) == balance(ALICE["id"])

    one = get("/api/user/ledger?limit=1", ALICE).body
    assert [item["id"] for item in one["items"]] == [items[0]["id"]]
    rest = get(f"/api/user/ledger?limit=3&cursor={one['next_cursor']}", ALICE).body
    assert [item["id"] for item in rest["items"]] == [item["id"] for item in items[1:]]
    assert rest["next_cursor"] is None

    assert [item["reason"] for item in get("/api/user/ledger", BOB).body["items"]] == ["welcome"]
    for query in ("limit=0", "limit=51", "limit=x", "cursor=bogus", "cursor=" + "A" * 300):
        assert_error(get(f"/api/user/ledger?{query}", ALICE), 400, "invalid_request")
    assert_error(get("/api/user/ledger"), 401, "unauthorized")
