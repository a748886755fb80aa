"""``GET /metrics`` on the main port: the Prometheus text format, for DOORWARD_METRICS_TOKEN's bearer.

Without the token it is not served here (404, as any unknown path): DOORWARD_METRICS_ADDRESS serves
it on an address of its own instead (doorward/metrics/scrape.py, ``AddressServer``), without a token.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac

from fastapi import APIRouter, Request
from starlette.responses import Response

from doorward.metrics import CONTENT_TYPE
from doorward.web.errors import MetricsTokenInvalid, NotFound
from doorward.web.schemas import ErrorOut
from doorward.web.services import services_of

router = APIRouter()


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


@router.get(
    "/metrics",
    tags=["operations"],
    summary="Counters, gauges and histograms in the Prometheus text format",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE.split(";")[0]: {}}, "description": "Every worker's figures"},
        401: {"model": ErrorOut, "description": "Not DOORWARD_METRICS_TOKEN as the bearer token"},
        404: {"model": ErrorOut, "description": "DOORWARD_METRICS_TOKEN is unset: not served here"},
    },
)
async def metrics(request: Request) -> Response:
    """The scrape, for ``Authorization: Bearer <DOORWARD_METRICS_TOKEN>``; digests compared in constant
    time, so the comparison's time says nothing of the token."""
    services = services_of(request)
    token = services.settings.metrics_token
    if token is None or services.metrics is None:
        raise NotFound()
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        given = ""
    if not hmac.compare_digest(_digest(given.strip()), _digest(token.get_secret_value())):
        raise MetricsTokenInvalid()
    services.metrics.flush()  # this worker's last second too (on the loop, where they are kept)
    body = await asyncio.to_thread(services.metrics.scrape)  # reads every worker's files
    return Response(body, media_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"})
