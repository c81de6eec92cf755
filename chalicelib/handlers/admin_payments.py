"""POST /api/admin/payments/{charge_id}/refund: give a user's Stars back and take the credits.

The sequence (credits first, then Telegram, restored on a refusal) is the
use case ``chalicelib.usecases.purchases.refund_stars_purchase``.
"""

from __future__ import annotations

from typing import Any

from chalice.app import Request

from chalicelib import bootstrap
from chalicelib.auth import authenticate_admin
from chalicelib.errors import NotFound
from chalicelib.runtime import ready
from chalicelib.usecases.purchases import refund_stars_purchase
from chalicelib.validation import CHARGE_ID_RE
from chalicelib.views import payment_view, user_view


def refund(request: Request, charge_id: str) -> dict[str, Any]:
    settings = ready()
    admin = authenticate_admin(request.headers, settings)
    # Telegram's charge ids are short ASCII tokens; anything else names no payment.
    if not CHARGE_ID_RE.fullmatch(charge_id):
        raise NotFound("No such payment.")
    payment, user = refund_stars_purchase(bootstrap.bot_api(), settings, charge_id, by=admin.via)
    return {"payment": payment_view(payment), "user": user_view(user, settings)}
