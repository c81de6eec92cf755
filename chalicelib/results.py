"""The results bucket: every delivered picture is copied here, under its user."""

from __future__ import annotations

from chalicelib import aws
from chalicelib.config import Settings
from chalicelib.providers.base import GeneratedImage


def result_key(user_id: int, generation_id: str, index: int, extension: str) -> str:
    return f"results/{user_id}/{generation_id}/{index}.{extension}"


def store_images(user_id: int, generation_id: str, images: list[GeneratedImage], settings: Settings) -> list[str]:
    """Upload the pictures and return their keys (provider links expire; ours do not)."""
    s3 = aws.client("s3")
    keys = []
    for index, image in enumerate(images):
        key = result_key(user_id, generation_id, index, image.extension)
        s3.put_object(Bucket=settings.results_bucket, Key=key, Body=image.data, ContentType=image.content_type)
        keys.append(key)
    return keys


def load_images(keys: list[str], settings: Settings) -> list[GeneratedImage]:
    """Read stored pictures back (a delivery retried after the generation completed)."""
    s3 = aws.client("s3")
    images = []
    for key in keys:
        stored = s3.get_object(Bucket=settings.results_bucket, Key=key)
        images.append(GeneratedImage(data=stored["Body"].read(), content_type=stored.get("ContentType", "image/png")))
    return images
