"""Authentication (CONTRACT §3): Mini App initData and admin credentials.

Signatures here are built by ``telegram_sign`` below, Telegram's published
algorithm written out step by step, and by Telegram itself (the reference
vectors): never by ``chalicelib.auth.sign_init_data``, so a bug shared by our
signer and our checker cannot make these tests pass.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import quote, urlencode

import pytest
from chalice.app import CaseInsensitiveMapping
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.auth import (
    CLOCK_SKEW_SECONDS,
    MAX_INIT_DATA_BYTES,
    Admin,
    InitData,
    authenticate_admin,
    authenticate_user,
    sign_init_data,
    validate_init_data,
)
from chalicelib.config import Settings, load_settings
from chalicelib.errors import Forbidden, Unauthorized

BOT_TOKEN = "7000000007:AAFakeTokenForUnitTestsOnly_abcdefghij"
OTHER_BOT_TOKEN = "7000000008:AAAnotherBotsTokenForUnitTests_abcdefg"
ADMIN_TOKEN = "admin-secret-token-for-tests-0123456789"
ADMIN_ID = 4242
NOW = 1_750_000_000
MAX_AGE = 86_400
USER = {"id": 279058397, "first_name": "Ada", "last_name": "Lovelace", "username": "ada", "language_code": "en"}

# Published by the Telegram Mini Apps project (tma.js docs), with its token.
REFERENCE_TOKEN = "5768337691:AAH5YkoiEuPk8-FZa32hStHTqXiLPtAEhx8"
REFERENCE_INIT_DATA = (
    "query_id=AAHdF6IQAAAAAN0XohDhrOrc"
    "&user=%7B%22id%22%3A279058397%2C%22first_name%22%3A%22Vladislav%22%2C%22last_name%22%3A%22Kibenko%22"
    "%2C%22username%22%3A%22vdkfrost%22%2C%22language_code%22%3A%22ru%22%2C%22is_premium%22%3Atrue%7D"
    "&auth_date=1662771648&hash=c501b71e775f74ce10e377dea85a7ea24ecd640b223ea86dfe453e0eaed2e2b2"
)
# A newer client's initData, carrying the Ed25519 ``signature`` field.
SIGNATURE_REFERENCE_TOKEN = "7342037359:AAHI25ES9xCOMPokpYoz-p8XVrZUdygo2J4"
SIGNATURE_REFERENCE_INIT_DATA = (
    "user=%7B%22id%22%3A279058397%2C%22first_name%22%3A%22Vladislav%20%2B%20-%20%3F%20%5C%2F%22%2C%22last_name"
    "%22%3A%22Kibenko%22%2C%22username%22%3A%22vdkfrost%22%2C%22language_code%22%3A%22ru%22%2C%22is_premium%22"
    "%3Atrue%2C%22allows_write_to_pm%22%3Atrue%2C%22photo_url%22%3A%22https%3A%5C%2F%5C%2Ft.me%5C%2Fi%5C%2Fuserpic"
    "%5C%2F320%5C%2F4FPEE4tmP3ATHa57u6MqTDih13LTOiMoKoLDRG4PnSA.svg%22%7D"
    "&chat_instance=8134722200314281151&chat_type=private&auth_date=1733509682"
    "&signature=TYJxVcisqbWjtodPepiJ6ghziUL94-KNpG8Pau-X7oNNLNBM72APCpi_RKiUlBvcqo5L-LAxIc3dnTzcZX_PDg"
    "&hash=a433d8f9847bd6addcc563bff7cc82c89e97ea0d90c11fe5729cae6796a36d73"
)


def telegram_hash(pairs: list[tuple[str, str]], token: str) -> str:
    """Telegram's algorithm, step by step (EXTERNAL-APIS.md, "initData")."""
    data_check_string = "\n".join(f"{key}={value}" for key, value in sorted(pairs))
    secret = hmac.new(b"WebAppData", token.encode(), hashlib.sha256).digest()
    return hmac.new(secret, data_check_string.encode(), hashlib.sha256).hexdigest()


def telegram_sign(pairs: list[tuple[str, str]], token: str = BOT_TOKEN, *, hash_at: int | None = None) -> str:
    """URL-encode ``pairs`` in the given order, with ``hash`` inserted at ``hash_at`` (default: last)."""
    signed = list(pairs)
    signed.insert(len(signed) if hash_at is None else hash_at, ("hash", telegram_hash(pairs, token)))
    return urlencode(signed, quote_via=quote)


def user_json(user: dict[str, object] | None = None) -> str:
    return json.dumps(USER if user is None else user, separators=(",", ":"))


def basic_pairs(*, auth_date: int = NOW, user: dict[str, object] | None = None) -> list[tuple[str, str]]:
    return [("query_id", "AAHdF6IQAAAAAN0XohDhrOrc"), ("user", user_json(user)), ("auth_date", str(auth_date))]


def validate(raw: str, token: str = BOT_TOKEN, now: float = NOW) -> InitData:
    return validate_init_data(raw, token, max_age_seconds=MAX_AGE, now=now)


def settings(**env: str) -> Settings:
    return load_settings({"TELEGRAM_BOT_TOKEN": BOT_TOKEN, **env})


def tma(raw: str) -> dict[str, str]:
    return {"Authorization": f"tma {raw}"}


# --------------------------------------------------------------------------
# Genuine initData is accepted
# --------------------------------------------------------------------------


def test_telegram_reference_vector_validates() -> None:
    init_data = validate(REFERENCE_INIT_DATA, REFERENCE_TOKEN, now=1662771648)

    assert init_data.user.id == 279058397
    assert init_data.user.first_name == "Vladislav"
    assert init_data.user.username == "vdkfrost"
    assert init_data.auth_date == 1662771648


def test_signature_field_stays_in_the_data_check_string() -> None:
    init_data = validate(SIGNATURE_REFERENCE_INIT_DATA, SIGNATURE_REFERENCE_TOKEN, now=1733509682)

    assert init_data.user.first_name == "Vladislav + - ? /"  # JSON's \/ is /
    assert "signature" in init_data.fields


def test_initdata_signed_without_its_signature_field_is_rejected() -> None:
    """A validator that dropped ``signature`` from the check string would accept this forgery."""
    pairs = [*basic_pairs(), ("signature", "TYJxVcisqbWjtodPepiJ6ghziUL94-KNpG8Pau-X7oNNLNBM72APCpi_RKiUlBvcqo")]
    hash_without_signature = telegram_hash(pairs[:-1], BOT_TOKEN)
    raw = urlencode([*pairs, ("hash", hash_without_signature)], quote_via=quote)

    with pytest.raises(Unauthorized):
        validate(raw)
    validate(telegram_sign(pairs))  # the same fields signed the Telegram way pass


def test_valid_initdata_gives_the_signed_user() -> None:
    init_data = validate(telegram_sign([*basic_pairs(), ("start_param", "ref_7")]))

    assert init_data.user.id == USER["id"]
    assert init_data.user.first_name == "Ada"
    assert init_data.user.last_name == "Lovelace"
    assert init_data.user.username == "ada"
    assert init_data.user.language_code == "en"
    assert init_data.start_param == "ref_7"
    assert init_data.auth_date == NOW
    assert "hash" not in init_data.fields
    assert init_data.fields["query_id"] == "AAHdF6IQAAAAAN0XohDhrOrc"


def test_optional_user_fields_may_be_absent() -> None:
    init_data = validate(telegram_sign(basic_pairs(user={"id": 5, "first_name": "Bo"})))

    assert init_data.user == type(init_data.user)(5, "Bo", None, None, None)
    assert init_data.start_param is None


@pytest.mark.parametrize("hash_at", [0, 1, 2, 3])
def test_fields_in_any_order_are_accepted(hash_at: int) -> None:
    pairs = [("auth_date", str(NOW)), ("user", user_json()), ("query_id", "Q"), ("can_send_after", "10")]

    assert validate(telegram_sign(pairs, hash_at=hash_at)).user.id == USER["id"]


def test_ios_like_initdata_without_query_id_is_accepted() -> None:
    pairs = [
        ("user", user_json()),
        ("chat_instance", "-5471737045128434439"),
        ("chat_type", "sender"),
        ("auth_date", str(NOW)),
        ("signature", "Wn1Xo5OboCJ7X-KwCMsfhAp6okKjKMuoKKyYoYKskC9_F7h-5wIYoIlgA86kjFIZ3FKofmWXT0aTOmEl_fweDw"),
    ]

    init_data = validate(telegram_sign(pairs))

    assert set(init_data.fields) == {"user", "chat_instance", "chat_type", "auth_date", "signature"}


def test_any_extra_fields_are_accepted_and_signed() -> None:
    chat = json.dumps({"id": -100, "type": "group", "title": "Friends"}, separators=(",", ":"))
    pairs = [*basic_pairs(), ("chat", chat), ("receiver", user_json()), ("empty", ""), ("zzz_future_field", "1")]

    assert validate(telegram_sign(pairs)).fields["empty"] == ""


def test_uppercase_hex_hash_is_accepted() -> None:
    raw = telegram_sign(basic_pairs())
    head, _, digest = raw.rpartition("hash=")

    assert validate(head + "hash=" + digest.upper()).user.id == USER["id"]


def test_non_ascii_user_names_are_accepted() -> None:
    user = {"id": 9, "first_name": "Алиса 🍌", "last_name": "& = + %"}

    assert validate(telegram_sign(basic_pairs(user=user))).user.first_name == "Алиса 🍌"


def test_sign_init_data_round_trips_through_validation() -> None:
    raw = sign_init_data(USER, BOT_TOKEN, auth_date=NOW, extra={"start_param": "x y"})

    init_data = validate(raw)

    assert init_data.user.id == USER["id"]
    assert init_data.start_param == "x y"


def test_sign_init_data_matches_telegrams_algorithm() -> None:
    raw = sign_init_data(USER, BOT_TOKEN, auth_date=NOW, extra={"query_id": "Q"})
    pairs = [("query_id", "Q"), ("user", json.dumps(USER, separators=(",", ":"))), ("auth_date", str(NOW))]

    assert raw.endswith("hash=" + telegram_hash(pairs, BOT_TOKEN))


def test_sign_init_data_refuses_to_overwrite_signed_fields() -> None:
    with pytest.raises(ValueError, match="auth_date"):
        sign_init_data(USER, BOT_TOKEN, auth_date=NOW, extra={"auth_date": "1"})


# --------------------------------------------------------------------------
# Forged, tampered, stale or malformed initData is refused (401)
# --------------------------------------------------------------------------


def test_forged_hash_is_rejected() -> None:
    raw = urlencode([*basic_pairs(), ("hash", "0" * 64)])

    with pytest.raises(Unauthorized, match="signature"):
        validate(raw)


def test_user_tampered_after_signing_is_rejected() -> None:
    raw = telegram_sign(basic_pairs())
    encoded_user = quote(user_json(), safe="")
    tampered = raw.replace(encoded_user, quote(user_json({**USER, "id": 1}), safe=""))
    assert tampered != raw

    with pytest.raises(Unauthorized, match="signature"):
        validate(tampered)


def test_initdata_of_another_bot_is_rejected() -> None:
    with pytest.raises(Unauthorized, match="signature"):
        validate(telegram_sign(basic_pairs(), OTHER_BOT_TOKEN))


def test_reference_vector_is_rejected_with_another_token() -> None:
    with pytest.raises(Unauthorized):
        validate(REFERENCE_INIT_DATA, BOT_TOKEN, now=1662771648)


def test_initdata_exactly_max_age_old_is_accepted() -> None:
    assert validate(telegram_sign(basic_pairs(auth_date=NOW - MAX_AGE))).auth_date == NOW - MAX_AGE


def test_expired_initdata_is_rejected() -> None:
    with pytest.raises(Unauthorized, match="expired"):
        validate(telegram_sign(basic_pairs(auth_date=NOW - MAX_AGE - 1)))


def test_reference_vector_is_expired_today() -> None:
    with pytest.raises(Unauthorized, match="expired"):
        validate_init_data(REFERENCE_INIT_DATA, REFERENCE_TOKEN, max_age_seconds=MAX_AGE)


def test_auth_date_within_clock_skew_is_accepted() -> None:
    assert validate(telegram_sign(basic_pairs(auth_date=NOW + CLOCK_SKEW_SECONDS))).auth_date == NOW + 60


def test_future_auth_date_is_rejected() -> None:
    with pytest.raises(Unauthorized, match="future"):
        validate(telegram_sign(basic_pairs(auth_date=NOW + CLOCK_SKEW_SECONDS + 1)))


def test_duplicated_key_is_rejected_even_when_one_copy_is_signed() -> None:
    """With "last one wins" parsing, the appended user would be believed and the hash would still match."""
    signed = telegram_sign(basic_pairs())
    attacker = quote(user_json({"id": 1, "first_name": "Mallory"}), safe="")
    smuggled = "user=" + attacker + "&" + signed

    for raw in (signed + "&user=" + attacker, smuggled, signed + "&auth_date=" + str(NOW)):
        with pytest.raises(Unauthorized, match="duplicated"):
            validate(raw)


def test_duplicated_hash_is_rejected() -> None:
    signed = telegram_sign(basic_pairs())

    with pytest.raises(Unauthorized, match="duplicated"):
        validate(signed + "&hash=" + "0" * 64)


def test_oversized_initdata_is_rejected_even_when_correctly_signed() -> None:
    pairs = [*basic_pairs(), ("padding", "x" * MAX_INIT_DATA_BYTES)]

    with pytest.raises(Unauthorized, match="too long"):
        validate(telegram_sign(pairs))


def test_initdata_just_under_the_size_limit_is_accepted() -> None:
    raw = telegram_sign([*basic_pairs(), ("padding", "")])
    raw = telegram_sign([*basic_pairs(), ("padding", "x" * (MAX_INIT_DATA_BYTES - len(raw)))])
    assert len(raw) == MAX_INIT_DATA_BYTES

    assert validate(raw).user.id == USER["id"]


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        pytest.param([("user", user_json()), ("query_id", "Q")], "auth_date", id="no-auth-date"),
        pytest.param([("auth_date", str(NOW)), ("query_id", "Q")], "no user", id="no-user"),
        pytest.param([("auth_date", "17e8"), ("user", user_json())], "auth_date", id="auth-date-not-digits"),
        pytest.param([("auth_date", "-5"), ("user", user_json())], "auth_date", id="auth-date-negative"),
        pytest.param([("auth_date", ""), ("user", user_json())], "auth_date", id="auth-date-empty"),
        pytest.param([("auth_date", str(NOW)), ("user", "not json")], "user", id="user-not-json"),
        pytest.param([("auth_date", str(NOW)), ("user", "[1, 2]")], "user", id="user-not-object"),
        pytest.param([("auth_date", str(NOW)), ("user", "[" * 1200)], "user", id="user-deeply-nested"),
        pytest.param([("auth_date", str(NOW)), ("user", '{"first_name":"A"}')], "id", id="user-without-id"),
        pytest.param([("auth_date", str(NOW)), ("user", '{"id":"5","first_name":"A"}')], "id", id="id-string"),
        pytest.param([("auth_date", str(NOW)), ("user", '{"id":true,"first_name":"A"}')], "id", id="id-bool"),
        pytest.param([("auth_date", str(NOW)), ("user", '{"id":5.0,"first_name":"A"}')], "id", id="id-float"),
        pytest.param([("auth_date", str(NOW)), ("user", '{"id":0,"first_name":"A"}')], "id", id="id-zero"),
        pytest.param([("auth_date", str(NOW)), ("user", '{"id":-7,"first_name":"A"}')], "id", id="id-negative"),
        pytest.param(
            [("auth_date", str(NOW)), ("user", '{"id":9007199254740993,"first_name":"A"}')], "id", id="id-too-big"
        ),
        pytest.param([("auth_date", str(NOW)), ("user", '{"id":5}')], "first name", id="no-first-name"),
        pytest.param([("auth_date", str(NOW)), ("user", '{"id":5,"first_name":7}')], "first name", id="name-int"),
        pytest.param(
            [("auth_date", str(NOW)), ("user", '{"id":5,"first_name":"A","username":7}')], "user", id="username-int"
        ),
    ],
)
def test_correctly_signed_but_malformed_initdata_is_rejected(pairs: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(Unauthorized, match=message):
        validate(telegram_sign(pairs))


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("", id="empty"),
        pytest.param("user=%7B%7D&auth_date=1", id="no-hash"),
        pytest.param("user=x&hash=", id="empty-hash"),
        pytest.param("user=x&hash=" + "a" * 63, id="short-hash"),
        pytest.param("user=x&hash=" + "g" * 64, id="non-hex-hash"),
        pytest.param("user=x&hash=%C3%A9" + "a" * 63, id="non-ascii-hash"),
        pytest.param("user=x&auth_date=1&garbage", id="field-without-equals"),
        pytest.param("user=x&&auth_date=1", id="empty-field"),
        pytest.param("=x&user=x", id="empty-key"),
        pytest.param("user=%FF&hash=" + "a" * 64, id="percent-escape-not-utf8"),
        pytest.param("user=é&hash=" + "a" * 64, id="raw-non-ascii"),
    ],
)
def test_malformed_initdata_is_rejected(raw: str) -> None:
    with pytest.raises(Unauthorized):
        validate(raw)


def test_unauthorized_messages_do_not_echo_the_secret_or_the_expected_hash() -> None:
    raw = urlencode([*basic_pairs(), ("hash", "0" * 64)])
    expected = telegram_hash(basic_pairs(), BOT_TOKEN)

    with pytest.raises(Unauthorized) as caught:
        validate(raw)

    assert BOT_TOKEN not in caught.value.message
    assert expected not in caught.value.message
    assert caught.value.status == 401


@given(st.text(max_size=300))
def test_arbitrary_text_is_unauthorized_and_never_crashes(raw: str) -> None:
    with pytest.raises(Unauthorized):
        validate(raw)


@given(st.integers(min_value=0, max_value=len(REFERENCE_INIT_DATA) - 1), st.characters(min_codepoint=32))
def test_changing_any_character_of_genuine_initdata_breaks_it(position: int, char: str) -> None:
    original = REFERENCE_INIT_DATA[position]
    if char.lower() == original.lower():
        return  # no change, or one that decodes to the same bytes (%7b == %7B, hex hash case)
    tampered = REFERENCE_INIT_DATA[:position] + char + REFERENCE_INIT_DATA[position + 1 :]

    with pytest.raises(Unauthorized):
        validate(tampered, REFERENCE_TOKEN, now=1662771648)


# --------------------------------------------------------------------------
# authenticate_user: the Authorization header
# --------------------------------------------------------------------------


def fresh_init_data(user: dict[str, object] | None = None) -> str:
    return telegram_sign(basic_pairs(auth_date=int(time.time()), user=user))


def test_user_is_authenticated_from_a_tma_header() -> None:
    assert authenticate_user(tma(fresh_init_data()), settings()).user.id == USER["id"]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"authorization": "tma {}"}, id="lowercase-name"),
        pytest.param({"AUTHORIZATION": "tma {}"}, id="uppercase-name"),
        pytest.param({"Authorization": "TMA {}"}, id="uppercase-scheme"),
        pytest.param({"Authorization": "Tma {}"}, id="mixed-case-scheme"),
        pytest.param({"Authorization": "tma   {}"}, id="several-spaces"),
        pytest.param({"Authorization": "tma\t{} "}, id="tab-and-trailing-space"),
    ],
)
def test_header_name_and_scheme_are_case_insensitive(headers: dict[str, str]) -> None:
    raw = fresh_init_data()
    filled = {name: value.format(raw) for name, value in headers.items()}

    assert authenticate_user(filled, settings()).user.id == USER["id"]


def test_chalice_header_mapping_is_accepted() -> None:
    headers = CaseInsensitiveMapping({"authorization": f"tma {fresh_init_data()}"})

    assert authenticate_user(headers, settings()).user.id == USER["id"]


def test_max_age_comes_from_settings() -> None:
    raw = telegram_sign(basic_pairs(auth_date=int(time.time()) - 120))

    assert authenticate_user(tma(raw), settings()).user.id == USER["id"]
    with pytest.raises(Unauthorized, match="expired"):
        authenticate_user(tma(raw), settings(INIT_DATA_MAX_AGE_SECONDS="60"))


def test_bot_token_comes_from_settings() -> None:
    with pytest.raises(Unauthorized, match="signature"):
        authenticate_user(tma(fresh_init_data()), settings(TELEGRAM_BOT_TOKEN=OTHER_BOT_TOKEN))


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        pytest.param({}, "Missing", id="missing"),
        pytest.param({"X-Authorization": "tma x"}, "Missing", id="other-header"),
        pytest.param({"Authorization": ""}, "scheme", id="empty"),
        pytest.param({"Authorization": "tma"}, "scheme", id="scheme-only"),
        pytest.param({"Authorization": "{}"}, "scheme", id="no-scheme"),
        pytest.param({"Authorization": "Bearer {}"}, "tma", id="bearer-scheme"),
        pytest.param({"Authorization": "Basic {}"}, "tma", id="basic-scheme"),
        pytest.param({"Authorization": "tma {} extra"}, "scheme", id="trailing-word"),
        pytest.param({"Authorization": "tma {}", "authorization": "tma {}"}, "Missing", id="two-spellings"),
    ],
)
def test_user_without_usable_credentials_is_unauthorized(headers: dict[str, str], message: str) -> None:
    raw = fresh_init_data()
    filled = {name: value.format(raw) for name, value in headers.items()}

    with pytest.raises(Unauthorized, match=message):
        authenticate_user(filled, settings())


# --------------------------------------------------------------------------
# authenticate_admin
# --------------------------------------------------------------------------


def admin_settings(**env: str) -> Settings:
    return settings(ADMIN_API_TOKEN=ADMIN_TOKEN, ADMIN_USER_IDS=f"1, {ADMIN_ID}", **env)


def test_admin_with_the_api_token_is_accepted() -> None:
    assert authenticate_admin({"Authorization": f"Bearer {ADMIN_TOKEN}"}, admin_settings()) == Admin("token", None)


def test_admin_bearer_scheme_is_case_insensitive() -> None:
    assert authenticate_admin({"authorization": f"bearer {ADMIN_TOKEN}"}, admin_settings()).via == "token"


def test_admin_initdata_of_an_admin_user_is_accepted() -> None:
    headers = tma(fresh_init_data({"id": ADMIN_ID, "first_name": "Op"}))

    assert authenticate_admin(headers, admin_settings()) == Admin("init_data", ADMIN_ID)


def test_admin_without_credentials_is_unauthorized() -> None:
    with pytest.raises(Unauthorized):
        authenticate_admin({}, admin_settings())


@pytest.mark.parametrize(
    "token",
    [ADMIN_TOKEN + "x", ADMIN_TOKEN[:-1], ADMIN_TOKEN.upper(), "x", "é" * 10, "\udcff"],
)
def test_admin_with_a_wrong_token_is_forbidden(token: str) -> None:
    with pytest.raises(Forbidden):
        authenticate_admin({"Authorization": f"Bearer {token}"}, admin_settings())


def test_every_bearer_token_is_forbidden_when_no_admin_token_is_configured() -> None:
    no_token = settings(ADMIN_USER_IDS=str(ADMIN_ID))
    assert no_token.admin_api_token is None

    for token in ("None", "null", "x", ADMIN_TOKEN):
        with pytest.raises(Forbidden):
            authenticate_admin({"Authorization": f"Bearer {token}"}, no_token)


def test_admin_initdata_of_a_non_admin_is_forbidden() -> None:
    with pytest.raises(Forbidden, match="not an admin"):
        authenticate_admin(tma(fresh_init_data()), admin_settings())


def test_admin_initdata_forged_for_an_admin_id_is_unauthorized() -> None:
    forged = telegram_sign(basic_pairs(auth_date=int(time.time()), user={"id": ADMIN_ID, "first_name": "Op"}))
    forged = forged.replace(forged[-64:], "f" * 64)

    with pytest.raises(Unauthorized):
        authenticate_admin(tma(forged), admin_settings())


def test_admin_with_another_scheme_is_unauthorized() -> None:
    with pytest.raises(Unauthorized):
        authenticate_admin({"Authorization": f"Basic {ADMIN_TOKEN}"}, admin_settings())


def test_an_admins_initdata_expires_after_admin_init_data_max_age_seconds() -> None:
    admin = {"id": ADMIN_ID, "first_name": "Op"}
    now = int(time.time())
    hour_old = tma(telegram_sign(basic_pairs(auth_date=now - 3600 + 30, user=admin)))
    older = tma(telegram_sign(basic_pairs(auth_date=now - 3600 - 30, user=admin)))

    assert authenticate_admin(hour_old, admin_settings()).user_id == ADMIN_ID
    with pytest.raises(Unauthorized, match="expired"):
        authenticate_admin(older, admin_settings())  # default 3600 s, though a user's lasts 86400 s
    # The same initData still opens the user's own routes, under INIT_DATA_MAX_AGE_SECONDS.
    assert authenticate_user(older, admin_settings()).user.id == ADMIN_ID
    assert authenticate_admin(older, admin_settings(ADMIN_INIT_DATA_MAX_AGE_SECONDS="7200")).user_id == ADMIN_ID


def test_a_non_admins_day_old_initdata_on_the_admin_api_is_forbidden_not_expired() -> None:
    """Not an admin is the answer (403) whatever the age; "expired" (401) is for admins, who can act on it."""
    old = tma(telegram_sign(basic_pairs(auth_date=int(time.time()) - 7200, user={"id": 5, "first_name": "U"})))

    with pytest.raises(Forbidden, match="not an admin"):
        authenticate_admin(old, admin_settings())


def test_an_admin_session_never_outlasts_a_users() -> None:
    admin = {"id": ADMIN_ID, "first_name": "Op"}
    old = tma(telegram_sign(basic_pairs(auth_date=int(time.time()) - 700, user=admin)))
    short = admin_settings(INIT_DATA_MAX_AGE_SECONDS="600", ADMIN_INIT_DATA_MAX_AGE_SECONDS="3600")

    with pytest.raises(Unauthorized, match="expired"):
        authenticate_admin(old, short)
