"""Logging, metrics and (opt-in) tracing, created once and imported everywhere.

``logger`` writes JSON with the correlation id; handlers append ``user_id``
and ``generation_id`` when they know them. ``metrics`` publishes to the
``NanoGen`` CloudWatch namespace through the embedded metric format (no API
call). The X-Ray tracer costs ~400 ms of import time, so it is only loaded
when ``NANOGEN_TRACING=1``.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = "nanogen"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace="NanoGen", service=SERVICE)

__all__ = ["MetricUnit", "count", "logger", "metrics", "tracer"]


def count(name: str, value: float = 1, unit: MetricUnit = MetricUnit.Count) -> None:
    """Add a metric point; never let metrics break the request that emits them."""
    try:
        metrics.add_metric(name=name, unit=unit, value=value)
    except Exception:  # pragma: no cover - a metric is never worth a failed request
        logger.exception("metric %s could not be recorded", name)


class _NoTracer:
    """Stands in for Powertools' Tracer when tracing is off: decorators pass through."""

    def capture_lambda_handler(self, func: Any = None, **_: Any) -> Any:
        return func if func is not None else (lambda f: f)

    def capture_method(self, func: Any = None, **_: Any) -> Any:
        return func if func is not None else (lambda f: f)


def _make_tracer() -> Any:
    if os.environ.get("NANOGEN_TRACING") != "1":
        return _NoTracer()
    from importlib.util import find_spec

    if find_spec("aws_xray_sdk") is None:
        # The package does not ship the X-Ray SDK (requirements.txt): a tracing switch must
        # never take every cold start down with an ImportError.
        logger.warning("NANOGEN_TRACING=1 but aws-xray-sdk is not installed: tracing stays off")
        return _NoTracer()
    from aws_lambda_powertools import Tracer  # imports the X-Ray SDK: slow

    return Tracer(service=SERVICE)


tracer = _make_tracer()
