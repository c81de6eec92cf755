"""The one place that builds and caches the runtime dependencies, with one reset for tests.

* ``bot_api()``: the Telegram Bot API client (one connection pool per container);
* ``provider()``: the image provider, built on first use (the dead-letter
  handler never calls it, so a missing AIML key must not stop it from refunding);
* ``worker()``: what runs generation jobs: settings, provider, Bot API client.

Deployed code never imports ``local/``. Without ``AIML_API_KEY`` outside AWS a
provider must be installed with ``install_local_provider``: ``make run``
(``local.worker``) and the tests install the offline one.

``use_worker`` swaps the worker (tests and benchmarks change its provider or
clocks); ``reset`` forgets everything cached after the environment changed.
Imports are lazy: the API Lambda, which never runs a job, does not load the worker.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalicelib.config import Settings, get_settings

if TYPE_CHECKING:
    from chalicelib.generate import Worker
    from chalicelib.providers.base import GeneratedImage, ImageProvider
    from chalicelib.telegram import BotApi

_bot_api: BotApi | None = None
_broadcast_bot_api: BotApi | None = None
_worker: Worker | None = None
_installed_worker: Worker | None = None
_local_provider: Callable[[], ImageProvider] | None = None
# The worker runs ten jobs in threads: each dependency is built once, not once per thread.
_lock = threading.Lock()


def bot_api() -> BotApi:
    """The process-wide Telegram client, built from the settings on first use."""
    global _bot_api
    with _lock:
        if _bot_api is None:
            from chalicelib.telegram import bot_api_from_settings

            _bot_api = bot_api_from_settings(get_settings())
        return _bot_api


def broadcast_bot_api() -> BotApi:
    """A Bot API client that never waits out a 429 itself: broadcasts wait on their shared send clock."""
    global _broadcast_bot_api
    with _lock:
        if _broadcast_bot_api is None:
            from chalicelib.telegram import BotApi

            settings = get_settings()
            _broadcast_bot_api = BotApi(
                settings.telegram_bot_token,
                settings.telegram_api_base,
                dry_run=settings.telegram_dry_run,
                max_retry_after=0,
            )
        return _broadcast_bot_api


def install_local_provider(factory: Callable[[], ImageProvider] | None) -> None:
    """What draws pictures when no AIML_API_KEY is set outside AWS (``make run``, tests); None: nothing."""
    global _local_provider, _worker
    _local_provider = factory
    _worker = None


def build_provider(settings: Settings) -> ImageProvider:
    """AIML when a key is configured; otherwise the installed local provider (never in AWS)."""
    from chalicelib.providers import provider_from_settings

    return provider_from_settings(settings, local=_local_provider)


class _ProviderOnFirstUse:
    """Builds the configured provider when a job first needs it."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._provider: ImageProvider | None = None
        self.name = "aiml" if settings.aiml_api_key else "offline"

    def generate(self, **request: Any) -> list[GeneratedImage]:
        if self._provider is None:
            self._provider = build_provider(self._settings)
            self.name = self._provider.name
        return self._provider.generate(**request)


def worker() -> Worker:
    """The worker jobs run with: the one given to ``use_worker``, else the configured one."""
    global _worker
    if _installed_worker is not None:
        return _installed_worker
    from chalicelib.generate import Worker
    from chalicelib.runtime import ready

    bot = bot_api()
    with _lock:
        if _worker is None:
            settings = ready()
            _worker = Worker(settings=settings, provider=_ProviderOnFirstUse(settings), bot=bot)
        return _worker


def use_worker(worker: Worker | None) -> None:
    """Run jobs with ``worker``; None: the configured one."""
    global _installed_worker, _worker
    _installed_worker = worker
    _worker = None


def reset() -> None:
    """Forget the cached settings, AWS clients, Bot API client, provider and worker (tests change the env).

    The installed local provider stays: it is how this process was started, not a cache.
    """
    global _bot_api, _broadcast_bot_api, _worker, _installed_worker
    from chalicelib import aws, config, referrals

    config.reset_settings()
    aws.reset_clients()
    referrals.reset_cache()
    _bot_api = None
    _broadcast_bot_api = None
    _worker = None
    _installed_worker = None
