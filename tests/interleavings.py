"""Random interleavings of NanoGen's money steps, with DynamoDB faults, checked against CONTRACT §6.

A hypothesis state machine (``Interleavings``) drives the real code paths
on in-process moto: ``usecases.generation.order_generation`` (start),
``handlers.worker.process_batch`` (a worker run: claim, provider, complete,
deliver), ``money.claim_generation`` / ``complete_generation`` /
``fail_generation`` / ``release_claim`` (a worker's own steps, one at a time,
so other steps can come between them), ``money.cancel_generation``,
``handlers.sweeper.sweep``, ``handlers.worker.process_dead_letters``,
``money.credit_purchase`` (a Stars payment, redelivered by Telegram; an
invited buyer's first one pays their inviter's bonus),
``usecases.purchases.refund_stars_purchase`` (with an overlapping second
refund during Telegram's answer), ``money.register`` from a referral link
(``/start ref_<code>``, oneself's included) and ``money.redeem_promo_code``
(codes of one and two uses, one that expires during the run), and the
Telegram webhook (``handlers.webhook.handle``: a prompt, ``/start
ref_<code>``, ``/promo`` or a ``successful_payment``, each re-sent by
Telegram after a failure or at random). Time is a fake clock the steps
advance.

In some steps one fault of ``tests.faults`` fires on a chosen DynamoDB call
(its operation, which matching call, once or on every attempt). A step that
raises is treated as its caller would: SQS redelivers a worker's message (and
dead-letters it after ``MAX_RECEIVES``), Telegram redelivers a payment, a
client or the operator retries a start, cancel or refund later (``retry``).

After every step the §6 invariants are checked from the tables
(``local.invariants.violations``), plus what the tables alone cannot show:
Stars that Telegram returned leave no credits behind, a payment marked
refunded had its Stars returned, and an invited user who has paid earned
their inviter exactly one bonus (rule 7's "once", not just "at most once"). At the end of an interleaving the faults
stop, the world settles (retries, redeliveries, the sweeper after the
timeout), and every completed generation must have reached its chat.

``run(examples=..., seed=...)`` runs it outside pytest (``bench/interleavings.py``);
``tests/integration/test_interleavings.py`` runs a short one in ``make test``.
"""

from __future__ import annotations

import itertools
import json
import os
import time as real_time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, cast
from unittest import mock

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from chalicelib.errors import ApiError, TelegramError
from chalicelib.model import FailureReason, GenerationStatus, PaymentStatus, Profile
from chalicelib.providers.base import GeneratedImage
from tests.conftest import TEST_ADMIN_TOKEN, TEST_BOT_TOKEN, TEST_WEBHOOK_SECRET
from tests.faults import Faults, injected
from tests.money_helpers import order

MAX_RECEIVES = 5  # the generation queue's maxReceiveCount (infra/resources.py)
LEASE_SECONDS = 150
USERS = tuple(Profile(user_id=5001 + index, first_name=f"P{index}") for index in range(3))
_PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16

# The faults a step may get, by name; each adds one rule to the layer for that step.
FAULT_KINDS = (
    "lose_response",
    "time_out",
    "conflict",
    "throttle",
    "throughput_exceeded",
    "server_error",
    "server_error_after_apply",
)
OPERATIONS = ("TransactWriteItems", "UpdateItem", "GetItem", "PutItem", "Query", None)
STEPS = (
    "start",
    "work",
    "duplicate",
    "redrive",
    "claim",
    "complete",
    "fail",
    "release",
    "cancel",
    "sweep",
    "dead_letter",
    "pay",
    "refund",
    "retry",
    "tick",
    "join",
    "redeem",
    "webhook",
    "overlap",  # not a step: a second refund of the same charge during the first one's Telegram call
)


@dataclass(frozen=True)
class Fault:
    kind: str
    operation: str | None
    nth: int
    every_attempt: bool  # times=None: every matching call of the step, so botocore's retries cannot hide it

    def install(self, faults: Faults) -> Any:
        select: dict[str, Any] = {"nth": self.nth, "times": None if self.every_attempt else 1}
        if self.kind == "server_error_after_apply":
            return faults.server_error(self.operation, after_apply=True, **select)
        return getattr(faults, self.kind)(self.operation, **select)


faults_strategy = st.one_of(
    st.none(),
    st.none(),
    st.builds(
        Fault,
        kind=st.sampled_from(FAULT_KINDS),
        operation=st.sampled_from(OPERATIONS),
        nth=st.integers(1, 4),
        every_attempt=st.booleans(),
    ),
)

# Counters over every interleaving run in this process (the bench prints them).
STATS: Counter[str] = Counter()


class InvariantBroken(AssertionError):
    """A rule of CONTRACT §6 (or a delivery/Stars rule) does not hold; the message lists what."""


class BooksBroken(InvariantBroken):
    """local.invariants found the tables inconsistent (balance, ledger, refunds, active count)."""


class StarsBroken(InvariantBroken):
    """Telegram returned Stars and the user kept the credits, or a refunded payment kept its Stars."""


class ReferralBroken(InvariantBroken):
    pass


class NeverDelivered(InvariantBroken):
    """A completed generation never reached its chat, after everything settled."""


# --- Fakes: the provider, Telegram, the clock -----------------------------------------


class FakeProvider:
    name = "fake"

    def __init__(self) -> None:
        self.mode = "ok"
        self.calls = 0

    def generate(self, **request: Any) -> list[GeneratedImage]:
        from chalicelib.errors import ProviderError

        self.calls += 1
        if self.mode == "transient":
            raise ProviderError("the provider is busy", status=503, transient=True)
        if self.mode == "permanent":
            raise ProviderError("the prompt was refused", status=400, transient=False)
        return [GeneratedImage(data=_PNG, content_type="image/png")]


class FakeBot:
    """What NanoGen asks of the Bot API here, answered in memory; the Stars it returned are remembered."""

    def __init__(self, machine: Interleavings) -> None:
        self.machine = machine
        self.photo_mode = "ok"  # ok | 429 | down
        self.refund_mode = "ok"  # ok | refused | lost | down
        self.overlap: str | None = None  # a second refund of the same charge during the first's call
        self.delivered: Counter[str] = Counter()  # generation id -> pictures sent
        self.stars_returned: set[str] = set()
        self.messages = 0
        self._ids = itertools.count(1)

    def send_message(self, chat_id: int | str, text: str, **_: Any) -> dict[str, Any]:
        self.messages += 1
        return {"message_id": next(self._ids)}

    def send_photo(
        self,
        chat_id: int | str,
        photo: bytes,
        *,
        filename: str = "",
        caption: str | None = None,
        reply_markup: Mapping[str, Any] | None = None,
    ) -> Any:
        if self.photo_mode == "429":
            raise TelegramError("Too Many Requests: retry after 3", error_code=429, retry_after=3)
        if self.photo_mode == "down":
            raise TelegramError("Telegram could not be reached")
        self.delivered[filename.split("-")[1]] += 1  # nanogen-<generation id>-<index>.<ext>
        return {"message_id": next(self._ids)}

    send_document = send_photo

    def refund_star_payment(self, user_id: int, charge_id: str) -> bool:
        if self.overlap is not None:
            inner, self.overlap = self.overlap, None
            outer, self.refund_mode = self.refund_mode, inner
            try:
                self.machine.refund_once(charge_id, by="second admin")
            finally:
                self.refund_mode = outer
        if charge_id in self.stars_returned:
            raise TelegramError("Bad Request: CHARGE_ALREADY_REFUNDED", error_code=400)
        if self.refund_mode == "refused":
            raise TelegramError("Bad Request: BALANCE_TOO_LOW", error_code=400)
        if self.refund_mode == "down":
            raise TelegramError("Telegram could not be reached")
        self.stars_returned.add(charge_id)
        if self.refund_mode == "lost":
            raise TelegramError("Telegram could not be reached")  # returned, but the answer never came
        return True


@dataclass(frozen=True)
class _Request:
    """What the webhook handler reads of Chalice's request."""

    headers: Mapping[str, str]
    raw_body: bytes


class FakeTime:
    """The ``time`` module as the patched chalicelib modules see it: ``time()`` is the machine's clock."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def __getattr__(self, name: str) -> Any:
        return getattr(real_time, name)


_CLOCKED_MODULES = ("money", "queries", "records", "notify", "guards", "ids", "generate")


# --- The world's queues ------------------------------------------------------------------


@dataclass
class Message:
    body: str
    message_id: str
    receives: int = 0

    @property
    def job(self) -> tuple[int, str]:
        document = json.loads(self.body)
        return int(document["user_id"]), str(document["generation_id"])


@dataclass
class Held:
    """A worker between its claim and its next step (the claim's message stays queued meanwhile)."""

    generation: Any
    keys: list[str] = field(default_factory=list)


def _is_answer(error: BaseException) -> bool:
    """A definite 4xx answer: the caller has its answer and does not retry."""
    return isinstance(error, ApiError) and error.status < 500


# --- The machine -------------------------------------------------------------------------


class Interleavings(RuleBasedStateMachine):
    excluded_steps: ClassVar[frozenset[str]] = frozenset()
    excluded_faults: ClassVar[frozenset[str]] = frozenset()
    check_delivery: ClassVar[bool] = True

    def __init__(self) -> None:
        super().__init__()
        STATS["interleavings"] += 1
        self._exit = ExitStack()
        try:
            self._set_up()
        except BaseException:
            self._exit.close()
            raise

    def _set_up(self) -> None:
        from chalicelib import bootstrap, jobs
        from chalicelib.generate import Worker
        from chalicelib.handlers import worker as worker_handler
        from chalicelib.runtime import ready

        bootstrap.reset()
        self.settings = ready()
        _wipe_tables(self.settings)
        self.clock = FakeTime(float(int(real_time.time())))
        for name in _CLOCKED_MODULES:
            module = __import__(f"chalicelib.{name}", fromlist=["time"])
            self._exit.enter_context(mock.patch.object(module, "time", self.clock))
        self.provider = FakeProvider()
        self.bot = FakeBot(self)
        bot = cast(Any, self.bot)
        self._exit.enter_context(mock.patch.object(bootstrap, "bot_api", lambda: bot))
        self.queue: list[Message] = []
        self.dead_letters: list[Message] = []
        self._message_ids = itertools.count(1)
        self._exit.enter_context(mock.patch.object(jobs, "send_to_worker", self._send_to_worker))
        self._exit.enter_context(mock.patch.object(jobs, "enqueue", self._enqueue))
        self._exit.enter_context(mock.patch.object(worker_handler, "_delay_retries", lambda retries, settings: None))
        self.worker = Worker(
            settings=self.settings,
            provider=self.provider,
            bot=bot,
            lease_seconds=LEASE_SECONDS,
            wall_clock=self.clock.time,
        )
        bootstrap.use_worker(self.worker)
        self._exit.callback(bootstrap.reset)
        self._create_promo_codes()
        self.faults = self._exit.enter_context(injected())
        self.generations: list[tuple[int, str]] = []
        self.held: list[Held] = []
        self.charges: list[tuple[Profile, str]] = []
        self.retries: list[tuple[str, Callable[[], Any]]] = []
        self._keys = itertools.count(1)
        self.updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(700_000)

    def _create_promo_codes(self) -> None:
        from chalicelib import records
        from chalicelib.ids import iso_utc

        now = self.clock.now
        records.create_promo_code("SOLO", credits=2, max_uses=1, expires_at=None, created_by="machine", now=now)
        records.create_promo_code("PAIR", credits=3, max_uses=2, expires_at=None, created_by="machine", now=now)
        soon = iso_utc(now + 200)  # a few ticks: some redemptions come after it expired
        records.create_promo_code("SOON", credits=4, max_uses=3, expires_at=soon, created_by="machine", now=now)

    def teardown(self) -> None:
        try:
            self.faults.clear()
            self._settle()
        finally:
            self._exit.close()

    # -- plumbing ------------------------------------------------------------------------

    def _send_to_worker(self, user_id: int, generation_id: str, settings: Any) -> None:
        from chalicelib.jobs import Job

        self._enqueue([Job(user_id, generation_id)], settings)

    def _enqueue(self, queued: list[Any], settings: Any) -> None:
        for job in queued:
            self.queue.append(Message(job.to_message(), f"m{next(self._message_ids)}"))

    @contextmanager
    def _step(self, name: str, fault: Fault | None) -> Iterator[None]:
        """Count the step, install its fault (unless that kind is excluded), and clear it afterwards."""
        STATS["steps"] += 1
        STATS[f"step {name}"] += 1
        rule_ = None
        if fault is not None and fault.kind not in self.excluded_faults:
            rule_ = fault.install(self.faults)
        try:
            yield
        finally:
            if rule_ is not None and rule_.fired:
                STATS["faults fired"] += 1
                STATS[f"fault {fault.kind if fault else ''}"] += 1
            self.faults.clear()

    def _attempt(self, name: str, action: Callable[[], Any], *, retry: bool = True) -> Any:
        """Run a caller's action; a failure that is not a 4xx answer is retried later by its caller."""
        try:
            return action()
        except Exception as error:
            STATS[f"raised {name}: {type(error).__name__}"] += 1
            if retry and not _is_answer(error):
                self.retries.append((name, action))
            return None

    def _event(self, message: Message) -> dict[str, Any]:
        from local.worker import lambda_sqs_event

        message.receives += 1
        raw = {
            "MessageId": message.message_id,
            "ReceiptHandle": f"receipt-{message.message_id}-{message.receives}",
            "Body": message.body,
            "Attributes": {"ApproximateReceiveCount": str(message.receives)},
        }
        return lambda_sqs_event([raw], "arn:aws:sqs:us-east-1:000000000000:queue")

    def _run_worker(self, message: Message, *, keep: bool = False) -> None:
        """One receive of ``message`` by the generation worker Lambda (SQS semantics, dead-lettering)."""
        from chalicelib.handlers.worker import process_batch
        from local.lambda_context import LocalLambdaContext

        if message.receives >= MAX_RECEIVES:  # SQS moves it on the receive after maxReceiveCount
            self.queue.remove(message)
            self.dead_letters.append(Message(message.body, message.message_id))
            return
        try:
            response = process_batch(self._event(message), LocalLambdaContext("generation_worker", 120))
            retried = bool(response["batchItemFailures"])
        except Exception as error:
            STATS[f"raised work: {type(error).__name__}"] += 1
            retried = True
        if not retried and not keep:
            self.queue.remove(message)

    def _run_dead_letter(self, message: Message) -> None:
        from chalicelib.handlers.worker import process_dead_letters
        from local.lambda_context import LocalLambdaContext

        try:
            response = process_dead_letters(self._event(message), LocalLambdaContext("dead_letter_worker", 60))
            retried = bool(response["batchItemFailures"])
        except Exception as error:
            STATS[f"raised dead_letter: {type(error).__name__}"] += 1
            retried = True
        if not retried:
            self.dead_letters.remove(message)

    def _update(self, user: Profile, kind: str) -> dict[str, Any]:
        """A private-chat update from ``user`` as Telegram sends it (ids unique in the run)."""
        from chalicelib import catalogue, referrals

        update_id = next(self._update_ids)
        sender = {"id": user.user_id, "is_bot": False, "first_name": user.first_name, "language_code": "ru"}
        message: dict[str, Any] = {
            "message_id": update_id,
            "date": int(self.clock.now),
            "chat": {"id": user.user_id, "type": "private"},
            "from": sender,
        }
        if kind == "prompt":
            message["text"] = f"a picture {update_id}"
        elif kind == "start":
            inviter = USERS[update_id % len(USERS)]  # one's own link a third of the time
            message["text"] = f"/start ref_{referrals.code_of(inviter.user_id)}"
        elif kind == "promo":
            message["text"] = "/promo pair"
        else:
            pack = catalogue.PACKS[0]
            charge_id = f"tg-charge-{update_id}"
            message["successful_payment"] = {
                "currency": "XTR",
                "total_amount": pack.stars,
                "invoice_payload": pack.payload,
                "telegram_payment_charge_id": charge_id,
                "provider_payment_charge_id": f"provider-{charge_id}",
            }
            self.charges.append((user, charge_id))
        return {"update_id": update_id, "message": message}

    def _deliver(self, update: dict[str, Any]) -> None:
        """One POST of ``update`` to the webhook; a failure (5xx) makes Telegram send it again later."""
        from chalicelib.handlers import webhook

        request = cast(
            Any, _Request(headers={webhook.SECRET_HEADER: TEST_WEBHOOK_SECRET}, raw_body=json.dumps(update).encode())
        )
        self._attempt("webhook", lambda: webhook.handle(request))

    def refund_once(self, charge_id: str, *, by: str) -> Any:
        from chalicelib.usecases.purchases import refund_stars_purchase

        bot: Any = self.bot
        return self._attempt("refund", lambda: refund_stars_purchase(bot, self.settings, charge_id, by=by))

    def _sweep(self) -> None:
        from chalicelib.handlers.sweeper import sweep

        self._attempt("sweep", sweep, retry=False)  # the schedule runs it again in a minute

    # -- the steps -----------------------------------------------------------------------

    @precondition(lambda self: "start" not in self.excluded_steps)
    @rule(user=st.sampled_from(USERS), cost=st.integers(1, 4), replay=st.booleans(), fault=faults_strategy)
    def start(self, user: Profile, cost: int, replay: bool, fault: Fault | None) -> None:
        """A client starts a generation (a replay reuses its last Idempotency-Key)."""
        from chalicelib.usecases.generation import order_generation

        number = next(self._keys) - (1 if replay and len(self.generations) else 0)
        key, wanted = f"key-{user.user_id}-{number}", order(f"picture {number}", cost)

        def action() -> None:
            result = order_generation(
                user, wanted, self.settings, chat_id=user.user_id, source="api", idempotency_key=key
            )
            job = (user.user_id, result.generation.generation_id)
            if job not in self.generations:
                self.generations.append(job)

        with self._step("start", fault):
            self._attempt("start", action)

    @precondition(lambda self: bool(self.queue) and "work" not in self.excluded_steps)
    @rule(
        index=st.integers(0, 20),
        provider=st.sampled_from(["ok", "ok", "transient", "permanent"]),
        telegram=st.sampled_from(["ok", "ok", "429", "down"]),
        fault=faults_strategy,
    )
    def work(self, index: int, provider: str, telegram: str, fault: Fault | None) -> None:
        """The worker Lambda receives one queued message (claim, provider, complete, deliver)."""
        self.provider.mode, self.bot.photo_mode = provider, telegram
        with self._step("work", fault):
            self._run_worker(self.queue[index % len(self.queue)])
        self.provider.mode, self.bot.photo_mode = "ok", "ok"

    @precondition(lambda self: bool(self.queue) and "duplicate" not in self.excluded_steps)
    @rule(index=st.integers(0, 20), telegram=st.sampled_from(["ok", "429"]), fault=faults_strategy)
    def duplicate(self, index: int, telegram: str, fault: Fault | None) -> None:
        """SQS delivers a copy of a queued message (at least once): a worker runs it; the original stays."""
        self.bot.photo_mode = telegram
        with self._step("duplicate", fault):
            self._run_worker(self.queue[index % len(self.queue)], keep=True)
        self.bot.photo_mode = "ok"

    @precondition(lambda self: bool(self.queue) and "redrive" not in self.excluded_steps)
    @rule(index=st.integers(0, 20))
    def redrive(self, index: int) -> None:
        """A message's remaining receives are used up without a run (throttled batches, Lambda timeouts):
        SQS moves it to the dead-letter queue."""
        STATS["steps"] += 1
        STATS["step redrive"] += 1
        message = self.queue.pop(index % len(self.queue))
        self.dead_letters.append(Message(message.body, message.message_id))

    @precondition(lambda self: bool(self.queue) and "claim" not in self.excluded_steps)
    @rule(index=st.integers(0, 20), fault=faults_strategy)
    def claim(self, index: int, fault: Fault | None) -> None:
        """A worker claims a queued job and stops there for now (its message stays in flight)."""
        from chalicelib import money
        from chalicelib.model import ClaimOutcome

        user_id, generation_id = self.queue[index % len(self.queue)].job
        with self._step("claim", fault):
            claim = self._attempt(
                "claim",
                lambda: money.claim_generation(user_id, generation_id, lease_seconds=LEASE_SECONDS),
                retry=False,
            )
        if claim is not None and claim.outcome == ClaimOutcome.CLAIMED:
            self.held.append(Held(claim.generation))

    @precondition(lambda self: bool(self.held) and "complete" not in self.excluded_steps)
    @rule(index=st.integers(0, 10), fault=faults_strategy)
    def complete(self, index: int, fault: Fault | None) -> None:
        """A worker holding a claim stores its picture and completes (then dies before delivering)."""
        from chalicelib import money, results

        held = self.held[index % len(self.held)]
        generation = held.generation
        if not held.keys:
            images = [GeneratedImage(data=_PNG, content_type="image/png")]
            held.keys = results.store_images(int(generation.user_id), generation.generation_id, images, self.settings)
        with self._step("complete", fault):
            try:
                money.complete_generation(generation, result_keys=held.keys, provider="fake")
            except Exception as error:
                STATS[f"raised complete: {type(error).__name__}"] += 1
                return  # the worker retries its completion
        self.held.remove(held)

    @precondition(lambda self: bool(self.held) and "fail" not in self.excluded_steps)
    @rule(index=st.integers(0, 10), fault=faults_strategy)
    def fail(self, index: int, fault: Fault | None) -> None:
        """A worker holding a claim got a permanent provider error: fail and refund."""
        from chalicelib import money

        held = self.held[index % len(self.held)]
        with self._step("fail", fault):
            try:
                money.fail_generation(
                    held.generation, error=FailureReason.PROVIDER_REJECTED, claim_token=held.generation.claim_token
                )
            except Exception as error:
                STATS[f"raised fail: {type(error).__name__}"] += 1
                return
        self.held.remove(held)

    @precondition(lambda self: bool(self.held) and "release" not in self.excluded_steps)
    @rule(index=st.integers(0, 10), fault=faults_strategy)
    def release(self, index: int, fault: Fault | None) -> None:
        """A worker holding a claim hit a transient error: it gives the claim back (or dies trying)."""
        from chalicelib import money

        held = self.held.pop(index % len(self.held))
        with self._step("release", fault):
            self._attempt("release", lambda: money.release_claim(held.generation), retry=False)

    @precondition(lambda self: bool(self.generations) and "cancel" not in self.excluded_steps)
    @rule(index=st.integers(0, 20), fault=faults_strategy)
    def cancel(self, index: int, fault: Fault | None) -> None:
        from chalicelib import money

        user_id, generation_id = self.generations[index % len(self.generations)]
        with self._step("cancel", fault):
            self._attempt("cancel", lambda: money.cancel_generation(user_id, generation_id))

    @precondition(lambda self: "sweep" not in self.excluded_steps)
    @rule(fault=faults_strategy)
    def sweep(self, fault: Fault | None) -> None:
        with self._step("sweep", fault):
            self._sweep()

    @precondition(lambda self: bool(self.dead_letters) and "dead_letter" not in self.excluded_steps)
    @rule(index=st.integers(0, 10), telegram=st.sampled_from(["ok", "ok", "429"]), fault=faults_strategy)
    def dead_letter(self, index: int, telegram: str, fault: Fault | None) -> None:
        self.bot.photo_mode = telegram
        with self._step("dead_letter", fault):
            self._run_dead_letter(self.dead_letters[index % len(self.dead_letters)])
        self.bot.photo_mode = "ok"

    @precondition(lambda self: "pay" not in self.excluded_steps)
    @rule(user=st.sampled_from(USERS), again=st.booleans(), fault=faults_strategy)
    def pay(self, user: Profile, again: bool, fault: Fault | None) -> None:
        """A successful Stars payment arrives (``again``: Telegram re-sends an earlier one)."""
        from chalicelib import money

        if again and self.charges:
            user, charge_id = self.charges[-1]
        else:
            charge_id = f"charge-{len(self.charges) + 1}"
            self.charges.append((user, charge_id))

        def action() -> None:
            money.credit_purchase(
                user, self.settings, charge_id=charge_id, provider_charge_id=None, pack_id="p", credits=5, stars=50
            )

        with self._step("pay", fault):
            self._attempt("pay", action)

    @precondition(lambda self: bool(self.charges) and "refund" not in self.excluded_steps)
    @rule(
        index=st.integers(0, 10),
        telegram=st.sampled_from(["ok", "ok", "refused", "lost", "down"]),
        overlap=st.one_of(st.none(), st.sampled_from(["ok", "refused", "lost", "down"])),
        fault=faults_strategy,
    )
    def refund(self, index: int, telegram: str, overlap: str | None, fault: Fault | None) -> None:
        """The operator refunds a Stars payment; ``overlap``: a second refund of it during Telegram's call."""
        _, charge_id = self.charges[index % len(self.charges)]
        if "overlap" in self.excluded_steps:
            overlap = None
        self.bot.refund_mode, self.bot.overlap = telegram, overlap
        with self._step("refund", fault):
            self.refund_once(charge_id, by="admin")
        self.bot.refund_mode, self.bot.overlap = "ok", None

    @precondition(lambda self: bool(self.retries) and "retry" not in self.excluded_steps)
    @rule(index=st.integers(0, 10), fault=faults_strategy)
    def retry(self, index: int, fault: Fault | None) -> None:
        """A client, Telegram or the operator tries a failed action again."""
        name, action = self.retries.pop(index % len(self.retries))
        with self._step("retry", fault):
            self._attempt(name, action)

    @precondition(lambda self: "join" not in self.excluded_steps)
    @rule(user=st.sampled_from(USERS), inviter=st.sampled_from(USERS), fault=faults_strategy)
    def join(self, user: Profile, inviter: Profile, fault: Fault | None) -> None:
        """A user opens the bot from a referral link (``/start ref_<code>``), as the bot's /start does;
        an invite counts only for a user new at that moment, never oneself."""
        from chalicelib import money, referrals

        payload = f"ref_{referrals.code_of(inviter.user_id)}"

        def action() -> None:
            money.register(user, self.settings, start_payload=payload, invited_by=referrals.inviter_of(payload))

        with self._step("join", fault):
            self._attempt("join", action)

    @precondition(lambda self: "redeem" not in self.excluded_steps)
    @rule(user=st.sampled_from(USERS), code=st.sampled_from(["SOLO", "PAIR", "SOON", "pair"]), fault=faults_strategy)
    def redeem(self, user: Profile, code: str, fault: Fault | None) -> None:
        """A user redeems a promo code (/promo or the API: the same ``money.redeem_promo_code``)."""
        from chalicelib import money

        with self._step("redeem", fault):
            self._attempt("redeem", lambda: money.redeem_promo_code(user, code, self.settings))

    @precondition(lambda self: "webhook" not in self.excluded_steps)
    @rule(
        user=st.sampled_from(USERS),
        kind=st.sampled_from(["prompt", "prompt", "start", "promo", "payment", "again"]),
        index=st.integers(0, 10),
        fault=faults_strategy,
    )
    def webhook(self, user: Profile, kind: str, index: int, fault: Fault | None) -> None:
        """Telegram delivers an update to the webhook (``again``: one it delivered before, once more)."""
        if kind == "again":
            if not self.updates:
                return
            update = self.updates[index % len(self.updates)]
        else:
            update = self._update(user, kind)
            self.updates.append(update)
        with self._step("webhook", fault):
            self._deliver(update)

    @rule(seconds=st.sampled_from([1, 20, 61, 151, 301]))
    def tick(self, seconds: int) -> None:
        STATS["steps"] += 1
        self.clock.now += seconds

    # -- the checks ----------------------------------------------------------------------

    @invariant()
    def books_balance(self) -> None:
        self.check()

    def check(self) -> None:
        from chalicelib.tables import Payment
        from local.invariants import violations

        with self.faults.suspended():
            problems = violations()
            payments = {payment.charge_id: str(payment.status) for payment in Payment.scan(consistent_read=True)}
        if problems:
            raise BooksBroken("; ".join(problems))
        stars = []
        for charge_id, status in payments.items():
            returned = charge_id in self.bot.stars_returned
            if returned and status == PaymentStatus.CREDITED:
                stars.append(f"payment {charge_id}: Telegram returned its Stars and its credits stay credited")
            if status == PaymentStatus.REFUNDED and not returned:
                stars.append(f"payment {charge_id} is refunded but Telegram never returned its Stars")
        if stars:
            raise StarsBroken("; ".join(stars))
        self._check_referrals()

    def _check_referrals(self) -> None:
        """An invited user who has paid brought their inviter exactly one bonus (referrals are on here)."""
        from chalicelib.tables import LedgerEntry, User

        with self.faults.suspended():
            users = list(User.scan(consistent_read=True))
            bonuses = Counter(
                int(entry.referred_user_id or 0)
                for entry in LedgerEntry.scan(consistent_read=True)
                if entry.reason == "referral"
            )
        missing = [
            f"user {int(user.user_id)} paid; inviter {int(user.invited_by)} got {bonuses[int(user.user_id)]} bonuses"
            for user in users
            if user.invited_by is not None and user.paid_at is not None and bonuses[int(user.user_id)] != 1
        ]
        if missing:
            raise ReferralBroken("; ".join(missing))

    def _settle(self) -> None:
        """No more faults: retries, redeliveries and the sweeper until nothing moves; then the end checks."""
        self.provider.mode, self.bot.photo_mode, self.bot.refund_mode, self.bot.overlap = "ok", "ok", "ok", None
        for name, action in list(self.retries):
            self._attempt(name, action, retry=False)
        self.retries.clear()
        self.held.clear()  # those workers died; their messages are still queued
        for charge_id, status in self._payments().items():
            if status == PaymentStatus.REFUNDING:
                self.refund_once(charge_id, by="admin")  # the operator finishes what was left unconfirmed
        for _ in range(8):
            self.clock.now += LEASE_SECONDS + 1
            self._sweep()
            for message in list(self.queue):
                self._run_worker(message)
            for message in list(self.dead_letters):
                self._run_dead_letter(message)
        self.check()
        if self.check_delivery:
            self._check_delivered()

    def _payments(self) -> dict[str, str]:
        from chalicelib.tables import Payment

        return {payment.charge_id: str(payment.status) for payment in Payment.scan(consistent_read=True)}

    def _check_delivered(self) -> None:
        from chalicelib.tables import Generation

        lost = [
            generation.generation_id
            for generation in Generation.scan(consistent_read=True)
            if generation.status == GenerationStatus.COMPLETED and not self.bot.delivered[generation.generation_id]
        ]
        if lost:
            raise NeverDelivered(f"completed generations never delivered: {', '.join(lost)}")


def _wipe_tables(settings: Any) -> None:
    """Empty every table (each interleaving starts from nothing; creating them anew costs a second)."""
    from chalicelib import aws
    from chalicelib.tables import table_names

    client = aws.client("dynamodb")
    for name in table_names(settings).values():
        keys = [part["AttributeName"] for part in client.describe_table(TableName=name)["Table"]["KeySchema"]]
        items = [
            {key: item[key] for key in keys}
            for page in client.get_paginator("scan").paginate(TableName=name, ConsistentRead=True)
            for item in page["Items"]
        ]
        for start in range(0, len(items), 25):
            chunk = items[start : start + 25]
            client.batch_write_item(RequestItems={name: [{"DeleteRequest": {"Key": key}} for key in chunk]})


@contextmanager
def world() -> Iterator[None]:
    """moto in-process with the stack's resources, for ``run`` outside pytest (the tests use ``aws``)."""
    from moto import mock_aws

    from chalicelib import bootstrap
    from chalicelib.runtime import ready
    from infra.resources import create_locally

    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE"):
        os.environ.pop(name, None)
    for name, value in TEST_ENV.items():
        os.environ.setdefault(name, value)
    with mock_aws():
        bootstrap.reset()
        create_locally(ready())
        yield


def machine(
    *,
    excluded_steps: frozenset[str] = frozenset(),
    excluded_faults: frozenset[str] = frozenset(),
    delivery: bool = True,
) -> type[Interleavings]:
    """The machine with some steps or fault kinds left out (each exclusion must say why, where it is used)."""
    unknown = (excluded_steps - set(STEPS)) | (excluded_faults - set(FAULT_KINDS))
    if unknown:
        raise ValueError(f"unknown steps or faults: {sorted(unknown)}")
    return type(
        "Interleavings",
        (Interleavings,),
        {"excluded_steps": excluded_steps, "excluded_faults": excluded_faults, "check_delivery": delivery},
    )


TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "TELEGRAM_BOT_TOKEN": TEST_BOT_TOKEN,
    "TELEGRAM_WEBHOOK_SECRET": TEST_WEBHOOK_SECRET,
    "ADMIN_API_TOKEN": TEST_ADMIN_TOKEN,
    "NANOGEN_STAGE": "interleavings",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "CRITICAL",
}


def run(
    *,
    examples: int,
    steps: int = 40,
    seed: int = 0,
    shrink: bool = True,
    machine_class: type[Interleavings] = Interleavings,
) -> None:
    """Run ``examples`` interleavings of up to ``steps`` steps from ``seed``; raises the (shrunk) first violation.

    Inside ``world()`` (or the tests' ``aws`` fixture).
    """
    from hypothesis import seed as with_seed
    from hypothesis.stateful import get_state_machine_test

    chosen = settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
        phases=[Phase.explicit, Phase.reuse, Phase.generate] + ([Phase.shrink] if shrink else []),
    )
    with_seed(seed)(get_state_machine_test(machine_class, settings=chosen))()
