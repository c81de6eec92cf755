"""``make deploy``'s upload of the built Mini App: types, caching, order, stale files, invalidation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from scripts import mini_app_upload


def _dist(root: Path) -> Path:
    files = {
        "index.html": "<!doctype html><script type=module src=/app/assets/index-3f2a1b.js></script>",
        "assets/index-3f2a1b.js": "console.log(1)",
        "assets/index-9c8d7e.css": "body{}",
        "favicon.svg": "<svg/>",
        "manifest.webmanifest": "{}",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def _distribution(cloudfront: Any) -> str:
    config = {
        "CallerReference": "test",
        "Comment": "",
        "Enabled": True,
        "Origins": {
            "Quantity": 1,
            "Items": [{"Id": "s3", "DomainName": "b.s3.amazonaws.com", "S3OriginConfig": {"OriginAccessIdentity": ""}}],
        },
        "DefaultCacheBehavior": {"TargetOriginId": "s3", "ViewerProtocolPolicy": "redirect-to-https"},
    }
    return str(cloudfront.create_distribution(DistributionConfig=config)["Distribution"]["Id"])


def test_upload_sets_types_and_caching_keeps_old_assets_and_invalidates(tmp_path: Path) -> None:
    import boto3
    from moto import mock_aws

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        cloudfront = boto3.client("cloudfront", region_name="us-east-1")
        s3.create_bucket(Bucket="mini-app")
        s3.put_object(Bucket="mini-app", Key="app/assets/index-000000.js", Body=b"old release")
        s3.put_object(Bucket="mini-app", Key="app/removed.html", Body=b"stale")
        distribution = _distribution(cloudfront)

        written = mini_app_upload.upload(_dist(tmp_path), "mini-app", distribution, s3=s3, cloudfront=cloudfront)

        assert written[-1] == "app/index.html"  # after every asset it names
        heads = {key: s3.head_object(Bucket="mini-app", Key=key) for key in written}
        assert heads["app/index.html"]["ContentType"] == "text/html; charset=utf-8"
        assert heads["app/index.html"]["CacheControl"] == "no-cache"
        assert heads["app/assets/index-3f2a1b.js"]["ContentType"] == "text/javascript; charset=utf-8"
        assert heads["app/assets/index-3f2a1b.js"]["CacheControl"] == "public, max-age=31536000, immutable"
        assert heads["app/assets/index-9c8d7e.css"]["ContentType"] == "text/css; charset=utf-8"
        assert heads["app/manifest.webmanifest"]["ContentType"] == "application/manifest+json"
        assert heads["app/favicon.svg"]["CacheControl"] == "no-cache"
        keys = {item["Key"] for item in s3.list_objects_v2(Bucket="mini-app")["Contents"]}
        assert "app/removed.html" not in keys
        assert "app/assets/index-000000.js" in keys  # a page opened before the release still loads
        (invalidation,) = cloudfront.list_invalidations(DistributionId=distribution)["InvalidationList"]["Items"]
        batch = cloudfront.get_invalidation(DistributionId=distribution, Id=invalidation["Id"])
        assert batch["Invalidation"]["InvalidationBatch"]["Paths"]["Items"] == ["/app/*"]


def test_without_a_built_app_nothing_is_uploaded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert mini_app_upload.main([str(tmp_path / "dist"), "--bucket", "never-called"]) == 0
    assert "build the Mini App first; nothing uploaded" in capsys.readouterr().out
