"""The operator's webhook CLI, against a local server playing the Bot API."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator

import pytest
from pytest_httpserver import HTTPServer

from chalicelib.config import DEV_BOT_TOKEN
from scripts import telegram_webhook
from tests.conftest import TEST_BOT_TOKEN, TEST_WEBHOOK_SECRET
from tests.fakes.telegram import FakeTelegram

URL = "https://abc123.execute-api.eu-west-1.amazonaws.com/api/api/telegram/webhook"


@pytest.fixture
def fake_telegram(httpserver: HTTPServer) -> Iterator[FakeTelegram]:
    yield FakeTelegram(httpserver)


def run(server: HTTPServer, *argv: str, capsys: pytest.CaptureFixture[str], **env: str | None) -> tuple[int, str]:
    """Run the CLI with the test environment (plus ``env``; None unsets); returns (exit code, all output)."""
    environment = {**os.environ, "TELEGRAM_API_BASE": server.url_for("/").rstrip("/")}
    for name, value in env.items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    out = io.StringIO()
    code = telegram_webhook.main(list(argv), env=environment, out=out)
    captured = capsys.readouterr()
    output = out.getvalue() + captured.out + captured.err
    assert TEST_BOT_TOKEN not in output and TEST_BOT_TOKEN.split(":")[1] not in output
    assert TEST_WEBHOOK_SECRET not in output
    return code, output


def test_set_webhook_sends_the_secret_and_only_the_updates_the_bot_handles(
    httpserver: HTTPServer, fake_telegram: FakeTelegram, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = run(httpserver, "set-webhook", "--url", URL, "--drop-pending-updates", capsys=capsys)

    assert code == 0
    call, *menus = fake_telegram.calls
    assert (call.token, call.method) == (TEST_BOT_TOKEN, "setWebhook")
    assert call.payload == {
        "url": URL,
        "secret_token": TEST_WEBHOOK_SECRET,
        "allowed_updates": ["message", "edited_message", "pre_checkout_query", "callback_query"],
        "drop_pending_updates": True,
        "max_connections": 40,
    }
    assert URL in output
    # set-webhook registers the command menu too
    assert [menu.method for menu in menus] == ["setMyCommands"] * 3


def test_set_commands_registers_the_menu_in_russian_and_english_and_a_default(
    httpserver: HTTPServer, fake_telegram: FakeTelegram, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = run(httpserver, "set-commands", capsys=capsys, DEFAULT_LANGUAGE="ru")

    assert code == 0
    calls = fake_telegram.calls
    assert [call.method for call in calls] == ["setMyCommands"] * 3
    by_language = {call.payload.get("language_code"): call.payload["commands"] for call in calls}
    assert set(by_language) == {"ru", "en", None}
    ru, en = by_language["ru"], by_language["en"]
    names = [command["command"] for command in en]
    assert names == [command["command"] for command in ru]
    assert {"start", "balance", "buy", "settings", "language", "history", "paysupport", "terms", "help"} <= set(names)
    assert {"command": "help", "description": "What I can do"} in en
    assert {"command": "help", "description": "Что я умею"} in ru
    assert by_language[None] == ru  # the default list: DEFAULT_LANGUAGE's
    assert all(1 <= len(command["description"]) <= 256 for command in ru + en)
    assert "ru" in output and "en" in output


def test_delete_webhook_and_webhook_info(
    httpserver: HTTPServer, fake_telegram: FakeTelegram, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(httpserver, "delete-webhook", capsys=capsys)[0] == 0
    assert run(httpserver, "delete-webhook", "--drop-pending-updates", capsys=capsys)[0] == 0
    code, output = run(httpserver, "webhook-info", capsys=capsys)

    assert code == 0
    assert [(call.method, call.payload) for call in fake_telegram.calls] == [
        ("deleteWebhook", {"drop_pending_updates": False}),
        ("deleteWebhook", {"drop_pending_updates": True}),
        ("getWebhookInfo", {}),
    ]
    assert json.loads(output)["url"] == "https://example.com/api/telegram/webhook"


@pytest.mark.parametrize(
    ("argv", "env", "complaint"),
    [
        (["webhook-info"], {"TELEGRAM_BOT_TOKEN": None}, "TELEGRAM_BOT_TOKEN is not set"),
        (["set-webhook", "--url", URL], {"TELEGRAM_BOT_TOKEN": DEV_BOT_TOKEN}, "development token"),
        (["set-webhook", "--url", URL], {"TELEGRAM_WEBHOOK_SECRET": None}, "TELEGRAM_WEBHOOK_SECRET is not set"),
        (["set-webhook", "--url", URL.replace("https", "http")], {}, "https"),
        (["set-webhook", "--url", URL.replace(".com/", ".com:8080/")], {}, "port"),
        (["set-webhook", "--url", URL.removesuffix("/webhook")], {}, "must end in /api/telegram/webhook"),
        (["set-webhook", "--url", URL + "?token=x"], {}, "query"),
        (["set-webhook", "--url", URL, "--max-connections", "0"], {}, "between 1 and 100"),
        (["webhook-info"], {"TELEGRAM_BOT_TOKEN": "not-a-token"}, "does not look like a bot token"),
    ],
    ids=["no-token", "dev-token", "no-secret", "http", "port", "path", "query", "connections", "bad-token"],
)
def test_refuses_what_cannot_work_without_calling_telegram(
    httpserver: HTTPServer,
    fake_telegram: FakeTelegram,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    env: dict[str, str | None],
    complaint: str,
) -> None:
    code, output = run(httpserver, *argv, capsys=capsys, **env)

    assert code == 2
    assert complaint in output
    assert fake_telegram.calls == []


def test_a_telegram_refusal_is_reported_without_the_token(
    httpserver: HTTPServer, fake_telegram: FakeTelegram, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_telegram.refuse_next("setWebhook", 400, "Bad Request: bad webhook: HTTPS url must be provided")

    code, output = run(httpserver, "set-webhook", "--url", URL, capsys=capsys)

    assert code == 1
    assert "bad webhook" in output
