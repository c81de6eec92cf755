"""Lazily created AWS clients: none exists until a request needs it.

Creating clients at import time costs cold-start time and breaks moto's
mocks, so each accessor builds its client on first use and caches it.
``reset_clients`` drops them (tests switch endpoints and mocks).
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any


@cache
def client(service: str) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=2, read_timeout=10, retries={"mode": "standard", "max_attempts": 3})
    if service == "s3":
        # Path-style URLs keep presigned links valid on any endpoint (moto locally).
        config = config.merge(Config(s3={"addressing_style": "path"}, signature_version="s3v4"))
    return boto3.session.Session().client(service, config=config)  # type: ignore[call-overload]


def reset_clients() -> None:
    client.cache_clear()
    queue_url.cache_clear()


@lru_cache(maxsize=8)
def queue_url(queue_name: str) -> str:
    """The URL of a queue by name (deployments pass the URL; locally it is looked up once)."""
    return str(client("sqs").get_queue_url(QueueName=queue_name)["QueueUrl"])
