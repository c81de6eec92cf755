"""The fault-injection layer itself (``tests/faults.py``), on moto with a plain botocore client.

Each fault is checked for what the caller sees *and* what was applied, with
botocore's retries off (one attempt: the fault as it reaches a caller) and
on (standard mode, as NanoGen's clients run).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, ConnectTimeoutError, ReadTimeoutError

from tests.faults import TOKEN_WINDOW_SECONDS, Faults

TABLE = "nanogen-test-counters"
OTHER = "nanogen-test-others"


@pytest.fixture
def dynamodb(clean_env: None) -> Iterator[Any]:
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        for name in (TABLE, OTHER):
            client.create_table(
                TableName=name,
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        yield client


def client_with(attempts: int) -> Any:
    return boto3.client(
        "dynamodb", region_name="us-east-1", config=Config(retries={"mode": "standard", "total_max_attempts": attempts})
    )


def count(client: Any, pk: str = "a", table: str = TABLE) -> int | None:
    item = client.get_item(TableName=table, Key={"pk": {"S": pk}}, ConsistentRead=True).get("Item")
    return None if item is None else int(item["n"]["N"])


def add_one(client: Any, pk: str = "a", table: str = TABLE) -> None:
    client.update_item(
        TableName=table,
        Key={"pk": {"S": pk}},
        UpdateExpression="ADD n :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )


def create_once(client: Any, pk: str = "a") -> None:
    client.put_item(
        TableName=TABLE,
        Item={"pk": {"S": pk}, "n": {"N": "1"}},
        ConditionExpression="attribute_not_exists(pk)",
    )


def transact_add(client: Any, token: str, *, by: int = 1, pk: str = "a") -> None:
    client.transact_write_items(
        ClientRequestToken=token,
        TransactItems=[
            {
                "Update": {
                    "TableName": TABLE,
                    "Key": {"pk": {"S": pk}},
                    "UpdateExpression": "ADD n :by",
                    "ExpressionAttributeValues": {":by": {"N": str(by)}},
                }
            }
        ],
    )


def code_of(error: ClientError) -> str:
    return str(error.response["Error"]["Code"])


# --- Lost responses and timeouts -----------------------------------------------------------


def test_a_lost_response_comes_after_the_write_was_applied(dynamodb: Any, faults: Faults) -> None:
    lost = faults.lose_response("UpdateItem")
    with pytest.raises(ReadTimeoutError):
        add_one(client_with(1))
    assert count(dynamodb) == 1
    assert lost.fired == 1


def test_a_lost_response_can_be_a_closed_connection(dynamodb: Any, faults: Faults) -> None:
    faults.lose_response("UpdateItem", error="connection_closed")
    with pytest.raises(ConnectionClosedError):
        add_one(client_with(1))
    assert count(dynamodb) == 1


def test_botocore_retries_a_lost_conditional_write_into_its_own_condition(dynamodb: Any, faults: Faults) -> None:
    """Issue 12 #6: the retry of an applied conditional put fails the condition the first attempt satisfied."""
    faults.lose_response("PutItem")
    with pytest.raises(ClientError) as raised:
        create_once(client_with(4))
    assert code_of(raised.value) == "ConditionalCheckFailedException"
    assert count(dynamodb) == 1
    assert [call.attempt for call in faults.calls if call.operation == "PutItem"] == [1, 2]


def test_a_timeout_before_applying_changes_nothing(dynamodb: Any, faults: Faults) -> None:
    timed_out = faults.time_out("UpdateItem")
    with pytest.raises(ReadTimeoutError):
        add_one(client_with(1))
    assert count(dynamodb) is None
    assert timed_out.fired == 1


def test_a_connect_timeout_changes_nothing(dynamodb: Any, faults: Faults) -> None:
    faults.time_out("UpdateItem", connect=True)
    with pytest.raises(ConnectTimeoutError):
        add_one(client_with(1))
    assert count(dynamodb) is None


def test_botocore_retries_a_timeout_and_the_retry_applies_once(dynamodb: Any, faults: Faults) -> None:
    faults.time_out("UpdateItem")
    add_one(client_with(4))
    assert count(dynamodb) == 1


# --- Error answers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inject", "code", "status"),
    [
        ("conflict", "TransactionConflictException", 400),
        ("throughput_exceeded", "ProvisionedThroughputExceededException", 400),
        ("throttle", "ThrottlingException", 400),
        ("server_error", "InternalServerError", 500),
    ],
)
def test_an_error_answer_is_dynamodbs_and_changes_nothing(
    dynamodb: Any, faults: Faults, inject: str, code: str, status: int
) -> None:
    getattr(faults, inject)("UpdateItem", times=None)
    with pytest.raises(ClientError) as raised:
        add_one(client_with(1))
    assert code_of(raised.value) == code
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert count(dynamodb) is None


@pytest.mark.parametrize("inject", ["throughput_exceeded", "throttle", "server_error"])
def test_botocore_retries_throttling_and_5xx_until_its_attempts_run_out(
    dynamodb: Any, faults: Faults, inject: str
) -> None:
    rule = getattr(faults, inject)("UpdateItem", times=None)
    with pytest.raises(ClientError):
        add_one(client_with(3))
    assert rule.fired == 3
    assert count(dynamodb) is None


def test_botocore_does_not_retry_a_conflict(dynamodb: Any, faults: Faults) -> None:
    rule = faults.conflict("UpdateItem", times=None)
    with pytest.raises(ClientError):
        add_one(client_with(4))
    assert rule.fired == 1


def test_a_one_shot_throttle_is_absorbed_by_botocores_retry(dynamodb: Any, faults: Faults) -> None:
    faults.throttle("UpdateItem")
    add_one(client_with(4))
    assert count(dynamodb) == 1


def test_a_5xx_after_applying_leaves_the_write_applied(dynamodb: Any, faults: Faults) -> None:
    faults.server_error("UpdateItem", after_apply=True)
    with pytest.raises(ClientError) as raised:
        add_one(client_with(1))
    assert code_of(raised.value) == "InternalServerError"
    assert count(dynamodb) == 1


def test_a_conflict_on_a_transaction_is_a_cancellation_naming_the_item(dynamodb: Any, faults: Faults) -> None:
    faults.conflict("TransactWriteItems")
    with pytest.raises(ClientError) as raised:
        transact_add(client_with(1), str(uuid.uuid4()))
    assert code_of(raised.value) == "TransactionCanceledException"
    assert [r["Code"] for r in raised.value.response["CancellationReasons"]] == ["TransactionConflict"]
    assert count(dynamodb) is None


def test_a_transaction_can_be_cancelled_with_chosen_reasons(dynamodb: Any, faults: Faults) -> None:
    faults.cancel({1: "ConditionalCheckFailed"})
    with pytest.raises(ClientError) as raised:
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "x"}}}},
                {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "y"}}}},
            ]
        )
    assert [r["Code"] for r in raised.value.response["CancellationReasons"]] == ["None", "ConditionalCheckFailed"]
    assert dynamodb.scan(TableName=TABLE)["Count"] == 0


# --- Choosing the call --------------------------------------------------------------------------


def test_nth_and_times_choose_which_matching_calls_fire(dynamodb: Any, faults: Faults) -> None:
    rule = faults.time_out("UpdateItem", nth=2, times=2)
    client = client_with(1)
    outcomes = []
    for _ in range(5):
        try:
            add_one(client)
            outcomes.append("ok")
        except ReadTimeoutError:
            outcomes.append("timeout")
    assert outcomes == ["ok", "timeout", "timeout", "ok", "ok"]
    assert rule.fired == 2
    assert count(dynamodb) == 3


def test_a_table_matches_by_its_logical_name(dynamodb: Any, faults: Faults) -> None:
    faults.time_out("UpdateItem", table="others", times=None)
    client = client_with(1)
    add_one(client)
    with pytest.raises(ReadTimeoutError):
        add_one(client, table=OTHER)
    assert count(dynamodb) == 1
    assert count(dynamodb, table=OTHER) is None


def test_a_predicate_sees_the_wire_parameters(dynamodb: Any, faults: Faults) -> None:
    faults.conflict("UpdateItem", where=lambda call: call.params["Key"]["pk"]["S"] == "b", times=None)
    client = client_with(1)
    add_one(client, "a")
    with pytest.raises(ClientError):
        add_one(client, "b")
    assert (count(dynamodb, "a"), count(dynamodb, "b")) == (1, None)


def test_suspended_fires_nothing(dynamodb: Any, faults: Faults) -> None:
    rule = faults.time_out("UpdateItem", times=None)
    client = client_with(1)
    with faults.suspended():
        add_one(client)
    assert rule.fired == 0
    with pytest.raises(ReadTimeoutError):
        add_one(client)
    assert count(dynamodb) == 1


# --- ClientRequestToken, as DynamoDB honours it -------------------------------------------------


def test_same_token_and_body_is_answered_again_but_applied_once(dynamodb: Any, faults: Faults) -> None:
    token = str(uuid.uuid4())
    client = client_with(1)
    transact_add(client, token)
    transact_add(client, token)
    assert count(dynamodb) == 1
    assert len(faults.replayed) == 1


def test_same_token_with_another_body_is_a_mismatch(dynamodb: Any, faults: Faults) -> None:
    token = str(uuid.uuid4())
    client = client_with(1)
    transact_add(client, token, by=1)
    with pytest.raises(ClientError) as raised:
        transact_add(client, token, by=2)
    assert code_of(raised.value) == "IdempotentParameterMismatchException"
    assert count(dynamodb) == 1


def test_a_token_is_remembered_for_ten_minutes(dynamodb: Any, faults: Faults) -> None:
    now = [1000.0]
    faults.clock = lambda: now[0]
    token = str(uuid.uuid4())
    client = client_with(1)
    transact_add(client, token)
    now[0] += TOKEN_WINDOW_SECONDS - 1
    transact_add(client, token)
    assert count(dynamodb) == 1
    now[0] += 2
    transact_add(client, token)
    assert count(dynamodb) == 2


def test_a_lost_transaction_response_is_retried_by_botocore_and_applied_once(dynamodb: Any, faults: Faults) -> None:
    lost = faults.lose_response("TransactWriteItems")
    transact_add(client_with(4), str(uuid.uuid4()))
    assert lost.fired == 1
    assert count(dynamodb) == 1
    assert len(faults.replayed) == 1


def test_a_token_whose_request_was_cancelled_is_a_new_request(dynamodb: Any, faults: Faults) -> None:
    faults.conflict("TransactWriteItems")
    token = str(uuid.uuid4())
    client = client_with(1)
    with pytest.raises(ClientError):
        transact_add(client, token)
    transact_add(client, token)
    assert count(dynamodb) == 1
    assert faults.replayed == []


def test_without_the_layer_moto_applies_a_token_twice(dynamodb: Any) -> None:
    """Why the layer exists: moto ignores ClientRequestToken."""
    token = str(uuid.uuid4())
    transact_add(dynamodb, token)
    transact_add(dynamodb, token)
    assert count(dynamodb) == 2
