"""Reference pictures for edits: Mini App uploads and the bot's copies of Telegram photos.

Every reference picture is one object ``uploads/<user_id>/<upload_id>`` of
the results bucket, whoever put it there: the Mini App with an S3 presigned
POST (``create_upload``), or the bot, which copies a Telegram photo
(``store_copy``) or one of the user's results (``copy_result``) so the image
provider never sees a Telegram URL. Objects under ``uploads/`` expire a day
after they were made (the bucket's lifecycle rule, CONTRACT §10); results stay.

An upload id is a ULID and the owner is part of the object key, so a
generation that names ``upload_ids`` needs nothing else to find them, and
another user's id points at an object that is not there.

Timeline of a Mini App upload:

1. ``POST /api/uploads``: an ``UploadRecord`` (owner, declared type, TTL a
   day) is put, and a presigned POST is answered whose policy S3 enforces:
   exactly this key, exactly this ``Content-Type``, 1 byte to
   ``UPLOAD_MAX_BYTES``, within ``POST_SECONDS``.
2. The Mini App posts the file straight to S3 (no Lambda in between).
3. ``POST /api/generation`` with ``upload_ids``: ``check_uploads`` demands
   the caller's record and an object whose first bytes are a picture of the
   declared type, before anything is charged.
4. The worker hands the provider a presigned GET of each object, valid for
   ``PROVIDER_URL_SECONDS`` (or the bytes inline when the provider could not
   reach the storage, as with a local emulator: ``references_for_provider``).
"""

from __future__ import annotations

import base64
import ipaddress
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from chalicelib import aws, guards
from chalicelib.config import Settings
from chalicelib.errors import InvalidRequest, RateLimited, UserBanned
from chalicelib.ids import iso_utc, new_id

CONTENT_TYPES = ("image/jpeg", "image/png", "image/webp")
POST_SECONDS = 600  # the Mini App sends the file right after asking
RECORD_SECONDS = 24 * 3600  # as long as the object lives (the lifecycle rule)
PROVIDER_URL_SECONDS = 600  # covers a provider call and its retries, no more
# POST /api/uploads per user per minute: RATE_LIMIT_PER_MINUTE times this (an edit takes up to 3 pictures).
UPLOADS_PER_GENERATION = 3
_SNIFF_BYTES = 16
_UPLOAD_FIELDS = ("content_type", "size")
_TYPE_NAMES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WebP"}


def upload_key(user_id: int, upload_id: str) -> str:
    return f"uploads/{user_id}/{upload_id}"


def sniff_image_type(head: bytes) -> str | None:
    """The picture type the first bytes announce (magic numbers), or None for anything else."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


# --------------------------------------------------------------------------
# POST /api/uploads
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadRequest:
    content_type: str
    size: int


def parse_upload_request(body: Mapping[str, Any], settings: Settings) -> UploadRequest:
    """``{"content_type", "size"}``: a JPEG, PNG or WebP of 1 byte to UPLOAD_MAX_BYTES."""
    unknown = sorted(set(body) - set(_UPLOAD_FIELDS))
    if unknown:
        raise InvalidRequest(f"Unknown field(s): {', '.join(map(repr, unknown[:5]))}. Allowed: content_type, size.")
    content_type = body.get("content_type")
    if not isinstance(content_type, str) or content_type.lower() not in CONTENT_TYPES:
        raise InvalidRequest(f"content_type must be one of: {', '.join(CONTENT_TYPES)}.")
    size = body.get("size")
    if type(size) is not int or not 1 <= size <= settings.upload_max_bytes:
        raise InvalidRequest(f"size must be the file's size in bytes, from 1 to {settings.upload_max_bytes}.")
    return UploadRequest(content_type=content_type.lower(), size=size)


def create_upload(
    user_id: int, wanted: UploadRequest, settings: Settings, *, now: float | None = None
) -> dict[str, Any]:
    """Record the upload with its owner and answer the presigned POST that lets S3 take the file.

    Refused for a banned user (403 ``user_banned``) and beyond
    ``RATE_LIMIT_PER_MINUTE * UPLOADS_PER_GENERATION`` per user per minute
    (429 ``rate_limited`` with ``Retry-After``).
    """
    from chalicelib import queries

    now = time.time() if now is None else now
    user = queries.get_user(user_id)
    if user is not None and user.banned:
        raise UserBanned()
    wait = guards.take_upload_slot(user_id, limit=settings.rate_limit_per_minute * UPLOADS_PER_GENERATION, now=now)
    if wait is not None:
        raise RateLimited("Too many uploads this minute. Try again shortly.", retry_after=wait)
    upload_id = new_id(now)
    guards.record_upload(
        user_id, upload_id, wanted.content_type, created_at=iso_utc(now), expires_at=int(now) + RECORD_SECONDS
    )
    # botocore adds the bucket and the exact key to the policy's conditions itself.
    post = aws.client("s3").generate_presigned_post(
        Bucket=settings.results_bucket,
        Key=upload_key(user_id, upload_id),
        Fields={"Content-Type": wanted.content_type},
        Conditions=[
            {"Content-Type": wanted.content_type},
            ["content-length-range", 1, settings.upload_max_bytes],
        ],
        ExpiresIn=POST_SECONDS,
    )
    return {
        "upload_id": upload_id,
        "url": post["url"],
        "fields": post["fields"],
        "expires_at": iso_utc(now + POST_SECONDS),
    }


def check_uploads(user_id: int, upload_ids: Sequence[str], settings: Settings, *, now: float | None = None) -> None:
    """400 unless every id is the caller's live upload whose object really is a picture of its type.

    One BatchGetItem for the records, one ranged GET of 16 bytes per object.
    """
    if not upload_ids:
        return
    now = time.time() if now is None else now
    declared = guards.live_uploads(user_id, upload_ids, now=now)
    bucket = settings.results_bucket
    s3 = aws.client("s3")
    for index, upload_id in enumerate(upload_ids):
        content_type = declared.get(upload_id)
        where = f"upload_ids[{index}]"
        if content_type is None:
            raise InvalidRequest(f"{where} is not one of your uploads (or it expired); upload the picture again.")
        head = _first_bytes(s3, bucket, upload_key(user_id, upload_id))
        if head is None:
            raise InvalidRequest(f"{where} has no file yet; send the file to the upload's url first.")
        if sniff_image_type(head) != content_type:
            name = _TYPE_NAMES.get(content_type, content_type)
            raise InvalidRequest(f"{where} is not a {name} picture; upload a JPEG, PNG or WebP picture.")


def still_stored(user_id: int, upload_ids: Sequence[str], settings: Settings) -> bool:
    """Whether each upload's picture is still in the bucket (the uploads expiry rule removes them):
    the bot's own copies have no upload record, so this asks S3 (a ranged GET of 16 bytes each)."""
    s3 = aws.client("s3")
    return all(_first_bytes(s3, settings.results_bucket, upload_key(user_id, upload_id)) for upload_id in upload_ids)


def _first_bytes(s3: Any, bucket: str, key: str) -> bytes | None:
    try:
        stored = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{_SNIFF_BYTES - 1}")
    except s3.exceptions.NoSuchKey:
        return None
    except Exception as error:  # an empty object answers InvalidRange
        if _error_code(error) in ("InvalidRange", "NoSuchKey", "404"):
            return None
        raise
    head: bytes = stored["Body"].read()
    return head


def _error_code(error: Exception) -> str:
    response = getattr(error, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


# --------------------------------------------------------------------------
# The bot's copies
# --------------------------------------------------------------------------


def store_copy(user_id: int, data: bytes, content_type: str, settings: Settings, *, upload_id: str) -> str:
    """Put a picture the bot fetched (a Telegram photo) under the user's uploads; returns its upload id."""
    aws.client("s3").put_object(
        Bucket=settings.results_bucket, Key=upload_key(user_id, upload_id), Body=data, ContentType=content_type
    )
    return upload_id


def copy_result(user_id: int, result_key: str, settings: Settings, *, upload_id: str) -> str:
    """Copy one of the user's own results into their uploads (server-side, no download)."""
    if not result_key.startswith(f"results/{user_id}/"):
        raise InvalidRequest("That picture is not yours to edit.")
    aws.client("s3").copy_object(
        Bucket=settings.results_bucket,
        Key=upload_key(user_id, upload_id),
        CopySource={"Bucket": settings.results_bucket, "Key": result_key},
    )
    return upload_id


# --------------------------------------------------------------------------
# What the provider receives
# --------------------------------------------------------------------------


def references_for_provider(user_id: int, upload_ids: Sequence[str], settings: Settings) -> list[str]:
    """Short-lived presigned GET URLs of the uploads, or ``data:`` URLs when the provider cannot reach S3.

    Presigning is local computation; inlining reads each object (only when
    the storage is a local emulator the provider cannot see).
    """
    s3 = aws.client("s3")
    keys = [upload_key(user_id, upload_id) for upload_id in upload_ids]
    if not storage_reachable_by_provider(s3):
        return [_data_url(s3.get_object(Bucket=settings.results_bucket, Key=key)["Body"].read()) for key in keys]
    return [
        s3.generate_presigned_url(
            "get_object", Params={"Bucket": settings.results_bucket, "Key": key}, ExpiresIn=PROVIDER_URL_SECONDS
        )
        for key in keys
    ]


def storage_reachable_by_provider(s3: Any) -> bool:
    """False when S3 is a loopback or private endpoint (``AWS_ENDPOINT_URL`` of a local emulator)."""
    host = (urlsplit(str(s3.meta.endpoint_url)).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return True  # a name: AWS's own endpoints
    return not (address.is_loopback or address.is_private or address.is_link_local)


def _data_url(data: bytes) -> str:
    content_type = sniff_image_type(data[:_SNIFF_BYTES]) or "application/octet-stream"
    return f"data:{content_type};base64,{base64.b64encode(data).decode()}"
