"""The transaction wrapper's retries: same request token while the outcome is unknown."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from pynamodb.exceptions import CancellationReason, TransactWriteError

from chalicelib import transactions
from chalicelib.errors import OutcomeUnknown, TemporarilyUnavailable, TransactionCancelled
from chalicelib.transactions import Transaction


class _Failure(TransactWriteError):
    def __init__(self, code: str, reasons: list[CancellationReason | None]) -> None:
        super().__init__("failed", ClientError({"Error": {"Code": code}}, "TransactWriteItems"))
        self._reasons = reasons

    @property
    def cancellation_reasons(self) -> list[CancellationReason | None]:
        return self._reasons


def _record_tokens(monkeypatch: pytest.MonkeyPatch, failures: list[BaseException]) -> list[str]:
    tokens: list[str] = []

    def send(self: Transaction, token: str) -> None:
        tokens.append(token)
        if failures:
            raise failures.pop(0)

    monkeypatch.setattr(Transaction, "_send", send)
    monkeypatch.setattr(transactions, "_backoff", lambda attempt: None)
    return tokens


def _labelled() -> Transaction:
    tx = Transaction()
    tx._puts.append(("only", None))
    return tx


def test_an_unknown_outcome_is_retried_with_the_same_token(monkeypatch: pytest.MonkeyPatch) -> None:
    in_progress = _Failure("TransactionInProgressException", [])
    tokens = _record_tokens(monkeypatch, [in_progress, _Failure("InternalServerError", [])])
    _labelled().commit()
    assert len(tokens) == 3 and len(set(tokens)) == 1


def test_a_conflict_cancellation_is_retried_as_a_new_request(monkeypatch: pytest.MonkeyPatch) -> None:
    conflict = _Failure("TransactionCanceledException", [CancellationReason(code="TransactionConflict")])
    tokens = _record_tokens(monkeypatch, [conflict])
    _labelled().commit()
    assert len(tokens) == 2 and tokens[0] != tokens[1]


def test_a_failed_condition_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    failed: Any = _Failure("TransactionCanceledException", [CancellationReason(code="ConditionalCheckFailed")])
    tokens = _record_tokens(monkeypatch, [failed])
    with pytest.raises(TransactionCancelled) as cancelled:
        _labelled().commit()
    assert cancelled.value.failed("only") and len(tokens) == 1


def test_error_code_tolerates_errors_without_an_answer() -> None:
    from botocore.exceptions import ReadTimeoutError
    from pynamodb.exceptions import UpdateError

    timed_out = UpdateError("failed", ReadTimeoutError(endpoint_url="http://dynamodb"))
    assert timed_out.cause is not None and transactions.error_code(timed_out) is None
    assert transactions.outcome_unknown(timed_out)
    refused = UpdateError("failed", ClientError({"Error": {"Code": "ConditionalCheckFailedException"}}, "UpdateItem"))
    assert transactions.error_code(refused) == "ConditionalCheckFailedException"
    assert not transactions.outcome_unknown(refused)
    assert transactions.error_code(ValueError("not DynamoDB")) is None


def test_retries_that_run_out_say_whether_the_write_may_have_been_applied(monkeypatch: pytest.MonkeyPatch) -> None:
    conflict: BaseException = _Failure("TransactionCanceledException", [CancellationReason(code="TransactionConflict")])
    unknown: BaseException = _Failure("InternalServerError", [])
    _record_tokens(monkeypatch, [conflict] * 6)
    with pytest.raises(TemporarilyUnavailable):
        _labelled().commit()
    _record_tokens(monkeypatch, [conflict] * 5 + [unknown])
    with pytest.raises(OutcomeUnknown):
        _labelled().commit()
    _record_tokens(monkeypatch, [unknown] * 5 + [conflict])  # a cancellation settles it: nothing applied
    with pytest.raises(TemporarilyUnavailable):
        _labelled().commit()
