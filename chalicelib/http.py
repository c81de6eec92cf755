"""The edge of the REST API: JSON responses and the one place errors become responses.

``JsonApi.route`` registers a Chalice route whose view is wrapped so that
an ``ApiError`` becomes its CONTRACT §4 JSON body and status, and anything
unexpected becomes a 500 ``internal_error`` with a request id (the detail
goes to the log, never to the client).
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from chalice import Chalice, CORSConfig, Response

from chalicelib.errors import ApiError, ConfigurationError
from chalicelib.observability import logger, metrics

# Accept any content type: the body is parsed (and refused with a clear 400
# in our error format) by chalicelib.validation, not by Chalice's own 415.
ACCEPTED_CONTENT_TYPES = ["*/*"]
# Authentication is an explicit header, never a cookie, so allowing any
# origin grants nothing to a foreign page; still, in AWS only the Mini App's
# origin is allowed (``cors_origin``), and '*' is left to local development.
CORS = CORSConfig(
    allow_origin="*",
    allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
    expose_headers=["Retry-After", "X-Request-Id"],
    max_age=600,
)
_REQUEST_LOG_KEYS = ["user_id", "generation_id", "admin", "admin_user_id"]
_SECURITY_HEADERS = {
    "Content-Type": "application/json",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(body=body, status_code=status, headers={**_SECURITY_HEADERS, **(headers or {})})


def error_response(error: ApiError) -> Response:
    return json_response(error.body(), error.status, error.headers)


def internal_error_response(request_id: str) -> Response:
    body = {
        "error": {
            "code": "internal_error",
            "message": "An unexpected error occurred. Quote this request id if you report it.",
            "request_id": request_id,
        }
    }
    return json_response(body, 500, {"X-Request-Id": request_id})


def request_id_of(app: Chalice) -> str:
    """API Gateway's request id when there is one, else a fresh one."""
    request = app.current_request
    context = getattr(request, "context", None) or {}
    value = context.get("requestId") if isinstance(context, dict) else None
    return str(value or uuid.uuid4())


# Set by the deployment template on the API stage (infra/template.py).
CORS_STAGE_VARIABLE = "corsOrigin"


def cors_origin(app: Chalice) -> str | None:
    """The one origin allowed to read answers: the stage's, else ``CORS_ALLOW_ORIGIN``, else None ('*')."""
    stage_vars = getattr(app.current_request, "stage_vars", None) or {}
    origin = stage_vars.get(CORS_STAGE_VARIABLE) if isinstance(stage_vars, dict) else None
    return origin or os.environ.get("CORS_ALLOW_ORIGIN", "").strip() or None


class JsonApi:
    """Registers routes on a Chalice app with NanoGen's error handling."""

    def __init__(self, app: Chalice) -> None:
        self.app = app

    def route(self, path: str, methods: tuple[str, ...] = ("GET",)) -> Callable[[Callable[..., Any]], Any]:
        def register(view: Callable[..., Any]) -> Any:
            @functools.wraps(view)
            def wrapped(**params: Any) -> Response:
                return self._run(view, params)

            return self.app.route(path, methods=list(methods), content_types=ACCEPTED_CONTENT_TYPES, cors=CORS)(wrapped)

        return register

    def _run(self, view: Callable[..., Any], params: dict[str, Any]) -> Response:
        response = self._answer(view, params)
        origin = cors_origin(self.app)
        if origin:  # Chalice adds its CORS headers only where none is set
            response.headers["Access-Control-Allow-Origin"] = origin
        return response

    def _answer(self, view: Callable[..., Any], params: dict[str, Any]) -> Response:
        request_id = request_id_of(self.app)
        logger.remove_keys(_REQUEST_LOG_KEYS)
        logger.set_correlation_id(request_id)
        try:
            result = view(**params)
            return result if isinstance(result, Response) else json_response(result)
        except ApiError as error:
            logger.info("request refused", extra={"status": error.status, "code": error.code})
            return error_response(error)
        except ConfigurationError:
            logger.exception("configuration error", extra={"request_id": request_id})
            return internal_error_response(request_id)
        except Exception:
            logger.exception("unexpected error", extra={"request_id": request_id})
            return internal_error_response(request_id)
        finally:
            flush_metrics()


def flush_metrics() -> None:
    """Publish the invocation's metrics (EMF log line); nothing if none were added."""
    try:
        if metrics.metric_set:
            metrics.flush_metrics()
    except Exception:  # pragma: no cover - metrics never fail a request
        logger.exception("metrics could not be flushed")
