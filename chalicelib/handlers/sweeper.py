"""The scheduled sweeper: ends what got stuck and re-queues what got lost.

Each generation is handled on its own: a failure on one (a throttled write,
a timeout) is logged and counted, and the sweep goes on with the others; the
next sweep, a minute later, tries it again. A user is told as soon as their
generation's refund is written, not after the whole sweep.
"""

from __future__ import annotations

import time
from typing import Any

from chalicelib import bootstrap, jobs, money, queries, records
from chalicelib.config import Settings
from chalicelib.http import flush_metrics
from chalicelib.notify import tell_user_it_failed
from chalicelib.observability import count, logger
from chalicelib.runtime import ready

# A pending generation this old has probably lost its queue message (a crash
# between the charge and the enqueue): send it again; claims make it safe.
REQUEUE_AFTER_SECONDS = 60
# ... and is sent again at most this often, so a backlog is not multiplied.
REQUEUE_EVERY_SECONDS = 180


def sweep(context: Any = None) -> dict[str, Any]:
    settings = ready()
    try:
        expired, failures = _fail_expired(settings)
        lost: list[jobs.Job] = []
        for generation in queries.stale_pending(settings, older_than_seconds=REQUEUE_AFTER_SECONDS):
            try:
                if records.mark_requeued(generation, every_seconds=REQUEUE_EVERY_SECONDS):
                    lost.append(jobs.Job(int(generation.user_id), generation.generation_id))
            except Exception:
                failures += 1
                logger.exception("could not re-queue a generation", extra={"generation_id": generation.generation_id})
        if lost:
            jobs.enqueue(lost, settings)
        if failures:
            count("SweepFailures", failures)
        logger.info("sweep done", extra={"expired": expired, "requeued": len(lost), "failures": failures})
        return {"expired": expired, "requeued": len(lost), "failures": failures}
    finally:
        flush_metrics()


def _fail_expired(settings: Settings) -> tuple[int, int]:
    """Fail and refund each expired generation, telling its user at once; (refunded, failures)."""
    now = time.time()
    bot = bootstrap.bot_api()
    refunded = failures = 0
    for generation in queries.unfinished_generations(timeout_before=now + 1):  # cost and chat_id are projected
        try:
            if not money.fail_generation(generation, error="Timed out.", only_if_expired=True, now=now):
                continue  # a racing sweeper or worker ended it first
        except Exception:
            failures += 1
            logger.exception("could not fail an expired generation", extra={"generation_id": generation.generation_id})
            continue
        refunded += 1
        count("GenerationsFailed")
        count("GenerationsRefunded")
        count("CreditsRefunded", int(generation.cost))
        try:
            tell_user_it_failed(bot, generation, "failure-reason-timeout", settings)
        except Exception:
            logger.exception("could not tell a user their generation timed out", extra={"user_id": generation.user_id})
    return refunded, failures
