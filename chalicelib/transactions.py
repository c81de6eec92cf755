"""TransactWriteItems with labelled items.

PynamoDB sends a transaction's items grouped by kind (condition checks,
deletes, puts, updates), not in call order, and DynamoDB reports
cancellation reasons in request order. ``Transaction`` records a label for
every item in PynamoDB's order, so a cancelled transaction says *which*
item's condition failed ("user", "rate", "idempotency", ...).

Transient cancellations (``TransactionConflict`` with another transaction on
the same item, throttling) are retried with jittered backoff under a new
``ClientRequestToken``; an unknown outcome (no answer, in progress,
throttled, 5xx) is retried under the same token, so DynamoDB applies it at
most once. When the retries run out, the error says which it was:
``TemporarilyUnavailable`` (nothing was applied) or ``OutcomeUnknown`` (it
may have been), both a 503 with ``Retry-After``, never a cancellation.
"""

from __future__ import annotations

import random
import time
import uuid
from typing import Any

from botocore.exceptions import ConnectionError as NoConnection
from botocore.exceptions import HTTPClientError
from pynamodb.connection import Connection
from pynamodb.constants import ALL_OLD
from pynamodb.exceptions import PutError, TransactWriteError, UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.errors import OutcomeUnknown, TemporarilyUnavailable, TransactionCancelled

_RETRYABLE_CODES = {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "InternalError"}
_UNKNOWN_OUTCOME_CODES = {
    "TransactionInProgressException",
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
}
# A plain write refused for throughput was not applied (for a transaction, the existing rule is more careful).
_NOT_APPLIED_CODES = {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
_MAX_ATTEMPTS = 6


class Transaction:
    """Collects labelled writes; ``commit()`` sends them as one atomic call."""

    def __init__(self) -> None:
        self._checks: list[tuple[str, Any]] = []
        self._puts: list[tuple[str, Any]] = []
        self._updates: list[tuple[str, Any]] = []

    def check(self, label: str, model_cls: type[Model], hash_key: Any, range_key: Any, condition: Condition) -> None:
        self._checks.append((label, (model_cls, hash_key, range_key, condition)))

    def put(self, label: str, item: Model, condition: Condition | None = None, *, want_old: bool = False) -> None:
        """``want_old``: a failed condition brings the item as it is (``TransactionCancelled.old_items``)."""
        self._puts.append((label, (item, condition, want_old)))

    def update(
        self,
        label: str,
        item: Model,
        actions: list[Action],
        condition: Condition | None = None,
        *,
        want_old: bool = False,
    ) -> None:
        self._updates.append((label, (item, actions, condition, want_old)))

    @property
    def labels(self) -> list[str]:
        """Labels in the order PynamoDB sends the items (and DynamoDB reports reasons)."""
        return [label for label, _ in self._checks + self._puts + self._updates]

    def commit(self) -> None:
        # The ClientRequestToken makes DynamoDB apply a retried request once.
        # Kept while the outcome is unknown (in progress, throttled, 5xx);
        # replaced only after a cancellation, when nothing was applied.
        token = str(uuid.uuid4())
        unknown = False  # whether the last attempt may have been applied
        for attempt in range(_MAX_ATTEMPTS):
            try:
                self._send(token)
                return
            except TransactWriteError as error:
                codes = [reason.code if reason else "None" for reason in error.cancellation_reasons]
                if not codes:
                    if outcome_unknown(error):
                        unknown = True
                        _backoff(attempt)
                        continue
                    raise
                reasons = dict(zip(self.labels, codes, strict=False))
                old_items = {
                    label: reason.raw_item
                    for label, reason in zip(self.labels, error.cancellation_reasons, strict=False)
                    if reason is not None and reason.raw_item
                }
                if "ConditionalCheckFailed" not in codes and set(codes) & _RETRYABLE_CODES:
                    # Cancelled, so nothing was applied under this token (had an earlier attempt
                    # been applied, DynamoDB would have answered that success): a new request.
                    unknown = False
                    token = str(uuid.uuid4())
                    _backoff(attempt)
                    continue
                raise TransactionCancelled(reasons, old_items) from None
        if unknown:
            raise OutcomeUnknown()
        raise TemporarilyUnavailable()

    def try_commit(self, label: str) -> bool:
        """Commit; False when the item labelled ``label`` failed its condition (nothing was applied).

        Any other cancellation is raised: it means something the caller did not plan for.
        """
        try:
            self.commit()
        except TransactionCancelled as cancelled:
            if cancelled.failed(label):
                return False
            raise
        return True

    def _send(self, token: str) -> None:
        with TransactWrite(connection=shared_connection(), client_request_token=token) as tx:
            for _, (model_cls, hash_key, range_key, condition) in self._checks:
                tx.condition_check(model_cls, hash_key, range_key, condition=condition)
            for _, (item, condition, want_old) in self._puts:
                tx.save(item, condition=condition, return_values=ALL_OLD if want_old else None)
            for _, (item, actions, condition, want_old) in self._updates:
                tx.update(item, actions, condition=condition, return_values=ALL_OLD if want_old else None)


def conditional_update(item: Model, actions: list[Action], condition: Condition) -> bool:
    """One conditional UpdateItem; False when the condition does not hold (nothing changed).

    ``item`` gets the item's new attributes when the update succeeds.

    A ``TransactionConflictException`` (a transaction holds the item; nothing
    was applied) is retried with jittered backoff; botocore has already
    retried timeouts, 5xx and throttling. When retries run out:
    ``TemporarilyUnavailable`` if nothing was applied (conflicts, throttling),
    ``OutcomeUnknown`` if the update may have been (no answer, 5xx).
    """
    for attempt in range(_MAX_ATTEMPTS):
        try:
            item.update(actions=actions, condition=condition)
            return True
        except UpdateError as error:
            code = error_code(error)
            if code == "ConditionalCheckFailedException":
                return False
            if code == "TransactionConflictException":
                _backoff(attempt)
                continue
            if code in _NOT_APPLIED_CODES:
                raise TemporarilyUnavailable() from error
            if outcome_unknown(error):
                raise OutcomeUnknown() from error
            raise
    raise TemporarilyUnavailable()


def put_new(item: Model, condition: Condition) -> None:
    """A conditional put of an item keyed by an id drawn just now (a fresh ULID).

    Nobody else can hold that key, so a refused condition means botocore
    retried our own put, applied but its answer lost: the item is this one.
    """
    try:
        item.save(condition=condition)
    except PutError as error:
        if error_code(error) != "ConditionalCheckFailedException":
            raise


def error_code(error: BaseException) -> str | None:
    """DynamoDB's error code behind ``error`` (a PynamoDB or botocore exception), or None without an answer.

    Use this, never PynamoDB's ``cause_response_code``: that reads
    ``cause.response``, which botocore's ``ReadTimeoutError`` (and every
    other connection error) sets to None, so a timeout became an
    ``AttributeError`` that masked the real failure.
    """
    cause = getattr(error, "cause", None) or error
    response = getattr(cause, "response", None)
    if not isinstance(response, dict):
        return None  # a timeout or a closed connection: DynamoDB's answer never arrived
    code = response.get("Error", {}).get("Code")
    return str(code) if code else None


def outcome_unknown(error: BaseException) -> bool:
    """Whether the write may or may not have been applied: no answer, throttled, in progress or 5xx."""
    cause = getattr(error, "cause", None) or error
    return isinstance(cause, (HTTPClientError, NoConnection)) or error_code(error) in _UNKNOWN_OUTCOME_CODES


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, 0.02 * 2**attempt))  # noqa: S311 - jitter, not security


_shared_connection: Connection | None = None
_connection_binding: object = None


def shared_connection() -> Connection:
    """The one low-level connection of this process (rebuilt when the tables are rebound).

    Every model uses it too (``tables.bind_tables``), so the botocore client
    is created once per container.
    """
    global _shared_connection, _connection_binding
    from chalicelib import tables

    binding = tables.current_binding()
    if _shared_connection is None or _connection_binding != binding:
        _shared_connection = Connection(
            region=getattr(tables.User.Meta, "region", None),
            connect_timeout_seconds=2,
            read_timeout_seconds=10,
            max_retry_attempts=3,
            max_pool_connections=25,  # the worker runs ten jobs at once
        )
        _connection_binding = binding
    return _shared_connection
