"""The API's Idempotency-Keys and the bot's message keys live apart (issue 13).

The bot keys a prompt ``tg:<chat>:<message>``; an API caller may send any
1-128 printable characters, that string included. Neither may take the
other's key: the bot's message is charged and queued as its own generation,
and the API key keeps its CONTRACT §5 meaning.
"""

from __future__ import annotations

from chalicelib.tables import IdempotencyRecord
from tests.api_helpers import ALICE, start
from tests.fakes.telegram import FakeTelegram
from tests.probes import balance, generations_of, queued_jobs
from tests.telegram_helpers import deliver, message, next_update_id

PROMPT = "a red fox in the snow"


def _bot_key(prompt: dict) -> str:
    return f"tg:{prompt['chat']['id']}:{prompt['message_id']}"


def test_an_api_key_spelled_like_the_bots_does_not_block_the_bot_message(fake_telegram: FakeTelegram) -> None:
    prompt = message(PROMPT, user_id=ALICE["id"])
    api = start(ALICE, PROMPT, key=_bot_key(prompt))
    assert api.status == 202, api.body

    assert deliver({"update_id": next_update_id(), "message": prompt}).status_code == 200

    [reply] = fake_telegram.texts()
    assert reply.startswith("Queued!"), reply
    by_source = {g.source: g for g in generations_of(ALICE["id"])}
    assert set(by_source) == {"api", "bot"} and by_source["api"].generation_id == api.body["generation"]["id"]
    assert sorted(job.generation_id for job in queued_jobs()) == sorted(g.generation_id for g in by_source.values())
    assert balance(ALICE["id"]) == 8  # ten welcome credits, two charges
    # Each channel's record points at its own generation.
    for source, generation in by_source.items():
        record = IdempotencyRecord.get(IdempotencyRecord.key(ALICE["id"], _bot_key(prompt), source=source))
        assert record.generation_id == generation.generation_id

    # The API key still replays the API's generation, and the bot's re-sent message the bot's.
    replay = start(ALICE, PROMPT, key=_bot_key(prompt))
    assert (replay.status, replay.body["generation"]["id"]) == (200, by_source["api"].generation_id)
    assert deliver({"update_id": next_update_id(), "message": prompt}).status_code == 200
    assert len(generations_of(ALICE["id"])) == 2 and balance(ALICE["id"]) == 8


def test_an_api_key_spelled_like_the_bots_does_not_replay_the_bot_generation(fake_telegram: FakeTelegram) -> None:
    prompt = message(PROMPT, user_id=ALICE["id"])
    assert deliver({"update_id": next_update_id(), "message": prompt}).status_code == 200
    [bot_generation] = generations_of(ALICE["id"])

    api = start(ALICE, PROMPT, key=_bot_key(prompt))

    assert api.status == 202, api.body
    assert api.body["generation"]["id"] != bot_generation.generation_id
    assert balance(ALICE["id"]) == 8 and len(queued_jobs()) == 2
