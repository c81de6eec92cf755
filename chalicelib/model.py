"""The domain's types: statuses, reasons, and the values the use cases take and return.

No storage here (the PynamoDB models are in ``chalicelib.tables``); every
status a table stores is spelled once, in the enums below.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chalicelib.tables import Generation


class GenerationStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_STATUSES = (GenerationStatus.PENDING, GenerationStatus.PROCESSING)
FINAL_STATUSES = (GenerationStatus.COMPLETED, GenerationStatus.FAILED, GenerationStatus.CANCELLED)
# A replayed Idempotency-Key returns these instead of charging again (CONTRACT §5).
REPLAYABLE_STATUSES = (GenerationStatus.PENDING, GenerationStatus.PROCESSING, GenerationStatus.COMPLETED)
# Refunded, with the credits back: a failure or a cancellation.
REFUNDED_STATUSES = (GenerationStatus.FAILED, GenerationStatus.CANCELLED)


class PaymentStatus(StrEnum):
    CREDITED = "credited"
    REFUNDING = "refunding"  # credits taken back, Telegram has not confirmed the Stars refund yet
    REFUNDED = "refunded"


class BroadcastStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    DONE = "done"
    CANCELLED = "cancelled"


class BroadcastOutcome(StrEnum):
    """What became of one broadcast message (a delivery still ``sending`` crashed mid-way: never re-sent)."""

    SENT = "sent"
    FAILED = "failed"
    BLOCKED = "blocked"


class FailureReason(StrEnum):
    """Why a generation failed: every text a failed generation's ``error`` can hold, spelled once.

    The value is stored and returned as the API's ``error`` (CONTRACT §5: a
    short English text), so it must never change. The bot tells the user in
    their language with ``message_id`` (a ``failure-reason-*`` message of
    ``chalicelib/locales``); the Mini App keeps its own text for each value in
    ``webapp/src/failures.ts`` (``tests/unit/test_failure_reasons.py`` checks
    that each one is there, so a reason added here without a translation
    fails the tests).
    """

    TIMED_OUT = "Timed out."  # the sweeper: pending or processing past its timeout
    TIMED_OUT_BEFORE_RUN = "Timed out before it could run."  # a worker's claim found it past its timeout
    RETRIES_EXHAUSTED = "Failed after repeated attempts."  # the dead-letter handler
    PROVIDER_REJECTED = "the image service rejected this prompt or its images."  # AIML 400
    PROVIDER_UNAVAILABLE = "the image service is unavailable right now."  # AIML refused our key (401/403)
    PROVIDER_FAILED = "the image service could not make it."  # any other lasting provider error

    @property
    def message_id(self) -> str:
        """The bot's ``failure-reason-*`` message for this reason (a timeout's notice picks, with
        ``notify.timeout_reason``, whether it was still queued or already being drawn)."""
        return _FAILURE_MESSAGE_IDS[self]


_FAILURE_MESSAGE_IDS = {
    FailureReason.TIMED_OUT: "failure-reason-timeout",
    FailureReason.TIMED_OUT_BEFORE_RUN: "failure-reason-timeout",
    FailureReason.RETRIES_EXHAUSTED: "failure-reason-retries",
    FailureReason.PROVIDER_REJECTED: "failure-reason-rejected",
    FailureReason.PROVIDER_UNAVAILABLE: "failure-reason-unavailable",
    FailureReason.PROVIDER_FAILED: "failure-reason-failed",
}


class LedgerReason(StrEnum):
    WELCOME = "welcome"
    GENERATION = "generation"
    REFUND = "refund"
    ADMIN = "admin"
    PURCHASE = "purchase"
    PURCHASE_REFUND = "purchase_refund"
    PROMO = "promo"
    REFERRAL = "referral"


@dataclass(frozen=True)
class Profile:
    """Who a Telegram user says they are (from signed initData or a bot update)."""

    user_id: int
    first_name: str = ""
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None


@dataclass(frozen=True)
class GenerationOrder:
    """What is being bought: validated by the caller, priced by the catalogue."""

    prompt: str
    model: str
    aspect_ratio: str
    image_urls: tuple[str, ...]
    cost: int
    fingerprint: str  # same parameters <=> same fingerprint (idempotency)
    upload_ids: tuple[str, ...] = ()  # the user's own reference pictures (chalicelib.uploads)


# Telegram media that are not pictures: the bot answers that it takes a text to draw or a photo to
# edit (CONTRACT §7), never drops them in silence.
NOT_PICTURE_MEDIA = ("video", "video_note", "voice", "audio", "animation")


@dataclass(frozen=True)
class StartResult:
    generation: Generation
    # The balance after the debit (or now, for a replay); None when it could not be read
    # after a new charge (the generation is charged and queued all the same).
    credits: int | None
    replayed: bool


class ClaimOutcome(StrEnum):
    """What a worker's claim on a generation found."""

    CLAIMED = "claimed"  # this worker owns it now
    MISSING = "missing"  # no such generation
    BUSY = "busy"  # another worker holds a live lease
    FINISHED = "finished"  # completed, failed or cancelled already
    EXPIRED = "expired"  # past its timeout: failed and refunded instead
    TOO_LATE = "too_late"  # too close to its timeout for a provider call: left to expire (and be refunded)


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    generation: Generation | None


class UpdateClaimOutcome(StrEnum):
    """What the webhook's claim on a Telegram update found."""

    CLAIMED = "claimed"  # this delivery acts on the update
    DONE = "done"  # an earlier delivery acted on it
    BUSY = "busy"  # another delivery is acting on it right now


@dataclass(frozen=True)
class UpdateClaim:
    """A ``processing`` claim; ``expires_at`` identifies it (a take-over always sets a later one)."""

    pk: str
    expires_at: int


@dataclass(frozen=True)
class Redeemed:
    """A promo code redeemed: the credits it granted and the balance after."""

    granted: int
    credits: int
