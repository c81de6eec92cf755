"""The AIML API client: one synchronous POST per generation.

AIML answers with the picture itself (no job to poll), so a call can take
tens of seconds. Each call must also end before the Lambda's deadline, and a
failure must say whether a retry may help: ``ProviderError.transient`` decides
between an SQS redelivery (transient) and a refund (permanent).

When AIML answers with a URL instead of the bytes, the worker fetches it from
inside the AWS network, so the URL is not trusted: https only (plain http
only to loopback, where the local emulator and the test fakes live), every
address the host resolves to must be public (``chalicelib.addresses``; never
loopback in AWS), the connection goes to the very address that was checked
(no second DNS answer), redirects are followed here, a few at most, each
checked the same way, and the body is capped.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import re
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import SplitResult, urljoin, urlsplit

import requests
import urllib3

from chalicelib.addresses import is_loopback_ip, is_public_ip
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
# The largest picture accepted from a result URL (a 4096 x 4096 PNG is about 30 MB).
MAX_DOWNLOAD_BYTES = 40 * 1024 * 1024
# Redirects followed for one result URL; each hop is checked like the first.
MAX_REDIRECTS = 3
_REDIRECT_STATUSES = (301, 302, 303, 307, 308)
_CHUNK_BYTES = 64 * 1024
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


@dataclass(frozen=True)
class _Fetched:
    """One answer to a result download: the picture, or where a redirect points."""

    status_code: int
    content_type: str | None
    content: bytes = field(default=b"", repr=False)
    redirect_to: str | None = None


_Answer = TypeVar("_Answer", requests.Response, _Fetched)


def _refused(reason: str) -> ProviderError:
    # Permanent: the same URL would be refused again. The URL itself stays out (it may carry a signature).
    return ProviderError(f"AIML returned an image URL {reason}", status=200, transient=False)


def _resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (all are checked: any one of them may be the one used)."""
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


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
        allow_loopback: bool | None = None,
        max_download_bytes: int = MAX_DOWNLOAD_BYTES,
        resolve: Callable[[str, int], list[str]] = _resolve,
        ca_certs: str | None = None,
    ) -> None:
        """``allow_loopback``: may result URLs point at this machine (and use http)? By default only when
        ``base_url`` itself is on loopback, i.e. AIML is the local emulator or a test fake."""
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._api_key = api_key
        self._url = base_url.rstrip("/") + GENERATIONS_PATH
        self._allow_loopback = _is_loopback_url(base_url) if allow_loopback is None else allow_loopback
        self._max_download_bytes = max_download_bytes
        self._resolve = resolve
        self._ca_certs = ca_certs
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
        headers = {"Authorization": f"Bearer {self._api_key}"}
        response = self._send(
            "generate",
            deadline,
            lambda timeout: self._attempt("generate", "POST", self._url, timeout, json=payload, headers=headers),
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
        fetched = self._download(str(item["url"]), deadline)
        return _image(fetched.content, declared or _image_type(fetched.content_type))

    # -- result downloads ----------------------------------------------------

    def _download(self, url: str, deadline: float) -> _Fetched:
        """GET a result URL, following at most ``MAX_REDIRECTS`` redirects, each hop checked anew."""
        for _ in range(MAX_REDIRECTS + 1):
            parts, address = self._checked_target(url)
            fetched = self._send("download", deadline, functools.partial(self._fetch, parts, address))
            if fetched.redirect_to is None:
                return fetched
            url = fetched.redirect_to
        raise _refused(f"that redirects more than {MAX_REDIRECTS} times")

    def _checked_target(self, url: str) -> tuple[SplitResult, str]:
        """The URL's parts and the one checked address to connect to; refused (permanently) otherwise."""
        try:
            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise _refused("that is not a valid URL") from None
        if parts.scheme not in ("https", "http"):
            raise _refused("that is not https")
        host = (parts.hostname or "").removesuffix(".")
        if not host or "@" in parts.netloc:
            raise _refused("without a host name, or with credentials")
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            try:
                addresses = [ipaddress.ip_address(address) for address in self._resolve(host, port)]
            except (OSError, UnicodeError, ValueError):
                raise ProviderError("AIML download: the result's host name does not resolve", transient=True) from None
        if not addresses:
            raise ProviderError("AIML download: the result's host name does not resolve", transient=True)
        loopback = [self._allow_loopback and is_loopback_ip(address) for address in addresses]
        if not all(ok or is_public_ip(address) for ok, address in zip(loopback, addresses, strict=True)):
            raise _refused("that points at a private, local or reserved address")
        if parts.scheme == "http" and not all(loopback):
            raise _refused("that is not https")
        return parts, str(addresses[0])

    def _fetch(self, parts: SplitResult, address: str, timeout: tuple[float, float]) -> _Fetched | _Failure:
        """One GET to the checked address; the host name still names the site (Host, TLS SNI and certificate)."""
        host = (parts.hostname or "").removesuffix(".")
        pool_options: dict[str, Any] = {"timeout": urllib3.Timeout(connect=timeout[0], read=timeout[1]), "maxsize": 1}
        if parts.scheme == "https":
            import certifi  # requests' own CA bundle, shipped in the zip

            pool_options.update(
                cert_reqs="CERT_REQUIRED",
                ca_certs=self._ca_certs or certifi.where(),
                server_hostname=host,
                assert_hostname=host,
            )
            pool: urllib3.HTTPConnectionPool = urllib3.HTTPSConnectionPool(address, parts.port or 443, **pool_options)
        else:
            pool = urllib3.HTTPConnectionPool(address, parts.port or 80, **pool_options)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = {"Host": parts.netloc, "Accept": "image/*", "User-Agent": "NanoGen"}
        try:
            response = pool.urlopen(
                "GET", target, headers=headers, redirect=False, retries=False, preload_content=False,
                assert_same_host=False,
            )  # fmt: skip
            try:
                return self._read(parts, response)
            finally:
                response.close()  # one connection per download: never left half-read in a pool
        except urllib3.exceptions.TimeoutError:
            return _Failure(ProviderError(f"AIML download timed out (read timeout {timeout[1]:.1f} s)", transient=True))
        except urllib3.exceptions.HTTPError as exc:
            return _Failure(ProviderError(f"AIML download could not connect ({type(exc).__name__})", transient=True))
        finally:
            pool.close()

    def _read(self, parts: SplitResult, response: urllib3.BaseHTTPResponse) -> _Fetched | _Failure:
        status = response.status
        content_type = response.headers.get("Content-Type")
        if status in _REDIRECT_STATUSES:
            location = response.headers.get("Location")
            if not location:
                raise _refused(f"that answers {status} without a Location")
            return _Fetched(status, content_type, redirect_to=urljoin(parts.geturl(), location))
        if status >= 400:
            detail = _short(_read_at_most(response, 4096).decode("utf-8", "replace")) or "empty body"
            error = ProviderError(f"AIML download {status}: {detail}", status=status, transient=_is_transient(status))
            return _Failure(error)
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self._max_download_bytes:
            raise _refused(f"whose file is larger than {self._max_download_bytes} bytes")
        content = _read_at_most(response, self._max_download_bytes + 1)
        if len(content) > self._max_download_bytes:
            raise _refused(f"whose file is larger than {self._max_download_bytes} bytes")
        return _Fetched(status, content_type, content)

    # -- HTTP with retries ---------------------------------------------------

    def _send(
        self, what: str, deadline: float, make_attempt: Callable[[tuple[float, float]], _Answer | _Failure]
    ) -> _Answer:
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
            result = make_attempt(timeout)
            log: dict[str, Any] = {
                "aiml_call": what,
                "attempt": attempt,
                "latency_ms": round((self._clock() - started) * 1000),
            }
            if not isinstance(result, _Failure):
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
        # In AWS a result URL on loopback would be the Lambda itself: never, whatever AIML_API_BASE says.
        allow_loopback = False if settings.in_aws else None
        return AimlClient(settings.aiml_api_key, settings.aiml_api_base, allow_loopback=allow_loopback)
    if settings.in_aws:
        raise ConfigurationError("AIML_API_KEY is required in AWS")
    if local is None:
        raise ConfigurationError("AIML_API_KEY is not set and no local provider is installed (make run installs one)")
    return local()


# -- response parsing ----------------------------------------------------------


def _is_loopback_url(url: str) -> bool:
    host = (urlsplit(url).hostname or "").removesuffix(".")
    if host == "localhost":
        return True
    try:
        return is_loopback_ip(ipaddress.ip_address(host))
    except ValueError:
        return False


def _read_at_most(response: urllib3.BaseHTTPResponse, limit: int) -> bytes:
    """At most ``limit`` bytes of the body, in chunks, so a huge or endless body is never held whole."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = response.read(min(_CHUNK_BYTES, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


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
