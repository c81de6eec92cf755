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
* one least-privilege policy per function role.

    python -m infra.template dev > build/merge-dev.json
"""

from __future__ import annotations

import json
import sys
from typing import Any

from infra.resources import TABLE_LOGICAL_IDS, resources

FUNCTIONS = ("APIHandler", "GenerationWorker", "DeadLetterWorker", "Sweeper")
ROLES = {
    "APIHandler": "ApiHandlerRole",
    "GenerationWorker": "GenerationWorkerRole",
    "DeadLetterWorker": "DeadLetterWorkerRole",
    "Sweeper": "SweeperRole",
}
# Secrets are read at run time from these SSM parameters (SecureString).
SECRET_PARAMETERS = {
    "TELEGRAM_BOT_TOKEN": "telegram-bot-token",
    "TELEGRAM_WEBHOOK_SECRET": "telegram-webhook-secret",
    "AIML_API_KEY": "aiml-api-key",
    "ADMIN_API_TOKEN": "admin-api-token",
}


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
            _statement("MoneyItems", _ITEM_RW, _table_arns(*money_tables, "payments")),
            _statement(
                "HistoryAndAdmin", ["dynamodb:Query", "dynamodb:Scan"], _table_arns("users", "generations", "ledger")
            ),
            # A webhook handler that fails releases its claim on the update.
            _statement("ReleaseUpdateClaims", ["dynamodb:DeleteItem"], _table_arns("guards")),
            _statement("QueueJobs", ["sqs:SendMessage", "sqs:GetQueueUrl"], _arn("GenerationQueue")),
            # Presigned result URLs are signed with this role's credentials.
            _statement("ReadResults", ["s3:GetObject"], {"Fn::Sub": "${ResultsBucket.Arn}/results/*"}),
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
        ],
        "Sweeper": [
            _logs(),
            _secrets(stage),
            _statement("MoneyItems", _ITEM_RW, _table_arns(*money_tables)),
            _statement("FindUnfinished", ["dynamodb:Query"], _table_arns("generations", indexes=True)),
            _statement("RequeueJobs", ["sqs:SendMessage", "sqs:GetQueueUrl"], _arn("GenerationQueue")),
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
        "GENERATION_QUEUE_URL": {"Ref": "GenerationQueue"},
        "GENERATION_QUEUE_NAME": {"Fn::GetAtt": ["GenerationQueue", "QueueName"]},
        "DEAD_LETTER_QUEUE_NAME": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]},
        "RESULTS_BUCKET": {"Ref": "ResultsBucket"},
        "POWERTOOLS_SERVICE_NAME": "nanogen",
        "POWERTOOLS_METRICS_NAMESPACE": "NanoGen",
    }
    for variable, name in SECRET_PARAMETERS.items():
        variables[f"{variable}_PARAMETER"] = f"{parameter_prefix(stage)}/{name}"
    return variables


def _gateway_response(status: int | None, code: str, message: str) -> dict[str, Any]:
    """``status`` None keeps the status API Gateway chose (the DEFAULT_* types cover many)."""
    body = '{"error": {"code": "' + code + '", "message": ' + message + ', "request_id": "$context.requestId"}}'
    response: dict[str, Any] = {
        "responseTemplates": {"application/json": body},
        # The Mini App reads these errors from another origin too.
        "responseParameters": {"gatewayresponse.header.Access-Control-Allow-Origin": "'*'"},
    }
    if status is not None:
        response["statusCode"] = status
    return response


# Answers API Gateway gives without reaching the Lambda (unknown route, wrong
# method, throttling, oversized body), in the CONTRACT §4 error shape too.
# They go into the API's own definition, so a redeployment cannot drop them.
GATEWAY_RESPONSES = {
    "MISSING_AUTHENTICATION_TOKEN": _gateway_response(404, "not_found", '"No such route."'),
    "THROTTLED": _gateway_response(429, "rate_limited", '"Too many requests; retry shortly."'),
    "DEFAULT_4XX": _gateway_response(None, "invalid_request", "$context.error.messageString"),
    "DEFAULT_5XX": _gateway_response(None, "internal_error", '"An unexpected error occurred."'),
}


def merge_template(stage: str) -> dict[str, Any]:
    merged: dict[str, Any] = dict(resources())
    merged["RestAPI"] = {"Properties": {"DefinitionBody": {"x-amazon-apigateway-gateway-responses": GATEWAY_RESPONSES}}}
    env = environment(stage)
    for function in FUNCTIONS:
        merged[function] = {"Properties": {"Environment": {"Variables": env}}}
    for function, queue, event in (
        ("GenerationWorker", "GenerationQueue", "GenerationWorkerSqsEventSource"),
        ("DeadLetterWorker", "DeadLetterQueue", "DeadLetterWorkerSqsEventSource"),
    ):
        merged[function]["Properties"]["Events"] = {
            event: {
                "Properties": {
                    "Queue": {"Fn::Sub": f"${{{queue}.Arn}}"},
                    "FunctionResponseTypes": ["ReportBatchItemFailures"],
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
        "Resources": merged,
        "Outputs": {
            "GenerationQueueUrl": {"Value": {"Ref": "GenerationQueue"}},
            "DeadLetterQueueUrl": {"Value": {"Ref": "DeadLetterQueue"}},
            "ResultsBucketName": {"Value": {"Ref": "ResultsBucket"}},
            "SecretParameterPrefix": {"Value": parameter_prefix(stage)},
        },
    }


if __name__ == "__main__":
    json.dump(merge_template(sys.argv[1] if len(sys.argv) > 1 else "dev"), sys.stdout, indent=2)
    print()
