"""POST /api/telegram/webhook: check it is Telegram, act on each update exactly once.

Telegram re-sends an update until it gets a 2xx (for up to 24 h), and can
deliver the same update twice at once. Before the bot acts, the update is
claimed with one conditional put on ``ProcessedUpdate`` (``chalicelib.guards``):

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

Updates the bot ignores (bots, channel posts, group chatter, ...) are answered 200
without any write. The bot never calls the image provider: a prompt only
charges and queues a job, so a delivery takes well under a second.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from chalice.app import Request, Response

from chalicelib import bootstrap, bot, guards, records
from chalicelib.config import Settings
from chalicelib.errors import InvalidRequest, Unauthorized, UpdateInProgress
from chalicelib.model import UpdateClaimOutcome
from chalicelib.observability import logger
from chalicelib.runtime import ready
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
    outcome, claim = guards.claim_update(update_id, claim_seconds=CLAIM_SECONDS)
    if outcome == UpdateClaimOutcome.DONE:
        logger.info("telegram update already handled", extra={"update_id": update_id})
        return {"ok": True}
    if outcome == UpdateClaimOutcome.BUSY or claim is None:
        logger.info("telegram update in progress elsewhere", extra={"update_id": update_id})
        raise UpdateInProgress(retry_after=RETRY_AFTER_SECONDS)
    try:
        action.run(bootstrap.bot_api(), settings)
    except Exception:
        guards.release_update(claim)
        raise
    guards.mark_update_done(claim, keep_seconds=DONE_SECONDS)
    _note_activity(update)
    logger.info("telegram update handled", extra={"update_id": update_id, "kind": action.kind})
    return {"ok": True}


def _note_activity(update: Mapping[str, Any]) -> None:
    """A user who writes (or edits what they wrote) is active and, if a broadcast found them blocked, no
    longer blocked."""
    written = update.get("message", update.get("edited_message"))
    sender = written.get("from") if isinstance(written, dict) else None
    user_id = sender.get("id") if isinstance(sender, dict) else None
    if type(user_id) is not int:
        return
    try:
        records.note_activity(user_id)
    except Exception:  # never fail an update that was handled
        logger.exception("could not record the user's activity")


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
