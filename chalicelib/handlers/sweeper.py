"""The scheduled sweeper: ends what got stuck and re-queues what got lost."""

from __future__ import annotations

from typing import Any

from chalicelib import bootstrap, jobs, money, queries, records
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
        expired = money.sweep_expired()
        bot = bootstrap.bot_api()
        for generation in expired:  # from the index: cost and chat_id are projected
            count("GenerationsFailed")
            count("GenerationsRefunded")
            count("CreditsRefunded", int(generation.cost))
            tell_user_it_failed(bot, generation, "it took too long and timed out.")
        lost = [
            generation
            for generation in queries.stale_pending(settings, older_than_seconds=REQUEUE_AFTER_SECONDS)
            if records.mark_requeued(generation, every_seconds=REQUEUE_EVERY_SECONDS)
        ]
        if lost:
            jobs.enqueue([jobs.Job(int(g.user_id), g.generation_id) for g in lost], settings)
        logger.info("sweep done", extra={"expired": len(expired), "requeued": len(lost)})
        return {"expired": len(expired), "requeued": len(lost)}
    finally:
        flush_metrics()
