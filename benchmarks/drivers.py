"""Which async PostgreSQL driver doorward uses: asyncpg or psycopg 3, measured on doorward's own queries.

Runs the session check (one indexed join by token digest) and the login's write (one session insert)
through doorward's SqlStore with each driver, sequentially and with 16 at once, in one run.

    .venv/bin/pip install 'psycopg[binary]'   # only this benchmark needs it
    .venv/bin/python benchmarks/drivers.py [--postgres-url postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from sqlalchemy.ext.asyncio import create_async_engine

from doorward.core.models import NewUser, Session
from doorward.core.tokens import new_session_id, new_token, token_digest
from doorward.storage import SqlStore, upgrade
from doorward.storage.database import async_url

NOW = datetime.now(UTC)
USERS = 1_000


async def prepare(url: str) -> list[bytes]:
    engine = create_async_engine(async_url(url))
    store = SqlStore(engine)
    digests = [token_digest(new_token()) for _ in range(USERS)]
    async with store.write() as tx:
        await tx.users.add_many(
            [NewUser(f"u{n}@example.com", f"u{n}@example.com", "$argon2id$x") for n in range(USERS)], NOW
        )
    async with store.write() as tx:
        for n, digest in enumerate(digests):
            await tx.sessions.add(
                Session(new_session_id(), n + 1, NOW, NOW, NOW + timedelta(days=1), None, None), digest
            )
    await engine.dispose()
    return digests


async def measure(url: str, driver: str, digests: list[bytes], rounds: int) -> dict[str, float]:
    engine = create_async_engine(async_url(url).set(drivername=f"postgresql+{driver}"), pool_size=16)
    store = SqlStore(engine)

    async def check(n: int) -> None:
        async with store.read() as tx:
            assert await tx.sessions.find(digests[n % len(digests)]) is not None

    async def write(n: int) -> None:
        session = Session(new_session_id(), n % USERS + 1, NOW, NOW, NOW + timedelta(days=1), None, None)
        async with store.write() as tx:
            await tx.sessions.add(session, token_digest(new_token()))

    figures: dict[str, float] = {}
    for name, op in (("check", check), ("write", write)):
        await asyncio.gather(*(op(n) for n in range(200)))  # warm the pool
        started = time.perf_counter()
        for n in range(rounds):
            await op(n)
        figures[f"{name} sequential/s"] = rounds / (time.perf_counter() - started)
        started = time.perf_counter()
        for batch in range(0, rounds, 16):
            await asyncio.gather(*(op(batch + k) for k in range(16)))
        figures[f"{name} 16 at once/s"] = rounds / (time.perf_counter() - started)
    await engine.dispose()
    return figures


async def main(base_url: str, rounds: int, repeats: int) -> None:
    name = f"doorward_bench_{uuid.uuid4().hex[:8]}"
    admin = base_url.replace("postgresql://", "postgres://")
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    url = base_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        await asyncio.to_thread(upgrade, url)
        digests = await prepare(url)
        results: dict[str, dict[str, list[float]]] = {"asyncpg": {}, "psycopg": {}}
        for _ in range(repeats):  # interleaved, so drift affects both alike
            for driver, series in results.items():
                for key, value in (await measure(url, driver, digests, rounds)).items():
                    series.setdefault(key, []).append(value)
        print(f"| figure | asyncpg | psycopg | asyncpg / psycopg |  (median of {repeats}, {rounds} ops each)")
        print("|---|---|---|---|")
        for key in results["asyncpg"]:
            a = statistics.median(results["asyncpg"][key])
            p = statistics.median(results["psycopg"][key])
            print(f"| {key} | {a:,.0f} | {p:,.0f} | {a / p:.2f} |")
    finally:
        await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--rounds", type=int, default=2_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.postgres_url, args.rounds, args.repeats))
