"""The Mini App's edits: reference photos uploaded straight to S3 with the presigned POST of ``POST /api/uploads``.

The page posts the form to the local AWS endpoint, which enforces S3's POST
policy (``local/s3_post_policy.py``) and answers CORS as the results
bucket's rule does; the generation then carries the upload ids.
"""

from __future__ import annotations

import io
from types import SimpleNamespace
from typing import Any, cast

import pytest

from tests.e2e.conftest import Stack, new_user, shot

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


def test_photos_the_page_cannot_take_are_refused_in_russian_with_what_to_do(stack: Stack, open_app: Any) -> None:
    from chalicelib.errors import InvalidRequest
    from chalicelib.uploads import parse_upload_request

    app = open_app(new_user(language_code="ru"))
    app.page.select_option("select[name=model]", EDIT_MODEL)  # takes 3
    assert app.page.locator(".photos .hint").inner_text() == "До 3 картинок JPEG, PNG или WebP."
    png = _png()
    files = [
        {"name": "funny.gif", "mimeType": "image/gif", "buffer": b"GIF89a" + bytes(100)},
        {"name": "iphone.heic", "mimeType": "image/heic", "buffer": bytes(100)},
        {"name": "huge.png", "mimeType": "image/png", "buffer": png + bytes(11 * 1024 * 1024)},
        *({"name": f"{n}.png", "mimeType": "image/png", "buffer": png} for n in range(4)),
    ]

    app.page.set_input_files("input[name=photo]", files=files)

    app.page.wait_for_function("document.querySelectorAll('.thumb[data-uploaded=yes]').length === 3")
    assert app.page.locator(".refusals p").all_inner_texts() == [
        "«funny.gif» — не картинка JPEG, PNG или WebP. Выберите другое фото или сохраните это как JPEG.",
        "«iphone.heic» — не картинка JPEG, PNG или WebP. Выберите другое фото или сохраните это как JPEG.",
        "Фото «huge.png» слишком большое: можно до 10 МБ. Выберите фото поменьше.",
        "Nano Banana Edit принимает не больше 3 картинок, остальные не добавлены.",
    ]
    uploads = [r for r in app.requested("/api/uploads") if r.method == "POST"]
    assert len(uploads) == 3  # nothing refused was sent

    # A stack whose UPLOAD_MAX_BYTES is below the default: the API's own 400 for that size.
    def refuse_as_a_5_mb_stack(route: Any) -> None:
        try:
            parse_upload_request(
                route.request.post_data_json, cast(Any, SimpleNamespace(upload_max_bytes=5 * 1024 * 1024))
            )
        except InvalidRequest as refused:
            route.fulfill(status=refused.status, json=refused.body())
            return
        route.continue_()

    app.page.route("**/api/uploads", refuse_as_a_5_mb_stack)
    app.page.locator(".thumb .remove").first.click()
    app.page.set_input_files(
        "input[name=photo]",
        files=[{"name": "six.png", "mimeType": "image/png", "buffer": png + bytes(6 * 1024 * 1024)}],
    )

    app.page.wait_for_selector(".refusals p:text('six.png')")
    assert app.page.locator(".refusals p").all_inner_texts() == [
        "Фото «six.png» слишком большое: можно до 5 МБ. Выберите фото поменьше.",
    ]
    assert app.page.locator(".thumb").count() == 2  # the refused photo is not left behind
    assert app.page.locator(".error:not(.refusals)").count() == 0  # nor the generic «картинку не удалось заказать»
    shot(app, "photos-refused-ru-light")
