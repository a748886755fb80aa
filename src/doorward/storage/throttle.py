"""Throttle counters in the database: atomic upserts every instance sees.

A login's reservation is two conditional upserts (``INSERT ... ON CONFLICT DO UPDATE ... WHERE``,
``RETURNING``), the client's window first, then the account: each row is incremented only while
the limits hold, under the row's lock, so concurrent reservations on any number of instances are
admitted one after another and never past a limit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    delete,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from doorward.core.models import AttemptState, LoginLimits, Opened, Opening, Reservation
from doorward.core.ports import WaitUntil
from doorward.storage.login_trips import (
    FORGET,
    UNHIT,
    OnDriver,
    account_reservation,
    client_reservation,
    read_user,
    release_and_open,
    user_in,
    window_hit,
    with_user,
)
from doorward.storage.store import SqlStore
from doorward.storage.tables import attempts, rate_windows
from doorward.storage.throttle_sql import (
    LOGIN_STATE,
    RELEASES,
    UNFAIL,
    dialect_insert,
    failure_upsert,
)


class SqlThrottleStore:
    """Counters in the ``attempts`` and ``rate_windows`` tables."""

    def __init__(self, store: SqlStore, lockout_failures: int = 50) -> None:
        self._store = store
        self._lockout = lockout_failures
        self._dialect = store.engine.dialect.name
        self._insert = dialect_insert(self._dialect)
        # The two upserts every failed login runs, built once (see rows.py's FIND_SESSION).
        self._record_failure = failure_upsert(self._insert(attempts), "key")
        self._hit = window_hit(self._insert(rate_windows), "key")
        # On PostgreSQL both in one statement: one round trip where a transaction took four.
        failure = self._record_failure.cte("failure")
        self._failure_alone = select(failure.c.failures)
        self._failure_and_hit = select(failure.c.failures).add_cte(
            window_hit(self._insert(rate_windows), "counter").cte("hit")
        )
        self._reserve_client = self._client_reservation()
        self._reservations: dict[tuple[int, bool], Any] = {}
        self._with_user: dict[int, Any] = {}  # with_user(the reservation), by its steps
        self._on_driver: dict[int, OnDriver] = {}  # the same, compiled for SqlStore.driver

    def _client_reservation(self) -> Any:
        return client_reservation(self._insert(rate_windows))

    def _account_reservation(self, steps: int, gated: bool = False) -> Any:
        """``login_trips.account_reservation``, built once per number of steps."""
        cached = self._reservations.get((steps, gated))
        if cached is None:
            client = self._client_reservation() if gated else None
            cached = self._reservations[steps, gated] = account_reservation(
                self._insert(attempts), steps, client
            )
        return cached

    async def reserve_login(
        self,
        key: str,
        counter: str | None,
        window_start: datetime,
        window: timedelta,
        limits: LoginLimits,
        email: str | None = None,
    ) -> Reservation:
        waits = limits.waits or (limits.now,)
        parameters: dict[str, Any] = {
            "email": email,
            "key": key,
            "counter": counter,
            "start": window_start,
            "limit": limits.client,
            "now": limits.now,
            "first_wait": limits.wait_after(1),
            "lockout": limits.lockout,
        }
        for i, wait in enumerate(waits):
            parameters[f"at{i}"] = limits.free + i
            parameters[f"wait{i}"] = wait
        if self._dialect == "postgresql" and counter is not None:
            return await self._reserve_in_one(parameters, len(waits), read=email is not None)
        account = self._account_reservation(len(waits))
        # SQLite: one write transaction (BEGIN IMMEDIATE orders it against every other writer).
        # PostgreSQL without a client: the one upsert, its own transaction.
        opened = self._store.connection if self._dialect == "postgresql" else self._store.transaction
        async with opened() as conn:
            counted: int | None = 0
            if counter is not None:
                counted = (await conn.execute(self._reserve_client, parameters)).scalar()
                if counted is None:  # the client is at its limit: the account is not touched
                    state, found = await self._found(conn, parameters)
                    return Reservation(False, state, found)
            row = (await conn.execute(account, parameters)).one_or_none()
            if row is not None:
                state = AttemptState(row.failures, row.next_allowed_at)
                if email is None:
                    return Reservation(True, state, int(counted or 0))
                # SQLite: in the reservation's transaction, which costs no trip; PostgreSQL
                # without a client (no address known): a statement of its own.
                user = await read_user(conn, email)
                return Reservation(True, state, int(counted or 0), read=True, user=user)
            if counter is not None:  # the account refused: the client's attempt is taken back
                await conn.execute(UNHIT, {"counter": counter, "start": window_start})
            state, found = await self._found(conn, parameters)
            return Reservation(False, state, found)

    async def _reserve_in_one(self, parameters: dict[str, Any], steps: int, *, read: bool) -> Reservation:
        """PostgreSQL: both upserts in one statement, one round trip, and with ``read`` the user
        too (login_trips.with_user). Each upsert is atomic on its own row; when the account refuses
        after the client's count went up, a second statement takes it back (meanwhile the count
        is one ahead, which can only refuse a concurrent attempt)."""
        driver = self._store.driver
        if read and driver is not None:  # a login's statement: on the driver (login_trips.OnDriver)
            driven = self._on_driver.get(steps)
            if driven is None:
                statement = with_user(self._account_reservation(steps, gated=True))
                driven = self._on_driver[steps] = OnDriver(statement, self._store.engine.dialect)
            found = await driver.fetchrow(driven.sql, *driven.args(parameters))
            assert found is not None  # a SELECT without FROM's filter: one row, always
            return await self._reserved(found, parameters, read)
        statement = self._account_reservation(steps, gated=True)
        if read:
            statement = self._with_user.get(steps)
            if statement is None:
                reservation = self._account_reservation(steps, gated=True)
                statement = self._with_user[steps] = with_user(reservation)
        async with self._store.connection() as conn:  # autocommit: the statement is its transaction
            row = (await conn.execute(statement, parameters)).one()._mapping
        return await self._reserved(row, parameters, read)

    async def _reserved(self, row: Mapping[Any, Any], parameters: dict[str, Any], read: bool) -> Reservation:
        """The reservation a gated statement's ``row`` answers; refused, the client's attempt is
        taken back if it was counted (the account refused it)."""
        if row["failures"] is not None:
            state = AttemptState(row["failures"], row["next_allowed_at"])
            user = user_in(row) if read else None
            return Reservation(True, state, int(row["counted"]), read=read, user=user)
        async with self._store.connection() as conn:
            if row["counted"] is not None:
                await conn.execute(UNHIT, {"counter": parameters["counter"], "start": parameters["start"]})
            state, counted = await self._found(conn, parameters)
        return Reservation(False, state, counted)

    @staticmethod
    async def _found(conn: AsyncConnection, parameters: dict[str, Any]) -> tuple[AttemptState, int]:
        row = (await conn.execute(LOGIN_STATE, parameters)).one()
        return AttemptState(row.failures or 0, row.next_allowed_at), int(row.counted or 0)

    async def release_login(
        self,
        key: str,
        counter: str | None,
        window_start: datetime,
        *,
        reset: bool,
        reserved: int,
        opening: Opening | None = None,
    ) -> Opened | None:
        if opening is not None and reset:  # the session's write in the same trip
            return await release_and_open(self._store, key, counter, window_start, opening)
        if self._dialect == "postgresql":  # one statement, one round trip, built once
            statement = RELEASES[reset, counter is not None]
            parameters = {"account": key, "reserved": reserved, "counter": counter}
            async with self._store.connection() as conn:
                await conn.execute(statement, {**parameters, "start": window_start})
            return None
        # Each statement takes only its own parameters: an UPDATE would SET a column named as one.
        async with self._store.transaction() as conn:
            if reset:
                await conn.execute(FORGET, {"account": key})
            else:
                await conn.execute(UNFAIL, {"account": key, "reserved": reserved})
            if counter is not None:
                await conn.execute(UNHIT, {"counter": counter, "start": window_start})
        return None

    async def login_state(
        self, key: str, counter: str | None, window_start: datetime
    ) -> tuple[AttemptState, int]:
        async with self._store.connection() as conn:
            parameters = {"key": key, "counter": counter, "start": window_start}
            row = (await conn.execute(LOGIN_STATE, parameters)).one()
        return AttemptState(row.failures or 0, row.next_allowed_at), int(row.counted or 0)

    async def record_login_failure(
        self,
        key: str,
        counter: str | None,
        window_start: datetime,
        window: timedelta,
        wait_until: WaitUntil | None = None,
    ) -> int:
        now = datetime.now(UTC)
        if self._dialect == "postgresql":
            statement = self._failure_alone if counter is None else self._failure_and_hit
            parameters = {"key": key, "now": now, "counter": counter, "start": window_start}
            async with self._store.connection() as conn:  # autocommit: the statement is its transaction
                failures = int((await conn.execute(statement, parameters)).scalar_one())
                await self._wait(conn, key, failures, wait_until)
            return failures
        async with self._store.transaction() as conn:
            result = await conn.execute(self._record_failure, {"key": key, "now": now})
            failures = int(result.scalar_one())
            if counter is not None:
                await conn.execute(self._hit, {"key": counter, "start": window_start})
            await self._wait(conn, key, failures, wait_until)
        return failures

    @staticmethod
    async def _wait(conn: AsyncConnection, key: str, failures: int, wait_until: WaitUntil | None) -> None:
        """Make ``key`` wait until ``wait_until(failures)``, unless it already waits longer.

        On PostgreSQL this is a statement after the count's (the wait depends on the count, and the
        policy is the core's): a login that reads the account in between finds the new count but
        not yet its wait, as it would have found neither before the count's commit. A success that
        cleared the count in between must not be followed by this wait: it applies only while the
        account still counts at least ``failures``.
        """
        until = wait_until(failures) if wait_until is not None else None
        if until is None:
            return
        await conn.execute(
            update(attempts)
            .where(
                attempts.c.key == key,
                attempts.c.failures >= failures,
                or_(attempts.c.next_allowed_at.is_(None), attempts.c.next_allowed_at < until),
            )
            .values(next_allowed_at=until)
        )

    async def clear(self, key: str) -> None:
        async with self._store.transaction() as conn:
            await conn.execute(delete(attempts).where(attempts.c.key == key))
            if not key.startswith("account:"):  # an account's failures have no window: spare a statement
                await conn.execute(delete(rate_windows).where(rate_windows.c.key == key))

    async def hit(self, key: str, window_start: datetime, window: timedelta) -> int:
        async with self._store.transaction() as conn:
            return int((await conn.execute(self._hit, {"key": key, "start": window_start})).scalar_one())

    async def forget_windows(self, keys: Sequence[str]) -> dict[str, int]:
        async with self._store.transaction() as conn:
            deleted = await conn.execute(
                delete(rate_windows)
                .where(rate_windows.c.key.in_(list(keys)))
                .returning(rate_windows.c.key, rate_windows.c.count)
            )
            return {key: int(count) for key, count in deleted.all()}

    async def prune(self, windows_before: datetime, idle_before: datetime) -> int:
        async with self._store.transaction() as conn:
            windows = await conn.execute(
                delete(rate_windows).where(rate_windows.c.window_start < windows_before)
            )
            # Locked accounts stay locked (until unlock or reset), however long they are quiet.
            quiet = await conn.execute(
                delete(attempts).where(
                    attempts.c.updated_at < idle_before,
                    or_(attempts.c.next_allowed_at.is_(None), attempts.c.next_allowed_at < idle_before),
                    attempts.c.failures < self._lockout,
                )
            )
        return int(windows.rowcount) + int(quiet.rowcount)
