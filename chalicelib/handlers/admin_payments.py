"""POST /api/admin/payments/{charge_id}/refund: give a user's Stars back and take the credits.

The credits are taken first (``money.take_back_purchase``: 409 when they were
already spent or the payment was already refunded), and only then are the
Stars returned, so a user can never end up with both. When Telegram refuses,
the credits are restored and nothing has changed.
"""

from __future__ import annotations

from typing import Any

from chalice.app import Request

from chalicelib import money, queries
from chalicelib.auth import authenticate_admin
from chalicelib.errors import Conflict, NotFound, TelegramError
from chalicelib.observability import count, logger
from chalicelib.runtime import ready
from chalicelib.telegram import get_bot_api
from chalicelib.validation import CHARGE_ID_RE
from chalicelib.views import payment_view, user_view

# Telegram's charge ids are short ASCII tokens; anything else names no payment.

# Telegram's answer when the Stars were already returned (say, by a refund whose
# answer we never received): the credits we just took stay taken.
_ALREADY_REFUNDED = "CHARGE_ALREADY_REFUNDED"


def refund(request: Request, charge_id: str) -> dict[str, Any]:
    admin = authenticate_admin(request.headers, ready())
    if not CHARGE_ID_RE.fullmatch(charge_id):
        raise NotFound("No such payment.")
    payment = money.take_back_purchase(charge_id)
    user_id = int(payment.user_id)
    try:
        get_bot_api().refund_star_payment(user_id, charge_id)
    except TelegramError as error:
        if _outcome_unknown(error):
            # Telegram may have returned the Stars: keep the credits taken; a retry finishes the job.
            logger.warning("Stars refund unconfirmed; credits stay taken", extra={"charge_id": charge_id})
            raise Conflict(
                f"Telegram did not answer ({error.description}). The credits stay removed; "
                "call this again to complete the refund."
            ) from None
        if _ALREADY_REFUNDED not in error.description.upper():
            money.restore_purchase(charge_id)
            logger.warning("Stars refund refused; credits restored", extra={"charge_id": charge_id})
            raise Conflict(f"Telegram refused the refund: {error.description}. The credits were restored.") from None
        logger.info("Stars were already refunded; credits stay taken", extra={"charge_id": charge_id})
    money.confirm_purchase_refund(charge_id)
    logger.info("payment refunded", extra={"charge_id": charge_id, "admin": admin.via, "target_user_id": user_id})
    count("PaymentsRefunded")
    refunded = queries.get_payment(charge_id) or payment
    user = queries.get_user(user_id)
    if user is None:  # pragma: no cover - a user is never deleted
        raise NotFound("No such user.")
    return {"payment": payment_view(refunded), "user": user_view(user)}


def _outcome_unknown(error: TelegramError) -> bool:
    """No answer, a server error or throttling: the refund may or may not have happened."""
    return error.error_code is None or error.error_code >= 500 or error.error_code == 429
