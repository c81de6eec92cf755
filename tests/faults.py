"""DynamoDB misbehaving as it does at scale, on demand: a botocore-level fault-injection layer.

moto (and a quiet DynamoDB Local) answer every call at once and correctly;
AWS sometimes does not. With the layer switched on, a test can make any
chosen DynamoDB call:

* lose its response after the write was applied (``lose_response``: the
  request really goes to the engine, then the caller gets botocore's
  ``ReadTimeoutError``, or ``ConnectionClosedError``);
* time out before anything was applied (``time_out``; ``connect=True``
  gives ``ConnectTimeoutError``);
* answer an error as DynamoDB does on the wire (``conflict``,
  ``throughput_exceeded``, ``throttle``, ``server_error``, or any
  ``answer(code)``), before applying or, with ``after_apply=True``, after;
* for ``TransactWriteItems``, be cancelled with chosen reasons (``cancel``).

It also honours ``ClientRequestToken`` as DynamoDB does and moto does not:
a ``TransactWriteItems`` whose token was applied less than ten minutes ago
is answered with the same answer and not applied again if its body is the
same, and with ``IdempotentParameterMismatchException`` if it is not. A
token whose request was not applied (cancelled, failed, never sent) leaves
nothing behind, so its retry is a first attempt. ``faults.honour_tokens =
False`` turns that off: the retry goes to the engine, which on moto applies
it again (DynamoDB Local answers it from the token itself).

Using it (the ``faults`` fixture; rules are tried in the order given, the
first that fires answers)::

    def test_lost_claim(stack, faults):
        lost = faults.lose_response("UpdateItem", table="generations")
        ...
        assert lost.fired == 1

Choosing calls: ``operation`` (a name or a collection of names),
``table`` (the real name, or the logical one such as ``"generations"``,
matching ``*-generations``), ``where`` (a predicate on the ``Call``: its
wire ``params`` as DynamoDB receives them), ``nth`` (the first matching call
that fires, 1-based) and ``times`` (how many consecutive matching calls
fire from there, ``None`` for every one).

Retries: the layer sits where botocore sends a request, *inside* botocore's
retry loop, so every attempt on the wire is one call here, as it is for
AWS. botocore retries (standard mode) timeouts, closed connections, 5xx,
``ThrottlingException``, ``ProvisionedThroughputExceededException`` and
``TransactionInProgressException``; PynamoDB 6 has no retry loop of its own
and gives botocore ``total_max_attempts = 1 + max_retry_attempts`` (4 for
NanoGen's connection), ``chalicelib.aws`` clients make 3 attempts. So a
one-shot (``times=1``) retryable fault is absorbed by botocore's retry, and
the test sees what the *retry* does (a lost conditional write's retry fails
its own condition; a lost transaction's retry is answered from the token);
to make such a fault reach the application, fire it on every attempt
(``times=None``, or ``times=4``). ``TransactionConflictException``,
cancellations and ``IdempotentParameterMismatchException`` are not retried
by botocore; ``chalicelib.transactions.Transaction.commit`` retries its own
(a new token after a cancellation, the same token after an unknown
outcome). While the layer is on, botocore's backoff sleeps are cut to
milliseconds; the number of attempts is unchanged.

Outside pytest: ``with injected() as faults: ...``.
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.endpoint import Endpoint, convert_to_response_dict
from botocore.exceptions import ConnectionClosedError, ConnectTimeoutError, ReadTimeoutError
from botocore.retries import standard

TOKEN_WINDOW_SECONDS = 600  # DynamoDB's idempotency window for ClientRequestToken
_JSON_ERROR_PREFIX = "com.amazonaws.dynamodb.v20120810#"
_STATUS = {"InternalServerError": 500, "ServiceUnavailable": 503}
_MESSAGES = {
    "TransactionConflictException": "Transaction is ongoing for the item",
    "ProvisionedThroughputExceededException": (
        "The level of configured provisioned throughput for the table was exceeded. "
        "Consider increasing your provisioning level with the UpdateTable API."
    ),
    "ThrottlingException": "Throughput exceeds the current capacity for one or more global secondary indexes.",
    "InternalServerError": "Internal server error",
    "ConditionalCheckFailedException": "The conditional request failed",
    "ServiceUnavailable": "Service unavailable",
    "IdempotentParameterMismatchException": (
        "The request uses the same client token as a previous, but non-identical request."
    ),
}
_WRITE_KINDS = ("ConditionCheck", "Put", "Update", "Delete")

Outcome = tuple[Any, Any]  # what Endpoint._do_get_response returns: ((http_response, parsed), None) or (None, error)


@dataclass(frozen=True)
class Call:
    """One DynamoDB request on the wire (each botocore attempt is its own call)."""

    operation: str
    params: dict[str, Any]  # the JSON body, as DynamoDB receives it (typed values: {"S": ...})
    number: int  # 1-based among every DynamoDB call the layer saw
    attempt: int  # botocore's attempt number for this API call, 1-based

    @property
    def tables(self) -> tuple[str, ...]:
        if "TableName" in self.params:
            return (str(self.params["TableName"]),)
        if "RequestItems" in self.params:
            return tuple(self.params["RequestItems"])
        names: list[str] = []
        for item in self.params.get("TransactItems", []):
            names.extend(str(body["TableName"]) for body in item.values())
        return tuple(dict.fromkeys(names))

    @property
    def token(self) -> str | None:
        token = self.params.get("ClientRequestToken")
        return str(token) if token else None


# A fault: given the call, a way to really send it, and the endpoint URL, what the caller gets.
Action = Callable[[Call, Callable[[], Any], str], Any]


@dataclass
class Rule:
    """One fault: which calls it picks, and what happens to them. ``fired`` counts the hits."""

    action: Action
    operations: frozenset[str] | None
    table: str | None
    where: Callable[[Call], bool] | None
    nth: int
    times: int | None
    description: str
    matched: int = 0
    fired_on: list[Call] = field(default_factory=list)

    @property
    def fired(self) -> int:
        return len(self.fired_on)

    def picks(self, call: Call) -> bool:
        """Whether this call matches (counted) and falls in the rule's nth..nth+times window."""
        if self.operations is not None and call.operation not in self.operations:
            return False
        if self.table is not None and not any(_same_table(name, self.table) for name in call.tables):
            return False
        if self.where is not None and not self.where(call):
            return False
        self.matched += 1
        if self.matched < self.nth:
            return False
        return self.times is None or self.matched < self.nth + self.times


def _same_table(name: str, wanted: str) -> bool:
    return name == wanted or name.endswith(f"-{wanted}")


@dataclass
class _Applied:
    body: dict[str, Any]
    http_response: Any  # its body was read already; only the parsed answer is copied per replay
    parsed: dict[str, Any]
    at: float

    def answer(self) -> Outcome:
        return (self.http_response, copy.deepcopy(self.parsed)), None


class Faults:
    """The rules and the ClientRequestToken memory of one test (see the module's docstring)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.rules: list[Rule] = []
        self.calls: list[Call] = []
        self.replayed: list[Call] = []  # TransactWriteItems answered from the token, not applied again
        self.paused = False
        # False: a retried TransactWriteItems goes to the engine (moto applies it again; DynamoDB Local does not).
        self.honour_tokens = True
        self._tokens: dict[str, _Applied] = {}
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    # -- the faults ------------------------------------------------------------------

    def lose_response(
        self, operation: str | Collection[str] | None = None, *, error: str = "read_timeout", **select: Any
    ) -> Rule:
        """The request is applied, then its response is lost (``error``: read_timeout | connection_closed)."""
        make = {"read_timeout": ReadTimeoutError, "connection_closed": ConnectionClosedError}[error]

        def action(call: Call, send: Callable[[], Any], url: str) -> Any:
            send()
            return None, make(endpoint_url=url, error="injected: response lost after the write was applied")

        return self._add(action, operation, f"lose the response ({error}) after applying", **select)

    def time_out(self, operation: str | Collection[str] | None = None, *, connect: bool = False, **select: Any) -> Rule:
        """The request times out before DynamoDB applied it (``connect``: it never got a connection)."""

        def action(call: Call, send: Callable[[], Any], url: str) -> Any:
            if connect:
                return None, ConnectTimeoutError(endpoint_url=url, error="injected: connect timeout")
            return None, ReadTimeoutError(endpoint_url=url, error="injected: timed out before applying")

        return self._add(action, operation, "time out before applying", **select)

    def answer(
        self,
        code: str,
        operation: str | Collection[str] | None = None,
        *,
        after_apply: bool = False,
        message: str | None = None,
        status: int | None = None,
        **select: Any,
    ) -> Rule:
        """Answer with DynamoDB's error ``code`` (as on the wire), before applying or after."""
        when = "after applying" if after_apply else "before applying"
        action = _error_answer(code, after_apply=after_apply, message=message, status=status)
        return self._add(action, operation, f"answer {code} {when}", **select)

    def conflict(self, operation: str | Collection[str] | None = None, *, item: int = 0, **select: Any) -> Rule:
        """Another transaction holds the item: ``TransactionConflictException`` for a plain
        request; for ``TransactWriteItems`` a cancellation whose reason at ``item`` is
        ``TransactionConflict``, as DynamoDB reports it."""
        plain = _error_answer("TransactionConflictException")
        transact = _cancellation(lambda call: {item: "TransactionConflict"})

        def action(call: Call, send: Callable[[], Any], url: str) -> Any:
            return (transact if call.operation == "TransactWriteItems" else plain)(call, send, url)

        return self._add(action, operation, "transaction conflict", **select)

    def cancel(self, reasons: dict[int, str], **select: Any) -> Rule:
        """Cancel a ``TransactWriteItems``: ``reasons`` maps item positions (wire order) to codes."""
        return self._add(_cancellation(lambda call: reasons), "TransactWriteItems", f"cancel {reasons}", **select)

    def throughput_exceeded(self, operation: str | Collection[str] | None = None, **select: Any) -> Rule:
        return self.answer("ProvisionedThroughputExceededException", operation, **select)

    def throttle(self, operation: str | Collection[str] | None = None, **select: Any) -> Rule:
        return self.answer("ThrottlingException", operation, **select)

    def server_error(
        self, operation: str | Collection[str] | None = None, *, after_apply: bool = False, **select: Any
    ) -> Rule:
        """HTTP 500 ``InternalServerError``; with ``after_apply`` the write was applied all the same."""
        return self.answer("InternalServerError", operation, after_apply=after_apply, **select)

    @contextmanager
    def suspended(self) -> Iterator[None]:
        """No fault fires inside (reading the books back); the token memory still applies."""
        was, self.paused = self.paused, True
        try:
            yield
        finally:
            self.paused = was

    def clear(self) -> None:
        """Drop every rule (the token memory stays, as DynamoDB's would)."""
        with self._lock:
            self.rules.clear()

    # -- building rules -------------------------------------------------------------

    def _add(
        self,
        action: Action,
        operation: str | Collection[str] | None,
        description: str,
        *,
        table: str | None = None,
        where: Callable[[Call], bool] | None = None,
        nth: int = 1,
        times: int | None = 1,
    ) -> Rule:
        if nth < 1 or (times is not None and times < 1):
            raise ValueError("nth and times count from 1")
        operations = None if operation is None else frozenset([operation] if isinstance(operation, str) else operation)
        rule = Rule(action, operations, table, where, nth, times, description)
        with self._lock:
            self.rules.append(rule)
        return rule

    # -- the wire ------------------------------------------------------------------

    def handle(self, endpoint: Any, request: Any, operation_model: Any, context: dict[str, Any]) -> Any:
        """One attempt of one DynamoDB call: pick a rule, apply token semantics, send."""
        body = json.loads(request.body or b"{}")
        call = Call(operation_model.name, body, next(self._numbers), int(context.get("retries", {}).get("attempt", 1)))
        with self._lock:
            self.calls.append(call)
            rule = None if self.paused else next((each for each in self.rules if each.picks(call)), None)
            if rule is not None:
                rule.fired_on.append(call)

        def send() -> Outcome:
            return self._send(endpoint, request, operation_model, context, call)

        if rule is None:
            return send()
        return rule.action(call, send, str(request.url))

    def _send(self, endpoint: Any, request: Any, operation_model: Any, context: dict[str, Any], call: Call) -> Outcome:
        token = call.token if call.operation == "TransactWriteItems" and self.honour_tokens else None
        if token is not None:
            with self._lock:
                applied = self._tokens.get(token)
                if applied is not None and self.clock() - applied.at >= TOKEN_WINDOW_SECONDS:
                    del self._tokens[token]
                    applied = None
            if applied is not None:
                if applied.body != call.params:
                    document = {
                        "__type": _JSON_ERROR_PREFIX + "IdempotentParameterMismatchException",
                        "message": _MESSAGES["IdempotentParameterMismatchException"],
                    }
                    return _parsed(endpoint, operation_model, _Canned(str(request.url), 400, document))
                self.replayed.append(call)
                return applied.answer()
        outcome = _ORIGINAL(endpoint, request, operation_model, context)
        if token is not None and _succeeded(outcome):
            with self._lock:
                http_response, parsed = outcome[0]
                self._tokens[token] = _Applied(call.params, http_response, copy.deepcopy(parsed), self.clock())
        return outcome


def _error_answer(
    code: str, *, after_apply: bool = False, message: str | None = None, status: int | None = None
) -> Action:
    document = {"__type": _JSON_ERROR_PREFIX + code, "message": message or _MESSAGES.get(code, code)}
    http_status = status or _STATUS.get(code, 400)

    def action(call: Call, send: Callable[[], Any], url: str) -> Any:
        if after_apply:
            send()
        return _Canned(url, http_status, document)

    return action


def _cancellation(reasons_for: Callable[[Call], dict[int, str]]) -> Action:
    def action(call: Call, send: Callable[[], Any], url: str) -> Any:
        chosen = reasons_for(call)
        count = len(call.params.get("TransactItems", []))
        codes = [chosen.get(position, "None") for position in range(count)]
        listed = ", ".join(codes)
        reasons = [
            {"Code": code} if code == "None" else {"Code": code, "Message": _MESSAGES.get(code + "Exception", code)}
            for code in codes
        ]
        document = {
            "__type": _JSON_ERROR_PREFIX + "TransactionCanceledException",
            "Message": f"Transaction cancelled, please refer cancellation reasons for specific reasons [{listed}]",
            "CancellationReasons": reasons,
        }
        return _Canned(url, 400, document)

    return action


def _succeeded(outcome: Outcome) -> bool:
    response, error = outcome
    return error is None and response is not None and response[0].status_code < 300


class _Raw:
    """The raw stream botocore reads an ``AWSResponse`` body from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


class _Canned:
    """An answer built by the layer; ``_parsed`` turns it into botocore's outcome."""

    def __init__(self, url: str, status: int, document: dict[str, Any]) -> None:
        headers: Any = {"x-amzn-requestid": "INJECTED", "content-type": "application/x-amz-json-1.0"}
        self.response = AWSResponse(url, status, headers, _Raw(json.dumps(document).encode()))


def _parsed(endpoint: Any, operation_model: Any, canned: _Canned) -> Outcome:
    """What ``Endpoint._do_get_response`` makes of an HTTP answer (the same parsing steps)."""
    http_response = canned.response
    response_dict = convert_to_response_dict(http_response, operation_model)
    parser = endpoint._response_parser_factory.create_parser(operation_model.service_model.resolved_protocol)
    parsed = parser.parse(response_dict, operation_model.output_shape)
    if http_response.status_code >= 300:
        endpoint._add_modeled_error_fields(response_dict, parsed, operation_model, parser)
    return (http_response, parsed), None


_ENDPOINT: Any = Endpoint  # botocore-stubs do not type its private methods
_ORIGINAL: Callable[..., Outcome] = _ENDPOINT._do_get_response
_active: Faults | None = None
_install_lock = threading.Lock()


def _do_get_response(self: Any, request: Any, operation_model: Any, context: dict[str, Any]) -> Outcome:
    faults = _active
    if faults is None or operation_model.service_model.service_name != "dynamodb":
        return _ORIGINAL(self, request, operation_model, context)
    outcome = faults.handle(self, request, operation_model, context)
    if isinstance(outcome, _Canned):
        return _parsed(self, operation_model, outcome)
    return outcome


def _short_delay(self: Any, context: Any) -> float:
    return 0.001 * int(getattr(context, "attempt_number", 1))


@contextmanager
def injected(*, clock: Callable[[], float] = time.monotonic) -> Iterator[Faults]:
    """Switch the layer on for every DynamoDB client (existing ones too) until the block ends."""
    global _active
    with _install_lock:
        if _active is not None:
            raise RuntimeError("fault injection is already on")
        faults = Faults(clock=clock)
        original_delay = standard.ExponentialBackoff.delay_amount
        _ENDPOINT._do_get_response = _do_get_response
        standard.ExponentialBackoff.delay_amount = _short_delay  # type: ignore[method-assign]
        _active = faults
    try:
        yield faults
    finally:
        with _install_lock:
            _active = None
            _ENDPOINT._do_get_response = _ORIGINAL
            standard.ExponentialBackoff.delay_amount = original_delay  # type: ignore[method-assign]


@contextmanager
def suspended() -> Iterator[None]:
    """No fault fires inside, if the layer is on at all (the fixtures read the books back so)."""
    faults = _active
    if faults is None:
        yield
        return
    with faults.suspended():
        yield


@pytest.fixture
def faults() -> Iterator[Faults]:
    """The fault-injection layer, on for this test (see ``tests/faults.py``)."""
    with injected() as layer:
        yield layer
