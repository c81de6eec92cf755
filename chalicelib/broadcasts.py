"""Broadcasts: an operator's message to an audience, sent in the background (CONTRACT §5, §6.8, §10).

Timeline of one broadcast (items in ``chalicelib.tables``)::

    POST /api/admin/broadcasts   Broadcast "queued", page 0 -> broadcast queue
    worker, from page k          queued -> sending (total = audience size); one Scan page of users;
                                 per chunk of 8 users: claim their BroadcastDelivery items (condition:
                                 new, broadcast still "sending"; one transaction) -> book 8 send slots
                                 -> sendMessage each at its slot -> record the outcomes (delivery
                                 states + the broadcast's counters [+ users blocked], one
                                 transaction); then page k -> k+1 (conditional) and on to page k+1
                                 (or, short of time, page k+1 -> the queue), "done" after the last page
    POST .../cancel              sending -> cancelled: the next claim fails, so sending stops within a page

* **At most once per user.** The claim is a conditional put: a redelivered
  or duplicated page finds the user claimed and skips them. A claim whose
  send crashed stays ``sending`` and is never retried (at most once beats
  at least once for an announcement).
* **One chain of pages.** An invocation sends page after page, marking
  each done with a conditional update (k -> k+1) before the next, and
  hands the rest back to the queue when its time runs low. A delivery that
  finds its page already done does nothing, unless it is a redelivery (the
  invocation before it died): then it queues the page the broadcast is at.
  Duplicated chains meet at the conditional update, where one stops.
* **At most BROADCAST_RATE_PER_SECOND in total.** Every worker books its
  sends on one shared clock (``BroadcastClock``): slots ``SPACING / rate``
  seconds wide, one message each, booked with a conditional increment and
  used at their start, so no window of one second holds more than the rate
  however many workers run. Telegram's 429 ``retry_after`` moves the clock
  past the pause for everyone.
* **Blocked users.** A 403 marks the user ``blocked``: counted, skipped by
  later broadcasts, cleared when they write to the bot again.
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib import aws, guards, queries, records
from chalicelib.config import Settings
from chalicelib.errors import BroadcastStopped, NotFound, TelegramError
from chalicelib.i18n import resolve_language
from chalicelib.ids import iso_utc, new_id
from chalicelib.model import BroadcastOutcome, BroadcastStatus
from chalicelib.observability import count, logger
from chalicelib.tables import Broadcast
from chalicelib.telegram import BotApi
from chalicelib.validation import BroadcastRequest

if TYPE_CHECKING:
    from chalicelib.tables import User

PAGE_SIZE = 100  # users per Scan page
CHUNK = 8  # users claimed, booked and recorded together (three DynamoDB calls for eight messages)
# Chunks in flight: enough that a chunk's bookkeeping (record, claim, book) fits in the time
# the others' slots take, so the clock never falls idle.
CHUNKS_IN_FLIGHT = 6
SENDERS = CHUNK * CHUNKS_IN_FLIGHT  # sends waiting for their slot at most; the shared clock sets the rate
PAGES_AHEAD = 2  # pages read and queued for sending before the first of them is done
# Slot width = SPACING / rate: the slack absorbs network jitter, so a sliding
# window of one second never holds more than ``rate`` messages.
SPACING = 1.07
# A slot is used only this soon after it starts. With SPACING, any second
# then holds at most ``rate`` sends as long as delivery jitter stays below
# (SPACING - 1) - LATE_TOLERANCE_SECONDS = 35 ms.
LATE_TOLERANCE_SECONDS = 0.035
# How far ahead a slot is booked: three booking round trips (learned), within these bounds.
MIN_LEAD_SECONDS = 0.03
MAX_LEAD_SECONDS = 1.0
MAX_RATE_LIMIT_RETRIES = 3  # 429s for one message before it counts as failed
# Stop booking sends this long before the Lambda times out and continue the page in a new message.
DEADLINE_MARGIN_SECONDS = 15.0


@dataclass(frozen=True)
class Page:
    """One queue message: page ``number`` of a broadcast's audience, starting at ``cursor``."""

    broadcast_id: str
    number: int
    cursor: dict[str, Any] | None
    continuation: bool = False  # the same page again, after a Lambda ran out of time

    def to_message(self) -> str:
        return json.dumps(
            {"broadcast_id": self.broadcast_id, "page": self.number, "cursor": self.cursor, "again": self.continuation}
        )

    @classmethod
    def from_message(cls, body: str) -> Page | None:
        try:
            data = json.loads(body)
            broadcast_id, number, cursor = data["broadcast_id"], data["page"], data.get("cursor")
        except (ValueError, TypeError, KeyError):
            return None
        if (
            not isinstance(broadcast_id, str)
            or type(number) is not int
            or not (cursor is None or isinstance(cursor, dict))
        ):
            return None
        return cls(broadcast_id, number, cursor, bool(data.get("again")))


# --------------------------------------------------------------------------
# The operator's side
# --------------------------------------------------------------------------


def create(request: BroadcastRequest, settings: Settings, *, created_by: str, now: float | None = None) -> Broadcast:
    """Store the broadcast as ``queued`` and queue its first page; nothing is sent here."""
    now = time.time() if now is None else now
    broadcast_id = new_id(now)
    broadcast = Broadcast(
        pk=Broadcast.key(broadcast_id),
        broadcast_id=broadcast_id,
        status=BroadcastStatus.QUEUED.value,
        audience=request.audience,
        text_all=request.texts.get("all"),
        text_en=request.texts.get("en"),
        text_ru=request.texts.get("ru"),
        total=0,
        sent=0,
        failed=0,
        blocked=0,
        page=0,
        created_at=iso_utc(now),
        updated_at=iso_utc(now),
        created_by=created_by,
    )
    records.create_broadcast(broadcast)
    try:
        enqueue(Page(broadcast_id, 0, None), settings)
    except Exception:
        # Never left "queued" with nothing queued: the operator sees it cancelled and may create it again.
        records.set_broadcast_status(broadcast_id, BroadcastStatus.CANCELLED, only_from=(BroadcastStatus.QUEUED,))
        raise
    count("BroadcastsCreated")
    return broadcast


def get(broadcast_id: str) -> Broadcast | None:
    return queries.get_broadcast(broadcast_id)


def cancel(broadcast_id: str, *, now: float | None = None) -> Broadcast:
    """queued/sending -> cancelled; the broadcast as it is when it has ended (cancelled, or done:
    nothing more is sent either way, CONTRACT §5); 404 for an unknown id."""
    stoppable = (BroadcastStatus.QUEUED, BroadcastStatus.SENDING)
    cancelled = records.set_broadcast_status(broadcast_id, BroadcastStatus.CANCELLED, only_from=stoppable, now=now)
    if cancelled is not None:
        return cancelled
    current = get(broadcast_id)
    if current is None:
        raise NotFound("No such broadcast.")
    return current


def view(broadcast: Broadcast) -> dict[str, Any]:
    return {
        "id": broadcast.broadcast_id,
        "status": broadcast.status,
        "audience": broadcast.audience,
        "total": int(broadcast.total),
        "sent": int(broadcast.sent),
        "failed": int(broadcast.failed),
        "blocked": int(broadcast.blocked),
        "created_at": broadcast.created_at,
    }


def queue_url(settings: Settings) -> str:
    return settings.broadcast_queue_url or aws.queue_url(settings.broadcast_queue_name)


def enqueue(page: Page, settings: Settings) -> None:
    aws.client("sqs").send_message(QueueUrl=queue_url(settings), MessageBody=page.to_message())


# --------------------------------------------------------------------------
# Each user's text
# --------------------------------------------------------------------------


def text_for(broadcast: Broadcast, user: User, settings: Settings) -> str:
    """The one text, else the one in the user's language (CONTRACT §8, the bot's own rule)."""
    if broadcast.text_all:
        return broadcast.text_all
    language = resolve_language(user.language, user.language_code, settings.default_language)
    return (broadcast.text_ru if language == "ru" else broadcast.text_en) or ""


# --------------------------------------------------------------------------
# The shared send clock
# --------------------------------------------------------------------------


class SendClock:
    """Slots of ``SPACING / rate`` seconds on one DynamoDB item, one message per slot, for every worker."""

    def __init__(
        self,
        rate: int,
        *,
        now: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.width = SPACING / rate
        self._now = now
        self._sleep = sleep
        self._lock = threading.Lock()
        self._paused_until = 0.0  # this worker's senders: slots booked before a 429 are given up
        self._lead = MIN_LEAD_SECONDS

    def book(self, count: int) -> list[float]:
        """Start times of ``count`` consecutive free slots that start after this call returns."""
        asked = self._now()
        first = self._book(self._lead, count)
        self._learn(self._now() - asked)
        return [(first + index) * self.width for index in range(count)]

    def wait_until_usable(self, start: float) -> bool:
        """Sleep until the slot starts; False when it must not be used after all (book another)."""
        self._sleep_until(start)
        with self._lock:
            paused_until = self._paused_until
        now = self._now()
        if now < paused_until:
            self._sleep_until(paused_until)  # booked before Telegram said to wait
            return False
        # Woken too late (a slow call, a busy CPU): sending now could crowd the next slots.
        return now - start <= LATE_TOLERANCE_SECONDS

    def wait_for_slot(self) -> None:
        """Book one slot and sleep until it starts (again, until one is usable)."""
        while not self.wait_until_usable(self.book(1)[0]):
            pass

    def pause(self, seconds: float) -> None:
        """Telegram said to wait: nobody gets a slot before then (other workers: no slot booked after now)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._now() + seconds)
        guards.push_send_clock(math.ceil((self._now() + seconds) / self.width), now=self._now())

    def _learn(self, booking_seconds: float) -> None:
        """After an idle spell, restart the clock this far ahead: past the booking call's return."""
        with self._lock:
            learned = 0.8 * self._lead + 0.2 * 2 * booking_seconds
            self._lead = min(MAX_LEAD_SECONDS, max(MIN_LEAD_SECONDS, learned, 1.5 * booking_seconds))

    def _book(self, lead: float, count: int) -> int:
        now = self._now()
        # A slot that has started by the time the booking returns is given up by its sender (one
        # slot lost); after an idle spell the clock restarts just after the call returns.
        return guards.book_send_slots(
            count,
            unstarted=math.ceil(now / self.width),
            restart_at=math.ceil((now + lead) / self.width),
            now=now,
        )

    def _sleep_until(self, moment: float) -> None:
        delay = moment - self._now()
        if delay > 0:
            self._sleep(delay)


# --------------------------------------------------------------------------
# The worker's side: one page
# --------------------------------------------------------------------------


def run_page(
    page: Page,
    settings: Settings,
    bot: BotApi,
    *,
    redelivered: bool = False,
    remaining_seconds: Callable[[], float] | None = None,
    clock: SendClock | None = None,
    now: float | None = None,
) -> None:
    """Send a broadcast's audience from ``page`` on, page after page while the Lambda has time.

    Each page is marked done (conditionally, once) before the next starts,
    so a crash anywhere leaves the broadcast at the page to do again; when
    time runs out the rest goes back on the queue as one message.
    """
    now = time.time() if now is None else now
    broadcast = get(page.broadcast_id)
    if broadcast is None or broadcast.status in (BroadcastStatus.DONE, BroadcastStatus.CANCELLED):
        return
    if broadcast.status == BroadcastStatus.QUEUED:
        broadcast = _start(broadcast, now)
        if broadcast.status != BroadcastStatus.SENDING:
            return
    done_pages = int(broadcast.page)
    if done_pages > page.number:
        # Done before. A redelivery is of an invocation that died later on: carry on where the broadcast is.
        if redelivered or page.continuation:
            cursor = json.loads(broadcast.cursor) if broadcast.cursor else None
            enqueue(Page(broadcast.broadcast_id, done_pages, cursor, continuation=True), settings)
        return
    if done_pages < page.number:
        logger.warning("broadcast page ahead of its broadcast", extra={"broadcast_id": page.broadcast_id})
        return

    clock = clock or SendClock(settings.broadcast_rate_per_second)
    token = uuid.uuid4().hex  # this run's: which page advances are its own
    with _Sender(broadcast, settings, bot, clock, remaining_seconds) as sender:
        # Pages in order; the next one is read and queued for sending while this one is sent,
        # so the send clock never waits for a Scan. A page is marked done only after all of its
        # chunks, and after the pages before it.
        ahead: list[tuple[int, dict[str, Any] | None, dict[str, Any] | None, list[Future[None]]]] = []
        number, cursor, more = page.number, page.cursor, True
        while True:
            while more and len(ahead) < PAGES_AHEAD:
                users, next_cursor = queries.audience_page(broadcast.audience, cursor, page_size=PAGE_SIZE, now=now)
                ahead.append((number, cursor, next_cursor, sender.submit(users)))
                more = next_cursor is not None
                if more:
                    number, cursor = number + 1, next_cursor
            if not ahead:
                return
            done_number, done_cursor, after, futures = ahead.pop(0)
            for future in futures:
                future.result()  # an unexpected error propagates: the message is delivered again
            if sender.cancelled:
                return
            if sender.out_of_time:
                enqueue(Page(broadcast.broadcast_id, done_number, done_cursor, continuation=True), settings)
                return
            if not _advance(broadcast, done_number, after, token) or after is None:
                return  # the last page, or another delivery of this one moved on first
            if remaining_seconds is not None and remaining_seconds() < 2 * DEADLINE_MARGIN_SECONDS:
                sender.stop_early()  # the next page goes back to the queue


def _start(broadcast: Broadcast, now: float) -> Broadcast:
    """queued -> sending, with the audience's size as ``total``."""
    started = records.start_broadcast(
        broadcast.broadcast_id, total=queries.audience_size(broadcast.audience, now=now), now=now
    )
    return started or get(broadcast.broadcast_id) or broadcast


def _advance(broadcast: Broadcast, number: int, next_cursor: dict[str, Any] | None, token: str) -> bool:
    """Page ``number`` is done: record it (once, by this run's ``token``) and, after the last page, the broadcast."""
    final_total = None
    if not next_cursor:
        # The audience may have changed since it was counted: the final total is who was reached or tried.
        final = get(broadcast.broadcast_id)
        final_total = None if final is None else int(final.sent) + int(final.failed) + int(final.blocked)
    return records.advance_broadcast(
        broadcast.broadcast_id, number, next_cursor, final_total=final_total, token=token, now=time.time()
    )


class _Sender:
    """Sends users' messages in chunks: one transaction claims a chunk, one booking takes its slots,
    its messages go out from the send pool at their slots, one transaction records their outcomes.
    A few chunks are in flight at once, so the clock's slots never wait for the bookkeeping.
    """

    def __init__(
        self,
        broadcast: Broadcast,
        settings: Settings,
        bot: BotApi,
        clock: SendClock,
        remaining_seconds: Callable[[], float] | None,
    ) -> None:
        self._args = (broadcast, settings, bot, clock)
        self._remaining = remaining_seconds
        self._stop = threading.Event()
        self.cancelled = False
        self.out_of_time = False
        self._send_pool = ThreadPoolExecutor(SENDERS, thread_name_prefix="broadcast-send")
        self._chunk_pool = ThreadPoolExecutor(CHUNKS_IN_FLIGHT, thread_name_prefix="broadcast-chunk")

    def __enter__(self) -> _Sender:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()  # on an error: start no new chunk
        self._chunk_pool.shutdown(wait=True)  # chunks first: they submit to the send pool
        self._send_pool.shutdown(wait=True)

    def stop_early(self) -> None:
        """Start no new chunk: the page under way is handed back to the queue."""
        self.out_of_time = True
        self._stop.set()

    def submit(self, users: list[User]) -> list[Future[None]]:
        return [
            self._chunk_pool.submit(self._one_chunk, users[start : start + CHUNK])
            for start in range(0, len(users), CHUNK)
        ]

    def _one_chunk(self, chunk: list[User]) -> None:
        if self._stop.is_set():
            return
        if self._remaining is not None and self._remaining() < DEADLINE_MARGIN_SECONDS:
            self.stop_early()
            return
        broadcast, settings, bot, clock = self._args
        try:
            deliver_chunk(broadcast, chunk, settings, bot, clock, self._send_pool)
        except BroadcastStopped:
            self.cancelled = True
            self._stop.set()
        except BaseException:
            self._stop.set()
            raise


def deliver_chunk(
    broadcast: Broadcast,
    chunk: list[User],
    settings: Settings,
    bot: BotApi,
    clock: SendClock,
    send_pool: ThreadPoolExecutor,
) -> dict[int, BroadcastOutcome]:
    """Claim, send, record: a few users' messages. Users another delivery had claimed are left out."""
    claimed = guards.claim_broadcast_deliveries(broadcast.broadcast_id, [int(user.user_id) for user in chunk])
    mine = [user for user in chunk if int(user.user_id) in claimed]
    if not mine:
        return {}
    starts = clock.book(len(mine))
    futures = {
        int(user.user_id): send_pool.submit(
            _send, bot, clock, int(user.user_id), text_for(broadcast, user, settings), start
        )
        for user, start in zip(mine, starts, strict=True)
    }
    results = {user_id: future.result() for user_id, future in futures.items()}
    guards.record_broadcast_deliveries(broadcast.broadcast_id, results)
    for result in results.values():
        count(f"BroadcastMessages{result.value.capitalize()}")
    return results


def _send(bot: BotApi, clock: SendClock, chat_id: int, text: str, start: float) -> BroadcastOutcome:
    """One message at its booked slot (or a later one); 429s are waited out on the shared clock."""
    usable = clock.wait_until_usable(start)
    for _ in range(MAX_RATE_LIMIT_RETRIES + 1):
        if not usable:
            clock.wait_for_slot()
        try:
            bot.send_message(chat_id, text)
            return BroadcastOutcome.SENT
        except TelegramError as error:
            if error.error_code == 403:
                return BroadcastOutcome.BLOCKED
            if error.error_code == 429 and error.retry_after:
                clock.pause(error.retry_after)
                usable = False
                continue
            # 400 (chat gone), 5xx, a timeout: the message may or may not have arrived; never send twice.
            logger.info("broadcast message failed", extra={"error_code": error.error_code})
            return BroadcastOutcome.FAILED
    return BroadcastOutcome.FAILED
