"""The browser session cookie: its name, and the Set-Cookie values that set and clear it.

With ``cookie_secure`` (the default) the cookie is ``__Host-doorward_session``: the prefix makes the
browser refuse it unless it is Secure, has ``Path=/`` and no Domain, so no sibling host or plain-HTTP
page can plant or shadow it. Browsers accept Secure cookies from http://localhost and http://127.0.0.1
(secure contexts), so this works in development too. With ``cookie_secure`` off the cookie is plain
``doorward_session`` without Secure: only for development over plain HTTP on another host name.
"""

from __future__ import annotations

SECURE_COOKIE = "__Host-doorward_session"
DEVELOPMENT_COOKIE = "doorward_session"


def cookie_name(secure: bool) -> str:
    """The session cookie's name for this ``cookie_secure`` setting."""
    return SECURE_COOKIE if secure else DEVELOPMENT_COOKIE


def _attributes(secure: bool) -> str:
    # No Max-Age: a browser-session cookie. The server enforces the session's own expiry either way.
    return "Path=/; Secure; HttpOnly; SameSite=Lax" if secure else "Path=/; HttpOnly; SameSite=Lax"


def session_cookie(token: str, *, secure: bool) -> str:
    """The Set-Cookie value that hands ``token`` to the browser (and never to a page's script)."""
    return f"{cookie_name(secure)}={token}; {_attributes(secure)}"


def cleared_cookie(*, secure: bool) -> str:
    """The Set-Cookie value that makes the browser forget the session cookie."""
    return f"{cookie_name(secure)}=; Max-Age=0; {_attributes(secure)}"
