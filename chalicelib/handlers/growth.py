"""Growth routes: credit packs and Mini App invoices, promo codes, referrals, broadcasts (CONTRACT §5)."""

from __future__ import annotations

from typing import Any

from chalice.app import Request, Response

from chalicelib import bootstrap, broadcasts, catalogue, money, queries, records
from chalicelib.choices import choices_of
from chalicelib.errors import NotFound, UserBanned
from chalicelib.handlers.admin import _admin, _who
from chalicelib.handlers.api import _caller
from chalicelib.http import json_response
from chalicelib.observability import count, logger
from chalicelib.runtime import ready
from chalicelib.tables import PromoCode
from chalicelib.usecases.purchases import invoice_texts
from chalicelib.validation import (
    parse_broadcast,
    parse_json_object,
    parse_pack_id,
    parse_promo_code,
    parse_promo_code_creation,
    parse_promo_redemption,
)


def promo_view(promo: PromoCode) -> dict[str, Any]:
    return {
        "code": promo.code,
        "credits": int(promo.credits),
        "max_uses": int(promo.max_uses),
        "uses": int(promo.uses),
        "expires_at": promo.expires_at,
    }


# --- Mini App ---------------------------------------------------------------


def list_packs() -> dict[str, Any]:
    return {"packs": [pack.to_public() for pack in catalogue.PACKS]}


def create_invoice(request: Request) -> dict[str, Any]:
    """A Stars invoice link for ``Telegram.WebApp.openInvoice``; paid, it is credited like ``/buy``'s."""
    profile = _caller(request)
    settings = ready()
    pack = catalogue.pack_by_id(parse_pack_id(parse_json_object(request.raw_body)))
    assert pack is not None  # parse_pack_id checked it
    user = money.get_or_register(profile, settings)
    if user.banned:
        raise UserBanned()
    # In the buyer's language, as /buy's invoices are.
    language = choices_of(user, settings, language_code=profile.language_code).language
    title, description = invoice_texts(pack, language)
    link = bootstrap.bot_api().create_invoice_link(
        title=title,
        description=description,
        payload=pack.payload_for(profile.user_id),
        amount_stars=pack.stars,
        label=title,
    )
    return {"invoice_link": link}


def redeem_promo(request: Request) -> dict[str, Any]:
    profile = _caller(request)
    code = parse_promo_redemption(parse_json_object(request.raw_body))
    if code is None:
        raise NotFound("No such promo code, or it has expired.")
    redeemed = money.redeem_promo_code(profile, code, ready())
    count("PromoRedemptions")
    count("CreditsGranted", redeemed.granted)
    return {"granted": redeemed.granted, "credits": redeemed.credits}


# --- Admin: promo codes -------------------------------------------------------


def create_promo_code(request: Request) -> Response:
    admin = _admin(request)
    wanted = parse_promo_code_creation(parse_json_object(request.raw_body))
    promo = records.create_promo_code(
        wanted.code,
        credits=wanted.credits,
        max_uses=wanted.max_uses,
        expires_at=wanted.expires_at,
        created_by=_who(admin),
    )
    logger.info("admin created a promo code", extra={"admin": _who(admin), "code": promo.code})
    return json_response(promo_view(promo), 201)


def get_promo_code(request: Request, code: str) -> dict[str, Any]:
    _admin(request)
    wanted = parse_promo_code(code)
    promo = queries.get_promo_code(wanted) if wanted is not None else None
    if promo is None:
        raise NotFound("No such promo code.")
    return promo_view(promo)


# --- Admin: broadcasts --------------------------------------------------------


def create_broadcast(request: Request) -> Response:
    admin = _admin(request)
    wanted = parse_broadcast(parse_json_object(request.raw_body))
    broadcast = broadcasts.create(wanted, ready(), created_by=_who(admin))
    logger.info(
        "admin created a broadcast",
        extra={"admin": _who(admin), "broadcast_id": broadcast.broadcast_id, "audience": broadcast.audience},
    )
    return json_response(broadcasts.view(broadcast), 202)


def get_broadcast(request: Request, broadcast_id: str) -> dict[str, Any]:
    _admin(request)
    broadcast = broadcasts.get(broadcast_id) if queries.is_generation_id(broadcast_id) else None
    if broadcast is None:
        raise NotFound("No such broadcast.")
    return broadcasts.view(broadcast)


def cancel_broadcast(request: Request, broadcast_id: str) -> dict[str, Any]:
    admin = _admin(request)
    if not queries.is_generation_id(broadcast_id):
        raise NotFound("No such broadcast.")
    broadcast = broadcasts.cancel(broadcast_id)
    logger.info("admin cancelled a broadcast", extra={"admin": _who(admin), "broadcast_id": broadcast_id})
    return broadcasts.view(broadcast)
