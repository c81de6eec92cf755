"""The guards table: short-lived uniqueness guards, each expiring by TTL.

This module is the only one that reads or writes the guards table outside
the money transactions (which put idempotency keys and take rate-limit
slots atomically with the charge, in ``chalicelib.money``):

* ``ProcessedUpdate``: a Telegram update is acted on once (the webhook);
* ``AlertWindow``: operator alerts of one kind are throttled per window;
* ``IdempotencyRecord``: read back when a key is reused.

A new feature that needs "at most once" or "at most N per window" adds its
guard here (its model in ``chalicelib.tables``, a ``kind#...`` key).
"""

from __future__ import annotations

import time
from typing import Any

from pynamodb.exceptions import DeleteError, DoesNotExist, PutError, UpdateError

from chalicelib.model import UpdateClaim, UpdateClaimOutcome
from chalicelib.observability import logger
from chalicelib.tables import AlertWindow, IdempotencyRecord, ProcessedUpdate
from chalicelib.transactions import conditional_update

# --------------------------------------------------------------------------
# Idempotency keys (written by money.start_generation)
# --------------------------------------------------------------------------


def idempotency_record(user_id: int, idempotency_key: str, *, source: str) -> IdempotencyRecord | None:
    try:
        return IdempotencyRecord.get(
            IdempotencyRecord.key(user_id, idempotency_key, source=source), consistent_read=True
        )
    except DoesNotExist:
        return None


# --------------------------------------------------------------------------
# Operator alerts: at most ``limit`` per kind per window
# --------------------------------------------------------------------------


def count_alert(kind: str, *, window_seconds: int, limit: int, now: float) -> bool:
    """Take one of this window's ``limit`` alerts of ``kind``; False when they are used up."""
    window_start = int(now // window_seconds) * window_seconds
    return conditional_update(
        AlertWindow(pk=AlertWindow.key(kind, window_start)),
        [AlertWindow.sent.add(1), AlertWindow.expires_at.set(window_start + 2 * window_seconds)],
        AlertWindow.sent.does_not_exist() | (AlertWindow.sent < limit),
    )


# --------------------------------------------------------------------------
# Telegram updates: one ProcessedUpdate item per update_id
# --------------------------------------------------------------------------

_PROCESSING, _DONE = "processing", "done"


def claim_update(update_id: int, *, claim_seconds: int) -> tuple[UpdateClaimOutcome, UpdateClaim | None]:
    """Claim an update as ``processing`` for ``claim_seconds``, or say who has it."""
    key = ProcessedUpdate.key(update_id)
    for _ in range(3):  # the record can vanish between our put and our read (released, expired)
        now = int(time.time())
        record = ProcessedUpdate(pk=key, state=_PROCESSING, expires_at=now + claim_seconds)
        try:
            record.save(condition=ProcessedUpdate.pk.does_not_exist() | (ProcessedUpdate.expires_at < now))
            return UpdateClaimOutcome.CLAIMED, UpdateClaim(pk=key, expires_at=now + claim_seconds)
        except PutError as error:
            if error.cause_response_code != "ConditionalCheckFailedException":
                raise
        try:
            current = ProcessedUpdate.get(key, consistent_read=True)
        except DoesNotExist:
            continue
        return (UpdateClaimOutcome.DONE if current.state == _DONE else UpdateClaimOutcome.BUSY), None
    return UpdateClaimOutcome.BUSY, None


def _still_ours(claim: UpdateClaim) -> Any:
    return (ProcessedUpdate.state == _PROCESSING) & (ProcessedUpdate.expires_at == claim.expires_at)


def mark_update_done(claim: UpdateClaim, *, keep_seconds: int) -> None:
    """processing -> done, kept ``keep_seconds``.

    A failure here is logged, not raised: the bot has acted, and a 5xx would
    make Telegram re-send an update whose claim then expires and lets it act twice.
    """
    try:
        ProcessedUpdate(pk=claim.pk).update(
            actions=[ProcessedUpdate.state.set(_DONE), ProcessedUpdate.expires_at.set(int(time.time()) + keep_seconds)],
            condition=_still_ours(claim),
        )
    except UpdateError as error:
        if error.cause_response_code == "ConditionalCheckFailedException":
            logger.warning("telegram update claim was taken over before it was marked done", extra={"pk": claim.pk})
        else:
            logger.exception("telegram update could not be marked done", extra={"pk": claim.pk})
    except Exception:
        logger.exception("telegram update could not be marked done", extra={"pk": claim.pk})


def release_update(claim: UpdateClaim) -> None:
    """Delete our claim after a failure so the re-sent update can be handled; never masks the failure."""
    try:
        ProcessedUpdate(pk=claim.pk).delete(condition=_still_ours(claim))
    except DeleteError as error:
        if error.cause_response_code != "ConditionalCheckFailedException":
            logger.exception("telegram update claim could not be released", extra={"pk": claim.pk})
    except Exception:
        logger.exception("telegram update claim could not be released", extra={"pk": claim.pk})
