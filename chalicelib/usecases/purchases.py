"""Selling credits for Telegram Stars: the invoices' texts, and refunding a purchase.

Refunding: take the credits back, then return the Stars.

The credits are taken first (``money.take_back_purchase``: 409 when they were
already spent or the payment was already refunded), and only then are the
Stars returned, so a user can never end up with both. When Telegram refuses,
the credits are restored and nothing has changed.

Each call is one refund *attempt* with its own id, written on the payment
when the credits are taken back. Only the attempt holding the payment calls
Telegram, restores the credits or confirms: a second refund arriving while
the first one waits for Telegram answers 409 without calling Telegram (it
would be refused, restore the credits, and leave the user with both).
"""

from __future__ import annotations

import uuid

from chalicelib import catalogue, money, queries
from chalicelib.config import Settings
from chalicelib.errors import Conflict, InternalError, NotFound, TelegramError
from chalicelib.i18n import t
from chalicelib.model import PaymentStatus
from chalicelib.observability import count, logger
from chalicelib.tables import Payment, User
from chalicelib.telegram import BotApi


def invoice_texts(pack: catalogue.CreditPack, lang: str) -> tuple[str, str]:
    """An invoice's title and description in ``lang``, for ``/buy`` and the Mini App's invoice link;
    bigger packs say how much cheaper a credit is than in the first."""
    base = catalogue.PACKS[0]
    title = t(lang, "pack-title", credits=pack.credits)
    discount = round((1 - (pack.stars / pack.credits) / (base.stars / base.credits)) * 100)
    if pack is base or discount <= 0:
        return title, t(lang, "pack-description", credits=pack.credits)
    description = t(
        lang, "pack-description-discount", credits=pack.credits, discount=discount, base_credits=base.credits
    )
    return title, description


# Telegram's answer when the Stars were already returned (say, by a refund whose
# answer we never received): the credits we just took stay taken.
_ALREADY_REFUNDED = "CHARGE_ALREADY_REFUNDED"


def refund_stars_purchase(bot: BotApi, settings: Settings, charge_id: str, *, by: str) -> tuple[Payment, User]:
    """Refund one payment; returns the payment and its user as they are afterwards.

    ``by`` names who asked, for the log line.
    """
    attempt = uuid.uuid4().hex
    payment = money.take_back_purchase(charge_id, attempt=attempt)
    user_id = int(payment.user_id)
    try:
        bot.refund_star_payment(user_id, charge_id)
    except TelegramError as error:
        if _outcome_unknown(error):
            # Telegram may have returned the Stars: keep the credits taken; a retry finishes the job.
            money.release_purchase_refund(charge_id, attempt=attempt)
            logger.warning("Stars refund unconfirmed; credits stay taken", extra={"charge_id": charge_id})
            raise Conflict(
                f"Telegram did not answer ({error.description}). The credits stay removed; "
                "call this again to complete the refund."
            ) from None
        if _ALREADY_REFUNDED not in error.description.upper():
            if not money.restore_purchase(charge_id, attempt=attempt):
                _overtaken(bot, settings, charge_id, "Telegram refused the Stars refund")
            logger.warning("Stars refund refused; credits restored", extra={"charge_id": charge_id})
            raise Conflict(f"Telegram refused the refund: {error.description}. The credits were restored.") from None
        logger.info("Stars were already refunded; credits stay taken", extra={"charge_id": charge_id})
    if not money.confirm_purchase_refund(charge_id, attempt=attempt):
        refunded = queries.get_payment(charge_id)
        if refunded is None or refunded.status != PaymentStatus.REFUNDED:  # not by the attempt that overtook us
            _overtaken(bot, settings, charge_id, "Telegram returned the Stars")
    logger.info("payment refunded", extra={"charge_id": charge_id, "admin": by, "target_user_id": user_id})
    count("PaymentsRefunded")
    refunded = queries.get_payment(charge_id) or payment
    user = queries.get_user(user_id)
    if user is None:  # pragma: no cover - a user is never deleted
        raise NotFound("No such user.")
    return refunded, user


def _overtaken(bot: BotApi, settings: Settings, charge_id: str, what: str) -> None:
    """Our attempt lost its hold on the payment while Telegram answered: never silent, the operator checks."""
    from chalicelib.notify import alert_operator

    text = f"{what} for payment {charge_id}, but another refund attempt holds the payment now; check it."
    alert_operator(bot, settings, "refund-overtaken", text)
    raise InternalError(f"{what}, but the payment changed meanwhile. The operator was alerted; do not retry.")


def _outcome_unknown(error: TelegramError) -> bool:
    """No answer, a server error or throttling: the refund may or may not have happened."""
    return error.error_code is None or error.error_code >= 500 or error.error_code == 429
