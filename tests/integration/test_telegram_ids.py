"""Ids in an update are bounded like user ids: one Telegram never sends is ignored (issue 13).

A 41-digit chat id is past DynamoDB's 38 digits: real DynamoDB fails the
write (a 500, and Telegram re-sends the update for a day), moto stores it
and ``GET /api/admin/stats`` breaks until the item goes. The update is
answered 200 and nothing is written.
"""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.validation import MAX_MESSAGE_ID
from tests.api_helpers import bearer, get
from tests.fakes.telegram import FakeTelegram
from tests.probes import generations_of, processed, queued_jobs, snapshot
from tests.telegram_helpers import ALICE_ID, deliver, message, next_update_id

HUGE = 10**40  # 41 digits


def _prompt(**changes: Any) -> dict[str, Any]:
    body = message("a lighthouse at dawn", user_id=ALICE_ID)
    if "chat_id" in changes:
        body["chat"]["id"] = changes.pop("chat_id")
    body.update(changes)
    return {"update_id": next_update_id(), "message": body}


@pytest.mark.parametrize(
    "changes",
    [
        {"chat_id": HUGE},
        {"chat_id": -HUGE},
        {"chat_id": 2**53 + 1},
        {"chat_id": True},
        {"chat_id": 0},
        {"message_id": HUGE},
        {"message_id": MAX_MESSAGE_ID + 1},
        {"message_id": 0},
        {"message_id": -5},
    ],
    ids=repr,
)
def test_an_update_with_an_id_telegram_never_sends_is_ignored(
    fake_telegram: FakeTelegram, changes: dict[str, Any]
) -> None:
    before = snapshot()
    update = _prompt(**changes)

    response = deliver(update)

    assert response.status_code == 200, response.body
    assert snapshot() == before  # no user, generation, ledger entry or claim
    assert processed(update["update_id"]) is None and queued_jobs() == []
    assert fake_telegram.calls == []
    assert get("/api/admin/stats", headers=bearer()).status == 200


def test_the_largest_ids_telegram_sends_are_served(fake_telegram: FakeTelegram) -> None:
    chat_id = 2**52  # "at most 52 significant bits"
    assert deliver(_prompt(chat_id=chat_id, message_id=MAX_MESSAGE_ID)).status_code == 200

    [generation] = generations_of(ALICE_ID)
    assert (int(generation.chat_id), generation.idempotency_key) == (chat_id, f"tg:{chat_id}:{MAX_MESSAGE_ID}")
    assert len(queued_jobs()) == 1
    assert get("/api/admin/stats", headers=bearer()).status == 200
