"""CloudFormation resources for NanoGen's tables, queues and bucket.

Tables are derived from the PynamoDB models themselves (keys, attribute
types, indexes, projections), so code and infrastructure cannot disagree.
``local.stack`` creates the same resources in moto from this output.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.tables import TABLE_MODELS, TTL_ATTRIBUTES

# Seconds. A generation older than GENERATION_TIMEOUT_SECONDS (CONTRACT §2,
# 300 by default) is failed and refunded by the sweeper, so a job's delivery
# is only worth retrying inside that window:
# * the worker Lambda may run for WORKER_TIMEOUT_SECONDS (120);
# * the queue's visibility timeout must be >= that (Lambda refuses an event
#   source whose visibility is below the function timeout) and is what a
#   crashed or timed-out attempt waits before its message is seen again;
# * 150 = 120 + 30 s margin, so the second attempt starts at 150 s and ends
#   by 270 s, inside the 300 s window. The old 6 x timeout (720 s) guarded
#   against throttled batches, which maximum_concurrency on the event source
#   now prevents; it only outlived the generation timeout.
GENERATION_TIMEOUT_SECONDS = 300
WORKER_TIMEOUT_SECONDS = 120
VISIBILITY_TIMEOUT_SECONDS = WORKER_TIMEOUT_SECONDS + 30
# The dead-letter handler is a Lambda too: its queue's visibility must stay
# >= its timeout; nothing races its work, so the usual 6 x margin is kept.
DEAD_LETTER_WORKER_TIMEOUT_SECONDS = 60
DEAD_LETTER_VISIBILITY_TIMEOUT_SECONDS = 6 * DEAD_LETTER_WORKER_TIMEOUT_SECONDS
# Where reference images (Mini App uploads, copies of Telegram photos) are
# stored in the results bucket; they expire after UPLOAD_EXPIRY_DAYS, results stay.
UPLOADS_PREFIX = "uploads/"
UPLOAD_EXPIRY_DAYS = 1
MAX_RECEIVE_COUNT = 5  # deliveries before a job goes to the dead-letter queue
# The broadcast worker sends one page of an audience per invocation (chalicelib.broadcasts).
BROADCAST_WORKER_TIMEOUT_SECONDS = 120
BROADCAST_VISIBILITY_TIMEOUT_SECONDS = 6 * BROADCAST_WORKER_TIMEOUT_SECONDS

TABLE_LOGICAL_IDS = {
    "users": "UsersTable",
    "generations": "GenerationsTable",
    "ledger": "LedgerTable",
    "payments": "PaymentsTable",
    "guards": "GuardsTable",
    "growth": "GrowthTable",
}


def table_properties(logical: str) -> dict[str, Any]:
    """CloudFormation ``AWS::DynamoDB::Table`` properties for one model."""
    schema = TABLE_MODELS[logical]._get_schema()
    properties: dict[str, Any] = {
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": sorted(schema["attribute_definitions"], key=lambda a: a["AttributeName"]),
        # DynamoDB wants HASH before RANGE.
        "KeySchema": sorted(schema["key_schema"], key=lambda k: k["KeyType"] != "HASH"),
        "SSESpecification": {"SSEEnabled": True},
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
    }
    indexes = [
        {
            "IndexName": index["index_name"],
            "KeySchema": index["key_schema"],
            "Projection": index["projection"],
        }
        for index in schema["global_secondary_indexes"]
    ]
    if indexes:
        properties["GlobalSecondaryIndexes"] = indexes
    if logical in TTL_ATTRIBUTES:
        properties["TimeToLiveSpecification"] = {"AttributeName": TTL_ATTRIBUTES[logical], "Enabled": True}
    return properties


def resources() -> dict[str, Any]:
    """Every stateful resource of the stack, as CloudFormation ``Resources``."""
    result: dict[str, Any] = {
        logical_id: {
            "Type": "AWS::DynamoDB::Table",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": table_properties(logical),
        }
        for logical, logical_id in TABLE_LOGICAL_IDS.items()
    }
    result["DeadLetterQueue"] = {
        "Type": "AWS::SQS::Queue",
        "Properties": {
            "VisibilityTimeout": DEAD_LETTER_VISIBILITY_TIMEOUT_SECONDS,
            "MessageRetentionPeriod": 14 * 24 * 3600,
            "SqsManagedSseEnabled": True,
        },
    }
    result["GenerationQueue"] = {
        "Type": "AWS::SQS::Queue",
        "Properties": {
            "VisibilityTimeout": VISIBILITY_TIMEOUT_SECONDS,
            "MessageRetentionPeriod": 24 * 3600,
            "SqsManagedSseEnabled": True,
            "RedrivePolicy": {
                "deadLetterTargetArn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
                "maxReceiveCount": MAX_RECEIVE_COUNT,
            },
        },
    }
    # Broadcast pages: a page that fails five times is parked here for the operator (no consumer).
    result["BroadcastDeadLetterQueue"] = {
        "Type": "AWS::SQS::Queue",
        "Properties": {"MessageRetentionPeriod": 14 * 24 * 3600, "SqsManagedSseEnabled": True},
    }
    result["BroadcastQueue"] = {
        "Type": "AWS::SQS::Queue",
        "Properties": {
            "VisibilityTimeout": BROADCAST_VISIBILITY_TIMEOUT_SECONDS,
            "MessageRetentionPeriod": 4 * 24 * 3600,
            "SqsManagedSseEnabled": True,
            "RedrivePolicy": {
                "deadLetterTargetArn": {"Fn::GetAtt": ["BroadcastDeadLetterQueue", "Arn"]},
                "maxReceiveCount": MAX_RECEIVE_COUNT,
            },
        },
    }
    result["ResultsBucket"] = {
        "Type": "AWS::S3::Bucket",
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
            "LifecycleConfiguration": {"Rules": [_uploads_expiry_rule()]},
            # The Mini App posts reference pictures straight to the bucket (POST /api/uploads) from
            # its own origin. Any origin may try: the signed POST policy is what admits a file.
            "CorsConfiguration": {
                "CorsRules": [
                    {"AllowedMethods": ["POST"], "AllowedOrigins": ["*"], "AllowedHeaders": ["*"], "MaxAge": 3600}
                ]
            },
        },
    }
    return result


def _uploads_expiry_rule() -> dict[str, Any]:
    return {
        "Id": "ExpireUploads",
        "Status": "Enabled",
        "Prefix": UPLOADS_PREFIX,
        "ExpirationInDays": UPLOAD_EXPIRY_DAYS,
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": UPLOAD_EXPIRY_DAYS},
    }


def lifecycle_rules_for_api() -> list[dict[str, Any]]:
    """The bucket's lifecycle rules in the S3 API's spelling (what ``create_locally`` puts)."""
    rules = []
    for rule in resources()["ResultsBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]:
        rules.append(
            {
                "ID": rule["Id"],
                "Status": rule["Status"],
                "Filter": {"Prefix": rule["Prefix"]},
                "Expiration": {"Days": rule["ExpirationInDays"]},
                "AbortIncompleteMultipartUpload": rule["AbortIncompleteMultipartUpload"],
            }
        )
    return rules


def create_locally(
    settings: Any, *, visibility_timeout: int | None = None, max_receive_count: int | None = None
) -> None:
    """Create every resource of ``resources()`` through the current AWS endpoint (moto).

    Local runs may shorten the queue's timing (a crashed local job should be
    retried in seconds, not minutes); everything else is as defined.
    """
    from chalicelib import aws
    from chalicelib.tables import table_names

    defined = resources()
    dynamodb = aws.client("dynamodb")
    existing = set(dynamodb.list_tables().get("TableNames", []))
    for logical, name in table_names(settings).items():
        properties = defined[TABLE_LOGICAL_IDS[logical]]["Properties"]
        if name in existing:
            continue
        create: dict[str, Any] = {
            "TableName": name,
            "BillingMode": properties["BillingMode"],
            "AttributeDefinitions": properties["AttributeDefinitions"],
            "KeySchema": properties["KeySchema"],
            "SSESpecification": {"Enabled": True},
        }
        if "GlobalSecondaryIndexes" in properties:
            create["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
        dynamodb.create_table(**create)
        ttl = properties.get("TimeToLiveSpecification")
        if ttl:
            dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)

    sqs = aws.client("sqs")
    dlq_props = defined["DeadLetterQueue"]["Properties"]
    dlq_url = sqs.create_queue(
        QueueName=settings.dead_letter_queue_name,
        Attributes={
            "VisibilityTimeout": str(visibility_timeout or dlq_props["VisibilityTimeout"]),
            "MessageRetentionPeriod": str(dlq_props["MessageRetentionPeriod"]),
        },
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_props = defined["GenerationQueue"]["Properties"]
    redrive = {
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": str(max_receive_count or queue_props["RedrivePolicy"]["maxReceiveCount"]),
    }
    sqs.create_queue(
        QueueName=settings.generation_queue_name,
        Attributes={
            "VisibilityTimeout": str(visibility_timeout or queue_props["VisibilityTimeout"]),
            "MessageRetentionPeriod": str(queue_props["MessageRetentionPeriod"]),
            "RedrivePolicy": json.dumps(redrive),
        },
    )

    broadcast_dlq_url = sqs.create_queue(QueueName=f"{settings.broadcast_queue_name}-dlq")["QueueUrl"]
    broadcast_dlq_arn = sqs.get_queue_attributes(QueueUrl=broadcast_dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    broadcast_props = defined["BroadcastQueue"]["Properties"]
    sqs.create_queue(
        QueueName=settings.broadcast_queue_name,
        Attributes={
            "VisibilityTimeout": str(visibility_timeout or broadcast_props["VisibilityTimeout"]),
            "MessageRetentionPeriod": str(broadcast_props["MessageRetentionPeriod"]),
            "RedrivePolicy": json.dumps(
                {
                    "deadLetterTargetArn": broadcast_dlq_arn,
                    "maxReceiveCount": str(max_receive_count or MAX_RECEIVE_COUNT),
                }
            ),
        },
    )

    s3 = aws.client("s3")
    s3.create_bucket(Bucket=settings.results_bucket)
    bucket = defined["ResultsBucket"]["Properties"]
    s3.put_public_access_block(
        Bucket=settings.results_bucket, PublicAccessBlockConfiguration=bucket["PublicAccessBlockConfiguration"]
    )
    s3.put_bucket_lifecycle_configuration(
        Bucket=settings.results_bucket, LifecycleConfiguration={"Rules": lifecycle_rules_for_api()}
    )
    # CloudFormation's CorsRules/MaxAge are the API's CORSRules/MaxAgeSeconds.
    rules = [
        {**{key: value for key, value in rule.items() if key != "MaxAge"}, "MaxAgeSeconds": rule["MaxAge"]}
        for rule in bucket["CorsConfiguration"]["CorsRules"]
    ]
    s3.put_bucket_cors(Bucket=settings.results_bucket, CORSConfiguration={"CORSRules": rules})
