"""What the core needs from storage, as Protocols: storage implements them, tests fake them."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol

from doorward.core.models import NewUser, Session, User


class Users(Protocol):
    """Accounts."""

    async def by_canonical_email(self, email_canonical: str) -> User | None:
        """The account with this canonical email, if any."""

    async def add(self, new: NewUser, now: datetime) -> User:
        """Create an account; raise EmailTaken if the canonical email exists."""

    async def add_many(self, rows: Sequence[NewUser], now: datetime) -> int:
        """Create several accounts; raise EmailTaken (and add none) if any email exists."""

    async def replace_password_hash(self, user_id: int, old: str, new: str, now: datetime) -> bool:
        """Compare-and-set: replace the hash only if it is still ``old`` (no lost concurrent change)."""

    async def set_disabled(self, user_id: int, disabled: bool, now: datetime) -> None:
        """Disable or re-enable an account."""


class Sessions(Protocol):
    """Sessions, found by the digest of their token."""

    async def add(self, session: Session, token_digest: bytes) -> None:
        """Store a new session under its token's digest."""

    async def find(self, token_digest: bytes) -> tuple[Session, User] | None:
        """The session with this token digest and its user, in one lookup."""

    async def touch(self, session_id: str, now: datetime) -> None:
        """Record that the session was used at ``now``."""

    async def delete(self, token_digest: bytes) -> bool:
        """End the session with this token digest; False if there was none."""

    async def delete_for_user(self, user_id: int) -> int:
        """End every session of a user; return how many ended."""


class Transaction(Protocol):
    """One database transaction: everything done through it commits together or not at all."""

    @property
    def users(self) -> Users:
        """The accounts, inside this transaction."""

    @property
    def sessions(self) -> Sessions:
        """The sessions, inside this transaction."""


class Store(Protocol):
    """Opens transactions. ``write`` ones take the write lock up front (SQLite: BEGIN IMMEDIATE)."""

    def read(self) -> AbstractAsyncContextManager[Transaction]:
        """Reads; each statement may see its own snapshot (SQL: autocommit), so no read-modify-write."""

    def write(self) -> AbstractAsyncContextManager[Transaction]:
        """A transaction that writes; it commits on normal exit and rolls back on an exception."""
