"""DynamoDB round trips and consumed capacity per use case.

    .venv/bin/python -m bench.dynamodb_calls

Runs each use case on moto (in process) with botocore event hooks on every
client: ``provide-client-params`` asks for ``ReturnConsumedCapacity=TOTAL``
and ``after-call`` counts the call and adds up the capacity DynamoDB
reports. Moto reports capacity for single-item operations; for
TransactWriteItems the figure is DynamoDB's published rule (2 WCU per item
up to 1 KB), marked "rule".
"""

from __future__ import annotations

import functools
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import botocore.session

from chalicelib import records
from chalicelib.model import FailureReason, GenerationOrder, Profile, StartResult

_CAPACITY_OPS = {
    "GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan",
    "TransactWriteItems", "TransactGetItems", "BatchGetItem", "BatchWriteItem",
}  # fmt: skip


@dataclass
class Tally:
    calls: Counter[str] = field(default_factory=Counter)
    read_units: float = 0.0
    write_units: float = 0.0
    transact_items: int = 0

    def add(self, operation: str, params: dict[str, Any], parsed: dict[str, Any]) -> None:
        self.calls[operation] += 1
        if operation == "TransactWriteItems":
            self.transact_items += len(params.get("TransactItems", []))
        for capacity in _as_list(parsed.get("ConsumedCapacity")):
            self.read_units += float(capacity.get("ReadCapacityUnits", 0) or 0)
            self.write_units += float(capacity.get("WriteCapacityUnits", 0) or 0)
            if not capacity.get("ReadCapacityUnits") and not capacity.get("WriteCapacityUnits"):
                units = float(capacity.get("CapacityUnits", 0) or 0)
                if operation in ("GetItem", "Query", "Scan", "TransactGetItems", "BatchGetItem"):
                    self.read_units += units
                else:
                    self.write_units += units


def _as_list(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


_current: list[Tally] = []


def _install_hooks() -> None:
    """Register the hooks on every botocore client created from now on."""
    original = botocore.session.Session.create_client

    def create_client(self: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        if client.meta.service_model.service_name == "dynamodb":
            client.meta.events.register("provide-client-params.dynamodb", _ask_for_capacity)
            client.meta.events.register("after-call.dynamodb", _record)
        return client

    botocore.session.Session.create_client = create_client  # type: ignore[method-assign]


def _ask_for_capacity(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    context["nanogen_params"] = params
    if model.name in _CAPACITY_OPS:
        params.setdefault("ReturnConsumedCapacity", "TOTAL")


def _record(http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    if _current:
        _current[-1].add(model.name, context.get("nanogen_params", {}), parsed)


@contextmanager
def counting() -> Iterator[Tally]:
    tally = Tally()
    _current.append(tally)
    try:
        yield tally
    finally:
        _current.pop()


def main() -> None:
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1", NANOGEN_STAGE="bench", TELEGRAM_BOT_TOKEN="1:bench",
    )  # fmt: skip
    os.environ.pop("AWS_ENDPOINT_URL", None)
    _install_hooks()
    from moto import mock_aws

    with mock_aws():
        rows = run_use_cases()
    print("DynamoDB round trips and capacity per use case (moto, one user, warm connections)\n")
    print(f"{'use case':<56} {'calls':>5}  {'RCU':>5}  {'WCU':>5}  detail")
    for name, tally in rows:
        wcu = tally.write_units
        note = ""
        if tally.transact_items:
            wcu += 2.0 * tally.transact_items
            note = " (WCU by rule: 2 per transactional item <= 1 KB)"
        detail = ", ".join(f"{op} x{n}" for op, n in sorted(tally.calls.items()))
        print(f"{name:<56} {sum(tally.calls.values()):>5}  {tally.read_units:>5.1f}  {wcu:>5.1f}  {detail}{note}")
    print("\nreproduce: .venv/bin/python -m bench.dynamodb_calls")


def run_use_cases() -> list[tuple[str, Tally]]:
    from chalicelib import money, notify, queries
    from chalicelib.runtime import ready
    from chalicelib.usecases.generation import order_generation
    from chalicelib.validation import credit_change_fingerprint
    from infra.resources import create_locally

    settings = ready()
    create_locally(settings)
    profile = Profile(user_id=42, first_name="Bench")
    order = GenerationOrder("a fox", "google/gemini-2.5-flash-image", "1:1", (), 1, "fp")
    rows: list[tuple[str, Tally]] = []

    def measure(name: str, action: Callable[[], Any]) -> Any:
        action_result = None
        with counting() as tally:
            action_result = action()
        rows.append((name, tally))
        return action_result

    measure("GET /api/user/me (first call: registers)", lambda: money.get_or_register(profile, settings))
    measure("GET /api/user/me", lambda: money.get_or_register(profile, settings))
    # handlers.admin.user_detail, which the Mini App also calls on opening to learn whether to show
    # the operator's tab (a non-admin is refused before any read).
    measure("GET /api/admin/users/{id}", lambda: (queries.get_user(42), queries.latest_ledger(42)))
    measure("GET /api/admin/stats", queries.stats)

    def change_credits(key: str | None = None) -> Any:
        # handlers.admin.change_credits: the change, its ledger entry (and the key's record), then the user.
        fingerprint = credit_change_fingerprint(5, "bench")
        return money.change_credits(42, 5, note="admin:token: bench", idempotency_key=key, fingerprint=fingerprint)

    measure("POST /api/admin/users/{id}/credits", change_credits)
    measure("POST /api/admin/users/{id}/credits with a new Idempotency-Key", lambda: change_credits("c1"))
    measure("POST /api/admin/users/{id}/credits replay (same key)", lambda: change_credits("c1"))

    def start(key: str | None = None) -> StartResult:
        # What POST /api/generation runs: the charge, the queue message, then the balance read.
        return order_generation(profile, order, settings, chat_id=42, source="api", idempotency_key=key, language="en")

    def post_generation(key: str | None = None) -> StartResult:
        # handlers.api.create_generation: the saved settings and language, a key's replay, then the charge.
        queries.get_user(42)
        replay = money.replay_of(42, key, order, source="api") if key is not None else None
        return replay or start(key)

    ok = measure("POST /api/generation (settings read + start)", lambda: post_generation())
    measure("POST /api/generation with a new Idempotency-Key", lambda: post_generation("k1"))
    measure("POST /api/generation replay (same key)", lambda: post_generation("k1"))
    measure(
        "PUT /api/user/settings",
        lambda: (money.get_or_register(profile, settings), records.save_settings(42, aspect_ratio="16:9")),
    )
    gid = ok.generation.generation_id
    claim = measure("claim (worker)", lambda: money.claim_generation(42, gid, lease_seconds=60))
    measure("complete (worker)", lambda: money.complete_generation(claim.generation, result_keys=["k"], provider="x"))
    measure("delivery lease (worker)", lambda: records.claim_delivery(claim.generation, lease_seconds=90))
    measure(
        "picture accepted, of several (worker: each but the last)",
        lambda: records.record_picture_delivered(claim.generation, 0),
    )
    measure(
        "picture's language (worker: stored on the generation)", lambda: notify.language_of(claim.generation, settings)
    )
    measure("mark delivered (worker)", lambda: records.mark_delivered(claim.generation))

    failed = start().generation
    claimed = money.claim_generation(42, failed.generation_id, lease_seconds=60).generation
    assert claimed is not None
    measure(
        "fail + refund (worker, permanent error)",
        lambda: money.fail_generation(claimed, error=FailureReason.PROVIDER_FAILED, claim_token=claimed.claim_token),
    )

    cancelled = start().generation
    measure("cancel + refund (POST .../cancel)", lambda: money.cancel_generation(42, cancelled.generation_id))
    start()
    later = time.time() + settings.generation_timeout_seconds + 5
    expired = measure("sweep (1 expired generation)", lambda: money.sweep_expired(now=later))
    measure("timeout notice's language (sweeper: reads the user)", lambda: notify.language_of(expired[0], settings))

    rows.extend(edit_use_cases(settings, measure))

    totals = {
        "successful generation (start+claim+complete+lease+delivered)": ["POST /api/generation (settings read + start)",
                                                                         "claim (worker)", "complete (worker)",
                                                                         "delivery lease (worker)",
                                                                         "mark delivered (worker)"],
        "failed generation (start+claim+fail)": ["POST /api/generation (settings read + start)", "claim (worker)",
                                                 "fail + refund (worker, permanent error)"],
        "cancelled generation (start+cancel)": ["POST /api/generation (settings read + start)",
                                                "cancel + refund (POST .../cancel)"],
        "album of 3 photos, collected and charged once": ["album photo 1 of 3 (append)",
                                                          "album photo 2 of 3 (append)",
                                                          "album photo 3 of 3 (append)",
                                                          "album check, stale (a later photo came)",
                                                          "album check, stale (a later photo came)",
                                                          "album check, latest (charge once)"],
    }  # fmt: skip
    by_name = dict(rows)
    for name, parts in totals.items():
        combined = Tally()
        for part in parts:
            combined.calls.update(by_name[part].calls)
            combined.read_units += by_name[part].read_units
            combined.write_units += by_name[part].write_units
            combined.transact_items += by_name[part].transact_items
        rows.append((name, combined))
    return rows


class _Telegram:
    """Enough of the Bot API for the edit paths: every file is the same small JPEG."""

    JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
    dry_run = False

    def __init__(self) -> None:
        self.message_ids = iter(range(1, 1_000_000))

    def get_file(self, file_id: str) -> dict[str, Any]:
        return {"file_id": file_id, "file_unique_id": file_id, "file_size": len(self.JPEG), "file_path": f"p/{file_id}"}

    def download_file(self, file_path: str, *, max_bytes: int) -> bytes:
        return self.JPEG

    def send_message(self, chat_id: int, text: str, **_: Any) -> dict[str, Any]:
        return {"message_id": next(self.message_ids)}


def edit_use_cases(settings: Any, measure: Callable[[str, Callable[[], Any]], Any]) -> list[tuple[str, Tally]]:
    """Picture edits: uploads, a photo in the chat, an album, a reply (bot actions, without the update claim).

    ``measure`` appends each row itself; nothing is returned.
    """
    from chalicelib import aws, money, photos, uploads
    from chalicelib.tables import AlbumRecord

    bot: Any = _Telegram()
    user_id = 77
    profile = Profile(user_id=user_id, first_name="Editor")
    money.register(profile, settings)
    wanted = uploads.UploadRequest("image/jpeg", 68)
    upload = measure("POST /api/uploads", lambda: uploads.create_upload(user_id, wanted, settings))
    uploads.store_copy(user_id, bot.JPEG, "image/jpeg", settings, upload_id=upload["upload_id"])
    measure("check 1 upload_id (POST /api/generation adds this)", lambda: uploads.check_uploads(
        user_id, [upload["upload_id"]], settings))  # fmt: skip

    def photo(message_id: int, **extra: Any) -> dict[str, Any]:
        sizes = [{"file_id": f"f{message_id}", "file_unique_id": f"u{message_id}", "width": 9, "height": 9}]
        return {"message_id": message_id, "date": int(time.time()), "photo": sizes, **extra}

    def send(message: dict[str, Any]) -> None:
        photos.handle_picture_message(
            bot, settings, raw=message, sender=profile, chat_id=user_id, message_id=int(message["message_id"])
        )

    measure("chat photo with caption (charge + queue)", lambda: send(photo(1, caption="watercolour")))
    measure("chat photo without caption (remember it)", lambda: send(photo(2)))

    def text(message_id: int, words: str, **extra: Any) -> bool:
        raw = {"message_id": message_id, "date": int(time.time()), "text": words, **extra}
        return photos.handle_text(
            bot, settings, raw=raw, sender=profile, chat_id=user_id, message_id=message_id, text=words
        )

    _finish_all(user_id)
    measure("next text edits the waiting photo", lambda: text(3, "on the moon"))
    _finish_all(user_id)
    measure("a text prompt (extra: is a photo waiting?)", lambda: text(4, "a fox"))
    photos.remember_picture(user_id, 500, user_id, f"results/{user_id}/g/0.png")
    aws.client("s3").put_object(Bucket=settings.results_bucket, Key=f"results/{user_id}/g/0.png", Body=bot.JPEG)
    measure("text reply to a delivered result", lambda: text(5, "at night", reply_to_message={"message_id": 500}))
    _finish_all(user_id)
    measure("remember a delivered picture (worker, per photo)", lambda: photos.remember_picture(
        user_id, 501, user_id, f"results/{user_id}/g/0.png"))  # fmt: skip

    for index in range(3):
        message = photo(10 + index, media_group_id="g1", **({"caption": "combine"} if index == 1 else {}))
        measure(f"album photo {index + 1} of 3 (append)", functools.partial(send, message))
    album = AlbumRecord.get(AlbumRecord.key(user_id, "g1"))
    check = {"chat_id": user_id, "media_group_id": "g1", "user": {"id": user_id, "first_name": "Editor"}}
    later = float(album.last_photo_at) + 3
    measure("album check, stale (a later photo came)", lambda: photos.check_album(
        {**check, "version": 1}, bot, settings, now=later))  # fmt: skip
    measure("album check, latest (charge once)", lambda: photos.check_album(
        {**check, "version": 3}, bot, settings, now=later))  # fmt: skip
    return []


def _finish_all(user_id: int) -> None:
    """Complete the user's active generations outside the measurements (MAX_ACTIVE_GENERATIONS)."""
    from chalicelib import money
    from chalicelib.tables import Generation

    for generation in Generation.query(user_id):
        if generation.status == "pending":
            claim = money.claim_generation(user_id, generation.generation_id, lease_seconds=60)
            if claim.generation is not None:
                money.complete_generation(claim.generation, result_keys=["k"], provider="bench")


if __name__ == "__main__":
    main()
