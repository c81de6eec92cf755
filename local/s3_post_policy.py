"""S3's POST-policy rules, which moto does not enforce, in front of the local emulator.

A browser upload with a presigned POST (``POST /api/uploads``) is accepted
by S3 only if the form matches the policy the server signed: not expired,
every form field covered by a condition, each condition met (exact values,
``starts-with``, ``content-length-range`` on the file). moto stores
whatever it is sent, so without this the local stack and the tests could
not show that S3 refuses another type or a larger file. Only form uploads
to a bucket (``POST /<bucket>`` as ``multipart/form-data``) are checked;
everything else goes to moto untouched.

The signature is not checked: moto accepts any credentials, and the
policy's conditions are what this feature relies on.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from werkzeug.wrappers import Request

# Fields S3 never expects a condition for.
_UNCONDITIONED = {"policy", "x-amz-signature", "file", "awsaccesskeyid", "signature"}

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class PolicyViolation(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        self.status, self.code, self.message = status, code, message
        super().__init__(message)


def enforce_post_policies(app: WsgiApp) -> WsgiApp:
    def checked(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not _is_form_upload(environ):
            return app(environ, start_response)
        raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(raw)
        request = Request(dict(environ, **{"wsgi.input": io.BytesIO(raw)}))
        try:
            check_form(request.path.strip("/"), dict(request.form), _file_size(request))
        except PolicyViolation as refused:
            body = (
                f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{refused.code}</Code>'
                f"<Message>{escape(refused.message)}</Message></Error>"
            ).encode()
            reason = {400: "Bad Request", 403: "Forbidden"}[refused.status]
            start_response(
                f"{refused.status} {reason}", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))]
            )
            return [body]
        return app(environ, start_response)

    return checked


def _is_form_upload(environ: dict[str, Any]) -> bool:
    path = str(environ.get("PATH_INFO", "")).strip("/")
    return (
        environ.get("REQUEST_METHOD") == "POST"
        and str(environ.get("CONTENT_TYPE", "")).startswith("multipart/form-data")
        and bool(path)
        and "/" not in path
        and not environ.get("QUERY_STRING")
    )


def _file_size(request: Request) -> int | None:
    upload = request.files.get("file")
    return None if upload is None else len(upload.read())


def check_form(bucket: str, form: dict[str, str], file_size: int | None) -> None:
    """Raise ``PolicyViolation`` where S3 would refuse this form."""
    fields = {name.lower(): value for name, value in form.items()}
    if file_size is None:
        raise PolicyViolation(400, "InvalidArgument", "POST requires exactly one file upload per request.")
    try:
        policy = json.loads(base64.b64decode(fields["policy"]))
    except (KeyError, ValueError) as error:
        raise PolicyViolation(400, "InvalidPolicyDocument", f"Invalid Policy: {error}") from None
    expiration = datetime.fromisoformat(str(policy["expiration"]).replace("Z", "+00:00"))
    if expiration < datetime.now(UTC):
        raise PolicyViolation(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
    values = {**fields, "bucket": bucket}
    covered: set[str] = set()
    for condition in policy.get("conditions", []):
        if isinstance(condition, dict):
            for name, expected in condition.items():
                _require(values.get(name.lower()) == expected, condition)
                covered.add(name.lower())
        elif condition[0] == "content-length-range":
            low, high = int(condition[1]), int(condition[2])
            if file_size > high:
                raise PolicyViolation(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")
            if file_size < low:
                raise PolicyViolation(400, "EntityTooSmall", "Your proposed upload is smaller than the minimum size")
        else:
            operation, name, expected = condition[0].lower(), str(condition[1]).lstrip("$").lower(), condition[2]
            value = values.get(name, "")
            _require(value == expected if operation == "eq" else value.startswith(expected), condition)
            covered.add(name)
    for name in fields:
        if name not in covered and name not in _UNCONDITIONED and not name.startswith("x-ignore-"):
            raise PolicyViolation(
                403, "AccessDenied", f'Invalid according to Policy: Extra input fields: "{name}" has no condition.'
            )


def _require(met: bool, condition: Any) -> None:
    if not met:
        raise PolicyViolation(
            403, "AccessDenied", f"Invalid according to Policy: Policy Condition failed: {json.dumps(condition)}"
        )
