"""Rows to models, and the session lookup query: shared by the repositories and the fast lookup."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select

from doorward.core.models import Session, User
from doorward.storage.tables import sessions, users, utc

# Built once: a statement built per call costs more CPU (construction and cache-key generation)
# than the database spends answering it.
FIND_SESSION = (
    select(*(c.label(f"s_{c.name}") for c in sessions.c if c.name != "token_digest"), *users.c)
    .join_from(sessions, users, sessions.c.user_id == users.c.id)
    .where(sessions.c.token_digest == bindparam("digest"))
)


def _utc(value: datetime | str) -> datetime:
    moment = utc(value)
    assert moment is not None
    return moment


def user_of(row: Mapping[Any, Any]) -> User:
    """The User in a row holding the ``users`` columns under their own names."""
    return User(
        id=row["id"],
        email=row["email"],
        email_canonical=row["email_canonical"],
        password_hash=row["password_hash"],
        disabled=bool(row["disabled"]),
        created_at=_utc(row["created_at"]),
        updated_at=_utc(row["updated_at"]),
        email_verified_at=utc(row["email_verified_at"]),
        mfa_enabled=bool(row["mfa_enabled"]),
        breach_checked_at=utc(row["breach_checked_at"]),
        password_compromised_at=utc(row["password_compromised_at"]),
    )


def session_and_user(row: Mapping[Any, Any]) -> tuple[Session, User]:
    """The Session and User in a row of ``FIND_SESSION``."""
    session = Session(
        id=row["s_id"],
        user_id=row["s_user_id"],
        created_at=_utc(row["s_created_at"]),
        last_seen_at=_utc(row["s_last_seen_at"]),
        expires_at=_utc(row["s_expires_at"]),
        client_address=row["s_client_address"],
        user_agent=row["s_user_agent"],
        aal=row["s_aal"],
        amr=tuple(row["s_amr"].split()),
    )
    return session, user_of(row)


def session_of(row: Mapping[Any, Any]) -> Session:
    """The Session in a row holding the ``sessions`` columns (but the digest) under their own names."""
    return Session(
        id=row["id"],
        user_id=row["user_id"],
        created_at=_utc(row["created_at"]),
        last_seen_at=_utc(row["last_seen_at"]),
        expires_at=_utc(row["expires_at"]),
        client_address=row["client_address"],
        user_agent=row["user_agent"],
        aal=row["aal"],
        amr=tuple(row["amr"].split()),
    )
