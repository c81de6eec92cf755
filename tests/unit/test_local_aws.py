"""The local AWS endpoint must be exact under concurrency, as DynamoDB is."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

pytestmark = pytest.mark.emulator

STARTING_BALANCE = 200
THREADS = 16
ATTEMPTS = 400


def test_conditional_decrements_never_exceed_the_balance(emulator: str) -> None:
    client = boto3.client(
        "dynamodb", endpoint_url=emulator, config=Config(max_pool_connections=THREADS, retries={"max_attempts": 1})
    )
    client.create_table(
        TableName="counter",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.put_item(TableName="counter", Item={"pk": {"S": "x"}, "n": {"N": str(STARTING_BALANCE)}})

    def decrement(_: int) -> bool:
        try:
            client.update_item(
                TableName="counter",
                Key={"pk": {"S": "x"}},
                UpdateExpression="SET n = n - :one",
                ConditionExpression="n >= :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
            )
            return True
        except ClientError as error:
            assert error.response["Error"]["Code"] == "ConditionalCheckFailedException"
            return False

    with ThreadPoolExecutor(THREADS) as pool:
        successes = sum(pool.map(decrement, range(ATTEMPTS)))

    final = int(client.get_item(TableName="counter", Key={"pk": {"S": "x"}})["Item"]["n"]["N"])
    assert successes == STARTING_BALANCE
    assert final == 0
