"""One replay rule for every channel: a replayed pending generation is returned, never queued again.

The API (an ``Idempotency-Key`` sent twice) and the bot (one Telegram message
delivered in two updates) both order through
``chalicelib.usecases.generation.order_generation``; the first call charges
and queues, the replay charges nothing and queues nothing. A job whose queue
message was lost is the sweeper's to re-queue.
"""

from __future__ import annotations

import pytest

from chalicelib.handlers import sweeper
from chalicelib.jobs import Job
from chalicelib.model import GenerationStatus
from chalicelib.tables import IdempotencyRecord
from tests.api_helpers import ALICE, start
from tests.fakes.telegram import FakeTelegram
from tests.faults import Faults
from tests.probes import balance, generations_of, queued_jobs
from tests.telegram_helpers import deliver, message, next_update_id


def _api_order_twice() -> tuple[str, list[Job], list[Job]]:
    first = start(ALICE, key="same-order")
    assert first.status == 202, first.body
    queued_first = queued_jobs()
    replay = start(ALICE, key="same-order")
    assert replay.status == 200, replay.body
    assert replay.body["generation"]["id"] == first.body["generation"]["id"]
    assert replay.body["generation"]["status"] == GenerationStatus.PENDING
    return first.body["generation"]["id"], queued_first, queued_jobs()


def _bot_order_twice() -> tuple[str, list[Job], list[Job]]:
    prompt = message("a red fox in the snow", user_id=ALICE["id"])
    assert deliver({"update_id": next_update_id(), "message": prompt}).status_code == 200
    queued_first = queued_jobs()
    # The same message again, in a new update (a client re-sending it): the same key.
    assert deliver({"update_id": next_update_id(), "message": prompt}).status_code == 200
    [generation] = [g for g in generations_of(ALICE["id"]) if g.source == "bot"]
    assert generation.status == GenerationStatus.PENDING
    return generation.generation_id, queued_first, queued_jobs()


@pytest.mark.parametrize("order_twice", [_api_order_twice, _bot_order_twice], ids=["api", "bot"])
def test_a_replayed_pending_generation_is_charged_and_queued_once(fake_telegram: FakeTelegram, order_twice) -> None:
    generation_id, queued_by_the_order, queued_by_the_replay = order_twice()

    assert [job.generation_id for job in queued_by_the_order] == [generation_id]
    assert queued_by_the_replay == []
    assert balance(ALICE["id"]) == 9  # ten welcome credits, one charge
    assert len(generations_of(ALICE["id"])) == 1


def test_the_api_and_the_bot_answer_a_pending_replay_alike(fake_telegram: FakeTelegram) -> None:
    """Whatever the channel, the observable effect of the replay is the same: nothing new anywhere."""
    effects = []
    for order_twice in (_api_order_twice, _bot_order_twice):
        _, queued_by_the_order, queued_by_the_replay = order_twice()
        effects.append((len(queued_by_the_order), len(queued_by_the_replay)))
    assert effects == [(1, 0), (1, 0)]
    assert balance(ALICE["id"]) == 8  # one charge per channel, none per replay


def test_a_lost_job_of_a_replayed_generation_is_re_queued_by_the_sweeper(
    fake_telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    generation_id, _, _ = _api_order_twice()  # the first message is consumed: as good as lost
    monkeypatch.setattr(sweeper, "REQUEUE_AFTER_SECONDS", -2)  # any pending generation counts as stale now

    assert sweeper.sweep()["requeued"] == 1
    assert [job.generation_id for job in queued_jobs()] == [generation_id]


@pytest.mark.usefixtures("aws")
def test_an_api_replay_reads_four_items_and_writes_nothing(faults: Faults) -> None:
    """The saved settings, the key's record (once), the generation and the balance: no transaction."""
    first = start(ALICE, key="counted-order")
    assert first.status == 202, first.body
    faults.calls.clear()

    replay = start(ALICE, key="counted-order")

    assert replay.status == 200 and replay.body["generation"]["id"] == first.body["generation"]["id"]
    assert [call.operation for call in faults.calls] == ["GetItem"] * 4
    key_reads = [call for call in faults.calls if call.tables == (IdempotencyRecord.Meta.table_name,)]
    assert len(key_reads) == 1
