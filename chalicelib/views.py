"""How users, generations and ledger entries look from outside (CONTRACT §5)."""

from __future__ import annotations

from typing import Any

from chalicelib import aws
from chalicelib.choices import choices_of
from chalicelib.config import Settings
from chalicelib.model import GenerationStatus
from chalicelib.tables import Generation, LedgerEntry, Payment, User

RESULT_URL_SECONDS = 3600


def user_view(user: User, settings: Settings) -> dict[str, Any]:
    choices = choices_of(user, settings)
    return {
        "id": int(user.user_id),
        "first_name": user.first_name,
        "username": user.username,
        "credits": int(user.credits),
        "active_generations": int(user.active_generations),
        "banned": bool(user.banned),
        "language": choices.language,
        "settings": {"model": choices.model.id, "aspect_ratio": choices.aspect_ratio},
    }


def generation_view(generation: Generation, settings: Settings) -> dict[str, Any]:
    """The generation, with fresh presigned links to its stored pictures.

    Only S3 keys are stored, so history keeps working after any provider
    link has expired; presigning is local computation, not an AWS call.
    """
    result_urls: list[str] = []
    if generation.status == GenerationStatus.COMPLETED and generation.result_keys:
        s3 = aws.client("s3")
        result_urls = [
            s3.generate_presigned_url(
                "get_object",
                Params={"Bucket": settings.results_bucket, "Key": key},
                ExpiresIn=RESULT_URL_SECONDS,
            )
            for key in generation.result_keys
        ]
    return {
        "id": generation.generation_id,
        "status": generation.status,
        "prompt": generation.prompt,
        "model": generation.model,
        "aspect_ratio": generation.aspect_ratio,
        "image_urls": list(generation.image_urls or []),
        "upload_ids": list(generation.upload_ids or []),
        "cost": int(generation.cost),
        "result_urls": result_urls,
        "error": generation.error if generation.status == GenerationStatus.FAILED else None,
        "created_at": generation.created_at,
        "updated_at": generation.updated_at,
    }


def user_ledger_view(entry: LedgerEntry) -> dict[str, Any]:
    """A ledger entry as the user sees it (``GET /api/user/ledger``): no operator's note."""
    view: dict[str, Any] = {
        "id": entry.entry_id,
        "delta": int(entry.delta),
        "reason": entry.reason,
        "created_at": entry.created_at,
    }
    if entry.generation_id:
        view["generation_id"] = entry.generation_id
    if entry.payment_charge_id:
        view["charge_id"] = entry.payment_charge_id
    return view


def ledger_view(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "id": entry.entry_id,
        "delta": int(entry.delta),
        "reason": entry.reason,
        "generation_id": entry.generation_id,
        "payment_charge_id": entry.payment_charge_id,
        "note": entry.note,
        "created_at": entry.created_at,
    }


def payment_view(payment: Payment) -> dict[str, Any]:
    return {
        "charge_id": payment.charge_id,
        "user_id": int(payment.user_id),
        "pack_id": payment.pack_id,
        "credits": int(payment.credits),
        "stars": int(payment.stars),
        "status": payment.status,
        "created_at": payment.created_at,
        "updated_at": payment.updated_at,
    }
