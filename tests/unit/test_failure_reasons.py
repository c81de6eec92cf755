"""Every reason a generation can fail for is told in both languages, by the bot and by the Mini App.

The stored texts are ``chalicelib.model.FailureReason`` (the API's English
``error``, CONTRACT §5); the bot says each one with its ``failure-reason-*``
message, the Mini App with its own phrase from ``webapp/src/failures.ts``
(CONTRACT §8, §9). A reason added to the catalogue without both fails here.
"""

from __future__ import annotations

import json
import re

import pytest

from chalicelib import i18n
from chalicelib.model import FailureReason
from tests.conftest import ROOT

WEBAPP = ROOT / "webapp" / "src"
# One entry of the Map in failures.ts: ["stored text", "catalogue_key"]
_ENTRY = re.compile(r'\[\s*("(?:[^"\\]|\\.)*")\s*,\s*"(\w+)"\s*\]')


def _mini_app_reasons() -> dict[str, str]:
    source = (WEBAPP / "failures.ts").read_text(encoding="utf-8")
    return {json.loads(text): key for text, key in _ENTRY.findall(source)}


def _catalogue_keys(language: str) -> set[str]:
    source = (WEBAPP / "i18n" / f"{language}.ts").read_text(encoding="utf-8")
    return set(re.findall(r"^\s+(\w+):", source, flags=re.MULTILINE))


def test_this_test_still_understands_the_mini_apps_mapping() -> None:
    source = (WEBAPP / "failures.ts").read_text(encoding="utf-8")
    entries = _mini_app_reasons()
    assert entries, "webapp/src/failures.ts changed shape: update _ENTRY"
    assert source.count('", "failure_') == len(entries)  # no entry the pattern skips


@pytest.mark.parametrize("reason", list(FailureReason), ids=lambda reason: reason.name)
def test_every_stored_failure_text_has_a_mini_app_phrase_in_each_language(reason: FailureReason) -> None:
    mapped = _mini_app_reasons()
    assert reason.value in mapped, f"webapp/src/failures.ts has no translation of {reason.value!r}"
    for language in ("en", "ru"):
        assert mapped[reason.value] in _catalogue_keys(language), (language, mapped[reason.value])


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
@pytest.mark.parametrize("reason", list(FailureReason), ids=lambda reason: reason.name)
def test_every_failure_reason_has_a_bot_message_in_each_language(reason: FailureReason, lang: str) -> None:
    text, errors = i18n.format_message(lang, reason.message_id, {})
    assert errors == [] and text.strip(), (reason.message_id, errors)
    if lang == "ru":
        assert not re.search(r"[A-Za-z]", text), text  # not the stored English


def test_stored_texts_are_unique_and_short() -> None:
    values = [reason.value for reason in FailureReason]
    assert len(set(values)) == len(values)
    assert all(0 < len(value) <= 120 for value in values)


def test_the_stored_texts_are_the_ones_failed_generations_already_hold() -> None:
    """Stored rows and API clients hold these exact strings (CONTRACT §5 ``error``): changing one in
    both model.py and failures.ts would pass every other test here, and orphan the stored rows."""
    assert sorted(reason.value for reason in FailureReason) == sorted(
        [
            "Timed out.",
            "Timed out before it could run.",
            "Failed after repeated attempts.",
            "the image service rejected this prompt or its images.",
            "the image service is unavailable right now.",
            "the image service could not make it.",
        ]
    )
