"""What every image provider returns and promises.

The worker only knows ``ImageProvider``: in AWS it is the AIML API client,
locally (no key) the offline provider that draws a preview PNG, so the whole
flow runs without spending money.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

_EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/jpg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
}


@dataclass(frozen=True)
class GeneratedImage:
    """One finished picture. ``data`` stays out of the repr so a log line never dumps megabytes."""

    data: bytes = field(repr=False)
    content_type: str  # "image/png", "image/jpeg", ...

    @property
    def extension(self) -> str:
        """File extension for uploads and storage keys ("png", "jpg", "webp"; "bin" when unknown)."""
        media_type = self.content_type.split(";", 1)[0].strip().lower()
        return _EXTENSIONS.get(media_type, "bin")


class ImageProvider(Protocol):
    """Turns a prompt (and, for edit models, source images) into pictures."""

    name: str  # "aiml" / "offline": recorded with each generation

    def generate(
        self,
        *,
        model: str,
        prompt: str,
        aspect_ratio: str,
        image_urls: Sequence[str],
        deadline: float,
    ) -> list[GeneratedImage]:
        """Return at least one image or raise ``ProviderError``.

        ``deadline`` is a ``time.monotonic()`` value: the call must be over by
        then (the Lambda's remaining time minus a safety margin), so the
        worker can still record the outcome before it is killed.
        """
        ...
