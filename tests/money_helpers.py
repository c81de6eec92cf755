"""Small builders shared by the money tests."""

from __future__ import annotations

import hashlib

from chalicelib import money, queries
from chalicelib.config import Settings, load_settings
from chalicelib.model import GenerationOrder, Profile, StartResult

ALICE = Profile(user_id=1001, first_name="Alice", username="alice")
BOB = Profile(user_id=1002, first_name="Bob")


def order(
    prompt: str = "a red fox in the snow", cost: int = 1, model: str = "google/gemini-2.5-flash-image"
) -> GenerationOrder:
    fingerprint = hashlib.sha256(f"{prompt}|{model}|1:1".encode()).hexdigest()
    return GenerationOrder(
        prompt=prompt, model=model, aspect_ratio="1:1", image_urls=(), cost=cost, fingerprint=fingerprint
    )


def settings_with(**env: str) -> Settings:
    """Settings of the current environment with some variables changed."""
    import os

    return load_settings({**os.environ, **env})


def start(
    profile: Profile,
    settings: Settings,
    *,
    key: str | None = None,
    cost: int = 1,
    prompt: str = "a red fox in the snow",
    now: float | None = None,
) -> StartResult:
    return money.start_generation(
        profile, order(prompt, cost), settings, chat_id=profile.user_id, source="api", idempotency_key=key, now=now
    )


def balance(user_id: int) -> int:
    user = queries.get_user(user_id)
    assert user is not None
    return int(user.credits)
