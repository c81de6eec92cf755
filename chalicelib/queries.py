"""Every plain read: a user, a generation, a payment, a history page, the sweeper's lists, the operator's stats.

Nothing here writes; money moves in ``chalicelib.money``, other writes are in
``chalicelib.records`` and ``chalicelib.guards``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Iterator
from typing import Any

from pynamodb.exceptions import DoesNotExist

from chalicelib.config import Settings
from chalicelib.errors import InvalidRequest
from chalicelib.ids import iso_utc
from chalicelib.model import GenerationStatus, LedgerReason
from chalicelib.tables import SWEEP_SHARDS, Broadcast, Generation, LedgerEntry, Payment, PromoCode, User

# A ULID in Crockford base32, as ``chalicelib.ids.new_id`` writes it.
_GENERATION_ID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")
_MAX_CURSOR_CHARS = 200


def encode_cursor(generation_id: str) -> str:
    """Opaque to clients: base64url of the last generation id shown."""
    raw = json.dumps({"g": generation_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        if len(cursor) > _MAX_CURSOR_CHARS:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)["g"]
        if not isinstance(value, str) or not _GENERATION_ID.fullmatch(value):
            raise ValueError("bad id")
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError):
        raise InvalidRequest("cursor is not valid; use the next_cursor of a previous page.") from None
    return value


def is_generation_id(value: str) -> bool:
    return _GENERATION_ID.fullmatch(value) is not None


def history_page(user_id: int, *, limit: int, cursor: str | None) -> tuple[list[Generation], str | None]:
    """The user's generations, newest first, ``limit`` at a time (one Query).

    One item more than the page is read: DynamoDB returns a LastEvaluatedKey
    whenever it stops at ``Limit``, even when nothing follows, so only that
    extra item tells whether there is a next page (and no client is sent to
    an empty one).
    """
    start_key = None
    if cursor is not None:
        start_key = {"user_id": {"N": str(user_id)}, "generation_id": {"S": decode_cursor(cursor)}}
    results = Generation.query(user_id, scan_index_forward=False, limit=limit + 1, last_evaluated_key=start_key)
    items = list(results)
    if len(items) <= limit:
        return items, None
    page = items[:limit]
    return page, encode_cursor(page[-1].generation_id)


def encode_ledger_cursor(entry_id: str) -> str:
    raw = json.dumps({"e": entry_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_ledger_cursor(cursor: str) -> str:
    try:
        if len(cursor) > _MAX_CURSOR_CHARS:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)["e"]
        if not isinstance(value, str) or not _GENERATION_ID.fullmatch(value):
            raise ValueError("bad id")
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError):
        raise InvalidRequest("cursor is not valid; use the next_cursor of a previous page.") from None
    return value


def ledger_page(user_id: int, *, limit: int, cursor: str | None) -> tuple[list[LedgerEntry], str | None]:
    """The user's ledger entries, newest first, ``limit`` at a time (one Query; see ``history_page``)."""
    start_key = None
    if cursor is not None:
        start_key = {"user_id": {"N": str(user_id)}, "entry_id": {"S": decode_ledger_cursor(cursor)}}
    items = list(LedgerEntry.query(user_id, scan_index_forward=False, limit=limit + 1, last_evaluated_key=start_key))
    if len(items) <= limit:
        return items, None
    page = items[:limit]
    return page, encode_ledger_cursor(page[-1].entry_id)


def latest_purchases(user_id: int, limit: int = 5) -> list[Payment]:
    """The user's latest Stars payments, newest first: the ledger's purchase entries, then each payment.

    Payments are keyed by charge id alone, so the ledger (keyed by user) finds
    them; a user's ledger is short enough to read through (``/paysupport`` only).
    """
    charge_ids: list[str] = []
    for entry in LedgerEntry.query(user_id, scan_index_forward=False, page_size=100):
        if entry.reason == LedgerReason.PURCHASE and entry.payment_charge_id:
            charge_ids.append(str(entry.payment_charge_id))
            if len(charge_ids) == limit:
                break
    payments = (get_payment(charge_id) for charge_id in charge_ids)
    return [payment for payment in payments if payment is not None]


def get_user(user_id: int) -> User | None:
    try:
        return User.get(user_id, consistent_read=True)
    except DoesNotExist:
        return None


def get_generation(user_id: int, generation_id: str) -> Generation | None:
    try:
        return Generation.get(user_id, generation_id, consistent_read=True)
    except DoesNotExist:
        return None


def get_payment(charge_id: str) -> Payment | None:
    try:
        return Payment.get(charge_id, consistent_read=True)
    except DoesNotExist:
        return None


def latest_ledger(user_id: int, limit: int = 20) -> list[LedgerEntry]:
    return list(LedgerEntry.query(user_id, scan_index_forward=False, limit=limit))


def stats() -> dict[str, Any]:
    """Counts for the operator. Scans: an admin-only, occasional call."""
    users = sum(1 for _ in User.scan(attributes_to_get=["user_id"]))
    by_status = {status.value: 0 for status in GenerationStatus}
    for generation in Generation.scan(attributes_to_get=["status"]):
        by_status[generation.status] = by_status.get(generation.status, 0) + 1
    totals = {
        "granted": 0,
        "removed": 0,
        "spent": 0,
        "refunded": 0,
        "purchased": 0,
        "welcome": 0,
        "promo": 0,
        "referral": 0,
    }
    for entry in LedgerEntry.scan(attributes_to_get=["delta", "reason"]):
        delta = int(entry.delta)
        if entry.reason == LedgerReason.GENERATION:
            totals["spent"] += -delta
        elif entry.reason == LedgerReason.REFUND:
            totals["refunded"] += delta
        elif entry.reason == LedgerReason.ADMIN and delta > 0:
            totals["granted"] += delta
        elif entry.reason == LedgerReason.ADMIN:
            totals["removed"] += -delta
        elif entry.reason == LedgerReason.WELCOME:
            totals["welcome"] += delta
        elif entry.reason in (LedgerReason.PURCHASE, LedgerReason.PURCHASE_REFUND):
            totals["purchased"] += delta
        elif entry.reason in (LedgerReason.PROMO, LedgerReason.REFERRAL):
            totals[entry.reason] += delta
    return {"users": users, "generations": by_status, "credits": totals}


def unfinished_generations(*, timeout_before: float) -> Iterator[Generation]:
    """Unfinished generations whose ``timeout_at`` is before the given time (sparse GSI)."""
    for shard in range(SWEEP_SHARDS):
        yield from Generation.unfinished.query(str(shard), Generation.timeout_at < int(timeout_before))


def stale_pending(settings: Settings, *, older_than_seconds: int, now: float | None = None) -> list[Generation]:
    """Unfinished generations that look abandoned but have not timed out yet.

    Pending ones created more than ``older_than_seconds`` ago may have lost
    their queue message (a crash between the charge and the enqueue);
    processing ones whose lease ran out lost their worker (a Lambda timeout
    or crash) and would otherwise wait out the queue's long visibility
    timeout. The sweeper sends both again; the claim makes duplicates harmless.
    """
    now = time.time() if now is None else now
    horizon = now + settings.generation_timeout_seconds - older_than_seconds
    return [
        generation
        for generation in unfinished_generations(timeout_before=horizon)
        if generation.timeout_at > now and _abandoned(generation, now)
    ]


def _abandoned(generation: Generation, now: float) -> bool:
    if generation.status == GenerationStatus.PENDING:
        return True
    return generation.status == GenerationStatus.PROCESSING and (generation.lease_until or 0) < int(now)


# --------------------------------------------------------------------------
# Growth: promo codes, broadcasts and their audiences
# --------------------------------------------------------------------------

ACTIVE_DAYS = 30  # the ``active_30d`` audience


def get_promo_code(code: str) -> PromoCode | None:
    try:
        return PromoCode.get(PromoCode.key(code), consistent_read=True)
    except DoesNotExist:
        return None


def get_broadcast(broadcast_id: str) -> Broadcast | None:
    try:
        return Broadcast.get(Broadcast.key(broadcast_id), consistent_read=True)
    except DoesNotExist:
        return None


def _audience_filter(audience: str, now: float) -> Any:
    """Who a broadcast reaches: never a user who blocked the bot; ``paying``: has bought; ``active_30d``:
    the account changed (registered, generated, paid) or the user wrote to the bot in 30 days."""
    condition = User.blocked.does_not_exist() | (User.blocked == False)  # noqa: E712 - a DynamoDB condition
    if audience == "paying":
        condition &= User.paid_at.exists()
    elif audience == "active_30d":
        cutoff = iso_utc(now - ACTIVE_DAYS * 86400)
        condition &= (User.updated_at >= cutoff) | (User.last_active_at >= cutoff)
    return condition


def audience_size(audience: str, *, now: float) -> int:
    return sum(1 for _ in User.scan(filter_condition=_audience_filter(audience, now), attributes_to_get=["user_id"]))


def audience_page(
    audience: str, cursor: dict[str, Any] | None, *, page_size: int, now: float
) -> tuple[list[User], dict[str, Any] | None]:
    """One Scan page of the users table (the audience's filter applied) and where the next one starts."""
    scan = User.scan(
        filter_condition=_audience_filter(audience, now),
        page_size=page_size,
        last_evaluated_key=cursor,
        consistent_read=True,
    )
    raw = next(scan.page_iter, None) or {}
    return [User.from_raw_data(item) for item in raw.get("Items", [])], scan.page_iter.last_evaluated_key
