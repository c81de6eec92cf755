"""The Mini App REST API through the real routes (CONTRACT §4, §5, §6).

Each test calls ``app`` with ``chalice.test.Client`` against moto and then
reads the tables: a status code alone proves little, so every refusal also
checks that the balance, the ledger and the generations did not move, and
every success checks what did. Authentication and ownership are in
``test_api_auth.py``; the operator's API in ``test_admin_api.py``.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from chalicelib import jobs, money
from chalicelib.handlers import api as api_handlers
from chalicelib.model import FailureReason
from chalicelib.queries import encode_cursor
from chalicelib.runtime import ready
from chalicelib.tables import IdempotencyRecord, RateLimitWindow
from chalicelib.validation import MAX_BODY_BYTES, MAX_PROMPT_CHARS
from tests.api_helpers import (
    ALICE,
    BOB,
    DEFAULT_MODEL,
    EDIT_MODEL,
    GENERATION_FIELDS,
    PRO_MODEL,
    USER_FIELDS,
    Reply,
    assert_error,
    call,
    complete_with_picture,
    configure,
    fail,
    get,
    post,
    register,
    start,
    tma,
)
from tests.faults import Faults
from tests.probes import balance, generations_of, ledger, queued_jobs, snapshot, stored_generation, stored_user

pytestmark = pytest.mark.usefixtures("aws")

ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
PICTURE = "https://images.example.com/cat.png"


def accepted(reply: Reply) -> dict[str, Any]:
    """The generation of a 202; fails the test on anything else."""
    assert reply.status == 202, reply.body
    generation: dict[str, Any] = reply.body["generation"]
    return generation


def charges(user_id: int) -> int:
    return sum(1 for _, reason in ledger(user_id) if reason == "generation")


# --- open routes ------------------------------------------------------------------


def test_health_and_models_need_no_credentials_and_models_show_the_operators_costs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert get("/api/health").body == {"status": "ok"}

    models = get("/api/generation/models")
    assert models.status == 200 and set(models.body) == {"models"}
    by_id = {model["id"]: model for model in models.body["models"]}
    assert list(by_id) == [DEFAULT_MODEL, EDIT_MODEL, PRO_MODEL]
    for model in by_id.values():
        assert set(model) == {"id", "name", "cost", "edit", "aspect_ratios", "max_images"}
        assert isinstance(model["name"], str) and model["name"]
        assert type(model["cost"]) is int and model["cost"] >= 1
        assert model["aspect_ratios"] and all(re.fullmatch(r"\d+:\d+", r) for r in model["aspect_ratios"])
    assert (by_id[EDIT_MODEL]["edit"], by_id[EDIT_MODEL]["max_images"]) == (True, 3)
    assert (by_id[DEFAULT_MODEL]["edit"], by_id[DEFAULT_MODEL]["max_images"]) == (False, 0)
    assert by_id[PRO_MODEL]["cost"] == 4
    assert snapshot() == (0, 0, 0, 0)

    # MODEL_COSTS changes what is shown and what is charged.
    configure(monkeypatch, MODEL_COSTS=f"{PRO_MODEL}=7")
    costs = {model["id"]: model["cost"] for model in get("/api/generation/models").body["models"]}
    assert costs == {DEFAULT_MODEL: 1, EDIT_MODEL: 1, PRO_MODEL: 7}
    assert accepted(start(ALICE, model=PRO_MODEL))["cost"] == 7
    assert balance(ALICE["id"]) == 3


# --- /api/user/me -----------------------------------------------------------------


def test_me_registers_the_user_once_with_the_welcome_credits(monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, WELCOME_CREDITS="7")
    first = get("/api/user/me", ALICE)
    assert first.status == 200
    assert first.body == {
        "id": ALICE["id"],
        "first_name": "Alice",
        "username": "alice",
        "credits": 7,
        "active_generations": 0,
        "banned": False,
        "referral": {"link": "https://t.me/NanoGenTestBot?start=ref_rt", "invited": 0, "earned": 0},
        "language": "en",
        "settings": {"model": "google/gemini-2.5-flash-image", "aspect_ratio": "1:1"},
    }
    again = get("/api/user/me", ALICE)
    assert again.body == first.body
    assert ledger(ALICE["id"]) == [(7, "welcome")]
    stored = stored_user(ALICE["id"])
    assert (stored.first_name, stored.username, stored.language_code) == ("Alice", "alice", "en")

    bob = get("/api/user/me", BOB).body
    assert set(bob) == USER_FIELDS | {"referral"} and bob["username"] is None and bob["credits"] == 7


# --- POST /api/generation -----------------------------------------------------------


def test_start_charges_once_returns_202_and_queues_one_job() -> None:
    register(ALICE)
    before = time.time()
    reply = start(ALICE, "  a red fox in the snow  ", aspect_ratio="16:9")
    generation = accepted(reply)

    assert set(reply.body) == {"generation", "credits"} and reply.body["credits"] == 9
    assert set(generation) == GENERATION_FIELDS
    assert generation["status"] == "pending"
    assert generation["prompt"] == "a red fox in the snow"  # trimmed
    assert (generation["model"], generation["aspect_ratio"], generation["cost"]) == (DEFAULT_MODEL, "16:9", 1)
    assert generation["image_urls"] == [] and generation["result_urls"] == [] and generation["error"] is None
    assert ISO_UTC.fullmatch(generation["created_at"]) and ISO_UTC.fullmatch(generation["updated_at"])
    assert generation["created_at"] >= time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(before)))

    assert balance(ALICE["id"]) == 9
    assert ledger(ALICE["id"]) == [(-1, "generation"), (10, "welcome")]
    stored = stored_generation(ALICE["id"], generation["id"])
    assert (stored.status, stored.source, stored.chat_id) == ("pending", "api", ALICE["id"])
    assert get("/api/user/me", ALICE).body["active_generations"] == 1
    assert [(job.user_id, job.generation_id) for job in queued_jobs()] == [(ALICE["id"], generation["id"])]
    assert get(f"/api/generation/{generation['id']}", ALICE).body == generation


def test_first_call_can_be_a_generation_and_edit_models_take_image_urls() -> None:
    # Bob never opened /api/user/me: he is registered on the way, then charged.
    generation = accepted(start(BOB, model=PRO_MODEL))
    assert generation["cost"] == 4
    assert balance(BOB["id"]) == 6
    assert ledger(BOB["id"]) == [(-4, "generation"), (10, "welcome")]

    urls = [PICTURE, "https://cdn.example.org/a/b.jpg?size=large"]
    edit = accepted(start(BOB, "make it blue", model=EDIT_MODEL, image_urls=urls, aspect_ratio="9:16"))
    assert (edit["image_urls"], edit["model"], edit["aspect_ratio"]) == (urls, EDIT_MODEL, "9:16")
    assert list(stored_generation(BOB["id"], edit["id"]).image_urls) == urls
    assert balance(BOB["id"]) == 5


def test_enqueue_failure_keeps_the_generation_for_the_sweeper(monkeypatch: pytest.MonkeyPatch) -> None:
    def sqs_down(*_: Any, **__: Any) -> None:
        raise RuntimeError("SQS unavailable")

    monkeypatch.setattr(jobs, "enqueue", sqs_down)
    generation = accepted(start(ALICE))
    assert stored_generation(ALICE["id"], generation["id"]).status == "pending"
    assert balance(ALICE["id"]) == 9  # charged; the sweeper re-queues stale pending generations
    assert queued_jobs() == []


# --- validation: 400 and nothing moves ----------------------------------------------------

TOO_LONG_PROMPT = "x" * (MAX_PROMPT_CHARS + 1)

BAD_BODIES: dict[str, bytes] = {
    "malformed JSON": b'{"prompt": "a cat"',
    "not JSON at all": b"prompt=a+cat",
    "a JSON array": b'["a cat"]',
    "a JSON string": b'"a cat"',
    "JSON null": b"null",
    "empty body": b"",
    "duplicated key": b'{"prompt": "a cat", "prompt": "a dog"}',
    "no prompt": json.dumps({"model": DEFAULT_MODEL}).encode(),
    "empty prompt": json.dumps({"prompt": ""}).encode(),
    "blank prompt": json.dumps({"prompt": "   \n\t "}).encode(),
    "prompt not a string": json.dumps({"prompt": 42}).encode(),
    "prompt too long": json.dumps({"prompt": TOO_LONG_PROMPT}).encode(),
    "prompt with control characters": json.dumps({"prompt": "a\x00cat"}).encode(),
    "unknown model": json.dumps({"prompt": "a cat", "model": "openai/dall-e-3"}).encode(),
    "model not a string": json.dumps({"prompt": "a cat", "model": ["x"]}).encode(),
    "unknown aspect ratio": json.dumps({"prompt": "a cat", "aspect_ratio": "7:5"}).encode(),
    "aspect ratio not offered by the model": json.dumps(
        {"prompt": "a cat", "model": EDIT_MODEL, "aspect_ratio": "21:9", "image_urls": [PICTURE]}
    ).encode(),
    "image_urls on a text-to-image model": json.dumps({"prompt": "a cat", "image_urls": [PICTURE]}).encode(),
    "edit model without image_urls": json.dumps({"prompt": "a cat", "model": EDIT_MODEL}).encode(),
    "too many images": json.dumps({"prompt": "a cat", "model": EDIT_MODEL, "image_urls": [PICTURE] * 4}).encode(),
    "image_urls not a list": json.dumps({"prompt": "a cat", "model": EDIT_MODEL, "image_urls": PICTURE}).encode(),
    "http image URL": json.dumps(
        {"prompt": "a cat", "model": EDIT_MODEL, "image_urls": ["http://images.example.com/cat.png"]}
    ).encode(),
    "image URL to a private address": json.dumps(
        {"prompt": "a cat", "model": EDIT_MODEL, "image_urls": ["https://169.254.169.254/latest/meta-data"]}
    ).encode(),
    "image URL to localhost": json.dumps(
        {"prompt": "a cat", "model": EDIT_MODEL, "image_urls": ["https://localhost/cat.png"]}
    ).encode(),
    "image URL that is not a URL": json.dumps(
        {"prompt": "a cat", "model": EDIT_MODEL, "image_urls": ["not a url"]}
    ).encode(),
    "unknown field": json.dumps({"prompt": "a cat", "seed": 42}).encode(),
    "oversized body": json.dumps({"prompt": "a cat", "model": DEFAULT_MODEL, "x": "y" * MAX_BODY_BYTES}).encode(),
}

BAD_IDEMPOTENCY_KEYS = {
    "empty": "",
    "too long": "k" * 129,
    "ending with a space": "my key ",
    "non-ASCII": "ключ",
}

BAD_HISTORY_QUERIES = (
    "limit=0",
    "limit=51",
    "limit=-1",
    "limit=abc",
    "limit=2.5",
    "limit=",
    "limit=99999999",
    "cursor=not-a-cursor",
    "cursor=eyJnIjoxfQ",  # {"g":1}
    "cursor=W10",  # []
    "cursor=eyJnIjoiMDFKWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWiJ9",  # {"g":"01JZZZZZZZZZZZZZZZZZZZZZZZZZ"}: 28 chars
    "cursor=%00",
    "cursor=" + encode_cursor("01JZZZZZZZZZZZZZZZZZZZZZZZ\n"),  # a valid id and a newline
    "cursor=" + "A" * 201,
)


def test_every_invalid_request_is_400_and_charges_nothing() -> None:
    register(ALICE)
    accepted(start(ALICE, "already there"))
    before = snapshot()
    for case, body in BAD_BODIES.items():
        reply = call("POST", "/api/generation", headers=tma(ALICE), raw_body=body)
        assert (reply.status, reply.code) == (400, "invalid_request"), f"{case}: {reply}"
        assert_error(reply, 400, "invalid_request")
    for case, key in BAD_IDEMPOTENCY_KEYS.items():
        reply = start(ALICE, key=key)
        assert (reply.status, reply.code) == (400, "invalid_request"), f"Idempotency-Key {case}: {reply}"
    for query in BAD_HISTORY_QUERIES:
        reply = get(f"/api/generation?{query}", ALICE)
        assert (reply.status, reply.code) == (400, "invalid_request"), f"{query}: {reply}"
    assert snapshot() == before
    assert balance(ALICE["id"]) == 9 and len(generations_of(ALICE["id"])) == 1
    assert len(queued_jobs()) == 1  # the one valid generation's
    # The messages say what to fix.
    too_long = call("POST", "/api/generation", headers=tma(ALICE), raw_body=BAD_BODIES["prompt too long"])
    assert str(MAX_PROMPT_CHARS) in too_long.body["error"]["message"]
    # A valid request with the longest valid key still goes through.
    assert accepted(start(ALICE, key="a" * 128))["status"] == "pending"


# --- money refusals: 402, 429 ------------------------------------------------------------------


def test_insufficient_credits_is_402_and_nothing_is_charged(monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, WELCOME_CREDITS="3")
    register(ALICE)
    before = snapshot()
    reply = start(ALICE, model=PRO_MODEL, key="buy-pro")
    assert_error(reply, 402, "insufficient_credits")
    assert reply.body["error"]["message"] == "This generation costs 4 credits and your balance is 3."
    assert snapshot() == before  # no generation, no ledger entry, no rate-limit slot, no idempotency key
    assert balance(ALICE["id"]) == 3
    assert queued_jobs() == []
    # A cheaper model is still affordable.
    assert accepted(start(ALICE))["cost"] == 1


def test_the_refusal_writes_one_credit_in_the_singular(monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, WELCOME_CREDITS="0")
    reply = start(ALICE)
    assert_error(reply, 402, "insufficient_credits")
    assert reply.body["error"]["message"] == "This generation costs 1 credit and your balance is 0."


def test_rate_limit_per_minute_is_429_with_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, RATE_LIMIT_PER_MINUTE="2", MAX_ACTIVE_GENERATIONS="10")
    minute = (int(time.time()) // 60) * 60
    # Pin the money clock 45 s into a minute, so the window cannot roll over mid-test.
    monkeypatch.setattr(money, "_now", lambda now: minute + 45.0 if now is None else now)
    accepted(start(ALICE))
    accepted(start(ALICE))
    reply = start(ALICE)
    assert_error(reply, 429, "rate_limited")
    assert reply.headers["retry-after"] == "15"
    assert balance(ALICE["id"]) == 8 and charges(ALICE["id"]) == 2
    assert len(generations_of(ALICE["id"])) == 2
    assert int(RateLimitWindow.get(RateLimitWindow.key(ALICE["id"], minute)).used) == 2


def test_too_many_active_generations_is_429_with_retry_after() -> None:
    first = accepted(start(ALICE))  # MAX_ACTIVE_GENERATIONS defaults to 2
    accepted(start(ALICE))
    reply = start(ALICE)
    assert_error(reply, 429, "too_many_active")
    assert int(reply.headers["retry-after"]) >= 1
    assert balance(ALICE["id"]) == 8 and len(generations_of(ALICE["id"])) == 2
    assert stored_user(ALICE["id"]).active_generations == 2
    # When one ends, a slot is free again.
    assert post(f"/api/generation/{first['id']}/cancel", ALICE).status == 200
    accepted(start(ALICE))
    assert balance(ALICE["id"]) == 8


# --- idempotency (CONTRACT §5) ------------------------------------------------------------------------


def test_same_key_and_parameters_replay_the_generation_without_a_second_charge() -> None:
    first = start(ALICE, key="order-1")
    generation = accepted(first)
    queued_jobs()

    # pending: the same generation, 200, nothing charged, nothing queued again (the sweeper
    # re-queues a pending generation whose message was lost; issue 11's one replay rule).
    replay = start(ALICE, key="order-1")
    assert replay.status == 200
    assert replay.body == {"generation": generation, "credits": 9}
    assert queued_jobs() == []

    # processing
    claim = money.claim_generation(ALICE["id"], generation["id"], lease_seconds=60)
    assert claim.generation is not None
    replay = start(ALICE, key="order-1")
    assert (replay.status, replay.body["generation"]["id"], replay.body["generation"]["status"]) == (
        200,
        generation["id"],
        "processing",
    )
    assert queued_jobs() == []  # a replay is never sent to the worker

    # completed
    ready_key = f"results/{ALICE['id']}/{generation['id']}/0.png"
    complete_with_picture(ALICE["id"], generation["id"], ready_key, claim=claim)
    replay = start(ALICE, key="order-1")
    assert replay.status == 200 and replay.body["generation"]["status"] == "completed"
    assert replay.body["generation"]["result_urls"] and replay.body["credits"] == 9

    assert balance(ALICE["id"]) == 9 and charges(ALICE["id"]) == 1
    assert len(generations_of(ALICE["id"])) == 1


def test_same_key_with_other_parameters_is_422_and_charges_nothing() -> None:
    generation = accepted(start(ALICE, "a red fox", key="order-1"))
    before = snapshot()
    for changed in ({"prompt": "a blue fox"}, {"aspect_ratio": "16:9"}, {"model": PRO_MODEL}):
        body = {"prompt": "a red fox", **changed}
        reply = call("POST", "/api/generation", headers={**tma(ALICE), "Idempotency-Key": "order-1"}, json_body=body)
        assert_error(reply, 422, "idempotency_key_reused")
    assert snapshot() == before and balance(ALICE["id"]) == 9
    assert stored_generation(ALICE["id"], generation["id"]).status == "pending"


def test_same_key_after_failed_or_cancelled_starts_a_new_charged_generation() -> None:
    failed = accepted(start(ALICE, key="order-1"))
    fail(ALICE["id"], failed["id"])
    assert balance(ALICE["id"]) == 10

    second = start(ALICE, key="order-1")
    retried = accepted(second)
    assert retried["id"] != failed["id"] and second.body["credits"] == 9

    assert post(f"/api/generation/{retried['id']}/cancel", ALICE).status == 200
    third = accepted(start(ALICE, key="order-1"))
    assert third["id"] not in (failed["id"], retried["id"])

    assert balance(ALICE["id"]) == 9 and charges(ALICE["id"]) == 3
    assert (
        IdempotencyRecord.get(IdempotencyRecord.key(ALICE["id"], "order-1", source="api")).generation_id == third["id"]
    )
    # And the key now replays the new generation.
    assert start(ALICE, key="order-1").body["generation"]["id"] == third["id"]


def test_idempotency_keys_are_per_user_and_optional(monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, MAX_ACTIVE_GENERATIONS="5")
    alice = accepted(start(ALICE, key="shared-key"))
    bob = accepted(start(BOB, key="shared-key"))
    assert alice["id"] != bob["id"]
    assert balance(ALICE["id"]) == 9 and balance(BOB["id"]) == 9

    # Without a key, the same request twice is two generations, charged twice.
    first = accepted(start(BOB))
    second = accepted(start(BOB))
    assert first["id"] != second["id"] and balance(BOB["id"]) == 7 and charges(BOB["id"]) == 3


# --- reading: one, history, results ---------------------------------------------------------------------


def test_history_is_newest_first_and_pages_through_every_generation(monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, MAX_ACTIVE_GENERATIONS="10")
    started = [accepted(start(ALICE, f"picture number {n}"))["id"] for n in range(5)]
    accepted(start(BOB, "not alice's"))
    newest_first = list(reversed(started))

    seen: list[str] = []
    pages: list[int] = []
    cursor: str | None = None
    for _ in range(10):
        path = "/api/generation?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = get(path, ALICE)
        assert page.status == 200 and set(page.body) == {"items", "next_cursor"}
        assert all(set(item) == GENERATION_FIELDS for item in page.body["items"])
        seen += [item["id"] for item in page.body["items"]]
        pages.append(len(page.body["items"]))
        cursor = page.body["next_cursor"]
        if cursor is None:
            break
    assert pages == [2, 2, 1]
    assert seen == newest_first  # no duplicates, no gaps, newest first

    everything = get("/api/generation", ALICE).body  # default limit 20
    assert [item["id"] for item in everything["items"]] == newest_first and everything["next_cursor"] is None
    # A page that ends exactly at the last generation says so: no empty extra page.
    exact = get("/api/generation?limit=5", ALICE).body
    assert [item["id"] for item in exact["items"]] == newest_first and exact["next_cursor"] is None


def unsigned(generation: dict[str, Any]) -> dict[str, Any]:
    """A generation as the API shows it, its presigned result URLs cut to their scheme, host and path."""
    urls = [urlsplit(url)._replace(query="").geturl() for url in generation["result_urls"]]
    return {**generation, "result_urls": urls}


def test_finished_generations_show_their_pictures_or_why_they_failed() -> None:
    generation = accepted(start(ALICE))
    key = f"results/{ALICE['id']}/{generation['id']}/0.png"
    complete_with_picture(ALICE["id"], generation["id"], key)

    shown = get(f"/api/generation/{generation['id']}", ALICE).body
    assert shown["status"] == "completed" and shown["error"] is None
    assert len(shown["result_urls"]) == 1
    url = urlsplit(shown["result_urls"][0])
    query = parse_qs(url.query)
    assert url.scheme == "https"
    assert url.path == f"/{ready().results_bucket}/{key}"
    assert query["X-Amz-Expires"] == ["3600"] and query["X-Amz-Signature"][0]
    # The list shows the same generation. Each response presigns anew, so X-Amz-Date (and with it the signature)
    # differs when the two calls straddle a second: compare the URLs without their query.
    assert [unsigned(item) for item in get("/api/generation", ALICE).body["items"]] == [unsigned(shown)]
    # Completed is paid for: no refund, and the slot is free.
    assert balance(ALICE["id"]) == 9 and ledger(ALICE["id"]) == [(-1, "generation"), (10, "welcome")]
    assert get("/api/user/me", ALICE).body["active_generations"] == 0

    failed = accepted(start(ALICE, "a prompt the provider refuses"))
    fail(ALICE["id"], failed["id"], FailureReason.PROVIDER_REJECTED)
    shown = get(f"/api/generation/{failed['id']}", ALICE).body
    # The stored English text, as the API has always given it (CONTRACT §5).
    assert (shown["status"], shown["result_urls"]) == ("failed", [])
    assert shown["error"] == "the image service rejected this prompt or its images."
    assert balance(ALICE["id"]) == 9  # charged 1, refunded 1


# --- cancel -------------------------------------------------------------------------------------------


def test_cancel_refunds_a_pending_generation_once_and_refuses_anything_else() -> None:
    generation = accepted(start(ALICE))
    reply = post(f"/api/generation/{generation['id']}/cancel", ALICE)
    assert reply.status == 200 and set(reply.body) == GENERATION_FIELDS
    assert reply.body["id"] == generation["id"] and reply.body["status"] == "cancelled"
    assert balance(ALICE["id"]) == 10
    assert get(f"/api/generation/{generation['id']}", ALICE).body["status"] == "cancelled"

    assert_error(post(f"/api/generation/{generation['id']}/cancel", ALICE), 409, "not_cancellable")
    assert ledger(ALICE["id"]) == [(-1, "generation"), (1, "refund"), (10, "welcome")]

    processing = accepted(start(ALICE, "being drawn"))
    assert money.claim_generation(ALICE["id"], processing["id"], lease_seconds=60).generation is not None
    completed = accepted(start(ALICE, "already drawn"))
    complete_with_picture(ALICE["id"], completed["id"], "results/x.png")
    for other in (processing, completed):
        assert_error(post(f"/api/generation/{other['id']}/cancel", ALICE), 409, "not_cancellable")
    assert stored_generation(ALICE["id"], processing["id"]).status == "processing"
    assert stored_generation(ALICE["id"], completed["id"]).status == "completed"

    for unknown in (
        "01JZZZZZZZZZZZZZZZZZZZZZZZ",
        "nope",
        "01jzzzzzzzzzzzzzzzzzzzzzzz",
        "01JZZZZZZZZZZZZZZZZZZZZZZZ%0A",
    ):
        assert_error(get(f"/api/generation/{unknown}", ALICE), 404, "not_found")
        assert_error(post(f"/api/generation/{unknown}/cancel", ALICE), 404, "not_found")
    assert balance(ALICE["id"]) == 8


# --- 500 ----------------------------------------------------------------------------------------------


def test_unexpected_error_is_500_with_a_request_id_and_no_detail(monkeypatch: pytest.MonkeyPatch) -> None:
    register(ALICE)

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("secret detail: table nanogen-test-users exploded")

    monkeypatch.setattr(api_handlers.money, "start_generation", broken)
    monkeypatch.setattr(api_handlers.queries, "history_page", broken)
    for reply in (start(ALICE), get("/api/generation", ALICE)):
        assert reply.status == 500 and reply.code == "internal_error"
        request_id = reply.body["error"]["request_id"]
        assert re.fullmatch(r"[0-9a-f-]{36}", request_id)
        assert reply.headers["x-request-id"] == request_id
        text = json.dumps(reply.body)
        assert "secret detail" not in text and "Traceback" not in text and "RuntimeError" not in text
    assert balance(ALICE["id"]) == 10 and generations_of(ALICE["id"]) == []


# --- DynamoDB under faults (issue 12 #8) ----------------------------------------------------------


def test_a_charge_whose_transaction_conflicts_every_time_answers_503_and_charges_nothing(faults: Faults) -> None:
    register(ALICE)
    before = snapshot()
    conflicting = faults.conflict("TransactWriteItems", times=None)

    reply = start(ALICE, key="busy-1")

    assert_error(reply, 503, "temporarily_unavailable")
    assert reply.headers["retry-after"] == "2" and "nothing was changed" in reply.body["error"]["message"]
    assert conflicting.fired == 6
    faults.clear()
    assert snapshot() == before and queued_jobs() == []
    assert start(ALICE, key="busy-1").status == 202  # the retry goes through, charged once


def test_a_charge_with_an_unknown_outcome_answers_503_and_the_same_key_then_replays_it(faults: Faults) -> None:
    """Applied, but every answer lost: not reported as "nothing happened"; the client's retry is safe."""
    register(ALICE)
    failing = faults.server_error("TransactWriteItems", after_apply=True, times=None)

    reply = start(ALICE, key="unknown-1")

    assert_error(reply, 503, "temporarily_unavailable")
    assert reply.headers["retry-after"] == "2" and "same Idempotency-Key" in reply.body["error"]["message"]
    assert failing.fired == 4 * 6  # botocore's 4 attempts for each of commit's 6, all under one token
    faults.clear()
    assert balance(ALICE["id"]) == 9  # it was applied, once

    retried = start(ALICE, key="unknown-1")

    assert retried.status == 200, retried.body  # the replay of the generation charged above
    assert balance(ALICE["id"]) == 9 and len(generations_of(ALICE["id"])) == 1


def test_a_balance_read_failing_after_the_charge_still_answers_202_and_the_job_is_queued(faults: Faults) -> None:
    """Issue 12 #7: the GetItem after the charge came before the queue; its failure answered 500
    and left the charged generation unqueued until the sweeper found it."""
    register(ALICE)
    # The first GetItem reads the saved settings; the one that fails is the balance read after the charge.
    reading = faults.time_out("GetItem", table="users", nth=2, times=None)

    reply = start(ALICE, key="read-fails")

    generation = accepted(reply)
    assert reply.body["credits"] is None
    assert reading.fired == 4
    faults.clear()
    assert [job.generation_id for job in queued_jobs()] == [generation["id"]]
    assert balance(ALICE["id"]) == 9
    replay = start(ALICE, key="read-fails")
    assert replay.status == 200 and replay.body["credits"] == 9
    assert queued_jobs() == []  # a replay queues nothing
