"""Why the local AWS serializes requests: moto's threaded server loses conditional updates.

    .venv/bin/python -m bench.moto_concurrency [--threads 16] [--attempts 4000] [--balance 2000]

Races conditional decrements (``SET n = n - 1 IF n >= 1``) on one item,
once against moto's own ``ThreadedMotoServer`` and once against
``local.aws_server`` (one request at a time). A correct DynamoDB
acknowledges exactly ``balance`` decrements.
"""

from __future__ import annotations

import argparse
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from local import aws_server

ROOT = Path(__file__).resolve().parent.parent


def race(endpoint: str, threads: int, attempts: int, balance: int) -> tuple[int, int, int]:
    """Race ``attempts`` conditional decrements of a counter at ``balance``.

    Returns (acknowledged, final value, errors other than ConditionalCheckFailed);
    ``tests/unit/test_local_aws.py`` runs the same race against ``local.aws_server``.
    """
    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=Config(max_pool_connections=threads, retries={"max_attempts": 1}),
    )
    client.create_table(
        TableName="counter",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.put_item(TableName="counter", Item={"pk": {"S": "x"}, "n": {"N": str(balance)}})
    other_errors = 0

    def decrement(_: int) -> bool:
        nonlocal other_errors
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
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                other_errors += 1
            return False

    with ThreadPoolExecutor(threads) as pool:
        acknowledged = sum(pool.map(decrement, range(attempts)))
    final = int(client.get_item(TableName="counter", Key={"pk": {"S": "x"}})["Item"]["n"]["N"])
    return acknowledged, final, other_errors


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--attempts", type=int, default=4000)
    parser.add_argument("--balance", type=int, default=2000)
    args = parser.parse_args()

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log per request

    threaded = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    threaded.start()
    host, port = threaded.get_host_and_port()
    acknowledged, final, _ = race(f"http://{host}:{port}", args.threads, args.attempts, args.balance)
    threaded.stop()
    print(f"moto ThreadedMotoServer:  {acknowledged} decrements acknowledged for a balance of {args.balance}, "
          f"final value {final}")  # fmt: skip

    process, endpoint = aws_server.start()
    try:
        acknowledged, final, _ = race(endpoint, args.threads, args.attempts, args.balance)
    finally:
        process.terminate()
        process.wait()
    print(f"local.aws_server:         {acknowledged} decrements acknowledged for a balance of {args.balance}, "
          f"final value {final}")  # fmt: skip
    print(f"\nreproduce: .venv/bin/python -m bench.moto_concurrency --threads {args.threads} "
          f"--attempts {args.attempts} --balance {args.balance}")  # fmt: skip


if __name__ == "__main__":
    main()
