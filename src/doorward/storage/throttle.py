"""Throttle counters in the database: atomic upserts every instance sees."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, case, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from doorward.core.models import AttemptState
from doorward.core.ports import WaitUntil
from doorward.storage.store import SqlStore
from doorward.storage.tables import attempts, rate_windows

_KEY = attempts.c.key == bindparam("key")
# One statement for both of a login's reads: an account's state and its client's failures.
_LOGIN_STATE = select(
    select(attempts.c.failures).where(_KEY).scalar_subquery().label("failures"),
    select(attempts.c.next_allowed_at).where(_KEY).scalar_subquery().label("next_allowed_at"),
    select(rate_windows.c.count)
    .where(rate_windows.c.key == bindparam("counter"), rate_windows.c.window_start == bindparam("start"))
    .scalar_subquery()
    .label("counted"),
)


class SqlThrottleStore:
    """Counters in the ``attempts`` and ``rate_windows`` tables."""

    def __init__(self, store: SqlStore, lockout_failures: int = 50) -> None:
        self._store = store
        self._lockout = lockout_failures
        self._dialect = store.engine.dialect.name
        # The two upserts every failed login runs, built once (see rows.py's FIND_SESSION).
        self._record_failure = self._failure_upsert("key")
        self._hit = self._hit_upsert("key")
        # On PostgreSQL both in one statement: one round trip where a transaction took four.
        failure = self._record_failure.cte("failure")
        self._failure_alone = select(failure.c.failures)
        self._failure_and_hit = select(failure.c.failures).add_cte(self._hit_upsert("counter").cte("hit"))

    def _failure_upsert(self, key: str) -> Any:
        """One more failure for the account ``key`` names; returns the new count."""
        failure = self._insert(attempts).values(key=bindparam(key), failures=1, updated_at=bindparam("now"))
        return failure.on_conflict_do_update(
            index_elements=[attempts.c.key],
            set_={"failures": attempts.c.failures + 1, "updated_at": failure.excluded.updated_at},
        ).returning(attempts.c.failures)

    def _hit_upsert(self, key: str) -> Any:
        """One more event in the window of the counter ``key`` names; returns the window's count."""
        hit = self._insert(rate_windows).values(key=bindparam(key), window_start=bindparam("start"), count=1)
        return hit.on_conflict_do_update(
            index_elements=[rate_windows.c.key],
            set_={
                "count": case(
                    (rate_windows.c.window_start == hit.excluded.window_start, rate_windows.c.count + 1),
                    else_=1,
                ),
                "window_start": hit.excluded.window_start,
            },
        ).returning(rate_windows.c.count)

    async def login_state(
        self, key: str, counter: str | None, window_start: datetime
    ) -> tuple[AttemptState, int]:
        async with self._store.connection() as conn:
            parameters = {"key": key, "counter": counter, "start": window_start}
            row = (await conn.execute(_LOGIN_STATE, parameters)).one()
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

    def _insert(self, table: Table) -> Any:
        module: Any = postgresql if self._dialect == "postgresql" else sqlite
        return module.insert(table)

    async def clear(self, key: str) -> None:
        async with self._store.transaction() as conn:
            await conn.execute(delete(attempts).where(attempts.c.key == key))
            if not key.startswith("account:"):  # an account's failures have no window: spare a statement
                await conn.execute(delete(rate_windows).where(rate_windows.c.key == key))

    async def hit(self, key: str, window_start: datetime, window: timedelta) -> int:
        async with self._store.transaction() as conn:
            return int((await conn.execute(self._hit, {"key": key, "start": window_start})).scalar_one())

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
