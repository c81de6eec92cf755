"""Every error NanoGen raises on purpose, in one module.

An ``ApiError`` knows its HTTP status and its ``code`` (CONTRACT §4);
``chalicelib.http`` is the one place that turns it into a JSON response.
Anything else that escapes a handler is unexpected and becomes a 500
``internal_error`` carrying a request id.
"""

from __future__ import annotations

from collections.abc import Mapping


class NanoGenError(Exception):
    """Base of every deliberate NanoGen error."""


class ConfigurationError(NanoGenError):
    """An environment variable is missing or has a bad value."""


# --------------------------------------------------------------------------
# Errors a client sees (CONTRACT §4)
# --------------------------------------------------------------------------


class ApiError(NanoGenError):
    status: int = 500
    code: str = "internal_error"
    default_message: str = "Something went wrong."

    def __init__(self, message: str | None = None, *, headers: Mapping[str, str] | None = None) -> None:
        self.message = message or self.default_message
        self.headers: dict[str, str] = dict(headers or {})
        super().__init__(self.message)

    def body(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


class InvalidRequest(ApiError):
    status, code = 400, "invalid_request"
    default_message = "The request is malformed."


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"
    default_message = "Missing, forged or expired credentials."


class InsufficientCredits(ApiError):
    status, code = 402, "insufficient_credits"
    default_message = "Not enough credits. Buy more with /buy in the bot."


class Forbidden(ApiError):
    status, code = 403, "forbidden"
    default_message = "You are not allowed to do this."


class UserBanned(ApiError):
    status, code = 403, "user_banned"
    default_message = "This account is banned."


class NotFound(ApiError):
    status, code = 404, "not_found"
    default_message = "No such resource."


class NotCancellable(ApiError):
    status, code = 409, "not_cancellable"
    default_message = "Only a pending generation can be cancelled."


class Conflict(ApiError):
    status, code = 409, "conflict"
    default_message = "The change conflicts with the current state."


class AlreadyRedeemed(ApiError):
    status, code = 409, "already_redeemed"
    default_message = "You have already redeemed this promo code."


class PromoExhausted(ApiError):
    status, code = 409, "promo_exhausted"
    default_message = "This promo code has no uses left."


class IdempotencyKeyReused(ApiError):
    status, code = 422, "idempotency_key_reused"
    default_message = "This Idempotency-Key was already used with different parameters."


class _TooMany(ApiError):
    status = 429

    def __init__(self, message: str | None = None, *, retry_after: int) -> None:
        self.retry_after = max(1, int(retry_after))
        super().__init__(message, headers={"Retry-After": str(self.retry_after)})


class RateLimited(_TooMany):
    code = "rate_limited"
    default_message = "Too many generations this minute. Try again shortly."


class TooManyActive(_TooMany):
    code = "too_many_active"
    default_message = "Too many generations in progress. Wait for one to finish."


class UpdateInProgress(_TooMany):
    """Telegram re-sent an update that another delivery is handling right now.

    Not a 2xx, so Telegram delivers it again later (after ``Retry-After``)
    and the update is not lost if the first delivery fails.
    """

    status, code = 503, "update_in_progress"
    default_message = "This update is being handled; retry shortly."


class _Unavailable(ApiError):
    """503 with ``Retry-After``: DynamoDB could not finish the write in time; a retry shortly may."""

    status, code = 503, "temporarily_unavailable"
    RETRY_AFTER_SECONDS = 2

    def __init__(self, message: str | None = None, *, retry_after: int = RETRY_AFTER_SECONDS) -> None:
        self.retry_after = max(1, int(retry_after))
        super().__init__(message, headers={"Retry-After": str(self.retry_after)})


class TemporarilyUnavailable(_Unavailable):
    """Retries ran out on conflicts or throttling: the write was definitely *not* applied."""

    default_message = "The service is busy and nothing was changed. Try again in a few seconds."


class OutcomeUnknown(_Unavailable):
    """Retries ran out without an answer (timeouts, 5xx): the write may or may not have been applied.

    Never handle it as "nothing happened" (no refund, no compensation): the
    client's retry finds out, and an Idempotency-Key retry is charged at most once.
    """

    default_message = (
        "We could not confirm whether this was done. Try again in a few seconds with the same "
        "request (and the same Idempotency-Key): it will not be applied twice."
    )


class CreditChangeOutcomeUnknown(OutcomeUnknown):
    """An operator's credit change sent without an ``Idempotency-Key`` whose outcome is unknown.

    Without a key a retry is a new change, so the answer must not promise that
    retrying is safe: the operator looks at the ledger first.
    """

    default_message = (
        "We could not confirm whether the credits were changed. Look at the user's ledger before "
        "trying again, or send the request with an Idempotency-Key header."
    )


class InternalError(ApiError):
    status, code = 500, "internal_error"
    default_message = "An unexpected error occurred."


# --------------------------------------------------------------------------
# Errors of the outside services (never shown to a client as such)
# --------------------------------------------------------------------------


class ProviderError(NanoGenError):
    """The image provider failed. ``transient`` says whether a retry may help."""

    def __init__(self, message: str, *, status: int | None = None, transient: bool) -> None:
        self.status = status
        self.transient = transient
        super().__init__(message)

    @property
    def alerts_operator(self) -> bool:
        """401/403: the key is bad or the AIML balance is empty; every user is affected."""
        return self.status in (401, 403)


class TelegramError(NanoGenError):
    """The Bot API answered ``ok: false`` or could not be reached."""

    def __init__(self, description: str, *, error_code: int | None = None, retry_after: int | None = None) -> None:
        self.description = description
        self.error_code = error_code
        self.retry_after = retry_after
        super().__init__(f"Telegram error {error_code}: {description}")


class SweepFailed(NanoGenError):
    """Every phase of a sweep failed: the sweeper did nothing, so its Lambda must report an error."""


class BroadcastStopped(NanoGenError):
    """The broadcast is no longer ``sending`` (cancelled): claim no more of its users."""


class TransactionCancelled(NanoGenError):
    """A DynamoDB transaction was cancelled; ``reasons`` maps item labels to codes.

    Raised by ``chalicelib.transactions`` after mapping DynamoDB's
    cancellation reasons back to the items that caused them, so the use
    case can turn it into the right API error.
    """

    def __init__(self, reasons: Mapping[str, str], old_items: Mapping[str, dict] | None = None) -> None:
        self.reasons = dict(reasons)
        self.old_items = dict(old_items or {})
        super().__init__(f"transaction cancelled: {self.reasons}")

    def failed(self, label: str) -> bool:
        return self.reasons.get(label) == "ConditionalCheckFailed"
