"""The Bot API client against a local server speaking the Bot API's wire format."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from chalicelib import bootstrap
from chalicelib.config import DEV_BOT_TOKEN, reset_settings
from chalicelib.errors import TelegramError
from chalicelib.telegram import (
    CAPTION_LIMIT,
    MESSAGE_LIMIT,
    BotApi,
    photo_refused,
    truncate,
)

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
BOT = f"/bot{TOKEN}"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def make_api(server: HTTPServer, sleeps: list[float] | None = None, **options: Any) -> BotApi:
    record = sleeps if sleeps is not None else []
    return BotApi(TOKEN, server.url_for("/"), sleep=record.append, **options)


def ok(result: Any) -> dict[str, Any]:
    return {"ok": True, "result": result}


def refused(code: int, description: str, retry_after: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return body


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def assert_no_token(error: TelegramError, caplog: pytest.LogCaptureFixture) -> None:
    for text in (str(error), repr(error), error.description):
        assert TOKEN not in text
    # Not chained to the requests exception, whose text holds the URL.
    assert error.__cause__ is None and error.__context__ is None
    for record in our_records(caplog):
        assert TOKEN not in record.getMessage()
        assert TOKEN not in repr(vars(record))


def our_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """Everything but the fake server's own access log, which of course sees the real path."""
    return [record for record in caplog.records if not record.name.startswith("werkzeug")]


class Capture:
    """A handler that keeps what a multipart request carried (the log's requests are read once)."""

    def __init__(self, result: Any) -> None:
        self.result = result
        self.form: dict[str, str] = {}
        self.files: dict[str, tuple[str | None, bytes, str]] = {}
        self.content_type = ""

    def __call__(self, request: Request) -> Response:
        self.content_type = request.content_type or ""
        self.form = dict(request.form)
        self.files = {name: (file.filename, file.read(), file.mimetype) for name, file in request.files.items()}
        return Response(json.dumps(ok(self.result)), content_type="application/json")


# -- results and errors -----------------------------------------------------------


def test_send_message_posts_json_to_the_bot_path_and_returns_the_result(httpserver: HTTPServer) -> None:
    keyboard = {"inline_keyboard": [[{"text": "Open", "url": "https://t.me/x"}]]}
    message = {"message_id": 77, "chat": {"id": 42}, "text": "hi"}
    httpserver.expect_request(
        f"{BOT}/sendMessage",
        method="POST",
        json={
            "chat_id": 42,
            "text": "hi",
            "parse_mode": "HTML",
            "reply_markup": keyboard,
            "reply_parameters": {"message_id": 5, "allow_sending_without_reply": True},
        },
    ).respond_with_json(ok(message))

    result = make_api(httpserver).send_message(
        42, "hi", reply_markup=keyboard, parse_mode="HTML", reply_to_message_id=5
    )

    assert result == message


def test_unset_options_are_not_sent(httpserver: HTTPServer) -> None:
    httpserver.expect_request(f"{BOT}/sendMessage", json={"chat_id": 42, "text": "plain"}).respond_with_json(
        ok({"message_id": 1})
    )

    assert make_api(httpserver).send_message(42, "plain") == {"message_id": 1}


@pytest.mark.parametrize(
    ("status", "description"),
    [(400, "Bad Request: chat not found"), (403, "Forbidden: bot was blocked by the user")],
)
def test_ok_false_becomes_a_telegram_error(httpserver: HTTPServer, status: int, description: str) -> None:
    httpserver.expect_request(f"{BOT}/sendMessage").respond_with_json(refused(status, description), status=status)

    with pytest.raises(TelegramError) as raised:
        make_api(httpserver).send_message(42, "hi")

    error = raised.value
    assert (error.error_code, error.description, error.retry_after) == (status, description, None)
    assert description in str(error)
    assert len(httpserver.log) == 1


def test_a_short_429_is_waited_out_then_retried(httpserver: HTTPServer) -> None:
    sleeps: list[float] = []
    httpserver.expect_ordered_request(f"{BOT}/sendMessage").respond_with_json(
        refused(429, "Too Many Requests: retry after 2", retry_after=2), status=429
    )
    httpserver.expect_ordered_request(f"{BOT}/sendMessage").respond_with_json(ok({"message_id": 9}))

    result = make_api(httpserver, sleeps, max_retry_after=5.0).send_message(42, "hi")

    assert result == {"message_id": 9}
    assert sleeps == [2]
    assert len(httpserver.log) == 2


def test_a_long_429_is_raised_with_retry_after_for_the_caller(httpserver: HTTPServer) -> None:
    sleeps: list[float] = []
    httpserver.expect_request(f"{BOT}/sendMessage").respond_with_json(
        refused(429, "Too Many Requests: retry after 30", retry_after=30), status=429
    )

    with pytest.raises(TelegramError) as raised:
        make_api(httpserver, sleeps, max_retry_after=5.0).send_message(42, "hi")

    assert (raised.value.error_code, raised.value.retry_after) == (429, 30)
    assert sleeps == []
    assert len(httpserver.log) == 1


def test_repeated_short_429s_are_waited_out_a_bounded_number_of_times(httpserver: HTTPServer) -> None:
    sleeps: list[float] = []
    httpserver.expect_request(f"{BOT}/sendMessage").respond_with_json(
        refused(429, "Too Many Requests: retry after 1", retry_after=1), status=429
    )

    with pytest.raises(TelegramError) as raised:
        make_api(httpserver, sleeps).send_message(42, "hi")

    assert raised.value.retry_after == 1
    assert sleeps == [1, 1]
    assert len(httpserver.log) == 3


@pytest.mark.parametrize(("status", "error_code"), [(502, 502), (413, 413), (200, None)])
def test_a_body_that_is_not_json_is_an_error(httpserver: HTTPServer, status: int, error_code: int | None) -> None:
    httpserver.expect_request(f"{BOT}/sendPhoto").respond_with_data("<html>nginx</html>", status=status)

    with pytest.raises(TelegramError, match="non-JSON") as raised:
        make_api(httpserver).send_photo(42, PNG)

    assert raised.value.error_code == error_code


# -- uploads ----------------------------------------------------------------------


def test_send_photo_uploads_multipart_with_the_right_fields(httpserver: HTTPServer) -> None:
    capture = Capture({"message_id": 3, "photo": [{"file_id": "AgAD"}]})
    httpserver.expect_request(f"{BOT}/sendPhoto", method="POST").respond_with_handler(capture)

    result = make_api(httpserver).send_photo(42, PNG, filename="fox.png", caption="A red fox")

    assert result["message_id"] == 3
    assert capture.content_type.startswith("multipart/form-data")
    assert capture.form == {"chat_id": "42", "caption": "A red fox"}
    assert capture.files == {"photo": ("fox.png", PNG, "image/png")}


def test_send_document_uploads_the_file_as_document(httpserver: HTTPServer) -> None:
    capture = Capture({"message_id": 4})
    httpserver.expect_request(f"{BOT}/sendDocument", method="POST").respond_with_handler(capture)

    make_api(httpserver).send_document(-100123, PNG, filename="fox.png")

    assert capture.form == {"chat_id": "-100123"}
    assert capture.files == {"document": ("fox.png", PNG, "image/png")}


def test_multipart_encodes_nested_fields_as_json(httpserver: HTTPServer) -> None:
    capture = Capture({"message_id": 5})
    httpserver.expect_request(f"{BOT}/sendPhoto").respond_with_handler(capture)
    keyboard = {"inline_keyboard": [[{"text": "Again", "callback_data": "again:1"}]]}

    make_api(httpserver).call(
        "sendPhoto",
        {"chat_id": 42, "reply_markup": keyboard, "has_spoiler": True, "caption": None},
        files={"photo": ("a.jpg", b"\xff\xd8\xff")},
    )

    assert json.loads(capture.form["reply_markup"]) == keyboard
    assert capture.form["has_spoiler"] == "true"
    assert "caption" not in capture.form
    assert capture.files["photo"] == ("a.jpg", b"\xff\xd8\xff", "image/jpeg")


def test_captions_and_texts_are_cut_to_telegram_limits(httpserver: HTTPServer) -> None:
    capture = Capture({"message_id": 6})
    httpserver.expect_request(f"{BOT}/sendPhoto").respond_with_handler(capture)
    httpserver.expect_request(f"{BOT}/sendMessage").respond_with_json(ok({"message_id": 7}))
    api = make_api(httpserver)

    api.send_photo(42, PNG, caption="c" * 2000)
    api.send_message(42, "t" * 5000)

    caption = capture.form["caption"]
    assert len(caption) == CAPTION_LIMIT and caption.endswith("…")
    text = json.loads(httpserver.log[1][0].get_data())["text"]
    assert len(text) == MESSAGE_LIMIT and text.endswith("…")


def test_truncation_counts_utf16_units_and_keeps_surrogate_pairs_whole() -> None:
    cut = truncate("😀" * 600, CAPTION_LIMIT)  # each emoji is two UTF-16 units

    assert len(cut.encode("utf-16-le")) // 2 <= CAPTION_LIMIT
    assert cut == "😀" * 511 + "…"
    assert truncate("short", CAPTION_LIMIT) == "short"


# -- payments and webhook -----------------------------------------------------------


def test_send_invoice_asks_for_stars(httpserver: HTTPServer) -> None:
    httpserver.expect_request(
        f"{BOT}/sendInvoice",
        json={
            "chat_id": 42,
            "title": "100 credits",
            "description": "100 image generations",
            "payload": "pack:100",
            "provider_token": "",
            "currency": "XTR",
            "prices": [{"label": "100 credits", "amount": 50}],
        },
    ).respond_with_json(ok({"message_id": 8}))

    result = make_api(httpserver).send_invoice(
        42,
        title="100 credits",
        description="100 image generations",
        payload="pack:100",
        amount_stars=50,
        label="100 credits",
    )

    assert result == {"message_id": 8}


def test_pre_checkout_answers(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request(
        f"{BOT}/answerPreCheckoutQuery", json={"pre_checkout_query_id": "q1", "ok": True}
    ).respond_with_json(ok(True))
    httpserver.expect_ordered_request(
        f"{BOT}/answerPreCheckoutQuery", json={"pre_checkout_query_id": "q2", "ok": False, "error_message": "Sold out"}
    ).respond_with_json(ok(True))
    api = make_api(httpserver)

    assert api.answer_pre_checkout_query("q1", True) is True
    assert api.answer_pre_checkout_query("q2", False, "Sold out") is True


def test_a_refused_pre_checkout_always_carries_a_message(httpserver: HTTPServer) -> None:
    httpserver.expect_request(f"{BOT}/answerPreCheckoutQuery").respond_with_json(ok(True))

    make_api(httpserver).answer_pre_checkout_query("q3", False)

    sent = json.loads(httpserver.log[0][0].get_data())
    assert sent["ok"] is False and sent["error_message"]


def test_refund_star_payment(httpserver: HTTPServer) -> None:
    httpserver.expect_request(
        f"{BOT}/refundStarPayment", json={"user_id": 42, "telegram_payment_charge_id": "charge-1"}
    ).respond_with_json(ok(True))

    assert make_api(httpserver).refund_star_payment(42, "charge-1") is True


def test_webhook_methods(httpserver: HTTPServer) -> None:
    httpserver.expect_request(
        f"{BOT}/setWebhook",
        json={
            "url": "https://example.com/telegram/webhook",
            "secret_token": "s3cret_-",
            "allowed_updates": ["message", "callback_query", "pre_checkout_query"],
            "drop_pending_updates": True,
            "max_connections": 40,
        },
    ).respond_with_json(ok(True))
    httpserver.expect_request(f"{BOT}/deleteWebhook", json={"drop_pending_updates": False}).respond_with_json(ok(True))
    info = {"url": "https://example.com/telegram/webhook", "pending_update_count": 0, "has_custom_certificate": False}
    httpserver.expect_request(f"{BOT}/getWebhookInfo", json={}).respond_with_json(ok(info))
    api = make_api(httpserver)

    assert api.set_webhook(
        "https://example.com/telegram/webhook",
        secret_token="s3cret_-",
        allowed_updates=["message", "callback_query", "pre_checkout_query"],
        drop_pending_updates=True,
    )
    assert api.delete_webhook() is True
    assert api.get_webhook_info() == info


# -- dry run ------------------------------------------------------------------------


def test_dry_run_sends_nothing_and_logs_what_it_would_send(
    httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    api = make_api(httpserver, dry_run=True)

    message = api.send_message(42, "hello")
    photo = api.send_photo(42, PNG, filename="fox.png", caption="fox")
    assert api.set_webhook("https://example.com/hook", secret_token="do-not-log-me", allowed_updates=["message"])
    assert api.get_webhook_info()["url"] == ""

    assert httpserver.log == []
    assert message["text"] == "hello" and message["chat"] == {"id": 42}
    assert photo["message_id"] != message["message_id"]
    dry_runs = [record for record in caplog.records if "dry run" in record.getMessage()]
    assert [getattr(record, "telegram_method", None) for record in dry_runs] == [
        "sendMessage",
        "sendPhoto",
        "setWebhook",
        "getWebhookInfo",
    ]
    assert vars(dry_runs[1])["files"] == {"photo": {"filename": "fox.png", "bytes": len(PNG)}}
    assert vars(dry_runs[2])["payload"]["secret_token"] == "<redacted>"
    assert "do-not-log-me" not in repr([vars(record) for record in caplog.records])
    assert TOKEN not in repr([vars(record) for record in caplog.records])


# -- the token never leaks ----------------------------------------------------------


def test_connection_error_is_raised_without_the_token(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    api = BotApi(TOKEN, f"http://127.0.0.1:{closed_port()}")

    with pytest.raises(TelegramError) as raised:
        api.send_message(42, "hi")

    assert raised.value.error_code is None
    assert "<token>" in str(raised.value)  # the URL was there, scrubbed
    assert_no_token(raised.value, caplog)


def test_timeout_is_raised_without_the_token(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    release = threading.Event()

    def slow(_: Request) -> Response:
        release.wait(5)
        return Response(json.dumps(ok(True)), content_type="application/json")

    # A server of its own, stopped (its thread joined) before the test ends: the request the
    # client gave up on is still being answered after the timeout, and on the shared
    # single-threaded ``httpserver`` it would land in a later test's log (as it did in
    # test_aiml_client) and hold up that test's first request.
    with HTTPServer(host="127.0.0.1", port=0) as server:
        server.expect_request(f"{BOT}/sendMessage").respond_with_handler(slow)
        try:
            with pytest.raises(TelegramError, match="timed out") as raised:
                make_api(server, read_timeout=0.05).send_message(42, "hi")
        finally:
            release.set()

    assert raised.value.error_code is None
    assert_no_token(raised.value, caplog)


def test_urllib3_request_lines_are_scrubbed(httpserver: HTTPServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="urllib3")
    httpserver.expect_request(f"{BOT}/sendMessage").respond_with_json(ok({"message_id": 1}))

    make_api(httpserver).send_message(42, "hi")

    urllib3_lines = [record.getMessage() for record in our_records(caplog)]
    assert any("/bot<token>/sendMessage" in line for line in urllib3_lines)
    assert not any(TOKEN in line for line in urllib3_lines)


def test_a_token_echoed_in_a_description_is_scrubbed(httpserver: HTTPServer) -> None:
    httpserver.expect_request(f"{BOT}/getWebhookInfo").respond_with_json(
        refused(404, f"Not Found: method /bot{TOKEN}/getWebhookInfo"), status=404
    )

    with pytest.raises(TelegramError) as raised:
        make_api(httpserver).get_webhook_info()

    assert TOKEN not in str(raised.value)
    assert "/bot<token>/getWebhookInfo" in raised.value.description


def test_repr_does_not_show_the_token(httpserver: HTTPServer) -> None:
    assert TOKEN not in repr(make_api(httpserver))


# -- photo fallback -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error_code", "description", "expected"),
    [
        (400, "Bad Request: PHOTO_INVALID_DIMENSIONS", True),
        (400, "Bad Request: IMAGE_PROCESS_FAILED", True),
        (400, "Bad Request: PHOTO_SAVE_FILE_INVALID", True),
        (400, "Bad Request: wrong file identifier/HTTP URL specified", True),
        (413, "Request Entity Too Large", True),
        (400, "Bad Request: chat not found", False),
        (403, "Forbidden: bot was blocked by the user", False),
        (429, "Too Many Requests: retry after 5", False),
        (None, "sendPhoto timed out", False),
    ],
)
def test_photo_refused(error_code: int | None, description: str, expected: bool) -> None:
    assert photo_refused(TelegramError(description, error_code=error_code)) is expected


# -- settings -------------------------------------------------------------------------


@pytest.fixture
def fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    bootstrap.reset()
    yield monkeypatch
    bootstrap.reset()


def test_the_development_token_means_dry_run(fresh_settings: pytest.MonkeyPatch) -> None:
    api = bootstrap.bot_api()

    assert api.dry_run is True
    assert bootstrap.bot_api() is api
    assert DEV_BOT_TOKEN not in repr(api)


def test_a_real_token_means_real_calls(fresh_settings: pytest.MonkeyPatch) -> None:
    fresh_settings.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    reset_settings()

    assert bootstrap.bot_api().dry_run is False
