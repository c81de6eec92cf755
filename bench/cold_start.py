"""Cold start: each Lambda's imports in a fresh process next to `import boto3`, and the package size.

    .venv/bin/python -m bench.cold_start [--runs 7] [--no-package]

Every Lambda loads app.py; the API Lambda then imports its handler module on
its first request, the worker its own. The bot's texts (Fluent and Babel)
load on the first text a process formats, measured on top of the webhook. Each figure is the median wall time
of a fresh interpreter importing exactly that set, measured inside the
child with perf_counter (interpreter start-up excluded). Bytecode caches
are warm, as they are when the package ships .pyc files.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_FIRST_TEXT = "from chalicelib import i18n; i18n.t('{lang}', 'balance-line', balance=21)"
TARGETS = {
    "import boto3 (baseline)": "import boto3",
    "app.py (every Lambda)": "import app",
    "app.py + API handlers": "import app; import chalicelib.handlers.api, chalicelib.handlers.admin",
    "app.py + worker handlers": "import app; import chalicelib.handlers.worker",
    "app.py + sweeper": "import app; import chalicelib.handlers.sweeper",
    "app.py + webhook handler": "import app; import chalicelib.handlers.webhook",
}
# The bot's first text in a process (Fluent + Babel + one catalogue, chalicelib.i18n),
# timed on its own after the imports named on the left.
_WEBHOOK = "import app; import chalicelib.handlers.webhook"
FIRST_TEXT_TARGETS = {
    "first Russian text, after the webhook": (_WEBHOOK, _FIRST_TEXT.format(lang="ru")),
    "first English text, after the webhook": (_WEBHOOK, _FIRST_TEXT.format(lang="en")),
    "Russian after English, after the webhook": (
        f"{_WEBHOOK}; {_FIRST_TEXT.format(lang='en')}",
        _FIRST_TEXT.format(lang="ru"),
    ),
    "first Russian text, bare interpreter": ("pass", _FIRST_TEXT.format(lang="ru")),
}


def measure(statement: str, setup: str = "pass", *, cpu: bool = False) -> float:
    """Seconds of wall time (or, with ``cpu``, of the child's CPU time: steadier on a busy machine)."""
    clock = "time.process_time" if cpu else "time.perf_counter"
    code = f"{setup}; import time; t = {clock}(); {statement}; print({clock}() - t)"
    env = {"PYTHONPATH": str(ROOT), "AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin"}
    output = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout
    return float(output.strip().splitlines()[-1])


def package_size() -> str:
    """Build the real deployment package (infra.package) in a temporary folder and weigh it."""
    import tempfile
    import zipfile

    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "dev"
        env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
        subprocess.run([sys.executable, "-m", "infra.package", "dev", str(out)], cwd=ROOT, env=env, check=True,
                       capture_output=True)  # fmt: skip
        archive = out / "deployment.zip"
        with zipfile.ZipFile(archive) as zipped:
            files = len(zipped.namelist())
            unpacked = sum(item.file_size for item in zipped.infolist())
        return (
            f"deployment package: {archive.stat().st_size / 1e6:.1f} MB zipped, "
            f"{unpacked / 1e6:.1f} MB unpacked, {files} files (boto3/botocore left to the runtime)\n"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--no-package", action="store_true", help="skip building the deployment package")
    args = parser.parse_args()
    if not args.no_package:
        print(package_size())
    measure("import app")  # warm the bytecode caches once
    baseline = None
    print(f"median of {args.runs} fresh processes\n")
    for label, statement in TARGETS.items():
        median = statistics.median(measure(statement) for _ in range(args.runs)) * 1000
        baseline = baseline or median
        print(f"{label:<28} {median:7.1f} ms   {median / baseline:4.2f} x boto3")
    print("\nthe first text of a process, timed after the imports it names")
    for label, (setup, statement) in FIRST_TEXT_TARGETS.items():
        wall = statistics.median(measure(statement, setup) for _ in range(args.runs)) * 1000
        cpu = statistics.median(measure(statement, setup, cpu=True) for _ in range(args.runs)) * 1000
        print(f"{label:<42} {wall:7.1f} ms wall {cpu:7.1f} ms CPU")
    print(f"\nreproduce: .venv/bin/python -m bench.cold_start --runs {args.runs}")


if __name__ == "__main__":
    main()
