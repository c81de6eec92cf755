"""Build the deployable CloudFormation template and zip for one stage.

    python -m infra.package dev build/dev

1. writes the merge template (``infra.template``) to ``build/merge-<stage>.json``;
2. runs ``chalice package --merge-template`` for the Lambda runtime below:
   Chalice would otherwise pick the local interpreter's version, and
   python3.11 functions can no longer be created in AWS;
3. removes boto3, botocore and s3transfer from the zip: the Lambda runtime
   ships them, and they are 2,000 files of cold-start unpacking for nothing;
4. keeps only Babel's CLDR data for the bot's languages (and ``root``, their
   parent): Babel ships every locale, 33 MB and 1,100 files, and
   ``chalicelib.i18n`` loads two.

No ``.pyc`` files are shipped (a local run's ``__pycache__`` is dropped):
they would be compiled by the local interpreter (3.11) and the runtime
(3.13) would ignore them.
"""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

from chalicelib.i18n import LANGUAGES
from infra.template import merge_template

LAMBDA_RUNTIME = "python3.13"
PROVIDED_BY_RUNTIME = ("boto3", "botocore", "s3transfer")
BABEL_LOCALE_DATA = "babel/locale-data/"
BABEL_LOCALES_KEPT = frozenset({"root", *LANGUAGES})
ROOT = Path(__file__).resolve().parent.parent


def build(stage: str, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    merge_path = out_dir.parent / f"merge-{stage}.json"
    merge_path.write_text(json.dumps(merge_template(stage), indent=2) + "\n")
    _chalice_package(stage, merge_path, out_dir)
    zip_path = out_dir / "deployment.zip"
    _drop_runtime_packages(zip_path)
    return out_dir / "sam.json"


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


def _drop_runtime_packages(zip_path: Path) -> None:
    kept = zip_path.with_suffix(".tmp")
    with zipfile.ZipFile(zip_path) as source, zipfile.ZipFile(kept, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            if _shipped(item.filename):
                target.writestr(item, source.read(item.filename))
    kept.replace(zip_path)


def _shipped(name: str) -> bool:
    top = name.split("/", 1)[0]
    if top in PROVIDED_BY_RUNTIME or top.split("-", 1)[0] in PROVIDED_BY_RUNTIME:
        return False
    if "__pycache__/" in name:
        return False
    if name.startswith(BABEL_LOCALE_DATA) and name.endswith(".dat"):
        return name.removeprefix(BABEL_LOCALE_DATA).removesuffix(".dat") in BABEL_LOCALES_KEPT
    return True


if __name__ == "__main__":
    stage = sys.argv[1] if len(sys.argv) > 1 else "dev"
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "build" / stage
    template = build(stage, out)
    size = (out / "deployment.zip").stat().st_size
    print(f"{template} and deployment.zip ({size / 1e6:.1f} MB) for stage {stage}, runtime {LAMBDA_RUNTIME}")
