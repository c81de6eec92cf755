"""``openapi.yaml`` describes exactly the API that ``app.py`` serves.

The document is for front-end developers; these tests keep it honest: every
route of the Chalice app is in it and nothing else, the documented shapes
are the ones ``chalicelib.views`` produces, and it is valid OpenAPI 3.0.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from chalicelib import catalogue, errors, views
from chalicelib.config import load_settings
from chalicelib.tables import Generation, LedgerEntry, User

SPEC_PATH = Path(__file__).resolve().parents[2] / "openapi.yaml"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
# Routes anyone may call; every other one must declare its security.
OPEN_ROUTES = {("/api/health", "get"), ("/api/generation/models", "get"), ("/api/packs", "get")}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    document = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (path, method): operation
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }


def resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follow local ``$ref``s until a real object."""
    while "$ref" in node:
        reference = node["$ref"]
        assert reference.startswith("#/"), reference
        target: Any = spec
        for part in reference[2:].split("/"):
            target = target[part]
        node = target
    return node


def schema(spec: dict[str, Any], name: str) -> dict[str, Any]:
    return resolve(spec, spec["components"]["schemas"][name])


def test_is_valid_openapi_3_0(spec: dict[str, Any]) -> None:
    assert re.fullmatch(r"3\.0\.\d+", spec["openapi"])
    import openapi_spec_validator

    openapi_spec_validator.validate(spec, cls=openapi_spec_validator.OpenAPIV30SpecValidator)


def test_documents_every_route_of_the_app_and_nothing_else(spec: dict[str, Any]) -> None:
    from app import app

    served = {(path, method.lower()) for path, methods in app.routes.items() for method in methods}
    assert served, "app.py has no routes?"
    documented = set(operations(spec))
    assert served - documented == set(), "undocumented routes"
    assert documented - served == set(), "documented routes that app.py does not serve"


def test_path_parameters_match_the_route_templates(spec: dict[str, Any]) -> None:
    for (path, method), operation in operations(spec).items():
        in_template = set(re.findall(r"{(\w+)}", path))
        declared = {
            parameter["name"]
            for parameter in (resolve(spec, p) for p in operation.get("parameters", []))
            if parameter["in"] == "path"
        }
        assert declared == in_template, f"{method.upper()} {path}"


def test_every_route_documents_its_errors_and_retry_after(spec: dict[str, Any]) -> None:
    schemes = set(spec["components"]["securitySchemes"])
    for (path, method), operation in operations(spec).items():
        where = f"{method.upper()} {path}"
        responses = operation["responses"]
        assert "500" in responses, where
        assert any(code.startswith("2") for code in responses), where
        for code, response in responses.items():
            body = resolve(spec, response)
            assert body.get("description"), f"{where} {code}"
            if code[0] in "45":
                content_schema = body["content"]["application/json"]["schema"]
                assert content_schema == {"$ref": "#/components/schemas/Error"}, f"{where} {code}"
            if code in ("429", "503"):
                assert "Retry-After" in body.get("headers", {}), f"{where} {code}"
        security = operation.get("security")
        if (path, method) in OPEN_ROUTES:
            assert security == [], where
            continue
        assert security, f"{where} declares no security"
        assert {name for requirement in security for name in requirement} <= schemes, where
        assert "401" in responses, where
        if path.startswith("/api/admin/"):
            assert {"adminToken", "tma"} == {name for requirement in security for name in requirement}, where
            assert "403" in responses, where


def test_security_schemes_are_the_tma_header_and_the_admin_bearer_token(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    assert schemes["tma"] == {**schemes["tma"], "type": "apiKey", "in": "header", "name": "Authorization"}
    assert schemes["adminToken"] == {**schemes["adminToken"], "type": "http", "scheme": "bearer"}


def _generation(status: str) -> Generation:
    return Generation(
        user_id=1,
        generation_id="01JD6YJ8Q4W5ZK3M2N7P9R0S1T",
        status=status,
        prompt="a cat",
        model=catalogue.DEFAULT_MODEL_ID,
        aspect_ratio="1:1",
        image_urls=[],
        cost=1,
        result_keys=[],
        error="boom" if status == "failed" else None,
        created_at="2026-01-01T00:00:00.000Z",
        updated_at="2026-01-01T00:00:00.000Z",
        timeout_at=0,
        chat_id=1,
    )


def _documented(spec: dict[str, Any], name: str, *, optional: frozenset[str] = frozenset()) -> set[str]:
    properties = schema(spec, name)
    assert properties.get("additionalProperties") is False, f"{name} should list every field"
    always = set(properties["properties"]) - optional
    assert set(properties["required"]) == always, f"{name}: every field but {set(optional)} is always present"
    return set(properties["properties"])


def test_generation_schema_has_exactly_the_fields_of_generation_view(spec: dict[str, Any]) -> None:
    settings = load_settings()
    for status in ("pending", "failed"):  # no S3 call: only completed ones are presigned
        produced = set(views.generation_view(_generation(status), settings))
        assert _documented(spec, "Generation") == produced
    statuses = schema(spec, "GenerationStatus")["enum"]
    from chalicelib.model import GenerationStatus

    assert statuses == [status.value for status in GenerationStatus]


def test_user_and_ledger_schemas_have_exactly_the_fields_of_the_views(spec: dict[str, Any]) -> None:
    from chalicelib.model import LedgerReason

    user = User(user_id=1, first_name="A", credits=1, active_generations=0, banned=False, created_at="", updated_at="")
    assert _documented(spec, "User") == set(views.user_view(user, load_settings()))
    entry = LedgerEntry(user_id=1, entry_id="x", delta=1, reason="welcome", created_at="")
    assert _documented(spec, "LedgerEntry") == set(views.ledger_view(entry))
    full = LedgerEntry(
        user_id=1, entry_id="x", delta=1, reason="purchase", created_at="", generation_id="g", payment_charge_id="c"
    )
    optional = frozenset({"generation_id", "charge_id"})  # CONTRACT §5: present when they apply
    assert _documented(spec, "UserLedgerEntry", optional=optional) == set(views.user_ledger_view(full))
    assert set(views.user_ledger_view(entry)) == {"id", "delta", "reason", "created_at"}
    assert schema(spec, "UserLedgerEntry")["properties"]["reason"]["enum"] == [reason.value for reason in LedgerReason]
    assert schema(spec, "LedgerEntry")["properties"]["reason"]["enum"] == [reason.value for reason in LedgerReason]


def test_growth_schemas_have_exactly_the_fields_of_their_views(spec: dict[str, Any]) -> None:
    from chalicelib import broadcasts, referrals
    from chalicelib.handlers.growth import promo_view
    from chalicelib.tables import Broadcast, PromoCode

    user = User(user_id=1, first_name="A", credits=1, active_generations=0, banned=False, created_at="", updated_at="")
    settings = load_settings({"BOT_USERNAME": "SomeBot"})
    assert _documented(spec, "Me") == set(views.user_view(user, settings)) | {"referral"}
    assert _documented(spec, "Referral") == set(referrals.summary(user, settings))
    assert _documented(spec, "Pack") == set(catalogue.PACKS[0].to_public())
    promo = PromoCode(pk="promo#X", code="X", credits=1, max_uses=1, uses=0, created_at="")
    assert _documented(spec, "PromoCode") == set(promo_view(promo))
    broadcast = Broadcast(pk="b", broadcast_id="b", status="queued", audience="all", created_at="", updated_at="")
    assert _documented(spec, "Broadcast") == set(broadcasts.view(broadcast))
    assert schema(spec, "Broadcast")["properties"]["status"]["enum"] == [s.value for s in broadcasts.BroadcastStatus]


def test_model_schema_has_exactly_the_fields_of_the_catalogue(spec: dict[str, Any]) -> None:
    model = catalogue.models(load_settings())[0]
    assert _documented(spec, "Model") == set(model.to_public())


def test_error_codes_are_every_code_the_api_raises(spec: dict[str, Any]) -> None:
    raised = {
        cls.code
        for cls in vars(errors).values()
        if inspect.isclass(cls) and issubclass(cls, errors.ApiError) and cls is not errors.ApiError
    }
    documented = set(schema(spec, "ErrorCode")["enum"])
    assert raised <= documented
    # Besides the ApiErrors, only the webhook's "retry shortly" answer.
    assert documented - raised <= {"update_in_progress"}
