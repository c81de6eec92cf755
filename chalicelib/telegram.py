"""The one Telegram Bot API client, shared by the webhook and the worker (built once by ``chalicelib.bootstrap``).

Two rules shape it. The bot token is part of every URL (``/bot<token>/...``)
and must never reach a log line, an exception or a repr, so transport errors
are rewritten with the token scrubbed. And with the local development token
(``dry_run``) nothing is sent: calls are logged and answered with plausible
fake results, so the bot runs without Telegram.
"""

from __future__ import annotations

import itertools
import json
import logging
import mimetypes
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

from chalicelib.config import Settings
from chalicelib.errors import TelegramError
from chalicelib.observability import logger

MESSAGE_LIMIT = 4096
# What ``getMe`` answers in a dry run (``make run`` without a token): referral links still look real.
DRY_RUN_BOT_USERNAME = "nanogen_local_bot"
CAPTION_LIMIT = 1024
CALLBACK_ANSWER_LIMIT = 200
CALLBACK_DATA_BYTES = 64  # Telegram's limit on an inline button's callback_data

# 429s waited out inside one call; after that the caller decides (retry_after is on the error).
_MAX_RATE_LIMIT_RETRIES = 2
# Secrets a dry-run log line must not show.
_SECRET_FIELDS = frozenset({"secret_token"})
# Any bot token in a URL path, whoever logs it (urllib3 logs request lines at DEBUG).
_TOKEN_IN_PATH = re.compile(r"/bot\d+(?::|%3A)[A-Za-z0-9_-]+", re.IGNORECASE)
# Descriptions of a 400 that mean "this photo will not go through as a photo": send it as a document.
_PHOTO_REFUSALS = (
    "PHOTO_INVALID_DIMENSIONS",
    "IMAGE_PROCESS_FAILED",
    "PHOTO_SAVE_FILE_INVALID",
    "PHOTO_EXT_INVALID",
    "WRONG FILE",
    "REQUEST ENTITY TOO LARGE",
)

FileField = tuple[str, bytes]  # (file name, content)
# What getFile answers as file_path ("photos/file_12.jpg", "documents/file_3.png").
_FILE_PATH_RE = re.compile(r"[A-Za-z0-9_.-]{1,128}(?:/[A-Za-z0-9_.-]{1,128}){0,3}")


class BotApi:
    """Calls ``POST {base}/bot<token>/<method>`` and returns ``result`` or raises ``TelegramError``."""

    def __init__(
        self,
        token: str,
        base_url: str,
        *,
        dry_run: bool = False,
        session: requests.Session | None = None,
        connect_timeout: float = 3.05,
        read_timeout: float = 15.0,
        max_retry_after: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._token = token
        self._base_url = base_url.rstrip("/")
        self.dry_run = dry_run
        self._session = session or requests.Session()
        self._timeout = (connect_timeout, read_timeout)
        self._max_retry_after = max_retry_after
        self._sleep = sleep
        self._fake_message_ids = itertools.count(1)
        _scrub_urllib3_logs()

    def __repr__(self) -> str:
        return f"BotApi(base_url={self._base_url!r}, dry_run={self.dry_run})"

    # -- the generic call --------------------------------------------------

    def call(
        self, method: str, payload: Mapping[str, Any] | None = None, *, files: Mapping[str, FileField] | None = None
    ) -> Any:
        """Call ``method``; ``files`` makes it a multipart upload (field name -> (file name, bytes))."""
        fields = {key: value for key, value in (payload or {}).items() if value is not None}
        if self.dry_run:
            return self._dry_run(method, fields, files or {})
        waits = 0
        while True:
            try:
                return self._post(method, fields, files)
            except TelegramError as error:
                wait = error.retry_after
                if error.error_code != 429 or wait is None or wait > self._max_retry_after:
                    raise
                if waits == _MAX_RATE_LIMIT_RETRIES:
                    raise  # still limited after waiting: the caller decides (retry_after is on the error)
                waits += 1
                logger.warning("Telegram %s rate limited, waiting %s s", method, wait)
                self._sleep(wait)

    def _post(self, method: str, fields: Mapping[str, Any], files: Mapping[str, FileField] | None) -> Any:
        url = f"{self._base_url}/bot{self._token}/{method}"
        if files:
            request: dict[str, Any] = {
                "data": {key: _form_value(value) for key, value in fields.items()},
                "files": {
                    name: (filename, content, mimetypes.guess_type(filename)[0] or "application/octet-stream")
                    for name, (filename, content) in files.items()
                },
            }
        else:
            request = {"json": fields}
        started = time.monotonic()
        failure: str | None = None
        try:
            response = self._session.post(url, timeout=self._timeout, **request)
        except requests.Timeout:
            failure = f"{method} timed out"
        except requests.RequestException as exc:
            failure = f"{method} failed: {type(exc).__name__}: {exc}"
        latency_ms = round((time.monotonic() - started) * 1000)
        if failure is not None:
            # Raised outside the except block so the requests exception (URL and token) is not chained.
            logger.warning("Telegram %s", self._scrub(failure), extra={"latency_ms": latency_ms})
            raise TelegramError(self._scrub(failure))
        return self._result(method, response, latency_ms)

    def _result(self, method: str, response: requests.Response, latency_ms: int) -> Any:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            # A proxy's HTML error page: keep the HTTP status so callers can still classify it (413, 502).
            code = None if response.ok else response.status_code
            logger.warning("Telegram %s answered HTTP %s without JSON", method, response.status_code)
            raise TelegramError(f"{method}: HTTP {response.status_code} with a non-JSON body", error_code=code)
        if body.get("ok") is True:
            logger.debug("Telegram %s ok", method, extra={"latency_ms": latency_ms})
            return body.get("result")
        parameters = body.get("parameters")
        retry_after = parameters.get("retry_after") if isinstance(parameters, dict) else None
        error = TelegramError(
            self._scrub(str(body.get("description") or "no description")),
            error_code=body.get("error_code") or response.status_code,
            retry_after=retry_after if isinstance(retry_after, int) else None,
        )
        logger.warning(
            "Telegram %s refused: %s",
            method,
            error.description,
            extra={"error_code": error.error_code, "retry_after": error.retry_after, "latency_ms": latency_ms},
        )
        raise error

    def _dry_run(self, method: str, fields: Mapping[str, Any], files: Mapping[str, FileField]) -> Any:
        logger.info(
            "Telegram dry run: %s not sent",
            method,
            extra={
                "telegram_method": method,
                "payload": {key: "<redacted>" if key in _SECRET_FIELDS else value for key, value in fields.items()},
                "files": {name: {"filename": file[0], "bytes": len(file[1])} for name, file in files.items()},
            },
        )
        if method.startswith("send"):
            message: dict[str, Any] = {
                "message_id": next(self._fake_message_ids),
                "date": int(time.time()),
                "chat": {"id": fields.get("chat_id")},
            }
            message.update({key: fields[key] for key in ("text", "caption") if key in fields})
            return message
        if method == "getWebhookInfo":
            return {"url": "", "has_custom_certificate": False, "pending_update_count": 0}
        if method == "getMe":
            return {"id": int(self._token.split(":")[0]), "is_bot": True, "username": DRY_RUN_BOT_USERNAME}
        if method == "createInvoiceLink":
            return f"https://t.me/$dry-run-invoice-{next(self._fake_message_ids)}"
        return True

    def _scrub(self, text: str) -> str:
        return _TOKEN_IN_PATH.sub("/bot<token>", text).replace(self._token, "<token>")

    # -- the methods NanoGen uses -------------------------------------------

    def send_message(
        self,
        chat_id: int | str,
        text: str,
        *,
        reply_markup: Mapping[str, Any] | None = None,
        parse_mode: str | None = None,
        reply_to_message_id: int | None = None,
    ) -> dict[str, Any]:
        """Send ``text`` (cut to 4096). A reply still goes out if the original message is gone."""
        reply_parameters = (
            {"message_id": reply_to_message_id, "allow_sending_without_reply": True}
            if reply_to_message_id is not None
            else None
        )
        payload = {
            "chat_id": chat_id,
            "text": truncate(text, MESSAGE_LIMIT),
            "parse_mode": parse_mode,
            "reply_markup": reply_markup,
            "reply_parameters": reply_parameters,
        }
        result: dict[str, Any] = self.call("sendMessage", payload)
        return result

    def send_photo(
        self,
        chat_id: int | str,
        photo: bytes,
        *,
        filename: str = "image.png",
        caption: str | None = None,
        reply_markup: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Upload ``photo``. On ``photo_refused(error)`` send it with ``send_document`` instead."""
        payload = {"chat_id": chat_id, "caption": _caption(caption), "reply_markup": reply_markup}
        result: dict[str, Any] = self.call("sendPhoto", payload, files={"photo": (filename, photo)})
        return result

    def send_document(
        self,
        chat_id: int | str,
        document: bytes,
        *,
        filename: str,
        caption: str | None = None,
        reply_markup: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Upload ``document`` as a file: full quality, and no photo size rules."""
        payload = {"chat_id": chat_id, "caption": _caption(caption), "reply_markup": reply_markup}
        result: dict[str, Any] = self.call("sendDocument", payload, files={"document": (filename, document)})
        return result

    def edit_message_text(
        self, chat_id: int | str, message_id: int, text: str, *, reply_markup: Mapping[str, Any] | None = None
    ) -> Any:
        """Replace the text (and inline keyboard) of a message the bot sent."""
        payload = {
            "chat_id": chat_id,
            "message_id": message_id,
            "text": truncate(text, MESSAGE_LIMIT),
            "reply_markup": reply_markup,
        }
        return self.call("editMessageText", payload)

    def answer_callback_query(
        self, callback_query_id: str, text: str | None = None, *, show_alert: bool = False
    ) -> bool:
        """Stop the button's spinner; ``text`` (up to 200 characters) shows as a notice."""
        payload = {
            "callback_query_id": callback_query_id,
            "text": truncate(text, CALLBACK_ANSWER_LIMIT) if text else None,
            "show_alert": show_alert or None,
        }
        return bool(self.call("answerCallbackQuery", payload))

    def set_my_commands(self, commands: list[dict[str, str]], *, language_code: str | None = None) -> bool:
        """The command menu for users of ``language_code`` (None: everyone without a list of their own)."""
        return bool(self.call("setMyCommands", {"commands": commands, "language_code": language_code}))

    def get_file(self, file_id: str) -> dict[str, Any]:
        """``getFile``: ``{"file_id", "file_unique_id", "file_size"?, "file_path"?}``."""
        result: dict[str, Any] = self.call("getFile", {"file_id": file_id})
        return result

    def download_file(self, file_path: str, *, max_bytes: int, max_seconds: float = 8.0) -> bytes:
        """The file ``getFile`` named, at most ``max_bytes`` (a larger one raises ``TelegramError`` 413).

        The whole download must end within ``max_seconds`` (the webhook's
        Lambda has 15 s in all; a timeout only lets Telegram re-send).

        Its URL (``/file/bot<token>/<file_path>``) carries the token: it is
        built here, used for this one GET and never logged, returned or
        raised (errors name only the kind of failure).
        """
        if self.dry_run:
            raise TelegramError("files cannot be downloaded with the development token (dry run)")
        if not _FILE_PATH_RE.fullmatch(file_path) or ".." in file_path:
            raise TelegramError("getFile answered an unexpected file_path")
        failure: str | None = None
        code: int | None = None
        data = bytearray()
        started = time.monotonic()
        try:
            url = f"{self._base_url}/file/bot{self._token}/{file_path}"
            with self._session.get(url, timeout=self._timeout, stream=True, allow_redirects=False) as response:
                if response.status_code != 200:
                    failure, code = f"file download answered HTTP {response.status_code}", response.status_code
                else:
                    for chunk in response.iter_content(chunk_size=65536):
                        data.extend(chunk)
                        if len(data) > max_bytes:
                            failure, code = f"file is larger than {max_bytes} bytes", 413
                            break
                        if time.monotonic() - started > max_seconds:
                            failure = f"file download took longer than {max_seconds:.0f} s"
                            break
        except requests.Timeout:
            failure = "file download timed out"
        except requests.RequestException as exc:
            failure = f"file download failed: {type(exc).__name__}"
        latency_ms = round((time.monotonic() - started) * 1000)
        if failure is not None:
            logger.warning("Telegram %s", failure, extra={"latency_ms": latency_ms})
            raise TelegramError(failure, error_code=code)
        logger.debug("Telegram file downloaded", extra={"latency_ms": latency_ms, "bytes": len(data)})
        return bytes(data)

    def send_invoice(
        self, chat_id: int | str, *, title: str, description: str, payload: str, amount_stars: int, label: str
    ) -> dict[str, Any]:
        """A Telegram Stars invoice: currency XTR, empty provider token, exactly one price."""
        fields = {
            "chat_id": chat_id,
            "title": title,
            "description": description,
            "payload": payload,
            "provider_token": "",
            "currency": "XTR",
            "prices": [{"label": label, "amount": amount_stars}],
        }
        result: dict[str, Any] = self.call("sendInvoice", fields)
        return result

    def create_invoice_link(self, *, title: str, description: str, payload: str, amount_stars: int, label: str) -> str:
        """A Telegram Stars invoice link for ``Telegram.WebApp.openInvoice`` (same fields as ``sendInvoice``)."""
        fields = {
            "title": title,
            "description": description,
            "payload": payload,
            "provider_token": "",
            "currency": "XTR",
            "prices": [{"label": label, "amount": amount_stars}],
        }
        link = self.call("createInvoiceLink", fields)
        if not isinstance(link, str):
            raise TelegramError("createInvoiceLink answered no link")
        return link

    def get_me(self) -> dict[str, Any]:
        result: dict[str, Any] = self.call("getMe")
        return result

    def answer_pre_checkout_query(self, pre_checkout_query_id: str, ok: bool, error_message: str | None = None) -> bool:
        """Must happen within 10 s of the query; Telegram requires a message when ``ok`` is false."""
        if not ok and not error_message:
            error_message = "The payment could not be accepted. Please try again later."
        payload = {"pre_checkout_query_id": pre_checkout_query_id, "ok": ok, "error_message": error_message}
        return bool(self.call("answerPreCheckoutQuery", payload))

    def refund_star_payment(self, user_id: int, telegram_payment_charge_id: str) -> bool:
        payload = {"user_id": user_id, "telegram_payment_charge_id": telegram_payment_charge_id}
        return bool(self.call("refundStarPayment", payload))

    def set_webhook(
        self,
        url: str,
        *,
        secret_token: str,
        allowed_updates: list[str],
        drop_pending_updates: bool = False,
        max_connections: int = 40,
    ) -> bool:
        payload = {
            "url": url,
            "secret_token": secret_token,
            "allowed_updates": allowed_updates,
            "drop_pending_updates": drop_pending_updates,
            "max_connections": max_connections,
        }
        return bool(self.call("setWebhook", payload))

    def delete_webhook(self, *, drop_pending_updates: bool = False) -> bool:
        return bool(self.call("deleteWebhook", {"drop_pending_updates": drop_pending_updates}))

    def get_webhook_info(self) -> dict[str, Any]:
        result: dict[str, Any] = self.call("getWebhookInfo")
        return result


def photo_refused(error: TelegramError) -> bool:
    """True when Telegram will not take this upload as a photo, so ``sendDocument`` should be tried."""
    if error.error_code == 413:
        return True
    description = error.description.upper()
    return error.error_code == 400 and any(marker in description for marker in _PHOTO_REFUSALS)


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` UTF-16 code units (how Telegram counts), ending with an ellipsis."""
    if _utf16_length(text) <= limit:
        return text
    kept, used = [], 1  # the ellipsis takes one unit
    for char in text:
        used += _utf16_length(char)
        if used > limit:
            break
        kept.append(char)
    return "".join(kept) + "…"


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _caption(caption: str | None) -> str | None:
    return truncate(caption, CAPTION_LIMIT) if caption else None


def _form_value(value: Any) -> str:
    """Multipart fields are text: nested objects (reply_markup, ...) go as JSON, booleans as true/false."""
    if isinstance(value, (dict, list, bool)):
        return json.dumps(value)
    return str(value)


class _TokenScrubber(logging.Filter):
    """Rewrites ``/bot<token>/`` in urllib3's DEBUG request lines before any handler sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            message = record.getMessage()
            record.msg, record.args = message, None
        if isinstance(record.msg, str):
            record.msg = _TOKEN_IN_PATH.sub("/bot<token>", record.msg)
        return True


def _scrub_urllib3_logs() -> None:
    urllib3_logger = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(existing, _TokenScrubber) for existing in urllib3_logger.filters):
        urllib3_logger.addFilter(_TokenScrubber())


def bot_api_from_settings(settings: Settings) -> BotApi:
    return BotApi(settings.telegram_bot_token, settings.telegram_api_base, dry_run=settings.telegram_dry_run)
