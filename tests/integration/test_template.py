"""The deployment template: what `make package STAGE=...` produces, read back and checked.

Builds the real merged template with Chalice once per stage, runs cfn-lint
on it, and asserts the resources, wiring and IAM rules of the deployment.
"""

from __future__ import annotations

import json
import os
import shutil
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
    assert set(tables) == {
        "UsersTable",
        "GenerationsTable",
        "LedgerTable",
        "PaymentsTable",
        "GuardsTable",
        "GrowthTable",
    }
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


def test_queue_visibility_lets_a_crashed_job_retry_within_the_generation_timeout(packaged: tuple[str, Path]) -> None:
    from chalicelib.config import load_settings
    from infra.resources import (
        DEAD_LETTER_WORKER_TIMEOUT_SECONDS,
        GENERATION_TIMEOUT_SECONDS,
        WORKER_TIMEOUT_SECONDS,
    )

    resources = _resources(packaged)
    queue = resources["GenerationQueue"]["Properties"]
    worker_timeout = resources["GenerationWorker"]["Properties"]["Timeout"]
    # .chalice/config.json sets the timeouts the queues are derived from.
    assert worker_timeout == WORKER_TIMEOUT_SECONDS
    assert resources["DeadLetterWorker"]["Properties"]["Timeout"] == DEAD_LETTER_WORKER_TIMEOUT_SECONDS
    # Lambda refuses an SQS event source whose visibility is below the function's timeout.
    assert queue["VisibilityTimeout"] >= worker_timeout
    # A message whose attempt crashed reappears, and its retry ends, before the sweeper fails the job.
    assert queue["VisibilityTimeout"] + worker_timeout <= GENERATION_TIMEOUT_SECONDS
    assert load_settings({}).generation_timeout_seconds == GENERATION_TIMEOUT_SECONDS  # the deployed default
    dead_letters = resources["DeadLetterQueue"]["Properties"]
    assert dead_letters["VisibilityTimeout"] >= resources["DeadLetterWorker"]["Properties"]["Timeout"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    assert queue["RedrivePolicy"]["maxReceiveCount"] >= 2
    assert resources["DeadLetterQueue"]["Type"] == "AWS::SQS::Queue"
    broadcasts = resources["BroadcastQueue"]["Properties"]
    assert broadcasts["VisibilityTimeout"] >= 6 * resources["BroadcastWorker"]["Properties"]["Timeout"]
    assert broadcasts["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["BroadcastDeadLetterQueue", "Arn"]}


def test_workers_scale_by_event_source_maximum_concurrency_not_reserved_concurrency(
    packaged: tuple[str, Path],
) -> None:
    # Reserved concurrency throttles the SQS poller's invocations; each throttled
    # batch returns to the queue and counts towards maxReceiveCount.
    resources = _resources(packaged)
    for name, resource in resources.items():
        if resource["Type"] in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            assert "ReservedConcurrentExecutions" not in resource["Properties"], name
    expected = {"dev": 10, "prod": 50}[packaged[0]]
    worker = resources["GenerationWorker"]["Properties"]["Events"]["GenerationWorkerSqsEventSource"]["Properties"]
    assert worker["ScalingConfig"] == {"MaximumConcurrency": expected}
    dead = resources["DeadLetterWorker"]["Properties"]["Events"]["DeadLetterWorkerSqsEventSource"]["Properties"]
    assert 2 <= dead["ScalingConfig"]["MaximumConcurrency"] <= 1000


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
    # The Mini App's browser may POST reference pictures (the signed policy admits them), nothing else.
    [cors] = bucket["CorsConfiguration"]["CorsRules"]
    assert cors["AllowedMethods"] == ["POST"]


@pytest.mark.parametrize(
    ("function", "event", "queue"),
    [
        ("GenerationWorker", "GenerationWorkerSqsEventSource", "GenerationQueue"),
        ("DeadLetterWorker", "DeadLetterWorkerSqsEventSource", "DeadLetterQueue"),
        ("BroadcastWorker", "BroadcastWorkerSqsEventSource", "BroadcastQueue"),
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
    if function == "BroadcastWorker":
        assert source["Properties"]["BatchSize"] == 1  # one page of an audience per invocation


def test_api_gateway_answers_in_the_contract_error_shape_and_never_echoes_the_request(
    packaged: tuple[str, Path],
) -> None:
    definition = _resources(packaged)["RestAPI"]["Properties"]["DefinitionBody"]
    assert "paths" in definition  # Chalice's own definition survived the merge
    responses = definition["x-amazon-apigateway-gateway-responses"]
    assert {
        "MISSING_AUTHENTICATION_TOKEN",
        "INCOMPLETE_SIGNATURE",
        "THROTTLED",
        "REQUEST_TOO_LARGE",
        "DEFAULT_4XX",
        "DEFAULT_5XX",
    } <= set(responses)
    # An unknown route, with or without an Authorization header, is a 404.
    assert responses["MISSING_AUTHENTICATION_TOKEN"]["statusCode"] == 404
    assert responses["INCOMPLETE_SIGNATURE"]["statusCode"] == 404
    assert responses["THROTTLED"]["responseParameters"]["gatewayresponse.header.Retry-After"] == "'1'"
    for kind, response in responses.items():
        body = response["responseTemplates"]["application/json"]
        assert body.startswith('{"error": {"code": "') and '"message": ' in body
        # $context.error.message quotes a non-SigV4 Authorization header on an unknown route.
        assert body.count("$") == 1 and "$context.requestId" in body, (kind, body)
        for name, source in response["responseParameters"].items():
            assert "method.request" not in source, (kind, name)
            assert source.startswith("'") or source == "stageVariables.corsOrigin", (kind, name, source)
        assert response["responseParameters"]["gatewayresponse.header.Access-Control-Allow-Origin"] == (
            "stageVariables.corsOrigin"
        )


def test_api_stage_is_throttled_and_writes_a_json_access_log(packaged: tuple[str, Path]) -> None:
    resources = _resources(packaged)
    api = resources["RestAPI"]["Properties"]
    (method,) = api["MethodSettings"]
    assert (method["ResourcePath"], method["HttpMethod"]) == ("/*", "*")
    assert 0 < method["ThrottlingRateLimit"] <= method["ThrottlingBurstLimit"]
    assert method["DataTraceEnabled"] is False  # full request logging would write headers and bodies
    assert method["LoggingLevel"] == "OFF"
    access = api["AccessLogSetting"]
    assert access["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    fields = json.loads(access["Format"])
    assert fields["requestId"] == "$context.requestId"
    assert {"status", "httpMethod", "resourcePath", "responseLatency", "ip"} <= set(fields)
    assert not any("header" in value or "error.message" in value for value in fields.values())
    assert resources["ApiAccessLogGroup"]["Properties"]["RetentionInDays"] > 0
    # API Gateway logs only with a CloudWatch role set on the account; the stage waits for it.
    account = resources["ApiGatewayAccount"]
    assert account["Type"] == "AWS::ApiGateway::Account"
    assert account["Properties"]["CloudWatchRoleArn"] == {"Fn::GetAtt": ["ApiGatewayLoggingRole", "Arn"]}
    assert resources["RestAPI"]["DependsOn"] == ["ApiGatewayAccount"]
    trust = resources["ApiGatewayLoggingRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust[0]["Principal"] == {"Service": "apigateway.amazonaws.com"}


def test_cors_allows_only_the_mini_app_origin(packaged: tuple[str, Path]) -> None:
    api = _resources(packaged)["RestAPI"]["Properties"]
    origin = api["Variables"]["corsOrigin"]
    assert origin["Fn::If"][0] == "HasMiniAppUrl"
    assert origin["Fn::If"][2] == {"Fn::Sub": "https://${MiniAppDistribution.DomainName}"}
    preflights = [
        methods["options"]["x-amazon-apigateway-integration"]["responses"]["default"]["responseParameters"]
        for methods in api["DefinitionBody"]["paths"].values()
        if "options" in methods
    ]
    assert len(preflights) > 10
    for parameters in preflights:
        assert parameters["method.response.header.Access-Control-Allow-Origin"] == "stageVariables.corsOrigin"
    assert "'*'" not in json.dumps(api["DefinitionBody"])


def test_sweeper_runs_on_a_schedule(packaged: tuple[str, Path]) -> None:
    events = _resources(packaged)["Sweeper"]["Properties"]["Events"]
    assert [e["Properties"]["Schedule"] for e in events.values() if e["Type"] == "Schedule"] == ["rate(1 minute)"]


def test_every_function_is_wired_to_the_stack_by_reference(packaged: tuple[str, Path]) -> None:
    stage = packaged[0]
    resources = _resources(packaged)
    for function in ("APIHandler", "GenerationWorker", "DeadLetterWorker", "Sweeper", "BroadcastWorker"):
        variables = resources[function]["Properties"]["Environment"]["Variables"]
        assert variables["GROWTH_TABLE"] == {"Ref": "GrowthTable"}
        assert variables["BROADCAST_QUEUE_URL"] == {"Ref": "BroadcastQueue"}
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
        "ApiGatewayLoggingRole",
        "BroadcastWorkerRole",
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
    # The dead-letter handler delivers a completed, undelivered generation: it reads the stored results.
    dead_letter_reads = [
        s["Resource"] for role, s in statements if role == "DeadLetterWorkerRole" and "s3:GetObject" in s["Action"]
    ]
    assert {"Fn::Sub": "${ResultsBucket.Arn}/results/*"} in dead_letter_reads
    broadcaster = [s for role, s in statements if role == "BroadcastWorkerRole"]
    assert {"dynamodb:Scan", "sqs:SendMessage", "sqs:ReceiveMessage"} <= {a for s in broadcaster for a in s["Action"]}
    assert "s3:PutObject" not in {a for s in broadcaster for a in s["Action"]}


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


# --- Operations (CONTRACT §10) ---------------------------------------------

FUNCTIONS = ("APIHandler", "GenerationWorker", "DeadLetterWorker", "Sweeper", "BroadcastWorker")


def _of_type(resources: dict[str, Any], kind: str) -> dict[str, Any]:
    return {name: r for name, r in resources.items() if r["Type"] == kind}


def test_alarms_notify_a_topic_with_an_optional_email_subscriber(packaged: tuple[str, Path]) -> None:
    template = _template(packaged)
    resources = template["Resources"]
    assert template["Parameters"]["AlarmEmail"]["Default"] == ""
    assert template["Conditions"]["HasAlarmEmail"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}
    (topic,) = _of_type(resources, "AWS::SNS::Topic")
    subscription = resources["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"] == {
        "TopicArn": {"Ref": topic},
        "Protocol": "email",
        "Endpoint": {"Ref": "AlarmEmail"},
    }
    alarms = _of_type(resources, "AWS::CloudWatch::Alarm")
    watched = set()
    for alarm in alarms.values():
        properties = alarm["Properties"]
        assert properties["AlarmActions"] == [{"Ref": topic}]
        assert properties["ComparisonOperator"] == "GreaterThanOrEqualToThreshold" and properties["Threshold"] == 1
        metrics = [m["MetricStat"]["Metric"] for m in properties.get("Metrics", []) if "MetricStat" in m]
        for metric in metrics or [properties]:
            dimensions = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
            watched.add((metric["Namespace"], metric["MetricName"], json.dumps(dimensions, sort_keys=True)))

    def dims(**values: Any) -> str:
        return json.dumps(values, sort_keys=True)

    dead_letters = dims(QueueName={"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]})
    expected = {
        # Waiting there, or taken by the dead-letter handler within the minute.
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", dead_letters),
        ("AWS/SQS", "NumberOfMessagesReceived", dead_letters),
        (
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            dims(QueueName={"Fn::GetAtt": ["BroadcastDeadLetterQueue", "QueueName"]}),
        ),
        ("AWS/ApiGateway", "5XXError", dims(ApiName={"Fn::Sub": "${AWS::StackName}"}, Stage="api")),
        # What the worker emits through Powertools (which adds service=nanogen) on AIML 401/403.
        ("NanoGen", "ProviderAuthRefused", dims(service="nanogen")),
        # What the sweeper emits for a generation or a whole phase it could not handle.
        ("NanoGen", "SweepFailures", dims(service="nanogen")),
    }
    for function in FUNCTIONS:
        for metric in ("Errors", "Throttles"):
            expected.add(("AWS/Lambda", metric, dims(FunctionName={"Ref": function})))
    assert watched == expected
    # One failed sweep is the next one's to retry; five in a row (one a minute) is a phase not working.
    sweeps = alarms["SweepFailuresAlarm"]["Properties"]
    assert (sweeps["Period"], sweeps["EvaluationPeriods"], sweeps["DatapointsToAlarm"]) == (60, 5, 5)
    # The API's metric dimension is its name: the stack's, so two stages never share one.
    assert resources["RestAPI"]["Properties"]["Name"] == {"Fn::Sub": "${AWS::StackName}"}


def _emitted_metrics() -> set[str]:
    import re

    names = set()
    for path in (ROOT / "chalicelib").rglob("*.py"):
        names |= set(re.findall(r"\bcount\(\s*\"([A-Za-z]+)\"", path.read_text()))
    return names


def test_dashboard_shows_generations_latency_and_credits(packaged: tuple[str, Path]) -> None:
    from infra.monitoring import NOT_YET_EMITTED

    (dashboard,) = _of_type(_resources(packaged), "AWS::CloudWatch::Dashboard").values()
    body = json.loads(dashboard["Properties"]["DashboardBody"]["Fn::Sub"])
    shown = set()
    for widget in body["widgets"]:
        assert widget["properties"]["region"] == "${AWS::Region}"
        for metric in widget["properties"]["metrics"]:
            assert metric[0] == "NanoGen" and metric[2:4] == ["service", "nanogen"]
            shown.add(metric[1])
    assert {
        "GenerationsStarted",
        "GenerationsCompleted",
        "GenerationsFailed",
        "GenerationsRefunded",
        "ProviderLatency",
        "CreditsPurchased",
        "CreditsSpent",
    } <= shown
    # Every metric shown is one the code emits, or one named as still to come.
    emitted = _emitted_metrics()
    assert shown <= emitted | NOT_YET_EMITTED, shown - emitted - NOT_YET_EMITTED
    assert not (NOT_YET_EMITTED & emitted), "emitted now: drop it from NOT_YET_EMITTED"


def test_every_log_group_has_a_retention_period(packaged: tuple[str, Path]) -> None:
    resources = _resources(packaged)
    groups = _of_type(resources, "AWS::Logs::LogGroup")
    for function in FUNCTIONS:
        group = groups[f"{function}LogGroup"]["Properties"]
        # Lambda's own name for its group: the function writes here instead of creating one.
        assert group["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/${{{function}}}"}
    assert "ApiAccessLogGroup" in groups and len(groups) == len(FUNCTIONS) + 1
    retention = {"dev": 14, "prod": 90}[packaged[0]]
    for name, group in groups.items():
        assert group["Properties"]["RetentionInDays"] == retention, name


def test_uploads_expire_after_a_day_and_results_stay(packaged: tuple[str, Path]) -> None:
    (rule,) = _resources(packaged)["ResultsBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled"
    assert rule["Prefix"] == "uploads/" and rule["ExpirationInDays"] == 1
    assert not "results/".startswith(rule["Prefix"])


def test_the_local_bucket_gets_the_same_lifecycle_rule(aws: None) -> None:
    from chalicelib import aws as clients
    from chalicelib.runtime import ready

    rules = clients.client("s3").get_bucket_lifecycle_configuration(Bucket=ready().results_bucket)["Rules"]
    assert len(rules) == 1
    assert rules[0]["Filter"] == {"Prefix": "uploads/"} and rules[0]["Expiration"] == {"Days": 1}
    assert rules[0]["Status"] == "Enabled"


# --- The Mini App in AWS (CONTRACT §9) --------------------------------------

_CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
_ALL_VIEWER_EXCEPT_HOST = "b689b0a8-53d0-40ab-baf2-68738e2966ac"


def test_mini_app_bucket_is_private_and_read_only_by_the_distribution(packaged: tuple[str, Path]) -> None:
    resources = _resources(packaged)
    bucket = resources["MiniAppBucket"]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert "WebsiteConfiguration" not in bucket
    policy = resources["MiniAppBucketPolicy"]["Properties"]
    assert policy["Bucket"] == {"Ref": "MiniAppBucket"}
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow" and statement["Action"] == "s3:GetObject"
    assert statement["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    source = statement["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Sub"]
    assert source.endswith(":distribution/${MiniAppDistribution}")
    control = resources["MiniAppOriginAccessControl"]["Properties"]["OriginAccessControlConfig"]
    assert (control["OriginAccessControlOriginType"], control["SigningBehavior"]) == ("s3", "always")


def test_cloudfront_serves_the_app_and_routes_api_to_the_stage_uncached(packaged: tuple[str, Path]) -> None:
    resources = _resources(packaged)
    config = resources["MiniAppDistribution"]["Properties"]["DistributionConfig"]
    origins = {origin["Id"]: origin for origin in config["Origins"]}
    app_origin = origins[config["DefaultCacheBehavior"]["TargetOriginId"]]
    assert app_origin["DomainName"] == {"Fn::GetAtt": ["MiniAppBucket", "RegionalDomainName"]}
    assert app_origin["OriginAccessControlId"] == {"Fn::GetAtt": ["MiniAppOriginAccessControl", "Id"]}
    assert app_origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}  # OAC, not the legacy OAI
    (api,) = config["CacheBehaviors"]
    assert api["PathPattern"] == "/api/*"
    api_origin = origins[api["TargetOriginId"]]
    assert api_origin["DomainName"] == {"Fn::Sub": "${RestAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}"}
    # The stage; the routes themselves start with /api: /api/user/me -> /api/api/user/me.
    assert api_origin["OriginPath"] == "/" + resources["RestAPI"]["Properties"]["StageName"] == "/api"
    assert api_origin["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    assert api["CachePolicyId"] == _CACHING_DISABLED
    assert api["OriginRequestPolicyId"] == _ALL_VIEWER_EXCEPT_HOST
    assert {"GET", "POST", "PUT", "DELETE", "OPTIONS"} <= set(api["AllowedMethods"])
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
    assert "CustomErrorResponses" not in config  # they would rewrite the API's own 403 and 404
    (association,) = config["DefaultCacheBehavior"]["FunctionAssociations"]
    assert association == {
        "EventType": "viewer-request",
        "FunctionARN": {"Fn::GetAtt": ["MiniAppPaths", "FunctionARN"]},
    }


def test_the_paths_function_sends_app_routes_to_the_single_page_index() -> None:
    from infra.miniapp import VIEWER_REQUEST_FUNCTION

    cases = {
        "/": {"redirect": "/app/"},
        "/app": {"redirect": "/app/"},
        "/app/": {"uri": "/app/index.html"},
        "/app/history": {"uri": "/app/index.html"},
        "/app/admin/users/42": {"uri": "/app/index.html"},
        "/app/assets/index-3f2a1b.js": {"uri": "/app/assets/index-3f2a1b.js"},
        "/app/favicon.svg": {"uri": "/app/favicon.svg"},
        "/other": {"uri": "/other"},
    }
    script = (
        VIEWER_REQUEST_FUNCTION
        + """
const cases = JSON.parse(process.argv[1]);
const out = {};
for (const uri of Object.keys(cases)) {
  const answer = handler({request: {uri: uri, headers: {}}});
  out[uri] = answer.statusCode ? {redirect: answer.headers.location.value} : {uri: answer.uri};
}
console.log(JSON.stringify(out));
"""
    )
    node = shutil.which("node")
    assert node, "node (Node.js) runs the CloudFront Function's code here; the Mini App's build needs it too"
    result = subprocess.run([node, "-e", script, json.dumps(cases)], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == cases


def test_mini_app_url_is_an_output_and_the_functions_default(packaged: tuple[str, Path]) -> None:
    stage = packaged[0]
    template = _template(packaged)
    resources = template["Resources"]
    distribution_url = {"Fn::Sub": "https://${MiniAppDistribution.DomainName}/app/"}
    assert template["Outputs"]["MiniAppUrl"]["Value"] == distribution_url
    assert {"MiniAppBucketName", "MiniAppDistributionId"} <= set(template["Outputs"])
    parameter = resources["MiniAppUrlParameter"]["Properties"]
    assert parameter["Name"] == f"/nanogen/{stage}/mini-app-url"
    assert parameter["Value"] == {"Fn::If": ["HasMiniAppUrl", {"Ref": "MiniAppUrl"}, distribution_url]}
    assert template["Parameters"]["MiniAppUrl"]["Default"] == ""
    for function in FUNCTIONS:
        variables = resources[function]["Properties"]["Environment"]["Variables"]
        assert variables["MINI_APP_URL_PARAMETER"] == parameter["Name"]
        assert "MINI_APP_URL" not in variables


def _references(value: Any) -> set[str]:
    """Logical ids ``value`` refers to (Ref, Fn::GetAtt, ${...} in Fn::Sub)."""
    import re

    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                found.add(inner[0] if isinstance(inner, list) else inner.split(".")[0])
            elif key == "Fn::Sub":
                text = inner if isinstance(inner, str) else inner[0]
                found |= {name.split(".")[0] for name in re.findall(r"\$\{([^}!]+)\}", text)}
                if isinstance(inner, list):
                    found |= _references(inner[1])
            found |= _references(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= _references(inner)
    return found


def test_no_dependency_cycle_between_the_api_its_functions_and_cloudfront(packaged: tuple[str, Path]) -> None:
    # cfn-lint replaces the API's definition with a stub, so it cannot see
    # this: the definition references the API function, CloudFront references
    # the API. What SAM moves to generated resources (the stage's variables and
    # logging, the event source mappings) is a node of its own here.
    resources = _resources(packaged)
    stage_keys = ("Variables", "AccessLogSetting", "MethodSettings")
    graph: dict[str, set[str]] = {}
    for name, resource in resources.items():
        properties = dict(resource.get("Properties", {}))
        moved: dict[str, Any] = {}
        if resource["Type"] == "AWS::Serverless::Api":
            moved = {key: properties.pop(key) for key in stage_keys if key in properties}
        if resource["Type"] == "AWS::Serverless::Function":
            moved = {"Events": properties.pop("Events", {})}
        depends = resource.get("DependsOn", [])
        graph[name] = (_references(properties) | set([depends] if isinstance(depends, str) else depends)) & set(
            resources
        )
        if moved:
            graph[f"{name}.generated"] = (_references(moved) & set(resources)) | {name}

    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> None:
        assert node not in visiting, " -> ".join([*visiting[visiting.index(node) :], node])
        if node in done:
            return
        visiting.append(node)
        for target in graph.get(node, ()):
            visit(target)
        visiting.pop()
        done.add(node)

    for node in graph:
        visit(node)


def test_package_carries_the_catalogues_and_only_our_languages_of_babel(packaged: tuple[str, Path]) -> None:
    import zipfile

    with zipfile.ZipFile(packaged[1] / "deployment.zip") as archive:
        names = archive.namelist()
    assert {"chalicelib/locales/en.ftl", "chalicelib/locales/ru.ftl"} <= set(names)
    babel_locales = {name for name in names if name.startswith("babel/locale-data/") and name.endswith(".dat")}
    assert babel_locales == {"babel/locale-data/root.dat", "babel/locale-data/en.dat", "babel/locale-data/ru.dat"}
    assert "babel/global.dat" in names
    # Bytecode only as infra.package compiles it for the runtime (test_package.py checks it in full).
    assert not [name for name in names if name.endswith(".pyc") and ".cpython-313." not in name]


def test_the_texts_format_from_the_unpacked_package_alone(
    packaged: tuple[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """What the Lambda has: the zip's files and the standard library (-S: no site-packages), TZ=:UTC."""
    import zipfile

    unpacked = tmp_path_factory.mktemp(f"unpacked-{packaged[0]}")
    with zipfile.ZipFile(packaged[1] / "deployment.zip") as archive:
        archive.extractall(unpacked)
    code = (
        "import sys; from chalicelib import i18n; i18n.strict = True\n"
        "assert not any(path.endswith('site-packages') for path in sys.path), sys.path\n"
        "print(i18n.t('ru', 'payment-credited', credits=21, balance=22)); print(i18n.credits('en', 1))\n"
    )
    env = {"PYTHONPATH": str(unpacked), "TZ": ":UTC", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-S", "-c", code], cwd=unpacked, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["Спасибо! Добавили вам 21 кредит. Ваш баланс: 22 кредита.", "1 credit"]
