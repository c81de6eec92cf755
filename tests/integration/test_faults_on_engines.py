"""The fault layer and the engine selection, through NanoGen's own connection, on either engine.

``make test`` runs this module on moto and again on DynamoDB Local
(``NANOGEN_TEST_DYNAMODB=local``); the ``aws`` fixture checks the money
invariants after each test.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest

from chalicelib import aws, money, transactions
from chalicelib.runtime import ready
from tests.conftest import ON_DYNAMODB_LOCAL
from tests.faults import Faults
from tests.money_helpers import ALICE, balance, start

pytestmark = pytest.mark.usefixtures("aws")


def test_only_dynamodb_goes_to_the_selected_engine() -> None:
    ready()
    dynamodb: Any = transactions.shared_connection().client
    headers = dynamodb.list_tables()["ResponseMetadata"]["HTTPHeaders"]
    if ON_DYNAMODB_LOCAL:
        assert dynamodb.meta.endpoint_url == os.environ["AWS_ENDPOINT_URL_DYNAMODB"]
        assert aws.client("dynamodb").meta.endpoint_url == os.environ["AWS_ENDPOINT_URL_DYNAMODB"]
        assert "jetty" in headers.get("server", "").lower()  # DynamoDB Local's HTTP server, not moto
    else:
        assert "amazonaws.com" in dynamodb.meta.endpoint_url
        assert headers.get("server") == "amazon.com"  # moto's answer
    assert "amazonaws.com" in aws.client("sqs").meta.endpoint_url
    assert "amazonaws.com" in aws.client("s3").meta.endpoint_url


def test_a_charge_whose_response_is_lost_is_applied_once(faults: Faults) -> None:
    """botocore retries the TransactWriteItems with its token; DynamoDB answers it from the token."""
    settings = ready()
    money.register(ALICE, settings)  # the charge is then the only transaction
    lost = faults.lose_response("TransactWriteItems")
    start(ALICE, settings)
    assert lost.fired == 1
    assert len(faults.replayed) == 1
    assert balance(ALICE.user_id) == 9


def test_an_unknown_outcome_is_retried_under_the_same_token(faults: Faults) -> None:
    """Applied, then 5xx on every botocore attempt: ``Transaction.commit`` retries with the same token."""
    settings = ready()
    money.register(ALICE, settings)  # the charge is then the only transaction
    failing = faults.server_error("TransactWriteItems", after_apply=True, times=4)
    start(ALICE, settings)
    assert failing.fired == 4
    assert balance(ALICE.user_id) == 9
    charges = [call for call in faults.calls if call.operation == "TransactWriteItems"][1:]  # after register
    assert len(charges) == 5  # 4 botocore attempts, then commit's own retry
    assert len({call.token for call in charges}) == 1
    assert len(faults.replayed) == 4


def test_a_charge_timing_out_on_every_botocore_attempt_is_retried_by_commit_under_the_same_token(
    faults: Faults,
) -> None:
    """Issue 12 #3: no answer is an unknown outcome, not an ``AttributeError`` from PynamoDB's error code."""
    settings = ready()
    money.register(ALICE, settings)
    timing_out = faults.time_out("TransactWriteItems", times=4)
    start(ALICE, settings)
    assert timing_out.fired == 4
    charges = [call for call in faults.calls if call.operation == "TransactWriteItems"][1:]
    assert len(charges) == 5 and len({call.token for call in charges}) == 1
    assert balance(ALICE.user_id) == 9


def test_a_conflicting_charge_is_retried_under_a_new_token(faults: Faults) -> None:
    settings = ready()
    money.register(ALICE, settings)  # the charge is then the only transaction
    conflict = faults.conflict("TransactWriteItems", times=2)
    start(ALICE, settings)
    assert conflict.fired == 2
    assert len({call.token for call in conflict.fired_on}) == 2
    assert balance(ALICE.user_id) == 9


def _add_twice_with_one_token(by: tuple[int, int] = (1, 1)) -> Any:
    """The same TransactWriteItems token twice on the guards table; returns the counter (or the error)."""
    from botocore.exceptions import ClientError

    settings = ready()
    client = aws.client("dynamodb")
    key = {"pk": {"S": "test#token"}}
    outcome: Any = None
    token = str(uuid.uuid4())  # DynamoDB Local remembers tokens across tests (one shared database)
    for amount in by:
        try:
            client.transact_write_items(
                ClientRequestToken=token,
                TransactItems=[
                    {
                        "Update": {
                            "TableName": settings.guards_table,
                            "Key": key,
                            "UpdateExpression": "ADD used :n SET expires_at = :t",
                            "ExpressionAttributeValues": {":n": {"N": str(amount)}, ":t": {"N": "1"}},
                        }
                    }
                ],
            )
        except ClientError as error:
            outcome = error.response["Error"]["Code"]
    item = client.get_item(TableName=settings.guards_table, Key=key, ConsistentRead=True)["Item"]
    return outcome or int(item["used"]["N"])


def test_the_engines_differ_on_client_request_tokens() -> None:
    """Why the layer models tokens: DynamoDB Local applies a repeated token once, as AWS does; moto twice."""
    assert _add_twice_with_one_token() == (1 if ON_DYNAMODB_LOCAL else 2)


def test_with_the_layer_a_repeated_token_is_applied_once_on_either_engine(faults: Faults) -> None:
    assert _add_twice_with_one_token() == 1
    assert len(faults.replayed) == 1


def test_the_layer_and_dynamodb_local_agree_on_a_mismatched_token(faults: Faults) -> None:
    assert _add_twice_with_one_token(by=(1, 2)) == "IdempotentParameterMismatchException"
