"""A local AWS endpoint (moto) that handles one request at a time.

moto's own threaded server loses conditional updates under concurrency
(16 threads racing conditional decrements acknowledged more debits than
the balance allowed). Here every request runs under one lock, so DynamoDB's
conditions and transactions are exact, as they are in AWS; connections are
still accepted concurrently, so clients queue instead of failing.

    python -m local.aws_server --port 4566
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server

ROOT = Path(__file__).resolve().parent.parent


def start(port: int = 0, *, env: dict[str, str] | None = None, **popen: Any) -> tuple[subprocess.Popen[str], str]:
    """Run the server in a child process; return it and its URL once it listens.

    ``port`` 0 picks a free one. Extra keyword arguments go to ``Popen``.
    """
    environment = {**(os.environ if env is None else env), "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "local.aws_server", "--port", str(port)],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        text=True,
        **popen,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(r"http://[\d.]+:\d+", line)
    if not match:
        process.kill()
        process.wait()
        raise RuntimeError(f"local AWS did not start on port {port}: {line!r}")
    return process, match.group(0)


def one_request_at_a_time(process_request: Callable[..., Any]) -> Callable[..., Any]:
    """The same serialization for in-process moto: wrap ``BotocoreStubber.process_request``.

    Tests and benchmarks whose code runs threads (the worker's batch) patch
    moto with this, because its DynamoDB is not thread-safe either.
    """
    lock = threading.RLock()

    def serialized(self: Any, request: Any) -> Any:
        with lock:
            return process_request(self, request)

    return serialized


def serialized_moto_app() -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    from moto.server import DomainDispatcherApplication, create_backend_app

    from local.s3_post_policy import enforce_post_policies

    # moto stores any form upload; S3 checks it against its signed policy first.
    moto_app = enforce_post_policies(DomainDispatcherApplication(create_backend_app))
    lock = threading.Lock()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with lock:
            # Drain the body inside the lock: the response is computed lazily.
            return [b"".join(moto_app(environ, start_response))]

    return app


class _QuietHandler(WSGIRequestHandler):
    """No access log: the stack's output is for NanoGen's own logs."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4566)
    args = parser.parse_args(argv)
    server = make_server(args.host, args.port, serialized_moto_app(), threaded=True, request_handler=_QuietHandler)
    # The parent reads this line to learn the port (``--port 0`` picks a free one).
    print(f"local AWS listening on http://{args.host}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
