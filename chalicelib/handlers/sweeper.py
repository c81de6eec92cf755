"""The scheduled sweeper: ends what got stuck and re-queues what got lost.

Two phases, each with its own index query: fail and refund what timed out,
then re-queue pending generations whose message was lost (and processing ones
whose worker died). Neither depends on the other, so a phase that fails (its
query throttled, a 5xx, a timeout, SQS down) is logged and counted
(``SweepFailures``) and the other still runs; the next sweep, a minute later,
tries again.

Within a phase each generation is handled on its own: a failure on one (a
throttled write, a timeout) is logged and counted, and the sweep goes on with
the others. A user is told as soon as their generation's refund is written,
not after the whole sweep.

When every phase failed the sweep did nothing at all (DynamoDB unreachable, a
permission or a bug): it raises ``SweepFailed``, so the invocation counts as a
Lambda error and the sweeper's Errors alarm fires at once; EventBridge's retries
of the invocation are harmless (every step is conditional). A partial sweep
returns its summary instead: raising would hide the work done and retry it,
and ``SweepFailures`` failing minute after minute has its own alarm
(``infra/monitoring.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chalicelib import bootstrap, jobs, money, queries, records
from chalicelib.config import Settings
from chalicelib.errors import SweepFailed
from chalicelib.http import flush_metrics
from chalicelib.model import FailureReason, GenerationStatus
from chalicelib.notify import tell_user_it_failed, timeout_reason
from chalicelib.observability import count, logger
from chalicelib.runtime import ready

# A pending generation this old has probably lost its queue message (a crash
# between the charge and the enqueue): send it again; claims make it safe.
REQUEUE_AFTER_SECONDS = 60
# ... and is sent again at most this often, so a backlog is not multiplied.
REQUEUE_EVERY_SECONDS = 180


@dataclass
class Sweep:
    """What one sweep did; a phase that raises keeps what it counted before."""

    expired: int = 0
    requeued: int = 0
    failures: int = 0  # generations that could not be handled, plus phases that failed
    failed_phases: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "expired": self.expired,
            "requeued": self.requeued,
            "failures": self.failures,
            "failed_phases": list(self.failed_phases),
        }


def sweep(context: Any = None) -> dict[str, Any]:
    settings = ready()
    done = Sweep()
    try:
        for name, phase in PHASES:
            try:
                phase(settings, done)
            except Exception:
                done.failures += 1
                done.failed_phases.append(name)
                logger.exception("a sweep phase failed; the other phases still run", extra={"phase": name})
        if done.failures:
            count("SweepFailures", done.failures)
        logger.info("sweep done", extra=done.summary())
        if len(done.failed_phases) == len(PHASES):
            raise SweepFailed(f"every phase of the sweep failed: {', '.join(done.failed_phases)}")
        return done.summary()
    finally:
        flush_metrics()


def _fail_expired(settings: Settings, done: Sweep) -> None:
    """Fail and refund each expired generation, telling its user at once."""
    now = time.time()
    bot = bootstrap.bot_api()
    for generation in queries.unfinished_generations(timeout_before=now + 1):  # cost and chat_id are projected
        # Read before failing it (which sets the status): a claim cannot start after the timeout.
        started = generation.status == GenerationStatus.PROCESSING
        try:
            if not money.fail_generation(generation, error=FailureReason.TIMED_OUT, only_if_expired=True, now=now):
                continue  # a racing sweeper or worker ended it first
        except Exception:
            done.failures += 1
            logger.exception("could not fail an expired generation", extra={"generation_id": generation.generation_id})
            continue
        done.expired += 1
        count("GenerationsFailed")
        count("GenerationsRefunded")
        count("CreditsRefunded", int(generation.cost))
        try:
            tell_user_it_failed(bot, generation, timeout_reason(started=started), settings)
        except Exception:
            logger.exception("could not tell a user their generation timed out", extra={"user_id": generation.user_id})


def _requeue_lost(settings: Settings, done: Sweep) -> None:
    """Send again the jobs of generations that look abandoned (see ``queries.stale_pending``)."""
    lost: list[jobs.Job] = []
    for generation in queries.stale_pending(settings, older_than_seconds=REQUEUE_AFTER_SECONDS):
        try:
            if records.mark_requeued(generation, every_seconds=REQUEUE_EVERY_SECONDS):
                lost.append(jobs.Job(int(generation.user_id), generation.generation_id))
        except Exception:
            done.failures += 1
            logger.exception("could not re-queue a generation", extra={"generation_id": generation.generation_id})
    if lost:
        jobs.enqueue(lost, settings)
        done.requeued = len(lost)


# In this order: a user waiting for a refund comes first; each phase reads the index itself.
PHASES: list[tuple[str, Callable[[Settings, Sweep], None]]] = [("expire", _fail_expired), ("requeue", _requeue_lost)]
