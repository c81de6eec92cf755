"""The deployment template: what `make package STAGE=...` produces, read back and checked.

Builds the real merged template with Chalice once per stage, runs cfn-lint
on it, and asserts the resources, wiring and IAM rules of the deployment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, TEST_ADMIN_TOKEN, TEST_BOT_TOKEN, TEST_WEBHOOK_SECRET

STAGES = ("dev", "prod")


@pytest.fixture(scope="module", params=STAGES)
def packaged(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    stage = request.param
    out = tmp_path_factory.mktemp(f"package-{stage}") / stage
    env = {
        **os.environ,
        "AWS_DEFAULT_REGION": "us-east-1",
        # Secrets present in the packaging environment must still not reach the template.
        "TELEGRAM_BOT_TOKEN": TEST_BOT_TOKEN,
        "TELEGRAM_WEBHOOK_SECRET": TEST_WEBHOOK_SECRET,
        "ADMIN_API_TOKEN": TEST_ADMIN_TOKEN,
        "AIML_API_KEY": "aiml-secret-key-for-the-template-test",
    }
    subprocess.run([sys.executable, "-m", "infra.package", stage, str(out)], cwd=ROOT, env=env, check=True)
    yield stage, out


def _template(packaged: tuple[str, Path]) -> dict[str, Any]:
    return json.loads((packaged[1] / "sam.json").read_text())


def _resources(packaged: tuple[str, Path]) -> dict[str, Any]:
    return _template(packaged)["Resources"]


def test_cfn_lint_passes(packaged: tuple[str, Path]) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), str(packaged[1] / "sam.json")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_tables_are_on_demand_encrypted_recoverable_with_ttl(packaged: tuple[str, Path]) -> None:
    resources = _resources(packaged)
    tables = {name: r for name, r in resources.items() if r["Type"] == "AWS::DynamoDB::Table"}
    assert set(tables) == {"UsersTable", "GenerationsTable", "LedgerTable", "PaymentsTable", "GuardsTable"}
    for table in tables.values():
        properties = table["Properties"]
        assert properties["BillingMode"] == "PAY_PER_REQUEST"
        assert properties["SSESpecification"] == {"SSEEnabled": True}
        assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert table["DeletionPolicy"] == "Retain"
    ttl = tables["GuardsTable"]["Properties"]["TimeToLiveSpecification"]
    assert ttl == {"AttributeName": "expires_at", "Enabled": True}
    index = tables["GenerationsTable"]["Properties"]["GlobalSecondaryIndexes"][0]
    assert index["IndexName"] == "unfinished"


def test_queue_visibility_covers_six_worker_timeouts_and_redrives(packaged: tuple[str, Path]) -> None:
    resources = _resources(packaged)
    queue = resources["GenerationQueue"]["Properties"]
    worker_timeout = resources["GenerationWorker"]["Properties"]["Timeout"]
    assert queue["VisibilityTimeout"] >= 6 * worker_timeout
    # Lambda refuses an SQS event source whose visibility is below the function's timeout.
    dead_letters = resources["DeadLetterQueue"]["Properties"]
    assert dead_letters["VisibilityTimeout"] >= 6 * resources["DeadLetterWorker"]["Properties"]["Timeout"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    assert queue["RedrivePolicy"]["maxReceiveCount"] >= 2
    assert resources["DeadLetterQueue"]["Type"] == "AWS::SQS::Queue"


def test_results_bucket_is_private_and_encrypted(packaged: tuple[str, Path]) -> None:
    bucket = _resources(packaged)["ResultsBucket"]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    rule = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")


@pytest.mark.parametrize(
    ("function", "event", "queue"),
    [
        ("GenerationWorker", "GenerationWorkerSqsEventSource", "GenerationQueue"),
        ("DeadLetterWorker", "DeadLetterWorkerSqsEventSource", "DeadLetterQueue"),
    ],
)
def test_sqs_event_sources_point_at_this_templates_queues_with_partial_batches(
    packaged: tuple[str, Path], function: str, event: str, queue: str
) -> None:
    source = _resources(packaged)[function]["Properties"]["Events"][event]
    assert source["Type"] == "SQS"
    # Only the Fn::Sub key: a second intrinsic beside it would break the template.
    assert source["Properties"]["Queue"] == {"Fn::Sub": f"${{{queue}.Arn}}"}
    assert source["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    if function == "GenerationWorker":
        assert source["Properties"]["BatchSize"] == 10


def test_api_gateway_answers_in_the_contract_error_shape(packaged: tuple[str, Path]) -> None:
    definition = _resources(packaged)["RestAPI"]["Properties"]["DefinitionBody"]
    assert "paths" in definition  # Chalice's own definition survived the merge
    responses = definition["x-amazon-apigateway-gateway-responses"]
    assert {"MISSING_AUTHENTICATION_TOKEN", "THROTTLED", "DEFAULT_4XX", "DEFAULT_5XX"} <= set(responses)
    assert responses["MISSING_AUTHENTICATION_TOKEN"]["statusCode"] == 404
    for response in responses.values():
        body = response["responseTemplates"]["application/json"]
        assert body.startswith('{"error": {"code": "') and '"message": ' in body


def test_sweeper_runs_on_a_schedule(packaged: tuple[str, Path]) -> None:
    events = _resources(packaged)["Sweeper"]["Properties"]["Events"]
    assert [e["Properties"]["Schedule"] for e in events.values() if e["Type"] == "Schedule"] == ["rate(1 minute)"]


def test_every_function_is_wired_to_the_stack_by_reference(packaged: tuple[str, Path]) -> None:
    stage = packaged[0]
    resources = _resources(packaged)
    for function in ("APIHandler", "GenerationWorker", "DeadLetterWorker", "Sweeper"):
        variables = resources[function]["Properties"]["Environment"]["Variables"]
        assert variables["USERS_TABLE"] == {"Ref": "UsersTable"}
        assert variables["GENERATIONS_TABLE"] == {"Ref": "GenerationsTable"}
        assert variables["GUARDS_TABLE"] == {"Ref": "GuardsTable"}
        assert variables["GENERATION_QUEUE_URL"] == {"Ref": "GenerationQueue"}
        assert variables["RESULTS_BUCKET"] == {"Ref": "ResultsBucket"}
        assert variables["TELEGRAM_BOT_TOKEN_PARAMETER"] == f"/nanogen/{stage}/telegram-bot-token"
        assert "TELEGRAM_BOT_TOKEN" not in variables and "AIML_API_KEY" not in variables
        assert resources[function]["Properties"]["Runtime"].startswith("python3.1")


def _statements(resources: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, resource in resources.items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for policy in resource["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                yield name, statement


def test_iam_is_least_privilege(packaged: tuple[str, Path]) -> None:
    resources = _resources(packaged)
    statements = list(_statements(resources))
    assert {name for name, _ in statements} == {
        "ApiHandlerRole",
        "GenerationWorkerRole",
        "DeadLetterWorkerRole",
        "SweeperRole",
    }
    for role, statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert "*" not in actions, role
        assert not any(action.endswith(":*") for action in actions), (role, actions)
        targets = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        assert "*" not in targets, (role, statement)
        for target in targets:
            text = json.dumps(target)
            assert "arn:aws:" not in text, "no hard-coded partition, region or account"
    api_actions = {a for role, s in statements if role == "ApiHandlerRole" for a in s["Action"]}
    # the webhook releases a failed update's claim; transactions need per-item rights
    assert {"dynamodb:DeleteItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"} <= api_actions
    worker_actions = {a for role, s in statements if role == "GenerationWorkerRole" for a in s["Action"]}
    assert "dynamodb:Scan" not in worker_actions and "sqs:SendMessage" not in worker_actions
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "s3:PutObject", "dynamodb:UpdateItem"} <= worker_actions


def test_no_secret_value_is_in_the_template(packaged: tuple[str, Path]) -> None:
    text = (packaged[1] / "sam.json").read_text()
    for secret in (TEST_BOT_TOKEN, TEST_WEBHOOK_SECRET, TEST_ADMIN_TOKEN, "aiml-secret-key-for-the-template-test"):
        assert secret not in text
    config = (ROOT / ".chalice" / "config.json").read_text()
    assert 'TOKEN"' not in config and 'SECRET"' not in config and "API_KEY" not in config


def test_package_leaves_out_what_the_lambda_runtime_provides(packaged: tuple[str, Path]) -> None:
    import zipfile

    with zipfile.ZipFile(packaged[1] / "deployment.zip") as archive:
        tops = {name.split("/", 1)[0] for name in archive.namelist()}
    assert "botocore" not in tops and "boto3" not in tops
    assert {"app.py", "chalicelib", "pynamodb", "aws_lambda_powertools", "requests"} <= tops
    assert "local" not in tops and "tests" not in tops and "infra" not in tops
