"""Throttle counters in the database: atomic upserts every instance sees."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, case, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from doorward.core.throttle import AttemptState, WaitUntil
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
        # The two upserts every failed login runs, built once (see store.py's FIND_SESSION).
        failure = self._insert(attempts).values(key=bindparam("key"), failures=1, updated_at=bindparam("now"))
        self._record_failure = failure.on_conflict_do_update(
            index_elements=[attempts.c.key],
            set_={"failures": attempts.c.failures + 1, "updated_at": failure.excluded.updated_at},
        ).returning(attempts.c.failures)
        hit = self._insert(rate_windows).values(
            key=bindparam("key"), window_start=bindparam("start"), count=1
        )
        self._hit = hit.on_conflict_do_update(
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
        async with self._store.transaction() as conn:
            result = await conn.execute(self._record_failure, {"key": key, "now": datetime.now(UTC)})
            failures = int(result.scalar_one())
            if counter is not None:
                await conn.execute(self._hit, {"key": counter, "start": window_start})
            until = wait_until(failures) if wait_until is not None else None
            if until is not None:
                await conn.execute(
                    update(attempts)
                    .where(
                        attempts.c.key == key,
                        or_(attempts.c.next_allowed_at.is_(None), attempts.c.next_allowed_at < until),
                    )
                    .values(next_allowed_at=until)
                )
        return failures

    def _insert(self, table: Table) -> Any:
        module: Any = postgresql if self._dialect == "postgresql" else sqlite
        return module.insert(table)

    async def clear(self, key: str) -> None:
        async with self._store.transaction() as conn:
            await conn.execute(delete(attempts).where(attempts.c.key == key))

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
