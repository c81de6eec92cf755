"""The AIML client against a local server speaking AIML's wire format."""

from __future__ import annotations

import base64
import io
import json
import logging
import socket
import threading
from typing import Any

import pytest
import requests
from PIL import Image
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from chalicelib.config import load_settings
from chalicelib.errors import ConfigurationError, ProviderError
from chalicelib.providers import AimlClient, GeneratedImage, provider_from_settings
from local.offline_provider import OfflineProvider

API_KEY = "sk-aiml-test-6f1c0e7d9b"
GENERATIONS = "/v1/images/generations"
MODEL = "google/gemini-2.5-flash-image"
EDIT_MODEL = "google/nano-banana-edit"


def _encoded(image_format: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 3), (200, 30, 30)).save(buffer, format=image_format)
    return buffer.getvalue()


PNG = _encoded("PNG")
JPEG = _encoded("JPEG")
PNG_ANSWER = {"data": [{"url": None, "b64_json": base64.b64encode(PNG).decode()}], "meta": {}}


class FakeClock:
    """Monotonic time that only moves when the client sleeps: retries cost no real time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_client(server: HTTPServer, clock: FakeClock, **options: Any) -> AimlClient:
    return AimlClient(API_KEY, server.url_for("/"), sleep=clock.sleep, clock=clock, **options)


def generate(
    client: AimlClient, clock: FakeClock, *, seconds_left: float = 120.0, **overrides: Any
) -> list[GeneratedImage]:
    request: dict[str, Any] = {"model": MODEL, "prompt": "a red fox", "aspect_ratio": "16:9", "image_urls": []}
    request.update(overrides)
    return client.generate(**request, deadline=clock.now + seconds_left)


def aiml_error(status: int, message: Any, request_id: str = "req-123") -> dict[str, Any]:
    return {
        "message": message,
        "path": GENERATIONS,
        "requestId": request_id,
        "statusCode": status,
        "timestamp": "2025-11-27T20:00:00.000Z",
    }


class FakeTimeSession(requests.Session):
    """Records the timeouts the client asks for, and waits for the local server's answer a fixed 30 s.

    Under ``FakeClock`` the client's deadline arithmetic is in fake seconds, but the
    timeouts it hands ``requests`` would be real ones (a few seconds): a loaded machine
    could let one run out and turn the server's answer into a timeout.
    """

    REAL_TIMEOUT = 30.0

    def __init__(self) -> None:
        super().__init__()
        self.timeouts: list[Any] = []

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        self.timeouts.append(kwargs.get("timeout"))
        kwargs["timeout"] = self.REAL_TIMEOUT
        return super().request(method, url, *args, **kwargs)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- the request and both response shapes --------------------------------------


def test_posts_the_documented_request_and_reads_base64_from_the_data_shape(
    httpserver: HTTPServer, clock: FakeClock
) -> None:
    httpserver.expect_request(
        GENERATIONS,
        method="POST",
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
        json={"model": MODEL, "prompt": "a red fox", "aspect_ratio": "16:9", "num_images": 1},
    ).respond_with_json(PNG_ANSWER)

    images = generate(make_client(httpserver, clock), clock)

    assert images == [GeneratedImage(data=PNG, content_type="image/png")]
    assert images[0].extension == "png"
    assert len(httpserver.log) == 1


def test_images_shape_url_is_downloaded_without_the_api_key(httpserver: HTTPServer, clock: FakeClock) -> None:
    file_url = httpserver.url_for("/files/result.jpg")
    httpserver.expect_request(GENERATIONS, method="POST").respond_with_json(
        {"images": [{"url": file_url, "content_type": "image/jpeg", "width": 4, "height": 3}]}
    )
    httpserver.expect_request("/files/result.jpg", method="GET").respond_with_data(
        JPEG, content_type="application/octet-stream"
    )

    images = generate(make_client(httpserver, clock), clock)

    assert images == [GeneratedImage(data=JPEG, content_type="image/jpeg")]
    assert images[0].extension == "jpg"
    download_request = httpserver.log[1][0]
    assert download_request.path == "/files/result.jpg"
    assert "Authorization" not in download_request.headers


@pytest.mark.parametrize(
    ("item_type", "header_type", "expected"),
    [
        ("image/webp", "image/png", "image/webp"),  # the item's own type wins
        (None, "image/png; charset=binary", "image/png"),  # then the download's Content-Type
        (None, "application/octet-stream", "image/jpeg"),  # then the magic bytes
    ],
)
def test_content_type_of_a_url_item_comes_from_item_then_header_then_magic_bytes(
    httpserver: HTTPServer, clock: FakeClock, item_type: str | None, header_type: str, expected: str
) -> None:
    item: dict[str, Any] = {"url": httpserver.url_for("/files/x"), "b64_json": None}
    if item_type:
        item["content_type"] = item_type
    httpserver.expect_request(GENERATIONS).respond_with_json({"data": [item]})
    httpserver.expect_request("/files/x").respond_with_data(JPEG, headers={"Content-Type": header_type})

    [image] = generate(make_client(httpserver, clock), clock)

    assert image.content_type == expected


def test_base64_data_url_keeps_its_declared_type(httpserver: HTTPServer, clock: FakeClock) -> None:
    data_url = "data:image/jpeg;base64," + base64.b64encode(JPEG).decode()
    httpserver.expect_request(GENERATIONS).respond_with_json({"data": [{"b64_json": data_url}]})

    [image] = generate(make_client(httpserver, clock), clock)

    assert image == GeneratedImage(data=JPEG, content_type="image/jpeg")


def test_image_urls_are_sent_for_edit_models(httpserver: HTTPServer, clock: FakeClock) -> None:
    sources = ["https://cdn.example/a.png", "https://cdn.example/b.png"]
    httpserver.expect_request(
        GENERATIONS,
        json={
            "model": EDIT_MODEL,
            "prompt": "make it blue",
            "aspect_ratio": "1:1",
            "num_images": 1,
            "image_urls": sources,
        },
    ).respond_with_json(PNG_ANSWER)

    client = make_client(httpserver, clock)
    images = generate(client, clock, model=EDIT_MODEL, prompt="make it blue", aspect_ratio="1:1", image_urls=sources)

    assert len(images) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"data": []},
        {"images": [{"width": 1024, "height": 1024}]},
        {"data": [{"url": None, "b64_json": None}]},
        {"meta": {"usage": 1}},
    ],
)
def test_a_200_without_an_image_is_permanent(httpserver: HTTPServer, clock: FakeClock, body: dict[str, Any]) -> None:
    httpserver.expect_request(GENERATIONS).respond_with_json(body)

    with pytest.raises(ProviderError, match="without an image") as raised:
        generate(make_client(httpserver, clock), clock)

    assert raised.value.transient is False
    assert len(httpserver.log) == 1


@pytest.mark.parametrize(
    ("response", "match"),
    [
        (Response("<html>oops</html>", status=200, content_type="text/html"), "not JSON"),
        (Response(json.dumps({"data": [{"b64_json": "not base64!"}]}), content_type="application/json"), "base64"),
        (
            Response(json.dumps({"data": [{"b64_json": base64.b64encode(b"plain text").decode()}]})),
            "not a recognisable image",
        ),
    ],
)
def test_unusable_200_answers_are_permanent(
    httpserver: HTTPServer, clock: FakeClock, response: Response, match: str
) -> None:
    httpserver.expect_request(GENERATIONS).respond_with_response(response)

    with pytest.raises(ProviderError, match=match) as raised:
        generate(make_client(httpserver, clock), clock)

    assert raised.value.transient is False


# -- errors and retries ---------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_permanent_and_not_retried(httpserver: HTTPServer, clock: FakeClock, status: int) -> None:
    message = f"Invalid request (key {API_KEY} rejected)" + " padding" * 100
    httpserver.expect_request(GENERATIONS).respond_with_json(aiml_error(status, message, "req-42"), status=status)

    with pytest.raises(ProviderError) as raised:
        generate(make_client(httpserver, clock, max_attempts=3), clock)

    error = raised.value
    assert (error.status, error.transient) == (status, False)
    assert error.alerts_operator is (status in (401, 403))
    assert len(httpserver.log) == 1
    assert clock.sleeps == []
    text = str(error)
    assert f"{status}" in text and "Invalid request" in text and "requestId req-42" in text
    assert API_KEY not in text
    assert len(text) < 300


def test_validation_message_list_is_joined(httpserver: HTTPServer, clock: FakeClock) -> None:
    body = aiml_error(400, ["prompt should not be empty", "aspect_ratio must be one of 1:1, 16:9"])
    httpserver.expect_request(GENERATIONS).respond_with_json(body, status=400)

    with pytest.raises(ProviderError, match="prompt should not be empty; aspect_ratio must be one of"):
        generate(make_client(httpserver, clock), clock)


@pytest.mark.parametrize(
    ("retry_after", "expected_sleep"),
    [("7", 7.0), (None, 1.0), ("3600", 30.0)],
    ids=["retry-after-honoured", "exponential-backoff", "retry-after-capped"],
)
def test_429_then_success_waits_as_asked(
    httpserver: HTTPServer, clock: FakeClock, retry_after: str | None, expected_sleep: float
) -> None:
    headers = {"Retry-After": retry_after} if retry_after else {}
    httpserver.expect_ordered_request(GENERATIONS).respond_with_json(
        aiml_error(429, "Too many requests"), status=429, headers=headers
    )
    httpserver.expect_ordered_request(GENERATIONS).respond_with_json(PNG_ANSWER)

    images = generate(make_client(httpserver, clock), clock)

    assert len(images) == 1
    assert clock.sleeps == [expected_sleep]
    assert len(httpserver.log) == 2


def test_server_errors_are_retried_max_attempts_times_then_raised_as_transient(
    httpserver: HTTPServer, clock: FakeClock
) -> None:
    httpserver.expect_request(GENERATIONS).respond_with_json(aiml_error(500, "Model under maintenance"), status=500)

    with pytest.raises(ProviderError, match="500: Model under maintenance") as raised:
        generate(make_client(httpserver, clock, max_attempts=3, backoff_base=1.0), clock)

    assert (raised.value.status, raised.value.transient) == (500, True)
    assert len(httpserver.log) == 3
    assert clock.sleeps == [1.0, 2.0]


@pytest.mark.parametrize("status", [408, 502, 503, 504])
def test_other_transient_statuses(httpserver: HTTPServer, clock: FakeClock, status: int) -> None:
    httpserver.expect_request(GENERATIONS).respond_with_data("<html>Bad gateway</html>", status=status)

    with pytest.raises(ProviderError, match=f"{status}: <html>Bad gateway</html>") as raised:
        generate(make_client(httpserver, clock, max_attempts=1), clock)

    assert raised.value.transient is True


def test_a_read_timeout_is_transient(clock: FakeClock) -> None:
    release = threading.Event()

    def slow(_: Request) -> Response:
        release.wait(5)
        return Response("{}", content_type="application/json")

    # A server of its own, stopped (its thread joined) before the test ends: the request the
    # client gave up on is still being answered after the timeout, and on the shared
    # (single-threaded, session-wide) ``httpserver`` its log entry would land in a later
    # test's log, and its answer would hold up that test's first request.
    with HTTPServer(host="127.0.0.1", port=0) as server:
        server.expect_request(GENERATIONS).respond_with_handler(slow)
        client = make_client(server, clock, max_attempts=1, read_timeout=0.05)
        try:
            with pytest.raises(ProviderError, match="timed out") as raised:
                generate(client, clock)
        finally:
            release.set()

    assert (raised.value.status, raised.value.transient) == (None, True)


def test_connection_refused_is_transient_and_retried(clock: FakeClock) -> None:
    client = AimlClient(API_KEY, f"http://127.0.0.1:{closed_port()}", sleep=clock.sleep, clock=clock, max_attempts=2)

    with pytest.raises(ProviderError, match="could not connect") as raised:
        generate(client, clock)

    assert raised.value.transient is True
    assert clock.sleeps == [1.0]


def test_no_request_when_the_deadline_is_too_close(httpserver: HTTPServer, clock: FakeClock) -> None:
    client = make_client(httpserver, clock, connect_timeout=5.0)

    with pytest.raises(ProviderError, match="no time left") as raised:
        generate(client, clock, seconds_left=9.0)  # needs connect (5 s) + 5 s

    assert raised.value.transient is True
    assert httpserver.log == []


def test_no_retry_that_could_not_finish_before_the_deadline(httpserver: HTTPServer, clock: FakeClock) -> None:
    httpserver.expect_request(GENERATIONS).respond_with_json(aiml_error(503, "Service unavailable"), status=503)
    session = FakeTimeSession()

    with pytest.raises(ProviderError, match="503") as raised:
        # Enough for one attempt (10 s), not for a 1 s backoff plus another.
        generate(make_client(httpserver, clock, max_attempts=3, session=session), clock, seconds_left=10.5)

    assert raised.value.transient is True
    assert len(httpserver.log) == 1
    assert session.timeouts == [(5.0, 5.5)]  # the one attempt got all the time there was
    assert clock.sleeps == []


def test_read_timeout_is_cut_to_the_time_left(httpserver: HTTPServer, clock: FakeClock) -> None:
    timeouts: list[Any] = []

    class RecordingSession(requests.Session):
        def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
            timeouts.append(kwargs.get("timeout"))
            return super().request(method, url, *args, **kwargs)

    httpserver.expect_request(GENERATIONS).respond_with_json(PNG_ANSWER)
    client = make_client(httpserver, clock, session=RecordingSession(), connect_timeout=5.0, read_timeout=90.0)

    generate(client, clock, seconds_left=30.0)
    generate(client, clock, seconds_left=500.0)

    assert timeouts == [(5.0, 25.0), (5.0, 90.0)]


def test_a_failed_download_is_retried_without_paying_for_a_new_generation(
    httpserver: HTTPServer, clock: FakeClock
) -> None:
    httpserver.expect_request(GENERATIONS).respond_with_json({"data": [{"url": httpserver.url_for("/files/a.png")}]})
    httpserver.expect_oneshot_request("/files/a.png").respond_with_data("busy", status=503)
    httpserver.expect_oneshot_request("/files/a.png").respond_with_data(PNG, content_type="image/png")

    [image] = generate(make_client(httpserver, clock), clock)

    assert image.data == PNG
    assert [request.path for request, _ in httpserver.log] == [GENERATIONS, "/files/a.png", "/files/a.png"]


def test_a_missing_download_is_permanent(httpserver: HTTPServer, clock: FakeClock) -> None:
    httpserver.expect_request(GENERATIONS).respond_with_json({"data": [{"url": httpserver.url_for("/files/gone.png")}]})
    httpserver.expect_request("/files/gone.png").respond_with_data("not found", status=404)

    with pytest.raises(ProviderError, match="download 404") as raised:
        generate(make_client(httpserver, clock), clock)

    assert (raised.value.status, raised.value.transient) == (404, False)
    assert len(httpserver.log) == 2


def test_the_key_is_never_logged(httpserver: HTTPServer, clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    httpserver.expect_ordered_request(GENERATIONS).respond_with_json(
        aiml_error(429, f"slow down {API_KEY}"), status=429
    )
    httpserver.expect_ordered_request(GENERATIONS).respond_with_json(PNG_ANSWER)

    generate(make_client(httpserver, clock), clock)

    assert any("AIML attempt failed" in record.getMessage() for record in caplog.records)
    assert any(getattr(record, "latency_ms", None) is not None for record in caplog.records)
    for record in caplog.records:
        assert API_KEY not in record.getMessage()
        assert API_KEY not in repr(vars(record))


def test_repr_does_not_show_the_key() -> None:
    assert API_KEY not in repr(AimlClient(API_KEY, "https://api.aimlapi.com"))


# -- choosing a provider ----------------------------------------------------------


def test_provider_from_settings_uses_aiml_when_a_key_is_set() -> None:
    provider = provider_from_settings(load_settings({"AIML_API_KEY": API_KEY}))

    assert isinstance(provider, AimlClient)
    assert provider.name == "aiml"


def test_provider_from_settings_falls_back_to_offline_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)

    provider = provider_from_settings(load_settings({}), local=OfflineProvider)

    assert isinstance(provider, OfflineProvider)


def test_provider_from_settings_refuses_to_run_offline_in_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "nanogen-worker")
    settings = load_settings({"AWS_LAMBDA_FUNCTION_NAME": "nanogen-worker", "TELEGRAM_BOT_TOKEN": "1:abc"})

    with pytest.raises(ConfigurationError, match="AIML_API_KEY"):
        provider_from_settings(settings)


@pytest.mark.parametrize(
    ("content_type", "extension"),
    [("image/png", "png"), ("image/jpeg", "jpg"), ("image/webp", "webp"), ("IMAGE/JPEG; q=1", "jpg"), ("x/y", "bin")],
)
def test_generated_image_extension(content_type: str, extension: str) -> None:
    image = GeneratedImage(data=b"\x00" * 10_000, content_type=content_type)

    assert image.extension == extension
    assert len(repr(image)) < 100  # the bytes stay out of log lines


def test_provider_from_settings_without_a_key_or_a_local_provider_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)

    with pytest.raises(ConfigurationError, match="no local provider"):
        provider_from_settings(load_settings({}))
