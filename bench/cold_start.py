"""Cold start of what is shipped: the unpacked deployment zip, imported by fresh python3.13 interpreters.

    .venv/bin/python -m bench.cold_start [--runs 7] [--python .venv313/bin/python]

1. builds the deployment package as ``make package`` does (``infra.package``)
   and unpacks it, as Lambda does into /var/task;
2. stands in for /var/runtime with the packages the runtime provides
   (boto3, botocore, s3transfer, urllib3, dateutil, jmespath, six), copied
   with their compiled .pyc from a python3.13 environment (``.venv313``,
   which ``make test`` builds), since the runtime has them compiled;
3. for each set of imports, starts fresh ``python3.13 -S -s`` processes that
   see only those two folders (zip first, as /var/task is on Lambda's
   ``sys.path``), with ``PYTHONDONTWRITEBYTECODE`` (Lambda's code directory
   is read-only, so nothing compiled at one cold start helps the next), and
   times the imports inside the child (interpreter start-up excluded):
   CPU time (``process_time``, what the imports cost, steady on a shared
   machine) and wall time (``perf_counter``, which on a busy machine also
   counts waiting for a core), the median of ``--runs`` each. Three
   packages: the zip as built (its cpython-313 .pyc); the same zip with
   every ``__pycache__`` removed; and the zip as it was before (no .pyc,
   and its own source copies of urllib3, dateutil, jmespath and six
   shadowing the runtime's compiled ones).

Every Lambda loads app.py; the API Lambda then imports its handler modules
on its first request, the worker its own. The bot's texts (Fluent and Babel)
load on the first text a process formats: timed on their own, after the
webhook's imports.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from infra.package import PROVIDED_BY_RUNTIME, RUNTIME_VERSION

ROOT = Path(__file__).resolve().parent.parent

# label: (setup, statement); only the statement is timed, in a process that ran the setup first.
_WEBHOOK = "import app; import chalicelib.handlers.webhook"
_FIRST_TEXT = "from chalicelib import i18n; i18n.t('{lang}', 'balance-line', balance=21)"
TARGETS = {
    "import boto3 (runtime's, baseline)": ("pass", "import boto3"),
    "import app (every Lambda)": ("pass", "import app"),
    "import app + API handlers": ("pass", "import app; import chalicelib.handlers.api, chalicelib.handlers.admin"),
    "import app + worker": ("pass", "import app; import chalicelib.handlers.worker"),
    "import app + sweeper": ("pass", "import app; import chalicelib.handlers.sweeper"),
    "import app + webhook handler": ("pass", _WEBHOOK),
    # The bot's texts (Fluent, Babel, one catalogue) load on the first text a process formats.
    "first Russian text, after the webhook": (_WEBHOOK, _FIRST_TEXT.format(lang="ru")),
    "first English text, after the webhook": (_WEBHOOK, _FIRST_TEXT.format(lang="en")),
    "Russian after English, after the webhook": (
        f"{_WEBHOOK}; {_FIRST_TEXT.format(lang='en')}",
        _FIRST_TEXT.format(lang="ru"),
    ),
}


def build_package(folder: Path) -> Path:
    out = folder / "dev"
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    subprocess.run([sys.executable, "-m", "infra.package", "dev", str(out)], cwd=ROOT, env=env, check=True,
                   capture_output=True)  # fmt: skip
    return out / "deployment.zip"


def runtime_folder(python: str, folder: Path) -> Path:
    """The runtime-provided packages of ``python``'s environment, compiled, as Lambda's /var/runtime holds them."""
    code = (
        "import importlib.util, json, sys\n"
        f"names = {PROVIDED_BY_RUNTIME!r}\n"
        "print(json.dumps([sys.version_info[:2], [importlib.util.find_spec(n).origin for n in names]]))"
    )
    result = subprocess.run([python, "-c", code], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{python} lacks boto3 and its dependencies: build .venv313 with `make test` first")
    version, origins = json.loads(result.stdout)
    if tuple(version) != RUNTIME_VERSION:
        raise SystemExit(f"{python} is Python {version[0]}.{version[1]}, not the runtime's {RUNTIME_VERSION}")
    runtime = folder / "runtime"
    for origin in map(Path, origins):
        if origin.name == "__init__.py":
            shutil.copytree(origin.parent, runtime / origin.parent.name)  # keeps __pycache__ and mtimes
        else:
            runtime.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, runtime / origin.name)
            cache = origin.parent / "__pycache__"
            for compiled in cache.glob(f"{origin.stem}.*.pyc"):
                (runtime / "__pycache__").mkdir(exist_ok=True)
                shutil.copy2(compiled, runtime / "__pycache__" / compiled.name)
    return runtime


def measure(python: str, task: Path, runtime: Path, setup: str, statement: str) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of ``statement`` in a fresh interpreter that ran ``setup`` first."""
    code = (
        f"{setup}; import time; c, t = time.process_time(), time.perf_counter(); "
        f"{statement}; print(time.process_time() - c, time.perf_counter() - t)"
    )
    env = {
        "PYTHONPATH": f"{task}{os.pathsep}{runtime}",
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "TZ": ":UTC",  # as Lambda sets it
        "PATH": "/usr/bin:/bin",
    }
    output = subprocess.run(
        [python, "-S", "-s", "-c", code], cwd=task, env=env, capture_output=True, text=True, check=True
    ).stdout
    cpu, wall = output.strip().splitlines()[-1].split()
    return float(cpu), float(wall)


def default_python() -> str:
    venv = ROOT / ".venv313" / "bin" / "python"
    return str(venv) if venv.exists() else os.environ.get("PYTHON313", "python3.13")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--python", default=default_python(), help="a python3.13 with boto3 installed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        archive = build_package(Path(folder))
        with zipfile.ZipFile(archive) as zipped:
            files = len(zipped.namelist())
            unpacked_bytes = sum(item.file_size for item in zipped.infolist())
            with_pyc = Path(folder) / "task-with-pyc"
            zipped.extractall(with_pyc)
        without_pyc = Path(folder) / "task-without-pyc"
        shutil.copytree(with_pyc, without_pyc, ignore=shutil.ignore_patterns("__pycache__"))
        runtime = runtime_folder(args.python, Path(folder))
        before = Path(folder) / "task-before"
        shutil.copytree(without_pyc, before)
        for shadowing in ("urllib3", "dateutil", "jmespath", "six.py"):
            source = runtime / shadowing
            if source.is_dir():
                shutil.copytree(source, before / shadowing, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(source, before / shadowing)
        print(
            f"deployment package: {archive.stat().st_size / 1e6:.1f} MB zipped, {unpacked_bytes / 1e6:.1f} MB "
            f"unpacked, {files} files; runtime packages ({', '.join(PROVIDED_BY_RUNTIME)}) from {args.python}"
        )
        print(f"median of {args.runs} fresh `python3.13 -S -s` processes, imports timed inside the child")
        print(f"load average before: {' '.join(f'{load:.1f}' for load in os.getloadavg())}\n")
        print("milliseconds: CPU time (process_time), then wall time (perf_counter)")
        print(f"{'':<42}" + f"{'with .pyc':>11}{'no .pyc':>9}{'before':>8}" * 2)
        for label, (setup, statement) in TARGETS.items():
            # boto3 is the runtime's own, compiled either way: one column is enough.
            tasks = (with_pyc,) if statement == "import boto3" else (with_pyc, without_pyc, before)
            runs = {
                task: [measure(args.python, task, runtime, setup, statement) for _ in range(args.runs)]
                for task in tasks
            }
            cpu = [f"{statistics.median(cpu for cpu, _ in runs[task]) * 1000:.0f}" for task in tasks]
            wall = [f"{statistics.median(wall for _, wall in runs[task]) * 1000:.0f}" for task in tasks]
            cpu, wall = (values + ["-"] * (3 - len(values)) for values in (cpu, wall))
            cells = zip(cpu + wall, (11, 9, 8) * 2, strict=True)
            print(f"{label:<42}" + "".join(f"{value:>{width}}" for value, width in cells))
    print(f"load average after: {' '.join(f'{load:.1f}' for load in os.getloadavg())}")
    print(f"\nreproduce: .venv/bin/python -m bench.cold_start --runs {args.runs}")


if __name__ == "__main__":
    main()
