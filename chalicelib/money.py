"""Where money moves. Every debit, refund and grant of NanoGen is in this file,
and every change of a generation's status.

Nothing else lives here: the types are in ``chalicelib.model``, the reads in
``chalicelib.queries``, writes that move no money in ``chalicelib.records``.

Each use case is one DynamoDB transaction (TransactWriteItems) whenever its
rule spans several items, so the invariants of CONTRACT §6 hold at every
moment, whatever the concurrency, and a retried or racing call changes
nothing twice:

* the balance is changed only by conditional updates that keep it >= 0;
* every balance change puts its ledger entry in the same transaction;
* a generation is charged in the transaction that creates it and refunded
  only by a transition out of ``pending``/``processing`` (to ``failed`` or
  ``cancelled``), which can happen once; ``completed`` is final too;
* ``active_generations`` moves in the same transactions as the statuses.
"""

from __future__ import annotations

import math
import time
import uuid
from typing import Any, cast

from pynamodb.expressions.update import Action

from chalicelib.config import Settings
from chalicelib.errors import (
    AlreadyRedeemed,
    Conflict,
    CreditChangeOutcomeUnknown,
    IdempotencyKeyReused,
    InsufficientCredits,
    NotCancellable,
    NotFound,
    OutcomeUnknown,
    PromoExhausted,
    RateLimited,
    TemporarilyUnavailable,
    TooManyActive,
    TransactionCancelled,
    UserBanned,
)
from chalicelib.guards import admin_credit_record, idempotency_record
from chalicelib.ids import iso_utc, new_id
from chalicelib.model import (
    ACTIVE_STATUSES,
    FINAL_STATUSES,
    REPLAYABLE_STATUSES,
    Claim,
    ClaimOutcome,
    FailureReason,
    GenerationOrder,
    GenerationStatus,
    LedgerReason,
    PaymentStatus,
    Profile,
    Redeemed,
    StartResult,
)
from chalicelib.observability import logger
from chalicelib.queries import get_generation, get_payment, get_promo_code, get_user, unfinished_generations
from chalicelib.tables import (
    SWEEP_SHARDS,
    AdminCreditRecord,
    Generation,
    IdempotencyRecord,
    LedgerEntry,
    Payment,
    PromoCode,
    PromoRedemption,
    RateLimitWindow,
    User,
)
from chalicelib.text import counted
from chalicelib.transactions import Transaction, conditional_update

IDEMPOTENCY_TTL_SECONDS = 7 * 24 * 3600
TOO_MANY_ACTIVE_RETRY_AFTER = 10  # seconds: about one generation's run time
_MAX_START_ATTEMPTS = 4
# How long a Stars refund attempt holds its payment: longer than the API Lambda's 15 s
# (which bounds its Telegram call), so a live attempt is never overtaken.
REFUND_ATTEMPT_SECONDS = 60


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def _ledger(user_id: int, delta: int, reason: LedgerReason, now: float, **refs: Any) -> LedgerEntry:
    return LedgerEntry(
        user_id=user_id,
        entry_id=new_id(now),
        delta=delta,
        reason=reason.value,
        created_at=iso_utc(now),
        **refs,
    )


def _put_ledger(tx: Transaction, entry: LedgerEntry) -> None:
    """Every ledger entry is put on condition that its id is new: a replayed write never overwrites one."""
    tx.put("ledger", entry, condition=LedgerEntry.entry_id.does_not_exist())


def _user_exists() -> Any:
    return User.user_id.exists()


# --------------------------------------------------------------------------
# Users
# --------------------------------------------------------------------------


def register(
    profile: Profile,
    settings: Settings,
    *,
    start_payload: str | None = None,
    invited_by: int | None = None,
    now: float | None = None,
) -> tuple[User, bool]:
    """Create the user with its welcome credits, exactly once.

    Returns ``(user, created)``. Racing calls all return the same user; only
    the one whose conditional put wins writes the welcome ledger entry.
    ``invited_by`` (a referral link) is recorded only here, so only for a
    user who is new at this moment, never for oneself, only for an inviter
    who exists, and not at all when referrals are off (CONTRACT §6.7).
    """
    now = _now(now)
    if invited_by == profile.user_id or settings.referral_bonus_credits == 0:
        invited_by = None
    user = User(
        user_id=profile.user_id,
        first_name=profile.first_name,
        last_name=profile.last_name,
        username=profile.username,
        language_code=profile.language_code,
        credits=settings.welcome_credits,
        active_generations=0,
        banned=False,
        start_payload=start_payload,
        invited_by=invited_by,
        created_at=iso_utc(now),
        updated_at=iso_utc(now),
    )
    tx = Transaction()
    tx.put("user", user, condition=User.user_id.does_not_exist())
    if settings.welcome_credits:
        _put_ledger(tx, _ledger(profile.user_id, settings.welcome_credits, LedgerReason.WELCOME, now))
    if invited_by is not None:
        tx.update("inviter", User(user_id=invited_by), [User.invited_count.add(1)], condition=_user_exists())
    try:
        tx.commit()
        return user, True
    except TransactionCancelled as cancelled:
        if cancelled.failed("inviter") and not cancelled.failed("user"):
            # A link of nobody we know: the user is still new, just not invited.
            return register(profile, settings, start_payload=start_payload, now=now)
        if not cancelled.failed("user"):
            raise
    existing = get_user(profile.user_id)
    if existing is None:  # pragma: no cover - a user is never deleted
        raise Conflict("The user could not be registered; please retry.")
    return existing, False


def get_or_register(profile: Profile, settings: Settings, *, now: float | None = None) -> User:
    """The user behind a signed profile, registering it on first sight."""
    user = get_user(profile.user_id)
    if user is None:
        user, _ = register(profile, settings, now=now)
    return user


# --------------------------------------------------------------------------
# Starting a generation: the charge
# --------------------------------------------------------------------------


def start_generation(
    profile: Profile,
    order: GenerationOrder,
    settings: Settings,
    *,
    chat_id: int,
    source: str,
    idempotency_key: str | None = None,
    replay_any_status: bool = False,
    read_balance: bool = True,
    language: str | None = None,
    now: float | None = None,
) -> StartResult:
    """Charge ``order.cost`` and create a pending generation, in one transaction.

    ``read_balance=False``: leave ``credits`` None for a new charge; the
    caller reads it once the job is queued (``usecases.generation``).
    ``language`` is stored on the generation for what the worker tells the user.

    ``replay_any_status`` (the bot: one Telegram message, one generation)
    replays a key even after its generation failed or was cancelled. Keys
    are per user and per ``source``: the API's and the bot's never meet.

    The transaction debits the user on condition that the balance covers the
    cost, the user is not banned and has fewer than MAX_ACTIVE_GENERATIONS
    active; takes a slot of the per-minute rate-limit window; creates the
    generation with its ``timeout_at``; records the Idempotency-Key; and
    writes the ledger entry. A cancelled transaction is turned into the
    error of the item that failed (CONTRACT §4, §5).
    """
    now = _now(now)
    replacing: str | None = None  # generation id a failed/cancelled key pointed at
    for _ in range(_MAX_START_ATTEMPTS):
        generation = _new_generation(profile.user_id, order, settings, chat_id, source, idempotency_key, now)
        generation.language = language
        window_start = int(now // 60) * 60
        tx = Transaction()
        tx.update(
            "user",
            User(user_id=profile.user_id),
            [
                User.credits.add(-order.cost),
                User.active_generations.add(1),
                User.updated_at.set(iso_utc(now)),
            ],
            condition=(
                _user_exists()
                & (User.credits >= order.cost)
                & (User.banned == False)  # noqa: E712 - a DynamoDB condition, not a Python comparison
                & (User.active_generations < settings.max_active_generations)
            ),
            want_old=True,
        )
        tx.update(
            "rate",
            RateLimitWindow(pk=RateLimitWindow.key(profile.user_id, window_start)),
            [RateLimitWindow.used.add(1), RateLimitWindow.expires_at.set(window_start + 120)],
            condition=RateLimitWindow.used.does_not_exist() | (RateLimitWindow.used < settings.rate_limit_per_minute),
        )
        tx.put("generation", generation, condition=Generation.generation_id.does_not_exist())
        _put_ledger(
            tx,
            _ledger(profile.user_id, -order.cost, LedgerReason.GENERATION, now, generation_id=generation.generation_id),
        )
        if idempotency_key is not None:
            record = IdempotencyRecord(
                pk=IdempotencyRecord.key(profile.user_id, idempotency_key, source=source),
                generation_id=generation.generation_id,
                fingerprint=order.fingerprint,
                expires_at=int(now) + IDEMPOTENCY_TTL_SECONDS,
            )
            if replacing is None:
                free = IdempotencyRecord.pk.does_not_exist() | (IdempotencyRecord.expires_at < int(now))
            else:
                free = IdempotencyRecord.generation_id == replacing
            tx.put("idempotency", record, condition=free)
        try:
            tx.commit()
        except TransactionCancelled as cancelled:
            if cancelled.failed("idempotency"):
                assert idempotency_key is not None
                replay, replacing = _resolve_key_reuse(
                    profile.user_id, idempotency_key, source, order, now, replay_any_status=replay_any_status
                )
                if replay is not None:
                    return replay
                continue
            if cancelled.failed("user"):
                _raise_for_user(profile, settings, order, cancelled, now)
                continue  # registered just now, or the state moved: try again
            if cancelled.failed("rate"):
                raise RateLimited(retry_after=math.ceil(window_start + 60 - now)) from None
            if cancelled.failed("generation") or cancelled.failed("ledger"):
                continue  # id collision: practically impossible, but harmless to retry
            raise
        # TransactWriteItems returns no attributes: one read for the new balance.
        credits = _balance_after_debit(profile.user_id) if read_balance else None
        return StartResult(generation=generation, credits=credits, replayed=False)
    raise Conflict("The request could not be completed because of concurrent changes; please retry.")


def _balance_after_debit(user_id: int) -> int:
    user = get_user(user_id)
    return int(user.credits) if user else 0


def _new_generation(
    user_id: int,
    order: GenerationOrder,
    settings: Settings,
    chat_id: int,
    source: str,
    idempotency_key: str | None,
    now: float,
) -> Generation:
    generation_id = new_id(now)
    return Generation(
        user_id=user_id,
        generation_id=generation_id,
        status=GenerationStatus.PENDING.value,
        prompt=order.prompt,
        model=order.model,
        aspect_ratio=order.aspect_ratio,
        image_urls=list(order.image_urls),
        upload_ids=list(order.upload_ids),
        cost=order.cost,
        result_keys=[],
        created_at=iso_utc(now),
        updated_at=iso_utc(now),
        timeout_at=int(now) + settings.generation_timeout_seconds,
        chat_id=chat_id,
        source=source,
        idempotency_key=idempotency_key,
        attempts=0,
        delivered=False,
        sweep_shard=_shard_of(generation_id),
    )


def _shard_of(generation_id: str) -> str:
    return str(sum(generation_id.encode()) % SWEEP_SHARDS)


def replay_of(
    user_id: int,
    idempotency_key: str,
    order: GenerationOrder,
    *,
    source: str,
    now: float | None = None,
) -> StartResult | None:
    """The §5 replay a request would get, read-only: a live record of this key with the same fingerprint
    whose generation may be replayed; None otherwise (the caller validates and orders as usual).

    Lets the API answer a replay without re-checking what the first request
    checked (its uploads may have expired since).
    """
    now = _now(now)
    record = idempotency_record(user_id, idempotency_key, source=source)
    if record is None or record.expires_at < int(now) or record.fingerprint != order.fingerprint:
        return None
    replay, _ = _resolve_key_reuse(user_id, idempotency_key, source, order, now, record=record)
    return replay


def _resolve_key_reuse(
    user_id: int,
    idempotency_key: str,
    source: str,
    order: GenerationOrder,
    now: float,
    *,
    replay_any_status: bool = False,
    record: IdempotencyRecord | None = None,
) -> tuple[StartResult | None, str | None]:
    """An Idempotency-Key is already taken: replay, refuse, or allow a new charge.

    Returns ``(replay, None)`` for a replay, or ``(None, old_generation_id)``
    when the earlier generation failed or was cancelled and a new one may
    replace it (CONTRACT §5). ``record``: the key's record, when the caller
    has just read it (``replay_of``), so it is not read twice.
    """
    if record is None:
        record = idempotency_record(user_id, idempotency_key, source=source)
    if record is None:
        return None, None  # expired and deleted meanwhile: the key is free again
    if record.expires_at < int(now):
        return None, None
    if record.fingerprint != order.fingerprint:
        raise IdempotencyKeyReused()
    earlier = get_generation(user_id, record.generation_id)
    if earlier is not None and (replay_any_status or earlier.status in REPLAYABLE_STATUSES):
        user = get_user(user_id)
        return StartResult(generation=earlier, credits=int(user.credits) if user else 0, replayed=True), None
    return None, record.generation_id


def _raise_for_user(
    profile: Profile, settings: Settings, order: GenerationOrder, cancelled: TransactionCancelled, now: float
) -> None:
    """Explain why the user's condition failed; return only if a retry may succeed."""
    raw = cancelled.old_items.get("user")
    user = User.from_raw_data(raw) if raw else get_user(profile.user_id)
    if user is None:
        # A millisecond earlier, so the welcome entry sorts before the charge.
        register(profile, settings, now=now - 0.001)
        return
    if user.banned:
        raise UserBanned()
    if user.credits < order.cost:
        raise InsufficientCredits(
            f"This generation costs {counted(order.cost, 'credit')} and your balance is {int(user.credits)}."
        )
    if user.active_generations >= settings.max_active_generations:
        raise TooManyActive(
            f"You already have {counted(int(user.active_generations), 'generation')} in progress "
            f"(the limit is {settings.max_active_generations}).",
            retry_after=TOO_MANY_ACTIVE_RETRY_AFTER,
        )


# --------------------------------------------------------------------------
# The lifecycle: cancel, claim, complete, fail
# --------------------------------------------------------------------------


def cancel_generation(user_id: int, generation_id: str, *, now: float | None = None) -> Generation:
    """Cancel a pending generation of this user and refund it (404 / 409 otherwise)."""
    now = _now(now)
    generation = get_generation(user_id, generation_id)
    if generation is None:
        raise NotFound("No such generation.")
    if generation.status != GenerationStatus.PENDING:
        raise NotCancellable(f"The generation is {generation.status}; only a pending one can be cancelled.")
    if not _refund(generation, GenerationStatus.CANCELLED, None, Generation.status == GenerationStatus.PENDING, now):
        raise NotCancellable("The generation has already started; it can no longer be cancelled.")
    return generation


def claim_generation(
    user_id: int, generation_id: str, *, lease_seconds: int, min_seconds_left: int = 0, now: float | None = None
) -> Claim:
    """Move pending -> processing for this worker (or take over an expired lease).

    One conditional update. A generation past its ``timeout_at`` is never
    handed to the provider: it is failed and refunded instead. One with less
    than ``min_seconds_left`` before its ``timeout_at`` (not enough for a
    provider call, storing and completing) is not claimed either
    (``TOO_LATE``): a claim now would pay the provider for a picture the
    sweeper then refunds and throws away.
    """
    now = _now(now)
    token = uuid.uuid4().hex
    generation = Generation(user_id=user_id, generation_id=generation_id)
    claimable = (Generation.status == GenerationStatus.PENDING) | (
        (Generation.status == GenerationStatus.PROCESSING) & (Generation.lease_until < int(now))
    )
    claimed = conditional_update(
        generation,
        [
            Generation.status.set(GenerationStatus.PROCESSING.value),
            Generation.claim_token.set(token),
            Generation.lease_until.set(int(now) + lease_seconds),
            Generation.attempts.add(1),
            Generation.updated_at.set(iso_utc(now)),
        ],
        claimable & (Generation.timeout_at > int(now) + max(0, min_seconds_left)),
    )
    if claimed:
        return Claim(ClaimOutcome.CLAIMED, generation)
    current = get_generation(user_id, generation_id)
    if current is None:
        return Claim(ClaimOutcome.MISSING, None)
    if current.status == GenerationStatus.PROCESSING and current.claim_token == token:
        # Our own write, applied, whose response was lost: botocore's retry then failed
        # its condition against it. The token is new for every call, so this claim is ours.
        return Claim(ClaimOutcome.CLAIMED, current)
    if current.status in FINAL_STATUSES:
        return Claim(ClaimOutcome.FINISHED, current)
    if current.timeout_at <= int(now):
        # Only the call that refunded reports EXPIRED, so the user is told once.
        if fail_generation(current, error=FailureReason.TIMED_OUT_BEFORE_RUN, only_if_expired=True, now=now):
            return Claim(ClaimOutcome.EXPIRED, current)
        return Claim(ClaimOutcome.FINISHED, get_generation(user_id, generation_id))
    if current.status == GenerationStatus.PROCESSING and int(current.lease_until or 0) >= int(now):
        return Claim(ClaimOutcome.BUSY, current)
    if current.timeout_at <= int(now) + max(0, min_seconds_left):
        return Claim(ClaimOutcome.TOO_LATE, current)
    return Claim(ClaimOutcome.BUSY, current)  # it moved between our update and our read: look again soon


def release_claim(generation: Generation, *, now: float | None = None) -> bool:
    """processing -> pending after a transient failure, so the next delivery can claim it at once.

    No money moves; only the worker holding the claim can release it. Never
    raises: False when the claim was not released (not ours, or DynamoDB failed).
    """
    now = _now(now)
    if not generation.claim_token:
        return False
    try:
        return conditional_update(
            Generation(user_id=generation.user_id, generation_id=generation.generation_id),
            [
                Generation.status.set(GenerationStatus.PENDING.value),
                Generation.claim_token.remove(),
                Generation.lease_until.remove(),
                Generation.updated_at.set(iso_utc(now)),
            ],
            (Generation.status == GenerationStatus.PROCESSING) & (Generation.claim_token == generation.claim_token),
        )
    except Exception:
        # Best effort: the caller is handling a failure it must not lose to this one,
        # and the lease expires on its own (the next delivery then takes the job over).
        logger.warning("claim not released; it is freed when its lease expires", exc_info=True)
        return False


def complete_generation(
    generation: Generation, *, result_keys: list[str], provider: str, now: float | None = None
) -> bool:
    """processing -> completed, for the worker holding the claim. False if it lost the claim."""
    now = _now(now)
    if not generation.claim_token:
        return False
    tx = Transaction()
    tx.update(
        "generation",
        Generation(user_id=generation.user_id, generation_id=generation.generation_id),
        [
            Generation.status.set(GenerationStatus.COMPLETED.value),
            Generation.result_keys.set(cast(Any, result_keys)),
            Generation.provider.set(provider),
            Generation.updated_at.set(iso_utc(now)),
            Generation.sweep_shard.remove(),
            Generation.lease_until.remove(),
        ],
        condition=(Generation.status == GenerationStatus.PROCESSING)
        & (Generation.claim_token == generation.claim_token),
    )
    tx.update(
        "user",
        User(user_id=generation.user_id),
        [User.active_generations.add(-1), User.updated_at.set(iso_utc(now))],
        condition=_user_exists(),
    )
    if not tx.try_commit("generation"):
        return False
    generation.status = GenerationStatus.COMPLETED.value
    generation.result_keys = cast(Any, result_keys)
    generation.provider = provider
    generation.updated_at = iso_utc(now)
    return True


def fail_generation(
    generation: Generation,
    *,
    error: FailureReason,
    claim_token: str | None = None,
    only_if_expired: bool = False,
    only_if_unclaimed: bool = False,
    now: float | None = None,
) -> bool:
    """pending/processing -> failed with its refund, at most once. False if it had already ended.

    ``claim_token`` restricts the transition to the worker holding the claim;
    ``only_if_expired`` to a generation past its ``timeout_at`` (the sweeper);
    ``only_if_unclaimed`` to one no worker holds a live lease on (the
    dead-letter handler must not refund a picture a worker is finishing).
    ``error`` is stored as the generation's ``error`` (CONTRACT §5).
    """
    now = _now(now)
    condition = Generation.status.is_in(*ACTIVE_STATUSES)
    if claim_token is not None:
        condition &= Generation.claim_token == claim_token
    if only_if_expired:
        condition &= Generation.timeout_at <= int(now)
    if only_if_unclaimed:
        condition &= (Generation.status == GenerationStatus.PENDING) | (Generation.lease_until < int(now))
    return _refund(generation, GenerationStatus.FAILED, error.value, condition, now)


def _refund(generation: Generation, status: GenerationStatus, error: str | None, condition: Any, now: float) -> bool:
    """End an active generation as ``status`` and give its cost back: one transaction."""
    cost = int(generation.cost)
    actions: list[Action] = [
        Generation.status.set(status.value),
        Generation.updated_at.set(iso_utc(now)),
        Generation.sweep_shard.remove(),
        Generation.lease_until.remove(),
    ]
    if error is not None:
        actions.append(Generation.error.set(error))
    tx = Transaction()
    tx.update(
        "generation",
        Generation(user_id=generation.user_id, generation_id=generation.generation_id),
        actions,
        condition=condition,
    )
    tx.update(
        "user",
        User(user_id=generation.user_id),
        [User.credits.add(cost), User.active_generations.add(-1), User.updated_at.set(iso_utc(now))],
        condition=_user_exists(),
    )
    _put_ledger(
        tx, _ledger(int(generation.user_id), cost, LedgerReason.REFUND, now, generation_id=generation.generation_id)
    )
    if not tx.try_commit("generation"):
        return False
    generation.status = status.value
    generation.updated_at = iso_utc(now)
    if error is not None:
        generation.error = error
    return True


# --------------------------------------------------------------------------
# The sweeper
# --------------------------------------------------------------------------


def sweep_expired(*, now: float | None = None) -> list[Generation]:
    """Fail and refund every generation past its timeout that is still pending or processing.

    Returns the generations this call failed (a racing sweeper or worker
    may have ended some of them first; those are not counted twice).
    """
    now = _now(now)
    return [
        generation
        for generation in unfinished_generations(timeout_before=now + 1)
        if fail_generation(generation, error=FailureReason.TIMED_OUT, only_if_expired=True, now=now)
    ]


# --------------------------------------------------------------------------
# Admin
# --------------------------------------------------------------------------


def change_credits(
    user_id: int,
    amount: int,
    *,
    note: str,
    idempotency_key: str | None = None,
    fingerprint: str = "",
    now: float | None = None,
) -> User:
    """Grant (amount > 0) or remove (amount < 0) credits; never below zero (409).

    With the operator's ``idempotency_key`` (and ``fingerprint``, of the amount
    and the reason), the change, its ledger entry and the key's record are one
    transaction. The key's timeline:

    1. first request: the record is put on condition that no live one has the
       key; applied with the change (or not at all);
    2. its answer lost (``OutcomeUnknown``), the operator retries: the record's
       condition fails, nothing is applied, and the answer is the user as it
       is now (the record comes back in the cancellation: no read of it);
    3. the same key with another fingerprint: 422, nothing changed;
    4. a refused attempt (409 below zero, 404) wrote no record: its retry is a
       first request again, refused again while the balance is too low;
    5. after ``IDEMPOTENCY_TTL_SECONDS`` the key is free.

    Without a key a retry is a new change, so an unknown outcome says so
    (``CreditChangeOutcomeUnknown``) instead of inviting a retry.
    """
    now = _now(now)
    condition = _user_exists()
    if amount < 0:
        condition &= User.credits >= -amount
    tx = Transaction()
    tx.update(
        "user",
        User(user_id=user_id),
        [User.credits.add(amount), User.updated_at.set(iso_utc(now))],
        condition=condition,
    )
    entry = _ledger(user_id, amount, LedgerReason.ADMIN, now, note=note)
    _put_ledger(tx, entry)
    if idempotency_key is not None:
        record = AdminCreditRecord(
            pk=AdminCreditRecord.key(user_id, idempotency_key),
            fingerprint=fingerprint,
            entry_id=entry.entry_id,
            expires_at=int(now) + IDEMPOTENCY_TTL_SECONDS,
        )
        free = AdminCreditRecord.pk.does_not_exist() | (AdminCreditRecord.expires_at < int(now))
        tx.put("idempotency", record, condition=free, want_old=True)
    try:
        tx.commit()
    except TransactionCancelled as cancelled:
        if cancelled.failed("idempotency"):
            assert idempotency_key is not None
            return _replay_credit_change(user_id, idempotency_key, fingerprint, cancelled.old_items.get("idempotency"))
        if not cancelled.failed("user"):
            raise
        user = get_user(user_id)
        if user is None:
            raise NotFound("No such user.") from None
        raise Conflict(f"The balance is {int(user.credits)}; removing {-amount} would make it negative.") from None
    except OutcomeUnknown:
        if idempotency_key is None:
            raise CreditChangeOutcomeUnknown() from None
        raise  # the retry with this key finds what happened
    return _existing_user(user_id)


def _replay_credit_change(user_id: int, idempotency_key: str, fingerprint: str, raw: dict | None) -> User:
    """The key's record exists: the change was made by an earlier request (or is a 422)."""
    record = AdminCreditRecord.from_raw_data(raw) if raw else admin_credit_record(user_id, idempotency_key)
    if record is None:  # pragma: no cover - expired and deleted between the put and this read
        raise TemporarilyUnavailable()
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyReused("This Idempotency-Key was already used with another amount or reason.")
    logger.info("admin credit change replayed", extra={"target_user_id": user_id, "entry_id": record.entry_id})
    return _existing_user(user_id)


def _existing_user(user_id: int) -> User:
    user = get_user(user_id)
    if user is None:
        raise NotFound("No such user.")
    return user


# --------------------------------------------------------------------------
# Telegram Stars payments
# --------------------------------------------------------------------------


def credit_purchase(
    profile: Profile,
    settings: Settings,
    *,
    charge_id: str,
    provider_charge_id: str | None,
    pack_id: str,
    credits: int,
    stars: int,
    now: float | None = None,
) -> bool:
    """Credit a Stars payment exactly once per ``telegram_payment_charge_id``.

    Returns False when this charge was already credited (a re-sent update).
    """
    now = _now(now)
    buyer = get_user(profile.user_id) or register(profile, settings, now=now)[0]
    payment = Payment(
        charge_id=charge_id,
        user_id=profile.user_id,
        pack_id=pack_id,
        credits=credits,
        stars=stars,
        status=PaymentStatus.CREDITED.value,
        provider_charge_id=provider_charge_id,
        created_at=iso_utc(now),
        updated_at=iso_utc(now),
    )
    # An invited user's first purchase also pays the inviter's bonus, in this
    # same transaction (CONTRACT §6.7); if a racing purchase was first, the
    # "user" condition fails and the purchase is credited without it.
    bonus = _referral_bonus(buyer, settings)
    for with_bonus in (True, False) if bonus else (False,):
        tx = Transaction()
        tx.put("payment", payment, condition=Payment.charge_id.does_not_exist())
        condition = _user_exists()
        if with_bonus:
            assert bonus is not None
            condition &= User.paid_at.does_not_exist() & (User.invited_by == bonus[0])
            _add_referral_bonus(
                tx, inviter=bonus[0], invitee=profile.user_id, amount=bonus[1], charge_id=charge_id, now=now
            )
        tx.update(
            "user",
            User(user_id=profile.user_id),
            [
                User.credits.add(credits),
                User.updated_at.set(iso_utc(now)),
                User.paid_at.set(User.paid_at | iso_utc(now)),  # the first purchase's time
            ],
            condition=condition,
        )
        _put_ledger(tx, _ledger(profile.user_id, credits, LedgerReason.PURCHASE, now, payment_charge_id=charge_id))
        try:
            tx.commit()
        except TransactionCancelled as cancelled:
            if cancelled.failed("payment"):
                return False
            if with_bonus and cancelled.failed("user"):
                continue  # not the first purchase after all
            raise
        return True
    raise Conflict("The payment could not be credited because of concurrent changes.")  # pragma: no cover


def take_back_purchase(charge_id: str, *, attempt: str, now: float | None = None) -> Payment:
    """Remove a payment's credits before its Stars are refunded, for refund ``attempt`` (409 if spent).

    The payment becomes ``refunding``, held by ``attempt`` for
    REFUND_ATTEMPT_SECONDS, until that attempt confirms
    (``confirm_purchase_refund``) or Telegram definitely refuses
    (``restore_purchase``). Timeline of one charge::

        credited --take_back(A)--> refunding, A --confirm(A)--> refunded
                                   refunding, A --restore(A)--> credited
        refunding, A, live         --take_back(B)--> 409: A is calling Telegram; B calls nobody
        refunding, released/expired --take_back(B)--> refunding, B (credits stay taken; B finishes)

    An attempt whose Telegram answer was lost releases the payment
    (``release_purchase_refund``) so that a retry can take it over at once;
    one that died is overtaken when its time runs out.
    """
    now = _now(now)
    for _ in range(2):  # the payment can move between our read and our write
        payment = get_payment(charge_id)
        if payment is None:
            raise NotFound("No such payment.")
        if payment.status == PaymentStatus.REFUNDED:
            raise Conflict("This payment was already refunded.")
        if payment.status == PaymentStatus.REFUNDING:
            if _take_over_refund(payment, attempt, now):
                return payment
            continue
        try:
            _move_payment(
                payment,
                PaymentStatus.CREDITED,
                PaymentStatus.REFUNDING,
                -int(payment.credits),
                LedgerReason.PURCHASE_REFUND,
                now,
                attempt=(None, attempt),
            )
        except TransactionCancelled as cancelled:
            if cancelled.failed("payment"):
                continue
            if cancelled.failed("user"):
                raise Conflict("The credits of this payment were already spent; it cannot be refunded.") from None
            raise
        except OutcomeUnknown:
            # Applied or not? The payment says: held by this attempt means the credits are taken.
            current = get_payment(charge_id)
            if current is None or current.refund_attempt != attempt:
                raise
            return current
        return payment
    raise _refund_in_progress(get_payment(charge_id), now)


def _take_over_refund(payment: Payment, attempt: str, now: float) -> bool:
    """Hold a ``refunding`` payment for ``attempt`` if no live attempt holds it (its credits are already taken)."""
    holder_gone = Payment.refund_attempt.does_not_exist() | (Payment.refund_attempt_until < int(now))
    unknown: OutcomeUnknown | None = None
    try:
        taken = conditional_update(
            Payment(charge_id=payment.charge_id),
            [
                Payment.refund_attempt.set(attempt),
                Payment.refund_attempt_until.set(int(now) + REFUND_ATTEMPT_SECONDS),
                Payment.updated_at.set(iso_utc(now)),
            ],
            (Payment.status == PaymentStatus.REFUNDING) & holder_gone,
        )
    except OutcomeUnknown as error:
        taken, unknown = False, error  # applied or not: the payment read below says whether we hold it
    if taken:
        payment.refund_attempt = attempt
        payment.refund_attempt_until = int(now) + REFUND_ATTEMPT_SECONDS
        return True
    current = get_payment(payment.charge_id)
    if current is not None and current.status == PaymentStatus.REFUNDING:
        if current.refund_attempt == attempt:  # our update was applied; its answer (or botocore's retry's) was lost
            payment.refund_attempt, payment.refund_attempt_until = attempt, current.refund_attempt_until
            return True
        if unknown is not None:
            raise unknown
        raise _refund_in_progress(current, now)
    return False  # confirmed or restored meanwhile: look again


def _refund_in_progress(payment: Payment | None, now: float) -> Conflict:
    until = int(payment.refund_attempt_until or 0) if payment is not None else 0
    wait = max(1, until - int(now))
    return Conflict(
        f"Another refund of this payment is in progress; try again in {counted(wait, 'second')} to see its result.",
        headers={"Retry-After": str(wait)},
    )


def confirm_purchase_refund(charge_id: str, *, attempt: str, now: float | None = None) -> bool:
    """Telegram returned the Stars to ``attempt``: the refund is final. No money moves.

    False when ``attempt`` no longer holds the payment (it was overtaken): the caller must find out why.
    """
    now = _now(now)
    return conditional_update(
        Payment(charge_id=charge_id),
        [
            Payment.status.set(PaymentStatus.REFUNDED.value),
            Payment.updated_at.set(iso_utc(now)),
            Payment.refund_attempt.remove(),
            Payment.refund_attempt_until.remove(),
        ],
        (Payment.status == PaymentStatus.REFUNDING) & (Payment.refund_attempt == attempt),
    )


def release_purchase_refund(charge_id: str, *, attempt: str, now: float | None = None) -> bool:
    """Telegram's answer to ``attempt`` was lost: keep the credits taken, let the next attempt take over now.

    Best effort (never raises): otherwise the hold expires after REFUND_ATTEMPT_SECONDS.
    """
    now = _now(now)
    try:
        return conditional_update(
            Payment(charge_id=charge_id),
            [
                Payment.refund_attempt.remove(),
                Payment.refund_attempt_until.remove(),
                Payment.updated_at.set(iso_utc(now)),
            ],
            (Payment.status == PaymentStatus.REFUNDING) & (Payment.refund_attempt == attempt),
        )
    except Exception:
        logger.warning("refund attempt not released; it expires on its own", exc_info=True)
        return False


def restore_purchase(charge_id: str, *, attempt: str, now: float | None = None) -> bool:
    """Undo ``take_back_purchase`` of ``attempt`` when Telegram definitely refused the Stars refund.

    False when ``attempt`` no longer holds the payment: nothing is restored.
    """
    now = _now(now)
    payment = get_payment(charge_id)
    if payment is None or payment.status != PaymentStatus.REFUNDING or payment.refund_attempt != attempt:
        return False
    try:
        _move_payment(
            payment,
            PaymentStatus.REFUNDING,
            PaymentStatus.CREDITED,
            int(payment.credits),
            LedgerReason.PURCHASE,
            now,
            "restored",
            attempt=(attempt, None),
        )
    except TransactionCancelled as cancelled:
        if cancelled.failed("payment"):
            return False
        raise
    return True


def _move_payment(
    payment: Payment,
    from_status: PaymentStatus,
    to_status: PaymentStatus,
    delta: int,
    reason: LedgerReason,
    now: float,
    note: str | None = None,
    *,
    attempt: tuple[str | None, str | None],
) -> None:
    """Change a payment's status and its user's balance by ``delta``, with the ledger entry: one transaction.

    ``attempt`` is (the refund attempt that must hold the payment, the one
    that holds it afterwards); None: no holder. Raises
    ``TransactionCancelled`` ("payment": the status or the holder moved
    meanwhile; "user": the balance does not cover a negative ``delta``).
    """
    holder, new_holder = attempt
    user_id = int(payment.user_id)
    user_condition = _user_exists() if delta >= 0 else _user_exists() & (User.credits >= -delta)
    payment_condition = Payment.status == from_status
    if holder is not None:
        payment_condition &= Payment.refund_attempt == holder
    actions: list[Action] = [Payment.status.set(to_status.value), Payment.updated_at.set(iso_utc(now))]
    if new_holder is None:
        actions += [Payment.refund_attempt.remove(), Payment.refund_attempt_until.remove()]
    else:
        actions += [
            Payment.refund_attempt.set(new_holder),
            Payment.refund_attempt_until.set(int(now) + REFUND_ATTEMPT_SECONDS),
        ]
    tx = Transaction()
    tx.update("payment", Payment(charge_id=payment.charge_id), actions, condition=payment_condition)
    tx.update(
        "user", User(user_id=user_id), [User.credits.add(delta), User.updated_at.set(iso_utc(now))], user_condition
    )
    _put_ledger(tx, _ledger(user_id, delta, reason, now, payment_charge_id=payment.charge_id, note=note))
    tx.commit()
    payment.status = to_status.value
    payment.refund_attempt = new_holder
    payment.refund_attempt_until = None if new_holder is None else int(now) + REFUND_ATTEMPT_SECONDS


# --------------------------------------------------------------------------
# Growth: promo codes and referral bonuses (CONTRACT §6.6, §6.7)
# --------------------------------------------------------------------------


def _usable(promo: PromoCode | None, now: float) -> PromoCode:
    if promo is None or (promo.expires_at is not None and promo.expires_at <= iso_utc(now)):
        raise NotFound("No such promo code, or it has expired.")
    return promo


def redeem_promo_code(profile: Profile, code: str, settings: Settings, *, now: float | None = None) -> Redeemed:
    """Grant a code's credits to a user: one transaction, at most once per user, at most ``max_uses`` in all.

    The transaction counts a use on the code (condition: below ``max_uses``,
    not expired), creates the user's redemption record (condition: new),
    credits the user (condition: not banned) and writes the ledger entry.
    Racing redemptions of the last use, or of one user twice, fail their
    condition and change nothing.
    """
    now = _now(now)
    promo = _usable(get_promo_code(code), now)
    user = get_or_register(profile, settings, now=now)
    if user.banned:
        raise UserBanned()
    granted = int(promo.credits)
    tx = Transaction()
    tx.update(
        "code",
        PromoCode(pk=promo.pk),
        [PromoCode.uses.add(1)],
        condition=(
            PromoCode.pk.exists()
            & (PromoCode.uses < int(promo.max_uses))
            & (PromoCode.expires_at.does_not_exist() | (PromoCode.expires_at > iso_utc(now)))
        ),
    )
    redemption = PromoRedemption(
        pk=PromoRedemption.key(promo.code, profile.user_id),
        code=promo.code,
        user_id=profile.user_id,
        credits=granted,
        created_at=iso_utc(now),
    )
    tx.put("redemption", redemption, condition=PromoRedemption.pk.does_not_exist())
    tx.update(
        "user",
        User(user_id=profile.user_id),
        [User.credits.add(granted), User.updated_at.set(iso_utc(now))],
        condition=_user_exists() & (User.banned == False),  # noqa: E712 - a DynamoDB condition
    )
    _put_ledger(tx, _ledger(profile.user_id, granted, LedgerReason.PROMO, now, promo_code=promo.code))
    try:
        tx.commit()
    except TransactionCancelled as cancelled:
        if cancelled.failed("redemption"):
            raise AlreadyRedeemed() from None
        if cancelled.failed("code"):
            _usable(get_promo_code(code), now)  # expired meanwhile: 404
            raise PromoExhausted() from None
        if cancelled.failed("user"):
            raise UserBanned() from None
        raise
    balance = get_user(profile.user_id)
    return Redeemed(granted=granted, credits=int(balance.credits) if balance else granted)


def _referral_bonus(buyer: User, settings: Settings) -> tuple[int, int] | None:
    """``(inviter, credits)`` when this purchase may be the invited buyer's first, else None."""
    if buyer.invited_by is None or buyer.paid_at is not None or settings.referral_bonus_credits == 0:
        return None
    return int(buyer.invited_by), settings.referral_bonus_credits


def _add_referral_bonus(
    tx: Transaction, *, inviter: int, invitee: int, amount: int, charge_id: str, now: float
) -> None:
    """The inviter's side of an invited user's first purchase: balance, earnings and ledger entry."""
    tx.update(
        "inviter",
        User(user_id=inviter),
        [User.credits.add(amount), User.referral_earned.add(amount), User.updated_at.set(iso_utc(now))],
        condition=_user_exists(),
    )
    entry = _ledger(inviter, amount, LedgerReason.REFERRAL, now, referred_user_id=invitee, payment_charge_id=charge_id)
    tx.put("referral_ledger", entry, condition=LedgerEntry.entry_id.does_not_exist())
