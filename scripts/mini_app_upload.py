"""Upload the built Mini App to the stack's bucket and invalidate CloudFront (``make deploy``).

    python -m scripts.mini_app_upload --stack nanogen-prod [webapp/dist]
    python -m scripts.mini_app_upload --bucket B --distribution-id D [webapp/dist]

What ``aws s3 sync`` does, with the three things it cannot be told at once:

* every file's ``Content-Type`` comes from the table below, not from the
  machine's ``mime.types`` (``.webmanifest``, ``.woff2`` and ``.js`` differ
  between systems);
* ``assets/`` (Vite's content-hashed names) is cached for a year and
  immutable; everything else (``index.html`` first of all) is ``no-cache``,
  so a new release is seen at the next open;
* ``index.html`` is uploaded last, once every asset it names is there, and
  old hashed assets are kept, so a page opened before the release can still
  load its chunks; other stale files under ``app/`` are deleted.

Then ``/app/*`` is invalidated. With no built app (no ``index.html``) it
says so and exits 0: the stack is deployed without a Mini App.
"""

from __future__ import annotations

import argparse
import mimetypes
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from infra.miniapp import APP_PREFIX

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".txt": "text/plain; charset=utf-8",
}
HASHED_CACHE = "public, max-age=31536000, immutable"
FRESH_CACHE = "no-cache"
HASHED_DIR = "assets/"
INDEX = "index.html"


def content_type(path: Path) -> str:
    known = CONTENT_TYPES.get(path.suffix.lower())
    return known or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def cache_control(relative: str) -> str:
    return HASHED_CACHE if relative.startswith(HASHED_DIR) else FRESH_CACHE


def upload(dist: Path, bucket: str, distribution_id: str | None, *, s3: Any, cloudfront: Any) -> list[str]:
    """Upload ``dist`` under ``app/``; returns the keys written, ``index.html`` last."""
    files = sorted(p for p in dist.rglob("*") if p.is_file())
    relatives = [p.relative_to(dist).as_posix() for p in files]
    order = sorted(range(len(files)), key=lambda i: relatives[i] == INDEX)
    written = []
    for i in order:
        key = APP_PREFIX + relatives[i]
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=files[i].read_bytes(),
            ContentType=content_type(files[i]),
            CacheControl=cache_control(relatives[i]),
        )
        written.append(key)
    stale = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=APP_PREFIX):
        for item in page.get("Contents", []):
            key = item["Key"]
            if key not in written and not key.startswith(APP_PREFIX + HASHED_DIR):
                stale.append({"Key": key})
    for start in range(0, len(stale), 1000):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": stale[start : start + 1000]})
    if distribution_id:
        cloudfront.create_invalidation(
            DistributionId=distribution_id,
            InvalidationBatch={
                "Paths": {"Quantity": 1, "Items": [f"/{APP_PREFIX}*"]},
                "CallerReference": f"mini-app-{time.time_ns()}",
            },
        )
    return written


def stack_outputs(stack: str, cloudformation: Any) -> dict[str, str]:
    (described,) = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    return {output["OutputKey"]: output["OutputValue"] for output in described.get("Outputs", [])}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.mini_app_upload", description=__doc__.splitlines()[0])
    parser.add_argument("dist", nargs="?", default="webapp/dist", type=Path)
    parser.add_argument("--stack", help="read the bucket and distribution from this stack's outputs")
    parser.add_argument("--bucket")
    parser.add_argument("--distribution-id")
    args = parser.parse_args(argv)
    if not (args.dist / INDEX).is_file():
        print(f"{args.dist}/{INDEX} not found: build the Mini App first; nothing uploaded.")
        return 0

    import boto3

    bucket, distribution_id = args.bucket, args.distribution_id
    if args.stack:
        outputs = stack_outputs(args.stack, boto3.client("cloudformation"))
        bucket = bucket or outputs["MiniAppBucketName"]
        distribution_id = distribution_id or outputs["MiniAppDistributionId"]
    if not bucket:
        parser.error("give --stack or --bucket")
    written = upload(args.dist, bucket, distribution_id, s3=boto3.client("s3"), cloudfront=boto3.client("cloudfront"))
    invalidated = f", invalidated /{APP_PREFIX}* on {distribution_id}" if distribution_id else ""
    print(f"uploaded {len(written)} files to s3://{bucket}/{APP_PREFIX}{invalidated}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
