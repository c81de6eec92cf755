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
                 ``idem-bot#<user>#<key>`` from the bot; an operator's
                 credit change: ``idem-admin#<target user>#<key>``), per-minute
                 rate-limit windows (``rate#<user>#<minute>``), claimed
                 Telegram updates (``update#<update_id>``), operator
                 alert windows (``alert#<kind>#<window>``), broadcast
                 deliveries (``bcast#<broadcast>#<user>``) and the broadcast
                 send clock (``broadcast-clock``); and for picture
                 edits: Mini App uploads (``upload#<user>#<upload_id>``, a
                 day, as long as the object), albums being collected
                 (``album#<chat>#<media_group_id>``), a photo waiting for
                 its instruction (``photo#<chat>``, an hour) and which
                 picture a chat message shows (``picture#<chat>#<message>``).
``growth``       hash ``pk``: promo codes (``promo#<CODE>``), redemptions
                 (``redeem#<CODE>#<user>``: one per user and code) and
                 broadcasts (``broadcast#<id>``). No TTL.
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
    NumberSetAttribute,
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
    # Settings the user chose (/settings, /language, PUT /api/user/settings);
    # absent: Telegram's language_code / the catalogue's defaults.
    language = UnicodeAttribute(null=True)
    model = UnicodeAttribute(null=True)
    aspect_ratio = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    # Growth (chalicelib.money's referral block, chalicelib.broadcasts).
    invited_by = NumberAttribute(null=True)  # the inviter, set only in the registration transaction
    invited_count = NumberAttribute(null=True)  # users this one invited
    referral_earned = NumberAttribute(null=True)  # credits earned by inviting
    paid_at = UnicodeAttribute(null=True)  # first Stars purchase credited (the referral bonus is earned then)
    blocked = BooleanAttribute(null=True)  # Telegram answered 403 to a broadcast; cleared when they write
    last_active_at = UnicodeAttribute(null=True)  # last message to the bot (at most one write a day)


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
    # The user's language when ordered: the worker writes the picture's buttons
    # and any failure notice in it without reading the user.
    language = UnicodeAttribute(null=True)
    idempotency_key = UnicodeAttribute(null=True)
    attempts = NumberAttribute(default=0)
    claim_token = UnicodeAttribute(null=True)  # the worker that owns a processing generation
    lease_until = NumberAttribute(null=True)  # after this another worker may take it over
    delivered = BooleanAttribute(default=False)
    # The delivery lease: one worker at a time sends a completed generation's pictures;
    # a sender that died leaves a lease that runs out, so another one delivers.
    delivery_token = UnicodeAttribute(null=True)
    delivery_claimed_until = NumberAttribute(null=True)
    # Delivery progress: the indexes (into ``result_keys``) of the pictures Telegram accepted,
    # so a retried delivery of a generation with several sends only the others.
    delivered_pictures = NumberSetAttribute(null=True)
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
    reason = UnicodeAttribute()  # welcome | generation | refund | admin | purchase | purchase_refund | promo | referral
    generation_id = UnicodeAttribute(null=True)
    payment_charge_id = UnicodeAttribute(null=True)
    note = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    promo_code = UnicodeAttribute(null=True)  # reason "promo"
    referred_user_id = NumberAttribute(null=True)  # reason "referral": whose first purchase earned it


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
    # While ``refunding``: the refund attempt that took the credits back (or took the refund over),
    # and until when it may call Telegram undisturbed. Only that attempt restores or confirms.
    refund_attempt = UnicodeAttribute(null=True)
    refund_attempt_until = NumberAttribute(null=True)
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
        if source == "admin":  # AdminCreditRecord's key space
            raise ValueError("'admin' is not a generation source")
        return f"idem-{source}#{user_id}#{idempotency_key}"


class AdminCreditRecord(_Guard):
    """An operator's ``Idempotency-Key`` on ``POST /api/admin/users/{id}/credits``: the change it made.

    Put in the same transaction as the balance change and its ledger entry, on
    condition that no live record has this key, so a retry of a change whose
    answer was lost finds it and changes nothing (``money.change_credits``).
    """

    fingerprint = UnicodeAttribute()  # of the amount and the reason: the same key with others is a 422
    entry_id = UnicodeAttribute()  # the ledger entry the change wrote

    @staticmethod
    def key(user_id: int, idempotency_key: str) -> str:
        """Per target user; ``idem-admin#`` is spelled by no API key (``idem#<digits>#``) nor bot key."""
        return f"idem-admin#{user_id}#{idempotency_key}"


class RateLimitWindow(_Guard):
    used = NumberAttribute(default=0)  # generation starts in this window

    @staticmethod
    def key(user_id: int, window_start: int) -> str:
        return f"rate#{user_id}#{window_start}"

    @staticmethod
    def uploads_key(user_id: int, window_start: int) -> str:
        """The window of ``POST /api/uploads`` (its own count: uploads are not generations)."""
        return f"rate-uploads#{user_id}#{window_start}"


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


class AgainTap(_Guard):
    """The last "again" tap of one result message: taps soon after it are the same request (a double tap)."""

    query_id = UnicodeAttribute()  # the callback query whose request later taps in the window repeat

    @staticmethod
    def key(chat_id: int, message_id: int) -> str:
        return f"again#{chat_id}#{message_id}"


class AgainResolved(_Guard):
    """Which tap's request an "again" tap is: its own, or (a double tap) the earlier tap's. Kept while
    Telegram may re-send the tap, so a re-send gets the same answer and never touches the window."""

    first_query_id = UnicodeAttribute()

    @staticmethod
    def key(query_id: str) -> str:
        return f"againq#{query_id}"


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
    generation. ``arriving`` holds the message ids of photos whose update
    came but whose download is not finished yet (``arrived_at``: the latest
    such arrival), so a slow download does not split the album.
    """

    user_id = NumberAttribute()
    photos = ListAttribute(of=UnicodeAttribute, default=list)
    caption = UnicodeAttribute(null=True)
    version = NumberAttribute(default=0)
    last_photo_at = NumberAttribute(default=0)  # epoch seconds (float)
    started_version = NumberAttribute(null=True)
    arriving = NumberSetAttribute(null=True)
    arrived_at = NumberAttribute(null=True)  # epoch seconds (float)

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


class BroadcastDelivery(_Guard):
    """One broadcast to one user, claimed before the message is sent: at most once (CONTRACT §6.8).

    ``state``: ``sending`` (claimed; a crash here leaves it so: never re-sent),
    then ``sent``, ``failed`` or ``blocked`` together with the broadcast's counter.
    """

    state = UnicodeAttribute()
    broadcast_id = UnicodeAttribute()
    user_id = NumberAttribute()
    token = UnicodeAttribute(null=True)  # the claiming call's: a retried claim recognises its applied twin

    @staticmethod
    def key(broadcast_id: str, user_id: int) -> str:
        return f"bcast#{broadcast_id}#{user_id}"


class BroadcastClock(_Guard):
    """The shared send schedule of every broadcast worker (``chalicelib.broadcasts``).

    ``next_slot`` is the next free slot of width ``1/rate`` seconds, counted
    from the epoch; each message books one with a conditional increment.
    """

    next_slot = NumberAttribute()

    KEY = "broadcast-clock"


# --------------------------------------------------------------------------
# The growth table: promo codes, their redemptions, broadcasts (no TTL)
# --------------------------------------------------------------------------


class _GrowthItem(Model):
    class Meta(_Meta):
        table_name = "growth"

    pk = UnicodeAttribute(hash_key=True)


class PromoCode(_GrowthItem):
    """``promo#<CODE>`` (upper case: codes are case-insensitive). ``uses`` < ``max_uses`` is checked on redemption."""

    code = UnicodeAttribute()
    credits = NumberAttribute()
    max_uses = NumberAttribute()
    uses = NumberAttribute(default=0)
    expires_at = UnicodeAttribute(null=True)  # ISO 8601 UTC; comparable as text
    created_at = UnicodeAttribute()
    created_by = UnicodeAttribute(null=True)

    @staticmethod
    def key(code: str) -> str:
        return f"promo#{code.upper()}"


class PromoRedemption(_GrowthItem):
    """``redeem#<CODE>#<user_id>``: exists once a user redeemed a code, so a second redemption fails its put."""

    code = UnicodeAttribute()
    user_id = NumberAttribute()
    credits = NumberAttribute()
    created_at = UnicodeAttribute()

    @staticmethod
    def key(code: str, user_id: int) -> str:
        return f"redeem#{code.upper()}#{user_id}"


class Broadcast(_GrowthItem):
    """``broadcast#<id>``: an announcement, its audience and its progress.

    ``page`` counts the audience pages done (chalicelib.broadcasts advances it
    conditionally so a redelivered page never starts a second chain).
    """

    broadcast_id = UnicodeAttribute()
    status = UnicodeAttribute()  # queued | sending | done | cancelled
    audience = UnicodeAttribute()  # all | paying | active_30d
    text_all = UnicodeAttribute(null=True)
    text_en = UnicodeAttribute(null=True)
    text_ru = UnicodeAttribute(null=True)
    total = NumberAttribute(default=0)
    sent = NumberAttribute(default=0)
    failed = NumberAttribute(default=0)
    blocked = NumberAttribute(default=0)
    page = NumberAttribute(default=0)
    cursor = UnicodeAttribute(null=True)  # JSON: where page ``page`` starts (a Scan's LastEvaluatedKey)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    created_by = UnicodeAttribute(null=True)
    advanced_by = UnicodeAttribute(null=True)  # the token of the run that did the last page: its retry knows it

    @staticmethod
    def key(broadcast_id: str) -> str:
        return f"broadcast#{broadcast_id}"


TABLE_MODELS: dict[str, type[Model]] = {
    "users": User,
    "generations": Generation,
    "ledger": LedgerEntry,
    "payments": Payment,
    "guards": _Guard,
    "growth": _GrowthItem,
}
GUARD_MODELS: tuple[type[Model], ...] = (
    _Guard,
    IdempotencyRecord,
    AdminCreditRecord,
    RateLimitWindow,
    ProcessedUpdate,
    AlertWindow,
    UploadRecord,
    AlbumRecord,
    PendingPhotos,
    ChatPicture,
    AgainTap,
    AgainResolved,
    BroadcastDelivery,
    BroadcastClock,
)
GROWTH_MODELS: tuple[type[Model], ...] = (_GrowthItem, PromoCode, PromoRedemption, Broadcast)
# Tables that several models share (one key schema, items told apart by their key's prefix).
_SHARED_TABLES: dict[str, tuple[type[Model], ...]] = {"guards": GUARD_MODELS, "growth": GROWTH_MODELS}
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
        "growth": settings.growth_table,
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
            models = _SHARED_TABLES.get(logical, (model,))
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
    models: tuple[type[Model], ...] = (User, Generation, LedgerEntry, Payment, *GUARD_MODELS, *GROWTH_MODELS)
    for model in models:
        table_connection = model._get_connection()
        if table_connection.connection is not shared:
            with contextlib.suppress(ValueError):  # the guard (growth) models share one table
                shared.add_meta_table(table_connection.get_meta_table())
            table_connection.connection = shared
    _ = shared.client


def current_binding() -> tuple[Any, ...] | None:
    """What the models are bound to now (changes whenever ``bind_tables`` rebinds)."""
    return _bound_to
