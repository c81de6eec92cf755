"""Request validation (CONTRACT §4 ``invalid_request``, §5 bodies and parameters)."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.catalogue import DEFAULT_MODEL_ID
from chalicelib.config import load_settings
from chalicelib.errors import InvalidRequest
from chalicelib.validation import (
    GenerationRequest,
    parse_admin_credit_change,
    parse_generation_request,
    parse_idempotency_key,
    parse_json_object,
    parse_limit,
    parse_settings_change,
    parse_user_id,
)

SETTINGS = load_settings({})
EDIT = "google/nano-banana-edit"
PRO = "google/nano-banana-pro"
PICTURE = "https://example.com/cat.png"
TELEGRAM_FILE = "https://api.telegram.org/file/bot1234567890:AAH5YkoiEuPk8-FZa32hStHTqXiLPtAEhx8/photos/file_1.jpg"


def parse(body: dict[str, Any]) -> GenerationRequest:
    return parse_generation_request(body, SETTINGS)


def rejected(body: dict[str, Any], match: str | None = None) -> None:
    with pytest.raises(InvalidRequest, match=match):
        parse(body)


# --------------------------------------------------------------------------
# parse_json_object
# --------------------------------------------------------------------------


def test_json_object_is_parsed_from_bytes_and_text() -> None:
    assert parse_json_object(b'{"prompt": "cat", "n": [1, {"x": null}]}') == {"prompt": "cat", "n": [1, {"x": None}]}
    assert parse_json_object('{"prompt": "кот 🍌"}') == {"prompt": "кот 🍌"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param(None, "empty", id="none"),
        pytest.param(b"", "empty", id="empty-bytes"),
        pytest.param("", "empty", id="empty-text"),
        pytest.param(b" \n\t", "empty", id="whitespace"),
        pytest.param(b"null", "object", id="null"),
        pytest.param(b"[]", "object", id="array"),
        pytest.param(b"1", "object", id="number"),
        pytest.param(b'"x"', "object", id="string"),
        pytest.param(b"{", "not valid JSON", id="truncated"),
        pytest.param(b"{'a': 1}", "not valid JSON", id="single-quotes"),
        pytest.param(b'{"a": 1} x', "not valid JSON", id="trailing-garbage"),
        pytest.param(b'{"a": "\xff"}', "not valid JSON", id="not-utf8"),
        pytest.param("\ufeff{}".encode(), "not valid JSON", id="byte-order-mark"),
        pytest.param(b'{"a": NaN}', "NaN", id="nan"),
        pytest.param(b'{"a": -Infinity}', "Infinity", id="infinity"),
        pytest.param(b'{"a": 1, "a": 2}', "repeats a key", id="duplicate-key"),
        pytest.param(b'{"x": {"a": 1, "a": 1}}', "repeats a key", id="nested-duplicate-key"),
        pytest.param(b'{"a": ' + b"1" * 5000 + b"}", "not valid JSON", id="integer-of-5000-digits"),
        pytest.param(b"[" * 10_000, "not valid JSON", id="deep-nesting"),
        pytest.param('{"a": "\ud800"}', "not valid JSON", id="lone-surrogate-in-text"),
    ],
)
def test_bad_json_bodies_are_invalid_requests(raw: bytes | str | None, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        parse_json_object(raw)


def test_body_size_limit_counts_bytes() -> None:
    body = '{"p": "' + "x" * 100 + '"}'
    assert parse_json_object(body, max_bytes=len(body)) == {"p": "x" * 100}
    with pytest.raises(InvalidRequest, match="larger than"):
        parse_json_object(body, max_bytes=len(body) - 1)

    emoji = '{"p": "' + "🍌" * 10 + '"}'  # 10 characters, 40 bytes of UTF-8
    with pytest.raises(InvalidRequest, match="larger than"):
        parse_json_object(emoji, max_bytes=len(emoji))


def test_default_body_limit_is_16_kib() -> None:
    body = b'{"p": "' + b"x" * (16_384 - 9) + b'"}'
    assert len(body) == 16_384
    parse_json_object(body)
    with pytest.raises(InvalidRequest):
        parse_json_object(body[:-2] + b'x"}')


@given(st.binary(max_size=300))
def test_arbitrary_bytes_give_an_object_or_invalid_request(raw: bytes) -> None:
    with contextlib.suppress(InvalidRequest):
        assert isinstance(parse_json_object(raw), dict)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


@given(json_values)
def test_any_json_document_gives_an_object_or_invalid_request(value: object) -> None:
    try:
        assert parse_json_object(json.dumps(value)) == value
    except InvalidRequest:
        assert not isinstance(value, dict)


# --------------------------------------------------------------------------
# POST /api/generation: prompt
# --------------------------------------------------------------------------


def test_minimal_request_uses_the_default_model_and_its_default_ratio() -> None:
    request = parse({"prompt": "a cat in a hat"})

    assert request.prompt == "a cat in a hat"
    assert request.model.id == DEFAULT_MODEL_ID
    assert request.aspect_ratio == "1:1"
    assert request.image_urls == ()


def test_prompt_is_trimmed() -> None:
    assert parse({"prompt": "  \n a cat \t "}).prompt == "a cat"


def test_prompt_keeps_inner_newlines_tabs_and_any_language() -> None:
    prompt = "кот в шляпе\n\tи банан 🍌"

    assert parse({"prompt": prompt}).prompt == prompt


def test_prompt_of_2000_characters_is_accepted_after_trimming() -> None:
    assert len(parse({"prompt": "  " + "я" * 2000 + "  "}).prompt) == 2000


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param({}, "prompt is required", id="missing"),
        pytest.param({"prompt": None}, "prompt is required", id="null"),
        pytest.param({"prompt": 5}, "prompt is required", id="number"),
        pytest.param({"prompt": True}, "prompt is required", id="bool"),
        pytest.param({"prompt": ["a cat"]}, "prompt is required", id="list"),
        pytest.param({"prompt": {"text": "a cat"}}, "prompt is required", id="object"),
        pytest.param({"prompt": ""}, "must not be empty", id="empty"),
        pytest.param({"prompt": " \n\t "}, "must not be empty", id="whitespace"),
        pytest.param({"prompt": "x" * 2001}, "2001 characters long; the limit is 2000", id="too-long"),
        pytest.param({"prompt": "a\x00cat"}, "control characters", id="nul"),
        pytest.param({"prompt": "a\x1b[31mcat"}, "control characters", id="escape"),
        pytest.param({"prompt": "a\x7fcat"}, "control characters", id="del"),
        pytest.param({"prompt": "a\ud800cat"}, "control characters", id="lone-surrogate"),
    ],
)
def test_bad_prompt_is_rejected(body: dict[str, Any], message: str) -> None:
    rejected(body, message)


def test_lone_surrogate_from_json_escape_is_rejected() -> None:
    body = parse_json_object(b'{"prompt": "cat \\ud83c"}')

    rejected(body, "control characters")


# --------------------------------------------------------------------------
# model and aspect_ratio
# --------------------------------------------------------------------------


def test_model_can_be_chosen() -> None:
    assert parse({"prompt": "cat", "model": PRO}).model.id == PRO


def test_null_model_and_ratio_mean_the_defaults() -> None:
    request = parse({"prompt": "cat", "model": None, "aspect_ratio": None, "image_urls": None})

    assert (request.model.id, request.aspect_ratio) == (DEFAULT_MODEL_ID, "1:1")


def test_model_cost_follows_the_operators_settings() -> None:
    settings = load_settings({"MODEL_COSTS": f"{PRO}=9"})

    assert parse_generation_request({"prompt": "cat", "model": PRO}, settings).model.cost == 9


def test_a_saved_edit_model_gives_its_text_pair_to_a_prompt_without_a_model() -> None:
    request = parse_generation_request({"prompt": "cat"}, SETTINGS, saved_model=EDIT, saved_aspect_ratio="9:16")

    assert (request.model.id, request.aspect_ratio, request.image_urls) == (DEFAULT_MODEL_ID, "9:16", ())


def test_an_edit_model_cannot_be_the_saved_model() -> None:
    with pytest.raises(InvalidRequest, match=r"nano-banana-edit is an edit model.*text-to-image") as caught:
        parse_settings_change({"model": EDIT}, SETTINGS, saved_model=PRO, saved_aspect_ratio="1:1")

    assert caught.value.code == "invalid_request" and caught.value.status == 400
    assert f"{DEFAULT_MODEL_ID}, {PRO}" in caught.value.message


def test_a_new_ratio_is_checked_against_the_text_model_a_saved_edit_model_gives() -> None:
    change = parse_settings_change({"aspect_ratio": "21:9"}, SETTINGS, saved_model=EDIT, saved_aspect_ratio="1:1")

    assert (change.model, change.aspect_ratio) == (None, "21:9")


@pytest.mark.parametrize(
    ("model", "message"),
    [
        pytest.param("", "Unknown model", id="empty"),
        pytest.param("dall-e-3", "Unknown model", id="unknown"),
        pytest.param("Google/Nano-Banana-Pro", "Unknown model", id="wrong-case"),
        pytest.param(3, "model must be a string", id="number"),
        pytest.param(True, "model must be a string", id="bool"),
        pytest.param([PRO], "model must be a string", id="list"),
    ],
)
def test_bad_model_is_rejected(model: object, message: str) -> None:
    rejected({"prompt": "cat", "model": model}, message)


@pytest.mark.parametrize("ratio", ["21:9", "1:1", "4:3", "3:2", "2:3", "5:4", "4:5", "3:4", "16:9", "9:16"])
def test_text_to_image_models_accept_their_ten_ratios(ratio: str) -> None:
    assert parse({"prompt": "cat", "aspect_ratio": ratio}).aspect_ratio == ratio
    assert parse({"prompt": "cat", "model": PRO, "aspect_ratio": ratio}).aspect_ratio == ratio


@pytest.mark.parametrize("ratio", ["1:1", "9:16", "16:9", "3:4", "4:3"])
def test_edit_model_accepts_its_five_ratios(ratio: str) -> None:
    assert parse({"prompt": "cat", "model": EDIT, "image_urls": [PICTURE], "aspect_ratio": ratio}).aspect_ratio == ratio


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param({"aspect_ratio": "7:3"}, "not available for Nano Banana;", id="unknown-ratio"),
        pytest.param({"aspect_ratio": "1:1 "}, "not available", id="trailing-space"),
        pytest.param({"aspect_ratio": "16/9"}, "not available", id="slash"),
        pytest.param({"aspect_ratio": ""}, "not available", id="empty"),
        pytest.param(
            {"model": EDIT, "image_urls": [PICTURE], "aspect_ratio": "21:9"},
            "not available for Nano Banana Edit",
            id="ratio-of-another-model",
        ),
        pytest.param({"aspect_ratio": 1.5}, "aspect_ratio must be a string", id="number"),
        pytest.param({"aspect_ratio": False}, "aspect_ratio must be a string", id="bool"),
    ],
)
def test_bad_aspect_ratio_is_rejected(body: dict[str, Any], message: str) -> None:
    rejected({"prompt": "cat", **body}, message)


def test_unknown_fields_are_rejected_by_name() -> None:
    rejected({"prompt": "cat", "user_id": 1}, "Unknown field.*'user_id'")
    rejected({"prompt": "cat", "Prompt": "dog"}, "'Prompt'")
    rejected({"prompt": "cat", "num_images": 4, "cost": 0}, "'cost', 'num_images'")


def test_unknown_field_message_stays_short() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse({"prompt": "cat", **{"k" * 5000 + str(i): 1 for i in range(100)}})

    assert len(caught.value.message) < 600


# --------------------------------------------------------------------------
# image_urls
# --------------------------------------------------------------------------


def test_edit_model_takes_one_to_three_image_urls_in_order() -> None:
    urls = [PICTURE, "https://cdn.example.org/b.jpg?size=large#x", "https://example.net./c.webp"]

    assert parse({"prompt": "cat", "model": EDIT, "image_urls": urls[:1]}).image_urls == (PICTURE,)
    assert parse({"prompt": "cat", "model": EDIT, "image_urls": urls}).image_urls == tuple(urls)


def test_text_to_image_model_accepts_an_empty_image_list() -> None:
    assert parse({"prompt": "cat", "image_urls": []}).image_urls == ()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param({"model": EDIT}, "needs image_urls", id="edit-without-images"),
        pytest.param({"model": EDIT, "image_urls": None}, "needs image_urls", id="edit-null-images"),
        pytest.param({"model": EDIT, "image_urls": []}, "needs image_urls", id="edit-empty-list"),
        pytest.param({"model": EDIT, "image_urls": [PICTURE] * 4}, "1 to 3", id="edit-four-images"),
        pytest.param({"model": EDIT, "image_urls": PICTURE}, "needs image_urls", id="edit-string-not-list"),
        pytest.param({"model": EDIT, "image_urls": {"0": PICTURE}}, "needs image_urls", id="edit-object"),
        pytest.param({"model": EDIT, "image_urls": [1]}, r"image_urls\[0\] must be a string", id="number-item"),
        pytest.param({"model": EDIT, "image_urls": [PICTURE, None]}, r"image_urls\[1\]", id="null-item"),
        pytest.param({"model": EDIT, "image_urls": [[PICTURE]]}, r"image_urls\[0\]", id="nested-list"),
        pytest.param({"image_urls": [PICTURE]}, "does not take image_urls.*nano-banana-edit", id="text-model"),
        pytest.param({"model": PRO, "image_urls": [PICTURE]}, "Nano Banana Pro does not take", id="pro-model"),
        pytest.param({"image_urls": ""}, "does not take image_urls", id="text-model-string"),
        pytest.param({"image_urls": {}}, "does not take image_urls", id="text-model-object"),
    ],
)
def test_bad_image_urls_are_rejected(body: dict[str, Any], message: str) -> None:
    rejected({"prompt": "cat", **body}, message)


def edit_with(url: object) -> dict[str, Any]:
    return {"prompt": "make it blue", "model": EDIT, "image_urls": [url]}


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/cat.png",
        "https://EXAMPLE.com/Cat.PNG",
        "https://cdn.example.com:443/a/b/c.png?x=1&y=%20#frag",
        "https://example.com./cat.png",
        "https://xn--80ak6aa92e.xn--p1ai/cat.png",
        "https://my-bucket.s3.eu-west-1.amazonaws.com/u/1/a%20b.png",
        "https://8.8.8.8/cat.png",
        "https://[2606:4700:4700::1111]/cat.png",
        "https://[2002:808:808::1]/cat.png",
        "https://[64:ff9b::808:808]/cat.png",
        "https://api.telegram.org/bots/api",
        "https://example.com/" + "a" * (2048 - len("https://example.com/")),
    ],
)
def test_public_https_image_urls_are_accepted(url: str) -> None:
    assert parse(edit_with(url)).image_urls == (url,)


HOSTILE_URLS = [
    # not https
    "http://example.com/cat.png",
    "HTTP://example.com/cat.png",
    "ftp://example.com/cat.png",
    "file:///etc/passwd",
    "data:image/png;base64,iVBORw0KGgo=",
    "javascript:alert(1)",
    "//example.com/cat.png",
    "example.com/cat.png",
    "gopher://127.0.0.1:6379/_FLUSHALL",
    # no host
    "https:///cat.png",
    "https://:443/cat.png",
    "https:example.com/cat.png",
    "https://",
    # names that only exist inside a network
    "https://localhost/cat.png",
    "https://LOCALHOST/cat.png",
    "https://localhost./cat.png",
    "https://localhost:8000/api/health",
    "https://app.localhost/cat.png",
    "https://printer.local/cat.png",
    "https://metadata.google.internal/computeMetadata/v1/",
    "https://ip-10-0-0-1.ec2.internal/",
    "https://instance-data/latest/meta-data/",
    "https://intranet/cat.png",
    "https://router.localdomain/",
    "https://nas.home.arpa/cat.png",
    "https://1.0.0.127.in-addr.arpa/",
    # loopback, private, link-local, reserved, multicast, unspecified IPv4
    "https://127.0.0.1/cat.png",
    "https://127.0.0.1./cat.png",
    "https://127.255.255.254:8443/",
    "https://10.0.0.1/cat.png",
    "https://172.16.0.1/cat.png",
    "https://172.31.255.255/cat.png",
    "https://192.168.1.1/cat.png",
    "https://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "https://169.254.170.2/v2/credentials",
    "https://100.64.0.1/cat.png",
    "https://0.0.0.0/cat.png",
    "https://255.255.255.255/cat.png",
    "https://224.0.0.1/cat.png",
    "https://239.255.255.250/cat.png",
    "https://240.0.0.1/cat.png",
    "https://192.0.2.1/cat.png",
    "https://198.18.0.1/cat.png",
    # IPv4 written the ways only URL parsers and inet_aton understand
    "https://2130706433/cat.png",
    "https://0x7f000001/cat.png",
    "https://0X7F000001/cat.png",
    "https://0x7f.0.0.1/cat.png",
    "https://0177.0.0.1/cat.png",
    "https://017700000001/cat.png",
    "https://127.1/cat.png",
    "https://127.0.1/cat.png",
    "https://127.000.000.001/cat.png",
    "https://0/cat.png",
    "https://0x/cat.png",
    "https://2852039166/latest/meta-data/",
    "https://0xa9fea9fe/latest/meta-data/",
    "https://1.2.3.4.5/cat.png",
    "https://example.123/cat.png",
    # IPv6
    "https://[::1]/cat.png",
    "https://[::]/cat.png",
    "https://[0:0:0:0:0:0:0:1]/cat.png",
    "https://[fe80::1]/cat.png",
    "https://[fe80::1%25eth0]/cat.png",
    "https://[2606:4700:4700::1111%25eth0]/cat.png",
    "https://[fc00::1]/cat.png",
    "https://[fd00:ec2::254]/latest/meta-data/",
    "https://[fec0::1]/cat.png",
    "https://[ff02::1]/cat.png",
    "https://[::ffff:127.0.0.1]/cat.png",
    "https://[::ffff:7f00:1]/cat.png",
    "https://[::ffff:169.254.169.254]/latest/meta-data/",
    "https://[::127.0.0.1]/cat.png",
    "https://[64:ff9b::7f00:1]/cat.png",
    "https://[2002:7f00:1::]/cat.png",
    "https://[2002:a9fe:a9fe::]/cat.png",
    "https://[2001:db8::1]/cat.png",
    # where Python 3.11's and 3.13's ipaddress tables disagree (decided in chalicelib.addresses)
    "https://[2001:1::1]/cat.png",
    "https://[2001:20::1]/cat.png",
    "https://[2001:3::1]/cat.png",
    "https://[64:ff9b:1::808:808]/cat.png",
    "https://[2002:a00:1::]/cat.png",
    "https://[::1/cat.png",
    "https://[zz::1]/cat.png",
    "https://[127.0.0.1]/cat.png",
    # credentials, and parser confusion around them
    "https://user:pass@example.com/cat.png",
    "https://user@example.com/cat.png",
    "https://example.com@127.0.0.1/cat.png",
    "https://:@example.com/cat.png",
    "https://example.com\\@127.0.0.1/cat.png",
    "https://127.0.0.1\\.example.com/cat.png",
    "https://example.com/images\\cat.png",
    # encodings that some parsers decode into a different host
    "https://%6c%6f%63%61%6c%68%6f%73%74/cat.png",
    "https://127%2E0%2E0%2E1/cat.png",
    "https://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ/cat.png",
    "https://127。0。0。1/cat.png",
    "https://exämple.com/cat.png",
    # whitespace and control characters
    " https://example.com/cat.png",
    "https://example.com/cat.png ",
    "https://exa mple.com/cat.png",
    "https://example.com/a b.png",
    "https://exa\tmple.com/cat.png",
    "https://exam\nple.com/cat.png",
    "https://example.com/\x00.png",
    "https://example.com/\x7f.png",
    # malformed host names and ports
    "https://-example.com/cat.png",
    "https://example-.com/cat.png",
    "https://exa_mple.com/cat.png",
    "https://example..com/cat.png",
    "https://.example.com/cat.png",
    "https://" + "a" * 64 + ".com/cat.png",
    "https://" + ("a" * 60 + ".") * 5 + "com/cat.png",
    "https://example.com:99999/cat.png",
    "https://example.com:port/cat.png",
    "https://example.com:-1/cat.png",
    # a bot token would go to a third party
    TELEGRAM_FILE,
    TELEGRAM_FILE.replace("api.telegram.org", "API.Telegram.ORG"),
    TELEGRAM_FILE.replace("api.telegram.org", "api.telegram.org."),
    TELEGRAM_FILE.replace("api.telegram.org", "api.telegram.org:443"),
    TELEGRAM_FILE.replace("/file/", "/%66ile/"),
    TELEGRAM_FILE.replace("/file/bot", "/file/BOT"),
    TELEGRAM_FILE.replace(":", "%3A").replace("https%3A", "https:"),
    "https://api.telegram.org/file/bot",
    "https://tg-proxy.example.com/file/bot1234567890:AAH5YkoiEuPk8-FZa32hStHTqXiLPtAEhx8/x.jpg",
    "https://fetch.example.com/?u=" + TELEGRAM_FILE.replace(":", "%3A").replace("/", "%2F"),
    # too long
    "https://example.com/" + "a" * (2049 - len("https://example.com/")),
]


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_hostile_image_urls_are_rejected(url: str) -> None:
    with pytest.raises(InvalidRequest, match=r"image_urls\[0\]"):
        parse(edit_with(url))


def test_hostile_url_in_any_position_is_rejected() -> None:
    rejected({"prompt": "cat", "model": EDIT, "image_urls": [PICTURE, PICTURE, "https://127.0.0.1/"]}, r"\[2\]")


def test_bot_token_in_a_url_is_named_as_the_reason() -> None:
    rejected(edit_with(TELEGRAM_FILE), "bot token")


def test_url_error_does_not_echo_the_url() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse(edit_with(TELEGRAM_FILE))

    assert "AAH5YkoiEuPk8" not in caught.value.message


url_hosts = st.one_of(
    st.from_regex(r"\A[a-z0-9.\-]{0,20}\Z"),
    st.sampled_from(["localhost", "127.0.0.1", "[::1]", "example.com", "0x7f.1", "[", "]", "@", "%00"]),
    st.text(max_size=20),
)


@given(
    st.sampled_from(["https://", "http://", "", "HTTPS://", "https:"]),
    url_hosts,
    st.sampled_from(["", ":443", ":0", ":x", ":99999"]),
    st.text(max_size=20),
)
def test_any_url_gives_a_request_or_invalid_request(scheme: str, host: str, port: str, path: str) -> None:
    try:
        request = parse(edit_with(f"{scheme}{host}{port}/{path}"))
    except InvalidRequest:
        return
    assert request.image_urls[0].lower().startswith("https://")


# --------------------------------------------------------------------------
# fingerprint
# --------------------------------------------------------------------------


def test_fingerprint_is_stable_across_releases() -> None:
    """Fingerprints are stored with generations: changing the formula breaks idempotent retries."""
    request = parse({"prompt": "a cat", "model": EDIT, "aspect_ratio": "4:3", "image_urls": [PICTURE]})

    # sha256 of ["a cat","google/nano-banana-edit","4:3",["https://example.com/cat.png"]]
    assert request.fingerprint() == "d8d4f676bba2fc457e5a6cf9f27f43db13ff89dee8cbe50c0a558ded01f8fe8f"


def test_same_parameters_give_the_same_fingerprint() -> None:
    implicit = parse({"prompt": "a cat"})
    explicit = parse({"prompt": "  a cat ", "model": DEFAULT_MODEL_ID, "aspect_ratio": "1:1", "image_urls": []})

    assert implicit.fingerprint() == explicit.fingerprint()


def test_model_cost_is_not_part_of_the_fingerprint() -> None:
    cheap = parse({"prompt": "a cat", "model": PRO})
    dear = parse_generation_request({"prompt": "a cat", "model": PRO}, load_settings({"MODEL_COSTS": f"{PRO}=40"}))

    assert cheap.fingerprint() == dear.fingerprint()


@pytest.mark.parametrize(
    "changed",
    [
        {"prompt": "a dog"},
        {"prompt": "a cat."},
        {"aspect_ratio": "16:9"},
        {"image_urls": [PICTURE]},
        {"image_urls": ["https://example.com/b.png", PICTURE]},
        {"image_urls": ["https://example.com/cat.png?"]},
    ],
)
def test_any_change_of_parameters_changes_the_fingerprint(changed: dict[str, Any]) -> None:
    base = {
        "prompt": "a cat",
        "model": EDIT,
        "aspect_ratio": "1:1",
        "image_urls": [PICTURE, "https://example.com/b.png"],
    }

    assert parse(base).fingerprint() != parse({**base, **changed}).fingerprint()


def test_model_changes_the_fingerprint() -> None:
    assert parse({"prompt": "a cat"}).fingerprint() != parse({"prompt": "a cat", "model": PRO}).fingerprint()


def test_fingerprint_fields_cannot_bleed_into_each_other() -> None:
    one = parse({"prompt": 'a", "1:1', "model": EDIT, "aspect_ratio": "1:1", "image_urls": [PICTURE]})
    two = parse({"prompt": "a", "model": EDIT, "aspect_ratio": "1:1", "image_urls": [PICTURE]})

    assert one.fingerprint() != two.fingerprint()


# --------------------------------------------------------------------------
# Property: any body parses or is a 400, never anything else
# --------------------------------------------------------------------------

field_values = st.one_of(
    json_values,
    st.sampled_from([DEFAULT_MODEL_ID, EDIT, PRO, "1:1", "21:9", "9:16", PICTURE, "https://127.0.0.1/", ""]),
    st.lists(st.sampled_from([PICTURE, "https://[::1]/", "x", TELEGRAM_FILE]) | json_values, max_size=5),
)
bodies = st.dictionaries(
    st.sampled_from(["prompt", "model", "aspect_ratio", "image_urls"]) | st.text(max_size=8),
    field_values,
    max_size=5,
)


@given(bodies)
def test_any_body_gives_a_request_or_invalid_request(body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    try:
        request = parse(parse_json_object(raw))
    except InvalidRequest:
        return
    assert 1 <= len(request.prompt) <= 2000
    assert request.aspect_ratio in request.model.aspect_ratios
    assert len(request.image_urls) <= request.model.max_images
    assert len(request.fingerprint()) == 64


# --------------------------------------------------------------------------
# Idempotency-Key
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["a", "x" * 128, "3f2b1c9e-6d4a-4e8b-9c1d-2a7f5e0b8c3d", "has space", "".join(chr(c) for c in range(0x21, 0x7F))],
)
def test_idempotency_key_of_visible_ascii_is_kept(key: str) -> None:
    assert parse_idempotency_key(key) == key


def test_absent_idempotency_key_is_none() -> None:
    assert parse_idempotency_key(None) is None


@pytest.mark.parametrize(
    "key",
    ["", " ", "x" * 129, " leading", "trailing ", "tab\tkey", "new\nline", "ключ", "del\x7f", "nul\x00"],
)
def test_bad_idempotency_key_is_rejected(key: str) -> None:
    with pytest.raises(InvalidRequest, match="Idempotency-Key"):
        parse_idempotency_key(key)


@given(st.text(max_size=140))
def test_any_idempotency_key_is_kept_or_rejected(key: str) -> None:
    try:
        assert parse_idempotency_key(key) == key
    except InvalidRequest:
        printable = all(" " <= char <= "~" for char in key)
        assert not (1 <= len(key) <= 128 and printable and key[0] != " " and key[-1] != " ")


# --------------------------------------------------------------------------
# ?limit=
# --------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "limit"), [(None, 20), ("1", 1), ("20", 20), ("50", 50), ("007", 7)])
def test_limit_is_parsed(raw: str | None, limit: int) -> None:
    assert parse_limit(raw) == limit


@pytest.mark.parametrize(
    "raw", ["", "0", "51", "-1", "+5", " 5", "5 ", "5.0", "1e1", "ten", "\u0665", "\u00b2", "9" * 7, "0x10"]
)
def test_bad_limit_is_rejected(raw: str) -> None:
    with pytest.raises(InvalidRequest, match="limit"):
        parse_limit(raw)


# --------------------------------------------------------------------------
# Admin: credit change and user id
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"amount": 5, "reason": "gift"}, (5, "gift")),
        ({"amount": -5, "reason": "  refund for #12 \n"}, (-5, "refund for #12")),
        ({"amount": 1_000_000, "reason": "r" * 200}, (1_000_000, "r" * 200)),
        ({"amount": -1_000_000, "reason": "chargeback"}, (-1_000_000, "chargeback")),
    ],
)
def test_credit_change_is_parsed(body: dict[str, Any], expected: tuple[int, str]) -> None:
    assert parse_admin_credit_change(body) == expected


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param({"reason": "gift"}, "amount must be an integer", id="no-amount"),
        pytest.param({"amount": None, "reason": "gift"}, "amount must be an integer", id="null-amount"),
        pytest.param({"amount": True, "reason": "gift"}, "amount must be an integer", id="bool-amount"),
        pytest.param({"amount": 5.0, "reason": "gift"}, "amount must be an integer", id="float-amount"),
        pytest.param({"amount": "5", "reason": "gift"}, "amount must be an integer", id="string-amount"),
        pytest.param({"amount": 0, "reason": "gift"}, "non-zero", id="zero"),
        pytest.param({"amount": 1_000_001, "reason": "gift"}, "non-zero and between", id="too-big"),
        pytest.param({"amount": -1_000_001, "reason": "gift"}, "non-zero and between", id="too-small"),
        pytest.param({"amount": 10**30, "reason": "gift"}, "non-zero and between", id="huge"),
        pytest.param({"amount": 5}, "reason is required", id="no-reason"),
        pytest.param({"amount": 5, "reason": 7}, "reason is required", id="number-reason"),
        pytest.param({"amount": 5, "reason": ""}, "reason must not be empty", id="empty-reason"),
        pytest.param({"amount": 5, "reason": "   "}, "reason must not be empty", id="blank-reason"),
        pytest.param({"amount": 5, "reason": "r" * 201}, "limit is 200", id="long-reason"),
        pytest.param({"amount": 5, "reason": "a\x00b"}, "control characters", id="control-reason"),
        pytest.param({"amount": 5, "reason": "gift", "user_id": 1}, "Unknown field", id="unknown-field"),
    ],
)
def test_bad_credit_change_is_rejected(body: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        parse_admin_credit_change(body)


@given(st.dictionaries(st.sampled_from(["amount", "reason"]) | st.text(max_size=5), json_values, max_size=3))
def test_any_credit_change_body_is_parsed_or_rejected(body: dict[str, Any]) -> None:
    try:
        amount, reason = parse_admin_credit_change(body)
    except InvalidRequest:
        return
    assert type(amount) is int and amount != 0 and abs(amount) <= 1_000_000
    assert 1 <= len(reason) <= 200


@pytest.mark.parametrize(("raw", "user_id"), [("1", 1), ("279058397", 279058397), (str(2**53), 2**53)])
def test_user_id_is_parsed(raw: str, user_id: int) -> None:
    assert parse_user_id(raw) == user_id


@pytest.mark.parametrize(
    "raw", ["", "0", "-1", str(2**53 + 1), "1" * 17, "1e3", " 1", "1 ", "+1", "abc", "\u0661", "0x10"]
)
def test_bad_user_id_is_rejected(raw: str) -> None:
    with pytest.raises(InvalidRequest, match="user_id"):
        parse_user_id(raw)


@given(st.text(max_size=20))
def test_any_user_id_text_is_parsed_or_rejected(raw: str) -> None:
    with contextlib.suppress(InvalidRequest):
        assert 1 <= parse_user_id(raw) <= 2**53
