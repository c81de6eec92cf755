"""Build the deployable CloudFormation template and zip for one stage.

    python -m infra.package dev build/dev

1. writes the merge template (``infra.template``) to ``build/merge-<stage>.json``;
2. runs ``chalice package --merge-template`` for the Lambda runtime below:
   Chalice would otherwise pick the local interpreter's version, and
   python3.11 functions can no longer be created in AWS;
3. removes from the zip what the Lambda runtime already provides (boto3,
   botocore, s3transfer and their dependencies urllib3, dateutil, jmespath,
   six): copies in /var/task would shadow the runtime's compiled ones and
   be compiled again at every cold start;
4. keeps only Babel's CLDR data for the bot's languages (and ``root``, their
   parent): Babel ships every locale, 33 MB and 1,100 files, and
   ``chalicelib.i18n`` loads two;
5. drops any ``__pycache__`` Chalice copied (compiled by the local
   interpreter, so ignored by the runtime) and adds bytecode compiled by
   python3.13, the runtime's version (``__pycache__/*.cpython-313.pyc``,
   ``unchecked-hash``): Lambda's code directory is read-only, so without
   it every cold start compiles every module. Unchecked hash-based .pyc are
   used without looking at the source's mtime (zip entries carry a fixed
   1980 date).

The interpreter for step 5 is ``$PYTHON313``, else this one if it is 3.13,
else ``python3.13`` on the PATH or pyenv's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from chalicelib.i18n import LANGUAGES
from infra.template import merge_template

LAMBDA_RUNTIME = "python3.13"
RUNTIME_VERSION = (3, 13)
BYTECODE_TAG = "cpython-313"
# Import names the python3.13 runtime ships (boto3 and botocore with their
# dependencies), and the distribution names of their .dist-info folders.
PROVIDED_BY_RUNTIME = ("boto3", "botocore", "s3transfer", "urllib3", "dateutil", "jmespath", "six")
_PROVIDED_DISTRIBUTIONS = {*PROVIDED_BY_RUNTIME, "python_dateutil"} - {"dateutil"}
BABEL_LOCALE_DATA = "babel/locale-data/"
BABEL_LOCALES_KEPT = frozenset({"root", *LANGUAGES})
ROOT = Path(__file__).resolve().parent.parent


def build(stage: str, out_dir: Path) -> Path:
    python313 = runtime_python()
    out_dir.mkdir(parents=True, exist_ok=True)
    merge_path = out_dir.parent / f"merge-{stage}.json"
    merge_path.write_text(json.dumps(merge_template(stage), indent=2) + "\n")
    _chalice_package(stage, merge_path, out_dir)
    _finish_zip(out_dir / "deployment.zip", python313)
    return out_dir / "sam.json"


def runtime_python() -> str:
    """A python3.13 to compile with: ``$PYTHON313``, this interpreter, ``python3.13`` on the PATH, or pyenv's."""
    this = sys.executable if sys.version_info[:2] == RUNTIME_VERSION else None
    pyenv = sorted(Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")).glob("versions/3.13*/bin/python3.13"))
    for candidate in (os.environ.get("PYTHON313"), this, shutil.which("python3.13"), *map(str, pyenv)):
        if candidate and _is_runtime_version(candidate):
            return candidate
    raise SystemExit(
        "infra.package needs python3.13 (the Lambda runtime's version) to compile the bytecode it ships: "
        "set PYTHON313=/path/to/python3.13"
    )


def _is_runtime_version(python: str) -> bool:
    check = f"import sys; sys.exit(sys.version_info[:2] != {RUNTIME_VERSION!r})"
    try:
        return subprocess.run([python, "-c", check], capture_output=True, timeout=30).returncode == 0  # noqa: S603
    except OSError:
        return False


def provided_by_runtime(name: str) -> bool:
    """Whether a zip entry belongs to a package the Lambda runtime provides (``six.py``, ``boto3/...``, ...)."""
    top = name.split("/", 1)[0]
    if top.endswith((".dist-info", ".data")):
        return top.split("-", 1)[0].lower() in _PROVIDED_DISTRIBUTIONS
    return top.removesuffix(".py") in PROVIDED_BY_RUNTIME


def _shipped(name: str) -> bool:
    """Whether Chalice's zip entry ``name`` stays (before this build adds its own bytecode)."""
    if provided_by_runtime(name) or "__pycache__/" in name:
        return False
    if name.startswith(BABEL_LOCALE_DATA) and name.endswith(".dat"):
        return name.removeprefix(BABEL_LOCALE_DATA).removesuffix(".dat") in BABEL_LOCALES_KEPT
    return True


def _chalice_package(stage: str, merge_path: Path, out_dir: Path) -> None:
    import chalice.config
    from chalice.cli import cli

    chalice.config.Config.lambda_python_version = property(lambda self: LAMBDA_RUNTIME)  # type: ignore[assignment,method-assign]
    args = ["--project-dir", str(ROOT), "package", "--stage", stage, "--merge-template", str(merge_path), str(out_dir)]
    try:
        cli.main(args=args, prog_name="chalice", standalone_mode=False, obj={})
    except SystemExit as exit_:
        if exit_.code:
            raise


def _finish_zip(zip_path: Path, python313: str) -> None:
    """Keep what ``_shipped`` keeps, then add bytecode compiled by python3.13 for every module kept."""
    with tempfile.TemporaryDirectory() as folder:
        task = Path(folder) / "task"
        with zipfile.ZipFile(zip_path) as source:
            kept = [item for item in source.infolist() if _shipped(item.filename)]
            contents = {item.filename: source.read(item) for item in kept}
        for name, data in contents.items():
            if not name.endswith("/"):
                path = task / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
        compileall = [python313, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash", str(task)]
        subprocess.run(compileall, check=True)  # noqa: S603 - our own interpreter and folder
        compiled = sorted(path for path in task.rglob(f"*.{BYTECODE_TAG}.pyc"))
        rebuilt = zip_path.with_suffix(".tmp")
        with zipfile.ZipFile(rebuilt, "w", zipfile.ZIP_DEFLATED) as target:
            for item in kept:
                target.writestr(item, contents[item.filename])
            for path in compiled:
                entry = zipfile.ZipInfo(path.relative_to(task).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
                entry.external_attr = 0o644 << 16
                entry.compress_type = zipfile.ZIP_DEFLATED
                target.writestr(entry, path.read_bytes())
    rebuilt.replace(zip_path)


if __name__ == "__main__":
    stage = sys.argv[1] if len(sys.argv) > 1 else "dev"
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "build" / stage
    template = build(stage, out)
    size = (out / "deployment.zip").stat().st_size
    print(f"{template} and deployment.zip ({size / 1e6:.1f} MB) for stage {stage}, runtime {LAMBDA_RUNTIME}, with .pyc")
