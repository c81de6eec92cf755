"""The operator's API: look up, credit, debit, ban and count."""

from __future__ import annotations

from typing import Any

from chalice.app import Request

from chalicelib import money, queries, records
from chalicelib.auth import Admin, authenticate_admin
from chalicelib.errors import NotFound
from chalicelib.observability import logger
from chalicelib.runtime import ready
from chalicelib.validation import (
    credit_change_fingerprint,
    parse_admin_credit_change,
    parse_idempotency_key,
    parse_json_object,
    parse_user_id,
)
from chalicelib.views import ledger_view, user_view


def _admin(request: Request) -> Admin:
    # Who acted goes into each log line's ``extra``, not into the logger's
    # persistent keys: those outlive the request in a warm Lambda, and
    # chalicelib.http clears only the keys it knows about.
    return authenticate_admin(request.headers, ready())


def _who(admin: Admin) -> str:
    """The operator, as written in ledger notes and logs: ``admin:token`` or ``admin:init_data:<id>``."""
    return f"admin:{admin.via}" + (f":{admin.user_id}" if admin.user_id else "")


def user_detail(request: Request, user_id: str) -> dict[str, Any]:
    _admin(request)
    user = queries.get_user(parse_user_id(user_id))
    if user is None:
        raise NotFound("No such user.")
    entries = queries.latest_ledger(int(user.user_id))
    return {"user": user_view(user, ready()), "ledger": [ledger_view(entry) for entry in entries]}


def change_credits(request: Request, user_id: str) -> dict[str, Any]:
    admin = _admin(request)
    target = parse_user_id(user_id)
    key = parse_idempotency_key(request.headers.get("idempotency-key"))
    amount, reason = parse_admin_credit_change(parse_json_object(request.raw_body))
    user = money.change_credits(
        target,
        amount,
        note=f"{_who(admin)}: {reason}",
        idempotency_key=key,
        fingerprint=credit_change_fingerprint(amount, reason),
    )
    logger.info("admin changed credits", extra={"admin": _who(admin), "target_user_id": target, "amount": amount})
    return user_view(user, ready())


def set_banned(request: Request, user_id: str, *, banned: bool) -> dict[str, Any]:
    admin = _admin(request)
    target = parse_user_id(user_id)
    user = records.set_banned(target, banned)
    logger.info("admin changed ban", extra={"admin": _who(admin), "target_user_id": target, "banned": banned})
    return user_view(user, ready())


def stats(request: Request) -> dict[str, Any]:
    _admin(request)
    return queries.stats()
