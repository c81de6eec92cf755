"""The bot's two languages (CONTRACT §8): which one a user gets, and its texts.

Every text lives in a Project Fluent catalogue, ``chalicelib/locales/<lang>.ftl``,
one file per language with the same message ids. The translator writes the
plural forms there; ``fluent.runtime`` picks the form with CLDR's plural rules
(through Babel), so "1 кредит, 2 кредита, 5 кредитов, 21 кредит" needs no rule
in this code.

Fluent and Babel cost ~100 ms of imports and ~10 ms per language for
Babel's locale data, so nothing is loaded when this module is imported: a
language's bundle is built on its first ``t()`` and kept for the life of the
process (README, "Cold start").

Numbers passed to ``t()`` are written the way the language writes them
(``1,000`` in English, ``1 000`` in Russian); pass identifiers such as a
user id or a charge id as ``str``.
"""

from __future__ import annotations

import functools
import gc
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

if TYPE_CHECKING:
    from fluent.runtime import FluentBundle

Language = Literal["ru", "en"]
LANGUAGES: tuple[Language, ...] = ("ru", "en")
FALLBACK_LANGUAGE: Language = "en"
LOCALES_DIR = Path(__file__).resolve().parent / "locales"

# The message that writes a number of credits with its noun; catalogues call it
# as CREDITS($n) (Fluent's terms cannot take a variable as an argument).
CREDITS_MESSAGE = "credits"

# A text that fails to format (a missing argument: a bug) is logged and sent as
# Fluent writes it, with the variable's name in the gap: a reply with a gap beats a
# reply lost to an update that fails on every delivery. Tests set strict mode.
strict = False

_log = logging.getLogger("nanogen.i18n")

Arg = str | int | float


class MessageError(ValueError):
    """A message id or language that the catalogues lack, or (in strict mode) a text that failed to format."""


def supported_language(code: str | None) -> Language | None:
    """``ru`` for "ru", "ru-RU", "RU_ru"...; None for anything else."""
    if not code:
        return None
    primary = code.strip().replace("_", "-").split("-", 1)[0].lower()
    for language in LANGUAGES:
        if primary == language:
            return language
    return None


def resolve_language(saved: str | None, telegram_language_code: str | None, default: str) -> Language:
    """The user's choice, else their Telegram language, else ``default`` (DEFAULT_LANGUAGE)."""
    return (
        supported_language(saved)
        or supported_language(telegram_language_code)
        or supported_language(default)
        or FALLBACK_LANGUAGE
    )


def t(lang: str, message_id: str, /, **args: Arg) -> str:
    """The text ``message_id`` in ``lang`` with ``args`` filled in."""
    text, errors = format_message(lang, message_id, args)
    if errors:
        if strict:
            raise MessageError(f"{lang}/{message_id}: {'; '.join(map(str, errors))}")
        _log.error("message formatted with errors", extra={"message_id": message_id, "language": lang,
                                                           "errors": [str(error) for error in errors]})  # fmt: skip
    return text


def credits(lang: str, count: int) -> str:
    """``count`` with the noun in the right form: "21 кредит", "2 credits"."""
    return t(lang, CREDITS_MESSAGE, count=count)


def format_message(lang: str, message_id: str, args: dict[str, Arg]) -> tuple[str, list[Exception]]:
    """The text and Fluent's formatting errors (for ``t`` and the catalogue tests)."""
    bundle = _bundle(_language(lang))
    if not bundle.has_message(message_id):
        raise MessageError(f"no message {message_id!r} in the {lang} catalogue")
    message = bundle.get_message(message_id)
    if message.value is None:
        raise MessageError(f"message {message_id!r} in the {lang} catalogue has no value")
    text, errors = bundle.format_pattern(message.value, args)
    return str(text), errors


def catalogue_path(lang: str) -> Path:
    return LOCALES_DIR / f"{_language(lang)}.ftl"


def _language(lang: str) -> Language:
    for language in LANGUAGES:
        if lang == language:
            return language
    raise MessageError(f"no catalogue for language {lang!r}; there are {', '.join(LANGUAGES)}")


@functools.cache
def _bundle(lang: Language) -> FluentBundle:
    """Parse the catalogue once per process; a catalogue with a syntax error fails loudly."""
    from fluent.runtime import FluentBundle, FluentResource
    from fluent.syntax.ast import Junk

    source = catalogue_path(lang).read_text(encoding="utf-8")

    def credits_phrase(count: object) -> str:
        text, errors = bundle.format_pattern(bundle.get_message(CREDITS_MESSAGE).value, {"count": count})  # type: ignore[arg-type]
        if errors:
            raise MessageError(f"{lang}/{CREDITS_MESSAGE}: {'; '.join(map(str, errors))}")
        return str(text)

    with _gc_paused():
        resource = FluentResource(source)
        # Telegram shows Unicode bidi isolation marks literally: no isolating.
        # A plain str is a valid function result (the resolver writes it as is).
        functions = cast("dict[str, Any]", {"CREDITS": credits_phrase})
        bundle = FluentBundle([lang], functions=functions, use_isolating=False)
    broken = [item for item in resource.body if isinstance(item, Junk)]
    if broken:
        raise MessageError(f"{catalogue_path(lang).name} does not parse: {(broken[0].content or '')[:200]!r}")
    bundle.add_resource(resource)
    return bundle


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Babel merges ~1,700 small dicts of CLDR data per locale; after the app's
    imports each collection they trigger walks the whole heap, making a 7 ms
    load take 30-70 ms. Nothing here makes cycles, so collect afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
