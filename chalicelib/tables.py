"""PynamoDB models: the DynamoDB tables of NanoGen and why they look this way.

Table design (every table on demand, TTL on ``expires_at`` where it exists):

``users``        hash ``user_id`` (Telegram id). Holds the balance
                 (``credits``) and ``active_generations`` so one conditional
                 update can check "covers the cost, not banned, below the
                 active limit" and change both atomically.
``generations``  hash ``user_id``, range ``generation_id`` (time-ordered
                 ULID). A user's history, newest first, is a Query on the
                 table itself; reading a generation needs the caller's id,
                 so another user's id simply is not found (no IDOR check to
                 forget). GSI ``unfinished``: hash ``sweep_shard``, range
                 ``timeout_at``. ``sweep_shard`` exists only while the
                 generation is pending or processing, so the index is sparse
                 and the sweeper's "unfinished and past its timeout" is a
                 Query over a few small shards, never a Scan.
``ledger``       hash ``user_id``, range ``entry_id`` (ULID): every balance
                 change, newest last; the sum of a user's entries is the
                 balance.
``payments``     hash ``charge_id`` (``telegram_payment_charge_id``): a Stars
                 payment is credited when this item is created, so a
                 conditional put makes the credit exactly-once.
``guards``       hash ``pk``: short-lived uniqueness guards, each expiring by
                 TTL: idempotency keys (``idem#<user>#<key>`` from the API,
                 ``idem-bot#<user>#<key>`` from the bot), per-minute
                 rate-limit windows (``rate#<user>#<minute>``), claimed
                 Telegram updates (``update#<update_id>``) and operator
                 alert windows (``alert#<kind>#<window>``); and for picture
                 edits: Mini App uploads (``upload#<user>#<upload_id>``, a
                 day, as long as the object), albums being collected
                 (``album#<chat>#<media_group_id>``), a photo waiting for
                 its instruction (``photo#<chat>``, an hour) and which
                 picture a chat message shows (``picture#<chat>#<message>``).
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.indexes import GlobalSecondaryIndex, IncludeProjection
from pynamodb.models import Model

from chalicelib.config import Settings

# Unfinished generations are spread over this many GSI partitions so the
# sweeper's index never has one hot key.
SWEEP_SHARDS = 4


class _Meta:
    """Connection settings shared by every table: Lambda-sized timeouts."""

    connect_timeout_seconds = 2
    read_timeout_seconds = 10
    max_retry_attempts = 3


class User(Model):
    class Meta(_Meta):
        table_name = "users"

    user_id = NumberAttribute(hash_key=True)
    first_name = UnicodeAttribute(default="")
    last_name = UnicodeAttribute(null=True)
    username = UnicodeAttribute(null=True)
    language_code = UnicodeAttribute(null=True)
    credits = NumberAttribute(default=0)
    active_generations = NumberAttribute(default=0)
    banned = BooleanAttribute(default=False)
    start_payload = UnicodeAttribute(null=True)  # /start argument, e.g. a referral
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()


class UnfinishedIndex(GlobalSecondaryIndex["Generation"]):
    class Meta:
        index_name = "unfinished"
        # What the sweeper needs without reading the item again: to refund
        # (cost), to tell the user (chat_id) and to spot an abandoned claim.
        projection = IncludeProjection(["status", "cost", "chat_id", "lease_until"])

    sweep_shard = UnicodeAttribute(hash_key=True)
    timeout_at = NumberAttribute(range_key=True)


class Generation(Model):
    class Meta(_Meta):
        table_name = "generations"

    user_id = NumberAttribute(hash_key=True)
    generation_id = UnicodeAttribute(range_key=True)
    status = UnicodeAttribute()
    prompt = UnicodeAttribute()
    model = UnicodeAttribute()
    aspect_ratio = UnicodeAttribute()
    image_urls = ListAttribute(of=UnicodeAttribute, default=list)
    upload_ids = ListAttribute(of=UnicodeAttribute, default=list)  # objects uploads/<user_id>/<upload_id>
    cost = NumberAttribute()
    result_keys = ListAttribute(of=UnicodeAttribute, default=list)
    error = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    timeout_at = NumberAttribute()  # epoch seconds
    chat_id = NumberAttribute()  # where the picture is delivered
    source = UnicodeAttribute(default="api")  # "api" or "bot"
    idempotency_key = UnicodeAttribute(null=True)
    attempts = NumberAttribute(default=0)
    claim_token = UnicodeAttribute(null=True)  # the worker that owns a processing generation
    lease_until = NumberAttribute(null=True)  # after this another worker may take it over
    delivered = BooleanAttribute(default=False)
    # The delivery lease: one worker at a time sends a completed generation's pictures;
    # a sender that died leaves a lease that runs out, so another one delivers.
    delivery_token = UnicodeAttribute(null=True)
    delivery_claimed_until = NumberAttribute(null=True)
    provider = UnicodeAttribute(null=True)
    requeued_at = NumberAttribute(null=True)  # the sweeper's last re-queue (epoch seconds)
    sweep_shard = UnicodeAttribute(null=True)  # present only while unfinished
    unfinished = UnfinishedIndex()


class LedgerEntry(Model):
    class Meta(_Meta):
        table_name = "ledger"

    user_id = NumberAttribute(hash_key=True)
    entry_id = UnicodeAttribute(range_key=True)
    delta = NumberAttribute()
    reason = UnicodeAttribute()  # welcome | generation | refund | admin | purchase | purchase_refund
    generation_id = UnicodeAttribute(null=True)
    payment_charge_id = UnicodeAttribute(null=True)
    note = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()


class Payment(Model):
    class Meta(_Meta):
        table_name = "payments"

    charge_id = UnicodeAttribute(hash_key=True)
    user_id = NumberAttribute()
    pack_id = UnicodeAttribute()
    credits = NumberAttribute()
    stars = NumberAttribute()
    status = UnicodeAttribute()  # credited | refunding (credits taken, Telegram not yet confirmed) | refunded
    provider_charge_id = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()


class _Guard(Model):
    class Meta(_Meta):
        table_name = "guards"

    pk = UnicodeAttribute(hash_key=True)
    expires_at = NumberAttribute()  # TTL attribute (epoch seconds)


class IdempotencyRecord(_Guard):
    generation_id = UnicodeAttribute()
    fingerprint = UnicodeAttribute()

    @staticmethod
    def key(user_id: int, idempotency_key: str, *, source: str) -> str:
        """Each channel has its own key space: no API caller can take the key the bot gives a message.

        The API's keys keep the form they had before the split, so a key sent
        earlier still replays within its TTL; every pk of another source starts
        ``idem-<source>#``, which no API key (always ``idem#<digits>#...``) can spell.
        """
        if source == "api":
            return f"idem#{user_id}#{idempotency_key}"
        return f"idem-{source}#{user_id}#{idempotency_key}"


class RateLimitWindow(_Guard):
    used = NumberAttribute(default=0)  # generation starts in this window

    @staticmethod
    def key(user_id: int, window_start: int) -> str:
        return f"rate#{user_id}#{window_start}"


class ProcessedUpdate(_Guard):
    state = UnicodeAttribute()  # processing | done
    token = UnicodeAttribute(null=True)  # the claim's own: a retried put recognises its applied twin

    @staticmethod
    def key(update_id: int) -> str:
        return f"update#{update_id}"


class AlertWindow(_Guard):
    sent = NumberAttribute(default=0)  # operator alerts of one kind sent in this window

    @staticmethod
    def key(kind: str, window_start: int) -> str:
        return f"alert#{kind}#{window_start}"


class UploadRecord(_Guard):
    """A presigned upload handed to a Mini App user: who owns it and what it must be."""

    user_id = NumberAttribute()
    content_type = UnicodeAttribute()  # image/jpeg | image/png | image/webp
    created_at = UnicodeAttribute()

    @staticmethod
    def key(user_id: int, upload_id: str) -> str:
        # The owner is part of the key: another user's upload id is simply not found.
        return f"upload#{user_id}#{upload_id}"


class AlbumRecord(_Guard):
    """An album's photos as their updates arrive (any order, any instance).

    ``photos`` holds ``"<message_id>:<upload_id>"`` entries, appended
    atomically; ``version`` counts the appends, so the delayed "is it
    complete?" message of the last photo is the one that finds its version
    current; ``started_version`` is set once, by the check that starts the
    generation.
    """

    user_id = NumberAttribute()
    photos = ListAttribute(of=UnicodeAttribute, default=list)
    caption = UnicodeAttribute(null=True)
    version = NumberAttribute(default=0)
    last_photo_at = NumberAttribute(default=0)  # epoch seconds (float)
    started_version = NumberAttribute(null=True)

    @staticmethod
    def key(chat_id: int, media_group_id: str) -> str:
        return f"album#{chat_id}#{media_group_id}"


class PendingPhotos(_Guard):
    """Photos sent without an instruction; the chat's next text (or a reply) edits them."""

    user_id = NumberAttribute()
    message_id = NumberAttribute()  # the photo's message (a reply to it also edits it)
    upload_ids = ListAttribute(of=UnicodeAttribute, default=list)
    used_by = NumberAttribute(null=True)  # the text message that started the edit

    @staticmethod
    def key(chat_id: int) -> str:
        return f"photo#{chat_id}"


class ChatPicture(_Guard):
    """The stored picture a chat message shows (a delivered result), so a reply can edit it."""

    user_id = NumberAttribute()
    s3_key = UnicodeAttribute()

    @staticmethod
    def key(chat_id: int, message_id: int) -> str:
        return f"picture#{chat_id}#{message_id}"


TABLE_MODELS: dict[str, type[Model]] = {
    "users": User,
    "generations": Generation,
    "ledger": LedgerEntry,
    "payments": Payment,
    "guards": _Guard,
}
GUARD_MODELS: tuple[type[Model], ...] = (
    _Guard,
    IdempotencyRecord,
    RateLimitWindow,
    ProcessedUpdate,
    AlertWindow,
    UploadRecord,
    AlbumRecord,
    PendingPhotos,
    ChatPicture,
)
TTL_ATTRIBUTES = {"guards": "expires_at"}

_bound_to: tuple[Any, ...] | None = None
_bind_lock = threading.Lock()


def table_names(settings: Settings) -> dict[str, str]:
    """Logical table name -> the real name in this deployment."""
    return {
        "users": settings.users_table,
        "generations": settings.generations_table,
        "ledger": settings.ledger_table,
        "payments": settings.payments_table,
        "guards": settings.guards_table,
    }


def bind_tables(settings: Settings) -> None:
    """Point every model at this deployment's tables (cheap, no AWS call).

    Called by every entry point before it touches a table; rebinding to other
    names (tests) drops the cached connections.
    """
    global _bound_to
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    names = table_names(settings)
    signature = (tuple(sorted(names.items())), region, os.environ.get("AWS_ENDPOINT_URL"))
    if signature == _bound_to:
        return
    with _bind_lock:
        if signature == _bound_to:
            return
        for logical, model in TABLE_MODELS.items():
            models = GUARD_MODELS if logical == "guards" else (model,)
            for each in models:
                each.Meta.table_name = names[logical]
                each.Meta.region = region
                each._connection = None
        _bound_to = signature
        _share_one_client()


def _share_one_client() -> None:
    """Point every model at the transactions' connection, and create its client now.

    PynamoDB gives each model its own connection and creates its botocore
    client lazily, without a lock: a cold worker running ten jobs in threads
    would build a client per model and per thread (~150 ms of CPU each).
    """
    from chalicelib import transactions

    shared = transactions.shared_connection()
    models: tuple[type[Model], ...] = (User, Generation, LedgerEntry, Payment, *GUARD_MODELS)
    for model in models:
        table_connection = model._get_connection()
        if table_connection.connection is not shared:
            with contextlib.suppress(ValueError):  # the guard models share one table
                shared.add_meta_table(table_connection.get_meta_table())
            table_connection.connection = shared
    _ = shared.client


def current_binding() -> tuple[Any, ...] | None:
    """What the models are bound to now (changes whenever ``bind_tables`` rebinds)."""
    return _bound_to
