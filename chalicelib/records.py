"""Writes that move no money and change no generation's status: flags and marks.

Each is one conditional update; the money moves and the status transitions
are in ``chalicelib.money``.
"""

from __future__ import annotations

import time
import uuid

from chalicelib.errors import NotFound
from chalicelib.ids import iso_utc
from chalicelib.model import GenerationStatus
from chalicelib.tables import Generation, User
from chalicelib.transactions import conditional_update


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
    if conditional_update(
        Generation(user_id=generation.user_id, generation_id=generation.generation_id),
        [Generation.delivery_token.set(token), Generation.delivery_claimed_until.set(int(now) + lease_seconds)],
        (Generation.status == GenerationStatus.COMPLETED) & undelivered & free,
    ):
        generation.delivery_token, generation.delivery_claimed_until = token, int(now) + lease_seconds
        return True
    try:
        current = Generation.get(generation.user_id, generation.generation_id, consistent_read=True)
    except Generation.DoesNotExist:
        return False
    generation.delivered = bool(current.delivered)
    generation.delivery_token = current.delivery_token
    generation.delivery_claimed_until = current.delivery_claimed_until
    return current.delivery_token == token and not current.delivered


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
