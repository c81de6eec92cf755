"""No input, however malformed, gets a 5xx, an error outside CONTRACT §4, or a crooked ledger.

Hypothesis drives every operation of ``openapi.yaml`` (request schemas plus
malicious shapes, valid and invalid credentials) and random Telegram
updates through ``chalice.test.Client``, with a local server playing the
Bot API. State carries over from example to example, so later requests
cancel, poll and replay real generations; in the interleaved test the
worker runs what was queued and the sweeper fails what timed out.
``tests/fuzz/`` holds the strategies and the oracle;
``bench/fuzz_long.py`` runs the same with thousands of examples. This is the
short, deterministic run for ``make test`` (about 10 s).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer

from chalicelib import catalogue
from tests.conftest import TEST_WEBHOOK_SECRET, reset_process_state
from tests.fuzz.oracle import Fuzzer, app_client, fuzz_environment, install_fake_bot_api, mixed_steps, perform
from tests.fuzz.requests import api_requests, request_to, sign, webhook_requests
from tests.worker_helpers import serialize_moto

SHORT_RUN = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI stays deterministic
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture
def fuzzer(aws: None, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Fuzzer]:
    """A strict fuzzer on moto; the Bot API is a local server, so nothing leaves the machine.

    moto answers one request at a time (``serialize_moto``): the worker runs a batch's
    jobs in threads, and concurrent requests corrupt in-process moto as AWS never would.
    """
    for name, value in fuzz_environment(install_fake_bot_api(httpserver)).items():
        monkeypatch.setenv(name, value)
    serialize_moto(monkeypatch)
    reset_process_state()
    from chalicelib.runtime import ready

    ready()  # settings cached now: the test client's stage environment must not be what they are read from
    yield Fuzzer(app_client(), strict=True)
    reset_process_state()


@SHORT_RUN
@given(data=st.data())
def test_no_api_request_gets_a_5xx_or_an_answer_outside_the_contract(fuzzer: Fuzzer, data: st.DataObject) -> None:
    for _ in range(data.draw(st.integers(1, 4), label="requests")):
        fuzzer.send(data.draw(api_requests(fuzzer.world)))
    assert fuzzer.check_books() == []


@SHORT_RUN
@given(data=st.data())
def test_no_telegram_update_gets_a_5xx_and_money_moves_at_most_once(fuzzer: Fuzzer, data: st.DataObject) -> None:
    for _ in range(data.draw(st.integers(1, 4), label="updates")):
        fuzzer.send(data.draw(webhook_requests(fuzzer.world)))
    assert fuzzer.check_books() == []


@settings(SHORT_RUN, max_examples=15)
@given(data=st.data())
def test_requests_updates_worker_and_sweeper_interleaved_keep_the_books_straight(
    fuzzer: Fuzzer, data: st.DataObject
) -> None:
    for _ in range(data.draw(st.integers(1, 5), label="steps")):
        perform(fuzzer, data.draw(mixed_steps(fuzzer.world)))
    assert fuzzer.check_books() == []


# --------------------------------------------------------------------------
# Found by bench/fuzz_long.py: text with a lone UTF-16 surrogate (JSON "\ud800")
# in what Telegram signs or sends reached DynamoDB, which cannot store it: 500.
# --------------------------------------------------------------------------

_SECRET = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": TEST_WEBHOOK_SECRET}


def _update(update_id: int, message: str) -> bytes:
    """An update whose ``message`` JSON text is given, escapes and all."""
    return f'{{"update_id": {update_id}, "message": {message}}}'.encode()


def test_initdata_with_a_lone_surrogate_in_the_signed_name_is_refused_not_a_500(fuzzer: Fuzzer) -> None:
    raw = sign({"user": '{"id":3001,"first_name":"\\ud800"}', "auth_date": str(int(time.time()))})

    status, body = fuzzer.send(request_to("GET /api/user/me", headers={"Authorization": f"tma {raw}"}))

    assert status in (200, 401), body  # the name cleaned, or the initData refused as malformed


def test_a_command_from_a_user_named_with_a_lone_surrogate_is_handled_not_a_500(fuzzer: Fuzzer) -> None:
    sender = '{"id": 4001, "is_bot": false, "first_name": "\\ud800"}'
    message = (
        f'{{"message_id": 1, "date": 1, "chat": {{"id": 4001, "type": "private"}}, "from": {sender}, "text": "/start"}}'
    )

    status, body = fuzzer.send(request_to("POST /api/telegram/webhook", headers=_SECRET, body=_update(9001, message)))

    assert status == 200, body


def test_a_payment_whose_charge_id_has_a_lone_surrogate_is_not_a_500(fuzzer: Fuzzer) -> None:
    pack = catalogue.PACKS[0]
    payment = (
        f'{{"currency": "XTR", "total_amount": {pack.stars}, "invoice_payload": "{pack.payload}", '
        '"telegram_payment_charge_id": "charge\\ud800", "provider_payment_charge_id": "p"}'
    )
    sender = '{"id": 4002, "is_bot": false, "first_name": "Payer"}'
    message = (
        f'{{"message_id": 2, "date": 1, "chat": {{"id": 4002, "type": "private"}}, "from": {sender}, '
        f'"successful_payment": {payment}}}'
    )

    status, body = fuzzer.send(request_to("POST /api/telegram/webhook", headers=_SECRET, body=_update(9002, message)))

    assert status == 200, body
