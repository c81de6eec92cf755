"""Lazily created AWS clients: none exists until a request needs it.

Creating clients at import time costs cold-start time and breaks moto's
mocks, so each accessor builds its client on first use and caches it. All
clients come from one boto3 session, so botocore loads its service models
once. ``reset_clients`` drops them (tests switch endpoints and mocks).
"""

from __future__ import annotations

import threading
from functools import cache, lru_cache
from typing import Any

_lock = threading.Lock()  # sessions are not thread-safe; the worker runs jobs in threads
_session: Any = None


def client(service: str) -> Any:
    """The client for ``service``, created on first use."""
    with _lock:
        return _client(service)


@cache
def _client(service: str) -> Any:
    global _session
    import boto3
    from botocore.config import Config

    if _session is None:
        _session = boto3.session.Session()
    config = Config(connect_timeout=2, read_timeout=10, retries={"mode": "standard", "max_attempts": 3})
    if service == "s3":
        # Path-style URLs keep presigned links valid on any endpoint (moto locally).
        config = config.merge(Config(s3={"addressing_style": "path"}, signature_version="s3v4"))
    return _session.client(service, config=config)


def reset_clients() -> None:
    global _session
    with _lock:
        _client.cache_clear()
        _session = None
    queue_url.cache_clear()


@lru_cache(maxsize=8)
def queue_url(queue_name: str) -> str:
    """The URL of a queue by name (deployments pass the URL; locally it is looked up once)."""
    return str(client("sqs").get_queue_url(QueueName=queue_name)["QueueUrl"])
