"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_httpserver import HTTPServer

from tests.edit_helpers import edit_stack
from tests.fakes.telegram import FakeTelegram
from tests.worker_helpers import Stack


@pytest.fixture
def edits(
    stack_env: None, aws: None, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Stack, FakeTelegram]]:
    """The stack for picture edits (a fake Telegram serving files), albums quiet after 1 s, not 3."""
    from chalicelib import photos

    monkeypatch.setattr(photos, "ALBUM_QUIET_SECONDS", 1)
    yield edit_stack(httpserver, monkeypatch)
