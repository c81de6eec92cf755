"""The dashboard's metrics: ``GenerationsRefunded`` once per refunded generation, ``ProviderAuthRefused``.

Every way a generation's credits come back counts it once (the worker's
failure, the expired claim, the user's cancel, the sweeper, the dead-letter
handler); a retry that refunds nothing counts nothing. ``ProviderAuthRefused``
counts AIML's 401/403 answers to our key, which the alarm of
``infra/monitoring.py`` watches. Read from the EMF lines Powertools prints.
"""

from __future__ import annotations

import time

import pytest

import app
from local.lambda_context import LocalLambdaContext
from local.worker import scheduled_event
from tests.api_helpers import ALICE, post, start
from tests.fakes.aiml import aiml_error
from tests.worker_helpers import REFUNDED, Stack, generation, ledger, metrics_in

REFUNDED_METRIC = "GenerationsRefunded"
AUTH_METRIC = "ProviderAuthRefused"


def test_a_provider_refusal_refunds_and_counts_one_refund_and_401_403_count_as_auth_refused(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    refused = {"bad prompt": 400, "bad key": 401, "no balance": 403}
    jobs = [stack.start_job(prompt) for prompt in refused]
    for prompt, status in refused.items():
        stack.aiml.script(prompt, aiml_error(status, "refused"))

    assert stack.run(stack.deliver(*jobs)) == []

    assert all(ledger(job) == REFUNDED for job in jobs)
    emitted = metrics_in(capsys.readouterr().out)
    assert (emitted[REFUNDED_METRIC], emitted["CreditsRefunded"]) == (3, 3)
    assert emitted[AUTH_METRIC] == 2  # the 401 and the 403, not the 400


def test_a_provider_error_that_is_retried_counts_neither(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    job = stack.start_job("busy")
    stack.aiml.script("busy", aiml_error(503, "try later"))

    assert stack.run(stack.deliver(job)) != []  # left for SQS to retry

    emitted = metrics_in(capsys.readouterr().out)
    assert REFUNDED_METRIC not in emitted and AUTH_METRIC not in emitted
    assert generation(job).status == "pending"
    stack.aiml.script("busy", aiml_error(400, "refused"))
    assert stack.run(stack.deliver(job)) == []  # refunded now, so the invariants hold at the end
    assert metrics_in(capsys.readouterr().out)[REFUNDED_METRIC] == 1


def test_a_job_found_expired_by_the_worker_counts_one_refund(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    job = stack.start_job("too late", now=time.time() - stack.settings.generation_timeout_seconds - 60)

    assert stack.run(stack.deliver(job)) == []
    assert stack.run(stack.deliver(job)) == []  # delivered again: nothing more to refund

    assert ledger(job) == REFUNDED
    assert metrics_in(capsys.readouterr().out)[REFUNDED_METRIC] == 1


def test_a_cancel_counts_one_refund(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    ordered = start(ALICE, key="to-cancel")
    generation_id = ordered.body["generation"]["id"]

    assert post(f"/api/generation/{generation_id}/cancel", ALICE).status == 200
    assert post(f"/api/generation/{generation_id}/cancel", ALICE).status == 409  # refunded once

    assert metrics_in(capsys.readouterr().out)[REFUNDED_METRIC] == 1


def test_the_sweeper_counts_one_refund_per_expired_generation(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    long_ago = time.time() - stack.settings.generation_timeout_seconds - 60
    jobs = [stack.start_job(f"forgotten {index}", now=long_ago) for index in range(2)]

    for expected in (2, 0):  # the next minute: nothing twice
        assert app.sweeper(scheduled_event(), LocalLambdaContext("sweeper", 60))["expired"] == expected

    assert all(ledger(job) == REFUNDED for job in jobs)
    assert metrics_in(capsys.readouterr().out)[REFUNDED_METRIC] == 2


def test_a_dead_lettered_job_counts_one_refund(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    job = stack.start_job("gave up")
    dead_letters = stack.dead_letter_queue_url()
    stack.send(job.to_message(), job.to_message(), queue_url=dead_letters)  # SQS may deliver twice

    assert stack.run_dead_letters(stack.receive(dead_letters)) == []

    assert ledger(job) == REFUNDED
    assert metrics_in(capsys.readouterr().out)[REFUNDED_METRIC] == 1
