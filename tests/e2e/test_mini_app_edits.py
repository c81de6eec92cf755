"""The Mini App's edits: reference photos uploaded straight to S3 with the presigned POST of ``POST /api/uploads``.

The page posts the form to the local AWS endpoint, which enforces S3's POST
policy (``local/s3_post_policy.py``) and answers CORS as the results
bucket's rule does; the generation then carries the upload ids.
"""

from __future__ import annotations

import io
from typing import Any

import pytest

from tests.e2e.conftest import Stack, new_user

pytestmark = pytest.mark.e2e
EDIT_MODEL = "google/nano-banana-edit"


def _png(colour: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), colour).save(buffer, "PNG")
    return buffer.getvalue()


def test_an_edit_with_an_uploaded_png(stack: Stack, open_app: Any) -> None:
    user = new_user()
    app = open_app(user)
    app.page.select_option("select[name=model]", EDIT_MODEL)
    app.page.set_input_files(
        "input[name=photo]", files=[{"name": "cat.png", "mimeType": "image/png", "buffer": _png()}]
    )
    app.page.wait_for_selector(".thumb[data-uploaded=yes]")
    app.page.fill("textarea[name=prompt]", "make the background blue")

    app.tap_main_button()

    app.page.wait_for_selector(".current[data-status=completed] img", timeout=45000)
    [generation] = stack.api("GET", "/api/generation", user=user).json()["items"]
    assert generation["model"] == EDIT_MODEL
    assert len(generation["upload_ids"]) == 1


def test_a_removed_photo_is_not_sent(stack: Stack, open_app: Any) -> None:
    user = new_user()
    app = open_app(user)
    app.page.select_option("select[name=model]", EDIT_MODEL)
    files = [
        {"name": "a.png", "mimeType": "image/png", "buffer": _png((10, 10, 200))},
        {"name": "b.png", "mimeType": "image/png", "buffer": _png((10, 200, 10))},
    ]
    app.page.set_input_files("input[name=photo]", files=files)
    app.page.wait_for_function("document.querySelectorAll('.thumb[data-uploaded=yes]').length === 2")
    app.page.locator(".thumb .remove").first.click()
    app.page.fill("textarea[name=prompt]", "combine them")
    app.tap_main_button()
    app.page.wait_for_selector(".current[data-status=completed]", timeout=45000)
    [generation] = stack.api("GET", "/api/generation", user=user).json()["items"]
    assert len(generation["upload_ids"]) == 1
