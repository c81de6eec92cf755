"""Which text of a broadcast each user gets: the bot's language rule (CONTRACT §8)."""

from __future__ import annotations

import pytest

from chalicelib.broadcasts import text_for
from chalicelib.tables import Broadcast, User
from tests.money_helpers import settings_with

BOTH = Broadcast(pk="b", text_ru="Новости", text_en="News")


@pytest.mark.parametrize(
    ("chosen", "telegram", "default", "expected"),
    [
        (None, "ru", "en", "Новости"),
        (None, "ru_RU", "en", "Новости"),  # Telegram's code in any spelling of Russian
        (None, "RU-ru", "en", "Новости"),
        (None, "en-GB", "ru", "News"),
        ("en", "ru", "ru", "News"),  # the user's own choice wins over Telegram's
        ("ru", "en", "en", "Новости"),
        (None, "de", "ru", "Новости"),  # neither language: DEFAULT_LANGUAGE
        (None, None, "ru", "Новости"),
        (None, "de", "en", "News"),
    ],
)
def test_each_user_gets_their_language(chosen: str | None, telegram: str | None, default: str, expected: str) -> None:
    settings = settings_with(DEFAULT_LANGUAGE=default)
    user = User(user_id=1, language=chosen, language_code=telegram)
    assert text_for(BOTH, user, settings) == expected


def test_one_text_for_everyone_wins() -> None:
    settings = settings_with(DEFAULT_LANGUAGE="ru")
    everyone = Broadcast(pk="b", text_all="For all", text_ru="Новости", text_en="News")
    assert text_for(everyone, User(user_id=1, language_code="ru"), settings) == "For all"
