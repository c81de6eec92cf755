"""Ordering a generation: charge, queue, count. The API and the bot both call ``order_generation``."""

from __future__ import annotations

from chalicelib import jobs, money
from chalicelib.config import Settings
from chalicelib.model import GenerationOrder, Profile, StartResult
from chalicelib.observability import count


def order_generation(
    profile: Profile,
    order: GenerationOrder,
    settings: Settings,
    *,
    chat_id: int,
    source: str,
    idempotency_key: str | None = None,
    replay_any_status: bool = False,
    queue: bool = True,
) -> StartResult:
    """Charge once (``money.start_generation``), queue the job, count the sale.

    The one replay rule: a replayed key queues nothing, whatever its
    generation's status. The call that charged queued it; had that call died
    in between (or SQS refused the message), the sweeper re-queues a pending
    generation within a minute or two. Re-queueing on each replay would let a
    client add queue messages outside the rate limit and let two workers race
    to deliver one picture.

    ``replay_any_status``: see ``money.start_generation`` (the bot's rule,
    one Telegram message is one generation).

    ``queue=False``: the caller runs the job itself, now. The worker's album
    check does (``chalicelib.photos``): it charges a complete album and runs
    its generation in the same invocation, and needs no right to queue.
    """
    result = money.start_generation(
        profile,
        order,
        settings,
        chat_id=chat_id,
        source=source,
        idempotency_key=idempotency_key,
        replay_any_status=replay_any_status,
    )
    if not result.replayed:
        generation = result.generation
        if queue:
            jobs.send_to_worker(int(generation.user_id), generation.generation_id, settings)
        count("GenerationsStarted")
        count("CreditsSpent", int(generation.cost))
    return result
