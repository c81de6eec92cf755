"""An image provider that needs no network and no money: it draws the prompt.

Used locally when ``AIML_API_KEY`` is unset, so the whole flow (credits,
queue, worker, Telegram delivery) can be exercised end to end. The picture is
a real PNG in the requested proportions, deterministic for the same inputs,
and says loudly that no AI model was involved.
"""

from __future__ import annotations

import hashlib
import io
import re
import textwrap
import time
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from chalicelib.errors import ProviderError
from chalicelib.providers.base import GeneratedImage, ImageProvider

BANNER = "OFFLINE PREVIEW - no AI model was called"
LONG_SIDE = 1024

_RATIO_RE = re.compile(r"^(\d{1,3}):(\d{1,3})$")
_BANNER_COLOUR = (16, 16, 16)
_TEXT_COLOUR = (255, 255, 255)
_OUTLINE = (0, 0, 0)
# Typefaces with Cyrillic (most prompts are Russian); Pillow's bundled one has none. The first
# found is used: fonts-noto-core comes with make test's Chromium, DejaVu and Liberation with
# most desktops. Pillow's own is the last resort (Cyrillic then draws as boxes).
TYPEFACES = (
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
)


class OfflineProvider(ImageProvider):
    """Draws a gradient (colours from a hash of the prompt), the wrapped prompt and a banner."""

    name = "offline"

    def __init__(self, latency: float = 0.0) -> None:
        self._latency = latency  # seconds; lets benchmarks imitate AIML's slowness

    def generate(
        self,
        *,
        model: str,
        prompt: str,
        aspect_ratio: str,
        image_urls: Sequence[str],
        deadline: float,
    ) -> list[GeneratedImage]:
        width, height = image_size(aspect_ratio)
        if self._latency:
            # Like the real client: never run past the deadline, and say so as a transient failure.
            if time.monotonic() + self._latency > deadline:
                raise ProviderError("no time left for the offline provider's simulated latency", transient=True)
            time.sleep(self._latency)
        png = _draw(width, height, model=model, prompt=prompt, aspect_ratio=aspect_ratio, sources=len(image_urls))
        return [GeneratedImage(data=png, content_type="image/png")]


def image_size(aspect_ratio: str) -> tuple[int, int]:
    """``"16:9"`` -> (1024, 576): the long side is ``LONG_SIDE``. A bad ratio fails like an AIML 400."""
    match = _RATIO_RE.match(aspect_ratio)
    ratio_w, ratio_h = (int(match[1]), int(match[2])) if match else (0, 0)
    if not ratio_w or not ratio_h or max(ratio_w, ratio_h) > 20 * min(ratio_w, ratio_h):
        raise ProviderError(f"invalid aspect_ratio {aspect_ratio!r} (expected W:H)", status=400, transient=False)
    if ratio_w >= ratio_h:
        return LONG_SIDE, max(1, round(LONG_SIDE * ratio_h / ratio_w))
    return max(1, round(LONG_SIDE * ratio_w / ratio_h)), LONG_SIDE


def _draw(width: int, height: int, *, model: str, prompt: str, aspect_ratio: str, sources: int) -> bytes:
    digest = hashlib.sha256(prompt.encode()).digest()
    top, bottom = (digest[0], digest[1], digest[2]), (digest[3], digest[4], digest[5])
    mask = Image.linear_gradient("L").resize((width, height))
    image = Image.composite(Image.new("RGB", (width, height), bottom), Image.new("RGB", (width, height), top), mask)
    draw = ImageDraw.Draw(image)
    short_side = min(width, height)
    margin = max(8, short_side // 32)

    banner_height = max(32, short_side // 10)
    draw.rectangle((0, 0, width, banner_height), fill=_BANNER_COLOUR)
    banner_font = _fitting_font(BANNER, size=banner_height // 2, max_width=width - 2 * margin)
    draw.text((width / 2, banner_height / 2), BANNER, font=banner_font, fill=_TEXT_COLOUR, anchor="mm")

    footer = f"{model} | {aspect_ratio}" + (f" | edit of {sources} image(s)" if sources else "")
    footer_font = _fitting_font(footer, size=max(12, short_side // 36), max_width=width - 2 * margin)
    footer_top = height - margin - int(footer_font.size)
    draw.text((margin, footer_top), footer, font=footer_font, fill=_TEXT_COLOUR, stroke_width=1, stroke_fill=_OUTLINE)

    text_font = _font(max(14, short_side // 18))
    line_height = round(text_font.size * 1.25)
    max_lines = max(1, (footer_top - banner_height - 2 * margin) // line_height)
    chars_per_line = max(8, int((width - 2 * margin) / text_font.getlength("n")))
    lines = textwrap.wrap(prompt, width=chars_per_line) or ["(empty prompt)"]
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: chars_per_line - 1] + "…"
    block_top = banner_height + margin + (footer_top - banner_height - 2 * margin - len(lines) * line_height) // 2
    for index, line in enumerate(lines):
        draw.text(
            (width / 2, block_top + index * line_height),
            line,
            font=text_font,
            fill=_TEXT_COLOUR,
            anchor="ma",
            stroke_width=2,
            stroke_fill=_OUTLINE,
        )

    output = io.BytesIO()
    image.save(output, format="PNG")
    return output.getvalue()


def _fitting_font(text: str, *, size: int, max_width: int) -> ImageFont.FreeTypeFont:
    """The typeface at ``size``, shrunk until ``text`` fits."""
    font = _font(size)
    length = font.getlength(text)
    return _font(max(8, int(size * max_width / length))) if length > max_width else font


def _font(size: int) -> ImageFont.FreeTypeFont:
    path = typeface()
    if path is not None:
        return ImageFont.truetype(path, size=size)
    font = ImageFont.load_default(size=size)
    assert isinstance(font, ImageFont.FreeTypeFont)  # Pillow's wheels bundle FreeType
    return font


@cache
def typeface() -> str | None:
    """The first of ``TYPEFACES`` this machine has, else None (Pillow's bundled font)."""
    return next((path for path in TYPEFACES if Path(path).is_file()), None)
