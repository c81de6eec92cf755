"""The deployment zip as Lambda's python3.13 runtime will load it.

Built once with ``infra.package``, then: bytecode compiled by 3.13 for every
module, nothing the runtime already provides, and every import of the
deployed code resolving in a python3.13 that sees only the unpacked zip and
the runtime's own packages.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.package import BYTECODE_TAG, PROVIDED_BY_RUNTIME, provided_by_runtime, runtime_python
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("package") / "dev"
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    subprocess.run([sys.executable, "-m", "infra.package", "dev", str(out)], cwd=ROOT, env=env, check=True)
    yield out / "deployment.zip"


@pytest.fixture(scope="module")
def unpacked(package: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    task = tmp_path_factory.mktemp("task")
    with zipfile.ZipFile(package) as archive:
        archive.extractall(task)
    return task


@pytest.fixture(scope="module")
def runtime_packages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stands in for /var/runtime: the packages the runtime ships (pure Python, so any install will do)."""
    folder = tmp_path_factory.mktemp("runtime")
    for name in PROVIDED_BY_RUNTIME:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None, f"{name} is not installed here"
        source = Path(spec.origin)
        source = source.parent if source.name == "__init__.py" else source
        (folder / source.name).symlink_to(source)
    return folder


def _names(package: Path) -> list[str]:
    with zipfile.ZipFile(package) as archive:
        return archive.namelist()


def test_every_module_ships_unchecked_bytecode_compiled_by_python313(package: Path) -> None:
    names = set(_names(package))
    sources = [name for name in names if name.endswith(".py")]
    assert "app.py" in sources and "chalicelib/money.py" in sources
    missing = []
    for source in sources:
        folder, _, file = source.rpartition("/")
        compiled = f"{folder}/__pycache__/{file[:-3]}.{BYTECODE_TAG}.pyc".lstrip("/")
        if compiled not in names:
            missing.append(source)
    assert missing == []
    with zipfile.ZipFile(package) as archive:
        header = archive.read(f"chalicelib/__pycache__/money.{BYTECODE_TAG}.pyc")[:8]
    magic = subprocess.run(
        [runtime_python(), "-c", "import importlib.util; print(importlib.util.MAGIC_NUMBER.hex())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert header[:4].hex() == magic
    # PEP 552 flags: hash-based (bit 0) without source check (bit 1 clear): unchecked-hash.
    assert int.from_bytes(header[4:8], "little") == 0b01
    assert not [name for name in names if name.endswith(".pyc") and BYTECODE_TAG not in name]


def test_what_the_runtime_provides_is_not_in_the_zip(package: Path) -> None:
    tops = {name.split("/", 1)[0] for name in _names(package)}
    for dropped in ("boto3", "botocore", "s3transfer", "urllib3", "dateutil", "jmespath", "six.py"):
        assert dropped not in tops
    assert not [top for top in tops if top.endswith(".dist-info") and provided_by_runtime(top)]
    assert not [top for top in tops if top.startswith(("urllib3-", "python_dateutil-", "six-", "jmespath-"))]
    assert {"app.py", "chalicelib", "pynamodb", "aws_lambda_powertools", "requests", "certifi", "idna"} <= tops


def test_every_import_resolves_on_python313_with_only_the_zip_and_the_runtime(
    unpacked: Path, runtime_packages: Path
) -> None:
    modules = [
        "app",
        *sorted(
            "chalicelib." + ".".join(path.relative_to(unpacked / "chalicelib").with_suffix("").parts)
            for path in (unpacked / "chalicelib").rglob("*.py")
            if path.name != "__init__.py"
        ),
    ]
    script = f"""
import importlib, json, sys
for name in {modules!r} + ["aws_lambda_powertools.utilities.parameters", "boto3", "requests", "pynamodb.models"]:
    importlib.import_module(name)
config = sys.modules["chalicelib.config"]
print(json.dumps({{
    "config": config.__cached__,
    "urllib3": sys.modules["urllib3"].__file__,
    "boto3": sys.modules["boto3"].__file__,
}}))
"""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": f"{unpacked}{os.pathsep}{runtime_packages}",  # /var/task first, as in Lambda
        "PYTHONDONTWRITEBYTECODE": "1",  # /var/task is read-only
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    # -S -s: no site-packages, so nothing outside the zip and the runtime's packages can be found.
    result = subprocess.run(
        [runtime_python(), "-S", "-s", "-c", script], cwd=unpacked, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert loaded["config"].startswith(str(unpacked)) and loaded["config"].endswith(f".{BYTECODE_TAG}.pyc")
    assert loaded["urllib3"].startswith(str(runtime_packages)) and loaded["boto3"].startswith(str(runtime_packages))


def _top_level_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_deployed_code_imports_only_the_stdlib_the_zip_and_the_runtime(package: Path) -> None:
    """Lazy imports too (inside functions): each must be found on Lambda when its code runs."""
    tops = {name.split("/", 1)[0].removesuffix(".py") for name in _names(package)}
    sources = [ROOT / "app.py", *sorted((ROOT / "chalicelib").rglob("*.py"))]
    imported = set().union(*(_top_level_imports(path) for path in sources))
    # local: only provider_from_settings, for the offline provider outside AWS (it refuses in AWS).
    unresolved = imported - tops - set(sys.stdlib_module_names) - set(PROVIDED_BY_RUNTIME) - {"__future__", "local"}
    assert unresolved == set()
