"""What NanoGen sells: the image models and the Telegram Stars credit packs.

The one place to add a model or change a pack. Model costs come with defaults
here and can be overridden by the operator through ``MODEL_COSTS``
(``Settings.model_costs``) without a deploy of new code.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from chalicelib.config import Settings
from chalicelib.errors import ConfigurationError, InvalidRequest

# The ratios AIML accepts for Google's text-to-image models (EXTERNAL-APIS.md).
_TEXT_TO_IMAGE_RATIOS = ("21:9", "1:1", "4:3", "3:2", "2:3", "5:4", "4:5", "3:4", "16:9", "9:16")
_EDIT_RATIOS = ("1:1", "9:16", "16:9", "3:4", "4:3")


@dataclass(frozen=True)
class ImageModel:
    """One model a user can choose; ``edit`` models take ``image_urls``."""

    id: str
    name: str
    cost: int
    edit: bool
    aspect_ratios: tuple[str, ...]
    max_images: int  # 0 for models that take no input image
    default_aspect_ratio: str = "1:1"

    def to_public(self) -> dict[str, Any]:
        """The shape of ``GET /api/generation/models`` (CONTRACT §5)."""
        return {
            "id": self.id,
            "name": self.name,
            "cost": self.cost,
            "edit": self.edit,
            "aspect_ratios": list(self.aspect_ratios),
            "max_images": self.max_images,
        }


DEFAULT_MODEL_ID = "google/gemini-2.5-flash-image"

# Listed in the order the Mini App shows them; costs are the defaults.
_MODELS: tuple[ImageModel, ...] = (
    ImageModel(
        id=DEFAULT_MODEL_ID,
        name="Nano Banana",
        cost=1,
        edit=False,
        aspect_ratios=_TEXT_TO_IMAGE_RATIOS,
        max_images=0,
    ),
    ImageModel(
        id="google/nano-banana-edit",
        name="Nano Banana Edit",
        cost=1,
        edit=True,
        aspect_ratios=_EDIT_RATIOS,
        max_images=3,
    ),
    ImageModel(
        id="google/nano-banana-pro",
        name="Nano Banana Pro",
        cost=4,
        edit=False,
        aspect_ratios=_TEXT_TO_IMAGE_RATIOS,
        max_images=0,
    ),
)


def models(settings: Settings) -> list[ImageModel]:
    """Every model, with the operator's ``MODEL_COSTS`` applied.

    An id in ``MODEL_COSTS`` that names no model is a typo that would silently
    leave a price unchanged, so it fails loudly instead.
    """
    known = {model.id for model in _MODELS}
    unknown = sorted(set(settings.model_costs) - known)
    if unknown:
        raise ConfigurationError(
            f"MODEL_COSTS names unknown models {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    return [replace(model, cost=settings.model_costs.get(model.id, model.cost)) for model in _MODELS]


def get_model(model_id: str, settings: Settings) -> ImageModel:
    """The model called ``model_id``; an unknown id is the client's mistake (400)."""
    available = models(settings)
    for model in available:
        if model.id == model_id:
            return model
    names = ", ".join(model.id for model in available)
    raise InvalidRequest(f"Unknown model {model_id[:100]!r}. Choose one of: {names}.")


# The model that edits pictures for each model a text prompt can use (CONTRACT
# §7: a photo sent to the bot is edited with the edit model paired with the
# user's model). Until the catalogue has a Pro edit model, Pro's pictures are
# edited by Nano Banana Edit too.
_EDIT_MODEL_OF = {
    DEFAULT_MODEL_ID: "google/nano-banana-edit",
    "google/nano-banana-pro": "google/nano-banana-edit",
}


def prompt_models(settings: Settings) -> list[ImageModel]:
    """The models a text prompt can use, the only ones a user may save: edit models need a picture."""
    return [model for model in models(settings) if not model.edit]


def prompt_model_for(model_id: str | None, settings: Settings) -> ImageModel:
    """The model a text prompt uses when ``model_id`` is the saved one.

    A text-to-image model is itself. An edit model (saved before
    ``PUT /api/user/settings`` refused them) gives the first text model it is
    paired with, the default first, so those users' prompts keep working;
    anything else (none, or a model since withdrawn) the default.
    """
    available = prompt_models(settings)
    for model in available:
        if model.id == model_id:
            return model
    for model in available:
        if _EDIT_MODEL_OF.get(model.id) == model_id:
            return model
    return get_model(DEFAULT_MODEL_ID, settings)


def edit_model_for(model_id: str | None, settings: Settings) -> ImageModel:
    """The edit model paired with the saved ``model_id`` (through ``prompt_model_for``, so an old
    saved edit model edits with itself, and an unknown id gets the default's)."""
    pair = _EDIT_MODEL_OF.get(prompt_model_for(model_id, settings).id, _EDIT_MODEL_OF[DEFAULT_MODEL_ID])
    return get_model(pair, settings)


_PAYLOAD_PREFIX = "nanogen:"


@dataclass(frozen=True)
class CreditPack:
    """Credits sold for Telegram Stars (``XTR``); ``payload`` names it in the invoice."""

    id: str
    credits: int
    stars: int
    title: str  # GET /api/packs; invoices take their texts, in the buyer's language, from the catalogues

    @property
    def payload(self) -> str:
        """The invoice payload Telegram echoes back in pre-checkout and payment."""
        return f"{_PAYLOAD_PREFIX}{self.id}"

    def payload_for(self, buyer_id: int) -> str:
        """A Mini App invoice's payload: the pack and the user it was made for (``nanogen:<pack>:<user>``)."""
        return f"{self.payload}:{buyer_id}"

    def to_public(self) -> dict[str, Any]:
        """The shape of ``GET /api/packs`` (CONTRACT §5)."""
        return {"id": self.id, "credits": self.credits, "stars": self.stars, "title": self.title}


PACKS: tuple[CreditPack, ...] = (
    CreditPack(
        id="pack_10",
        credits=10,
        stars=50,
        title="10 credits",
    ),
    CreditPack(
        id="pack_50",
        credits=50,
        stars=200,
        title="50 credits",
    ),
    CreditPack(
        id="pack_200",
        credits=200,
        stars=700,
        title="200 credits",
    ),
)

_PACKS_BY_PAYLOAD = {pack.payload: pack for pack in PACKS}


_PACKS_BY_ID = {pack.id: pack for pack in PACKS}


def pack_by_payload(payload: str) -> CreditPack | None:
    """The pack an invoice payload names (``/buy``'s or the Mini App's), or None for anything we did not issue."""
    return parse_payload(payload)[0]


def parse_payload(payload: str) -> tuple[CreditPack | None, int | None]:
    """``(pack, buyer)`` of an invoice payload; the buyer only in Mini App invoices (``payload_for``)."""
    pack = _PACKS_BY_PAYLOAD.get(payload)
    if pack is not None:
        return pack, None
    base, sep, buyer = payload.rpartition(":")
    pack = _PACKS_BY_PAYLOAD.get(base) if sep else None
    if pack is None or not buyer.isascii() or not buyer.isdigit() or len(buyer) > 16:
        return None, None
    return pack, int(buyer)


def pack_by_id(pack_id: str) -> CreditPack | None:
    return _PACKS_BY_ID.get(pack_id)
