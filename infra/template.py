"""The CloudFormation merge template that completes Chalice's own template.

Chalice packages the functions, the REST API and the schedule; it cannot
create tables, queues or buckets, switch on partial batch responses, or
write a policy that knows them. ``merge_template(stage)`` adds:

* the stateful resources of ``infra.resources`` (tables, queues, bucket);
* the SQS event sources pointed at the queues of this template (the same
  ``Fn::Sub`` key Chalice uses, so the deep merge replaces its value) with
  ``FunctionResponseTypes: [ReportBatchItemFailures]``;
* every function's environment wired to the resources by reference, and the
  names (never the values) of the secrets in SSM Parameter Store;
* one least-privilege policy per function role;
* the API stage's throttling, JSON access log and gateway responses in the
  CONTRACT §4 shape that never echo the request (``api_stage``);
* the alarms, dashboard and log retention of ``infra.monitoring``;
* the Mini App's bucket and CloudFront distribution of ``infra.miniapp``,
  whose origin is the only one the API's CORS allows.

    python -m infra.template dev > build/merge-dev.json
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

from chalicelib import http
from infra import miniapp, monitoring
from infra.resources import TABLE_LOGICAL_IDS, resources

FUNCTIONS = ("APIHandler", "GenerationWorker", "DeadLetterWorker", "Sweeper", "BroadcastWorker")
ROLES = {
    "APIHandler": "ApiHandlerRole",
    "GenerationWorker": "GenerationWorkerRole",
    "DeadLetterWorker": "DeadLetterWorkerRole",
    "Sweeper": "SweeperRole",
    "BroadcastWorker": "BroadcastWorkerRole",
}
# Secrets are read at run time from these SSM parameters (SecureString).
SECRET_PARAMETERS = {
    "TELEGRAM_BOT_TOKEN": "telegram-bot-token",
    "TELEGRAM_WEBHOOK_SECRET": "telegram-webhook-secret",
    "AIML_API_KEY": "aiml-api-key",
    "ADMIN_API_TOKEN": "admin-api-token",
}
# Not a secret: set by the stack itself (see infra.miniapp for why not in the environment).
MINI_APP_URL_PARAMETER = "mini-app-url"
API_STAGE = "api"  # .chalice/config.json's api_gateway_stage


@dataclass(frozen=True)
class StageSettings:
    # The most concurrent generation-worker invocations the SQS poller makes
    # (ScalingConfig.MaximumConcurrency): excess messages wait in the queue
    # instead of being throttled and counted towards maxReceiveCount, as
    # reserved concurrency would do. It also bounds concurrent AIML calls.
    worker_max_concurrency: int
    # API Gateway stage throttling, requests per second and burst, for all
    # routes together (the per-user limits of CONTRACT §2 apply below this).
    api_rate_limit: int
    api_burst_limit: int
    log_retention_days: int


STAGES = {
    "dev": StageSettings(worker_max_concurrency=10, api_rate_limit=20, api_burst_limit=40, log_retention_days=14),
    "prod": StageSettings(worker_max_concurrency=50, api_rate_limit=200, api_burst_limit=400, log_retention_days=90),
}
# The dead-letter handler refunds or delivers one job at a time; 2 is the least Lambda allows.
DEAD_LETTER_MAX_CONCURRENCY = 2
BROADCAST_MAX_CONCURRENCY = 2  # the least SQS event sources accept


def stage_settings(stage: str) -> StageSettings:
    return STAGES.get(stage, STAGES["dev"])


def parameter_prefix(stage: str) -> str:
    return f"/nanogen/{stage}"


def _arn(logical_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def _table_arns(*logical: str, indexes: bool = False) -> list[Any]:
    arns: list[Any] = [_arn(TABLE_LOGICAL_IDS[name]) for name in logical]
    if indexes:
        arns += [{"Fn::Sub": f"${{{TABLE_LOGICAL_IDS[name]}.Arn}}/index/*"} for name in logical]
    return arns


def _statement(sid: str, actions: list[str], resource: Any) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": resource}


def _logs() -> dict[str, Any]:
    # Functions get generated names (<stack>-<logical id>-<suffix>); naming the
    # function itself here would make the role depend on the function and back.
    return _statement(
        "WriteOwnLogs",
        ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
        {
            "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}"
            ":log-group:/aws/lambda/${AWS::StackName}-*"
        },
    )


def _secrets(stage: str) -> dict[str, Any]:
    return _statement(
        "ReadOwnSecrets",
        ["ssm:GetParameter", "ssm:GetParameters"],
        {
            "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter"
            + parameter_prefix(stage)
            + "/*"
        },
    )


_ITEM_RW = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"]


def policies(stage: str) -> dict[str, list[dict[str, Any]]]:
    """Statements per function: only the actions its code uses, on this stack's resources."""
    money_tables = ("users", "generations", "ledger", "guards")
    return {
        "APIHandler": [
            _logs(),
            _secrets(stage),
            # TransactWriteItems is authorised per item through these actions.
            _statement("MoneyItems", _ITEM_RW, _table_arns(*money_tables, "payments", "growth")),
            _statement(
                "HistoryAndAdmin", ["dynamodb:Query", "dynamodb:Scan"], _table_arns("users", "generations", "ledger")
            ),
            _statement("QueueBroadcasts", ["sqs:SendMessage", "sqs:GetQueueUrl"], _arn("BroadcastQueue")),
            # A webhook handler that fails releases its claim on the update.
            _statement("ReleaseUpdateClaims", ["dynamodb:DeleteItem"], _table_arns("guards")),
            _statement("QueueJobs", ["sqs:SendMessage", "sqs:GetQueueUrl"], _arn("GenerationQueue")),
            # Presigned result URLs are signed with this role's credentials.
            _statement("ReadResults", ["s3:GetObject"], {"Fn::Sub": "${ResultsBucket.Arn}/results/*"}),
            # Reference pictures: the Mini App's presigned POSTs (signed with this role), the bot's copies
            # of Telegram photos and results, and the check of an upload's first bytes.
            _statement(
                "ReferencePictures", ["s3:PutObject", "s3:GetObject"], {"Fn::Sub": "${ResultsBucket.Arn}/uploads/*"}
            ),
            _statement("CheckUploads", ["dynamodb:BatchGetItem"], _table_arns("guards")),
        ],
        "GenerationWorker": [
            _logs(),
            _secrets(stage),
            _statement("MoneyItems", _ITEM_RW, _table_arns(*money_tables)),
            _statement(
                "ConsumeJobs",
                ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"],
                _arn("GenerationQueue"),
            ),
            _statement("StoreResults", ["s3:PutObject", "s3:GetObject"], {"Fn::Sub": "${ResultsBucket.Arn}/results/*"}),
            # The provider's presigned links to reference pictures are signed with this role.
            _statement("ReadReferencePictures", ["s3:GetObject"], {"Fn::Sub": "${ResultsBucket.Arn}/uploads/*"}),
        ],
        "DeadLetterWorker": [
            _logs(),
            _secrets(stage),
            _statement("MoneyItems", _ITEM_RW, _table_arns(*money_tables)),
            _statement(
                "ConsumeDeadLetters",
                ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
                _arn("DeadLetterQueue"),
            ),
            # A completed, undelivered generation is delivered from here: its stored pictures are read back.
            _statement("ReadResults", ["s3:GetObject"], {"Fn::Sub": "${ResultsBucket.Arn}/results/*"}),
        ],
        "Sweeper": [
            _logs(),
            _secrets(stage),
            _statement("MoneyItems", _ITEM_RW, _table_arns(*money_tables)),
            _statement("FindUnfinished", ["dynamodb:Query"], _table_arns("generations", indexes=True)),
            _statement("RequeueJobs", ["sqs:SendMessage", "sqs:GetQueueUrl"], _arn("GenerationQueue")),
        ],
        "BroadcastWorker": [
            _logs(),
            _secrets(stage),
            # Deliveries and the send clock (guards), counters (growth), blocked flags (users).
            _statement("BroadcastItems", _ITEM_RW, _table_arns("users", "guards", "growth")),
            # A cancelled claim reads its deliveries back to recognise its own (chalicelib.guards).
            _statement("ReadOwnClaims", ["dynamodb:BatchGetItem"], _table_arns("guards")),
            _statement("ReadAudience", ["dynamodb:Scan"], _table_arns("users")),
            _statement(
                "ConsumeAndChainPages",
                [
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                    "sqs:SendMessage",
                    "sqs:GetQueueUrl",
                ],
                _arn("BroadcastQueue"),
            ),
        ],
    }


def environment(stage: str) -> dict[str, Any]:
    """Every function's configuration, wired to the stack's resources by reference."""
    variables: dict[str, Any] = {
        "NANOGEN_STAGE": stage,
        "USERS_TABLE": {"Ref": "UsersTable"},
        "GENERATIONS_TABLE": {"Ref": "GenerationsTable"},
        "LEDGER_TABLE": {"Ref": "LedgerTable"},
        "PAYMENTS_TABLE": {"Ref": "PaymentsTable"},
        "GUARDS_TABLE": {"Ref": "GuardsTable"},
        "GROWTH_TABLE": {"Ref": "GrowthTable"},
        "BROADCAST_QUEUE_URL": {"Ref": "BroadcastQueue"},
        "BROADCAST_QUEUE_NAME": {"Fn::GetAtt": ["BroadcastQueue", "QueueName"]},
        "GENERATION_QUEUE_URL": {"Ref": "GenerationQueue"},
        "GENERATION_QUEUE_NAME": {"Fn::GetAtt": ["GenerationQueue", "QueueName"]},
        "DEAD_LETTER_QUEUE_NAME": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]},
        "RESULTS_BUCKET": {"Ref": "ResultsBucket"},
        "POWERTOOLS_SERVICE_NAME": "nanogen",
        "POWERTOOLS_METRICS_NAMESPACE": "NanoGen",
    }
    for variable, name in SECRET_PARAMETERS.items():
        variables[f"{variable}_PARAMETER"] = f"{parameter_prefix(stage)}/{name}"
    variables["MINI_APP_URL_PARAMETER"] = mini_app_url_parameter(stage)
    return variables


def mini_app_url_parameter(stage: str) -> str:
    return f"{parameter_prefix(stage)}/{MINI_APP_URL_PARAMETER}"


# The API's allowed CORS origin (the Mini App's), a stage variable so the
# preflight answers, the gateway responses and the functions (through the
# request's stageVariables) all read the one value the stack sets.
CORS_STAGE_VARIABLE = http.CORS_STAGE_VARIABLE


def _gateway_response(status: int | None, code: str, message: str) -> dict[str, Any]:
    """``status`` None keeps the status API Gateway chose (the DEFAULT_* types cover many).

    The body is fixed text plus the request id: never ``$context.error.message``,
    which for an unknown route called with an ``Authorization`` header quotes
    that header, nor any other part of the request.
    """
    body = json.dumps({"error": {"code": code, "message": message, "request_id": "$context.requestId"}})
    parameters = {
        # The Mini App's origin may read these errors; no other origin.
        "gatewayresponse.header.Access-Control-Allow-Origin": f"stageVariables.{CORS_STAGE_VARIABLE}",
        "gatewayresponse.header.Cache-Control": "'no-store'",
        "gatewayresponse.header.X-Content-Type-Options": "'nosniff'",
    }
    if code == "rate_limited":
        parameters["gatewayresponse.header.Retry-After"] = "'1'"
    response: dict[str, Any] = {"responseTemplates": {"application/json": body}, "responseParameters": parameters}
    if status is not None:
        response["statusCode"] = status
    return response


_NO_ROUTE = "No such route."
_TOO_MANY = "Too many requests; retry shortly."
# Answers API Gateway gives without reaching the Lambda (unknown route, wrong
# method, throttling, oversized body), in the CONTRACT §4 error shape too.
# They go into the API's own definition, so a redeployment cannot drop them.
# An unknown route with an Authorization header that is not SigV4 is an
# INCOMPLETE_SIGNATURE, not MISSING_AUTHENTICATION_TOKEN: both are a 404.
GATEWAY_RESPONSES = {
    "MISSING_AUTHENTICATION_TOKEN": _gateway_response(404, "not_found", _NO_ROUTE),
    "INCOMPLETE_SIGNATURE": _gateway_response(404, "not_found", _NO_ROUTE),
    "INVALID_SIGNATURE": _gateway_response(404, "not_found", _NO_ROUTE),
    "THROTTLED": _gateway_response(429, "rate_limited", _TOO_MANY),
    "QUOTA_EXCEEDED": _gateway_response(429, "rate_limited", _TOO_MANY),
    "REQUEST_TOO_LARGE": _gateway_response(413, "invalid_request", "The request is too large."),
    "BAD_REQUEST_BODY": _gateway_response(400, "invalid_request", "The request body is not valid."),
    "BAD_REQUEST_PARAMETERS": _gateway_response(400, "invalid_request", "The request parameters are not valid."),
    "INTEGRATION_TIMEOUT": _gateway_response(504, "internal_error", "The request took too long; try again."),
    "DEFAULT_4XX": _gateway_response(None, "invalid_request", "The request was refused."),
    "DEFAULT_5XX": _gateway_response(None, "internal_error", "An unexpected error occurred; try again."),
}

# One JSON line per request. Request facts only: no headers, no query
# string, no body, no $context.error.message (it can quote a header).
ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "extendedRequestId": "$context.extendedRequestId",
    "requestTime": "$context.requestTime",
    "ip": "$context.identity.sourceIp",
    "userAgent": "$context.identity.userAgent",
    "httpMethod": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationLatency": "$context.integrationLatency",
    "errorType": "$context.error.responseType",
}
# Every NanoGen stack's access log lives under this prefix, so the one
# account-wide API Gateway logging role (whichever stack set it last) can
# write all of them.
ACCESS_LOG_PREFIX = "/aws/apigateway/nanogen/"


def _cors_preflights() -> dict[str, Any]:
    """Point every route's OPTIONS answer at the CORS stage variable (Chalice writes ``'*'``)."""
    from app import app

    paths: dict[str, Any] = {}
    for path, methods in app.routes.items():
        if any(entry.cors for entry in methods.values()):
            paths[path] = {
                "options": {
                    "x-amazon-apigateway-integration": {
                        "responses": {
                            "default": {
                                "responseParameters": {
                                    "method.response.header.Access-Control-Allow-Origin": (
                                        f"stageVariables.{CORS_STAGE_VARIABLE}"
                                    )
                                }
                            }
                        }
                    }
                }
            }
    return paths


def api_logging() -> dict[str, Any]:
    """The access log group and API Gateway's account-level CloudWatch role.

    API Gateway writes logs only with a role set on the account
    (``AWS::ApiGateway::Account``, one per account and region). The role
    may write NanoGen's access logs only.
    """
    log_groups = {
        "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:" + ACCESS_LOG_PREFIX + "*"
    }
    return {
        "ApiGatewayLoggingRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "apigateway.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                },
                "Policies": [
                    {
                        "PolicyName": "ApiGatewayLoggingRolePolicy",
                        "PolicyDocument": {
                            "Version": "2012-10-17",
                            "Statement": [
                                _statement(
                                    "WriteNanoGenAccessLogs",
                                    [
                                        "logs:CreateLogStream",
                                        "logs:DescribeLogGroups",
                                        "logs:DescribeLogStreams",
                                        "logs:PutLogEvents",
                                    ],
                                    log_groups,
                                )
                            ],
                        },
                    }
                ],
            },
        },
        "ApiGatewayAccount": {
            "Type": "AWS::ApiGateway::Account",
            "Properties": {"CloudWatchRoleArn": _arn("ApiGatewayLoggingRole")},
        },
    }


def api_stage(stage: str) -> dict[str, Any]:
    """What the merge adds to Chalice's ``RestAPI`` (an ``AWS::Serverless::Api``)."""
    settings = stage_settings(stage)
    return {
        # The stage's logging needs the account's role first.
        "DependsOn": ["ApiGatewayAccount"],
        "Properties": {
            "Name": {"Fn::Sub": "${AWS::StackName}"},
            # CloudFront fronts it (infra.miniapp): an edge-optimized API would be a second CloudFront.
            "EndpointConfiguration": "REGIONAL",
            "DefinitionBody": {
                "x-amazon-apigateway-gateway-responses": GATEWAY_RESPONSES,
                "paths": _cors_preflights(),
            },
            "MethodSettings": [
                {
                    "ResourcePath": "/*",
                    "HttpMethod": "*",
                    "ThrottlingRateLimit": settings.api_rate_limit,
                    "ThrottlingBurstLimit": settings.api_burst_limit,
                    # Per-method metrics are paid custom metrics; the API-wide ones (5XXError) are free.
                    "MetricsEnabled": False,
                    "DataTraceEnabled": False,
                    "LoggingLevel": "OFF",
                }
            ],
            "AccessLogSetting": {
                "DestinationArn": _arn("ApiAccessLogGroup"),
                "Format": json.dumps(ACCESS_LOG_FORMAT, separators=(",", ":")),
            },
            "Variables": {CORS_STAGE_VARIABLE: miniapp.mini_app_origin()},
        },
    }


def merge_template(stage: str) -> dict[str, Any]:
    settings = stage_settings(stage)
    merged: dict[str, Any] = dict(resources())
    merged.update(api_logging())
    merged["ApiAccessLogGroup"] = {
        "Type": "AWS::Logs::LogGroup",
        "Properties": {
            "LogGroupName": {"Fn::Sub": ACCESS_LOG_PREFIX + "${AWS::StackName}"},
            "RetentionInDays": settings.log_retention_days,
        },
    }
    merged["RestAPI"] = api_stage(stage)
    merged.update(miniapp.resources(api_stage=API_STAGE, url_parameter_name=mini_app_url_parameter(stage)))
    merged.update(
        monitoring.resources(
            FUNCTIONS,
            retention_days=settings.log_retention_days,
            api_name={"Fn::Sub": "${AWS::StackName}"},
            api_stage=API_STAGE,
        )
    )
    env = environment(stage)
    for function in FUNCTIONS:
        merged[function] = {"Properties": {"Environment": {"Variables": env}}}
    for function, queue, event, concurrency in (
        ("GenerationWorker", "GenerationQueue", "GenerationWorkerSqsEventSource", settings.worker_max_concurrency),
        ("DeadLetterWorker", "DeadLetterQueue", "DeadLetterWorkerSqsEventSource", DEAD_LETTER_MAX_CONCURRENCY),
        # Broadcasts share one send clock: more workers would not send faster.
        ("BroadcastWorker", "BroadcastQueue", "BroadcastWorkerSqsEventSource", BROADCAST_MAX_CONCURRENCY),
    ):
        merged[function]["Properties"]["Events"] = {
            event: {
                "Properties": {
                    "Queue": {"Fn::Sub": f"${{{queue}.Arn}}"},
                    "FunctionResponseTypes": ["ReportBatchItemFailures"],
                    "ScalingConfig": {"MaximumConcurrency": concurrency},
                }
            }
        }
    for function, statements in policies(stage).items():
        merged[ROLES[function]] = {
            "Properties": {
                "Policies": [
                    {
                        "PolicyName": f"{ROLES[function]}Policy",
                        "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
                    }
                ]
            }
        }
    return {
        "Parameters": {**monitoring.parameters(), **miniapp.parameters()},
        "Conditions": {**monitoring.conditions(), **miniapp.conditions()},
        "Resources": merged,
        "Outputs": {
            "GenerationQueueUrl": {"Value": {"Ref": "GenerationQueue"}},
            "DeadLetterQueueUrl": {"Value": {"Ref": "DeadLetterQueue"}},
            "BroadcastQueueUrl": {"Value": {"Ref": "BroadcastQueue"}},
            "ResultsBucketName": {"Value": {"Ref": "ResultsBucket"}},
            "SecretParameterPrefix": {"Value": parameter_prefix(stage)},
            "AlarmTopicArn": {"Value": {"Ref": monitoring.TOPIC}},
            "DashboardName": {"Value": {"Ref": "Dashboard"}},
            "ApiAccessLogGroupName": {"Value": {"Ref": "ApiAccessLogGroup"}},
            **miniapp.outputs(),
        },
    }


if __name__ == "__main__":
    json.dump(merge_template(sys.argv[1] if len(sys.argv) > 1 else "dev"), sys.stdout, indent=2)
    print()
