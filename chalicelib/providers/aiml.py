"""The AIML API client: one synchronous POST per generation.

AIML answers with the picture itself (no job to poll), so a call can take
tens of seconds. Each call must also end before the Lambda's deadline, and a
failure must say whether a retry may help: ``ProviderError.transient`` decides
between an SQS redelivery (transient) and a refund (permanent).
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from chalicelib.config import Settings
from chalicelib.errors import ConfigurationError, ProviderError
from chalicelib.observability import logger
from chalicelib.providers.base import GeneratedImage, ImageProvider

GENERATIONS_PATH = "/v1/images/generations"

# An attempt needs time to connect plus at least this long to wait for the picture.
_MIN_READ_SECONDS = 5.0
# A Retry-After longer than this is not worth holding the Lambda for; SQS retries later.
_MAX_RETRY_AFTER_SECONDS = 30.0
_MAX_MESSAGE_CHARS = 200
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]+")

_MAGIC_NUMBERS: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


@dataclass(frozen=True)
class _Failure:
    """A failed attempt, with the wait AIML asked for (429 ``Retry-After``), if any."""

    error: ProviderError
    retry_after: float | None = None


class AimlClient(ImageProvider):
    """Generates images with AIML's ``/v1/images/generations``, retrying transient failures in the call."""

    name = "aiml"

    def __init__(
        self,
        api_key: str,
        base_url: str,
        *,
        session: requests.Session | None = None,
        max_attempts: int = 3,
        connect_timeout: float = 5.0,
        read_timeout: float = 90.0,
        backoff_base: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._api_key = api_key
        self._url = base_url.rstrip("/") + GENERATIONS_PATH
        self._session = session or requests.Session()
        self._max_attempts = max_attempts
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._backoff_base = backoff_base
        self._sleep = sleep
        self._clock = clock

    def __repr__(self) -> str:
        return f"AimlClient(url={self._url!r})"

    def generate(
        self,
        *,
        model: str,
        prompt: str,
        aspect_ratio: str,
        image_urls: Sequence[str],
        deadline: float,
    ) -> list[GeneratedImage]:
        payload: dict[str, Any] = {"model": model, "prompt": prompt, "aspect_ratio": aspect_ratio, "num_images": 1}
        if image_urls:
            payload["image_urls"] = list(image_urls)
        # The key goes on this request only: never on the session, or the image
        # downloads (another host) would carry it too.
        response = self._send(
            "generate",
            "POST",
            self._url,
            deadline,
            json=payload,
            headers={"Authorization": f"Bearer {self._api_key}"},
        )
        try:
            body = response.json()
        except ValueError:
            raise ProviderError("AIML answered 200 with a body that is not JSON", status=200, transient=False) from None
        items = _image_items(body)
        if not items:
            raise ProviderError("AIML answered 200 without an image", status=200, transient=False)
        return [self._materialise(item, deadline) for item in items]

    # -- one image item ----------------------------------------------------

    def _materialise(self, item: Mapping[str, Any], deadline: float) -> GeneratedImage:
        declared = _image_type(item.get("content_type"))
        encoded = item.get("b64_json")
        if isinstance(encoded, str) and encoded:
            data, data_url_type = _decode_base64(encoded)
            return _image(data, declared or data_url_type)
        url = str(item["url"])
        if urlsplit(url).scheme not in ("http", "https"):
            raise ProviderError("AIML returned an image URL that is not http(s)", status=200, transient=False)
        download = self._send("download", "GET", url, deadline)
        return _image(download.content, declared or _image_type(download.headers.get("Content-Type")))

    # -- HTTP with retries ---------------------------------------------------

    def _send(self, what: str, method: str, url: str, deadline: float, **kwargs: Any) -> requests.Response:
        """Make the request, retrying transient failures while the deadline still allows a whole attempt."""
        min_attempt_seconds = self._connect_timeout + _MIN_READ_SECONDS
        last: _Failure | None = None
        for attempt in range(1, self._max_attempts + 1):
            if last is not None:
                # Exponential backoff (base, 2*base, ...), or AIML's Retry-After on a 429; capped either way.
                delay = self._backoff_base * 2 ** (attempt - 2) if last.retry_after is None else last.retry_after
                delay = min(delay, _MAX_RETRY_AFTER_SECONDS)
                if self._clock() + delay + min_attempt_seconds > deadline:
                    logger.warning("AIML %s: no time left for attempt %d before the deadline", what, attempt)
                    raise last.error
                self._sleep(delay)
            remaining = deadline - self._clock()
            if remaining < min_attempt_seconds:
                raise ProviderError(
                    f"no time left for the AIML {what} call ({max(remaining, 0.0):.1f} s before the deadline)",
                    transient=True,
                )
            timeout = (self._connect_timeout, min(self._read_timeout, remaining - self._connect_timeout))
            started = self._clock()
            result = self._attempt(what, method, url, timeout, **kwargs)
            log: dict[str, Any] = {
                "aiml_call": what,
                "attempt": attempt,
                "latency_ms": round((self._clock() - started) * 1000),
            }
            if isinstance(result, requests.Response):
                logger.info("AIML %s succeeded", what, extra={**log, "status": result.status_code})
                return result
            error = result.error
            log.update(status=error.status, transient=error.transient)
            logger.warning("AIML attempt failed: %s", error, extra=log)
            if not error.transient:
                raise error
            last = result
        assert last is not None  # max_attempts >= 1
        raise last.error

    def _attempt(
        self, what: str, method: str, url: str, timeout: tuple[float, float], **kwargs: Any
    ) -> requests.Response | _Failure:
        try:
            response = self._session.request(method, url, timeout=timeout, **kwargs)
        except requests.Timeout:
            return _Failure(ProviderError(f"AIML {what} timed out (read timeout {timeout[1]:.1f} s)", transient=True))
        except requests.RequestException as exc:
            # The exception's text names the URL and connection internals: only its kind is worth keeping.
            return _Failure(ProviderError(f"AIML {what} could not connect ({type(exc).__name__})", transient=True))
        if response.ok:
            return response
        status = response.status_code
        error = ProviderError(
            f"AIML {what} {status}: {self._scrub(_error_detail(response))}",
            status=status,
            transient=_is_transient(status),
        )
        retry_after = _retry_after_seconds(response.headers.get("Retry-After")) if status == 429 else None
        return _Failure(error, retry_after)

    def _scrub(self, text: str) -> str:
        return text.replace(self._api_key, "<api key>") if self._api_key else text


def provider_from_settings(settings: Settings, *, local: Callable[[], ImageProvider] | None = None) -> ImageProvider:
    """AIML when a key is configured; without one, outside AWS, the ``local`` provider.

    Deployed code never imports ``local/``: ``make run`` and the tests install
    the offline provider (``chalicelib.bootstrap.install_local_provider``).
    """
    if settings.aiml_api_key:
        return AimlClient(settings.aiml_api_key, settings.aiml_api_base)
    if settings.in_aws:
        raise ConfigurationError("AIML_API_KEY is required in AWS")
    if local is None:
        raise ConfigurationError("AIML_API_KEY is not set and no local provider is installed (make run installs one)")
    return local()


# -- response parsing ----------------------------------------------------------


def _is_transient(status: int) -> bool:
    return status in (408, 429) or status >= 500


def _image_items(body: Any) -> list[Mapping[str, Any]]:
    """Items of either documented shape (``data`` or ``images``) that carry a URL or base64."""
    if not isinstance(body, Mapping):
        return []
    items = body.get("data") or body.get("images") or []
    if not isinstance(items, list):
        return []
    return [item for item in items if isinstance(item, Mapping) and (item.get("b64_json") or item.get("url"))]


def _error_detail(response: requests.Response) -> str:
    """AIML's message (``{"message", "requestId", ...}``), short and printable, with the request id."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, Mapping):
        message = body.get("message") or body.get("error") or ""
        if isinstance(message, list):  # validation errors come as a list of strings
            message = "; ".join(str(part) for part in message)
        text = _short(str(message)) or "no message"
        request_id = body.get("requestId")
        return f"{text} (requestId {request_id})" if request_id else text
    return _short(response.text) or "empty body"


def _short(text: str) -> str:
    text = _CONTROL_CHARS.sub(" ", text).strip()
    return text if len(text) <= _MAX_MESSAGE_CHARS else text[: _MAX_MESSAGE_CHARS - 1] + "…"


def _retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: either a number or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def _decode_base64(encoded: str) -> tuple[bytes, str | None]:
    """Plain base64 or a ``data:image/...;base64,`` URL."""
    declared = None
    if encoded.startswith("data:"):
        header, _, encoded = encoded.partition(",")
        declared = _image_type(header[len("data:") :].split(";", 1)[0])
    try:
        return base64.b64decode(encoded, validate=True), declared
    except (binascii.Error, ValueError):
        raise ProviderError("AIML returned an image that is not valid base64", status=200, transient=False) from None


def _image_type(value: Any) -> str | None:
    """A declared content type, if it names an image."""
    if not isinstance(value, str):
        return None
    media_type = value.split(";", 1)[0].strip().lower()
    return media_type if media_type.startswith("image/") else None


def _sniff(data: bytes) -> str | None:
    for magic, content_type in _MAGIC_NUMBERS:
        if data.startswith(magic):
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _image(data: bytes, declared: str | None) -> GeneratedImage:
    content_type = declared or _sniff(data)
    if not data or content_type is None:
        raise ProviderError("AIML returned a file that is not a recognisable image", status=200, transient=False)
    return GeneratedImage(data=data, content_type=content_type)
