"""A login's transactions, counted by the database where it can count them (issue 24 item 2).

The throttle reserves an attempt before the verify and the session is written after it, so a
login needs two trips to the database at the least: the user read with the reservation, then the
session with the reservation taken back. A failed login needs the first one only. The audit rows
travel apart, in batches off the request path (storage/audit.py): they are counted apart.

New-device mails (DOORWARD_NEW_DEVICE_MAIL, core/notices.py) note a login's device in its session's
write, adding no trip: counted with them on and off (each login here is its account's first, so its
device is written).

PostgreSQL counts every transaction it commits (``pg_stat_database``), read once the app's
connections have closed (a backend reports its counts when it ends). SQLite counts nothing, so
there the statements are counted as SQLAlchemy runs them: each write transaction (doorward's own
``BEGIN``) is one, and so is each statement outside one (SQLite's implicit transaction).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from tests.conftest import PASSWORD, POSTGRES_URL, FakeClock, app_for, register

LOGINS = 12


class Counted:
    """The transactions an engine began, as its statements show them, and the audit's share."""

    def __init__(self) -> None:
        self.transactions = 0
        self.audit = 0  # transactions that wrote audit rows (flushes of the batch)
        self.statements = 0

    def on_execute(self, conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        self.statements += 1
        if statement.startswith("BEGIN"):
            conn.info["doorward_test_open"] = True
            self.transactions += 1
        elif not conn.info.get("doorward_test_open"):
            self.transactions += 1  # a statement of its own: its own transaction
        if statement.startswith("INSERT INTO audit_events"):
            self.audit += 1

    @staticmethod
    def on_end(conn: Any) -> None:
        conn.info["doorward_test_open"] = False


def counting(app: FastAPI) -> tuple[Counted, Callable[[], None]]:
    """Count what the app's engine runs from now on, its shutdown's audit flush included, until
    the function returned is called."""
    engine = app.state.services.engine.sync_engine
    counted = Counted()
    hooks: list[tuple[str, Callable[..., None]]] = [("before_cursor_execute", counted.on_execute)]
    hooks += [(name, counted.on_end) for name in ("commit", "rollback")]
    for name, hook in hooks:
        event.listen(engine, name, hook)

    def stop() -> None:
        for name, hook in hooks:
            event.remove(engine, name, hook)

    return counted, stop


async def committed(database_url: str) -> int:
    """Transactions PostgreSQL has counted in this test's database, once no backend is left on it."""
    name = database_url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(POSTGRES_URL.replace("postgresql://", "postgres://", 1), timeout=5)
    try:
        for _ in range(200):
            if not await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = $1", name):
                break
            await asyncio.sleep(0.05)
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        return int(
            await conn.fetchval(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1", name
            )
        )
    finally:
        await conn.close()


async def logins(database_url: str, clock: FakeClock, password: str, count: int, **settings: Any) -> Counted:
    """``count`` logins of distinct accounts (none near its throttle) in an app of their own."""
    async with app_for(database_url, clock, **settings) as (app, client):
        counted, stop = counting(app)
        for i in range(count):
            response = await client.post("/login", json={"email": f"u{i}@example.com", "password": password})
            assert response.status_code == (200 if password == PASSWORD else 401), response.text
    stop()
    return counted


async def per_login(database_url: str, password: str, **settings: Any) -> float:
    """The database's transactions per login, the audit's batches left out.

    Counted as the difference between an app that logs in ``LOGINS + 1`` times and one that
    logs in once, so that what an app does once (starting, stopping, a connection's first
    statements) is left out too."""
    clock = FakeClock()
    settings = {"new_device_mail": False, **settings}
    async with app_for(database_url, clock, **settings) as (_, client):
        for i in range(LOGINS + 1):
            await register(client, f"u{i}@example.com")
    if database_url.startswith("sqlite"):
        many = await logins(database_url, clock, password, LOGINS + 1, **settings)
        once = await logins(database_url, clock, password, 1, **settings)
        return (many.transactions - many.audit - once.transactions + once.audit) / LOGINS
    start = await committed(database_url)
    many = await logins(database_url, clock, password, LOGINS + 1, **settings)
    middle = await committed(database_url)
    once = await logins(database_url, clock, password, 1, **settings)
    end = await committed(database_url)
    return ((middle - start - many.audit) - (end - middle - once.audit)) / LOGINS


@pytest.mark.parametrize(("password", "bound"), [(PASSWORD, 2), ("not the password", 1)])
@pytest.mark.parametrize("new_device_mail", [False, True], ids=["device-mails-off", "device-mails-on"])
async def test_a_login_takes_two_transactions_and_a_failed_one_takes_one(
    database_url: str, password: str, bound: int, new_device_mail: bool
) -> None:
    per = await per_login(database_url, password, new_device_mail=new_device_mail)
    assert bound - 0.5 < per <= bound  # counted at all, and no more


@pytest.mark.parametrize(("password", "bound"), [(PASSWORD, 2), ("not the password", 1)])
async def test_with_the_counters_in_redis_the_database_sees_the_user_read_and_the_session_write(
    request: pytest.FixtureRequest, database_url: str, password: str, bound: int
) -> None:
    store = {
        "redis_url": request.getfixturevalue("redis_url"),
        "redis_prefix": request.getfixturevalue("redis_prefix"),
    }
    assert bound - 0.5 < await per_login(database_url, password, **store) <= bound
