"""The admin API's keys: made, listed and revoked from the command line, checked on every admin call.

A key is ``dwa_`` and 43 URL-safe characters (256 random bits from ``secrets``), shown once when made.
The database keeps its SHA-256 digest only, as for session tokens: with 256 bits there is nothing to
guess, so a slow salted hash (argon2) would add no protection, would cost a hash-pool slot on every
admin call (a lever for exhausting the pool), and could not be looked up by an index (its salt makes
every digest different). The prefix lets a leaked key be recognised by secret scanners and tells it
apart from a session token, which is never accepted in its place, nor it in a session's.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from doorward.core.deps import Deps
from doorward.core.errors import DoorwardError, InvalidRequest
from doorward.core.models import AdminKey, AdminScope


class AdminKeyInvalid(DoorwardError):
    """An admin API call without a usable admin key: none, malformed, unknown or revoked (the answer
    never says which), or a session token where an admin key belongs."""

    code = "invalid_admin_key"
    message = "Invalid admin key"


class AdminKeyReadOnly(DoorwardError):
    """A key of scope ``read`` on an admin call that changes something."""

    code = "admin_key_read_only"
    message = "This admin key may only read"


class AdminKeyNameTaken(DoorwardError):
    """An admin key with this name exists, or existed: a revoked key keeps its name, so the audit
    trail's key names stay unambiguous."""

    code = "admin_key_exists"
    message = "An admin key with this name exists (revoked keys keep their name)"


class AdminKeyNotFound(DoorwardError):
    """No admin key has this name."""

    code = "admin_key_not_found"
    message = "No admin key with this name"


KEY_PREFIX = "dwa_"
_KEY_SHAPE = re.compile(r"dwa_[A-Za-z0-9_-]{43}")
_NAME_SHAPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def new_admin_key() -> str:
    """A fresh key: the prefix and 256 random bits, URL-safe base64."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def looks_like_admin_key(text: str) -> bool:
    """Cheap shape check: junk (a session token among it) never costs a database round trip."""
    return _KEY_SHAPE.fullmatch(text) is not None


def admin_key_digest(key: str) -> bytes:
    """What the database stores and looks the key up by."""
    return hashlib.sha256(key.encode("ascii")).digest()


def check_key_name(name: str) -> str:
    """A key's name as given, if it is 1 to 64 letters, digits, dots, dashes or underscores (not
    starting with a punctuation mark); InvalidRequest otherwise. Names appear in audit events and
    logs, so they are kept plain."""
    if _NAME_SHAPE.fullmatch(name) is None:
        raise InvalidRequest(
            "A key name is 1 to 64 letters, digits, '.', '-' or '_', starting with a letter or digit"
        )
    return name


class AdminKeyring:
    """Every use case of the admin keys: create, list, revoke, authenticate a call, audit it."""

    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    async def create(self, name: str, scope: AdminScope) -> tuple[AdminKey, str]:
        """A new key named ``name``: the stored record and the key itself, which is never seen again.
        AdminKeyNameTaken if the name is (or was) in use."""
        key = new_admin_key()
        record = AdminKey(check_key_name(name), scope, self._deps.clock())
        async with self._deps.store.write() as tx:
            await tx.admin_keys.add(record, admin_key_digest(key))
        self._deps.audit("admin.key_created", key=record.name, scope=scope.value)
        return record, key

    async def list(self) -> list[AdminKey]:
        """Every key, revoked ones too, oldest first."""
        async with self._deps.store.read() as tx:
            return await tx.admin_keys.all()

    async def revoke(self, name: str) -> AdminKey:
        """Revoke the key named ``name`` at once, on every instance; AdminKeyNotFound without one."""
        async with self._deps.store.write() as tx:
            record = await tx.admin_keys.revoke(name, self._deps.clock())
        if record is None:
            raise AdminKeyNotFound()
        self._deps.audit("admin.key_revoked", key=record.name)
        return record

    async def identify(self, key: str | None) -> AdminKey:
        """The record of ``key`` if it is a live admin key; AdminKeyInvalid otherwise (none,
        malformed, unknown or revoked: the error never says which)."""
        if key is None or not looks_like_admin_key(key):
            raise AdminKeyInvalid()
        async with self._deps.store.read() as tx:
            record = await tx.admin_keys.by_digest(admin_key_digest(key))
        if record is None or record.revoked_at is not None:
            raise AdminKeyInvalid()
        return record

    async def admit(self, record: AdminKey, *, write: bool) -> None:
        """Count one call against the key's limit (TooManyAttempts beyond it), then check that its
        scope covers the call (``write``: it changes something), AdminKeyReadOnly if not. Counted
        first, so that refused calls count too."""
        await self._deps.throttle.admit_admin(record.name)
        if write and record.scope is not AdminScope.WRITE:
            raise AdminKeyReadOnly()

    def record_call(
        self,
        key_name: str | None,
        *,
        method: str,
        route: str,
        status: int,
        user_id: int | None = None,
        client: str | None = None,
    ) -> None:
        """The audit event of one admin API call, whatever its outcome: which key (by name, None when
        none was valid), what it asked (``route`` is the path's template, never a query string), the
        status it got, and the account it named, if any."""
        self._deps.audit(
            "admin.api_call",
            user_id=user_id,
            client=client,
            key=key_name,
            method=method,
            route=route,
            status=status,
        )
