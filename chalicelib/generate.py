"""Running one paid generation: claim it, call the provider, store, complete, deliver.

Every step can be interrupted (a crash, a timeout, a redelivered message)
and retried: the claim is a conditional transition, completion and failure
are conditional on holding the claim, and delivery is remembered once it is
done. So whatever SQS does, a generation is charged once, refunded at most
once, and never refunded once completed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from chalicelib import money, queries, records, results, uploads
from chalicelib.config import Settings
from chalicelib.errors import NanoGenError, ProviderError
from chalicelib.jobs import Job
from chalicelib.model import ACTIVE_STATUSES, ClaimOutcome, FailureReason, GenerationStatus
from chalicelib.notify import DeliveryDeferred, alert_operator, deliver_pictures, tell_user_it_failed, timeout_reason
from chalicelib.observability import MetricUnit, count, logger
from chalicelib.providers.base import GeneratedImage, ImageProvider
from chalicelib.tables import Generation
from chalicelib.telegram import BotApi

# Seconds a provider call needs at the very least; with less time left the
# job goes back to the queue untouched instead of being cut off mid-call.
MIN_PROVIDER_SECONDS = 20.0
# Seconds kept back before a generation's ``timeout_at`` for storing the picture
# and completing: the provider call must be over by then, else the sweeper may
# refund the generation while its picture is being stored.
FINISH_MARGIN_SECONDS = 10.0
# How long a claim protects a processing generation from takeover: longer than
# one worker invocation, shorter than the generation timeout, so a job whose
# worker died can be taken over and still finish in time.
DEFAULT_LEASE_SECONDS = 150
# How long a delivery lease keeps other workers from sending the same pictures:
# longer than sending them takes (Telegram's timeouts), so a live sender is
# never doubled; a sender that died holds it this long at most.
DELIVERY_LEASE_SECONDS = 90


class Outcome(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"  # failed and refunded (permanent error or timeout)
    SKIPPED = "skipped"  # missing, already finished, or the claim was lost meanwhile
    DELIVERED_LATE = "delivered_late"  # completed earlier; this run delivered it


class RetryLater(NanoGenError):
    """The job must go back to the queue (transient failure, busy, or not enough time left).

    ``retry_after`` (seconds) is when a retry makes sense, when the cause
    says so (Telegram's ``retry_after``, the end of another worker's lease);
    otherwise the queue's backoff decides.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class DeliveryBusy(RetryLater):
    """Another worker holds the delivery lease: it is sending the pictures (or died doing so)."""


@dataclass
class Worker:
    """Everything a job needs, so tests can swap the provider, Telegram and the clocks."""

    settings: Settings
    provider: ImageProvider
    bot: BotApi
    lease_seconds: int = DEFAULT_LEASE_SECONDS
    clock: Callable[[], float] = time.monotonic  # for deadlines and latencies
    wall_clock: Callable[[], float] = time.time  # for leases and timeouts (epoch seconds)

    def run(self, job: Job, *, deadline: float) -> Outcome:
        """Run one job; raise ``RetryLater`` when SQS should deliver it again."""
        logger.thread_safe_append_keys(user_id=job.user_id, generation_id=job.generation_id)
        if deadline - self.clock() < MIN_PROVIDER_SECONDS:
            raise RetryLater("not enough time left in this invocation for a provider call")

        now = self.wall_clock()
        claim = money.claim_generation(
            job.user_id,
            job.generation_id,
            lease_seconds=self.lease_seconds,
            min_seconds_left=math.ceil(MIN_PROVIDER_SECONDS + FINISH_MARGIN_SECONDS),
            now=now,
        )
        generation = claim.generation
        if claim.outcome == ClaimOutcome.CLAIMED and generation is not None:
            return self._generate(generation, deadline)
        if claim.outcome == ClaimOutcome.EXPIRED and generation is not None:
            # A worker claimed it before (``attempts``): its drawing had started, not only its wait.
            self._failed(generation, timeout_reason(started=int(generation.attempts or 0) > 0))
            return Outcome.FAILED
        if claim.outcome == ClaimOutcome.FINISHED and generation is not None:
            return self._finish_delivery(generation)
        if claim.outcome == ClaimOutcome.BUSY and generation is not None:
            # Another worker holds a live lease. It may be working, or it may have died
            # (a killed Lambda releases nothing): keep the message and look again once
            # the lease is over, when the claim can be taken over or the job is finished.
            lease_left = max(0, int(generation.lease_until or 0) - int(now)) + 1
            raise RetryLater("another worker holds this generation", retry_after=lease_left)
        if claim.outcome == ClaimOutcome.TOO_LATE and generation is not None:
            # Too close to its timeout for a provider call: no paid call for a picture that
            # would be refunded. Look again once it has timed out, to fail and refund it
            # (unless the sweeper did first).
            timeout_left = max(0, int(generation.timeout_at) - int(now)) + 1
            raise RetryLater("too close to its timeout for a provider call", retry_after=timeout_left)
        logger.info("nothing to do for this job", extra={"claim": claim.outcome.value})
        return Outcome.SKIPPED

    def _generate(self, generation: Generation, deadline: float) -> Outcome:
        started = self.clock()
        # The provider call ends before the Lambda's deadline and before the generation's
        # timeout (less the time to store and complete), so a live claim is never expired.
        time_left = float(generation.timeout_at) - self.wall_clock() - FINISH_MARGIN_SECONDS
        deadline = min(deadline, started + time_left)
        try:
            # The user's own pictures go as short-lived presigned links (or inline): never a Telegram URL.
            references = uploads.references_for_provider(
                int(generation.user_id), [str(upload_id) for upload_id in generation.upload_ids or []], self.settings
            )
            images = self.provider.generate(
                model=generation.model,
                prompt=generation.prompt,
                aspect_ratio=generation.aspect_ratio,
                image_urls=[str(url) for url in generation.image_urls or []] + references,
                deadline=deadline,
            )
            count("ProviderLatency", (self.clock() - started) * 1000, MetricUnit.Milliseconds)
            keys = results.store_images(int(generation.user_id), generation.generation_id, images, self.settings)
        except ProviderError as error:
            return self._provider_failed(generation, error)
        except BaseException:
            # Anything unexpected before completion (S3 down, a bug): give the claim back
            # so the redelivery can try again at once instead of waiting for the lease.
            money.release_claim(generation)
            raise

        if not money.complete_generation(generation, result_keys=keys, provider=self.provider.name):
            logger.warning("lost the claim before completing (timed out meanwhile); result discarded")
            return Outcome.SKIPPED
        count("GenerationsCompleted")
        count("EndToEndDuration", _seconds_since(generation.created_at) * 1000, MetricUnit.Milliseconds)
        self._deliver(generation, images)
        return Outcome.COMPLETED

    def _provider_failed(self, generation: Generation, error: ProviderError) -> Outcome:
        count("ProviderErrors")
        if error.alerts_operator:
            count("ProviderAuthRefused")  # our key is refused or its balance is empty: every user is affected
            alert_operator(self.bot, self.settings, f"provider-{error.status}", str(error))
        if error.transient:
            money.release_claim(generation)
            raise RetryLater(str(error)) from None
        reason = _public_reason(error)
        if money.fail_generation(generation, error=reason, claim_token=generation.claim_token):
            self._failed(generation, reason.message_id)
        return Outcome.FAILED

    def _finish_delivery(self, generation: Generation) -> Outcome:
        """A redelivered job for a completed generation whose picture may not have reached the chat."""
        if generation.status != GenerationStatus.COMPLETED or generation.delivered:
            return Outcome.SKIPPED
        images = results.load_images([str(key) for key in generation.result_keys or []], self.settings)
        if not self._deliver(generation, images):
            return Outcome.SKIPPED
        return Outcome.DELIVERED_LATE

    def _deliver(self, generation: Generation, images: list[GeneratedImage]) -> bool:
        """Send the pictures under the delivery lease; False if they were delivered already."""
        now = self.wall_clock()
        if not records.claim_delivery(generation, lease_seconds=DELIVERY_LEASE_SECONDS, now=now):
            if generation.delivered:
                return False
            # Another worker is sending them right now (or died doing so: its lease runs out).
            lease_left = max(0, int(generation.delivery_claimed_until or 0) - int(now)) + 1
            raise DeliveryBusy("another worker is delivering this generation", retry_after=lease_left)
        last = len(images) - 1

        def accepted(index: int) -> None:
            # Each picture Telegram accepts is recorded before the next is sent, so a retry sends
            # only the rest (at least once per picture: see records.record_picture_delivered). The
            # last one's record would be followed at once by mark_delivered, which says as much.
            if index != last:
                _record_accepted(generation, index)

        try:
            deliver_pictures(self.bot, generation, images, self.settings, accepted=accepted)
        except DeliveryBusy:
            raise  # our lease ran out and another sender has it: it sends the rest
        except DeliveryDeferred as deferred:
            # The generation is complete and paid for: retry delivery via SQS, never refund.
            _release_delivery(generation)
            raise RetryLater(f"delivery deferred: {deferred}", retry_after=deferred.retry_after) from None
        except Exception as error:
            _release_delivery(generation)
            raise RetryLater(f"delivery deferred: {type(error).__name__}: {error}") from None
        records.mark_delivered(generation)
        return True

    def _failed(self, generation: Generation, reason_id: str) -> None:
        count("GenerationsFailed")
        count("GenerationsRefunded")
        count("CreditsRefunded", int(generation.cost))
        tell_user_it_failed(self.bot, generation, reason_id, self.settings)

    def give_up(self, job: Job) -> bool:
        """The job exhausted its retries (dead-letter queue): fail and refund unless it already ended.

        A generation another worker is still processing under a live lease is
        left to it (``RetryLater``: the dead-letter message comes back later).
        A completed generation whose pictures were never sent (every delivery
        deferred) is delivered now, or the operator is alerted.
        """
        logger.thread_safe_append_keys(user_id=job.user_id, generation_id=job.generation_id)
        generation = queries.get_generation(job.user_id, job.generation_id)
        if generation is not None and generation.status == GenerationStatus.COMPLETED and not generation.delivered:
            self._deliver_dead_letter(generation)
            return False
        if generation is None or generation.status not in ACTIVE_STATUSES:
            logger.info("dead-lettered job needs nothing", extra={"status": getattr(generation, "status", None)})
            return False
        now = self.wall_clock()
        if generation.status == GenerationStatus.PROCESSING and int(generation.lease_until or 0) >= int(now):
            lease_left = int(generation.lease_until or 0) - int(now) + 1
            raise RetryLater("a worker still holds this generation", retry_after=lease_left)
        # Conditional on no live claim: a worker may have claimed it since the read above.
        if not money.fail_generation(
            generation, error=FailureReason.RETRIES_EXHAUSTED, only_if_unclaimed=True, now=now
        ):
            return False
        self._failed(generation, FailureReason.RETRIES_EXHAUSTED.message_id)
        alert_operator(
            self.bot,
            self.settings,
            "dead-letter",
            f"generation {generation.generation_id} of user {int(generation.user_id)} failed after retries",
        )
        return True

    def _deliver_dead_letter(self, generation: Generation) -> None:
        """Charged and completed, never sent (deliveries kept being deferred): deliver it now.

        If it fails again, for whatever reason (Telegram refusing, the stored
        pictures unreadable, a bug), the operator is told and the message stays
        on the dead-letter queue (raised), so delivery is tried again later.
        """
        try:
            if self._finish_delivery(generation) == Outcome.DELIVERED_LATE:
                logger.info("dead-lettered job delivered")
        except DeliveryBusy:
            raise  # a worker is sending it right now: look again once its lease is over
        except Exception as error:
            logger.exception("dead-lettered delivery failed; the message is kept for a retry")
            alert_operator(
                self.bot,
                self.settings,
                "undelivered",
                f"generation {generation.generation_id} of user {int(generation.user_id)} is completed "
                f"but could not be delivered after retries: {type(error).__name__}: {error}",
            )
            raise


def _record_accepted(generation: Generation, index: int) -> None:
    """Record picture ``index`` as delivered; stop sending if the delivery lease is no longer ours."""
    if not records.record_picture_delivered(generation, index):
        raise DeliveryBusy("the delivery lease ran out and another worker took it over")


def _release_delivery(generation: Generation) -> None:
    """Best effort: a lease not given back only delays the retry until it runs out."""
    try:
        records.release_delivery(generation)
    except Exception:
        logger.exception("could not release the delivery lease; the retry waits for it to run out")


def _public_reason(error: ProviderError) -> FailureReason:
    """The kind of failure the user is told (stored as the API's ``error``, said by the bot in their
    language): never the provider's raw text or our keys."""
    if error.status == 400:
        return FailureReason.PROVIDER_REJECTED
    if error.status in (401, 403):
        return FailureReason.PROVIDER_UNAVAILABLE
    return FailureReason.PROVIDER_FAILED


def _seconds_since(iso_timestamp: str) -> float:
    created = datetime.fromisoformat(iso_timestamp.replace("Z", "+00:00")).timestamp()
    return max(0.0, time.time() - created)
