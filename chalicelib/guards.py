"""The guards table: short-lived uniqueness guards, each expiring by TTL.

This module is the only one that reads or writes the guards table outside
the money transactions (which put idempotency keys and take rate-limit
slots atomically with the charge, in ``chalicelib.money``):

* ``ProcessedUpdate``: a Telegram update is acted on once (the webhook);
* ``AlertWindow``: operator alerts of one kind are throttled per window;
* ``IdempotencyRecord``: read back when a key is reused; ``AdminCreditRecord``
  likewise, for an operator's credit change (put by ``money.change_credits``);
* picture edits: ``UploadRecord`` (an upload's owner), ``AlbumRecord`` (an
  album being collected), ``PendingPhotos`` (photos waiting for their
  instruction), ``ChatPicture`` (which result a chat message shows).
* ``AgainTap``, ``AgainResolved``: a double tap of an "again" button is one
  request, and a tap Telegram re-sends gets the answer it first got;
* ``BroadcastDelivery``: a broadcast reaches a user at most once (claimed
  before the send, its outcome recorded with the broadcast's counters);
* ``BroadcastClock``: every broadcast worker's sends booked on one clock.

A new feature that needs "at most once" or "at most N per window" adds its
guard here (its model in ``chalicelib.tables``, a ``kind#...`` key).
"""

from __future__ import annotations

import math
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from pynamodb.exceptions import DeleteError, DoesNotExist, PutError, UpdateError
from pynamodb.expressions.update import Action

from chalicelib.errors import BroadcastStopped, OutcomeUnknown, TransactionCancelled
from chalicelib.model import BroadcastOutcome, BroadcastStatus, UpdateClaim, UpdateClaimOutcome
from chalicelib.observability import logger
from chalicelib.tables import (
    AdminCreditRecord,
    AgainResolved,
    AgainTap,
    AlbumRecord,
    AlertWindow,
    Broadcast,
    BroadcastClock,
    BroadcastDelivery,
    ChatPicture,
    IdempotencyRecord,
    PendingPhotos,
    ProcessedUpdate,
    RateLimitWindow,
    UploadRecord,
    User,
)
from chalicelib.transactions import Transaction, conditional_update, error_code, put_new

# --------------------------------------------------------------------------
# Idempotency keys (written by money.start_generation and money.change_credits)
# --------------------------------------------------------------------------


def idempotency_record(user_id: int, idempotency_key: str, *, source: str) -> IdempotencyRecord | None:
    try:
        return IdempotencyRecord.get(
            IdempotencyRecord.key(user_id, idempotency_key, source=source), consistent_read=True
        )
    except DoesNotExist:
        return None


def admin_credit_record(user_id: int, idempotency_key: str) -> AdminCreditRecord | None:
    """The record of an operator's credit change made with this key (``money.change_credits``)."""
    try:
        return AdminCreditRecord.get(AdminCreditRecord.key(user_id, idempotency_key), consistent_read=True)
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
        # A token new for every attempt: if botocore's retry of an applied put (its response
        # lost) fails the condition against our own record, the read below recognises it.
        token = uuid.uuid4().hex
        record = ProcessedUpdate(pk=key, state=_PROCESSING, expires_at=now + claim_seconds, token=token)
        try:
            record.save(condition=ProcessedUpdate.pk.does_not_exist() | (ProcessedUpdate.expires_at < now))
            return UpdateClaimOutcome.CLAIMED, UpdateClaim(pk=key, expires_at=now + claim_seconds)
        except PutError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
        try:
            current = ProcessedUpdate.get(key, consistent_read=True)
        except DoesNotExist:
            continue
        if current.state == _PROCESSING and current.token == token:
            return UpdateClaimOutcome.CLAIMED, UpdateClaim(pk=key, expires_at=int(current.expires_at))
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
        if error_code(error) == "ConditionalCheckFailedException":
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
        if error_code(error) != "ConditionalCheckFailedException":
            logger.exception("telegram update claim could not be released", extra={"pk": claim.pk})
    except Exception:
        logger.exception("telegram update claim could not be released", extra={"pk": claim.pk})


# --------------------------------------------------------------------------
# Picture edits: uploads' owners (chalicelib.uploads)
# --------------------------------------------------------------------------


def take_upload_slot(user_id: int, *, limit: int, now: float) -> int | None:
    """Count one upload in the user's per-minute window; None if allowed, else seconds until the next window."""
    window_start = int(now // 60) * 60
    taken = conditional_update(
        RateLimitWindow(pk=RateLimitWindow.uploads_key(user_id, window_start)),
        [RateLimitWindow.used.add(1), RateLimitWindow.expires_at.set(window_start + 120)],
        RateLimitWindow.used.does_not_exist() | (RateLimitWindow.used < limit),
    )
    return None if taken else max(1, math.ceil(window_start + 60 - now))


def record_upload(user_id: int, upload_id: str, content_type: str, *, created_at: str, expires_at: int) -> None:
    """Who owns an upload and what it must be; a new id every time (a ULID), never overwritten."""
    record = UploadRecord(
        pk=UploadRecord.key(user_id, upload_id),
        user_id=user_id,
        content_type=content_type,
        created_at=created_at,
        expires_at=expires_at,
    )
    put_new(record, UploadRecord.pk.does_not_exist())


def live_uploads(user_id: int, upload_ids: Sequence[str], *, now: float) -> dict[str, str]:
    """upload id -> declared content type, for the ids that are this user's and not expired (one BatchGetItem)."""
    wanted = {UploadRecord.key(user_id, upload_id): upload_id for upload_id in upload_ids}
    found = UploadRecord.batch_get(list(wanted), consistent_read=True)
    return {
        wanted[str(record.pk)]: str(record.content_type)
        for record in found
        if record.pk in wanted and int(record.expires_at) >= int(now)
    }


# --------------------------------------------------------------------------
# Picture edits in the chat (chalicelib.photos)
# --------------------------------------------------------------------------
#
# An album, as its photos' updates arrive (any order, any instance):
#   photo k:  if no started_version: arriving += {k}                       (else: k is late, not downloaded)
#             if no started_version: photos = list_append(if_not_exists(photos, []), [k]); version += 1
#                                    -> check(version) in 2 s               (else: k is late, not appended)
#   check v:  version == v and quiet 2 s and no started_version -> started_version = v (once)
#             started_version == v (a retried check) -> order again (the idempotency key replays)
#             anything else -> nothing (a later photo's check decides)
# The start and each append are conditional writes of one item, so they are ordered: a photo
# appended before the start is in the album; after it, nothing changes the album any more.


def append_to_album(
    chat_id: int, media_group_id: str, *, user_id: int, entry: str, caption: str | None, now: float, keep_seconds: int
) -> int | None:
    """Add one photo (``"<message_id>:<upload_id>"``) atomically; the album's version after it.

    None, and nothing written, when the album has started: the photo is too late for it.
    """
    record = AlbumRecord(pk=AlbumRecord.key(chat_id, media_group_id))
    actions: list[Action] = [
        AlbumRecord.user_id.set(user_id),
        # Concurrent appends all land: DynamoDB applies each update to the item in turn.
        AlbumRecord.photos.set((AlbumRecord.photos | []).append([entry])),
        AlbumRecord.version.add(1),
        AlbumRecord.last_photo_at.set(now),
        AlbumRecord.expires_at.set(int(now) + keep_seconds),
        AlbumRecord.arriving.delete({int(entry.split(":", 1)[0])}),  # downloaded: no longer on its way
    ]
    if caption is not None:
        actions.append(AlbumRecord.caption.set(caption))
    # The update answers the new item: the version this photo made.
    appended = conditional_update(record, actions, AlbumRecord.started_version.does_not_exist())
    return int(record.version) if appended else None


def album_photo_arriving(
    chat_id: int, media_group_id: str, *, user_id: int, message_id: int, now: float, keep_seconds: int
) -> bool:
    """A photo of the album came and is being downloaded: its album waits for it (one UpdateItem).

    False, and nothing written, when the album has started already.
    """
    return conditional_update(
        AlbumRecord(pk=AlbumRecord.key(chat_id, media_group_id)),
        [
            AlbumRecord.user_id.set(user_id),
            AlbumRecord.arriving.add({message_id}),
            AlbumRecord.arrived_at.set(now),
            AlbumRecord.expires_at.set(int(now) + keep_seconds),
        ],
        AlbumRecord.started_version.does_not_exist(),
    )


def album_photo_dropped(chat_id: int, media_group_id: str, message_id: int) -> None:
    """A photo of the album will never be appended (refused): its album stops waiting for it."""
    AlbumRecord(pk=AlbumRecord.key(chat_id, media_group_id)).update(actions=[AlbumRecord.arriving.delete({message_id})])


def album(chat_id: int, media_group_id: str) -> AlbumRecord | None:
    try:
        return AlbumRecord.get(AlbumRecord.key(chat_id, media_group_id), consistent_read=True)
    except DoesNotExist:
        return None


def album_includes(chat_id: int, media_group_id: str, message_id: int) -> bool:
    """Whether the photo of ``message_id`` was appended to the album (a re-sent update's first delivery)."""
    record = album(chat_id, media_group_id)
    prefix = f"{message_id}:"
    return record is not None and any(str(entry).startswith(prefix) for entry in record.photos or [])


def start_album(chat_id: int, media_group_id: str, version: int) -> AlbumRecord | None:
    """Mark the album started by the check of ``version``, once; the whole album, or None if not this one.

    The check of a version is the only one that may start it with that version, so an album found started
    with it after a refused update is this check's own (botocore retried our applied update, whose
    answer was lost).
    """
    record = AlbumRecord(pk=AlbumRecord.key(chat_id, media_group_id))
    started = conditional_update(
        record,
        [AlbumRecord.started_version.set(version)],
        AlbumRecord.started_version.does_not_exist() & (AlbumRecord.version == version),
    )
    if started:
        return record
    current = album(chat_id, media_group_id)
    if current is not None and current.started_version is not None and int(current.started_version) == version:
        return current
    return None


def remember_pending(
    user_id: int, chat_id: int, message_id: int, upload_ids: Sequence[str], *, expires_at: int
) -> None:
    """The chat's latest photos without an instruction (a newer one replaces them)."""
    PendingPhotos(
        pk=PendingPhotos.key(chat_id),
        user_id=user_id,
        message_id=message_id,
        upload_ids=list(upload_ids),
        expires_at=expires_at,
    ).save()


def take_pending(chat_id: int, text_message_id: int, *, now: float) -> tuple[str, ...] | None:
    """The waiting photos, claimed by this later text; a re-sent text gets the same, any other text none."""
    record = PendingPhotos(pk=PendingPhotos.key(chat_id))
    taken = conditional_update(
        record,
        [PendingPhotos.used_by.set(text_message_id)],
        PendingPhotos.pk.exists()
        & (PendingPhotos.expires_at >= int(now))
        & (PendingPhotos.used_by.does_not_exist() | (PendingPhotos.used_by == text_message_id))
        & (PendingPhotos.message_id < text_message_id),
    )
    return tuple(str(upload_id) for upload_id in record.upload_ids or []) if taken else None


def release_pending(chat_id: int, text_message_id: int) -> None:
    """The text refused (nothing charged): the photos wait for the chat's next text again."""
    conditional_update(
        PendingPhotos(pk=PendingPhotos.key(chat_id)),
        [PendingPhotos.used_by.remove()],
        PendingPhotos.used_by == text_message_id,
    )


def remember_picture(chat_id: int, message_id: int, *, user_id: int, s3_key: str, expires_at: int) -> None:
    """A delivered result: a reply to this message edits the stored picture."""
    ChatPicture(pk=ChatPicture.key(chat_id, message_id), user_id=user_id, s3_key=s3_key, expires_at=expires_at).save()


def picture_shown(chat_id: int, message_id: int) -> str | None:
    """The S3 key of the result a chat message shows, if the bot delivered it."""
    try:
        return str(ChatPicture.get(ChatPicture.key(chat_id, message_id), consistent_read=True).s3_key)
    except DoesNotExist:
        return None


# "Again" taps: one AgainTap per result message, one AgainResolved per tap
# --------------------------------------------------------------------------


# Telegram keeps re-sending an update it could not deliver for up to 24 hours.
AGAIN_RESOLVED_TTL_SECONDS = 48 * 3600


def again_tap(chat_id: int, message_id: int, query_id: str, *, window_seconds: int, now: float) -> str:
    """The callback query whose request this tap repeats: its own, or (a double tap) the query that
    tapped the same message less than ``window_seconds`` ago. The same query id, re-sent by Telegram
    at any time, always gets the same answer, so a redelivered tap never becomes a new request, and
    it never reopens the window (a real tap soon after a re-send is a new request)."""
    try:
        return str(AgainResolved.get(AgainResolved.key(query_id), consistent_read=True).first_query_id)
    except DoesNotExist:
        pass
    key = AgainTap.key(chat_id, message_id)
    for _ in range(3):  # the record can expire between our put and our read
        record = AgainTap(pk=key, query_id=query_id, expires_at=int(now) + window_seconds)
        try:
            record.save(
                condition=AgainTap.pk.does_not_exist()
                | (AgainTap.expires_at < int(now))
                | (AgainTap.query_id == query_id)
            )
            return _resolved(query_id, query_id, now=now)
        except PutError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
        try:
            first = str(AgainTap.get(key, consistent_read=True).query_id)
        except DoesNotExist:
            continue
        return _resolved(query_id, first, now=now)
    return query_id


def _resolved(query_id: str, first_query_id: str, *, now: float) -> str:
    """Record that ``query_id`` is ``first_query_id``'s request (before anything is charged for it);
    the answer recorded first wins."""
    resolved = AgainResolved(
        pk=AgainResolved.key(query_id),
        first_query_id=first_query_id,
        expires_at=int(now) + AGAIN_RESOLVED_TTL_SECONDS,
    )
    try:
        resolved.save(condition=AgainResolved.pk.does_not_exist())
    except PutError as error:
        if error_code(error) != "ConditionalCheckFailedException":
            raise
        return str(AgainResolved.get(resolved.pk, consistent_read=True).first_query_id)
    return first_query_id


# --------------------------------------------------------------------------
# Broadcasts: one BroadcastDelivery per broadcast and user, one send clock
# --------------------------------------------------------------------------

DELIVERY_TTL_SECONDS = 30 * 24 * 3600
CLOCK_TTL_SECONDS = 24 * 3600
_SENDING = "sending"


def _delivery(broadcast_id: str, user_id: int, token: str) -> BroadcastDelivery:
    return BroadcastDelivery(
        pk=BroadcastDelivery.key(broadcast_id, user_id),
        state=_SENDING,
        broadcast_id=broadcast_id,
        user_id=user_id,
        token=token,
        expires_at=int(time.time()) + DELIVERY_TTL_SECONDS,
    )


def _still_sending(broadcast_id: str) -> tuple[Any, ...]:
    return (Broadcast, Broadcast.key(broadcast_id), None, Broadcast.status == BroadcastStatus.SENDING)


def claim_broadcast_deliveries(broadcast_id: str, user_ids: list[int]) -> set[int]:
    """Claim users for a broadcast before sending: the ones this call claimed (others had been, by an
    earlier delivery of the page). One transaction, on condition that the broadcast is still sending;
    raises ``BroadcastStopped`` once it is not (cancelled).

    Every claim carries this call's token: when a retry of our own applied transaction fails against
    the claims it wrote (its answer was lost and the engine did not recognise the retry: moto ignores
    ``ClientRequestToken``), the token read back says they are ours, so those users are not dropped.
    """
    token = uuid.uuid4().hex
    tx = Transaction()
    tx.check("broadcast", *_still_sending(broadcast_id))
    for user_id in user_ids:
        tx.put(f"delivery:{user_id}", _delivery(broadcast_id, user_id, token), BroadcastDelivery.pk.does_not_exist())
    try:
        tx.commit()
    except OutcomeUnknown:
        # Applied or not: the claims found with our token are ours (nobody else holds it), the rest
        # are claimed one by one, as after a cancellation. A failing read raises: the page comes again.
        ours = _claimed_by(broadcast_id, user_ids, token)
        return ours | {
            user_id for user_id in user_ids if user_id not in ours and _claim_one(broadcast_id, user_id, token)
        }
    except TransactionCancelled as cancelled:
        if cancelled.failed("broadcast"):
            raise BroadcastStopped() from None
        taken = [user_id for user_id in user_ids if cancelled.failed(f"delivery:{user_id}")]
        if not taken:
            raise
        # A redelivered page: some are claimed already (or by us). Claim the others one by one.
        ours = _claimed_by(broadcast_id, taken, token)
        return ours | {
            user_id for user_id in user_ids if user_id not in taken and _claim_one(broadcast_id, user_id, token)
        }
    return set(user_ids)


def _claim_one(broadcast_id: str, user_id: int, token: str, *, tries: int = 2) -> bool:
    tx = Transaction()
    tx.check("broadcast", *_still_sending(broadcast_id))
    tx.put("delivery", _delivery(broadcast_id, user_id, token), BroadcastDelivery.pk.does_not_exist())
    try:
        tx.commit()
    except OutcomeUnknown:
        # Applied or not: ours if it holds our token; else not written (or another's): claim once more.
        if _claimed_by(broadcast_id, [user_id], token):
            return True
        if tries <= 1:
            raise
        return _claim_one(broadcast_id, user_id, token, tries=tries - 1)
    except TransactionCancelled as cancelled:
        if cancelled.failed("broadcast"):
            raise BroadcastStopped() from None
        if cancelled.failed("delivery"):
            return bool(_claimed_by(broadcast_id, [user_id], token))
        raise
    return True


def _claimed_by(broadcast_id: str, user_ids: list[int], token: str) -> set[int]:
    """Which of these users' claims this token wrote and nobody has sent yet (consistent reads)."""
    keys = [BroadcastDelivery.key(broadcast_id, user_id) for user_id in user_ids]
    return {
        int(delivery.user_id)
        for delivery in BroadcastDelivery.batch_get(keys, consistent_read=True)
        if delivery.token == token and delivery.state == _SENDING
    }


def record_broadcast_deliveries(broadcast_id: str, results: Mapping[int, BroadcastOutcome]) -> None:
    """The deliveries' outcomes, the broadcast's counters and the users found blocked: one transaction."""
    counters = {
        BroadcastOutcome.SENT: Broadcast.sent,
        BroadcastOutcome.FAILED: Broadcast.failed,
        BroadcastOutcome.BLOCKED: Broadcast.blocked,
    }
    tx = Transaction()
    for user_id, result in results.items():
        tx.update(
            f"delivery:{user_id}",
            BroadcastDelivery(pk=BroadcastDelivery.key(broadcast_id, user_id)),
            [BroadcastDelivery.state.set(result.value)],
            condition=BroadcastDelivery.state == _SENDING,
        )
        if result == BroadcastOutcome.BLOCKED:
            tx.update(
                f"user:{user_id}", User(user_id=user_id), [User.blocked.set(True)], condition=User.user_id.exists()
            )
    totals = Counter(results.values())
    tx.update(
        "broadcast",
        Broadcast(pk=Broadcast.key(broadcast_id)),
        [counters[outcome].add(number) for outcome, number in totals.items()],
        condition=Broadcast.pk.exists(),
    )
    try:
        tx.commit()
    except (TransactionCancelled, OutcomeUnknown) as error:
        if isinstance(error, TransactionCancelled) and not any(
            error.failed(f"delivery:{user_id}") for user_id in results
        ):
            raise
        # Applied already, by this very call (a retry whose first answer was lost: moto applies the
        # retry again and it fails against our own outcomes): the counters went in with them.
        if _recorded_states(broadcast_id, list(results)) != {
            user_id: result.value for user_id, result in results.items()
        }:
            raise


def _recorded_states(broadcast_id: str, user_ids: list[int]) -> dict[int, str]:
    keys = [BroadcastDelivery.key(broadcast_id, user_id) for user_id in user_ids]
    return {
        int(delivery.user_id): str(delivery.state)
        for delivery in BroadcastDelivery.batch_get(keys, consistent_read=True)
    }


def book_send_slots(count: int, *, unstarted: int, restart_at: int, now: float) -> int:
    """The first of ``count`` consecutive slots of the shared send clock.

    Usually the clock is ahead of now (its next slot ``>= unstarted``): take
    its next slots. Idle (or never used), it restarts at ``restart_at``.
    """
    while True:
        item = BroadcastClock(pk=BroadcastClock.KEY)
        if conditional_update(item, [BroadcastClock.next_slot.add(count)], BroadcastClock.next_slot >= unstarted):
            return int(item.next_slot) - count
        restart = [
            BroadcastClock.next_slot.set(restart_at + count),
            BroadcastClock.expires_at.set(int(now) + CLOCK_TTL_SECONDS),
        ]
        idle = BroadcastClock.next_slot.does_not_exist() | (BroadcastClock.next_slot < unstarted)
        if conditional_update(item, restart, idle):  # type: ignore[arg-type]
            return restart_at


def push_send_clock(target_slot: int, *, now: float) -> None:
    """No slot before ``target_slot`` is booked from now on (Telegram said to wait)."""
    conditional_update(
        BroadcastClock(pk=BroadcastClock.KEY),
        [BroadcastClock.next_slot.set(target_slot), BroadcastClock.expires_at.set(int(now) + CLOCK_TTL_SECONDS)],
        BroadcastClock.next_slot.does_not_exist() | (BroadcastClock.next_slot < target_slot),
    )
