"""The Store the core asks for, over SQLAlchemy Core. Driver errors become core errors here, once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, or_, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from doorward.core.errors import EmailTaken, StorageUnavailable
from doorward.core.models import AccountToken, NewUser, Session, TokenPurpose, User
from doorward.storage.database import WRITE_OPTION, read_options
from doorward.storage.factors import SqlFactors
from doorward.storage.lookup import LookupBusy, SessionLookup
from doorward.storage.loopsqlite import Checkpointer
from doorward.storage.rows import FIND_SESSION, UNAVAILABLE_SQLSTATES, session_and_user, session_of, user_of
from doorward.storage.tables import account_tokens, sessions, users

# What "the database is not there" looks like from each driver. Integrity errors are not among them:
# they mean the data said no, and are translated where they can happen.
_UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeout, OSError, TimeoutError)


@contextmanager
def _translated() -> Iterator[None]:
    """The one place where "the database is not there" becomes the core's StorageUnavailable."""
    try:
        yield
    except (DBAPIError, *_UNAVAILABLE) as exc:
        if _is_unavailable(exc):
            raise StorageUnavailable() from exc
        raise


def _is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, _UNAVAILABLE):
        return True
    if isinstance(exc, DBAPIError) and not isinstance(exc, IntegrityError):
        sqlstate = str(getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None) or "")
        return exc.connection_invalidated or sqlstate.startswith(UNAVAILABLE_SQLSTATES)
    return False


# Built once, as FIND_SESSION: a statement built per call costs more CPU than answering it. These
# are the statements of every login.
_USER_BY_EMAIL = select(users).where(users.c.email_canonical == bindparam("email"))
# A no-op update: its WHERE re-checks the row and its lock orders this transaction against a
# concurrent reset or change of the same user (on SQLite, BEGIN IMMEDIATE already does).
_CONFIRM_CREDENTIALS = (
    update(users)
    .where(
        users.c.id == bindparam("user_id"),
        users.c.password_hash == bindparam("seen_hash"),
        users.c.disabled.is_(False),
    )
    .values(updated_at=users.c.updated_at)
)
_ADD_SESSION = insert(sessions)


def _open_session_statement(*, rehash: bool) -> Any:
    """A login's one write on PostgreSQL, as one statement: the credentials' check, the hash's
    upgrade (``rehash``) and the new session, which ``SqlStore.open_session`` runs as three
    statements in a transaction on SQLite.

    The UPDATE's row lock orders it against a reset, change or disable of the same user, and its
    WHERE is re-checked against the row they committed: then nothing is updated, so nothing inserted.
    """
    confirmed = _CONFIRM_CREDENTIALS
    if rehash:
        confirmed = confirmed.values(password_hash=bindparam("new_hash"), updated_at=bindparam("now"))
    cte = confirmed.returning(users.c.id).cte("confirmed")
    # Parameters named after no column: SQLAlchemy would take one named after a column of
    # ``users`` for a value to SET in the CTE's UPDATE.
    values: list[Any] = [
        cte.c.id if column.name == "user_id" else bindparam(f"session_{column.name}", type_=column.type)
        for column in sessions.c
    ]  # the user's id comes from the UPDATE: there is none to insert unless it confirmed
    return insert(sessions).from_select(list(sessions.c), select(*values))


_OPEN_SESSION = _open_session_statement(rehash=False)
_OPEN_SESSION_REHASHED = _open_session_statement(rehash=True)


def _user(row: Any) -> User:
    return user_of(row._mapping)


class SqlUsers:
    """Accounts in the ``users`` table."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def by_canonical_email(self, email_canonical: str) -> User | None:
        result = await self._conn.execute(_USER_BY_EMAIL, {"email": email_canonical})
        row = result.first()
        return _user(row) if row else None

    async def by_id(self, user_id: int) -> User | None:
        row = (await self._conn.execute(select(users).where(users.c.id == user_id))).first()
        return _user(row) if row else None

    async def add(self, new: NewUser, now: datetime) -> User:
        try:
            result = await self._conn.execute(
                insert(users).values(**_new_user_values(new, now)).returning(*users.c)
            )
        except IntegrityError as exc:
            raise EmailTaken() from exc
        return _user(result.one())

    async def add_many(self, rows: Sequence[NewUser], now: datetime) -> int:
        try:
            await self._conn.execute(insert(users), [_new_user_values(new, now) for new in rows])
        except IntegrityError as exc:
            raise EmailTaken() from exc
        return len(rows)

    async def replace_password_hash(self, user_id: int, old: str, new: str, now: datetime) -> bool:
        result = await self._conn.execute(
            update(users)
            .where(users.c.id == user_id, users.c.password_hash == old)
            .values(password_hash=new, updated_at=now)
        )
        return result.rowcount == 1

    async def confirm_credentials(self, user_id: int, seen_hash: str) -> bool:
        parameters = {"user_id": user_id, "seen_hash": seen_hash}
        return (await self._conn.execute(_CONFIRM_CREDENTIALS, parameters)).rowcount == 1

    async def set_password_hash(self, user_id: int, new: str, now: datetime) -> None:
        await self._conn.execute(
            update(users).where(users.c.id == user_id).values(password_hash=new, updated_at=now)
        )

    async def mark_verified(self, user_id: int, now: datetime) -> None:
        await self._conn.execute(
            update(users).where(users.c.id == user_id).values(email_verified_at=now, updated_at=now)
        )

    async def set_disabled(self, user_id: int, disabled: bool, now: datetime) -> None:
        await self._conn.execute(
            update(users).where(users.c.id == user_id).values(disabled=disabled, updated_at=now)
        )


def _new_user_values(new: NewUser, now: datetime) -> dict[str, Any]:
    return {
        "email": new.email,
        "email_canonical": new.email_canonical,
        "password_hash": new.password_hash,
        "disabled": False,
        "created_at": now,
        "updated_at": now,
        "email_verified_at": now if new.email_verified else None,
    }


class SqlSessions:
    """Sessions in the ``sessions`` table, found through the unique index on ``token_digest``."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, session: Session, token_digest: bytes) -> None:
        await self._conn.execute(_ADD_SESSION, _session_values(session, token_digest))

    async def find(self, token_digest: bytes) -> tuple[Session, User] | None:
        row = (await self._conn.execute(FIND_SESSION, {"digest": token_digest})).first()
        return session_and_user(row._mapping) if row is not None else None

    async def list_for_user(self, user_id: int) -> list[Session]:
        rows = await self._conn.execute(
            select(*(c for c in sessions.c if c.name != "token_digest"))
            .where(sessions.c.user_id == user_id)
            .order_by(sessions.c.created_at.desc())
        )
        return [session_of(row._mapping) for row in rows]

    async def delete_by_id(self, user_id: int, session_id: str) -> bool:
        result = await self._conn.execute(
            delete(sessions).where(sessions.c.id == session_id, sessions.c.user_id == user_id)
        )
        return result.rowcount > 0

    async def touch(self, session_id: str, now: datetime) -> None:
        # Only forward: with several instances, a touch that commits late must not move it back.
        await self._conn.execute(
            update(sessions)
            .where(sessions.c.id == session_id, sessions.c.last_seen_at < now)
            .values(last_seen_at=now)
        )

    async def delete(self, token_digest: bytes) -> bool:
        result = await self._conn.execute(delete(sessions).where(sessions.c.token_digest == token_digest))
        return result.rowcount > 0

    async def exists(self, session_id: str) -> bool:
        found = await self._conn.execute(select(sessions.c.id).where(sessions.c.id == session_id))
        return found.first() is not None

    async def delete_expired(self, now: datetime, idle_before: datetime | None) -> int:
        condition = sessions.c.expires_at <= now
        if idle_before is not None:
            condition = or_(condition, sessions.c.last_seen_at <= idle_before)
        result = await self._conn.execute(delete(sessions).where(condition))
        return int(result.rowcount)

    async def delete_for_user(self, user_id: int, keep: str | None = None) -> int:
        statement = delete(sessions).where(sessions.c.user_id == user_id)
        if keep is not None:
            statement = statement.where(sessions.c.id != keep)
        result = await self._conn.execute(statement)
        return int(result.rowcount)


def _session_values(session: Session, token_digest: bytes) -> dict[str, Any]:
    return {
        "id": session.id,
        "user_id": session.user_id,
        "token_digest": token_digest,
        "created_at": session.created_at,
        "last_seen_at": session.last_seen_at,
        "expires_at": session.expires_at,
        "client_address": session.client_address,
        "user_agent": session.user_agent,
        "aal": session.aal,
        "amr": " ".join(session.amr),
    }


def _token(row: Any) -> AccountToken:
    return AccountToken(
        bytes(row.digest), row.user_id, TokenPurpose(row.purpose), row.created_at, row.expires_at
    )


class SqlTokens:
    """Mailed tokens in ``account_tokens``, by digest."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, token: AccountToken) -> None:
        await self._conn.execute(
            insert(account_tokens).values(
                digest=token.digest,
                user_id=token.user_id,
                purpose=token.purpose.value,
                created_at=token.created_at,
                expires_at=token.expires_at,
            )
        )

    async def find(self, digest: bytes, purpose: TokenPurpose) -> AccountToken | None:
        row = (
            await self._conn.execute(
                select(account_tokens).where(
                    account_tokens.c.digest == digest, account_tokens.c.purpose == purpose.value
                )
            )
        ).first()
        return _token(row) if row else None

    async def take(self, digest: bytes, purpose: TokenPurpose) -> AccountToken | None:
        row = (
            await self._conn.execute(
                delete(account_tokens)
                .where(account_tokens.c.digest == digest, account_tokens.c.purpose == purpose.value)
                .returning(*account_tokens.c)
            )
        ).first()
        return _token(row) if row else None

    async def delete_expired(self, now: datetime) -> int:
        result = await self._conn.execute(delete(account_tokens).where(account_tokens.c.expires_at <= now))
        return int(result.rowcount)

    async def delete_for_user(self, user_id: int, purpose: TokenPurpose) -> int:
        result = await self._conn.execute(
            delete(account_tokens).where(
                account_tokens.c.user_id == user_id, account_tokens.c.purpose == purpose.value
            )
        )
        return int(result.rowcount)


class SqlTransaction:
    """The repositories of one connection inside one transaction."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.users = SqlUsers(conn)
        self.sessions = SqlSessions(conn)
        self.tokens = SqlTokens(conn)
        self.factors = SqlFactors(conn)


class SqlStore:
    """Opens transactions on an engine; a database that is down becomes StorageUnavailable."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        lookup: SessionLookup | None = None,
        checkpointer: Checkpointer | None = None,
    ) -> None:
        self.engine = engine
        self._lookup = lookup
        self._checkpointer = checkpointer
        # Reads on the request path are single statements: autocommit spares BEGIN and COMMIT,
        # two of the three round trips a session check would otherwise cost.
        self._reader = engine.execution_options(**read_options(engine))
        self._writer = engine.execution_options(**{WRITE_OPTION: True})

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        """An autocommit connection: for single-statement reads (and, on PostgreSQL, writes)."""
        with _translated():
            async with self._reader.connect() as conn:
                yield conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: committed on normal exit, rolled back on an exception."""
        with _translated():
            async with self._writer.begin() as conn:
                yield conn

    async def find_session(self, token_digest: bytes) -> tuple[Session, User] | None:
        """The session check's read: on the driver itself when a ``lookup`` was given (see lookup.py)."""
        if self._lookup is not None:
            try:
                return await self._lookup.find(token_digest)
            except LookupBusy:
                pass  # SQLite would have blocked the event loop: wait on the pooled path instead
        async with self.read() as tx:
            return await tx.sessions.find(token_digest)

    async def open_session(
        self, session: Session, token_digest: bytes, seen_hash: str, new_hash: str | None = None
    ) -> bool:
        """Add ``session`` if its user's hash is still ``seen_hash`` and the account is not
        disabled, replacing the hash by ``new_hash`` when one is given; all of it or nothing.

        PostgreSQL: one statement (``_OPEN_SESSION``), one round trip where a transaction took
        four (BEGIN, the check, the insert, COMMIT). SQLite: the same three steps in a write
        transaction, which costs no round trips (BEGIN IMMEDIATE orders it against other writers).
        """
        if self.engine.dialect.name == "postgresql":
            values = {  # all but the user's id, which the statement takes from its CTE
                f"session_{name}": value
                for name, value in _session_values(session, token_digest).items()
                if name != "user_id"
            }
            values.update(user_id=session.user_id, seen_hash=seen_hash)
            if new_hash is not None:
                values.update(new_hash=new_hash, now=session.created_at)
            statement = _OPEN_SESSION if new_hash is None else _OPEN_SESSION_REHASHED
            async with self.connection() as conn:  # autocommit: the statement is its transaction
                return bool((await conn.execute(statement, values)).rowcount == 1)
        async with self.write() as tx:
            if not await tx.users.confirm_credentials(session.user_id, seen_hash):
                return False
            if new_hash is not None:
                await tx.users.replace_password_hash(session.user_id, seen_hash, new_hash, session.created_at)
            await tx.sessions.add(session, token_digest)
        return True

    async def close(self) -> None:
        """Stop the checkpointer, close the lookup's own connections (the engine is the caller's)."""
        if self._checkpointer is not None:
            self._checkpointer.stop()
        if self._lookup is not None:
            await self._lookup.close()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[SqlTransaction]:
        async with self.connection() as conn:
            yield SqlTransaction(conn)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[SqlTransaction]:
        async with self.transaction() as conn:
            yield SqlTransaction(conn)
