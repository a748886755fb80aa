"""/openapi.json as the server answers: FastAPI's document, completed with two things FastAPI cannot
know of doorward.

- No 422: FastAPI documents one for every operation with a parameter or a body, but errors.py answers
  its validation errors with the envelope's 400 ``invalid_request``. That 400 is documented instead,
  where something can fail validation: a body, or a parameter that is not a bare string in the path.
- A 413 on every operation with a JSON body: web/body.py refuses one over DOORWARD_MAX_BODY_BYTES
  before parsing it, whatever the endpoint.
- A 403 ``csrf`` on every change (POST, PATCH, DELETE) that the session cookie may authenticate:
  web/security.py refuses one from another origin or without X-CSRF-Token, whatever the endpoint.

All else an operation answers (its 401, 429, 503...) is declared with its route; the session's
carriers are security schemes of ``routes.signed_in``, so every route that needs a session names them.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from doorward.web.routes import CROSS_SITE
from doorward.web.schemas import SESSION_COOKIE_SCHEME

_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")

_JSON = "application/json; charset=utf-8"
_CHANGES = frozenset({"post", "put", "patch", "delete"})


TOO_LARGE = "payload_too_large: the body is over DOORWARD_MAX_BODY_BYTES"


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()``, and so /openapi.json, the completed document (built once)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = completed(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend it


def completed(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with 400s for FastAPI's 422s, a 413 wherever a body is read, a 403 wherever the
    cookie may make a change."""
    for item in document.get("paths", {}).values():
        for method, operation in item.items():
            responses = operation["responses"]
            if responses.pop("422", None) is not None and _can_fail_validation(operation):
                responses.setdefault("400", _error("invalid_request: a parameter or the body is malformed"))
            if "requestBody" in operation:
                responses.setdefault("413", _error(TOO_LARGE))
            if method in _CHANGES and {SESSION_COOKIE_SCHEME: []} in operation.get("security", []):
                responses.setdefault("403", _error(CROSS_SITE[403]["description"]))
    schemas = document.get("components", {}).get("schemas", {})
    for name in _VALIDATION_SCHEMAS:
        if f"#/components/schemas/{name}" not in str(document["paths"]):
            schemas.pop(name, None)
    return document


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {_JSON: {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
    }


def _can_fail_validation(operation: dict[str, Any]) -> bool:
    if "requestBody" in operation:
        return True
    return any(
        parameter["in"] != "path"
        or parameter["schema"].get("type") != "string"
        or bool(parameter["schema"].keys() - {"type", "title", "description"})
        for parameter in operation.get("parameters", [])
    )
