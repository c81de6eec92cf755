"""The generation worker (issue 5), driven the way Lambda drives it.

Each test charges generations through ``money.start_generation``, puts their
jobs on the (moto) generation queue, hands the received messages to
``app.generation_worker`` as Lambda's SQS event, and checks balances, the
ledger, the generation, the stored picture, what the fake AIML and Telegram
servers received, and the ``batchItemFailures``. The ``aws`` fixture checks
the money invariants of CONTRACT §6 after every test.
"""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest
import requests

from chalicelib import generate, guards, money, notify, records, results
from chalicelib.generate import RetryLater
from chalicelib.handlers import worker as worker_handler
from chalicelib.model import ClaimOutcome
from chalicelib.tables import User
from chalicelib.telegram import BotApi
from local.lambda_context import LocalLambdaContext
from local.worker import scheduled_event
from tests.conftest import TEST_BOT_TOKEN
from tests.fakes.aiml import AIML_KEY, B64_PICTURE, URL_PICTURE, aiml_error, b64_answer, png
from tests.faults import Faults
from tests.probes import balance
from tests.worker_helpers import (
    CHARGED,
    REFUNDED,
    Stack,
    crashing_after,
    generation,
    ledger,
    message_id,
    metrics_in,
    stored_result,
)


def active_generations(user_id: int) -> int:
    return int(User.get(user_id, consistent_read=True).active_generations)


# --- the happy path ------------------------------------------------------------------


def test_a_job_stores_the_picture_completes_and_sends_it_with_the_prompt_as_caption(stack: Stack) -> None:
    prompt = "a lighthouse at dawn, " + "very detailed, " * 100  # longer than a caption may be
    job = stack.start_job(prompt)
    event = stack.deliver(job)

    assert stack.run(event) == []

    key = f"results/{job.user_id}/{job.generation_id}/0.png"
    done = generation(job)
    assert (done.status, list(done.result_keys), done.delivered, done.provider) == ("completed", [key], True, "aiml")
    assert stored_result(stack.settings, key) == (B64_PICTURE, "image/png")
    assert balance(job.user_id) == 9 and ledger(job) == CHARGED and active_generations(job.user_id) == 0

    [request] = stack.aiml.requests
    assert request.authorization == f"Bearer {AIML_KEY}"
    assert request.body == {
        "model": "google/gemini-2.5-flash-image",
        "prompt": prompt,
        "aspect_ratio": "1:1",
        "num_images": 1,
    }
    [photo] = stack.telegram.calls
    assert (photo.method, photo.token, photo.chat_id) == ("sendPhoto", TEST_BOT_TOKEN, str(job.user_id))
    assert photo.fields["caption"] == prompt[:1023] + "…" and len(photo.fields["caption"]) == 1024
    assert photo.files["photo"] == (f"nanogen-{job.generation_id}-0.png", B64_PICTURE)


def test_base64_and_url_answers_both_become_the_stored_and_sent_picture(stack: Stack) -> None:
    inline, linked = stack.start_job("inline picture"), stack.start_job("linked picture")
    stack.aiml.script("linked picture", stack.aiml.url_answer())

    assert stack.run(stack.deliver(inline, linked)) == []

    for job, picture in ((inline, B64_PICTURE), (linked, URL_PICTURE)):
        done = generation(job)
        assert done.status == "completed" and done.delivered
        assert stored_result(stack.settings, str(done.result_keys[0])) == (picture, "image/png")
        [photo] = stack.telegram.pictures_to(job.user_id)
        assert photo.files["photo"][1] == picture
    [download] = stack.aiml.downloads
    assert download.authorization is None  # the AIML key never goes to the file host


def test_a_photo_telegram_refuses_is_sent_as_a_document(stack: Stack) -> None:
    job = stack.start_job("a panorama 21:9 of the alps")
    stack.telegram.refuse_next("sendPhoto", 400, "Bad Request: PHOTO_INVALID_DIMENSIONS")

    assert stack.run(stack.deliver(job)) == []

    photo, document = stack.telegram.pictures_to(job.user_id)
    assert (photo.method, document.method) == ("sendPhoto", "sendDocument")
    assert document.files["document"] == (f"nanogen-{job.generation_id}-0.png", B64_PICTURE)
    assert document.fields["caption"] == "a panorama 21:9 of the alps"
    done = generation(job)
    assert done.status == "completed" and done.delivered and ledger(job) == CHARGED


# --- provider failures ------------------------------------------------------------------


def test_aiml_400_fails_and_refunds_at_once_after_one_call(stack: Stack) -> None:
    job = stack.start_job("a prompt AIML rejects")
    stack.aiml.script("a prompt AIML rejects", aiml_error(400, "prompt: must not contain forbidden content"))

    assert stack.run(stack.deliver(job)) == []  # permanent: not retried

    assert stack.aiml.calls_for("a prompt AIML rejects") == 1
    failed = generation(job)
    assert failed.status == "failed" and failed.error == "the image service rejected this prompt or its images."
    assert balance(job.user_id) == 10 and ledger(job) == REFUNDED and active_generations(job.user_id) == 0
    [told] = stack.telegram.texts_to(job.user_id)
    assert "rejected this prompt" in told and "The 1 credit it cost went back to your balance." in told
    assert "forbidden content" not in told  # the provider's own words stay in the log
    assert stack.telegram.pictures_to(job.user_id) == [] and stack.alerts() == []


def test_aiml_429_then_success_completes(stack: Stack) -> None:
    job = stack.start_job("busy service")
    stack.aiml.script("busy service", aiml_error(429, "Too many requests"), b64_answer())

    assert stack.run(stack.deliver(job)) == []

    assert stack.aiml.calls_for("busy service") == 2
    assert generation(job).status == "completed" and ledger(job) == CHARGED
    assert len(stack.telegram.pictures_to(job.user_id)) == 1


def test_repeated_500s_report_the_record_each_time_and_release_the_claim(stack: Stack) -> None:
    job = stack.start_job("model under maintenance")
    stack.aiml.script("model under maintenance", aiml_error(500, "Model is under maintenance"))
    event = stack.deliver(job)

    for invocation in (1, 2):
        # One record, and it failed: still a partial-batch answer, not an exception.
        assert stack.run(event) == [message_id(event, job)]
        pending = generation(job)
        assert (pending.status, pending.claim_token, int(pending.attempts)) == ("pending", None, invocation)
        assert stack.aiml.calls_for("model under maintenance") == 3 * invocation  # the client's own 3 attempts
    assert balance(job.user_id) == 9 and ledger(job) == CHARGED and active_generations(job.user_id) == 1
    assert stack.telegram.calls == []  # nothing to tell yet: it will be retried
    money.cancel_generation(job.user_id, job.generation_id)  # (the dead-letter path is in test_dead_letter)


def test_provider_401_and_403_refund_and_alert_the_operator_at_most_three_times(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The alerts' clock pinned mid-window (ALERT_WINDOW_SECONDS): all five failures count in one window,
    # even if the wall clock's window ends during the batch (its last alerts were then a new window's).
    window = notify.ALERT_WINDOW_SECONDS
    mid_window = time.time() // window * window + window / 2
    monkeypatch.setattr(notify, "time", SimpleNamespace(time=lambda: mid_window))
    # AIML's error message may echo what it was sent; the alert must not carry our key.
    bad_key = aiml_error(401, f"Invalid API key {AIML_KEY}")
    jobs = [stack.start_job(f"picture {index}") for index in range(5)]
    for index in range(5):
        stack.aiml.script(f"picture {index}", bad_key)

    assert stack.run(stack.deliver(*jobs)) == []

    for job in jobs:
        assert generation(job).status == "failed" and ledger(job) == REFUNDED and balance(job.user_id) == 10
        [told] = stack.telegram.texts_to(job.user_id)
        assert "unavailable right now" in told and "went back to your balance" in told
    assert len(stack.aiml.requests) == 5  # permanent: one call each
    alerts = stack.alerts()
    assert len(alerts) == 3  # five failures, three messages: the rest only logged
    assert all("provider-401" in alert and AIML_KEY not in alert for alert in alerts)
    assert metrics_in(capsys.readouterr().out)["OperatorAlerts"] == 5

    out_of_credits = stack.start_job("one more")
    stack.aiml.script("one more", aiml_error(403, "Insufficient balance"))
    assert stack.run(stack.deliver(out_of_credits)) == []
    assert ledger(out_of_credits) == REFUNDED
    [alert] = stack.alerts()[3:]  # another kind of trouble has its own allowance
    assert "provider-403" in alert and "Insufficient balance" in alert


def test_an_operator_alert_whose_throttle_times_out_is_only_logged_and_the_job_still_fails_and_refunds(
    stack: Stack, faults: Faults
) -> None:
    """Issue 12 #3: the alert throttle's timeout became an AttributeError that escaped ``alert_operator``
    before the refund: the job was neither failed nor refunded."""
    job = stack.start_job("picture")
    stack.aiml.script("picture", aiml_error(401, "Invalid API key"))
    throttle = faults.time_out("UpdateItem", table="guards", times=None)

    assert stack.run(stack.deliver(job)) == []

    assert throttle.fired == 4
    assert generation(job).status == "failed" and ledger(job) == REFUNDED and balance(job.user_id) == 10
    assert stack.alerts() == []  # unthrottled alerts could flood the chat in an outage: only logged


# --- redelivery -----------------------------------------------------------------------


def test_a_redelivered_job_after_completion_calls_nothing_again(stack: Stack) -> None:
    job = stack.start_job()
    event = stack.deliver(job)
    assert stack.run(event) == []

    assert stack.run(event) == []  # the same message again
    assert stack.run(stack.deliver(job)) == []  # and a duplicate copy

    assert len(stack.aiml.requests) == 1 and len(stack.telegram.pictures_to(job.user_id)) == 1
    assert generation(job).status == "completed" and ledger(job) == CHARGED


def test_a_crash_between_complete_and_delivery_is_delivered_by_the_redelivery(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = stack.start_job()
    event = stack.deliver(job)
    real_delivery = generate.deliver_pictures
    crashes: list[int] = []

    def crash_once(*args: Any, **kwargs: Any) -> bool:
        if not crashes:
            crashes.append(1)
            raise ConnectionResetError("Telegram went away")
        return real_delivery(*args, **kwargs)

    monkeypatch.setattr(generate, "deliver_pictures", crash_once)

    assert stack.run(event) == [message_id(event, job)]
    completed = generation(job)
    assert completed.status == "completed" and not completed.delivered
    assert stack.telegram.calls == [] and ledger(job) == CHARGED

    assert stack.run(event) == []
    assert generation(job).delivered and len(stack.telegram.pictures_to(job.user_id)) == 1
    assert len(stack.aiml.requests) == 1  # delivered from S3, not generated again
    assert ledger(job) == CHARGED


def test_a_job_held_by_another_worker_is_kept_and_taken_over_after_the_lease(stack: Stack) -> None:
    job = stack.start_job()
    now = time.time()
    other = money.claim_generation(job.user_id, job.generation_id, lease_seconds=150, now=now)
    assert other.outcome == ClaimOutcome.CLAIMED
    event = stack.deliver(job)

    # That worker may have died (a killed Lambda releases nothing): the message must not be dropped.
    assert stack.run(event) == [message_id(event, job)]
    assert other.generation is not None
    assert stack.aiml.requests == [] and generation(job).claim_token == other.generation.claim_token

    stack.worker_with(wall_clock=lambda: now + 151)  # SQS brings it back once the lease is over
    assert stack.run(event) == []
    assert generation(job).status == "completed" and len(stack.aiml.requests) == 1 and ledger(job) == CHARGED


def test_an_unexpected_error_before_completion_releases_the_claim_for_an_immediate_retry(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = stack.start_job()
    event = stack.deliver(job)
    with crashing_after(monkeypatch, results, "store_images", OSError):
        assert stack.run(event) == [message_id(event, job)]
    released = generation(job)
    assert (released.status, released.claim_token) == ("pending", None)

    assert stack.run(event) == []
    assert generation(job).status == "completed" and len(stack.aiml.requests) == 2 and ledger(job) == CHARGED


# --- batches --------------------------------------------------------------------------


def test_a_batch_of_ten_reports_exactly_its_three_failed_records(stack: Stack) -> None:
    jobs = [stack.start_job(f"picture number {index}") for index in range(10)]
    failing = {jobs[1], jobs[4], jobs[8]}
    for job in failing:
        stack.aiml.script(generation(job).prompt, aiml_error(502, "Bad gateway"))
    event = stack.deliver(*jobs)

    assert stack.run(event) == sorted(message_id(event, job) for job in failing)

    for job in jobs:
        current = generation(job)
        if job in failing:
            assert (current.status, current.claim_token) == ("pending", None)
        else:
            assert current.status == "completed" and current.delivered
            [photo] = stack.telegram.pictures_to(job.user_id)
            assert photo.fields["caption"] == current.prompt
        assert ledger(job) == CHARGED
    for job in failing:
        money.cancel_generation(job.user_id, job.generation_id)


def test_a_malformed_message_is_dropped_not_retried(stack: Stack) -> None:
    job = stack.start_job()
    stack.send("not json at all", '{"user_id": "1001", "generation_id": 7}', '{"generation_id": "x"}')
    stack.send(job.to_message())
    event = stack.receive()
    assert len(event["Records"]) == 4

    assert stack.run(event) == []  # nothing to retry: the junk can never succeed

    assert generation(job).status == "completed" and len(stack.aiml.requests) == 1


# --- time limits ----------------------------------------------------------------------


def test_a_timed_out_generation_is_refunded_without_calling_the_provider(stack: Stack) -> None:
    job = stack.start_job("too late", now=time.time() - stack.settings.generation_timeout_seconds - 100)

    assert stack.run(stack.deliver(job)) == []

    assert stack.aiml.requests == []
    failed = generation(job)
    assert failed.status == "failed" and ledger(job) == REFUNDED and balance(job.user_id) == 10
    [told] = stack.telegram.texts_to(job.user_id)
    assert "waited too long" in told and "went back to your balance" in told


def test_a_generation_whose_worker_died_mid_drawing_is_told_its_drawing_took_too_long(stack: Stack) -> None:
    created = time.time() - stack.settings.generation_timeout_seconds - 100
    job = stack.start_job("slow", now=created)
    claim = money.claim_generation(job.user_id, job.generation_id, lease_seconds=150, now=created + 5)
    assert claim.outcome == ClaimOutcome.CLAIMED  # ... and its worker died: the lease ran out long ago

    assert stack.run(stack.deliver(job)) == []

    assert stack.aiml.requests == [] and ledger(job) == REFUNDED
    [told] = stack.telegram.texts_to(job.user_id)
    assert "drawing it took too long" in told and "waited" not in told


def test_too_little_lambda_time_left_returns_the_job_untouched(stack: Stack) -> None:
    job = stack.start_job()
    event = stack.deliver(job)

    # 25 s left - 10 s safety margin < the 20 s a provider call needs.
    assert stack.run(event, seconds_left=25) == [message_id(event, job)]

    untouched = generation(job)
    assert (untouched.status, int(untouched.attempts), untouched.claim_token) == ("pending", 0, None)
    assert stack.aiml.requests == [] and stack.telegram.calls == [] and ledger(job) == CHARGED
    assert stack.run(event) == []  # the next invocation, with time enough, does it
    assert generation(job).status == "completed"


# --- delivery failures ----------------------------------------------------------------------


def test_telegram_429_on_delivery_retries_the_record_without_refund(stack: Stack) -> None:
    job = stack.start_job()
    event = stack.deliver(job)
    stack.telegram.refuse_next("sendPhoto", 429, "Too Many Requests: retry after 30", retry_after=30)

    assert stack.run(event) == [message_id(event, job)]
    waiting = generation(job)
    assert waiting.status == "completed" and not waiting.delivered and ledger(job) == CHARGED

    assert stack.run(event) == []  # the redelivery, once Telegram lets us
    assert generation(job).delivered and len(stack.aiml.requests) == 1
    assert [call.method for call in stack.telegram.calls] == ["sendPhoto", "sendPhoto"]
    assert ledger(job) == CHARGED and balance(job.user_id) == 9


def test_a_user_who_blocked_the_bot_gets_a_completed_unrefunded_generation_and_a_count(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    job = stack.start_job()
    stack.telegram.refuse_next("sendPhoto", 403, "Forbidden: bot was blocked by the user")

    assert stack.run(stack.deliver(job)) == []  # retrying cannot help

    done = generation(job)
    assert done.status == "completed" and done.delivered  # delivery is over, for good
    assert ledger(job) == CHARGED and balance(job.user_id) == 9
    assert metrics_in(capsys.readouterr().out)["DeliveryFailures"] == 1


# --- retry timing ----------------------------------------------------------------------------


def test_retry_delays_follow_the_failure_or_back_off() -> None:
    assert worker_handler.retry_delay(RetryLater("telegram 429", retry_after=30), 1) == 30
    assert worker_handler.retry_delay(RetryLater("lease", retry_after=0.2), 3) == 1
    backoff = [worker_handler.retry_delay(RetryLater("500"), count) for count in range(1, 6)]
    assert backoff == [10, 20, 40, 60, 60]
    assert worker_handler.retry_delay(ValueError("bug"), 1) == 10
    # Five receives' worth of backoff fit well inside a generation's lifetime.
    assert sum(backoff[:4]) < 300 / 2


# --- crash injection --------------------------------------------------------------------


class Crash(Exception):
    """The worker dies right after a write: nothing it would have done next happens."""


def _crash_points(stack: Stack) -> dict[str, tuple[Any, str]]:
    return {
        "claim": (money, "claim_generation"),
        "provider": (stack.worker.provider, "generate"),
        "s3_upload": (results, "store_images"),
        "complete": (money, "complete_generation"),
        "telegram_send": (generate, "deliver_pictures"),
        "mark_delivered": (records, "mark_delivered"),
    }


# What the retry does after each crash: provider calls in all, pictures sent in all.
_AFTER_REDELIVERY = {
    "claim": (1, 1),
    "provider": (2, 1),
    "s3_upload": (2, 1),
    "complete": (1, 1),
    # Sent, then died before remembering it: at least once per picture (the last one, here the
    # only one, is remembered by mark_delivered).
    "telegram_send": (1, 2),
    "mark_delivered": (1, 1),
}
_COMPLETED_BEFORE_CRASH = {"complete", "telegram_send", "mark_delivered"}


@pytest.mark.parametrize("point", list(_AFTER_REDELIVERY))
def test_a_crash_after_each_write_is_recovered_without_double_money(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    """Two jobs die at the same point: one comes back by SQS redelivery, the other is left to the sweeper."""
    created = time.time() - stack.settings.generation_timeout_seconds - 100  # virtual time: T0
    redelivered, swept = stack.start_job("redelivered", now=created), stack.start_job("swept", now=created)
    event = stack.deliver(redelivered, swept)
    stack.worker_with(wall_clock=lambda: created + 1)
    target, name = _crash_points(stack)[point]

    with crashing_after(monkeypatch, target, name, Crash), monkeypatch.context() as dead:
        dead.setattr(money, "release_claim", lambda *args, **kwargs: False)  # the dead release nothing
        assert stack.run(event) == sorted(message_id(event, job) for job in (redelivered, swept))
    for job in (redelivered, swept):
        assert ledger(job) == CHARGED

    # SQS redelivers once the lease (150 s) is over, before the generation's timeout (300 s).
    stack.worker_with(wall_clock=lambda: created + 152)
    assert (
        stack.run({"Records": [r for r in event["Records"] if r["messageId"] == message_id(event, redelivered)]}) == []
    )
    provider_calls, pictures = _AFTER_REDELIVERY[point]
    assert stack.aiml.calls_for("redelivered") == provider_calls
    assert len(stack.telegram.pictures_to(redelivered.user_id)) == pictures
    done = generation(redelivered)
    assert done.status == "completed" and done.delivered and ledger(redelivered) == CHARGED

    # The other message is lost; the sweeper (real time: past the timeout) ends what was unfinished.
    import app

    app.sweeper(scheduled_event(), LocalLambdaContext("sweeper", 60))
    app.sweeper(scheduled_event(), LocalLambdaContext("sweeper", 60))
    if point in _COMPLETED_BEFORE_CRASH:
        assert generation(swept).status == "completed" and ledger(swept) == CHARGED
    else:
        assert generation(swept).status == "failed" and ledger(swept) == REFUNDED
        [told] = stack.telegram.texts_to(swept.user_id)
        assert "drawing it took too long" in told  # claimed, then its worker died: it was being drawn
    # A late copy of its message changes no money; it only delivers a completed, undelivered picture.
    stack.worker_with(wall_clock=time.time)
    swept_calls = stack.aiml.calls_for("swept")
    assert stack.run(stack.deliver(swept)) == []
    assert stack.aiml.calls_for("swept") == swept_calls
    final = generation(swept)
    assert ledger(swept) == (CHARGED if point in _COMPLETED_BEFORE_CRASH else REFUNDED)
    assert final.delivered == (point in _COMPLETED_BEFORE_CRASH)


# --- faults: a lost response on the claim (issue 12 #6) ------------------------------------


def test_a_claim_whose_response_was_lost_is_recognised_as_ours_and_runs_at_once(stack: Stack, faults: Any) -> None:
    job = stack.start_job("lost claim response")
    # The claim is applied, its response lost; botocore's retry then fails the condition
    # against our own claim. Without the token check the worker backed off for 151 s.
    lost = faults.lose_response("UpdateItem", table="generations", nth=1, times=1)

    assert stack.run(stack.deliver(job)) == []

    assert lost.fired == 1
    done = generation(job)
    assert (done.status, done.delivered, int(done.attempts)) == ("completed", True, 1)
    assert stack.aiml.calls_for("lost claim response") == 1
    assert len(stack.telegram.pictures_to(job.user_id)) == 1
    assert ledger(job) == CHARGED and active_generations(job.user_id) == 0


# --- claims close to the timeout (issue 12 #2) ----------------------------------------------


def test_a_job_seconds_before_its_timeout_never_calls_the_paid_provider_and_is_refunded_once(stack: Stack) -> None:
    now = time.time()
    job = stack.start_job("too late to start", now=now - stack.settings.generation_timeout_seconds + 5)
    stack.worker_with(wall_clock=lambda: now)
    event = stack.deliver(job)

    # 5 s left: a provider call, storing and completing do not fit. Before, it was claimed,
    # the provider paid, and the sweeper refunded it while the worker still held it.
    assert stack.run(event) == [message_id(event, job)]
    assert stack.aiml.requests == []
    waiting = generation(job)
    assert (waiting.status, waiting.claim_token, int(waiting.attempts)) == ("pending", None, 0)
    assert ledger(job) == CHARGED
    with pytest.raises(RetryLater) as retry:
        stack.worker.run(job, deadline=time.monotonic() + 100)
    assert retry.value.retry_after is not None and 5 <= retry.value.retry_after <= 7  # back once it timed out

    # The message comes back after the timeout: failed and refunded once, the user told once.
    stack.worker_with(wall_clock=lambda: now + 7)
    assert stack.run(event) == []
    failed = generation(job)
    assert failed.status == "failed" and ledger(job) == REFUNDED and active_generations(job.user_id) == 0
    assert stack.aiml.requests == []
    [told] = stack.telegram.texts_to(job.user_id)
    assert "went back to your balance" in told


def test_the_provider_deadline_ends_before_the_generations_timeout_so_no_expiry_refunds_a_live_claim(
    stack: Stack,
) -> None:
    now = time.time()
    job = stack.start_job("a minute left", now=now - stack.settings.generation_timeout_seconds + 60)
    real = stack.worker.provider
    seen: list[float] = []

    class Watching:
        name = real.name

        def generate(self, **call: Any) -> Any:
            seconds = call["deadline"] - time.monotonic()
            seen.append(seconds)
            # At the last moment the provider may still be working, nothing has timed out:
            # neither the sweeper nor a duplicate message's expiry refunds this live claim.
            assert money.sweep_expired(now=now + seconds) == []
            duplicate = money.claim_generation(job.user_id, job.generation_id, lease_seconds=150, now=now + seconds)
            assert duplicate.outcome == ClaimOutcome.BUSY
            return real.generate(**call)

    stack.worker_with(provider=Watching(), wall_clock=lambda: now)
    assert stack.run(stack.deliver(job)) == []  # the Lambda has 120 s left; the generation 60 s

    [seconds] = seen
    assert 45 <= seconds <= 50 + 1  # 60 s to its timeout, less the margin for storing and completing
    done = generation(job)
    assert done.status == "completed" and done.delivered and ledger(job) == CHARGED


# --- one sender per picture (issue 12 #4) ------------------------------------------------------


def _completed_undelivered(stack: Stack, monkeypatch: pytest.MonkeyPatch, prompt: str) -> Any:
    """A generation completed by a worker whose delivery failed: paid, stored, not sent."""
    job = stack.start_job(prompt)
    with monkeypatch.context() as patch:
        patch.setattr(
            generate, "deliver_pictures", lambda *args, **kwargs: (_ for _ in ()).throw(OSError("network down"))
        )
        event = stack.deliver(job)
        assert stack.run(event) == [message_id(event, job)]
    done = generation(job)
    assert (done.status, done.delivered, getattr(done, "delivery_claimed_until", None)) == ("completed", False, None)
    return job


def test_two_workers_racing_to_deliver_one_completed_generation_send_it_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = _completed_undelivered(stack, monkeypatch, "two senders")
    real_send = generate.deliver_pictures
    sending = threading.Barrier(2, timeout=5)
    one_ended = threading.Event()

    def slow_send(*args: Any, **kwargs: Any) -> Any:
        # The lease holder sends only once the other worker has ended: that one has met the lease
        # (a fixed sleep here let a worker slowed down by a busy machine find the pictures delivered).
        one_ended.wait(timeout=10)
        return real_send(*args, **kwargs)

    monkeypatch.setattr(generate, "deliver_pictures", slow_send)
    outcomes: list[Any] = []

    def redelivered() -> None:
        sending.wait()
        try:
            outcomes.append(stack.worker.run(job, deadline=time.monotonic() + 100))
        except RetryLater as retry:
            outcomes.append(retry)
        finally:
            one_ended.set()

    threads = [threading.Thread(target=redelivered) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(stack.telegram.pictures_to(job.user_id)) == 1
    assert len(outcomes) == 2
    [waiting] = [outcome for outcome in outcomes if isinstance(outcome, RetryLater)]
    assert waiting.retry_after is not None and waiting.retry_after <= generate.DELIVERY_LEASE_SECONDS + 1
    assert generate.Outcome.DELIVERED_LATE in outcomes
    done = generation(job)
    assert done.delivered and getattr(done, "delivery_claimed_until", None) is None and ledger(job) == CHARGED

    # The waiting worker's retry finds it delivered: nothing is sent again.
    assert stack.run(stack.deliver(job)) == []
    assert len(stack.telegram.pictures_to(job.user_id)) == 1


def test_a_sender_that_died_holding_the_delivery_lease_is_taken_over_once_the_lease_runs_out(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = _completed_undelivered(stack, monkeypatch, "sender died")
    now = time.time()
    stack.worker_with(wall_clock=lambda: now)

    class Killed(BaseException):
        """The Lambda is killed mid-send: nothing is released."""

    with monkeypatch.context() as patch:
        patch.setattr(generate, "deliver_pictures", lambda *args, **kwargs: (_ for _ in ()).throw(Killed()))
        with pytest.raises(Killed):
            stack.worker.run(job, deadline=time.monotonic() + 100)
    assert int(generation(job).delivery_claimed_until) == int(now) + generate.DELIVERY_LEASE_SECONDS

    # While its lease is live, nobody else sends.
    with pytest.raises(RetryLater):
        stack.worker.run(job, deadline=time.monotonic() + 100)
    assert stack.telegram.pictures_to(job.user_id) == []

    # Once it ran out, the redelivered message delivers it, once.
    stack.worker_with(wall_clock=lambda: now + generate.DELIVERY_LEASE_SECONDS + 1)
    assert stack.worker.run(job, deadline=time.monotonic() + 100) == generate.Outcome.DELIVERED_LATE
    assert stack.worker.run(job, deadline=time.monotonic() + 100) == generate.Outcome.SKIPPED
    assert len(stack.telegram.pictures_to(job.user_id)) == 1
    assert generation(job).delivered and ledger(job) == CHARGED


# --- several pictures: delivery progress per picture ---------------------------------------

FIRST, SECOND = png(colour=(10, 160, 10)), png(colour=(160, 10, 160))


class SecondPhotoUnreachable(requests.Session):
    """The network fails on the second sendPhoto, before it reaches Telegram (a reset connection)."""

    def __init__(self) -> None:
        super().__init__()
        self.photos = 0

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        if str(url).endswith("/sendPhoto"):
            self.photos += 1
            if self.photos == 2:
                raise requests.ConnectionError("Connection reset by peer")
        return super().request(method, url, *args, **kwargs)


def _photos_sent(stack: Stack, job: Any) -> list[tuple[str, bytes]]:
    """(file name, content) of every sendPhoto that reached the fake Telegram, in order."""
    return [call.files["photo"] for call in stack.telegram.pictures_to(job.user_id) if call.method == "sendPhoto"]


@pytest.mark.parametrize("fault", ["telegram_500", "network_error"])
def test_a_retried_delivery_sends_only_the_pictures_telegram_has_not_accepted(stack: Stack, fault: str) -> None:
    job = stack.start_job("two foxes")
    stack.aiml.script("two foxes", b64_answer(FIRST, SECOND))
    if fault == "telegram_500":
        stack.telegram.refuse_next("sendPhoto", 500, "Internal Server Error", after=1)
    else:
        stack.worker_with(bot=BotApi(TEST_BOT_TOKEN, stack.telegram.api_base, session=SecondPhotoUnreachable()))
    event = stack.deliver(job)
    names = [f"nanogen-{job.generation_id}-{index}.png" for index in (0, 1)]

    assert stack.run(event) == [message_id(event, job)]  # the delivery is deferred: SQS brings it back

    half = generation(job)
    assert (half.status, half.delivered, half.delivered_pictures) == ("completed", False, {0})
    assert half.delivery_claimed_until is None  # the lease was given back for the retry
    assert ledger(job) == CHARGED

    assert stack.run(event) == []  # the redelivered message

    sent = _photos_sent(stack, job)
    if fault == "telegram_500":  # the fake saw the refused second picture, then its retry
        assert sent == [(names[0], FIRST), (names[1], SECOND), (names[1], SECOND)]
    else:  # the second never reached Telegram the first time
        assert sent == [(names[0], FIRST), (names[1], SECOND)]
    done = generation(job)
    assert (done.status, done.delivered, done.delivered_pictures) == ("completed", True, {0})
    assert len(stack.aiml.requests) == 1  # delivered from S3, not generated again
    # Charged once, never refunded.
    assert balance(job.user_id) == 9 and ledger(job) == CHARGED and active_generations(job.user_id) == 0

    assert stack.run(stack.deliver(job)) == []  # a late duplicate sends nothing
    assert len(_photos_sent(stack, job)) == len(sent)


def test_a_picture_accepted_but_not_recorded_is_sent_again_and_only_that_one(stack: Stack, faults: Faults) -> None:
    """At least once per picture: DynamoDB failing on the record of picture 1 (every attempt) sends it twice."""
    job = stack.start_job("two owls")
    stack.aiml.script("two owls", b64_answer(FIRST, SECOND))
    record_of_first = faults.time_out(
        "UpdateItem",
        table="generations",
        times=None,
        where=lambda call: {"NS": ["0"]} in call.params.get("ExpressionAttributeValues", {}).values(),
    )
    event = stack.deliver(job)

    assert stack.run(event) == [message_id(event, job)]  # stopped before the second picture
    assert record_of_first.fired == 4  # botocore's every attempt
    assert generation(job).delivered_pictures is None

    faults.rules.clear()
    assert stack.run(event) == []

    assert [name for name, _ in _photos_sent(stack, job)] == [
        f"nanogen-{job.generation_id}-0.png",
        f"nanogen-{job.generation_id}-0.png",
        f"nanogen-{job.generation_id}-1.png",
    ]
    done = generation(job)
    # The last picture is not recorded on its own: marking the generation delivered says it.
    assert (done.delivered, done.delivered_pictures) == (True, {0}) and ledger(job) == CHARGED


def test_a_sender_whose_lease_was_taken_over_stops_before_the_next_picture(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack.aiml.script("two cats", b64_answer(FIRST, SECOND))
    job = _completed_undelivered(stack, monkeypatch, "two cats")
    now = time.time()
    stack.worker_with(wall_clock=lambda: now)
    real_send = stack.worker.bot.send_photo
    shown: list[int] = []

    def slow_first_photo(*args: Any, **kwargs: Any) -> Any:
        sent = real_send(*args, **kwargs)
        shown.append(sent["message_id"])
        # Sending took longer than the lease: another worker took the delivery over meanwhile.
        taker = generation(job)
        assert records.claim_delivery(taker, lease_seconds=90, now=now + generate.DELIVERY_LEASE_SECONDS + 1)
        return sent

    monkeypatch.setattr(stack.worker.bot, "send_photo", slow_first_photo)
    with pytest.raises(generate.DeliveryBusy):
        stack.worker.run(job, deadline=time.monotonic() + 100)

    assert len(_photos_sent(stack, job)) == 1  # the second picture is left to the lease's new holder
    stopped = generation(job)
    assert not stopped.delivered and stopped.delivered_pictures is None and ledger(job) == CHARGED
    # The picture that did reach the chat is still one a reply edits: remembered before the lease check.
    [message] = shown
    first_key = results.result_key(job.user_id, job.generation_id, 0, "png")
    assert guards.picture_shown(int(stopped.chat_id), message) == first_key
