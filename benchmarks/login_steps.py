"""What each of a login's database steps costs: the client's CPU and the PostgreSQL backend's.

    .venv/bin/python benchmarks/login_steps.py --count 2000 [--driver]

Runs each step of a login ``--count`` times in a row, one at a time, through doorward's own
stores (SQLAlchemy Core on asyncpg, as the workers run them) on a throw-away PostgreSQL database,
and reads the CPU this process and the database's backends took (/proc). Each reservation names
a new client and a new account of its own, as the benchmark's million client addresses do, so
its upserts insert rows; each session write takes back such a reservation and writes a session.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy import text

from doorward.core.models import AuditEvent, DeviceNote, LoginLimits, Opening, Session, Sighting
from doorward.core.throttle import ThrottlePolicy
from doorward.core.tokens import new_session_id, new_token, token_digest
from doorward.storage import upgrade
from doorward.storage.audit import SqlAuditSink
from doorward.storage.database import create_engine
from doorward.storage.lookup import open_driver
from doorward.storage.store import SqlStore
from doorward.storage.throttle import SqlThrottleStore

# The server's WAL position: what the step wrote there (the server's, so other databases' writes
# meanwhile count too: a bound from above on a shared server).
WAL = "SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint"
KNOWN = b"k" * 32  # a device every user logged in from lately
AUDIT_ROWS = 200  # audit.BATCH, the most one flush writes in one transaction
HASH = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$" + "A" * 43


def backend_cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
        fields = stat[stat.rindex(b")") + 2 :].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


async def main(args: argparse.Namespace) -> None:
    admin = await asyncpg.connect(args.postgres_url.replace("postgresql://", "postgres://", 1))
    name = f"doorward_steps_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = args.postgres_url.rsplit("/", 1)[0] + f"/{name}"
    if args.no_flush:  # this throw-away database's own setting: the server's others keep theirs
        await admin.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    try:
        await asyncio.to_thread(upgrade, url)
        engine = create_engine(url, pool_size=1)
        driver = open_driver(engine.url, engine.dialect, timeout=5, statement_timeout=5, pool_size=1)
        store = SqlStore(engine, driver=driver if args.driver else None)
        throttle = SqlThrottleStore(store)
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO users (email, email_canonical, password_hash, disabled, created_at,"
                    " updated_at) SELECT 'u' || i || '@example.com', 'u' || i || '@example.com', :hash,"
                    " false, now(), now() FROM generate_series(0, :last) i"
                ),
                {"hash": HASH, "last": args.count * 12 * args.rounds + 100},
            )
            await conn.execute(
                text(
                    "INSERT INTO known_devices (user_id, digest, last_seen_at) SELECT id, :d, :at FROM users"
                ),
                {"d": KNOWN, "at": datetime.now(UTC)},
            )
        policy = ThrottlePolicy()
        now = datetime.now(UTC)
        limits = LoginLimits(now, 50, 100, 5, tuple(now + d for d in policy.delays))
        window = timedelta(minutes=15)
        counter = iter(range(10**9))

        async def reserve(read: bool) -> Any:
            n = next(counter)
            email = f"u{n}@example.com"
            return await throttle.reserve_login(
                f"account:{email}", f"login-failures:10.{n}", now, window, limits, email if read else None
            )

        def opening(user_id: int) -> Opening:
            session = Session(new_session_id(), user_id, now, now, now + timedelta(days=1), "10.0.0.1", "x")
            return Opening(session, token_digest(new_token()), HASH)

        async def release_and_open() -> None:
            n = next(counter)
            await throttle.release_login(
                f"account:u{n}@example.com",
                f"login-failures:10.{n}",
                now,
                reset=True,
                reserved=1,
                opening=opening(n + 1),
            )

        def note(digest: bytes) -> DeviceNote:
            return DeviceNote(digest, Sighting(now, "10.0.0.1", "x"), now - window, now - window)

        async def release_and_open_noting(known: bool) -> None:
            n = next(counter)
            digest = KNOWN if known else os.urandom(32)  # KNOWN: every user's, noted at the start
            await throttle.release_login(
                f"account:u{n}@example.com",
                f"login-failures:10.{n}",
                now,
                reset=True,
                reserved=1,
                opening=replace(opening(n + 1), device=note(digest)),
            )

        async def release() -> None:
            n = next(counter)
            await throttle.release_login(
                f"account:u{n}@example.com", f"login-failures:10.{n}", now, reset=True, reserved=1
            )

        async def open_session() -> None:
            o = opening(next(counter) + 1)
            await store.open_session(o.session, o.token_digest, o.seen_hash)

        async def read_user() -> None:
            async with store.read() as tx:
                await tx.users.by_canonical_email(f"u{next(counter)}@example.com")

        async def device_read() -> None:
            async with store.read() as tx:
                await tx.known_devices.last_seen(next(counter) % 1000 + 1, os.urandom(32))

        async def device_write() -> None:
            async with store.write() as tx:
                await tx.known_devices.note(next(counter) % 1000 + 1, note(os.urandom(32)))

        sink = SqlAuditSink(store)

        async def audit_batch() -> None:  # a batch of AUDIT_ROWS rows: divided by them below
            for _ in range(AUDIT_ROWS):
                sink.record(AuditEvent(now, "login.succeeded", 1, "10.0.0.1", {"session_id": "x" * 43}))
            await sink.flush()

        async def select_one() -> None:
            if store.driver is not None:
                await store.driver.fetchrow("SELECT 1")
            else:
                async with store.read() as tx:
                    await tx.known_devices.last_seen(0, b"")

        steps: dict[str, Callable[[], Awaitable[Any]]] = {
            "reservation + user read (one statement)": lambda: reserve(True),
            "reservation alone (main)": lambda: reserve(False),
            "user read alone (main)": read_user,
            "release + session write (one statement)": release_and_open,
            "release + session + new device noted (one statement)": lambda: release_and_open_noting(False),
            "release + session + known device read (one statement)": lambda: release_and_open_noting(True),
            "release alone (main)": release,
            "session write alone (main)": open_session,
            "before: new-device read (SQLAlchemy)": device_read,
            "before: new-device write, a transaction (SQLAlchemy)": device_write,
            f"audit insert, per row of a {AUDIT_ROWS}-row batch": audit_batch,
            "for scale: one trivial statement": select_one,
        }
        per_call = {f"audit insert, per row of a {AUDIT_ROWS}-row batch": AUDIT_ROWS}
        await reserve(True)  # connect, prepare
        pids = [r[0] for r in await admin.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", name)]
        for _ in range(args.rounds):
            for label, step in steps.items():
                if args.only and not any(word in label for word in args.only):
                    continue
                rows = per_call.get(label, 1)
                count = max(args.count // rows * 10, 10)  # a batch step: as many rows as ten calls' worth
                for _ in range(min(20, count)):
                    await step()
                w0 = await admin.fetchval(WAL)
                c0, b0, t0 = time.process_time(), backend_cpu(pids), time.perf_counter()
                for _ in range(count):
                    await step()
                c1, b1, t1 = time.process_time(), backend_cpu(pids), time.perf_counter()
                w1 = await admin.fetchval(WAL)
                per = 1000 / count / rows
                print(
                    f"{label:45} client {(c1 - c0) * per:.3f} ms  postgres {(b1 - b0) * per:.3f} ms"
                    f"  wall {(t1 - t0) * per:.3f} ms  WAL {(w1 - w0) * per / 1000:.0f} bytes",
                    flush=True,
                )
        await store.close()
        await engine.dispose()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--driver",
        action="store_true",
        help="the login's two statements on asyncpg (as served), not SQLAlchemy",
    )
    parser.add_argument(
        "--no-flush",
        action="store_true",
        help="synchronous_commit off in the throw-away database: what the commits' WAL flushes cost",
    )
    parser.add_argument("--only", action="append", default=[], help="steps whose label holds this (repeat)")
    sys.exit(asyncio.run(main(parser.parse_args())))
