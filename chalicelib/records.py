"""Writes that move no money and change no generation's status: flags and marks.

Each is one conditional update; the money moves and the status transitions
are in ``chalicelib.money``.
"""

from __future__ import annotations

import time

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


def mark_delivered(generation: Generation) -> None:
    """Remember that the picture reached the chat, so a redelivery does not send it again."""
    conditional_update(
        Generation(user_id=generation.user_id, generation_id=generation.generation_id),
        [Generation.delivered.set(True)],
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
