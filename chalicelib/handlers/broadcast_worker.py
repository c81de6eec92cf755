"""The SQS-triggered Lambda that sends broadcasts, one page of an audience per message (batch size 1).

An error propagates, so SQS delivers the page again (its visibility
timeout later); every user already claimed is skipped then.
"""

from __future__ import annotations

from typing import Any

from chalicelib import bootstrap, broadcasts
from chalicelib.http import flush_metrics
from chalicelib.observability import logger
from chalicelib.runtime import ready


def process(event: dict[str, Any], context: Any) -> None:
    settings = ready()
    try:
        for record in event.get("Records", []):
            page = broadcasts.Page.from_message(record.get("body", ""))
            if page is None:
                logger.error("not a broadcast page; dropped", extra={"message_id": record.get("messageId")})
                continue
            receives = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
            remaining = None
            if context is not None and hasattr(context, "get_remaining_time_in_millis"):
                remaining = lambda: context.get_remaining_time_in_millis() / 1000  # noqa: E731
            broadcasts.run_page(
                page,
                settings,
                bootstrap.broadcast_bot_api(),
                redelivered=receives > 1,
                remaining_seconds=remaining,
            )
    finally:
        flush_metrics()
