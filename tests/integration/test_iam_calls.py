"""Each background function's IAM role grants every DynamoDB call its code makes (moto checks no IAM).

The calls are recorded on the wire by the fault layer (``tests.faults``,
nothing injected) while one function runs its paths; ``tests.iam_calls``
maps them to IAM actions and reads the role from ``infra.template``. The
broadcast worker's own check is in ``test_broadcasts.py``.
"""

from __future__ import annotations

import time
from typing import Any

import app
from chalicelib import money
from local.lambda_context import LocalLambdaContext
from local.worker import scheduled_event
from tests.fakes.aiml import aiml_error
from tests.faults import Faults
from tests.iam_calls import needs, not_allowed
from tests.worker_helpers import REFUNDED, Stack, generation, ledger


def test_the_generation_workers_role_allows_its_calls(stack: Stack, faults: Faults) -> None:
    done, refused = stack.start_job("a lighthouse at dusk"), stack.start_job("refused prompt")
    stack.aiml.script("refused prompt", aiml_error(400, "The prompt was refused."))
    event = stack.deliver(done, refused)
    faults.calls.clear()
    assert stack.run(event) == []
    needed = needs(faults.calls, stack.settings)  # before this test's own reads

    assert generation(done).status == "completed" and ledger(refused) == REFUNDED
    assert {("dynamodb:UpdateItem", "generations", False), ("dynamodb:PutItem", "ledger", False)} <= needed
    assert not_allowed("GenerationWorker", needed) == set()


def test_the_sweepers_role_allows_its_calls(stack: Stack, faults: Faults) -> None:
    long_ago = time.time() - stack.settings.generation_timeout_seconds - 60
    expired = stack.start_job("never picked up", now=long_ago)
    lost = stack.start_job("message lost", now=time.time() - 90)
    faults.calls.clear()
    summary: Any = app.sweeper(scheduled_event(), LocalLambdaContext("sweeper", 60))
    needed = needs(faults.calls, stack.settings)

    assert summary == {"expired": 1, "requeued": 1, "failures": 0, "failed_phases": []}
    assert ("dynamodb:Query", "generations", True) in needed
    assert not_allowed("Sweeper", needed) == set()
    assert ledger(expired) == REFUNDED
    money.cancel_generation(lost.user_id, lost.generation_id)


def test_the_dead_letter_workers_role_allows_its_calls(stack: Stack, faults: Faults) -> None:
    failing, finished = stack.start_job("dead-lettered"), stack.start_job("finished, never delivered")
    assert stack.run(stack.deliver(finished)) == []
    stack.send(failing.to_message(), finished.to_message(), queue_url=stack.dead_letter_queue_url())
    event = stack.receive(stack.dead_letter_queue_url())
    faults.calls.clear()
    assert stack.run_dead_letters(event) == []
    needed = needs(faults.calls, stack.settings)

    assert ledger(failing) == REFUNDED
    assert not_allowed("DeadLetterWorker", needed) == set()
