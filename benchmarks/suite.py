"""One run of the benchmark: its options and scratch space, the servers it starts, how a figure's runs
are recorded (a disturbed run set aside and run again), the argon2id reference, and each database's turn.

The figures themselves are measured in figures_login.py (1, 2), figures_session.py (3), figures_flood.py
(4, 5) and figures_growth.py (6).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dataset
import figures_flood
import figures_flows
import figures_growth
import figures_login
import figures_session
import harness
import launch
import procfs
import reference
import wrk
from harness import in_background, log, spread, summarise
from launch import Server

from doorward.config import Settings
from doorward.core.profiles import PROFILES


def known_settings() -> set[str]:
    """The DOORWARD_* settings this checkout of doorward has (the benchmark sets some only if present)."""
    return set(Settings.model_fields)


class Suite:
    """One run of the benchmark: its options, scratch space, results so far."""

    def __init__(self, args: argparse.Namespace, scratch: Path) -> None:
        self.args = args
        self.scratch = scratch
        self.cores = harness.cores()
        self.profile = PROFILES[args.hash_profile]
        self.settings = known_settings()
        self.many_clients = "trusted_proxies" in self.settings
        self.results: dict[str, Any] = {
            "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": harness.machine(),
            "doorward": harness.doorward_source(),
            "options": {
                k: (str(v) if isinstance(v, Path) else v)
                for k, v in vars(args).items()
                if k not in {"dbs", "parts", "growth_sizes", "session_conns"}
            },
            "hash_profile": {
                "name": self.profile.name,
                "time_cost": self.profile.time_cost,
                "memory_kib": self.profile.memory_cost,
                "parallelism": self.profile.parallelism,
            },
            "notes": list(args.note),
            "databases": {},
        }
        self.hashes: list[str] = []
        self._logs = 0

    # -- servers ---------------------------------------------------------------------------------

    def server_settings(self) -> dict[str, str]:
        """The doorward settings every server runs with: the defaults, but for these."""
        settings = {"hash_profile": self.profile.name, "log_level": "INFO"}
        if "access_log" in self.settings:
            # As the bare reference, which uvicorn serves with --no-access-log: a proxy in front logs.
            # --access-log measures what the line costs.
            settings["access_log"] = "true" if getattr(self.args, "access_log", False) else "false"
        if self.many_clients:
            # wrk plays a reverse proxy in front of many clients (login.lua's X-Forwarded-For).
            settings["trusted_proxies"] = "127.0.0.1"
        if getattr(self.args, "metrics", False):
            # Metrics on as an operator turns them on: every worker records to the shared files.
            settings["metrics_token"] = "bench-metrics-token-0123456789"
        return settings

    def doorward(self, db: dataset.Database, **settings: str) -> Server:
        """``doorward serve`` on ``db`` with the benchmark's settings, and these."""
        self._logs += 1
        env = launch.doorward_env(db.url, **(self.server_settings() | settings))
        argv = [*launch.doorward_command(), "serve", "--host", "127.0.0.1", "--port", "{port}"]
        argv += ["--workers", str(self.cores), "--no-migrate"]
        return Server(f"doorward ({db.name})", argv, env, self.scratch / f"server-{self._logs}.log")

    def bare(self) -> Server:
        self._logs += 1
        argv = [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            str(harness.HERE),
            "--factory",
            "bare_app:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
            "--workers",
            str(self.cores),
            "--no-access-log",
        ]
        return Server(
            "bare starlette",
            argv,
            dict(os.environ),
            self.scratch / f"server-{self._logs}.log",
            health_path="/session",
        )

    # -- measuring -------------------------------------------------------------------------------

    def login_env(self, users: int) -> dict[str, str]:
        return {
            "BENCH_USERS": str(users),
            "BENCH_REAL": str(len(self.hashes)),
            "BENCH_WRONG_EVERY": "2",
            "BENCH_CLIENTS": "1000000" if self.many_clients else "0",
        }

    def token_env(self, tokens: list[str], name: str, delay_ms: float = 0) -> dict[str, str]:
        path = self.scratch / f"tokens-{name}.txt"
        path.write_text("\n".join(tokens) + "\n", encoding="ascii")
        env = {"BENCH_TOKENS": str(path)}
        if delay_ms:
            env["BENCH_DELAY_MS"] = f"{delay_ms:g}"
        return env

    def run_once(
        self,
        server: Server,
        script: str,
        connections: int,
        duration: float,
        env: dict[str, str],
        quiet: bool = True,
        load: Callable[[], wrk.WrkResult] | None = None,
    ) -> dict[str, Any]:
        """One recorded wrk run (or ``load``'s, another generator), with the CPU accounting and the
        connections per worker."""
        waiting = quiet and self.args.quiet_wait > 0
        waited = procfs.wait_until_quiet(self.args.quiet_wait) if waiting else 0.0
        spread_seen: list[list[int]] = []

        def look() -> None:
            time.sleep(min(1.0, duration / 4))
            spread_seen.append(launch.connections_per_worker(server))

        probe = in_background(look)
        with procfs.CpuMeter([server.pid]) as meter:
            if load is not None:
                result = load()
            else:
                result = wrk.run(server.url, script, connections=connections, duration=duration, env=env)
        probe()
        run = result.as_json()
        run["cpu"] = meter.result
        run["connections_per_worker"] = spread_seen[0] if spread_seen else []
        run["quiet_wait_s"] = round(waited, 1)
        return run

    def measure(
        self,
        server: Server,
        script: str,
        *,
        connections: int,
        duration: float,
        env: dict[str, str],
        good: tuple[int, ...],
        runs: int | None = None,
    ) -> dict[str, Any]:
        """Warm up, then ``runs`` recorded runs; ``good`` are the statuses counted as served."""
        if self.args.warmup > 0:
            wrk.run(server.url, script, connections=connections, duration=self.args.warmup, env=env)
        return summarise(
            *self.runs(lambda: self.run_once(server, script, connections, duration, env), runs),
            good,
            connections,
        )

    def runs(
        self, once: Callable[[], dict[str, Any]], count: int | None = None
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """``count`` recorded runs; one that other processes disturbed is set aside and run again."""
        count = count or self.args.runs
        kept: list[dict[str, Any]] = []
        set_aside: list[dict[str, Any]] = []
        while len(kept) < count:
            run = once()
            share = run.get("disturbance", run["cpu"]["foreign_share"])
            if share > self.args.max_foreign and len(set_aside) < count:
                log(f"  run disturbed: other processes took {share:.0%} of the machine; running it again")
                set_aside.append(run)
                continue
            kept.append(run)
        return kept, set_aside

    # -- the reference, and each database in turn ------------------------------------------------

    def references(self) -> None:
        log(f"argon2id reference ({self.profile.name}): {self.cores} processes verifying at once")
        name, count = self.profile.name, 30 if self.profile.memory_cost > 1000 else 300

        def metered(measure: Callable[[], tuple[float, float]]) -> Callable[[], dict[str, Any]]:
            def once() -> dict[str, Any]:
                if self.args.quiet_wait > 0:
                    procfs.wait_until_quiet(self.args.quiet_wait)
                with procfs.CpuMeter([]) as meter:
                    value, cpu = measure()
                return {"value": value, "cpu_per_verify_ms": cpu * 1000, "cpu": meter.result}

            return once

        rates = self.runs(metered(lambda: reference.verify_load(name, self.cores, seconds=4.0)))

        def one_verify() -> tuple[float, float]:
            wall, cpu = reference.verify_time_and_cpu(name, count)
            return wall * 1000, cpu

        ones = self.runs(metered(one_verify))
        self.results["reference"] = {
            "verify_per_s_all_cores": spread(r["value"] for r in rates[0]),
            "one_verify_ms": spread(r["value"] for r in ones[0]),
            "cpu_per_verify_ms": spread(r["cpu_per_verify_ms"] for r in rates[0]),
            "processes": self.cores,
            "runs": {"all_cores": rates[0], "one": ones[0]},
            "set_aside_runs": {"all_cores": rates[1], "one": ones[1]},
        }
        rate = self.results["reference"]["verify_per_s_all_cores"]["median"]
        one = self.results["reference"]["one_verify_ms"]["median"]
        log(
            f"  {rate:.1f} verifies/s with all cores; one verify {one:.1f} ms "
            f"({1000 / one:.1f}/s on one core: all cores give {rate * one / 1000:.2f}x one)"
        )

    def make_hashes(self) -> None:
        started = time.monotonic()
        self.hashes = dataset.real_hashes(self.args.real_hashes, self.profile.name, self.cores)
        log(f"{len(self.hashes)} real {self.profile.name} hashes in {time.monotonic() - started:.0f} s")

    def database(self, db: dataset.Database) -> None:
        """Every figure --only asks for, on one database loaded to the first --growth size."""
        args = self.args
        out: dict[str, Any] = {"url": db.url.split("@")[-1] if "@" in db.url else "sqlite (scratch file)"}
        self.results["databases"][db.name] = out
        procfs.POSTGRES_DATABASE = getattr(db, "database", None)
        rng = random.Random(20_251_123)
        sizes = args.growth_sizes
        log(f"[{db.name}] migrate, load {sizes[0]:,} users and sessions")
        db.migrate()
        stages = [dataset.Stage(0, sizes[0])]
        started = time.monotonic()
        db.load(stages[0], self.hashes, args.tokens, rng)
        out["load_s"] = {str(sizes[0]): round(time.monotonic() - started, 1)}
        users = sizes[0]
        tokens = stages[0].tokens

        if "session" in args.parts:
            out["session"] = figures_session.measure(self, db, tokens)

        if args.parts & {"flood", "login", "latency"}:
            with self.doorward(db) as server:
                defaults = Settings.model_construct()  # the defaults alone, not this environment's
                out["server_defaults"] = self.server_settings() | {
                    "workers": str(self.cores),
                    "hash_workers (default)": str(defaults.hash_workers),
                    "hash_queue (default)": str(defaults.hash_queue),
                }
                if "flood" in args.parts:
                    out["flood"] = figures_flood.measure(self, server, tokens, users, db.name)
                figures_login.measure(self, server, db.name, users, out)

        if "flows" in args.parts:
            out["flows"] = figures_flows.measure(self, db, tokens)

        if "growth" in args.parts:
            out["growth"] = figures_growth.measure(self, db, rng, users, tokens, out["load_s"])
