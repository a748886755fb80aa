"""doorward's benchmark suite: each figure beside its reference, measured in the same run, as a ratio.

Real ``doorward serve`` processes (workers = cores), real databases (SQLite; PostgreSQL when one
answers: a throw-away database per run, dropped at the end), wrk with Lua scripts as the client.
Every figure is the median of several runs, with min and max; the raw runs go to the JSON.

    .venv/bin/python benchmarks/run.py                        # everything, about 15 minutes
    .venv/bin/python benchmarks/run.py --only session --db sqlite
    .venv/bin/python benchmarks/run.py --growth 10000,100000  # a shorter growth series
    .venv/bin/python benchmarks/run.py --profile              # also py-spy the session check

Writes benchmarks/results/latest.json, latest.md and chart.png; prints the Markdown table.
See benchmarks/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dataset
import harness
import launch
import procfs
import reference
import wrk
from harness import log, spread, summarise, total_statuses
from launch import Server

from doorward.config import Settings
from doorward.core.profiles import PROFILES

RESULTS = harness.HERE / "results"
ALL_PARTS = ("login", "latency", "session", "flood", "growth")


# --- configuration --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--db", default="sqlite,postgresql", help="sqlite, postgresql or both (default)")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--only", default=",".join(ALL_PARTS), help=f"some of: {','.join(ALL_PARTS)}")
    parser.add_argument(
        "--growth",
        default="10000,100000,1000000",
        help="users and sessions in the database at each growth step; the first is also the size "
        "every other figure runs at (default 10000,100000,1000000)",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (default 3)")
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per wrk run (default 6)")
    parser.add_argument("--growth-duration", type=float, default=4.0, help="seconds per growth run")
    parser.add_argument("--warmup", type=float, default=2.0, help="unrecorded seconds before each figure")
    parser.add_argument("--hash-profile", default="owasp-2023", choices=sorted(PROFILES))
    parser.add_argument("--real-hashes", type=int, default=1000, help="distinct real argon2id hashes")
    parser.add_argument("--tokens", type=int, default=1000, help="distinct session tokens wrk rotates")
    parser.add_argument("--login-connections", type=int, default=16)
    parser.add_argument(
        "--session-connections",
        default="16,64",
        help="wrk connections for the session figure, one or more (growth uses the first)",
    )
    parser.add_argument("--flood-factor", type=float, default=10.0, help="flood = this x hashing capacity")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=30.0,
        help="most seconds to wait, before a run, for other work on the machine to end (0: do not wait)",
    )
    parser.add_argument(
        "--max-foreign",
        type=float,
        default=0.15,
        help="a run during which other processes took more than this share of the machine "
        "is set aside (kept in the JSON) and run again, up to --runs more times",
    )
    parser.add_argument("--profile", action="store_true", help="also profile the session check with py-spy")
    parser.add_argument(
        "--render",
        action="store_true",
        help="measure nothing: redraw latest.md and chart.png from latest.json",
    )
    parser.add_argument("--note", action="append", default=[], help="a line to add to the notes")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (logs, SQLite)")
    args = parser.parse_args(argv)
    args.dbs = [d.strip() for d in args.db.split(",") if d.strip()]
    args.parts = {p.strip() for p in args.only.split(",") if p.strip()}
    args.session_conns = [int(c) for c in args.session_connections.split(",") if c.strip()]
    args.growth_sizes = sorted({int(n.replace("_", "")) for n in args.growth.split(",") if n.strip()})
    unknown = args.parts - set(ALL_PARTS)
    if unknown or not args.growth_sizes or set(args.dbs) - {"sqlite", "postgresql"}:
        parser.error(f"unknown --only parts {sorted(unknown)} or bad --db/--growth")
    return args


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
            settings["access_log"] = "false"
        if self.many_clients:
            # wrk plays a reverse proxy in front of many clients (login.lua's X-Forwarded-For).
            settings["trusted_proxies"] = "127.0.0.1"
        return settings

    def doorward(self, db: dataset.Database) -> Server:
        self._logs += 1
        env = launch.doorward_env(db.url, **self.server_settings())
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
    ) -> dict[str, Any]:
        """One recorded wrk run, with the CPU accounting and the connections per worker."""
        waiting = quiet and self.args.quiet_wait > 0
        waited = procfs.wait_until_quiet(self.args.quiet_wait) if waiting else 0.0
        spread_seen: list[list[int]] = []

        def look() -> None:
            time.sleep(min(1.0, duration / 4))
            spread_seen.append(launch.connections_per_worker(server))

        probe = harness.in_background(look)
        with procfs.CpuMeter([server.pid]) as meter:
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

    # -- the parts -------------------------------------------------------------------------------

    def references(self) -> None:
        log(f"argon2id reference ({self.profile.name}): {self.cores} processes verifying at once")
        name, count = self.profile.name, 30 if self.profile.memory_cost > 1000 else 300

        def metered(measure: Callable[[], float]) -> Callable[[], dict[str, Any]]:
            def once() -> dict[str, Any]:
                if self.args.quiet_wait > 0:
                    procfs.wait_until_quiet(self.args.quiet_wait)
                with procfs.CpuMeter([]) as meter:
                    value = measure()
                return {"value": value, "cpu": meter.result}

            return once

        rates = self.runs(metered(lambda: reference.verify_rate(name, self.cores, seconds=4.0)))
        ones = self.runs(metered(lambda: reference.verify_time(name, count) * 1000))
        self.results["reference"] = {
            "verify_per_s_all_cores": spread(r["value"] for r in rates[0]),
            "one_verify_ms": spread(r["value"] for r in ones[0]),
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
            with self.doorward(db) as server, self.bare() as bare:
                out["session"] = {}
                for connections in args.session_conns:
                    ours, theirs = self.session_vs_bare(server, bare, tokens, db.name, connections)
                    out["session"][str(connections)] = {"doorward": ours, "bare": theirs}
                    if args.profile:
                        out["session"][str(connections)]["profile"] = self.profile_session(
                            server, tokens, db.name, connections
                        )

        if args.parts & {"flood", "login", "latency"}:
            with self.doorward(db) as server:
                defaults = Settings.model_construct()  # the defaults alone, not this environment's
                out["server_defaults"] = self.server_settings() | {
                    "workers": str(self.cores),
                    "hash_workers (default)": str(defaults.hash_workers),
                    "hash_queue (default)": str(defaults.hash_queue),
                }
                if "flood" in args.parts:
                    out["flood"] = self.flood(server, tokens, users, db.name)
                self.login_figures(server, db.name, users, out)

        if "growth" in args.parts:
            out["growth"] = {}
            for index, size in enumerate(sizes):
                if index > 0:
                    log(f"[{db.name}] 6. load up to {size:,} users and sessions")
                    stage = dataset.Stage(sizes[index - 1], size)
                    started = time.monotonic()
                    db.load(stage, self.hashes, args.tokens, rng)
                    out["load_s"][str(size)] = round(time.monotonic() - started, 1)
                    users, tokens = size, stage.tokens
                log(f"[{db.name}] 6. growth at {size:,}: session check and login")
                with self.doorward(db) as server:
                    out["growth"][str(size)] = {
                        "session": self.measure(
                            server,
                            "session.lua",
                            connections=args.session_conns[0],
                            duration=args.growth_duration,
                            env=self.token_env(tokens, f"{db.name}-{size}"),
                            good=(200,),
                        ),
                        "login": self.measure(
                            server,
                            "login.lua",
                            connections=args.login_connections,
                            duration=args.growth_duration,
                            env=self.login_env(users),
                            good=(200, 401),
                        ),
                    }

    def login_figures(self, server: Server, db: str, users: int, out: dict[str, Any]) -> None:
        """Figures 1 and 2 on this server, as --only asks."""
        if "login" in self.args.parts:
            log(f"[{db}] 1. login throughput, {self.args.login_connections} connections")
            out["login_throughput"] = self.login_vs_reference(
                server, self.args.login_connections, users, latency=False
            )
        if "latency" in self.args.parts:
            log(f"[{db}] 2. login latency, {self.cores} connections")
            out["login_latency"] = self.login_vs_reference(server, self.cores, users, latency=True)

    def login_vs_reference(
        self, server: Server, connections: int, users: int, *, latency: bool
    ) -> dict[str, Any]:
        """Login runs, each right after a run of its argon2id reference, so drift affects both alike.

        The reference of throughput is the verify rate with every core busy; that of latency, one
        verify's time alone. The server is idle while its reference runs.
        """
        args = self.args
        env = self.login_env(users)
        if args.warmup > 0:
            wrk.run(server.url, "login.lua", connections=connections, duration=args.warmup, env=env)
        name, count = self.profile.name, 30 if self.profile.memory_cost > 1000 else 300

        def pair() -> dict[str, Any]:
            if args.quiet_wait > 0:
                procfs.wait_until_quiet(args.quiet_wait)
            with procfs.CpuMeter([server.pid]) as meter:
                if latency:
                    value = reference.verify_time(name, count) * 1000
                else:
                    value = reference.verify_rate(name, self.cores, seconds=4.0)
            run = self.run_once(server, "login.lua", connections, args.duration, env)
            run["reference"] = {"value": value, "cpu": meter.result}
            run["disturbance"] = max(run["cpu"]["foreign_share"], meter.result["foreign_share"])
            return run

        kept, set_aside = self.runs(pair)
        summary = summarise(kept, set_aside, (200, 401), connections)
        summary["reference"] = {
            "what": "one_verify_ms" if latency else "verify_per_s_all_cores",
            "value": spread(run["reference"]["value"] for run in kept),
        }
        summary["foreign_share_max"] = max(run["disturbance"] for run in kept)
        return summary

    def session_vs_bare(
        self, server: Server, bare: Server, tokens: list[str], name: str, connections: int
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """doorward's and the bare app's runs interleaved, so drift affects both alike."""
        args = self.args
        log(f"[{name}] 3. session check vs bare Starlette, {connections} connections")
        env = self.token_env(tokens, name)
        for target in (server, bare):
            wrk.run(target.url, "session.lua", connections=connections, duration=args.warmup, env=env)
        pairs = self.runs(lambda: self._pair(server, bare, connections, env))
        ours = ([p["doorward"] for p in pairs[0]], [p["doorward"] for p in pairs[1]])
        theirs = ([p["bare"] for p in pairs[0]], [p["bare"] for p in pairs[1]])
        return summarise(*ours, (200,), connections), summarise(*theirs, (200,), connections)

    def _pair(self, server: Server, bare: Server, connections: int, env: dict[str, str]) -> dict[str, Any]:
        ours = self.run_once(server, "session.lua", connections, self.args.duration, env)
        theirs = self.run_once(bare, "session.lua", connections, self.args.duration, env)
        worst = max(ours["cpu"]["foreign_share"], theirs["cpu"]["foreign_share"])
        return {"doorward": ours, "bare": theirs, "cpu": {"foreign_share": worst}}

    def flood(self, server: Server, tokens: list[str], users: int, name: str) -> dict[str, Any]:
        """Session checks at a steady pace, without and then during a login flood; RSS throughout."""
        args = self.args
        probe_connections, probe_delay = 8, 10.0
        probe_env = self.token_env(tokens, f"{name}-probe", delay_ms=probe_delay)
        wrk.run(server.url, "session.lua", connections=probe_connections, duration=args.warmup, env=probe_env)
        time.sleep(0.5)
        idle_rss = procfs.tree_rss_bytes(server.pid)
        log(
            f"[{name}] 4. session probe without flood ({probe_connections} connections, "
            f"{probe_delay:g} ms pause)"
        )
        without = self.runs(
            lambda: self.run_once(server, "session.lua", probe_connections, args.duration, probe_env)
        )

        capacity = self.results["reference"]["verify_per_s_all_cores"]["median"]
        target = args.flood_factor * capacity
        flood_connections = 1024
        # Connections holding a hashing slot or a queue place do not cycle; the rest pace themselves.
        held = self.cores * (self.cores + 8 * self.cores)
        delay_ms = max(1.0, (flood_connections - held) / target * 1000)
        flood_env = self.login_env(users)
        for _ in range(2):  # calibrate the pause to reach the target rate
            calib = wrk.run(
                server.url,
                "login.lua",
                connections=flood_connections,
                duration=3,
                env=flood_env | {"BENCH_DELAY_MS": f"{delay_ms:.1f}"},
            )
            delay_ms = max(1.0, delay_ms * calib.rate / target)
        flood_env["BENCH_DELAY_MS"] = f"{delay_ms:.1f}"
        log(
            f"[{name}] 4-5. session probe during a login flood of {args.flood_factor:g}x "
            f"{capacity:.0f}/s ({flood_connections} connections, {delay_ms:.0f} ms pause)"
        )

        def flooded() -> dict[str, Any]:
            run_flood = harness.in_background(
                lambda: wrk.run(
                    server.url,
                    "login.lua",
                    connections=flood_connections,
                    duration=args.duration + 2,
                    env=flood_env,
                )
            )
            time.sleep(1.0)
            run = self.run_once(
                server, "session.lua", probe_connections, args.duration, probe_env, quiet=False
            )
            run["flood"] = run_flood().as_json()
            return run

        with procfs.RssSampler(server.pid) as sampler:
            during = self.runs(flooded)
        profile = (
            self.profile_flood(server, flood_connections, flood_env, probe_env, name)
            if args.profile
            else None
        )
        # The defaults: hash_workers hashing processes (the cores), shared by the workers.
        concurrent = Settings.model_construct().hash_workers
        argon2_bytes = concurrent * self.profile.memory_cost * 1024
        return {
            "probe": {"connections": probe_connections, "pause_ms": probe_delay},
            "without": summarise(*without, (200,), probe_connections),
            "during": summarise(*during, (200,), probe_connections),
            "flood_offered_per_s": spread(run["flood"]["req_per_s"] for run in during[0]),
            "flood_statuses": total_statuses(run["flood"] for run in during[0]),
            "flood_target_per_s": round(target, 1),
            "flood_connections": flood_connections,
            "flood_pause_ms": round(delay_ms, 1),
            "profile": profile,
            "rss": {
                "idle_mib": idle_rss / 2**20,
                "peak_mib": sampler.peak / 2**20,
                "samples": sampler.samples,
                "concurrent_hashes_bound": concurrent,
                "argon2_mib": argon2_bytes / 2**20,
                "bound_mib": (idle_rss + argon2_bytes) / 2**20,
            },
        }

    def profile_flood(
        self,
        server: Server,
        connections: int,
        flood_env: dict[str, str],
        probe_env: dict[str, str],
        name: str,
    ) -> dict[str, Any]:
        """Where the server's time goes during a login flood: one more flood, not recorded, under py-spy."""
        import profiling

        if profiling.py_spy() is None:
            return {"error": "py-spy not installed"}
        log(f"[{name}] profile during the flood (py-spy)")
        collapsed = self.args.output / f"profile-flood-{name}.txt"
        seconds = self.args.duration
        run_flood = harness.in_background(
            lambda: wrk.run(
                server.url, "login.lua", connections=connections, duration=seconds + 3, env=flood_env
            )
        )
        time.sleep(1.0)
        spy = profiling.record(server.pid, seconds, collapsed)
        probe = wrk.run(server.url, "session.lua", connections=8, duration=seconds, env=probe_env)
        spy.wait(timeout=60)
        run_flood()
        if spy.returncode != 0 or not collapsed.exists():
            stderr = spy.stderr.read().decode(errors="replace") if spy.stderr else ""
            return {"error": f"py-spy failed: {stderr.strip()[-300:]}"}
        summary = profiling.summarise(collapsed).as_json()
        summary["what"] = "py-spy of the server during one more, unrecorded, flood with the probe"
        summary["probe_req_per_s_while_profiled"] = round(probe.rate, 1)
        summary["collapsed_stacks"] = collapsed.name
        return summary

    def profile_session(
        self, server: Server, tokens: list[str], name: str, connections: int
    ) -> dict[str, Any]:
        import profiling

        if profiling.py_spy() is None:
            log("  py-spy is not installed: no profile")
            return {"error": "py-spy not installed"}
        log(f"[{name}] profile of the session check, {connections} connections (py-spy)")
        collapsed = self.args.output / f"profile-session-{name}-{connections}.txt"
        env = self.token_env(tokens, name)
        spy = profiling.record(server.pid, self.args.duration, collapsed)
        time.sleep(1.0)  # py-spy attaches
        result = wrk.run(
            server.url, "session.lua", connections=connections, duration=self.args.duration, env=env
        )
        spy.wait(timeout=60)
        if spy.returncode != 0 or not collapsed.exists():
            stderr = spy.stderr.read().decode(errors="replace") if spy.stderr else ""
            return {"error": f"py-spy failed: {stderr.strip()[-300:]}"}
        summary = profiling.summarise(collapsed).as_json()
        summary["req_per_s_while_profiled"] = round(result.rate, 1)
        summary["collapsed_stacks"] = collapsed.name
        return summary


# --- the table ------------------------------------------------------------------------------------


def crowded_note(runs: list[dict[str, Any]]) -> str:
    """How many runs had every connection on one worker: with few connections that, not the
    server, can decide a latency median (see "Where connections land" in benchmarks/README.md)."""
    placements = [r.get("connections_per_worker") or [] for r in runs]
    known = [p for p in placements if len(p) > 1 and sum(p) > 1]
    if not known:
        return ""
    crowded = sum(1 for p in known if max(p) == sum(p))
    return f"; all connections on one worker in {crowded} of {len(known)} runs"


def fmt_spread(s: dict[str, Any], unit: str = "", digits: int = 0) -> str:
    f = f"{{:,.{digits}f}}"
    return f"{f.format(s['median'])}{unit} ({f.format(s['min'])}-{f.format(s['max'])})"


def verdict(ratio: float, goal: float, higher_is_better: bool, bar: float | None = None) -> str:
    ok = ratio >= goal if higher_is_better else ratio <= goal
    if ok:
        return "met"
    if bar is not None and (ratio >= bar if higher_is_better else ratio <= bar):
        return "missed goal, meets bar"
    return "**missed**"


def figures(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every figure as a row: what, doorward's value, the reference, the ratio, the goal."""
    rows: list[dict[str, Any]] = []
    ref = results.get("reference", {})
    rate = ref.get("verify_per_s_all_cores", {}).get("median")
    one = ref.get("one_verify_ms", {}).get("median")
    cores = results["machine"]["nproc"]
    threshold = results["options"].get("max_foreign", 0.15)
    ref_runs = [*ref.get("runs", {}).get("all_cores", []), *ref.get("runs", {}).get("one", [])]
    ref_disturbance = {"foreign_share_max": max((r["cpu"]["foreign_share"] for r in ref_runs), default=0.0)}

    def add(
        db: str,
        key: str,
        figure: str,
        value: str,
        reference_: str,
        ratio: float | None,
        goal: str,
        status: str,
        sources: list[dict[str, Any]],
    ) -> None:
        foreign = max(source.get("foreign_share_max", 0.0) for source in sources)
        if foreign > threshold:
            status = f"{status} (disturbed: {foreign:.0%})".strip()
        rows.append(
            {
                "db": db,
                "key": key,
                "figure": figure,
                "value": value,
                "reference": reference_,
                "ratio": None if ratio is None else round(ratio, 3),
                "goal": goal,
                "status": status,
                "foreign_share_max": foreign,
            }
        )

    for db, out in results["databases"].items():
        key, label = "login_throughput", "1. login throughput"
        if key in out and rate:
            m = out[key]
            own_rate = m.get("reference", {}).get("value", {}).get("median", rate)
            r = m["served_per_s"]["median"] / own_rate
            extra = [f"{code}: {n}" for code, n in m["statuses"].items() if code not in {"200", "401"}]
            value = fmt_spread(m["served_per_s"], "/s", 1) + (f"; {', '.join(extra)}" if extra else "")
            add(
                db,
                key,
                label,
                value,
                f"{own_rate:.1f} verifies/s (argon2id, all cores; runs interleaved)",
                r,
                "≥ 0.95 (bar 0.90)",
                verdict(r, 0.95, True, 0.90),
                [m, ref_disturbance],
            )
        key, label = "login_latency", "2. login latency"
        if key in out and one:
            m = out[key]
            own_one = m.get("reference", {}).get("value", {}).get("median", one)
            p50, p99 = m["p50_ms"]["median"] / own_one, m["p99_ms"]["median"] / own_one
            reference_ = (
                f"{own_one:.1f} ms (one verify, interleaved; for context {cores * 1000 / rate:.1f} ms "
                f"each with {cores} verifying at once)"
            )
            add(
                db,
                key + ".p50",
                label + f" p50, {m['connections']} conns",
                fmt_spread(m["p50_ms"], " ms", 1) + crowded_note(m.get("runs", [])),
                reference_,
                p50,
                "≤ 1.2",
                verdict(p50, 1.2, False),
                [m, ref_disturbance],
            )
            add(
                db,
                key + ".p99",
                label + " p99",
                fmt_spread(m["p99_ms"], " ms", 1),
                reference_,
                p99,
                "≤ 2",
                verdict(p99, 2.0, False),
                [m, ref_disturbance],
            )
        for conns, pair in sorted(out.get("session", {}).items(), key=lambda kv: int(kv[0])):
            m, b = pair["doorward"], pair["bare"]
            r = m["served_per_s"]["median"] / b["served_per_s"]["median"]
            add(
                db,
                f"session_throughput.{conns}",
                f"3. session check throughput, {conns} conns",
                fmt_spread(m["served_per_s"], "/s") + f"; p50 {m['p50_ms']['median']:.1f} ms, "
                f"p99 {m['p99_ms']['median']:.1f} ms",
                f"{b['served_per_s']['median']:,.0f}/s bare Starlette (p50 {b['p50_ms']['median']:.1f} ms, "
                f"p99 {b['p99_ms']['median']:.1f} ms)",
                r,
                "≥ 0.5",
                verdict(r, 0.5, True),
                [m, b],
            )
        if "flood" in out:
            f = out["flood"]
            during, without = f["during"]["p99_ms"]["median"], f["without"]["p99_ms"]["median"]
            multiple = f["flood_offered_per_s"]["median"] / rate if rate else 0
            flood_runs = [run["flood"] for run in f["during"]["runs"]]
            timeouts = sum(run["errors"]["timeout"] for run in flood_runs)
            add(
                db,
                "flood_p99",
                f"4. session p99 during a login flood ({f['flood_connections']} conns, "
                f"{f['flood_pause_ms']:g} ms pause; target {f['flood_target_per_s']:.0f}/s)",
                fmt_spread(f["during"]["p99_ms"], " ms", 1)
                + (
                    f" ({f['during']['unanswered_runs']} run(s) got no answer at all: counted as the run's "
                    "length, a lower bound)"
                    if f["during"].get("unanswered_runs")
                    else ""
                )
                + f" at {f['during']['served_per_s']['median']:,.1f}/s; the flood got "
                f"{f['flood_offered_per_s']['median']:.1f} answers/s ({multiple:.1f}x capacity), "
                f"{timeouts} timed out (10 s)",
                fmt_spread(f["without"]["p99_ms"], " ms", 1)
                + f" without, at {f['without']['served_per_s']['median']:,.0f}/s",
                during / without,
                "≤ 3",
                verdict(during / without, 3.0, False),
                [f["during"], f["without"]],
            )
            rss = f["rss"]
            add(
                db,
                "flood_rss",
                "5. peak server RSS during the flood",
                f"{rss['peak_mib']:.0f} MiB",
                f"{rss['bound_mib']:.0f} MiB = idle {rss['idle_mib']:.0f} + {rss['concurrent_hashes_bound']}"
                f" x {rss['argon2_mib'] / rss['concurrent_hashes_bound']:.0f} MiB argon2",
                rss["peak_mib"] / rss["bound_mib"],
                "≤ 1",
                verdict(rss["peak_mib"] / rss["bound_mib"], 1.0, False),
                [f["during"]],
            )
        growth = out.get("growth", {})
        if len(growth) >= 2:
            sizes = sorted(growth, key=int)
            first, last = growth[sizes[0]], growth[sizes[-1]]
            for what in ("session", "login"):
                a, z = first[what]["served_per_s"]["median"], last[what]["served_per_s"]["median"]
                r = a / z  # cost = 1 / throughput
                add(
                    db,
                    f"growth_{what}",
                    f"6. {what} cost at {int(sizes[-1]):,} ÷ at {int(sizes[0]):,} rows",
                    f"{z:,.1f}/s (p50 {last[what]['p50_ms']['median']:.1f} ms)",
                    f"{a:,.1f}/s (p50 {first[what]['p50_ms']['median']:.1f} ms)",
                    r,
                    "≤ 1.3",
                    verdict(r, 1.3, False),
                    [first[what], last[what]],
                )
    return rows


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"doorward benchmarks, {results['timestamp']}: {m['nproc']} cores ({m['cpu_model']}), "
        f"{m['memory_gib']} GiB, Python {m['python']}, hash profile {results['hash_profile']['name']}. "
        'Median of runs (min-max). "disturbed: N%": other processes on the machine took up to N% of its '
        "CPU during a run the figure kept; such a figure is not a clean measurement.",
        "",
        "| db | figure | doorward | reference (same run) | ratio | goal | |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in results["figures"]:
        ratio = "" if row["ratio"] is None else f"{row['ratio']:.2f}"
        lines.append(
            f"| {row['db']} | {row['figure']} | {row['value']} | {row['reference']} | {ratio} | "
            f"{row['goal']} | {row['status']} |"
        )
    foreign = [
        (db, key, v["foreign_share_max"])
        for db, out in results["databases"].items()
        for key, v in _measurements(out)
        if v.get("foreign_share_max", 0) > 0.05
    ]
    if foreign:
        worst = max(foreign, key=lambda x: x[2])
        lines += [
            "",
            f"Other processes took over 5% of the machine during {len(foreign)} figure(s) "
            f"(worst: {worst[0]} {worst[1]}, {worst[2]:.0%}); see foreign_share in the JSON.",
        ]
    for note in results.get("notes", []):
        lines += ["", note]
    return "\n".join(lines) + "\n"


def _measurements(out: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for key, value in out.items():
        if isinstance(value, dict) and "foreign_share_max" in value:
            yield key, value
    for conns, pair in out.get("session", {}).items():
        yield f"session.{conns}.doorward", pair["doorward"]
        yield f"session.{conns}.bare", pair["bare"]
    if "flood" in out:
        yield "flood.during", out["flood"]["during"]
        yield "flood.without", out["flood"]["without"]
    for size, stage in out.get("growth", {}).items():
        for what, value in stage.items():
            yield f"growth.{size}.{what}", value


# --- main -----------------------------------------------------------------------------------------


@contextmanager
def scratch_directory(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="doorward-bench-"))
    try:
        yield path
    finally:
        if keep:
            log(f"scratch directory kept: {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import chart
    except ImportError as exc:
        sys.exit(f"error: {exc.name} is not installed: pip install -e '.[bench]' (it draws the chart)")
    if args.render:
        results = json.loads((args.output / "latest.json").read_text(encoding="utf-8"))
        results["figures"] = figures(results)
        write_json(args.output / "latest.json", results)
        (args.output / "latest.md").write_text(markdown(results), encoding="utf-8")
        chart.draw(results, args.output / "chart.png")
        print(markdown(results))
        return 0
    wrk.require()
    args.output.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with scratch_directory(args.keep) as scratch:
        suite = Suite(args, scratch)
        results = suite.results
        if not suite.many_clients:
            results["notes"].append(
                "This doorward has no DOORWARD_TRUSTED_PROXIES: every login came from 127.0.0.1."
            )
        databases: list[Callable[[], dataset.Database]] = []
        if "sqlite" in args.dbs:
            databases.append(lambda: dataset.SqliteDatabase(scratch))
        if "postgresql" in args.dbs:
            why = dataset.PostgresDatabase.available(args.postgres_url)
            if why is None:
                databases.append(lambda: dataset.PostgresDatabase(args.postgres_url))
            else:
                note = f"PostgreSQL skipped: {args.postgres_url.split('@')[-1]} did not answer ({why})."
                results["notes"].append(note)
                log(note)
        suite.references()
        suite.make_hashes()
        for make in databases:
            db = make()
            try:
                suite.database(db)
            finally:
                db.drop()
            results["figures"] = figures(results)
            write_json(args.output / "latest.json", results)  # what is done so far survives a crash
        results["duration_s"] = round(time.monotonic() - started)
        results["figures"] = figures(results)
        table = markdown(results)
        write_json(args.output / "latest.json", results)
        (args.output / "latest.md").write_text(table, encoding="utf-8")
        chart.draw(results, args.output / "chart.png")
    print(table)
    log(f"done in {results['duration_s'] / 60:.1f} min: {args.output}/latest.json, latest.md, chart.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
