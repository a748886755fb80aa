"""How a token and a client travel in HTTP: bearer header or session cookie, socket address, user agent."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from fastapi import Request
from fastapi.security import APIKeyCookie, HTTPBearer

from doorward.core.models import Client
from doorward.web.cookies import SECURE_COOKIE, cookie_name
from doorward.web.schemas import SESSION_COOKIE_SCHEME, SESSION_TOKEN_SCHEME
from doorward.web.services import services_of

MAX_USER_AGENT = 512
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SESSION_TOKEN = HTTPBearer(
    auto_error=False,
    scheme_name=SESSION_TOKEN_SCHEME,
    description="The sessionToken of a login, as Authorization: Bearer <token>",
)
"""/openapi.json's name for the bearer header (its Authorize button); routes.signed_in depends on it
and on ``SESSION_COOKIE`` for that alone: neither ever refuses a request (auto_error=False), and
``session_token`` reads the token itself."""

SESSION_COOKIE = APIKeyCookie(
    name=SECURE_COOKIE,
    auto_error=False,
    scheme_name=SESSION_COOKIE_SCHEME,
    description="The pages' session cookie (doorward_session under DOORWARD_COOKIE_SECURE=false); a "
    "change made with it also needs the X-CSRF-Token header (403 csrf without it)",
)


def session_token(request: Request) -> str | None:
    """The session token a request carries: the bearer header first, then the browser's session cookie."""
    return bearer_token(request) or cookie_token(request)


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if one was sent."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def cookie_token(request: Request) -> str | None:
    """The token of the session cookie (see ``web.cookies``), if the browser sent one."""
    return request.cookies.get(cookie_name(services_of(request).settings.cookie_secure)) or None


def client_of(request: Request, trusted: Sequence[IPNetwork] = ()) -> Client:
    """The client: the socket's peer, unless that peer is a trusted proxy (ASVS 4.1.3).

    Behind trusted proxies the address is the right-most X-Forwarded-For entry that is not itself
    a trusted proxy: everything left of it was written by the client and proves nothing.
    """
    user_agent = _utf8(request.headers.get("user-agent") or "") or None
    return Client(
        address=client_address(request, trusted),
        user_agent=user_agent[:MAX_USER_AGENT] if user_agent else None,
    )


def _utf8(value: str) -> str:
    """A header value as its sender meant it: Starlette decodes the bytes as Latin-1, but browsers and
    clients send UTF-8 (an "é" would be stored as "Ã©"). Bytes that are not UTF-8 stay Latin-1."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


def client_address(request: Request, trusted: Sequence[IPNetwork] = ()) -> str | None:
    """See ``client_of``."""
    peer = request.client.host if request.client else None
    if peer is None or not trusted or not _within(peer, trusted):
        return peer
    hops = [hop.strip() for hop in request.headers.get("x-forwarded-for", "").split(",")]
    for hop in reversed(hops):
        if not hop:
            break
        if not _within(hop, trusted):
            return hop if _is_address(hop) else peer
    return peer


def _is_address(text: str) -> bool:
    # A zone index ("fe80::1%eth0") means nothing beyond the proxy's own link, and has no length
    # limit: the client columns hold 64 characters.
    if "%" in text:
        return False
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _within(address: str, networks: Sequence[IPNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)
