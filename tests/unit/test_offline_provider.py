"""The offline provider draws a real, deterministic PNG in the requested proportions."""

from __future__ import annotations

import io
import time
from types import SimpleNamespace

import pytest
from PIL import Image

from chalicelib.errors import ProviderError
from chalicelib.providers import GeneratedImage, ImageProvider
from local import offline_provider
from local.offline_provider import LONG_SIDE, OfflineProvider

MODEL = "google/gemini-2.5-flash-image"


def draw(
    prompt: str = "a red fox in the snow", aspect_ratio: str = "1:1", provider: ImageProvider | None = None
) -> GeneratedImage:
    provider = provider or OfflineProvider()
    [image] = provider.generate(
        model=MODEL, prompt=prompt, aspect_ratio=aspect_ratio, image_urls=[], deadline=time.monotonic() + 60
    )
    return image


def opened(image: GeneratedImage) -> Image.Image:
    picture = Image.open(io.BytesIO(image.data))
    picture.load()
    return picture


@pytest.mark.parametrize(
    ("aspect_ratio", "size"),
    [
        ("1:1", (1024, 1024)),
        ("16:9", (1024, 576)),
        ("9:16", (576, 1024)),
        ("4:3", (1024, 768)),
        ("3:4", (768, 1024)),
        ("21:9", (1024, 439)),
        ("2:3", (683, 1024)),
    ],
)
def test_draws_a_png_in_the_aspect_ratios_proportions(aspect_ratio: str, size: tuple[int, int]) -> None:
    image = draw(aspect_ratio=aspect_ratio)

    picture = opened(image)
    assert (image.content_type, image.extension, picture.format) == ("image/png", "png", "PNG")
    assert picture.size == size
    assert max(picture.size) == LONG_SIDE


def test_same_inputs_give_the_same_bytes() -> None:
    assert draw("a castle at night").data == draw("a castle at night").data


def test_the_background_colours_come_from_the_prompt() -> None:
    fox, castle = opened(draw("a red fox")), opened(draw("a castle at night"))
    below_the_banner = (5, fox.height // 2)  # left edge: gradient, no text

    assert fox.getpixel(below_the_banner) != castle.getpixel(below_the_banner)


def test_the_preview_banner_is_drawn_across_the_top() -> None:
    picture = opened(draw(aspect_ratio="16:9")).convert("RGB")

    assert picture.getpixel((2, 2)) == (16, 16, 16)  # the banner's dark band
    band = picture.crop((0, 0, picture.width, 40))
    assert (255, 255, 255) in {colour for _, colour in band.getcolors(maxcolors=1 << 16) or []}  # its white text


def test_a_very_long_prompt_still_renders() -> None:
    assert opened(draw("lorem ipsum " * 500, aspect_ratio="21:9")).size == (1024, 439)


@pytest.mark.parametrize("aspect_ratio", ["square", "0:1", "16x9", "1:100", ""])
def test_a_bad_aspect_ratio_fails_like_an_aiml_400(aspect_ratio: str) -> None:
    with pytest.raises(ProviderError) as raised:
        draw(aspect_ratio=aspect_ratio)

    assert (raised.value.status, raised.value.transient) == (400, False)


def test_latency_is_simulated() -> None:
    started = time.monotonic()

    draw(provider=OfflineProvider(latency=0.05))

    assert time.monotonic() - started >= 0.05


def test_latency_past_the_deadline_fails_transiently_without_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    # "Without waiting" is no sleep at all: measured as under 1 s of wall time, it failed whenever a
    # busy machine stalled the test for a second.
    slept: list[float] = []
    monkeypatch.setattr(offline_provider, "time", SimpleNamespace(monotonic=time.monotonic, sleep=slept.append))

    with pytest.raises(ProviderError, match="no time left") as raised:
        OfflineProvider(latency=30).generate(
            model=MODEL, prompt="x", aspect_ratio="1:1", image_urls=[], deadline=time.monotonic() + 1
        )

    assert raised.value.transient is True
    assert slept == []


def test_it_names_itself_offline() -> None:
    assert OfflineProvider().name == "offline"


def test_russian_prompts_are_drawn_in_letters_not_boxes() -> None:
    from local import offline_provider

    # The fonts come with make test's Chromium (fonts-noto-core); Pillow's bundled one has no Cyrillic.
    assert offline_provider.typeface() is not None
    font = offline_provider._font(48)
    shapes = {bytes(font.getmask(letter)) for letter in "ЖФЯЙ"}
    assert len(shapes) == 4  # a font without Cyrillic draws every one as the same missing-glyph box
    assert opened(draw("Кот в сапогах на Луне")).size == (LONG_SIDE, LONG_SIDE)


def test_without_any_typeface_it_falls_back_to_pillows_own(monkeypatch: pytest.MonkeyPatch) -> None:
    from local import offline_provider

    monkeypatch.setattr(offline_provider, "TYPEFACES", ("/nonexistent/Font.ttf",))
    offline_provider.typeface.cache_clear()
    try:
        assert offline_provider.typeface() is None
        assert opened(draw("a fox")).size == (LONG_SIDE, LONG_SIDE)
    finally:
        offline_provider.typeface.cache_clear()
