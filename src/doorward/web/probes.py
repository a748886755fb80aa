"""The probes a load balancer and an orchestrator ask: /healthz, /readyz and /livez.

``/healthz`` keeps the seed's meaning, widened to every store a login needs: 200 while the database
answers and is migrated, (when configured) Redis answers and the hashing processes answer, else
503 naming what failed.
``/readyz`` names each check, migrations at head among them; ``/livez`` touches no store. One list
of checks (``CHECKS``) feeds the first two: a new check joins it, not the routes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request

from doorward.storage import ping, schema_current, schema_revision
from doorward.web.responses import Envelope
from doorward.web.schemas import HealthOut, ReadyOut
from doorward.web.services import services_of
from doorward.wiring import Services

router = APIRouter(default_response_class=Envelope)


@dataclass(frozen=True)
class Check:
    """One question a probe asks. ``name`` keys /readyz's ``checks``; ``failure`` is the 503's error
    when it fails. ``applies`` says whether these services have what it asks about (Redis is
    optional); ``healthz`` whether /healthz asks it too (/readyz asks every check)."""

    name: str
    failure: str
    run: Callable[[Services], Awaitable[bool]]
    applies: Callable[[Services], bool] = lambda _services: True
    healthz: bool = True


async def _hashing(services: Services) -> bool:
    return await services.pool.reachable()  # serve --workers N's hashing processes: cheap, no hash


async def _database(services: Services) -> bool:
    return await ping(services.engine, services.settings.db_timeout)


async def _redis(services: Services) -> bool:
    return services.redis is not None and await services.redis.ping(services.settings.db_timeout)


async def _migrations(services: Services) -> bool:
    return schema_current(await schema_revision(services.engine, services.settings.db_timeout))


CHECKS: tuple[Check, ...] = (
    Check("hashing", "Hashing processes unavailable", _hashing),
    Check("database", "Database unavailable", _database),
    Check("redis", "Redis unavailable", _redis, applies=lambda services: services.redis is not None),
    Check("migrations", "Migrations not at head (run doorward migrate)", _migrations, healthz=False),
)
"""Every check, in the order /readyz lists them and a 503's error names them."""


async def run_checks(services: Services, *, healthz: bool) -> dict[Check, bool]:
    """The checks that apply, asked at once (a probe waits for the slowest, not for their sum)."""
    checks = [c for c in CHECKS if c.applies(services) and (c.healthz or not healthz)]
    results = await asyncio.gather(*(check.run(services) for check in checks))
    return dict(zip(checks, results, strict=True))


def unavailable(body: dict[str, Any], results: dict[Check, bool]) -> Envelope:
    """The 503 of a probe: ``body``, then the envelope's fields; the error names what failed."""
    failed = "; ".join(check.failure for check, ok in results.items() if not ok)
    return Envelope({**body, "success": False, "error": failed, "code": "unavailable"}, status_code=503)


def _documented(model: type, ok: str, failure: str | None = None) -> dict[str, Any]:
    responses: dict[int | str, dict[str, Any]] = {200: {"model": model, "description": ok}}
    if failure is not None:
        responses[503] = {"model": model, "description": failure}
    return {"response_model": None, "responses": responses}


_HEALTH = _documented(
    HealthOut, "Healthy", "The database, Redis (when configured) or the hashing processes do not answer"
)
_READY = _documented(ReadyOut, "Ready: every check passed", "A check failed: checks names it")
_LIVE = _documented(HealthOut, "The process is alive")


# Two routes per probe, not api_route(methods=[...]): FastAPI would give both methods one operation id.
@router.head("/healthz", summary="The status of GET /healthz, without its body", **_HEALTH)
@router.get("/healthz", summary="Is the service up and every store a login needs reachable", **_HEALTH)
async def healthz(request: Request) -> Envelope:
    results = await run_checks(services_of(request), healthz=True)
    if all(results.values()):
        return Envelope({"status": "ok"})
    return unavailable({"status": "unavailable"}, results)


@router.head("/readyz", summary="The status of GET /readyz, without its body", **_READY)
@router.get("/readyz", summary="Are the stores reachable and the migrations at head", **_READY)
async def readyz(request: Request) -> Envelope:
    results = await run_checks(services_of(request), healthz=False)
    checks = {check.name: "ok" if ok else "failed" for check, ok in results.items()}
    if all(results.values()):
        return Envelope({"status": "ok", "checks": checks})
    return unavailable({"status": "unavailable", "checks": checks}, results)


@router.head("/livez", summary="The status of GET /livez, without its body", **_LIVE)
@router.get("/livez", summary="Is the process alive (no store is asked)", **_LIVE)
async def livez() -> Envelope:
    return Envelope({"status": "ok"})
