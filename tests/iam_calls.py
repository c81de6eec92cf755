"""What a function's DynamoDB calls need of its IAM role, read from the fault layer's record of the wire.

moto and DynamoDB Local check no IAM, so a new kind of call (a BatchGetItem,
an index Query) passes every test and fails in AWS with AccessDenied. A test
records the calls one function makes (``tests.faults``: ``faults.calls``) and
asserts that the role ``infra.template.policies`` gives that function allows
each of them, on its table (or the table's indexes).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from tests.faults import Call

_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}

Need = tuple[str, str, bool]  # (IAM action, logical table, on an index)


def needs(calls: Iterable[Call], settings: Any) -> set[Need]:
    from chalicelib.tables import table_names

    logical = {real: name for name, real in table_names(settings).items()}
    return {(action, logical[table], index) for action, table, index in _actions(calls)}


def _actions(calls: Iterable[Call]) -> Iterator[tuple[str, str, bool]]:
    for call in calls:
        params = call.params
        if call.operation in ("TransactWriteItems", "TransactGetItems"):
            for item in params["TransactItems"]:
                ((kind, body),) = item.items()
                yield f"dynamodb:{_TRANSACT_ACTIONS[kind]}", body["TableName"], False
        elif call.operation in ("BatchGetItem", "BatchWriteItem"):
            for table in params["RequestItems"]:
                yield f"dynamodb:{call.operation}", table, False
        else:
            yield f"dynamodb:{call.operation}", params["TableName"], "IndexName" in params


def not_allowed(function: str, needed: set[Need], stage: str = "dev") -> set[Need]:
    """The needs that ``function``'s role (a key of ``infra.template.policies``) does not grant."""
    from infra.resources import TABLE_LOGICAL_IDS
    from infra.template import policies

    statements = policies(stage)[function]

    def grants(action: str, table: str, index: bool) -> bool:
        logical_id = TABLE_LOGICAL_IDS[table]
        target: dict[str, Any] = (
            {"Fn::Sub": f"${{{logical_id}.Arn}}/index/*"} if index else {"Fn::GetAtt": [logical_id, "Arn"]}
        )
        for statement in statements:
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            if action in statement["Action"] and target in resources:
                return True
        return False

    return {need for need in needed if not grants(*need)}
