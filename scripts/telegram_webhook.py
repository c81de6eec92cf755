"""Point Telegram at NanoGen's webhook, remove it, or show its state (operator CLI).

    python -m scripts.telegram_webhook set-webhook --url https://<api>/api/telegram/webhook
    python -m scripts.telegram_webhook set-commands
    python -m scripts.telegram_webhook delete-webhook [--drop-pending-updates]
    python -m scripts.telegram_webhook webhook-info

Reads TELEGRAM_BOT_TOKEN, TELEGRAM_WEBHOOK_SECRET and TELEGRAM_API_BASE from
the environment (``chalicelib.config``). It refuses the public development
token, which would only pretend to call Telegram, and never prints the token
or the secret.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from typing import TextIO
from urllib.parse import urlsplit

from chalicelib.config import DEV_BOT_TOKEN, Settings, load_settings
from chalicelib.errors import ConfigurationError, TelegramError
from chalicelib.i18n import LANGUAGES, t
from chalicelib.telegram import BotApi, bot_api_from_settings

# Exactly the update types chalicelib.bot acts on (a successful payment is a message; an edited
# message is answered to send the correction anew).
ALLOWED_UPDATES = ["message", "edited_message", "pre_checkout_query", "callback_query"]
WEBHOOK_PATH = "/api/telegram/webhook"
_TELEGRAM_PORTS = (None, 443, 80, 88, 8443)
_DESCRIPTION = "Point Telegram at NanoGen's webhook, remove it, or show its state."


class UsageError(Exception):
    """The operator asked for something that cannot work; the message says what to fix."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m scripts.telegram_webhook", description=_DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)
    set_webhook = commands.add_parser("set-webhook", help="send Telegram's updates to this URL, with the secret")
    set_webhook.add_argument("--url", required=True, help=f"https URL ending in {WEBHOOK_PATH}")
    set_webhook.add_argument("--drop-pending-updates", action="store_true", help="discard updates not yet delivered")
    set_webhook.add_argument("--max-connections", type=int, default=40, help="1-100 parallel deliveries (default 40)")
    commands.add_parser("set-commands", help="register the command menu in Russian and English (setMyCommands)")
    delete_webhook = commands.add_parser("delete-webhook", help="stop sending updates to the webhook")
    delete_webhook.add_argument("--drop-pending-updates", action="store_true", help="discard updates not yet delivered")
    commands.add_parser("webhook-info", help="show the webhook Telegram has (URL, pending updates, last error)")
    return parser


def main(argv: Sequence[str] | None = None, *, env: Mapping[str, str] | None = None, out: TextIO | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = out or sys.stdout
    try:
        settings = load_settings(env)
        api = _real_bot_api(settings)
        if args.command == "set-webhook":
            _set_webhook(api, settings, args, out)
            _set_commands(api, settings, out)
        elif args.command == "set-commands":
            _set_commands(api, settings, out)
        elif args.command == "delete-webhook":
            api.delete_webhook(drop_pending_updates=args.drop_pending_updates)
            print("Webhook deleted" + (" and pending updates dropped." if args.drop_pending_updates else "."), file=out)
        else:
            print(json.dumps(api.get_webhook_info(), indent=2, sort_keys=True), file=out)
    except (ConfigurationError, UsageError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except TelegramError as error:  # its description is scrubbed of the token by BotApi
        print(f"Telegram refused: {error.description}", file=sys.stderr)
        return 1
    return 0


def _real_bot_api(settings: Settings) -> BotApi:
    if settings.telegram_dry_run or settings.telegram_bot_token == DEV_BOT_TOKEN:
        raise UsageError("TELEGRAM_BOT_TOKEN is not set (the development token cannot talk to Telegram).")
    return bot_api_from_settings(settings)


def _set_webhook(api: BotApi, settings: Settings, args: argparse.Namespace, out: TextIO) -> None:
    secret = settings.telegram_webhook_secret
    if secret is None:
        raise UsageError("TELEGRAM_WEBHOOK_SECRET is not set; without it the webhook refuses every update.")
    url = _check_url(args.url)
    if not 1 <= args.max_connections <= 100:
        raise UsageError("--max-connections must be between 1 and 100.")
    api.set_webhook(
        url,
        secret_token=secret,
        allowed_updates=ALLOWED_UPDATES,
        drop_pending_updates=args.drop_pending_updates,
        max_connections=args.max_connections,
    )
    print(f"Webhook set to {url} for {', '.join(ALLOWED_UPDATES)} updates, with the secret token.", file=out)


def command_menu(lang: str) -> list[dict[str, str]]:
    """The bot's commands (``chalicelib.bot.MENU``) with their descriptions in ``lang``."""
    from chalicelib.bot import MENU

    return [{"command": name, "description": t(lang, f"command-{name}")} for name in MENU]


def _set_commands(api: BotApi, settings: Settings, out: TextIO) -> None:
    """One menu per language (Telegram shows it to users whose app has that language_code),
    and DEFAULT_LANGUAGE's for everyone else."""
    for lang in LANGUAGES:
        api.set_my_commands(command_menu(lang), language_code=lang)
    api.set_my_commands(command_menu(settings.default_language))
    print(f"Command menu set for {', '.join(LANGUAGES)} and, by default, {settings.default_language}.", file=out)


def _check_url(url: str) -> str:
    """Telegram delivers only to https on ports 443, 80, 88 or 8443; the path must be ours."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UsageError(f"--url is not a valid URL: {url!r}") from None
    if parts.scheme != "https" or not parts.hostname:
        raise UsageError("--url must be an https URL (Telegram delivers webhooks over https only).")
    if port not in _TELEGRAM_PORTS:
        raise UsageError("--url must use port 443, 80, 88 or 8443 (the only ports Telegram delivers to).")
    if not parts.path.endswith(WEBHOOK_PATH):
        raise UsageError(f"--url must end in {WEBHOOK_PATH}.")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise UsageError("--url must not carry a query, a fragment or credentials.")
    return url


if __name__ == "__main__":
    raise SystemExit(main())
