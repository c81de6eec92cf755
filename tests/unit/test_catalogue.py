"""The catalogue: models (CONTRACT §5 ``GET /api/generation/models``) and Stars credit packs (§7)."""

from __future__ import annotations

import pytest

from chalicelib.catalogue import (
    DEFAULT_MODEL_ID,
    PACKS,
    CreditPack,
    edit_model_for,
    get_model,
    models,
    pack_by_payload,
    prompt_model_for,
    prompt_models,
)
from chalicelib.config import Settings, load_settings
from chalicelib.errors import ConfigurationError, InvalidRequest

TEN_RATIOS = ("21:9", "1:1", "4:3", "3:2", "2:3", "5:4", "4:5", "3:4", "16:9", "9:16")


def settings(**env: str) -> Settings:
    return load_settings(env)


def test_the_three_models_with_their_default_costs() -> None:
    listed = [(m.id, m.name, m.cost, m.edit) for m in models(settings())]

    assert listed == [
        ("google/gemini-2.5-flash-image", "Nano Banana", 1, False),
        ("google/nano-banana-edit", "Nano Banana Edit", 1, True),
        ("google/nano-banana-pro", "Nano Banana Pro", 4, False),
    ]


def test_default_model_is_nano_banana_text_to_image() -> None:
    model = get_model(DEFAULT_MODEL_ID, settings())

    assert model.id == "google/gemini-2.5-flash-image"
    assert not model.edit
    assert model.default_aspect_ratio == "1:1"


def test_text_to_image_models_take_the_ten_ratios_and_no_images() -> None:
    for model_id in ("google/gemini-2.5-flash-image", "google/nano-banana-pro"):
        model = get_model(model_id, settings())
        assert model.aspect_ratios == TEN_RATIOS
        assert model.max_images == 0


def test_edit_model_takes_up_to_three_images_and_five_ratios() -> None:
    model = get_model("google/nano-banana-edit", settings())

    assert model.edit
    assert model.max_images == 3
    assert model.aspect_ratios == ("1:1", "9:16", "16:9", "3:4", "4:3")


def test_every_default_aspect_ratio_is_one_the_model_accepts() -> None:
    for model in models(settings()):
        assert model.default_aspect_ratio in model.aspect_ratios


def test_public_shape_is_exactly_the_contracts() -> None:
    public = get_model("google/nano-banana-edit", settings()).to_public()

    assert public == {
        "id": "google/nano-banana-edit",
        "name": "Nano Banana Edit",
        "cost": 1,
        "edit": True,
        "aspect_ratios": ["1:1", "9:16", "16:9", "3:4", "4:3"],
        "max_images": 3,
    }


def test_model_costs_override_the_defaults() -> None:
    current = settings(MODEL_COSTS="google/nano-banana-pro=7, google/gemini-2.5-flash-image=2")

    costs = {model.id: model.cost for model in models(current)}

    assert costs == {"google/gemini-2.5-flash-image": 2, "google/nano-banana-edit": 1, "google/nano-banana-pro": 7}
    assert get_model("google/nano-banana-pro", current).to_public()["cost"] == 7


def test_unknown_model_in_model_costs_is_a_configuration_error() -> None:
    current = settings(MODEL_COSTS="google/nano-banana-pro=7,google/typo-model=3")

    with pytest.raises(ConfigurationError, match="google/typo-model"):
        models(current)
    with pytest.raises(ConfigurationError):
        get_model(DEFAULT_MODEL_ID, current)


@pytest.mark.parametrize(
    "model_id", ["", "nano-banana", "GOOGLE/GEMINI-2.5-FLASH-IMAGE", "google/nano-banana-pro-edit"]
)
def test_unknown_model_is_an_invalid_request_naming_the_known_ids(model_id: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        get_model(model_id, settings())

    for known in ("google/gemini-2.5-flash-image", "google/nano-banana-edit", "google/nano-banana-pro"):
        assert known in caught.value.message


def test_unknown_model_message_stays_short_for_a_huge_id() -> None:
    with pytest.raises(InvalidRequest) as caught:
        get_model("x" * 10_000, settings())

    assert len(caught.value.message) < 400


# --------------------------------------------------------------------------
# Credit packs
# --------------------------------------------------------------------------


def test_packs_are_the_documented_ones() -> None:
    assert [(p.id, p.credits, p.stars) for p in PACKS] == [
        ("pack_10", 10, 50),
        ("pack_50", 50, 200),
        ("pack_200", 200, 700),
    ]


@pytest.mark.parametrize("pack", PACKS, ids=lambda pack: pack.id)
def test_pack_fits_telegrams_invoice_limits(pack: CreditPack) -> None:
    assert 1 <= len(pack.title) <= 32
    assert 1 <= len(pack.payload.encode()) <= 128
    assert pack.credits > 0
    assert pack.stars > 0


def test_pack_ids_and_payloads_are_unique() -> None:
    assert len({p.id for p in PACKS}) == len(PACKS)
    assert len({p.payload for p in PACKS}) == len(PACKS)


def test_payload_names_the_pack() -> None:
    assert PACKS[0].payload == "nanogen:pack_10"


@pytest.mark.parametrize("pack", PACKS, ids=lambda pack: pack.id)
def test_pack_is_found_by_its_payload(pack: CreditPack) -> None:
    assert pack_by_payload(pack.payload) is pack


@pytest.mark.parametrize(
    "payload", ["", "pack_10", "nanogen:", "nanogen:pack_11", "NANOGEN:PACK_10", "nanogen:pack_10 "]
)
def test_unknown_payload_is_no_pack(payload: str) -> None:
    assert pack_by_payload(payload) is None


def test_bigger_packs_are_cheaper_per_credit() -> None:
    prices = [pack.stars / pack.credits for pack in sorted(PACKS, key=lambda pack: pack.credits)]

    assert prices == sorted(prices, reverse=True)


def test_a_text_prompt_can_use_only_the_text_to_image_models() -> None:
    assert [model.id for model in prompt_models(settings())] == [DEFAULT_MODEL_ID, "google/nano-banana-pro"]


@pytest.mark.parametrize(
    ("saved", "used"),
    [
        (DEFAULT_MODEL_ID, DEFAULT_MODEL_ID),
        ("google/nano-banana-pro", "google/nano-banana-pro"),
        ("google/nano-banana-edit", DEFAULT_MODEL_ID),  # saved before PUT refused edit models: its text pair
        ("nobody/withdrawn", DEFAULT_MODEL_ID),
        (None, DEFAULT_MODEL_ID),
    ],
)
def test_a_saved_model_gives_a_text_model_for_prompts_and_an_edit_model_for_photos(
    saved: str | None, used: str
) -> None:
    current = settings(MODEL_COSTS="google/nano-banana-pro=9")

    prompt_model = prompt_model_for(saved, current)

    assert (prompt_model.id, prompt_model.edit) == (used, False)
    assert prompt_model.cost == get_model(used, current).cost  # the operator's price
    assert edit_model_for(saved, current).id == "google/nano-banana-edit"
