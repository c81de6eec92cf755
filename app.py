"""NanoGen: the Chalice app. Routes and event handlers only.

Each handler reads its event, calls one function of ``chalicelib.handlers``
and returns what it gives. Every Lambda of the stack loads this file, so the
handler modules are imported inside the functions that need them: the API
does not pay for the worker's imports at cold start, nor the other way round.
"""

from __future__ import annotations

from typing import Any

from chalice import Chalice, Rate
from chalice.app import Request

from chalicelib.http import JsonApi

# Logging is Powertools' (chalicelib.observability), on the same "nanogen" logger.
app = Chalice(app_name="nanogen", configure_logs=False)
api = JsonApi(app)

# Queue names as Chalice knows them; the deployment template points the event
# sources at the stack's own queues (see infra/).
GENERATION_QUEUE = "nanogen-generations"
DEAD_LETTER_QUEUE = "nanogen-generations-dlq"
BROADCAST_QUEUE = "nanogen-broadcasts"


def _request() -> Request:
    request = app.current_request
    assert request is not None  # always set while Chalice runs a route
    return request


# --- Mini App API -----------------------------------------------------------


@api.route("/api/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@api.route("/api/generation/models")
def list_models() -> Any:
    from chalicelib.handlers import api as handlers

    return handlers.list_models()


@api.route("/api/user/me")
def me() -> Any:
    from chalicelib.handlers import api as handlers

    return handlers.me(_request())


@api.route("/api/user/settings", methods=("PUT",))
def change_settings() -> Any:
    from chalicelib.handlers import api as handlers

    return handlers.change_settings(_request())


@api.route("/api/user/ledger")
def user_ledger() -> Any:
    from chalicelib.handlers import api as handlers

    return handlers.ledger(_request())


@api.route("/api/generation", methods=("POST",))
def create_generation() -> Any:
    from chalicelib.handlers import api as handlers

    return handlers.create_generation(_request())


@api.route("/api/generation")
def list_generations() -> Any:
    from chalicelib.handlers import api as handlers

    return handlers.list_generations(_request())


@api.route("/api/generation/{generation_id}")
def get_generation(generation_id: str) -> Any:
    from chalicelib.handlers import api as handlers

    return handlers.get_generation(_request(), generation_id)


@api.route("/api/generation/{generation_id}/cancel", methods=("POST",))
def cancel_generation(generation_id: str) -> Any:
    from chalicelib.handlers import api as handlers

    return handlers.cancel_generation(_request(), generation_id)


@api.route("/api/uploads", methods=("POST",))
def create_upload() -> Any:
    from chalicelib.handlers import api as handlers

    return handlers.create_upload(_request())


@api.route("/api/packs")
def list_packs() -> Any:
    from chalicelib.handlers import growth

    return growth.list_packs()


@api.route("/api/payments/invoice", methods=("POST",))
def create_invoice() -> Any:
    from chalicelib.handlers import growth

    return growth.create_invoice(_request())


@api.route("/api/promo/redeem", methods=("POST",))
def redeem_promo() -> Any:
    from chalicelib.handlers import growth

    return growth.redeem_promo(_request())


# --- Admin API --------------------------------------------------------------


@api.route("/api/admin/users/{user_id}")
def admin_user(user_id: str) -> Any:
    from chalicelib.handlers import admin

    return admin.user_detail(_request(), user_id)


@api.route("/api/admin/users/{user_id}/credits", methods=("POST",))
def admin_credits(user_id: str) -> Any:
    from chalicelib.handlers import admin

    return admin.change_credits(_request(), user_id)


@api.route("/api/admin/users/{user_id}/ban", methods=("POST",))
def admin_ban(user_id: str) -> Any:
    from chalicelib.handlers import admin

    return admin.set_banned(_request(), user_id, banned=True)


@api.route("/api/admin/users/{user_id}/unban", methods=("POST",))
def admin_unban(user_id: str) -> Any:
    from chalicelib.handlers import admin

    return admin.set_banned(_request(), user_id, banned=False)


@api.route("/api/admin/stats")
def admin_stats() -> Any:
    from chalicelib.handlers import admin

    return admin.stats(_request())


@api.route("/api/admin/payments/{charge_id}/refund", methods=("POST",))
def admin_refund_payment(charge_id: str) -> Any:
    from chalicelib.handlers import admin_payments

    return admin_payments.refund(_request(), charge_id)


@api.route("/api/admin/promo-codes", methods=("POST",))
def admin_create_promo_code() -> Any:
    from chalicelib.handlers import growth

    return growth.create_promo_code(_request())


@api.route("/api/admin/promo-codes/{code}")
def admin_promo_code(code: str) -> Any:
    from chalicelib.handlers import growth

    return growth.get_promo_code(_request(), code)


@api.route("/api/admin/broadcasts", methods=("POST",))
def admin_create_broadcast() -> Any:
    from chalicelib.handlers import growth

    return growth.create_broadcast(_request())


@api.route("/api/admin/broadcasts/{broadcast_id}")
def admin_broadcast(broadcast_id: str) -> Any:
    from chalicelib.handlers import growth

    return growth.get_broadcast(_request(), broadcast_id)


@api.route("/api/admin/broadcasts/{broadcast_id}/cancel", methods=("POST",))
def admin_cancel_broadcast(broadcast_id: str) -> Any:
    from chalicelib.handlers import growth

    return growth.cancel_broadcast(_request(), broadcast_id)


# --- Telegram ---------------------------------------------------------------


@api.route("/api/telegram/webhook", methods=("POST",))
def telegram_webhook() -> Any:
    from chalicelib.handlers import webhook

    return webhook.handle(_request())


# --- Background work --------------------------------------------------------


@app.on_sqs_message(queue=GENERATION_QUEUE, batch_size=10, maximum_batching_window_in_seconds=1)
def generation_worker(event: Any) -> Any:
    from chalicelib.handlers import worker

    return worker.process_batch(event.to_dict(), event.context)


@app.on_sqs_message(queue=DEAD_LETTER_QUEUE, batch_size=10)
def dead_letter_worker(event: Any) -> Any:
    from chalicelib.handlers import worker

    return worker.process_dead_letters(event.to_dict(), event.context)


@app.on_sqs_message(queue=BROADCAST_QUEUE, batch_size=1)
def broadcast_worker(event: Any) -> None:
    from chalicelib.handlers import broadcast_worker as handlers

    handlers.process(event.to_dict(), event.context)


@app.schedule(Rate(1, unit=Rate.MINUTES))
def sweeper(event: Any) -> dict[str, Any]:
    from chalicelib.handlers import sweeper as handlers

    return handlers.sweep(event.context)
