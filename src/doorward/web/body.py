"""Reading JSON bodies: size-limited before parsing, and every malformation the endpoint's own 400."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from fastapi import Request
from pydantic import BaseModel, ValidationError

from doorward.core.errors import DoorwardError
from doorward.web.errors import PayloadTooLarge
from doorward.web.services import services_of

M = TypeVar("M", bound=BaseModel)


def json_body(model: type[M], invalid: type[DoorwardError]) -> Callable[[Request], Awaitable[M]]:
    """A dependency that parses the body into ``model`` or raises ``invalid``.

    Bad JSON, a wrong Content-Type, a non-object, a missing field, a wrong type, NUL or a lone
    surrogate: all become ``invalid`` (for /login, the seed's "Email and password required").
    """

    async def parse(request: Request) -> M:
        _check_declared_size(request)  # a too-large body is 413 whatever else is wrong with it
        kind = media_type(request)
        if kind != "application/json" and not kind.endswith("+json"):
            raise invalid()
        body = await read_limited(request)
        try:
            return model.model_validate_json(body)
        except ValidationError as exc:
            raise invalid() from exc

    return parse


def media_type(request: Request) -> str:
    """The request's Content-Type without its parameters, lower-case ("" without one)."""
    return request.headers.get("content-type", "").partition(";")[0].strip().lower()


def parse_form(body: bytes) -> dict[str, str]:
    """The fields of an urlencoded body (the first value of each wins); ValueError past 64 fields."""
    pairs = parse_qsl(body.decode("latin-1"), keep_blank_values=True, max_num_fields=64, errors="replace")
    fields: dict[str, str] = {}
    for key, value in pairs:
        fields.setdefault(key, value)
    return fields


def _check_declared_size(request: Request) -> None:
    limit = services_of(request).settings.max_body_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge()


async def read_limited(request: Request) -> bytes:
    """The whole body, refused with PayloadTooLarge as soon as it is known to pass the limit:
    from Content-Length before reading, or while reading a body sent without one."""
    _check_declared_size(request)
    limit = services_of(request).settings.max_body_bytes
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge()
    return bytes(body)


def documented_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` that documents the body ``json_body`` reads by hand."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }
