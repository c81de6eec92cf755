"""One place builds the runtime dependencies; deployed code never imports ``local/``."""

from __future__ import annotations

import ast

from chalicelib import bootstrap
from chalicelib.config import load_settings
from chalicelib.generate import Worker
from local.offline_provider import OfflineProvider
from tests.conftest import ROOT


def test_the_bot_api_client_is_built_once_until_reset() -> None:
    api = bootstrap.bot_api()

    assert bootstrap.bot_api() is api
    bootstrap.reset()
    assert bootstrap.bot_api() is not api


def test_the_worker_is_built_once_and_can_be_swapped_until_reset() -> None:
    configured = bootstrap.worker()
    assert bootstrap.worker() is configured
    assert configured.bot is bootstrap.bot_api()

    other = Worker(settings=configured.settings, provider=OfflineProvider(), bot=configured.bot)
    bootstrap.use_worker(other)
    assert bootstrap.worker() is other
    bootstrap.reset()
    assert bootstrap.worker() is not other


def test_without_an_aiml_key_the_installed_local_provider_draws() -> None:
    provider = bootstrap.build_provider(load_settings({}))  # the tests install the offline one, as make run does

    assert isinstance(provider, OfflineProvider)


def test_nothing_deployed_imports_local() -> None:
    deployed = [ROOT / "app.py", *sorted((ROOT / "chalicelib").rglob("*.py"))]
    offenders = []
    for path in deployed:
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(ROOT)}: {name}" for name in names if name.split(".")[0] == "local"]
    assert offenders == []
