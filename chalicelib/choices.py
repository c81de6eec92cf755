"""A user's choices as they apply: saved language, model and aspect ratio, else the defaults (CONTRACT §7, §8).

One rule for every door: the API's ``/api/user/me`` and generation defaults,
the bot's replies and prompts, and the language stored on each generation
for the worker. The model is one a text prompt can use (a photo's edit model
is the catalogue's pair of it, ``catalogue.edit_model_for``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from chalicelib import catalogue
from chalicelib.config import Settings
from chalicelib.i18n import Language, resolve_language

if TYPE_CHECKING:
    from chalicelib.tables import User


@dataclass(frozen=True)
class Choices:
    language: Language
    model: catalogue.ImageModel
    aspect_ratio: str


def choices_of(user: User | None, settings: Settings, *, language_code: str | None = None) -> Choices:
    """What applies to ``user`` now; ``language_code`` (Telegram's, from the update) wins over the stored one."""
    saved_language = user.language if user is not None else None
    telegram_language = language_code or (user.language_code if user is not None else None)
    # Always a model a text prompt can use: a user who saved an edit model before
    # that was refused gets its paired text model, not a prompt that cannot run.
    model = catalogue.prompt_model_for(user.model if user is not None else None, settings)
    saved_ratio = user.aspect_ratio if user is not None else None
    aspect_ratio = saved_ratio if saved_ratio in model.aspect_ratios and saved_ratio else model.default_aspect_ratio
    return Choices(
        language=resolve_language(saved_language, telegram_language, settings.default_language),
        model=model,
        aspect_ratio=aspect_ratio,
    )
