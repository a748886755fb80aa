"""How a token and a client travel in HTTP: bearer header, socket address, user agent."""

from __future__ import annotations

from fastapi import Request

from doorward.core.models import Client

MAX_USER_AGENT = 512


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if one was sent."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def client_of(request: Request) -> Client:
    """The client as seen from the socket. X-Forwarded-For is not trusted."""
    user_agent = request.headers.get("user-agent") or None
    return Client(
        address=request.client.host if request.client else None,
        user_agent=user_agent[:MAX_USER_AGENT] if user_agent else None,
    )
