"""Ordering a generation: charge, queue, count. The API and the bot both call ``order_generation``."""

from __future__ import annotations

from dataclasses import replace

from chalicelib import jobs, money, queries
from chalicelib.config import Settings
from chalicelib.model import GenerationOrder, Profile, StartResult
from chalicelib.observability import count, logger


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
    language: str | None = None,
) -> StartResult:
    """Charge once (``money.start_generation``), queue the job, count the sale, then read the balance.

    Nothing that can fail comes between the charge and the queue: the
    balance is read after the job is queued, best effort (``credits`` None
    when that read fails: the generation is charged and queued all the
    same, and a 500 would only make the client replay it). A queue message
    that SQS refuses is logged; the sweeper re-queues the pending generation.

    The one replay rule: a replayed key queues nothing, whatever its
    generation's status. The call that charged queued it; had that call died
    in between (or SQS refused the message), the sweeper re-queues a pending
    generation within a minute or two. Re-queueing on each replay would let a
    client add queue messages outside the rate limit and let two workers race
    to deliver one picture.

    ``replay_any_status``: see ``money.start_generation`` (the bot's rule,
    one Telegram message is one generation). ``language``: the user's, stored
    on the generation for the worker's notices.

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
        read_balance=False,
        language=language,
    )
    if result.replayed:
        return result
    generation = result.generation
    if queue:
        try:
            jobs.send_to_worker(int(generation.user_id), generation.generation_id, settings)
        except Exception:
            logger.exception("generation charged but not queued; the sweeper re-queues it")
    count("GenerationsStarted")
    count("CreditsSpent", int(generation.cost))
    return replace(result, credits=_balance_now(int(generation.user_id)))


def _balance_now(user_id: int) -> int | None:
    try:
        user = queries.get_user(user_id)
    except Exception:
        logger.warning("balance not read after the charge; answered without it", exc_info=True)
        return None
    return int(user.credits) if user is not None else None
