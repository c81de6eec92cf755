"""The Mini App's REST API: parse, authenticate, call one use case, shape the answer."""

from __future__ import annotations

from typing import Any

from chalice.app import Request, Response

from chalicelib import catalogue, money, queries, records, uploads
from chalicelib.auth import InitData, authenticate_user
from chalicelib.choices import choices_of
from chalicelib.errors import NotFound
from chalicelib.http import json_response
from chalicelib.model import Profile
from chalicelib.observability import count, logger
from chalicelib.runtime import ready
from chalicelib.tables import Generation
from chalicelib.usecases.generation import order_generation
from chalicelib.validation import (
    parse_generation_request,
    parse_idempotency_key,
    parse_json_object,
    parse_limit,
    parse_settings_change,
)
from chalicelib.views import generation_view, user_ledger_view, user_view


def _profile(init_data: InitData) -> Profile:
    user = init_data.user
    return Profile(
        user_id=user.id,
        first_name=user.first_name,
        last_name=user.last_name,
        username=user.username,
        language_code=user.language_code,
    )


def _caller(request: Request) -> Profile:
    settings = ready()
    profile = _profile(authenticate_user(request.headers, settings))
    logger.append_keys(user_id=profile.user_id)
    return profile


def list_models() -> dict[str, Any]:
    return {"models": [model.to_public() for model in catalogue.models(ready())]}


def me(request: Request) -> dict[str, Any]:
    profile = _caller(request)
    settings = ready()
    return _me_view(money.get_or_register(profile, settings), settings)


def change_settings(request: Request) -> dict[str, Any]:
    """PUT /api/user/settings: any of language, model, aspect ratio; 200 the user as /me shows it."""
    profile = _caller(request)
    settings = ready()
    body = parse_json_object(request.raw_body)
    user = money.get_or_register(profile, settings)
    change = parse_settings_change(body, settings, saved_model=user.model, saved_aspect_ratio=user.aspect_ratio)
    saved = records.save_settings(
        profile.user_id, language=change.language, model=change.model, aspect_ratio=change.aspect_ratio
    )
    return _me_view(saved, settings)


def ledger(request: Request) -> dict[str, Any]:
    """GET /api/user/ledger: the caller's balance changes, newest first."""
    profile = _caller(request)
    params: dict[str, str] = dict(request.query_params or {})
    limit = parse_limit(params.get("limit"))
    items, next_cursor = queries.ledger_page(profile.user_id, limit=limit, cursor=params.get("cursor"))
    return {"items": [user_ledger_view(entry) for entry in items], "next_cursor": next_cursor}


def _me_view(user: Any, settings: Any) -> dict[str, Any]:
    """The caller as /me shows it: the user, their settings and their referral figures."""
    from chalicelib import referrals

    return {**user_view(user, settings), "referral": referrals.summary(user, settings)}


def create_generation(request: Request) -> Response:
    profile = _caller(request)
    settings = ready()
    body = parse_json_object(request.raw_body)
    key = parse_idempotency_key(request.headers.get("idempotency-key"))
    # The saved settings fill what the body leaves out; the language goes on the generation.
    choices = choices_of(queries.get_user(profile.user_id), settings, language_code=profile.language_code)
    wanted = parse_generation_request(
        body, settings, saved_model=choices.model.id, saved_aspect_ratio=choices.aspect_ratio
    )
    # A replay answers what the first request got, without checking its uploads again
    # (their records expire after a day; the generation keeps its pictures).
    result = money.replay_of(profile.user_id, key, wanted.order(), source="api") if key is not None else None
    if result is None:
        uploads.check_uploads(profile.user_id, wanted.upload_ids, settings)
        result = order_generation(
            profile,
            wanted.order(),
            settings,
            chat_id=profile.user_id,
            source="api",
            idempotency_key=key,
            language=choices.language,
        )
    generation = result.generation
    logger.append_keys(generation_id=generation.generation_id)
    body_out = {"generation": generation_view(generation, settings), "credits": result.credits}
    return json_response(body_out, 200 if result.replayed else 202)


def create_upload(request: Request) -> Response:
    profile = _caller(request)
    settings = ready()
    wanted = uploads.parse_upload_request(parse_json_object(request.raw_body), settings)
    return json_response(uploads.create_upload(profile.user_id, wanted, settings), 201)


def list_generations(request: Request) -> dict[str, Any]:
    profile = _caller(request)
    params: dict[str, str] = dict(request.query_params or {})
    limit = parse_limit(params.get("limit"))
    cursor = params.get("cursor")
    items, next_cursor = queries.history_page(profile.user_id, limit=limit, cursor=cursor)
    settings = ready()
    return {"items": [generation_view(item, settings) for item in items], "next_cursor": next_cursor}


def get_generation(request: Request, generation_id: str) -> dict[str, Any]:
    profile = _caller(request)
    generation = _own_generation(profile.user_id, generation_id)
    return generation_view(generation, ready())


def cancel_generation(request: Request, generation_id: str) -> dict[str, Any]:
    profile = _caller(request)
    if not queries.is_generation_id(generation_id):
        raise NotFound("No such generation.")
    generation = money.cancel_generation(profile.user_id, generation_id)
    count("GenerationsCancelled")
    count("GenerationsRefunded")
    count("CreditsRefunded", int(generation.cost))
    return generation_view(generation, ready())


def _own_generation(user_id: int, generation_id: str) -> Generation:
    # Keyed by (user_id, generation_id): another user's generation is simply not found.
    generation = queries.get_generation(user_id, generation_id) if queries.is_generation_id(generation_id) else None
    if generation is None:
        raise NotFound("No such generation.")
    return generation
