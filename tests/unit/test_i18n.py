"""The bot's languages and catalogues (CONTRACT §7, §8): every text in both, with CLDR plurals."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator

import pytest
from fluent.syntax import FluentParser, ast, visitor

from chalicelib import i18n
from chalicelib.catalogue import PACKS
from tests.conftest import ROOT

# A sample for every variable a catalogue uses; a new variable must be added here.
NUMBER_SAMPLES = {
    "active": 2,
    "balance": 21,
    "base_credits": 10,
    "bonus": 10,
    "cost": 4,
    "count": 5,
    "credits": 50,
    "discount": 20,
    "earned": 30,
    "invited": 3,
    "length": 2345,
    "limit": 2,
    "max_chars": 2000,
    "max_images": 3,
    "max_mb": 10,
    "number": 1,
    "pictures": 3,
    "seconds": 42,
    "sent": 4,
    "stars": 200,
    "welcome": 10,
}
TEXT_SAMPLES = {
    "aspect_ratio": "16:9",
    "charge_id": "stxAbC…XyZ",
    "command": "balance",
    "contact": "@nanogen_support",
    "date": "2026-12-01",
    "description": "Your credits",
    "fallback": "1:1",
    "label": "16:9",
    "link": "tg://user?id=123456789",
    "model": "Nano Banana",
    "name": "Анна",
    "next": "Please try again later.",
    "prompt": "a red fox in the snow",
    "purchases": "2026-12-01: 50 credits for 200 ⭐ (payment stxAbC…XyZ)",
    "reason": "the image service could not make it.",
    "status": "completed",
    "url": "https://example.com/terms",
    "user_id": "123456789",
}
SAMPLES: dict[str, i18n.Arg] = {**NUMBER_SAMPLES, **TEXT_SAMPLES}
STATUSES = ("pending", "processing", "completed", "failed", "cancelled")
BIDI_MARKS = "\u2066\u2067\u2068\u2069"


class _Variables(visitor.Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def visit_VariableReference(self, node: ast.VariableReference) -> None:
        self.names.add(node.id.name)
        self.generic_visit(node)


def _entries(lang: str) -> tuple[dict[str, set[str]], set[str]]:
    """Message id -> the variables it uses, and the term ids, as fluent.syntax parses the file."""
    resource = FluentParser().parse(i18n.catalogue_path(lang).read_text(encoding="utf-8"))
    junk = [entry.content for entry in resource.body if isinstance(entry, ast.Junk)]
    assert not junk, f"{lang}.ftl does not parse: {junk}"
    messages: dict[str, set[str]] = {}
    terms: set[str] = set()
    for entry in resource.body:
        if isinstance(entry, ast.Message):
            assert entry.id.name not in messages, f"{lang}.ftl defines {entry.id.name} twice"
            found = _Variables()
            found.visit(entry)
            messages[entry.id.name] = found.names
        elif isinstance(entry, ast.Term):
            terms.add(entry.id.name)
    return messages, terms


def _args(variables: set[str], **overrides: i18n.Arg) -> dict[str, i18n.Arg]:
    return {name: overrides.get(name, SAMPLES[name]) for name in variables}


@pytest.fixture
def strict() -> Iterator[None]:
    i18n.strict = True
    yield
    i18n.strict = False


# --------------------------------------------------------------------------
# The catalogues agree
# --------------------------------------------------------------------------


def test_every_message_exists_in_both_languages_with_the_same_variables() -> None:
    russian, russian_terms = _entries("ru")
    english, english_terms = _entries("en")

    assert sorted(set(russian) ^ set(english)) == []
    assert russian_terms == english_terms
    differing = {key: (russian[key], english[key]) for key in russian if russian[key] != english[key]}
    assert differing == {}
    assert len(russian) > 100  # every text of CONTRACT §7, not a stub


def test_every_failure_reason_has_a_next_step_the_notice_ends_with() -> None:
    from chalicelib.notify import FAILURE_NEXT_STEPS

    messages, _ = _entries("en")
    reasons = {name for name in messages if name.startswith("failure-reason-")}
    assert set(FAILURE_NEXT_STEPS) == reasons
    for lang in i18n.LANGUAGES:
        for reason, next_step in FAILURE_NEXT_STEPS.items():
            said = i18n.t(lang, next_step)
            notice = i18n.t(lang, "generation-failed", reason=i18n.t(lang, reason), cost=2, next=said)
            assert said and notice.endswith(said), (lang, reason)


def test_every_variable_has_a_sample_in_this_test() -> None:
    used = set().union(*_entries("ru")[0].values(), *_entries("en")[0].values())
    assert sorted(used - set(SAMPLES)) == []


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_every_message_formats_without_errors_or_bidi_marks(lang: str) -> None:
    messages, _ = _entries(lang)
    for message_id, variables in messages.items():
        text, errors = i18n.format_message(lang, message_id, _args(variables))
        assert errors == [], (message_id, errors)
        assert text.strip(), message_id
        assert "{" not in text and "}" not in text, (message_id, text)
        assert not set(text) & set(BIDI_MARKS), message_id


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_select_expressions_on_a_status_name_every_status(lang: str) -> None:
    names = {status: i18n.t(lang, "generation-status", status=status) for status in STATUSES}
    assert len(set(names.values())) == len(STATUSES), names
    ended = {i18n.t(lang, "generation-replay-ended", status=status, balance=1) for status in ("failed", "cancelled")}
    assert len(ended) == 2


def test_a_language_is_said_in_that_language() -> None:
    assert i18n.t("ru", "language-set") == "Язык: русский."
    assert i18n.t("en", "language-set") == "Language: English."
    assert i18n.t("en", "language-button-ru") == i18n.t("ru", "language-button-ru") == "Русский"


# --------------------------------------------------------------------------
# CLDR plurals (CONTRACT §8)
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "phrase"),
    [
        (1, "1 кредит"),
        (2, "2 кредита"),
        (5, "5 кредитов"),
        (11, "11 кредитов"),
        (21, "21 кредит"),
        (22, "22 кредита"),
        (25, "25 кредитов"),
        (111, "111 кредитов"),
        (0, "0 кредитов"),
    ],
)
def test_russian_credits_agree_with_their_number(count: int, phrase: str) -> None:
    assert i18n.credits("ru", count) == phrase


@pytest.mark.parametrize(("count", "phrase"), [(1, "1 credit"), (2, "2 credits"), (21, "21 credits"), (0, "0 credits")])
def test_english_credits_agree_with_their_number(count: int, phrase: str) -> None:
    assert i18n.credits("en", count) == phrase


def test_credits_inside_a_sentence_use_the_same_forms() -> None:
    assert i18n.t("ru", "balance-line", balance=21) == "Ваш баланс: 21 кредит."
    assert i18n.t("ru", "balance-line", balance=2) == "Ваш баланс: 2 кредита."
    assert i18n.t("ru", "balance-line", balance=11) == "Ваш баланс: 11 кредитов."
    assert i18n.t("en", "balance-line", balance=1) == "Your balance: 1 credit."
    assert i18n.t("ru", "payment-credited", credits=50, balance=51) == (
        "Спасибо! Добавили вам 50 кредитов. Ваш баланс: 51 кредит."
    )


def test_other_russian_plurals_are_the_translators() -> None:
    wait = [i18n.t("ru", "refusal-rate-limited", seconds=n) for n in (1, 3, 5, 21)]
    assert [text.rsplit(" ", 2)[-2:] for text in wait] == [
        ["1", "секунду."],
        ["3", "секунды."],
        ["5", "секунд."],
        ["21", "секунду."],
    ]
    assert "до 2\u00a0000 символов" in i18n.t("ru", "help-intro", max_chars=2000)
    edited = [i18n.t("ru", "edit-queued", model="M", pictures=n, cost=1).split(",")[0] for n in (1, 2, 5, 21)]
    assert edited == [
        "Принято! M редактирует вашу картинку",
        "Принято! M редактирует 2 картинки",
        "Принято! M редактирует 5 картинок",
        "Принято! M редактирует 21 картинку",
    ]
    albums = [i18n.t("ru", "edit-album-remembered", pictures=n).split("!")[0] for n in (2, 5, 21)]
    assert albums == ["2 картинки получены", "5 картинок получено", "21 картинка получена"]
    assert i18n.t("ru", "edit-album-trimmed", model="M", max_images=3, sent=4).endswith("первые 3 из 4.")


def test_numbers_are_grouped_the_languages_way() -> None:
    assert i18n.credits("en", 1000) == "1,000 credits"
    assert i18n.credits("ru", 1000) == "1\u00a0000 кредитов"


# --------------------------------------------------------------------------
# Bot API limits on the texts that have them
# --------------------------------------------------------------------------


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_invoice_texts_fit_telegrams_limits(lang: str) -> None:
    for pack in PACKS:
        title = i18n.t(lang, "pack-title", credits=pack.credits)
        description = i18n.t(
            lang, "pack-description-discount", credits=pack.credits, discount=30, base_credits=PACKS[0].credits
        )
        assert 1 <= len(title) <= 32
        assert 1 <= len(description) <= 255


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_menu_descriptions_and_callback_answers_fit_telegrams_limits(lang: str) -> None:
    messages, _ = _entries(lang)
    commands = [key for key in messages if key.startswith("command-")]
    assert sorted(key.removeprefix("command-") for key in commands) == sorted(
        ["start", "balance", "buy", "settings", "language", "history", "promo", "invite", "paysupport", "terms", "help"]
    )
    for key in commands:
        assert 1 <= len(i18n.t(lang, key)) <= 256
    for key in [key for key in messages if key.startswith("callback-")]:
        assert len(i18n.t(lang, key, **_args(messages[key]))) <= 200


# --------------------------------------------------------------------------
# Mistakes in a call
# --------------------------------------------------------------------------


def test_unknown_message_or_language_is_an_error() -> None:
    with pytest.raises(i18n.MessageError):
        i18n.t("en", "no-such-message")
    with pytest.raises(i18n.MessageError):
        i18n.t("de", "balance-line", balance=1)


def test_a_missing_argument_raises_in_strict_mode(strict: None) -> None:
    with pytest.raises(i18n.MessageError, match="balance"):
        i18n.t("ru", "balance-line")


def test_a_missing_argument_is_logged_and_the_gap_shown(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(i18n, "strict", False)  # production's mode (the tests' conftest sets strict)
    with caplog.at_level(logging.ERROR, logger="nanogen.i18n"):
        text = i18n.t("en", "balance-line")
    assert text == "Your balance: balance credits."  # Fluent writes a missing variable's name
    assert [record.__dict__["message_id"] for record in caplog.records] == ["balance-line"]


# --------------------------------------------------------------------------
# Which language (CONTRACT §8)
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("saved", "telegram", "default", "expected"),
    [
        ("ru", "en", "en", "ru"),  # the user's choice wins
        ("en", "ru-RU", "ru", "en"),
        (None, "ru", "en", "ru"),
        (None, "ru-RU", "en", "ru"),
        (None, "RU_ua", "en", "ru"),
        (None, "en-GB", "ru", "en"),
        (None, "de", "ru", "ru"),  # unsupported: DEFAULT_LANGUAGE
        (None, "uk", "en", "en"),
        (None, None, "ru", "ru"),  # missing
        (None, "", "en", "en"),
        ("fr", None, "ru", "ru"),  # a saved value we no longer support
        (None, "rus", "en", "en"),  # not a BCP 47 "ru"
        (None, None, "de", "en"),  # a bad default still gives a language
    ],
)
def test_resolve_language(saved: str | None, telegram: str | None, default: str, expected: str) -> None:
    assert i18n.resolve_language(saved, telegram, default) == expected


# --------------------------------------------------------------------------
# Cold start: Fluent and Babel load on first use only
# --------------------------------------------------------------------------


def test_fluent_and_babel_load_on_first_use_not_at_import() -> None:
    code = (
        "import json, sys\n"
        "import app, chalicelib.handlers.webhook, chalicelib.handlers.worker, chalicelib.i18n as i18n\n"
        "loaded = lambda: sorted(m for m in ('fluent.runtime', 'babel') if m in sys.modules)\n"
        "before = loaded()\n"
        "text = i18n.t('ru', 'balance-line', balance=21)\n"
        "print(json.dumps([before, loaded(), text]))\n"
    )
    env = {"PYTHONPATH": str(ROOT), "AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    before, after, text = json.loads(result.stdout)
    assert before == []
    assert after == ["babel", "fluent.runtime"]
    assert text == "Ваш баланс: 21 кредит."
