"""What NanoGen tells people: pictures and failures to users, alerts to the operator.

Users are told in their language: the one stored on the generation when it
was ordered (no read), else the user's (one read: generations from before
languages, or the sweeper's, whose index does not carry it).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from chalicelib import guards, queries
from chalicelib.buttons import result_keyboard
from chalicelib.choices import choices_of
from chalicelib.config import Settings
from chalicelib.errors import TelegramError
from chalicelib.i18n import t
from chalicelib.observability import count, logger
from chalicelib.providers.base import GeneratedImage
from chalicelib.tables import Generation
from chalicelib.telegram import CAPTION_LIMIT, BotApi, photo_refused, truncate

# What the user can do after each failure (``failure-reason-*`` -> ``failure-next-*``): every
# reply says what to do next (CONTRACT §7).
FAILURE_NEXT_STEPS = {
    "failure-reason-timeout": "failure-next-later",
    "failure-reason-timeout-drawing": "failure-next-later",
    "failure-reason-rejected": "failure-next-rephrase",
    "failure-reason-unavailable": "failure-next-later",
    "failure-reason-failed": "failure-next-retry",
    "failure-reason-retries": "failure-next-later",
}
ALERT_WINDOW_SECONDS = 900
ALERTS_PER_WINDOW = 3  # per kind: an outage sends a few messages, not thousands
_PERMANENT_DELIVERY_CODES = {400, 403}  # bad chat, bot blocked by the user: retrying will not help


class DeliveryDeferred(Exception):
    """Telegram asked us to wait or was unreachable: try the delivery again later (SQS redelivery).

    ``retry_after`` is Telegram's own wait (seconds) when it gave one.
    """

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


def language_of(generation: Generation, settings: Settings) -> str:
    """The language to tell this generation's user in."""
    if generation.language:
        return str(generation.language)
    return choices_of(queries.get_user(int(generation.user_id)), settings).language


def deliver_pictures(
    bot: BotApi,
    generation: Generation,
    images: list[GeneratedImage],
    settings: Settings,
    *,
    accepted: Callable[[int], None] | None = None,
) -> bool:
    """Send the pictures to the user's chat: as photos, or as documents when a photo is refused.

    Pictures whose index is in ``generation.delivered_pictures`` were accepted
    by Telegram in an earlier attempt and are not sent again; ``accepted`` is
    called with each index Telegram accepts now, before the next picture is sent.

    Returns True when delivery is over (sent, or impossible for good: logged
    and counted, never refunded, since the picture stays in the history);
    raises ``DeliveryDeferred`` when a later retry may succeed.
    """
    caption = truncate(generation.prompt, CAPTION_LIMIT)
    chat_id = int(generation.chat_id)
    # Again / edit / original, under each picture.
    buttons = result_keyboard(language_of(generation, settings), generation.generation_id)
    already = {int(index) for index in generation.delivered_pictures or ()}
    sent_now = 0
    for index, image in enumerate(images):
        if index in already:
            continue
        filename = f"nanogen-{generation.generation_id}-{index}.{image.extension}"
        try:
            try:
                sent = bot.send_photo(chat_id, image.data, filename=filename, caption=caption, reply_markup=buttons)
            except TelegramError as error:
                if not photo_refused(error):
                    raise
                logger.info("photo refused; sending as a document", extra={"description": error.description})
                sent = bot.send_document(chat_id, image.data, filename=filename, caption=caption, reply_markup=buttons)
        except TelegramError as error:
            if error.error_code in _PERMANENT_DELIVERY_CODES:
                logger.warning("picture cannot be delivered", extra={"error_code": error.error_code})
                count("DeliveryFailures")
                return True
            count("DeliveryDeferred")
            raise DeliveryDeferred(str(error), retry_after=error.retry_after) from None
        sent_now += 1
        # First, so a reply to it edits it even when recording the progress finds the lease gone.
        _remember_picture(generation, index, image, sent)
        if accepted is not None:
            accepted(index)
    count("PicturesDelivered", sent_now)
    return True


def _remember_picture(generation: Generation, index: int, image: GeneratedImage, sent: object) -> None:
    """So that a reply to this message edits the stored picture (CONTRACT §7)."""
    message_id = sent.get("message_id") if isinstance(sent, dict) else None
    if type(message_id) is not int:
        return
    from chalicelib import photos, results

    user_id = int(generation.user_id)
    key = results.result_key(user_id, generation.generation_id, index, image.extension)
    photos.remember_picture(int(generation.chat_id), message_id, user_id, key)


def timeout_reason(*, started: bool) -> str:
    """The ``failure-reason-*`` of a generation that ran out of time: still queued, or already being drawn."""
    return "failure-reason-timeout-drawing" if started else "failure-reason-timeout"


def tell_user_it_failed(bot: BotApi, generation: Generation, reason_id: str, settings: Settings) -> None:
    """Say why (``reason_id``: a ``failure-reason-*`` message), that the credits are back, and what to do now.

    A failure to say so is only logged.
    """
    lang = language_of(generation, settings)
    next_step = t(lang, FAILURE_NEXT_STEPS.get(reason_id, "failure-next-retry"))
    text = t(lang, "generation-failed", reason=t(lang, reason_id), cost=int(generation.cost), next=next_step)
    try:
        bot.send_message(int(generation.chat_id), text)
    except TelegramError as error:
        logger.warning("could not tell the user about a failure", extra={"error_code": error.error_code})
        count("DeliveryFailures")


def alert_operator(bot: BotApi, settings: Settings, kind: str, text: str, *, now: float | None = None) -> bool:
    """Tell the operator, at most ALERTS_PER_WINDOW times per kind per window. Returns True if sent.

    Never raises: it is called while something else has gone wrong.
    """
    logger.error("operator alert", extra={"alert_kind": kind, "alert": text})
    count("OperatorAlerts")
    if not settings.alert_chat_id:
        return False
    now = time.time() if now is None else now
    try:
        allowed = guards.count_alert(kind, window_seconds=ALERT_WINDOW_SECONDS, limit=ALERTS_PER_WINDOW, now=now)
    except Exception:
        # The throttle is unreadable (DynamoDB failing): the alert is in the log above, and
        # sending unthrottled could flood the chat (and the bot's send quota) in an outage.
        logger.warning("operator alert throttle unavailable; alert only logged", exc_info=True)
        return False
    if not allowed:
        return False  # enough said this window
    try:
        bot.send_message(settings.alert_chat_id, f"NanoGen alert ({kind}): {text}")
    except TelegramError as error:
        logger.warning("could not send an operator alert", extra={"error_code": error.error_code})
        return False
    return True
