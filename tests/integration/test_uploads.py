"""Mini App uploads (CONTRACT §5 ``POST /api/uploads`` and ``upload_ids``).

The presigned POST is sent with ``requests`` as a browser would (real
multipart) to the local AWS endpoint, which enforces S3's POST-policy rules
(``local/s3_post_policy.py``); the other tests run on in-process moto and
check that a bad ``upload_ids`` is a 400 that charges nothing.
"""

from __future__ import annotations

import base64
import io
import json
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from PIL import Image

from chalicelib import aws, money, uploads
from chalicelib.runtime import ready
from chalicelib.tables import Generation, UploadRecord
from tests.api_helpers import ALICE, BOB, EDIT_MODEL, post, register, start
from tests.conftest import reset_process_state
from tests.faults import Faults


def picture(kind: str = "PNG", size: tuple[int, int] = (6, 4)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(buffer, format=kind)
    return buffer.getvalue()


PNG = picture("PNG")
JPEG = picture("JPEG")


def ask_upload(user: dict[str, Any] = ALICE, content_type: str = "image/png", size: int = len(PNG)) -> dict[str, Any]:
    reply = post("/api/uploads", user, json_body={"content_type": content_type, "size": size})
    assert reply.status == 201, reply.body
    answer: dict[str, Any] = reply.body
    return answer


def send_file(upload: dict[str, Any], data: bytes, *, fields: dict[str, str] | None = None) -> requests.Response:
    """What the Mini App does: the fields, then the file, as multipart/form-data, straight to S3."""
    form = {**upload["fields"], **(fields or {})}
    return requests.post(upload["url"], data=form, files={"file": ("photo", data, "image/png")}, timeout=10)


def put_object(user_id: int, upload_id: str, data: bytes) -> None:
    aws.client("s3").put_object(Bucket=ready().results_bucket, Key=uploads.upload_key(user_id, upload_id), Body=data)


def edit(user: dict[str, Any], upload_ids: list[str], **fields: Any) -> Any:
    return start(user, "put me on a beach", model=EDIT_MODEL, upload_ids=upload_ids, **fields)


def nothing_charged(user: dict[str, Any]) -> None:
    found = money.get_user(int(user["id"]))
    assert found is None or int(found.credits) == 10
    assert list(Generation.query(int(user["id"]))) == []


# --- against the local S3 endpoint: S3 itself enforces the policy ------------------------


@pytest.mark.emulator
def test_a_png_posted_with_the_presigned_form_is_stored_and_can_be_edited(
    emulator: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(ALICE)  # 10 welcome credits
    upload = ask_upload()
    assert upload["url"].startswith(emulator)

    response = send_file(upload, PNG)

    assert response.status_code == 204, response.text
    stored = aws.client("s3").get_object(
        Bucket=ready().results_bucket, Key=f"uploads/{ALICE['id']}/{upload['upload_id']}"
    )
    assert stored["Body"].read() == PNG
    reply = edit(ALICE, [upload["upload_id"]])
    assert reply.status == 202, reply.body
    assert reply.body["generation"]["upload_ids"] == [upload["upload_id"]]
    assert reply.body["generation"]["image_urls"] == [] and reply.body["credits"] == 9


@pytest.mark.emulator
def test_s3_refuses_a_file_larger_than_upload_max_bytes(emulator: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPLOAD_MAX_BYTES", "2048")
    reset_process_state()
    upload = ask_upload(size=2000)  # the client may declare a small size and send more: S3 decides

    response = send_file(upload, PNG + b"\0" * 4096)

    assert response.status_code == 400 and "<Code>EntityTooLarge</Code>" in response.text
    assert "Contents" not in aws.client("s3").list_objects_v2(Bucket=ready().results_bucket, Prefix="uploads/")


@pytest.mark.emulator
@pytest.mark.parametrize(
    "changed",
    [
        pytest.param({"Content-Type": "image/gif"}, id="another-content-type"),
        pytest.param({"key": f"uploads/{BOB['id']}/01JD6YJ8Q4W5ZK3M2N7P9R0S1T"}, id="another-users-prefix"),
        pytest.param({"acl": "public-read"}, id="a-field-the-policy-does-not-allow"),
    ],
)
def test_s3_refuses_a_form_that_strays_from_the_policy(emulator: str, changed: dict[str, str]) -> None:
    upload = ask_upload()

    response = send_file(upload, PNG, fields=changed)

    assert response.status_code == 403 and "<Code>AccessDenied</Code>" in response.text
    assert "Contents" not in aws.client("s3").list_objects_v2(Bucket=ready().results_bucket, Prefix="uploads/")


# --- the answer and its policy ------------------------------------------------------------


def test_the_answer_is_a_presigned_post_for_one_key_under_the_callers_prefix(aws: None) -> None:
    upload = ask_upload(content_type="image/webp", size=1234)

    assert set(upload) == {"upload_id", "url", "fields", "expires_at"}
    fields = upload["fields"]
    assert fields["key"] == f"uploads/{ALICE['id']}/{upload['upload_id']}"
    assert fields["Content-Type"] == "image/webp"
    policy = json.loads(base64.b64decode(fields["policy"]))
    conditions = policy["conditions"]
    assert {"Content-Type": "image/webp"} in conditions
    assert ["content-length-range", 1, 10_485_760] in conditions
    assert {"key": fields["key"]} in conditions and {"bucket": ready().results_bucket} in conditions
    # The policy's expiration is botocore's clock at signing + 600 s, read a moment after expires_at's:
    # never before it (to the second), and not more than a minute after. (The two as text "in the same
    # minute" failed when a minute ended between the two reads.)
    stated = datetime.fromisoformat(upload["expires_at"].replace("Z", "+00:00"))
    signed = datetime.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert stated.replace(microsecond=0) <= signed <= stated + timedelta(minutes=1)


def test_an_upload_whose_record_lost_its_answer_is_still_given(aws: None, faults: Faults) -> None:
    # botocore's retry of the applied put failed its own condition: it was a 500 for an upload that existed.
    lost = faults.lose_response("PutItem", table="guards", times=1)
    upload = ask_upload()
    assert lost.fired == 1
    assert UploadRecord.get(UploadRecord.key(int(ALICE["id"]), upload["upload_id"])).content_type == "image/png"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"content_type": "image/gif", "size": 10}, id="gif"),
        pytest.param({"content_type": "application/pdf", "size": 10}, id="pdf"),
        pytest.param({"content_type": "image/png", "size": 0}, id="empty"),
        pytest.param({"content_type": "image/png", "size": 10_485_761}, id="over-the-limit"),
        pytest.param({"content_type": "image/png", "size": True}, id="bool-size"),
        pytest.param({"content_type": "image/png"}, id="no-size"),
        pytest.param({"content_type": "image/png", "size": 10, "key": "x"}, id="chosen-key"),
    ],
)
def test_a_bad_upload_request_is_a_400(aws: None, body: dict[str, Any]) -> None:
    reply = post("/api/uploads", ALICE, json_body=body)
    assert (reply.status, reply.code) == (400, "invalid_request")


def test_an_upload_needs_initdata(aws: None) -> None:
    reply = post("/api/uploads", json_body={"content_type": "image/png", "size": 10})
    assert (reply.status, reply.code) == (401, "unauthorized")


# --- upload_ids in POST /api/generation -------------------------------------------------


def test_an_uploaded_picture_is_kept_by_the_generation_and_listed_in_its_view(aws: None) -> None:
    upload = ask_upload(content_type="image/jpeg", size=len(JPEG))
    put_object(int(ALICE["id"]), upload["upload_id"], JPEG)

    reply = edit(ALICE, [upload["upload_id"]], image_urls=["https://example.com/cat.jpg"])

    assert reply.status == 202, reply.body
    [stored] = Generation.query(int(ALICE["id"]))
    assert list(stored.upload_ids) == [upload["upload_id"]]
    assert list(stored.image_urls) == ["https://example.com/cat.jpg"]


def test_another_users_upload_is_a_400_and_charges_nothing(aws: None) -> None:
    upload = ask_upload(BOB)
    put_object(int(BOB["id"]), upload["upload_id"], PNG)
    register(ALICE)

    reply = edit(ALICE, [upload["upload_id"]])

    assert (reply.status, reply.code) == (400, "invalid_request")
    assert "not one of your uploads" in reply.body["error"]["message"]
    nothing_charged(ALICE)


def test_an_unknown_upload_id_is_a_400_and_charges_nothing(aws: None) -> None:
    register(ALICE)

    reply = edit(ALICE, ["01JD6YJ8Q4W5ZK3M2N7P9R0S1T"])

    assert (reply.status, reply.code) == (400, "invalid_request")
    nothing_charged(ALICE)


def test_an_upload_whose_file_was_never_sent_is_a_400_and_charges_nothing(aws: None) -> None:
    upload = ask_upload()

    reply = edit(ALICE, [upload["upload_id"]])

    assert (reply.status, reply.code) == (400, "invalid_request")
    assert "has no file yet" in reply.body["error"]["message"]
    nothing_charged(ALICE)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"<html>not a picture</html>", id="html"),
        pytest.param(JPEG, id="a-jpeg-declared-as-png"),
        pytest.param(b"%PDF-1.7\n", id="pdf"),
    ],
)
def test_an_upload_whose_bytes_are_not_the_declared_picture_is_a_400(aws: None, data: bytes) -> None:
    upload = ask_upload(content_type="image/png")
    put_object(int(ALICE["id"]), upload["upload_id"], data)

    reply = edit(ALICE, [upload["upload_id"]])

    assert (reply.status, reply.code) == (400, "invalid_request")
    assert "is not a PNG picture" in reply.body["error"]["message"]
    nothing_charged(ALICE)


def test_upload_ids_need_an_edit_model_and_count_towards_max_images(aws: None) -> None:
    upload = ask_upload()
    put_object(int(ALICE["id"]), upload["upload_id"], PNG)
    urls = [f"https://example.com/{index}.jpg" for index in range(3)]

    text_model = start(ALICE, "a cat", upload_ids=[upload["upload_id"]])
    too_many = edit(ALICE, [upload["upload_id"]], image_urls=urls)
    twice = edit(ALICE, [upload["upload_id"], upload["upload_id"]])
    malformed = edit(ALICE, ["../../results/1/x"])

    for reply in (text_model, too_many, twice, malformed):
        assert (reply.status, reply.code) == (400, "invalid_request"), reply.body
    assert "does not take upload_ids" in text_model.body["error"]["message"]
    nothing_charged(ALICE)


def test_the_answer_has_exactly_the_fields_openapi_documents(aws: None) -> None:
    from pathlib import Path

    import yaml

    spec = yaml.safe_load((Path(__file__).resolve().parents[2] / "openapi.yaml").read_text())
    documented = spec["components"]["schemas"]["Upload"]
    upload = ask_upload()
    assert set(upload) == set(documented["properties"]) == set(documented["required"])
    request = spec["components"]["schemas"]["UploadRequest"]
    assert request["properties"]["content_type"]["enum"] == list(uploads.CONTENT_TYPES)


# --- who may ask, and how often ---------------------------------------------------------


def test_a_banned_user_gets_no_upload(aws: None) -> None:
    from chalicelib.tables import UploadRecord, User

    register(ALICE)
    User.get(int(ALICE["id"])).update(actions=[User.banned.set(True)])

    reply = post("/api/uploads", ALICE, json_body={"content_type": "image/png", "size": 10})

    assert (reply.status, reply.code) == (403, "user_banned")
    assert not [r for r in UploadRecord.scan() if r.pk.startswith("upload#")]


def test_uploads_are_limited_per_user_per_minute(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(uploads, "UPLOADS_PER_GENERATION", 1)  # RATE_LIMIT_PER_MINUTE (10) uploads a minute
    # The uploads' clock pinned 45 s into a minute: all in one window, however slow the machine
    # (sleeping past a minute's last 5 s assumed eleven requests never take longer).
    minute = (int(time.time()) // 60) * 60
    monkeypatch.setattr(uploads, "time", SimpleNamespace(time=lambda: minute + 45.0))
    limit = ready().rate_limit_per_minute
    for _ in range(limit):
        ask_upload()

    reply = post("/api/uploads", ALICE, json_body={"content_type": "image/png", "size": 10})

    assert (reply.status, reply.code) == (429, "rate_limited")
    assert reply.headers["retry-after"] == "15"
    assert "uploads" in reply.body["error"]["message"]
    ask_upload(BOB)  # another user's window is their own


def test_a_replay_after_its_uploads_expired_is_the_replay_not_a_400(aws: None) -> None:
    from chalicelib.tables import UploadRecord

    upload = ask_upload()
    put_object(int(ALICE["id"]), upload["upload_id"], PNG)
    first = edit(ALICE, [upload["upload_id"]], key="edit-1")
    assert first.status == 202, first.body
    UploadRecord.get(UploadRecord.key(int(ALICE["id"]), upload["upload_id"])).delete()  # a day later: gone

    again = edit(ALICE, [upload["upload_id"]], key="edit-1")

    assert again.status == 200, again.body
    assert again.body["generation"]["id"] == first.body["generation"]["id"]
    assert again.body["credits"] == first.body["credits"] and len(list(Generation.query(int(ALICE["id"])))) == 1
    # Without the key (or with another one) the expired upload is still refused.
    assert edit(ALICE, [upload["upload_id"]], key="edit-2").status == 400
