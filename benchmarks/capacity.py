"""The capacity model's check: CPU per request measured on one instance, then several instances over one
PostgreSQL behind pgbouncer (transaction mode), driven by wrk, against what the model predicts.

    .venv/bin/python benchmarks/capacity.py                  # about 3 minutes on a 2-core machine
    .venv/bin/python benchmarks/capacity.py --render         # redo results/capacity.md from the JSON

1. Calibration: one ``doorward serve --workers W`` through pgbouncer, wrk alone on it; logins, then
   session checks; CPU per request by process from /proc (procfs.CpuMeter, pgbouncer apart). With
   ``--redis``, logins again with the throttle in Redis.
2. Check: ``--instances`` of the same serve, each its own wrk, all at once; logins, then checks.
   The model predicts the machine's rate as its cores over the CPU one request takes on it, all
   processes counted (wrk, pgbouncer and PostgreSQL share the cores here).

Writes results/capacity.json (every run, the load on the machine) and results/capacity.md (the model's
figures and the prediction beside the measurement). benchmarks/CAPACITY.md reads them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import capacity_model
import capacity_procs
import capacity_report
import dataset
import harness
import launch
import procfs
import reference
import wrk
from harness import in_background, log
from launch import Server

RESULTS = harness.HERE / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--instances", type=int, default=4, help="instances in the check (default 4)")
    parser.add_argument("--workers", type=int, default=1, help="serve --workers of each (default 1)")
    parser.add_argument(
        "--hash-workers",
        type=int,
        default=1,
        help="DOORWARD_HASH_WORKERS of each (default 1; 0: its default)",
    )
    parser.add_argument("--users", type=int, default=10_000, help="users and sessions loaded")
    parser.add_argument("--real-hashes", type=int, default=200, help="distinct real argon2id hashes")
    parser.add_argument("--runs", type=int, default=2, help="recorded runs per load (default 2)")
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per run (default 6)")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--login-connections", type=int, default=16, help="in all, split over instances")
    parser.add_argument("--session-connections", type=int, default=64, help="in all, split over instances")
    parser.add_argument("--pool-size", type=int, default=8, help="pgbouncer's server connections")
    parser.add_argument("--hash-profile", default="owasp-2023")
    parser.add_argument("--redis", default="", help="redis://... : also calibrate logins with Redis")
    parser.add_argument(
        "--no-direct", dest="direct", action="store_false", help="skip the calibration without pgbouncer"
    )
    parser.add_argument("--skip-check", action="store_true", help="calibrate only (tooling runs)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--render", action="store_true", help="measure nothing: redo capacity.md")
    parser.add_argument("--note", action="append", default=[])
    return parser.parse_args(argv)


class Rig:
    """The database, pgbouncer and the servers of one run, and how a load is recorded on them."""

    def __init__(self, args: argparse.Namespace, scratch: Path, db: dataset.PostgresDatabase) -> None:
        self.args, self.scratch, self.db = args, scratch, db
        self.bouncer = capacity_procs.PgBouncer(scratch, args.postgres_url, args.pool_size)
        self.tokens: list[str] = []
        self._logs = 0

    def server(self, *, direct: bool = False, **settings: str) -> Server:
        """One ``doorward serve`` through pgbouncer (``direct``: straight to PostgreSQL), as the benchmark
        suite serves (no access log; wrk a trusted proxy in front of many clients)."""
        self._logs += 1
        base = {"hash_profile": self.args.hash_profile, "access_log": "false", "trusted_proxies": "127.0.0.1"}
        if self.args.hash_workers:
            base["hash_workers"] = str(self.args.hash_workers)
        if not direct:
            base["db_pooler"] = "transaction"
        url = self.db.url if direct else self.bouncer.url(self.db.url)
        env = launch.doorward_env(url, **(base | settings))
        argv = [*launch.doorward_command(), "serve", "--host", "127.0.0.1", "--port", "{port}"]
        argv += ["--workers", str(self.args.workers), "--no-migrate"]
        return Server(f"doorward {self._logs}", argv, env, self.scratch / f"server-{self._logs}.log")

    def load_env(self, kind: str) -> dict[str, str]:
        if kind == "login":
            return {
                "BENCH_USERS": str(self.args.users),
                "BENCH_REAL": str(self.args.real_hashes),
                "BENCH_WRONG_EVERY": "2",
                "BENCH_CLIENTS": "1000000",
            }
        path = self.scratch / "tokens.txt"
        path.write_text("\n".join(self.tokens) + "\n", encoding="ascii")
        return {"BENCH_TOKENS": str(path)}

    def record(
        self, servers: list[Server], kind: str, *, touches: bool = False, delay_ms: float = 0.0
    ) -> dict[str, Any]:
        """Warm up, then ``--runs`` runs of ``kind`` (login or session): one wrk per server at once, each
        with the connections one instance gets in the check (the calibration's instance sees the same
        load as each of the check's, so their CPU per request compares).

        A session is touched (``last_seen_at`` written) at its first check a minute after the last:
        the sessions are marked seen now before a session load, so none is due during it and every
        session figure is the lookup alone. ``touches``: after the warm-up, mark every session due,
        and one run then pays each token's touch once (its count is read from the database).
        ``delay_ms``: each connection pauses that long on average between requests (a paced load)."""
        script = "login.lua" if kind == "login" else "session.lua"
        total = self.args.login_connections if kind == "login" else self.args.session_connections
        each = max(1, total // self.args.instances)
        env = self.load_env(kind) | ({"BENCH_DELAY_MS": f"{delay_ms:.2f}"} if delay_ms else {})

        def one(server: Server, duration: float) -> Callable[[], wrk.WrkResult]:
            return lambda: wrk.run(server.url, script, connections=each, duration=duration, env=env)

        def load(duration: float) -> list[wrk.WrkResult]:
            waits = [in_background(one(server, duration)) for server in servers]
            return [wait() for wait in waits]

        if kind == "session":
            capacity_procs.mark_sessions_seen(self.db.url, "0 seconds")
        load(self.args.warmup)
        runs = []
        if touches:
            capacity_procs.mark_sessions_seen(self.db.url, "2 minutes")
        for _ in range(1 if touches else self.args.runs):
            started = time.time()
            runs.append(self.once(servers, lambda: load(self.args.duration)))
            if touches:
                runs[-1]["touches"] = capacity_procs.sessions_seen_since(self.db.url, started)
        good = ("200", "401") if kind == "login" else ("200",)
        return capacity_model.summary(runs, good, each * len(servers))

    def once(self, servers: list[Server], load: Callable[[], list[wrk.WrkResult]]) -> dict[str, Any]:
        """One recorded run with the CPU by role (pgbouncer apart) and the other processes' top CPU."""
        loadavg = Path("/proc/loadavg").read_text(encoding="ascii").split()[:3]
        others = capacity_procs.OtherProcesses()
        redis = capacity_procs.redis_pids()
        pooler0, redis0 = procfs.process_cpu(self.bouncer.pid), capacity_procs.cpu_of(redis)
        irq0 = capacity_procs.interrupt_cpu()
        with procfs.CpuMeter([s.pid for s in servers]) as meter:
            results = load()
        irq = capacity_procs.interrupt_cpu() - irq0
        pooler = procfs.process_cpu(self.bouncer.pid) - pooler0
        cpu: dict[str, Any] = meter.result
        cpu["by_role_s"]["pooler"] = round(pooler, 3)
        cpu["by_role_s"]["runner"] = round(max(0.0, cpu["by_role_s"]["runner"] - pooler), 3)
        # Redis is shared with other users of this machine: its CPU is counted apart, not as ours.
        cpu["redis_s"] = round(capacity_procs.cpu_of(redis) - redis0, 3)
        # Interrupts (the loopback's packets among them) belong to no process: in "foreign" above.
        cpu["interrupts_s"] = round(irq, 3)
        ours = {pid for s in servers for pid in procfs.process_tree(s.pid)}
        return {
            "wrk": [r.as_json() for r in results],
            "cpu": cpu,
            "loadavg_before": loadavg,
            "loadavg_after": Path("/proc/loadavg").read_text(encoding="ascii").split()[:3],
            "other_processes": others.top(ours),
        }


def start_all(servers: list[Server]) -> list[Server]:
    """Start the servers side by side (each waits until its workers are up)."""
    waits = [in_background(s.start) for s in servers]
    try:
        for wait in waits:
            wait()
    except BaseException:
        for wait in waits:  # every start has ended (started or failed) before any is stopped
            with contextlib.suppress(BaseException):  # the first failure is the one raised
                wait()
        stop_all(servers)
        raise
    return servers


def stop_all(servers: list[Server]) -> None:
    for wait in [in_background(s.stop) for s in servers]:
        wait()


def measure(args: argparse.Namespace, scratch: Path, results: dict[str, Any]) -> None:
    db = dataset.PostgresDatabase(args.postgres_url)
    procfs.POSTGRES_DATABASE = db.database
    try:
        log(f"migrate, load {args.users:,} users and sessions ({args.real_hashes} real hashes)")
        hashes = dataset.real_hashes(args.real_hashes, args.hash_profile, harness.cores())
        db.migrate()
        results["table_bytes_empty"] = capacity_procs.table_bytes(db.url)
        stage = dataset.Stage(0, args.users)
        db.load(stage, hashes, 1000, random.Random(20_261_206))
        results["table_bytes"] = capacity_procs.table_bytes(db.url)
        rig = Rig(args, scratch, db)
        rig.tokens = stage.tokens
        with rig.bouncer:
            _, cpu = reference.verify_time_and_cpu(args.hash_profile, 30)
            results["raw_verify_cpu_ms"] = round(cpu * 1000, 3)
            _, cpu = reference.verify_load(args.hash_profile, harness.cores(), seconds=3.0)
            results["verify_all_cores_cpu_ms"] = round(cpu * 1000, 3)
            # What the check's instances do on this host: more hashes at once than cores (shown only).
            hashes = args.instances * (args.hash_workers or harness.cores())
            _, cpu = reference.verify_load(args.hash_profile, hashes, seconds=3.0)
            results["verify_check_hashes_cpu_ms"] = {"processes": hashes, "cpu_ms": round(cpu * 1000, 3)}
            calibration: dict[str, Any] = {}
            results["calibration"] = calibration
            log(f"calibration: one serve --workers {args.workers} through pgbouncer")
            with rig.server() as one:
                for kind in ("login", "session"):
                    log(f"  {kind}")
                    calibration[kind] = rig.record([one], kind)
                # The check's instances each run at a share of the machine's rate: CPU per check depends
                # on how busy a worker is (fewer requests per wake-up), so measure it at that rate too.
                host = capacity_model.per_request(calibration["session"])["host"]
                share = harness.cores() * 1000 / host / args.instances
                each = max(1, args.session_connections // args.instances)
                delay = max(0.1, 1000 * each / share - 1.0)
                log(f"  session, paced toward {share:,.0f}/s (a pause of {delay:.1f} ms per connection)")
                calibration["session_paced"] = rig.record([one], "session", delay_ms=delay)
                calibration["session_paced"]["target_per_s"] = round(share)
                log("  session, every token's session due for a touch")
                calibration["session_touch"] = rig.record([one], "session", touches=True)
            if args.direct:
                log("  straight to PostgreSQL (no pgbouncer): login, session")
                with rig.server(direct=True) as one:
                    for kind in ("login", "session"):
                        calibration[f"direct_{kind}"] = rig.record([one], kind)
            if args.redis:
                log("  login, throttle in Redis")
                prefix = f"doorward-capacity-{db.database}:"
                with rig.server(redis_url=args.redis, redis_prefix=prefix) as one:
                    calibration["login_redis"] = rig.record([one], "login")
            if args.skip_check:
                return
            log(f"check: {args.instances} x serve --workers {args.workers} through one pgbouncer")
            servers = start_all([rig.server() for _ in range(args.instances)])
            try:
                check: dict[str, Any] = {}
                results["check"] = check
                for kind in ("login", "session"):
                    log(f"  {kind}")
                    check[kind] = rig.record(servers, kind)
            finally:
                stop_all(servers)
    finally:
        if "calibration" in results:
            results["table_bytes_after"] = capacity_procs.table_bytes(db.url)
        db.drop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    path = args.output / "capacity.json"
    if args.render:
        results = json.loads(path.read_text(encoding="utf-8"))
    else:
        wrk.require()
        if capacity_procs.pgbouncer_binary() is None:
            sys.exit("error: pgbouncer is not installed: apt-get install pgbouncer (Debian/Ubuntu)")
        started = time.monotonic()
        results = {
            "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": harness.machine(),
            "doorward": harness.doorward_source(),
            "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "notes": list(args.note),
        }
        with tempfile.TemporaryDirectory(prefix="doorward-capacity-") as scratch:
            measure(args, Path(scratch), results)
        results["duration_s"] = round(time.monotonic() - started)
    results["model"] = capacity_model.model(results)
    args.output.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    text = "\n".join(capacity_report.markdown(results)) + "\n"
    (args.output / "capacity.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
