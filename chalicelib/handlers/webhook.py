"""POST /api/telegram/webhook: check it is Telegram, act on each update exactly once.

Telegram re-sends an update until it gets a 2xx (for up to 24 h), and can
deliver the same update twice at once. Before the bot acts, the update is
claimed with one conditional put on ``ProcessedUpdate`` (the guards table):

* a new update is claimed as ``processing``, handled, then marked ``done``
  for 48 h, longer than Telegram's retry window: later deliveries answer
  200 and do nothing;
* if handling raises, the claim is deleted and the error answers 500, so
  Telegram's next delivery can succeed;
* a delivery that finds the update ``processing`` answers 503 with
  ``Retry-After``: a 200 would lose the update if the first delivery failed;
* a claim past its ``expires_at`` belongs to a handler that died (a Lambda
  timeout) and may be taken over; so may a ``done`` record past its TTL
  that DynamoDB has not deleted yet (Telegram reuses update ids after a
  week without updates).

Updates the bot ignores (bots, channel posts, edits, ...) are answered 200
without any write. The bot never calls the image provider: a prompt only
charges and queues a job, so a delivery takes well under a second.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from chalice.app import Request, Response
from pynamodb.exceptions import DeleteError, DoesNotExist, PutError, UpdateError

from chalicelib import bot
from chalicelib.config import Settings
from chalicelib.errors import InvalidRequest, Unauthorized, UpdateInProgress
from chalicelib.observability import logger
from chalicelib.runtime import ready
from chalicelib.tables import ProcessedUpdate
from chalicelib.telegram import get_bot_api
from chalicelib.validation import parse_json_object

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name, not a secret
# Longer than the API Lambda's timeout (15 s, .chalice/config.json), so a live
# handler is never overtaken; short enough that Telegram's backoff (up to one
# to two minutes) soon retries the update of a handler that died.
CLAIM_SECONDS = 60
# Telegram stops re-sending after 24 h; keep the record well past that.
DONE_SECONDS = 48 * 3600
RETRY_AFTER_SECONDS = 5
# An update carries at most a 4096-character text plus entities and a quoted
# message; 1 MiB leaves room and still bounds the parse.
MAX_UPDATE_BYTES = 1 << 20
MAX_UPDATE_ID = 2**53

_PROCESSING, _DONE = "processing", "done"


class ClaimOutcome(StrEnum):
    CLAIMED = "claimed"  # this delivery acts on the update
    DONE = "done"  # an earlier delivery acted on it
    BUSY = "busy"  # another delivery is acting on it right now


@dataclass(frozen=True)
class Claim:
    """A ``processing`` claim; ``expires_at`` identifies it (a take-over always sets a later one)."""

    pk: str
    expires_at: int


def handle(request: Request) -> Response | dict[str, Any]:
    """Authenticate, parse, claim, let the bot act; 200 once acted on (now or before)."""
    settings = ready()
    check_secret(request.headers, settings)
    update = parse_update(request.raw_body)
    update_id: int = update["update_id"]
    action = bot.plan(update)
    if action is None:
        logger.info("telegram update ignored", extra={"update_id": update_id})
        return {"ok": True}
    outcome, claim = claim_update(update_id)
    if outcome == ClaimOutcome.DONE:
        logger.info("telegram update already handled", extra={"update_id": update_id})
        return {"ok": True}
    if outcome == ClaimOutcome.BUSY or claim is None:
        logger.info("telegram update in progress elsewhere", extra={"update_id": update_id})
        raise UpdateInProgress(retry_after=RETRY_AFTER_SECONDS)
    try:
        action.run(get_bot_api(), settings)
    except Exception:
        release_claim(claim)
        raise
    mark_done(claim)
    logger.info("telegram update handled", extra={"update_id": update_id, "kind": action.kind})
    return {"ok": True}


def check_secret(headers: Mapping[str, str], settings: Settings) -> None:
    """401 unless the header equals TELEGRAM_WEBHOOK_SECRET (none configured: refuse everyone)."""
    expected = settings.telegram_webhook_secret
    given = headers.get(SECRET_HEADER)
    if (
        expected is None
        or given is None
        or not hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode())
    ):
        raise Unauthorized(f"Missing or wrong {SECRET_HEADER}.")


def parse_update(raw_body: bytes | str | None) -> dict[str, Any]:
    """A JSON object with an integer ``update_id``; anything else is a 400 and changes nothing."""
    update = parse_json_object(raw_body, max_bytes=MAX_UPDATE_BYTES)
    update_id = update.get("update_id")
    if type(update_id) is not int or not 0 <= update_id <= MAX_UPDATE_ID:
        raise InvalidRequest("update_id must be a non-negative integer.")
    return update


# --------------------------------------------------------------------------
# The claim: one ProcessedUpdate item per update_id
# --------------------------------------------------------------------------


def claim_update(update_id: int) -> tuple[ClaimOutcome, Claim | None]:
    key = ProcessedUpdate.key(update_id)
    for _ in range(3):  # the record can vanish between our put and our read (released, expired)
        now = int(time.time())
        record = ProcessedUpdate(pk=key, state=_PROCESSING, expires_at=now + CLAIM_SECONDS)
        try:
            record.save(condition=ProcessedUpdate.pk.does_not_exist() | (ProcessedUpdate.expires_at < now))
            return ClaimOutcome.CLAIMED, Claim(pk=key, expires_at=now + CLAIM_SECONDS)
        except PutError as error:
            if error.cause_response_code != "ConditionalCheckFailedException":
                raise
        try:
            current = ProcessedUpdate.get(key, consistent_read=True)
        except DoesNotExist:
            continue
        return (ClaimOutcome.DONE if current.state == _DONE else ClaimOutcome.BUSY), None
    return ClaimOutcome.BUSY, None


def _still_ours(claim: Claim) -> Any:
    return (ProcessedUpdate.state == _PROCESSING) & (ProcessedUpdate.expires_at == claim.expires_at)


def mark_done(claim: Claim) -> None:
    """processing -> done.

    A failure here is logged, not raised: the bot has acted, and a 5xx would
    make Telegram re-send an update whose claim then expires and lets it act twice.
    """
    try:
        ProcessedUpdate(pk=claim.pk).update(
            actions=[ProcessedUpdate.state.set(_DONE), ProcessedUpdate.expires_at.set(int(time.time()) + DONE_SECONDS)],
            condition=_still_ours(claim),
        )
    except UpdateError as error:
        if error.cause_response_code == "ConditionalCheckFailedException":
            logger.warning("telegram update claim was taken over before it was marked done", extra={"pk": claim.pk})
        else:
            logger.exception("telegram update could not be marked done", extra={"pk": claim.pk})
    except Exception:
        logger.exception("telegram update could not be marked done", extra={"pk": claim.pk})


def release_claim(claim: Claim) -> None:
    """Delete our claim after a failure so the re-sent update can be handled; never masks the failure."""
    try:
        ProcessedUpdate(pk=claim.pk).delete(condition=_still_ours(claim))
    except DeleteError as error:
        if error.cause_response_code != "ConditionalCheckFailedException":
            logger.exception("telegram update claim could not be released", extra={"pk": claim.pk})
    except Exception:
        logger.exception("telegram update claim could not be released", extra={"pk": claim.pk})
