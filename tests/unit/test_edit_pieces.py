"""The small parts of picture edits: file downloads, picture types, where the provider can reach, pairing."""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from chalicelib import catalogue, photos, uploads
from chalicelib.config import load_settings
from chalicelib.errors import TelegramError
from chalicelib.telegram import BotApi

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
WEBP = b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 16


def make_api(server: HTTPServer, **options: Any) -> BotApi:
    return BotApi(TOKEN, server.url_for("/"), **options)


def no_token_in(error: TelegramError, caplog: pytest.LogCaptureFixture) -> None:
    secret = TOKEN.split(":")[1]
    for text in (str(error), repr(error), error.description):
        assert secret not in text
    assert error.__cause__ is None and error.__context__ is None  # not chained to a URL-bearing exception
    ours = [r for r in caplog.records if r.name.split(".")[0] not in ("werkzeug",)]
    assert not [r for r in ours if secret in r.getMessage()]


# --- BotApi.download_file ------------------------------------------------------------------


def test_a_file_is_downloaded_from_the_file_path_with_the_token(httpserver: HTTPServer) -> None:
    httpserver.expect_request(f"/file/bot{TOKEN}/photos/file_7.jpg", method="GET").respond_with_data(JPEG)

    assert make_api(httpserver).download_file("photos/file_7.jpg", max_bytes=1000) == JPEG


def test_a_file_larger_than_the_limit_is_cut_off_with_a_413(
    httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    httpserver.expect_request(f"/file/bot{TOKEN}/photos/big.jpg").respond_with_data(JPEG * 1000)

    with pytest.raises(TelegramError) as raised:
        make_api(httpserver).download_file("photos/big.jpg", max_bytes=1000)

    assert raised.value.error_code == 413
    no_token_in(raised.value, caplog)


def test_a_failed_download_names_the_failure_never_the_url(
    httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    httpserver.expect_request(f"/file/bot{TOKEN}/photos/gone.jpg").respond_with_data("gone", status=404)
    with pytest.raises(TelegramError) as missing:
        make_api(httpserver).download_file("photos/gone.jpg", max_bytes=1000)
    assert missing.value.error_code == 404
    no_token_in(missing.value, caplog)

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TelegramError) as unreachable:
        BotApi(TOKEN, f"http://127.0.0.1:{port}").download_file("photos/a.jpg", max_bytes=10)
    assert "ConnectionError" in unreachable.value.description
    no_token_in(unreachable.value, caplog)


@pytest.mark.parametrize("path", ["../bot/getMe", "photos/../../x", "photos/a b.jpg", "", "a?b=c", "//evil.example/x"])
def test_an_unexpected_file_path_is_never_requested(httpserver: HTTPServer, path: str) -> None:
    with pytest.raises(TelegramError):
        make_api(httpserver).download_file(path, max_bytes=10)
    assert httpserver.log == []


def test_the_development_token_downloads_nothing(httpserver: HTTPServer) -> None:
    with pytest.raises(TelegramError, match="dry run"):
        make_api(httpserver, dry_run=True).download_file("photos/a.jpg", max_bytes=10)
    assert httpserver.log == []


# --- picture types and where the provider can reach -------------------------------------


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (PNG, "image/png"),
        (JPEG, "image/jpeg"),
        (WEBP, "image/webp"),
        (b"GIF89a" + b"\x00" * 10, None),
        (b"%PDF-1.7", None),
        (b"RIFF\x10\x00\x00\x00WAVEfmt ", None),
        (b"", None),
    ],
)
def test_the_picture_type_comes_from_the_first_bytes(head: bytes, expected: str | None) -> None:
    assert uploads.sniff_image_type(head[:16]) == expected


class _Client:
    def __init__(self, endpoint: str) -> None:
        self.meta = type("Meta", (), {"endpoint_url": endpoint})()


@pytest.mark.parametrize(
    ("endpoint", "reachable"),
    [
        ("https://s3.amazonaws.com", True),
        ("https://s3.eu-west-1.amazonaws.com", True),
        ("http://127.0.0.1:4566", False),
        ("http://localhost:4566", False),
        ("http://10.0.0.5:9000", False),
        ("http://[::1]:4566", False),
    ],
)
def test_a_loopback_or_private_s3_endpoint_means_inline_pictures(endpoint: str, reachable: bool) -> None:
    assert uploads.storage_reachable_by_provider(_Client(endpoint)) is reachable


# --- the bot's side ---------------------------------------------------------------------


def test_every_model_has_an_edit_model_and_the_default_pairs_with_nano_banana_edit() -> None:
    settings = load_settings({})
    assert catalogue.edit_model_for(catalogue.DEFAULT_MODEL_ID, settings).id == "google/nano-banana-edit"
    for model in catalogue.models(settings):
        assert catalogue.edit_model_for(model.id, settings).edit


def test_the_largest_photo_size_is_chosen_and_refusals_are_clear() -> None:
    settings = load_settings({})
    sizes = [
        {"file_id": "big", "file_unique_id": "b", "width": 1280, "height": 960, "file_size": 90_000},
        {"file_id": "small", "file_unique_id": "s", "width": 90, "height": 67, "file_size": 1_000},
    ]
    chosen = photos.picture_in({"photo": sizes}, settings)
    assert isinstance(chosen, photos.TelegramPicture) and chosen.file_id == "big"
    assert photos.picture_in({"sticker": {"file_id": "x"}}, settings) == photos.Refusal("edit-sticker-refused")
    pdf = {"document": {"file_id": "d", "mime_type": "application/pdf"}}
    assert photos.picture_in(pdf, settings) == photos.Refusal("edit-not-an-image")
    huge = {"document": {"file_id": "d", "mime_type": "image/png", "file_size": 21 * 1024 * 1024}}
    assert photos.picture_in(huge, settings) == photos.Refusal("edit-too-large", max_mb=10)
    for kind in ("voice", "audio", "video", "video_note", "animation"):  # a text draws: it is said so
        assert photos.picture_in({kind: {"file_id": "m"}}, settings) == photos.NOT_UNDERSTOOD
    assert photos.picture_in({"text": "hello"}, settings) is None


def test_a_copy_of_the_same_message_gets_the_same_upload_id_and_it_is_ulid_shaped() -> None:
    first = photos.derived_upload_id(1_796_000_000.0, "tg:1:2", "unique")
    assert first == photos.derived_upload_id(1_796_000_000.0, "tg:1:2", "unique")
    assert first != photos.derived_upload_id(1_796_000_000.0, "tg:1:3", "unique")
    from chalicelib.validation import UPLOAD_ID_RE

    assert UPLOAD_ID_RE.fullmatch(first)


def test_album_photos_come_in_message_order_each_once() -> None:
    entries = ["12:c", "10:a", "11:b", "10:a"]
    assert photos.album_upload_ids(entries) == ("a", "b", "c")


def test_a_download_that_drags_on_is_cut_off(httpserver: HTTPServer, caplog: pytest.LogCaptureFixture) -> None:
    httpserver.expect_request(f"/file/bot{TOKEN}/photos/slow.jpg").respond_with_data(JPEG * 4000)

    with pytest.raises(TelegramError, match="took longer") as raised:
        make_api(httpserver).download_file("photos/slow.jpg", max_bytes=10**7, max_seconds=0)

    assert raised.value.error_code is None  # transient: the re-sent update may succeed
    no_token_in(raised.value, caplog)
