"""The security headers of every answer (CSP, HSTS, CORP and the rest), their middleware, and the CORS
allow-list: what a browser is told about each answer, apart from security.py's refusal of cross-site
requests."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from doorward.config import Settings
from doorward.web.security import CSRF_HEADER

PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
"""No inline script or style, nothing from elsewhere, never framed, forms only to doorward itself."""

BASE_HEADERS: tuple[tuple[str, str], ...] = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    # Not no-referrer: under that policy browsers send "Origin: null" with every form post, and the
    # Origin check could no longer tell our own forms from a sandboxed attacker's.
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    # No other site may embed an answer as an image, a script or a frame's resource (a no-cors load);
    # CORS calls from DOORWARD_CORS_ORIGINS are not no-cors loads, so they are unaffected.
    ("Cross-Origin-Resource-Policy", "same-origin"),
)

ANSWER_HEADERS: tuple[tuple[str, str], ...] = (*BASE_HEADERS, ("Content-Security-Policy", PAGE_CSP))
"""What ``SecurityHeaders`` gives every answer but the interactive docs'."""

RawHeaders = list[tuple[bytes, bytes]]


def _raw(headers: Iterable[tuple[str, str]]) -> RawHeaders:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]


def strict_transport(settings: Settings) -> tuple[tuple[str, str], ...]:
    """``Strict-Transport-Security`` when users reach doorward over https (ASVS 3.4.1), else nothing.

    Without preload it covers doorward's own host only: its subdomains may be other people's
    services, not all on https. The preload list demands ``includeSubDomains``, so preload adds it.
    """
    if not settings.public_url.startswith("https://"):
        return ()  # browsers ignore it over plain HTTP, and a development host must not be pinned
    value = f"max-age={int(settings.hsts_max_age.total_seconds())}"
    if settings.hsts_preload:
        value += "; includeSubDomains; preload"
    return (("Strict-Transport-Security", value),)


class AnswerHeaders:
    """The security headers of one app's answers: ``ANSWER_HEADERS`` and ``extra`` (its HSTS).

    ``add`` serves ``SecurityHeaders`` for every routed answer and web/fastpath.py for its own.
    """

    def __init__(self, extra: Iterable[tuple[str, str]] = ()) -> None:
        extra = tuple(extra)
        self._answer = _raw((*ANSWER_HEADERS, *extra))
        self._base = _raw((*BASE_HEADERS, *extra))

    @classmethod
    def of(cls, settings: Settings) -> AnswerHeaders:
        """The headers for an app with ``settings``."""
        return cls(strict_transport(settings))

    def add(self, headers: RawHeaders, *, csp: bool = True) -> None:
        """Append to a response's raw headers those it lacks (without ``csp``, all but the CSP)."""
        present = {name for name, _ in headers}
        headers.extend([item for item in (self._answer if csp else self._base) if item[0] not in present])


class SecurityHeaders:
    """Adds the headers of ``BASE_HEADERS``, the page CSP and ``headers``' extra to every response
    that lacks them.

    The interactive API docs (``/docs``, ``/redoc``, served only with DOORWARD_API_DOCS) load FastAPI's
    script from a CDN and run inline script, so they alone go without the CSP.
    """

    def __init__(
        self, app: ASGIApp, *, headers: AnswerHeaders | None = None, csp_exempt: Iterable[str] = ()
    ) -> None:
        self.app = app
        self.headers = headers or AnswerHeaders()
        self.csp_exempt = frozenset(csp_exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = scope["path"] not in self.csp_exempt

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message["headers"] = list(message["headers"])
                self.headers.add(headers, csp=csp)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def cors_options(settings: Settings) -> dict[str, Any] | None:
    """CORSMiddleware's options for the allow-list of ``settings``; None without one (no CORS).

    Bearer tokens only: no credentials, so no other site's script can ride on the cookie.
    """
    if not settings.cors_origin_list:
        return None
    return {
        "allow_origins": settings.cors_origin_list,
        "allow_methods": ["GET", "POST", "PATCH", "DELETE"],
        "allow_headers": ["Authorization", "Content-Type", CSRF_HEADER],
        "expose_headers": ["Retry-After"],
        "allow_credentials": False,
        "max_age": 600,
    }


def wrap_answers(
    app: ASGIApp, *, cors: dict[str, Any] | None, headers: AnswerHeaders, csp_exempt: Iterable[str] = ()
) -> ASGIApp:
    """``app`` wrapped as every answer is, outermost first: security headers, then CORS (only with an
    allow-list). web/fastpath.py wraps the whole routed stack in it, outside Starlette's own
    ServerErrorMiddleware, so that a bug's 500 carries them too, and each of its fast paths alike."""
    inner = app if cors is None else CORSMiddleware(app, **cors)
    return SecurityHeaders(inner, headers=headers, csp_exempt=csp_exempt)
