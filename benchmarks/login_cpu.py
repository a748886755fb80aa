"""CPU per login by process, and the database's transactions per login: an A/B of source trees.

    .venv/bin/python benchmarks/login_cpu.py --tree /path/to/base --tree . --rounds 3

Each round runs every tree in turn (``doorward serve --workers <cores>`` with that tree's ``src``
first on PYTHONPATH) on one database loaded once, drives it with wrk's login.lua (right and wrong
passwords alternating, as figure 1) and reads /proc before and after: the workers, the hashing
processes, the PostgreSQL backends of the benchmark's database, the server's auxiliary processes
(WAL writer, checkpointer: shared with anything else the server runs) and wrk; and, on PostgreSQL,
``pg_stat_database``'s transactions (counted once the server's backends have ended and reported).
Runs alternate so that a host's drift touches both arms alike; compare ratios within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import dataset
import harness
import launch
import procfs
import wrk


async def _backends(admin_url: str, database: str) -> dict[int, str]:
    """Each backend of ``database`` now, named by what it serves: its application_name (doorward's
    login statements and session lookups name themselves; SQLAlchemy's pool does not), else its type."""
    import asyncpg

    conn = await asyncpg.connect(dataset._dsn(admin_url), timeout=10)
    try:
        rows = await conn.fetch(
            "SELECT pid, application_name, backend_type FROM pg_stat_activity WHERE datname = $1", database
        )
    finally:
        await conn.close()
    names = {"": "pool (SQLAlchemy)", "client backend": "pool (SQLAlchemy)"}
    return {r["pid"]: r["application_name"] or names.get(r["backend_type"], r["backend_type"]) for r in rows}


async def _committed(admin_url: str, database: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(dataset._dsn(admin_url), timeout=10)
    try:
        for _ in range(200):
            if not await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = $1", database):
                break
            await asyncio.sleep(0.05)
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        value = await conn.fetchval(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1", database
        )
        return int(value)
    finally:
        await conn.close()


def one_run(args: argparse.Namespace, db: Any, tree: Path, env: dict[str, str], log: Path) -> dict[str, Any]:
    settings = {"hash_profile": args.hash_profile, "access_log": "false", "trusted_proxies": "127.0.0.1"}
    settings.update(item.split("=", 1) for item in args.setting)
    server_env = launch.doorward_env(db.url, **settings)
    server_env["PYTHONPATH"] = str(tree / "src")
    argv = [*launch.doorward_command(), "serve", "--host", "127.0.0.1", "--port", "{port}"]
    argv += ["--workers", str(harness.cores()), "--no-migrate"]
    postgres = db.name == "postgresql"
    before_server = asyncio.run(_committed(args.postgres_url, db.database)) if postgres else 0
    with launch.Server(f"doorward ({tree})", argv, server_env, log) as server:
        warm = wrk.run(server.url, "login.lua", connections=args.connections, duration=2.0, env=env)
        procfs.wait_until_quiet(10)
        with procfs.CpuMeter([server.pid]) as meter:
            result = wrk.run(
                server.url, "login.lua", connections=args.connections, duration=args.duration, env=env
            )
        # While the server's connections live: which of them took the database's CPU (an autovacuum
        # worker of the benchmark's database counts as one of its backends, and is named so here).
        kinds = asyncio.run(_backends(args.postgres_url, db.database)) if postgres else {}
    logins = result.count(200, 401)
    out: dict[str, Any] = {"tree": str(tree), "logins": logins, "statuses": result.statuses}
    roles: dict[str, float] = meter.result["by_role_s"]  # type: ignore[assignment]
    for role in ("supervisor", "workers", "hashing", "database", "database_aux", "generator"):
        out[f"{role}_ms"] = round(roles[role] * 1000 / logins, 3)
    out["foreign_share"] = meter.result["foreign_share"]
    split: dict[str, float] = {}
    for pid, (role, cpu) in meter.by_pid.items():
        if role == "database":
            kind = kinds.get(pid, "ended by then")
            split[kind] = split.get(kind, 0.0) + cpu
    out["database_ms_by_backend"] = {
        kind: round(cpu * 1000 / logins, 3) for kind, cpu in sorted(split.items())
    }
    if postgres:
        # The whole server's life (start-up, warm-up, shutdown) over all its logins: the start-up's
        # few transactions spread over thousands of logins, so a bound from above.
        total = logins + warm.count(200, 401)
        after = asyncio.run(_committed(args.postgres_url, db.database))
        out["xacts_whole_life"] = after - before_server
        out["xacts_per_login_upper"] = round((after - before_server) / total, 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tree", action="append", type=Path, required=True, help="a source tree (repeat)")
    parser.add_argument("--db", default="postgresql", choices=["postgresql", "sqlite"])
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--hash-profile", default="owasp-2023")
    parser.add_argument(
        "--setting", action="append", default=[], help="name=value: DOORWARD_NAME for both arms"
    )
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="doorward-login-cpu-"))
    db: Any = dataset.PostgresDatabase(args.postgres_url) if args.db == "postgresql" else None
    if db is None:
        db = dataset.SqliteDatabase(scratch)
    procfs.POSTGRES_DATABASE = getattr(db, "database", None)
    hashes = dataset.real_hashes(200, args.hash_profile, harness.cores())
    env = {"BENCH_USERS": str(args.users), "BENCH_REAL": str(len(hashes)), "BENCH_WRONG_EVERY": "2"}
    env["BENCH_CLIENTS"] = "1000000"
    try:
        db.migrate()
        db.load(dataset.Stage(0, args.users), hashes, 10, random.Random(24))
        for round_ in range(args.rounds):
            for i, tree in enumerate(args.tree):
                run = one_run(args, db, tree.resolve(), env, scratch / f"server-{round_}-{i}.log")
                print(round_, run, flush=True)
    finally:
        db.drop()


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(__file__))
    main()
