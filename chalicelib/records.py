"""Writes that move no money and change no generation's status: flags and marks.

Each is one conditional update; the money moves and the status transitions
are in ``chalicelib.money``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError
from pynamodb.expressions.update import Action

from chalicelib.errors import Conflict, NotFound
from chalicelib.ids import iso_utc
from chalicelib.model import BroadcastStatus, GenerationStatus
from chalicelib.tables import Broadcast, Generation, PromoCode, User
from chalicelib.transactions import conditional_update, error_code, put_new


def set_banned(user_id: int, banned: bool, *, now: float | None = None) -> User:
    """Ban or unban a user (404 if there is none); a banned user cannot start generations or buy."""
    now = time.time() if now is None else now
    user = User(user_id=user_id)
    # The update returns the whole item: no second read for the answer.
    if not conditional_update(
        user, [User.banned.set(banned), User.updated_at.set(iso_utc(now))], User.user_id.exists()
    ):
        raise NotFound("No such user.")
    return user


def save_settings(
    user_id: int,
    *,
    language: str | None = None,
    model: str | None = None,
    aspect_ratio: str | None = None,
    now: float | None = None,
) -> User:
    """Store the values given (None keeps one) on an existing user; returns the whole user (404 if none)."""
    now = time.time() if now is None else now
    actions: list[Action] = [User.updated_at.set(iso_utc(now))]
    if language is not None:
        actions.append(User.language.set(language))
    if model is not None:
        actions.append(User.model.set(model))
    if aspect_ratio is not None:
        actions.append(User.aspect_ratio.set(aspect_ratio))
    user = User(user_id=user_id)
    if not conditional_update(user, actions, User.user_id.exists()):
        raise NotFound("No such user.")
    return user


def remember_language_code(user: User, language_code: str | None) -> None:
    """Keep Telegram's ``language_code`` current (a user may switch Telegram's language); no write if unchanged."""
    if not language_code or language_code == user.language_code:
        return
    conditional_update(User(user_id=user.user_id), [User.language_code.set(language_code)], User.user_id.exists())
    user.language_code = language_code


def claim_delivery(generation: Generation, *, lease_seconds: int, now: float | None = None) -> bool:
    """Take the delivery lease of a completed, undelivered generation: True if this caller sends it.

    One conditional update, so of two workers between completion and
    ``mark_delivered`` only one sends the pictures. A lease left by a sender
    that died runs out after ``lease_seconds``. The token is new for every
    call: if the update was applied but its response lost (botocore's retry
    then fails the condition), the read-back recognises our own lease.
    False: delivered already (``generation.delivered``) or another sender's
    lease is live (``generation.delivery_claimed_until``).
    """
    now = time.time() if now is None else now
    token = uuid.uuid4().hex
    undelivered = Generation.delivered.does_not_exist() | (Generation.delivered == False)  # noqa: E712 - a condition
    free = Generation.delivery_claimed_until.does_not_exist() | (Generation.delivery_claimed_until < int(now))
    claimed = Generation(user_id=generation.user_id, generation_id=generation.generation_id)
    if conditional_update(
        claimed,
        [Generation.delivery_token.set(token), Generation.delivery_claimed_until.set(int(now) + lease_seconds)],
        (Generation.status == GenerationStatus.COMPLETED) & undelivered & free,
    ):
        # The update answers the whole item: the progress of an earlier sender, read under our lease.
        generation.delivery_token, generation.delivery_claimed_until = token, int(now) + lease_seconds
        generation.delivered_pictures = claimed.delivered_pictures
        return True
    try:
        current = Generation.get(generation.user_id, generation.generation_id, consistent_read=True)
    except Generation.DoesNotExist:
        return False
    generation.delivered = bool(current.delivered)
    generation.delivery_token = current.delivery_token
    generation.delivery_claimed_until = current.delivery_claimed_until
    generation.delivered_pictures = current.delivered_pictures
    return current.delivery_token == token and not current.delivered


def record_picture_delivered(generation: Generation, index: int) -> bool:
    """Remember that Telegram accepted picture ``index``, so a retried delivery does not send it again.

    Written by the holder of the delivery lease after each picture, before the
    next one is sent: a delivery cut short (a Telegram 5xx or network error on
    a later picture, a crash) is retried with only the pictures not yet
    accepted. Adding to a set is idempotent, so botocore's retry of a write
    whose answer was lost succeeds as well. A crash between Telegram's accept
    and this write sends that one picture again: at least once per picture.
    False: the lease is no longer ours (it ran out and another sender took
    it), so this sender must stop; nothing was written.
    """
    if not conditional_update(
        Generation(user_id=generation.user_id, generation_id=generation.generation_id),
        [Generation.delivered_pictures.add({index})],
        (Generation.status == GenerationStatus.COMPLETED) & (Generation.delivery_token == generation.delivery_token),
    ):
        return False
    generation.delivered_pictures = {*(generation.delivered_pictures or ()), index}
    return True


def release_delivery(generation: Generation) -> bool:
    """Give the delivery lease back after a deferred delivery, so the retry may send at once."""
    if not generation.delivery_token:
        return False
    return conditional_update(
        Generation(user_id=generation.user_id, generation_id=generation.generation_id),
        [Generation.delivery_token.remove(), Generation.delivery_claimed_until.remove()],
        Generation.delivery_token == generation.delivery_token,
    )


def mark_delivered(generation: Generation) -> None:
    """Remember that the picture reached the chat, so a redelivery does not send it again."""
    conditional_update(
        Generation(user_id=generation.user_id, generation_id=generation.generation_id),
        [Generation.delivered.set(True), Generation.delivery_claimed_until.remove()],
        Generation.status == GenerationStatus.COMPLETED,
    )
    generation.delivered = True


def mark_requeued(generation: Generation, *, every_seconds: int, now: float | None = None) -> bool:
    """Record a re-queue of an abandoned generation, at most once per ``every_seconds``.

    The sweeper runs every minute; without this a queue backlog would get a
    duplicate message per pending generation per sweep. No money moves.
    """
    now = time.time() if now is None else now
    abandoned = (Generation.status == GenerationStatus.PENDING) | (
        (Generation.status == GenerationStatus.PROCESSING) & (Generation.lease_until < int(now))
    )
    not_lately = Generation.requeued_at.does_not_exist() | (Generation.requeued_at <= int(now) - every_seconds)
    return conditional_update(
        Generation(user_id=generation.user_id, generation_id=generation.generation_id),
        [Generation.requeued_at.set(int(now))],
        abandoned & not_lately,
    )


# --------------------------------------------------------------------------
# Growth: promo codes, broadcasts, users' activity
# --------------------------------------------------------------------------


def create_promo_code(
    code: str,
    *,
    credits: int,
    max_uses: int,
    expires_at: str | None,
    created_by: str,
    now: float | None = None,
) -> PromoCode:
    """A new code (stored upper case: codes are case-insensitive); 409 if it exists. Redeeming it is money."""
    now = time.time() if now is None else now
    promo = PromoCode(
        pk=PromoCode.key(code),
        code=code.upper(),
        credits=credits,
        max_uses=max_uses,
        uses=0,
        expires_at=expires_at,
        created_at=iso_utc(now),
        created_by=created_by,
    )
    try:
        promo.save(condition=PromoCode.pk.does_not_exist())
    except PutError as error:
        if error_code(error) != "ConditionalCheckFailedException":
            raise
        if _same_promo_code(promo):
            return promo  # botocore retried our applied put, whose answer was lost: it is ours
        raise Conflict(f"The promo code {code.upper()} already exists.") from None
    return promo


def _same_promo_code(promo: PromoCode) -> bool:
    """Whether the stored code is this very one: same terms, made at the same moment by the same operator."""
    try:
        stored = PromoCode.get(promo.pk, consistent_read=True)
    except DoesNotExist:
        return False
    fields = ("credits", "max_uses", "expires_at", "created_at", "created_by")
    return all(getattr(stored, name) == getattr(promo, name) for name in fields)


def create_broadcast(broadcast: Broadcast) -> None:
    """Store a new broadcast (its id is a fresh ULID)."""
    put_new(broadcast, Broadcast.pk.does_not_exist())


def set_broadcast_status(
    broadcast_id: str, status: BroadcastStatus, *, only_from: tuple[BroadcastStatus, ...], now: float | None = None
) -> Broadcast | None:
    """``only_from`` -> ``status``; the broadcast as it is now, or None when it was in another status."""
    now = time.time() if now is None else now
    item = Broadcast(pk=Broadcast.key(broadcast_id))
    actions: list[Action] = [Broadcast.status.set(status.value), Broadcast.updated_at.set(iso_utc(now))]
    condition = Broadcast.pk.exists() & Broadcast.status.is_in(*(each.value for each in only_from))
    return item if conditional_update(item, actions, condition) else None


def start_broadcast(broadcast_id: str, *, total: int, now: float) -> Broadcast | None:
    """queued -> sending, with the audience's size as ``total``; None when it was not queued."""
    item = Broadcast(pk=Broadcast.key(broadcast_id))
    actions: list[Action] = [
        Broadcast.status.set(BroadcastStatus.SENDING.value),
        Broadcast.total.set(total),
        Broadcast.updated_at.set(iso_utc(now)),
    ]
    return item if conditional_update(item, actions, Broadcast.status == BroadcastStatus.QUEUED) else None


def advance_broadcast(
    broadcast_id: str,
    number: int,
    next_cursor: Mapping[str, Any] | None,
    *,
    final_total: int | None,
    token: str,
    now: float,
) -> bool:
    """Page ``number`` is done (once: a conditional update); after the last page the broadcast is ``done``.

    True when this run (``token``) advanced it, also when botocore's retry of our applied update failed
    its condition: read back, the broadcast names our token at the next page. False: another delivery did.
    """
    actions: list[Action] = [
        Broadcast.page.set(number + 1),
        Broadcast.advanced_by.set(token),
        Broadcast.updated_at.set(iso_utc(now)),
    ]
    if next_cursor:
        actions.append(Broadcast.cursor.set(json.dumps(next_cursor)))
    else:
        actions += [Broadcast.cursor.remove(), Broadcast.status.set(BroadcastStatus.DONE.value)]
        if final_total is not None:
            actions.append(Broadcast.total.set(final_total))
    condition = (Broadcast.page == number) & (Broadcast.status == BroadcastStatus.SENDING)
    if conditional_update(Broadcast(pk=Broadcast.key(broadcast_id)), actions, condition):
        return True
    try:
        current = Broadcast.get(Broadcast.key(broadcast_id), consistent_read=True)
    except DoesNotExist:
        return False
    return int(current.page) == number + 1 and current.advanced_by == token


def note_activity(user_id: int, *, now: float | None = None) -> None:
    """The user wrote to the bot: clear ``blocked`` and remember the day (at most one write a day)."""
    now = time.time() if now is None else now
    today = iso_utc(now - now % 86400)
    condition = User.user_id.exists() & (
        User.blocked.exists() | User.last_active_at.does_not_exist() | (User.last_active_at < today)
    )
    conditional_update(User(user_id=user_id), [User.last_active_at.set(iso_utc(now)), User.blocked.remove()], condition)
