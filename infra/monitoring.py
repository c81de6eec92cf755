"""Alarms, the dashboard and log retention (CONTRACT §10), as CloudFormation.

Every alarm notifies one SNS topic; its e-mail subscriber is the stack
parameter ``AlarmEmail`` (no subscription when it is empty). The application
metrics are the ones ``chalicelib.observability.count`` emits: namespace
``NanoGen``, one dimension ``service=nanogen`` (Powertools adds it to every
metric), so alarms and widgets must name that dimension to find them.
"""

from __future__ import annotations

import json
from typing import Any

NAMESPACE = "NanoGen"
SERVICE_DIMENSION = {"Name": "service", "Value": "nanogen"}
# The worker emits this (count 1) when AIML answers 401/403 to our key.
PROVIDER_AUTH_METRIC = "ProviderAuthRefused"
# The sweeper emits this for every generation it could not handle and every phase that failed.
SWEEP_FAILURES_METRIC = "SweepFailures"
# Sweeps in a row (one a minute) that must fail for the alarm: one failure is retried by the
# next sweep; failing for five minutes is an expiry or re-queue that is not happening.
SWEEP_FAILURE_MINUTES = 5
TOPIC = "AlarmTopic"
# Shown or alarmed on, but not emitted by chalicelib yet (the template test
# keeps this list true).
NOT_YET_EMITTED: set[str] = set()

# Dashboard rows: (title, [(metric, statistic)]).
DASHBOARD_ROWS: list[tuple[str, list[tuple[str, str]]]] = [
    (
        "Generations",
        [
            ("GenerationsStarted", "Sum"),
            ("GenerationsCompleted", "Sum"),
            ("GenerationsFailed", "Sum"),
            ("GenerationsCancelled", "Sum"),
            ("GenerationsRefunded", "Sum"),
        ],
    ),
    ("Provider latency (ms)", [("ProviderLatency", "p50"), ("ProviderLatency", "p90"), ("ProviderLatency", "p99")]),
    ("Credits", [("CreditsPurchased", "Sum"), ("CreditsSpent", "Sum"), ("CreditsRefunded", "Sum")]),
    (
        "Provider, delivery and sweep problems",
        [
            ("ProviderErrors", "Sum"),
            (PROVIDER_AUTH_METRIC, "Sum"),
            ("DeliveryFailures", "Sum"),
            (SWEEP_FAILURES_METRIC, "Sum"),
        ],
    ),
]


def parameters() -> dict[str, Any]:
    return {
        "AlarmEmail": {
            "Type": "String",
            "Default": "",
            "Description": "E-mail address that receives the stack's alarms (empty: no subscription).",
            "AllowedPattern": r"^$|^[^@\s]+@[^@\s]+\.[^@\s]+$",
        }
    }


def conditions() -> dict[str, Any]:
    return {"HasAlarmEmail": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}}


def _alarm(description: str, **properties: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmDescription": description,
            "ActionsEnabled": True,
            "AlarmActions": [{"Ref": TOPIC}],
            "OKActions": [{"Ref": TOPIC}],
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "Threshold": 1,
            "EvaluationPeriods": 1,
            "Period": 60,
            "Statistic": "Sum",
            "TreatMissingData": "notBreaching",
            **properties,
        },
    }


def _dead_letter_alarm() -> dict[str, Any]:
    """Any message in the dead-letter queue: waiting there, or received by its handler.

    The handler takes a message within seconds, so the one-minute samples of
    ``ApproximateNumberOfMessagesVisible`` alone would miss most; messages
    received count each one (a job redriven there is never "sent").
    """
    queue = [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}]

    def stat(metric_id: str, metric: str, statistic: str) -> dict[str, Any]:
        return {
            "Id": metric_id,
            "ReturnData": False,
            "MetricStat": {
                "Metric": {"Namespace": "AWS/SQS", "MetricName": metric, "Dimensions": queue},
                "Period": 60,
                "Stat": statistic,
            },
        }

    alarm = _alarm("A generation job reached the dead-letter queue (its user is refunded; find out why).")
    for key in ("Period", "Statistic"):
        del alarm["Properties"][key]
    alarm["Properties"]["Metrics"] = [
        stat("waiting", "ApproximateNumberOfMessagesVisible", "Maximum"),
        stat("received", "NumberOfMessagesReceived", "Sum"),
        {"Id": "held", "Expression": "MAX([waiting, received])", "Label": "dead letters", "ReturnData": True},
    ]
    return alarm


def resources(functions: tuple[str, ...], *, retention_days: int, api_name: Any, api_stage: str) -> dict[str, Any]:
    """The topic, its optional subscription, every alarm, the dashboard and the functions' log groups."""
    result: dict[str, Any] = {
        TOPIC: {"Type": "AWS::SNS::Topic", "Properties": {"DisplayName": {"Fn::Sub": "NanoGen ${AWS::StackName}"}}},
        "AlarmEmailSubscription": {
            "Type": "AWS::SNS::Subscription",
            "Condition": "HasAlarmEmail",
            "Properties": {"TopicArn": {"Ref": TOPIC}, "Protocol": "email", "Endpoint": {"Ref": "AlarmEmail"}},
        },
        "DeadLetterQueueAlarm": _dead_letter_alarm(),
        # No handler consumes it, so a message waits there: the visible count sees it.
        "BroadcastDeadLetterQueueAlarm": _alarm(
            "A broadcast page failed five times and was parked in the broadcast dead-letter queue.",
            Namespace="AWS/SQS",
            MetricName="ApproximateNumberOfMessagesVisible",
            Statistic="Maximum",
            Dimensions=[{"Name": "QueueName", "Value": {"Fn::GetAtt": ["BroadcastDeadLetterQueue", "QueueName"]}}],
        ),
        "Api5xxAlarm": _alarm(
            "The API answered 5xx.",
            Namespace="AWS/ApiGateway",
            MetricName="5XXError",
            Dimensions=[{"Name": "ApiName", "Value": api_name}, {"Name": "Stage", "Value": api_stage}],
        ),
        "ProviderAuthRefusedAlarm": _alarm(
            "AIML refused our API key (401/403): check the aiml-api-key parameter and the AIML account.",
            Namespace=NAMESPACE,
            MetricName=PROVIDER_AUTH_METRIC,
            Dimensions=[SERVICE_DIMENSION],
        ),
        # A sweep where every phase failed raises (the sweeper's Errors alarm); this one sees a
        # phase, or one generation, failing sweep after sweep while the rest works.
        "SweepFailuresAlarm": _alarm(
            f"The sweeper failed on something in each of the last {SWEEP_FAILURE_MINUTES} minutes: expired "
            "generations may wait for their refund or lost jobs for their re-queue (see its log).",
            Namespace=NAMESPACE,
            MetricName=SWEEP_FAILURES_METRIC,
            Dimensions=[SERVICE_DIMENSION],
            EvaluationPeriods=SWEEP_FAILURE_MINUTES,
            DatapointsToAlarm=SWEEP_FAILURE_MINUTES,
        ),
    }
    for function in functions:
        dimension = [{"Name": "FunctionName", "Value": {"Ref": function}}]
        for metric in ("Errors", "Throttles"):
            result[f"{function}{metric}Alarm"] = _alarm(
                f"{function} reported {metric.lower()}.",
                Namespace="AWS/Lambda",
                MetricName=metric,
                Dimensions=dimension,
            )
        # Named as Lambda names it, so the function writes here instead of
        # creating a group that never expires.
        result[f"{function}LogGroup"] = {
            "Type": "AWS::Logs::LogGroup",
            "DeletionPolicy": "Delete",
            "UpdateReplacePolicy": "Delete",
            "Properties": {
                "LogGroupName": {"Fn::Sub": f"/aws/lambda/${{{function}}}"},
                "RetentionInDays": retention_days,
            },
        }
    result["Dashboard"] = {
        "Type": "AWS::CloudWatch::Dashboard",
        "Properties": {
            "DashboardName": {"Fn::Sub": "${AWS::StackName}"},
            "DashboardBody": {"Fn::Sub": json.dumps(dashboard_body(), separators=(",", ":"))},
        },
    }
    return result


def dashboard_body() -> dict[str, Any]:
    """The dashboard's JSON (``${AWS::Region}`` is substituted by CloudFormation)."""
    widgets = []
    for row, (title, metrics) in enumerate(DASHBOARD_ROWS):
        widgets.append(
            {
                "type": "metric",
                "x": 0,
                "y": 6 * row,
                "width": 24,
                "height": 6,
                "properties": {
                    "title": title,
                    "region": "${AWS::Region}",
                    "view": "timeSeries",
                    "period": 300,
                    "metrics": [
                        [NAMESPACE, name, SERVICE_DIMENSION["Name"], SERVICE_DIMENSION["Value"], {"stat": stat}]
                        for name, stat in metrics
                    ],
                },
            }
        )
    return {"widgets": widgets}


def dashboard_metrics() -> set[str]:
    return {name for _, metrics in DASHBOARD_ROWS for name, _ in metrics}
