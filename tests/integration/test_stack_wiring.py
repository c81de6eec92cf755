"""What the deployment template sets reaches the code: the Mini App URL and the CORS origin.

The template gives the functions the Mini App's URL as an SSM parameter name
(``MINI_APP_URL_PARAMETER``) and the API's allowed origin as a stage variable
(``corsOrigin``); these tests feed both the way AWS does and read them back.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import reset_process_state

MINI_APP = "https://d111abcdef8.cloudfront.net"


def test_mini_app_url_is_read_from_the_parameter_the_stack_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    from moto import mock_aws

    from chalicelib.config import load_settings
    from infra.template import environment

    name = environment("prod")["MINI_APP_URL_PARAMETER"]
    with mock_aws():
        boto3.client("ssm", region_name="us-east-1").put_parameter(Name=name, Value=f"{MINI_APP}/app/", Type="String")
        settings = load_settings({"AWS_DEFAULT_REGION": "us-east-1", "MINI_APP_URL_PARAMETER": name})
        assert settings.mini_app_url == f"{MINI_APP}/app"  # config drops the trailing slash
        # An explicit MINI_APP_URL (the stage's config.json) still wins.
        explicit = load_settings(
            {
                "AWS_DEFAULT_REGION": "us-east-1",
                "MINI_APP_URL_PARAMETER": name,
                "MINI_APP_URL": "https://example.org/app/",
            }
        )
        assert explicit.mini_app_url == "https://example.org/app"


def _proxy_event(path: str, method: str = "GET", stage_variables: dict[str, str] | None = None) -> dict[str, Any]:
    headers = {"Host": "abc.execute-api.us-east-1.amazonaws.com", "Origin": "https://evil.example"}
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": stage_variables,
        "requestContext": {"resourcePath": path, "httpMethod": method, "requestId": "req-1", "stage": "api"},
        "body": None,
        "isBase64Encoded": False,
    }


def _allowed_origin(event: dict[str, Any]) -> str:
    from app import app

    response = app(event, None)
    assert response["statusCode"] in (200, 401), response
    headers = {name.lower(): value for name, value in response["headers"].items()}
    return str(headers["access-control-allow-origin"])


def test_in_aws_the_api_allows_only_the_stage_s_mini_app_origin(aws: None) -> None:
    event = _proxy_event("/api/health", stage_variables={"corsOrigin": MINI_APP})
    assert _allowed_origin(event) == MINI_APP
    # An error answer too (no credentials on an authenticated route).
    assert _allowed_origin(_proxy_event("/api/user/me", stage_variables={"corsOrigin": MINI_APP})) == MINI_APP


def test_locally_cors_is_open_unless_an_origin_is_configured(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _allowed_origin(_proxy_event("/api/health")) == "*"
    monkeypatch.setenv("CORS_ALLOW_ORIGIN", "http://127.0.0.1:5173")
    reset_process_state()
    assert _allowed_origin(_proxy_event("/api/health")) == "http://127.0.0.1:5173"
