"""Observability switches never break a cold start."""

from __future__ import annotations

import sys

import pytest

from chalicelib import observability


def test_tracing_without_the_xray_sdk_stays_off_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NANOGEN_TRACING", "1")
    monkeypatch.setitem(sys.modules, "aws_xray_sdk", None)  # as in the package: not shipped
    warnings: list[str] = []
    monkeypatch.setattr(observability.logger, "warning", lambda message, *args, **kwargs: warnings.append(message))

    tracer = observability._make_tracer()

    def handler() -> str:
        return "answered"

    assert isinstance(tracer, observability._NoTracer)
    assert tracer.capture_lambda_handler(handler)() == "answered"
    assert tracer.capture_method()(handler) is handler
    assert any("aws-xray-sdk is not installed" in message for message in warnings)


def test_tracing_is_off_unless_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NANOGEN_TRACING", raising=False)
    assert isinstance(observability._make_tracer(), observability._NoTracer)
