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

import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import botocore.session

from chalicelib import records
from chalicelib.model import GenerationOrder, Profile, StartResult

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
    from chalicelib import money
    from chalicelib.runtime import ready
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

    def start(key: str | None = None) -> StartResult:
        return money.start_generation(profile, order, settings, chat_id=42, source="api", idempotency_key=key)

    ok = measure("start_generation (with Idempotency-Key)", lambda: start("k1"))
    measure("start_generation replay (same key)", lambda: start("k1"))
    gid = ok.generation.generation_id
    claim = measure("claim (worker)", lambda: money.claim_generation(42, gid, lease_seconds=60))
    measure("complete (worker)", lambda: money.complete_generation(claim.generation, result_keys=["k"], provider="x"))
    measure("mark delivered (worker)", lambda: records.mark_delivered(claim.generation))

    failed = start().generation
    claimed = money.claim_generation(42, failed.generation_id, lease_seconds=60).generation
    assert claimed is not None
    measure(
        "fail + refund (worker, permanent error)",
        lambda: money.fail_generation(claimed, error="x", claim_token=claimed.claim_token),
    )

    cancelled = start().generation
    measure("cancel + refund (POST .../cancel)", lambda: money.cancel_generation(42, cancelled.generation_id))
    start()
    later = time.time() + settings.generation_timeout_seconds + 5
    measure("sweep (1 expired generation)", lambda: money.sweep_expired(now=later))

    totals = {
        "successful generation (start+claim+complete+delivered)": ["start_generation (with Idempotency-Key)",
                                                                   "claim (worker)", "complete (worker)",
                                                                   "mark delivered (worker)"],
        "failed generation (start+claim+fail)": ["start_generation (with Idempotency-Key)", "claim (worker)",
                                                 "fail + refund (worker, permanent error)"],
        "cancelled generation (start+cancel)": ["start_generation (with Idempotency-Key)",
                                                "cancel + refund (POST .../cancel)"],
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


if __name__ == "__main__":
    main()
