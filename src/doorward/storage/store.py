"""The Store the core asks for: transactions over SQLAlchemy Core, binding the repositories of
users.py, sessions.py, tokens.py, factors.py, passkeys.py, admin_keys.py, known_devices.py and
audit_trail.py to one connection, the session check's read and a login's write. Driver errors become
core errors in errors.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from doorward.core.models import DeviceNote, Opened, Session, User
from doorward.core.ports import SessionLookup
from doorward.storage.admin_keys import SqlAdminKeys
from doorward.storage.audit_trail import SqlAuditTrail
from doorward.storage.database import WRITE_OPTION, read_options
from doorward.storage.errors import LookupBusy, sql_translated
from doorward.storage.factors import SqlFactors
from doorward.storage.known_devices import SqlKnownDevices, noting_ctes, noting_values, recognition
from doorward.storage.lookup import PostgresLookup
from doorward.storage.loopsqlite import Checkpointer
from doorward.storage.passkeys import SqlPasskeys
from doorward.storage.sessions import SqlSessions, session_values
from doorward.storage.tables import sessions, users
from doorward.storage.tokens import SqlTokens
from doorward.storage.users import CONFIRM_CREDENTIALS, SqlUsers


def open_session_statement(*, rehash: bool, device: bool = False) -> Any:
    """A login's one write on PostgreSQL, as one statement: the credentials' check, the hash's
    upgrade (``rehash``), the new session and (``device``) its device noted, which
    ``SqlStore.open_session`` runs as statements in a transaction on SQLite. With ``device`` it
    returns the session's id and what ``known_devices.recognition`` reads (no row: not written).

    The UPDATE's row lock orders it against a reset, change or disable of the same user, and its
    WHERE is re-checked against the row they committed: then nothing is updated, so nothing inserted.
    """
    confirmed = CONFIRM_CREDENTIALS
    if rehash:
        confirmed = confirmed.values(password_hash=bindparam("new_hash"), updated_at=bindparam("now"))
    cte = confirmed.returning(users.c.id).cte("confirmed")
    # Parameters named after no column: SQLAlchemy would take one named after a column of
    # ``users`` for a value to SET in the CTE's UPDATE.
    values: list[Any] = [
        cte.c.id if column.name == "user_id" else bindparam(f"session_{column.name}", type_=column.type)
        for column in sessions.c
    ]  # the user's id comes from the UPDATE: there is none to insert unless it confirmed
    statement = insert(sessions).from_select(list(sessions.c), select(*values))
    if not device:
        return statement
    ctes, columns = noting_ctes(cte)
    return statement.add_cte(*ctes).returning(sessions.c.id, *columns)


_OPEN_SESSION = {
    (rehash, device): open_session_statement(rehash=rehash, device=device)
    for rehash in (False, True)
    for device in (False, True)
}


def open_session_values(
    session: Session,
    token_digest: bytes,
    seen_hash: str,
    new_hash: str | None,
    device: DeviceNote | None = None,
) -> dict[str, Any]:
    """The parameters of ``open_session_statement``."""
    values = {  # all but the user's id, which the statement takes from its CTE
        f"session_{name}": value
        for name, value in session_values(session, token_digest).items()
        if name != "user_id"
    }
    values.update(user_id=session.user_id, seen_hash=seen_hash)
    if new_hash is not None:
        values.update(new_hash=new_hash, now=session.created_at)
    if device is not None:
        values.update(noting_values(session.user_id, device))
    return values


def opened(device: DeviceNote | None, row: Any) -> Opened:
    """What ``open_session_statement`` with ``device`` answered, from its RETURNING row (None when
    nothing was written)."""
    if row is None:
        return False
    return recognition(device, row) if device is not None else True


class SqlTransaction:
    """The repositories of one connection inside one transaction."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.users = SqlUsers(conn)
        self.sessions = SqlSessions(conn)
        self.tokens = SqlTokens(conn)
        self.factors = SqlFactors(conn)
        self.passkeys = SqlPasskeys(conn)
        self.admin_keys = SqlAdminKeys(conn)
        self.known_devices = SqlKnownDevices(conn)
        self.audit = SqlAuditTrail(conn)


class SqlStore:
    """Opens transactions on an engine; a database that is down becomes StorageUnavailable.

    ``limit``: seconds each use of a connection may take in all (the wait for a pooled one,
    connecting, every statement, the commit), so that a frozen database answers within it; the
    served app's DOORWARD_DB_TIMEOUT. None for commands, whose statements DOORWARD_DB_STATEMENT_TIMEOUT
    bounds one by one (an import or a prune may rightly take longer in all).
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        lookup: SessionLookup | None = None,
        driver: PostgresLookup | None = None,
        checkpointer: Checkpointer | None = None,
        limit: float | None = None,
    ) -> None:
        self.engine = engine
        self._limit = limit
        self._lookup = lookup
        self.driver = driver  # a login's statements on the driver (login_trips.py), PostgreSQL only
        self._checkpointer = checkpointer
        # Reads on the request path are single statements: autocommit spares BEGIN and COMMIT,
        # two of the three round trips a session check would otherwise cost.
        self._reader = engine.execution_options(**read_options(engine))
        self._writer = engine.execution_options(**{WRITE_OPTION: True})

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        """An autocommit connection: for single-statement reads (and, on PostgreSQL, writes)."""
        with sql_translated():
            async with asyncio.timeout(self._limit), self._reader.connect() as conn:
                yield conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: committed on normal exit, rolled back on an exception."""
        with sql_translated():
            async with asyncio.timeout(self._limit), self._writer.begin() as conn:
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
        self,
        session: Session,
        token_digest: bytes,
        seen_hash: str,
        new_hash: str | None = None,
        device: DeviceNote | None = None,
    ) -> Opened:
        """Add ``session`` if its user's hash is still ``seen_hash`` and the account is not
        disabled, replacing the hash by ``new_hash`` when one is given, and noting ``device``; all
        of it or nothing.

        PostgreSQL: one statement (``_OPEN_SESSION``), one round trip where a transaction took
        four (BEGIN, the check, the insert, COMMIT). SQLite: the same steps in a write
        transaction, which costs no round trips (BEGIN IMMEDIATE orders it against other writers).
        """
        if self.engine.dialect.name == "postgresql":
            values = open_session_values(session, token_digest, seen_hash, new_hash, device)
            statement = _OPEN_SESSION[new_hash is not None, device is not None]
            async with self.connection() as conn:  # autocommit: the statement is its transaction
                result = await conn.execute(statement, values)
                if device is None:
                    return bool(result.rowcount == 1)
                row = result.first()
                return opened(device, row._mapping if row is not None else None)
        async with self.transaction() as conn:
            return await open_session_on(conn, session, token_digest, seen_hash, new_hash, device)

    async def close(self) -> None:
        """Stop the checkpointer, close the lookup's own connections (the engine is the caller's)."""
        if self._checkpointer is not None:
            self._checkpointer.stop()
        if self._lookup is not None:
            await self._lookup.close()
        if self.driver is not None:
            await self.driver.close()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[SqlTransaction]:
        async with self.connection() as conn:
            yield SqlTransaction(conn)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[SqlTransaction]:
        async with self.transaction() as conn:
            yield SqlTransaction(conn)


async def open_session_on(
    conn: AsyncConnection,
    session: Session,
    token_digest: bytes,
    seen_hash: str,
    new_hash: str | None,
    device: DeviceNote | None = None,
) -> Opened:
    """A login's write in a write transaction the caller holds (SQLite's way): ``session`` added if
    its user's hash is still ``seen_hash`` and the account is not disabled, the hash replaced by
    ``new_hash`` when one is given, ``device`` noted (its Recognition answered). False, and nothing
    written, when the check fails."""
    accounts = SqlUsers(conn)
    if not await accounts.confirm_credentials(session.user_id, seen_hash):
        return False
    if new_hash is not None:
        await accounts.replace_password_hash(session.user_id, seen_hash, new_hash, session.created_at)
    await SqlSessions(conn).add(session, token_digest)
    if device is not None:
        return await SqlKnownDevices(conn).note(session.user_id, device)
    return True
