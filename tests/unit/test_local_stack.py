"""`make run`'s banner: ready-to-paste examples, but never a configured secret or a login signed with a real token."""

from __future__ import annotations

import re
import shlex

from chalicelib.auth import validate_init_data
from chalicelib.config import DEV_BOT_TOKEN
from local.stack import DEV_USER, DEV_WEBHOOK_SECRET, _banner

REAL_TOKEN = "7000000001:AAHrealTokenThatMustNeverBePrintedXyz"
REAL_SECRET = "configured-webhook-secret-do-not-print"


def banner_for(**env: str) -> str:
    return _banner(8000, 8001, "http://127.0.0.1:4566", {"TELEGRAM_WEBHOOK_SECRET": DEV_WEBHOOK_SECRET, **env})


def test_with_the_development_defaults_it_shows_the_secret_and_a_working_header() -> None:
    text = banner_for()

    assert f"X-Telegram-Bot-Api-Secret-Token: {DEV_WEBHOOK_SECRET}" in text
    match = re.search(r"^  AUTH=(.+)$", text, re.MULTILINE)
    assert match is not None
    header = shlex.split(match.group(1))[0]
    init_data = validate_init_data(header.removeprefix("Authorization: tma "), DEV_BOT_TOKEN, max_age_seconds=60)
    assert init_data.user.id == DEV_USER["id"]


def test_a_configured_webhook_secret_is_not_shown() -> None:
    text = banner_for(TELEGRAM_WEBHOOK_SECRET=REAL_SECRET)

    assert REAL_SECRET not in text
    assert "TELEGRAM_WEBHOOK_SECRET as configured (not shown)" in text


def test_no_initdata_is_signed_with_a_real_bot_token() -> None:
    text = banner_for(TELEGRAM_BOT_TOKEN=REAL_TOKEN, TELEGRAM_WEBHOOK_SECRET=REAL_SECRET)

    assert REAL_TOKEN not in text and REAL_TOKEN.split(":")[1] not in text
    assert "hash=" not in text and "auth_date=" not in text
    assert "tgWebAppData" not in text  # nor a Mini App link that signs in
    assert "TELEGRAM_BOT_TOKEN is set" in text


def test_the_public_development_defaults_apply_only_without_a_real_token() -> None:
    from local.stack import _base_env

    dry = _base_env({})
    assert (dry["TELEGRAM_WEBHOOK_SECRET"], dry["ADMIN_USER_IDS"]) == (DEV_WEBHOOK_SECRET, str(DEV_USER["id"]))
    real = _base_env({"TELEGRAM_BOT_TOKEN": REAL_TOKEN})
    assert "TELEGRAM_WEBHOOK_SECRET" not in real and "ADMIN_USER_IDS" not in real
    configured = _base_env({"TELEGRAM_BOT_TOKEN": REAL_TOKEN, "TELEGRAM_WEBHOOK_SECRET": REAL_SECRET})
    assert configured["TELEGRAM_WEBHOOK_SECRET"] == REAL_SECRET
