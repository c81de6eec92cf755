"""`make run`'s REST API: ``chalice local`` over the real app, minus one echo.

For a path no route matches, Chalice's local gateway imitates API Gateway's
old SigV4 complaint and quotes the request's ``Authorization`` header in
the 403 body (``... Authorization=tma <initData>``): a login, copied into
whatever logs or shows that body. The deployed API answers an unknown route
with its MISSING_AUTHENTICATION_TOKEN gateway response (``infra/template.py``):
404 ``not_found`` in the CONTRACT §4 shape. This runs the same ``chalice
local`` command with a gateway that answers the same way and echoes nothing.

    python -m local.api_server --no-autoreload --host 127.0.0.1 --port 8000 --stage local
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import chalice.local
from chalice.local import LocalGateway, LocalGatewayException

ROOT = Path(__file__).resolve().parent.parent

NO_SUCH_ROUTE_BODY = json.dumps({"error": {"code": "not_found", "message": "No such route."}}).encode()


class NoSuchRoute(LocalGatewayException):
    CODE = 404

    def __init__(self) -> None:
        super().__init__({"Content-Type": "application/json", "Cache-Control": "no-store"}, NO_SUCH_ROUTE_BODY)


class NoEchoGateway(LocalGateway):
    """Chalice's local gateway, except that an unknown route is a 404 that quotes no request header."""

    def _generate_lambda_event(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super()._generate_lambda_event(*args, **kwargs)
        except ValueError:  # Chalice's "no route matches this path"
            raise NoSuchRoute() from None


def main(argv: list[str]) -> int:
    from chalice.cli import cli

    # ChaliceRequestHandler builds its gateway by this module-level name for every request.
    chalice.local.LocalGateway = NoEchoGateway  # type: ignore[misc]
    try:
        cli.main(args=["--project-dir", str(ROOT), "local", *argv], prog_name="chalice", obj={})
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
