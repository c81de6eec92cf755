"""Result downloads: a URL from AIML is fetched from inside AWS, so it is checked like untrusted input.

https only (http only to loopback, for the local emulator and fakes); every
resolved address public (never loopback in AWS); the connection goes to the
checked address; redirects followed here, bounded, each checked; size capped.
"""

from __future__ import annotations

import datetime
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from chalicelib.config import load_settings
from chalicelib.errors import ProviderError
from chalicelib.providers import AimlClient, GeneratedImage, provider_from_settings
from tests.unit.test_aiml_client import API_KEY, GENERATIONS, PNG, FakeClock, generate

PUBLIC_ADDRESS = "93.184.216.34"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class Resolver:
    """Stands in for DNS: a fixed answer per host name, and a record of what was asked."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append((host, port))
        return self.answers[host]


def client_for(server: HTTPServer, clock: FakeClock, **options: Any) -> AimlClient:
    return AimlClient(API_KEY, server.url_for("/"), sleep=clock.sleep, clock=clock, **options)


def answer_with_url(server: HTTPServer, url: str) -> None:
    server.expect_request(GENERATIONS, method="POST").respond_with_json({"data": [{"url": url}]})


def refused(client: AimlClient, clock: FakeClock, match: str) -> ProviderError:
    with pytest.raises(ProviderError, match=match) as raised:
        generate(client, clock)
    assert raised.value.transient is False  # refunded, not retried: the same URL would be refused again
    return raised.value


def paths(server: HTTPServer) -> list[str]:
    return [request.path for request, _ in server.log]


# -- scheme and addresses ----------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://images.example/result.png",
        "ftp://images.example/result.png",
        "file:///etc/passwd",
        "gopher://images.example/",
    ],
)
def test_a_result_url_must_be_https(httpserver: HTTPServer, clock: FakeClock, url: str) -> None:
    answer_with_url(httpserver, url)
    client = client_for(httpserver, clock, resolve=Resolver({"images.example": [PUBLIC_ADDRESS]}))

    error = refused(client, clock, "not https")

    assert url not in str(error)
    assert paths(httpserver) == [GENERATIONS]


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.1/result.png",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fd00:ec2::254]/latest/meta-data/",
        "https://[::ffff:169.254.169.254]/",
        "https://[2002:a9fe:a9fe::]/",  # 6to4 of the metadata address
        "https://192.168.1.1/result.png",
        "https://0.0.0.0/result.png",
        "http://10.0.0.1/result.png",
    ],
)
def test_a_private_or_link_local_address_is_refused_even_locally(
    httpserver: HTTPServer, clock: FakeClock, url: str
) -> None:
    answer_with_url(httpserver, url)

    refused(client_for(httpserver, clock, allow_loopback=True), clock, "private, local or reserved")
    assert paths(httpserver) == [GENERATIONS]


@pytest.mark.parametrize(
    "answer",
    [["10.1.2.3"], ["169.254.169.254"], [PUBLIC_ADDRESS, "10.0.0.1"], ["fe80::1"], ["127.0.0.1"]],
)
def test_a_host_name_is_refused_when_any_address_it_resolves_to_is_not_public(
    httpserver: HTTPServer, clock: FakeClock, answer: list[str]
) -> None:
    answer_with_url(httpserver, "https://cdn.images.example/result.png")
    resolver = Resolver({"cdn.images.example": answer})

    refused(client_for(httpserver, clock, allow_loopback=False, resolve=resolver), clock, "private, local")
    assert resolver.asked == [("cdn.images.example", 443)]
    assert paths(httpserver) == [GENERATIONS]


def test_in_aws_a_result_on_loopback_is_refused(
    httpserver: HTTPServer, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even when AIML_API_BASE itself is on loopback: in a Lambda, loopback is the Lambda."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "nanogen-dev-generation_worker")
    settings = load_settings(
        {
            "AWS_LAMBDA_FUNCTION_NAME": "nanogen-dev-generation_worker",
            "TELEGRAM_BOT_TOKEN": "1:abc",
            "AIML_API_KEY": API_KEY,
            "AIML_API_BASE": httpserver.url_for("/"),
        }
    )
    answer_with_url(httpserver, httpserver.url_for("/files/result.png"))
    httpserver.expect_request("/files/result.png").respond_with_data(PNG, content_type="image/png")
    provider = provider_from_settings(settings)
    assert isinstance(provider, AimlClient)

    with pytest.raises(ProviderError, match="private, local or reserved") as raised:
        provider.generate(model="m", prompt="p", aspect_ratio="1:1", image_urls=[], deadline=float("inf"))

    assert raised.value.transient is False
    assert paths(httpserver) == [GENERATIONS]


def test_against_the_real_aiml_a_result_on_loopback_is_refused(httpserver: HTTPServer, clock: FakeClock) -> None:
    """Loopback results are only for a local AIML (emulator, fake): from api.aimlapi.com they are an attack."""
    client = AimlClient(API_KEY, "https://api.aimlapi.com", sleep=clock.sleep, clock=clock)
    url = httpserver.url_for("/files/result.png")

    with pytest.raises(ProviderError, match="private, local or reserved"):
        client._download(url, deadline=clock.now + 60)

    assert httpserver.log == []


def test_the_connection_goes_to_the_checked_address_with_the_host_name_in_the_host_header(
    httpserver: HTTPServer, clock: FakeClock
) -> None:
    """No second DNS lookup: ``images.test`` resolves nowhere but in the checked answer."""
    port = httpserver.port
    answer_with_url(httpserver, f"http://images.test:{port}/files/result.png?sig=abc")
    httpserver.expect_request("/files/result.png", query_string="sig=abc").respond_with_data(
        PNG, content_type="image/png"
    )
    resolver = Resolver({"images.test": ["127.0.0.1"]})

    [image] = generate(client_for(httpserver, clock, resolve=resolver), clock)

    assert image == GeneratedImage(data=PNG, content_type="image/png")
    assert resolver.asked == [("images.test", port)]
    download = httpserver.log[1][0]
    assert download.headers["Host"] == f"images.test:{port}"
    assert "Authorization" not in download.headers


# -- redirects -------------------------------------------------------------------------


def test_a_redirect_to_a_private_address_is_not_followed(httpserver: HTTPServer, clock: FakeClock) -> None:
    answer_with_url(httpserver, httpserver.url_for("/files/result.png"))
    httpserver.expect_request("/files/result.png").respond_with_response(
        Response(status=302, headers={"Location": "http://169.254.169.254/latest/meta-data/iam/"})
    )

    refused(client_for(httpserver, clock), clock, "private, local or reserved")
    assert paths(httpserver) == [GENERATIONS, "/files/result.png"]


def test_a_redirect_to_plain_http_on_a_public_host_is_not_followed(httpserver: HTTPServer, clock: FakeClock) -> None:
    answer_with_url(httpserver, httpserver.url_for("/files/result.png"))
    httpserver.expect_request("/files/result.png").respond_with_response(
        Response(status=301, headers={"Location": "http://images.example/result.png"})
    )
    resolver = Resolver({"localhost": ["127.0.0.1"], "images.example": [PUBLIC_ADDRESS]})
    client = client_for(httpserver, clock, resolve=resolver)

    refused(client, clock, "not https")
    assert paths(httpserver) == [GENERATIONS, "/files/result.png"]


def test_allowed_redirects_are_followed_relative_and_absolute(httpserver: HTTPServer, clock: FakeClock) -> None:
    answer_with_url(httpserver, httpserver.url_for("/files/a.png"))
    httpserver.expect_request("/files/a.png").respond_with_response(Response(status=302, headers={"Location": "b.png"}))
    httpserver.expect_request("/files/b.png").respond_with_response(
        Response(status=307, headers={"Location": httpserver.url_for("/final/c.png")})
    )
    httpserver.expect_request("/final/c.png").respond_with_data(PNG, content_type="image/png")

    [image] = generate(client_for(httpserver, clock), clock)

    assert image.data == PNG
    assert paths(httpserver) == [GENERATIONS, "/files/a.png", "/files/b.png", "/final/c.png"]


def test_redirects_are_bounded(httpserver: HTTPServer, clock: FakeClock) -> None:
    answer_with_url(httpserver, httpserver.url_for("/loop"))
    httpserver.expect_request("/loop").respond_with_response(Response(status=302, headers={"Location": "/loop"}))

    refused(client_for(httpserver, clock), clock, "redirects more than 3 times")
    assert paths(httpserver) == [GENERATIONS] + ["/loop"] * 4


# -- size ------------------------------------------------------------------------------


def test_a_declared_size_over_the_cap_is_refused(httpserver: HTTPServer, clock: FakeClock) -> None:
    answer_with_url(httpserver, httpserver.url_for("/files/big.png"))
    httpserver.expect_request("/files/big.png").respond_with_data(PNG + b"\0" * 5000, content_type="image/png")

    refused(client_for(httpserver, clock, max_download_bytes=4096), clock, "larger than 4096 bytes")


def test_an_undeclared_size_over_the_cap_is_refused_without_reading_it_all(
    httpserver: HTTPServer, clock: FakeClock
) -> None:
    sent: list[int] = []

    def endless() -> Iterator[bytes]:
        yield PNG
        for _ in range(10_000):
            sent.append(1)
            yield b"\0" * 1024

    answer_with_url(httpserver, httpserver.url_for("/files/endless.png"))
    httpserver.expect_request("/files/endless.png").respond_with_response(
        Response(endless(), content_type="image/png", direct_passthrough=True)
    )

    refused(client_for(httpserver, clock, max_download_bytes=8192), clock, "larger than 8192 bytes")
    assert len(sent) < 10_000


def test_a_file_at_the_cap_is_accepted(httpserver: HTTPServer, clock: FakeClock) -> None:
    body = PNG + b"\0" * (4096 - len(PNG))
    answer_with_url(httpserver, httpserver.url_for("/files/exact.png"))
    httpserver.expect_request("/files/exact.png").respond_with_data(body, content_type="image/png")

    [image] = generate(client_for(httpserver, clock, max_download_bytes=4096), clock)

    assert image.data == body


# -- https to the checked address ----------------------------------------------------------


def _key_usage(*, cert_sign: bool) -> Any:
    """What Python 3.13's strict X.509 checks (VERIFY_X509_STRICT) want to see in a CA and a server certificate."""
    from cryptography import x509

    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[HTTPServer, str]]:
    """An https server for ``images.test`` with its own CA: TLS must name the host, not the address."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "NanoGen test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "images.test")]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(2)
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("images.test")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=context)
    server.start()
    try:
        yield server, str(ca_file)
    finally:
        server.clear()
        server.stop()


def test_https_to_the_checked_address_verifies_the_host_names_certificate(
    tls_server: tuple[HTTPServer, str], httpserver: HTTPServer, clock: FakeClock
) -> None:
    server, ca_file = tls_server
    server.expect_request("/files/result.png").respond_with_data(PNG, content_type="image/png")
    answer_with_url(httpserver, f"https://images.test:{server.port}/files/result.png")
    client = client_for(httpserver, clock, resolve=Resolver({"images.test": ["127.0.0.1"]}), ca_certs=ca_file)

    [image] = generate(client, clock)

    assert image.data == PNG
    assert server.log[0][0].headers["Host"] == f"images.test:{server.port}"


def test_https_with_a_certificate_for_another_name_fails(
    tls_server: tuple[HTTPServer, str], httpserver: HTTPServer, clock: FakeClock
) -> None:
    server, ca_file = tls_server
    server.expect_request("/files/result.png").respond_with_data(PNG, content_type="image/png")
    answer_with_url(httpserver, f"https://other.test:{server.port}/files/result.png")
    client = client_for(
        httpserver, clock, resolve=Resolver({"other.test": ["127.0.0.1"]}), ca_certs=ca_file, max_attempts=1
    )

    with pytest.raises(ProviderError, match="could not connect"):
        generate(client, clock)

    assert server.log == []
