"""Figures 1 and 2: login throughput and latency, each run beside its argon2id reference."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import procfs
import reference
import wrk
from harness import log, spread, summarise
from launch import Server

if TYPE_CHECKING:
    from suite import Suite


def measure(suite: Suite, server: Server, db: str, users: int, out: dict[str, Any]) -> None:
    """Figures 1 and 2 on this server, as --only asks."""
    if "login" in suite.args.parts:
        log(f"[{db}] 1. login throughput, {suite.args.login_connections} connections")
        out["login_throughput"] = login_vs_reference(
            suite, server, suite.args.login_connections, users, latency=False
        )
    if "latency" in suite.args.parts:
        log(f"[{db}] 2. login latency, {suite.cores} connections")
        out["login_latency"] = login_vs_reference(suite, server, suite.cores, users, latency=True)


def login_vs_reference(
    suite: Suite, server: Server, connections: int, users: int, *, latency: bool
) -> dict[str, Any]:
    """Login runs, each right after a run of its argon2id reference, so drift affects both alike.

    The reference of throughput is the verify rate with every core busy; that of latency, one
    verify's time alone. The server is idle while its reference runs.
    """
    args = suite.args
    env = suite.login_env(users)
    if args.warmup > 0:
        wrk.run(server.url, "login.lua", connections=connections, duration=args.warmup, env=env)
    name, count = suite.profile.name, 30 if suite.profile.memory_cost > 1000 else 300

    def pair() -> dict[str, Any]:
        if args.quiet_wait > 0:
            procfs.wait_until_quiet(args.quiet_wait)
        with procfs.CpuMeter([server.pid]) as meter:
            if latency:
                value, cpu = reference.verify_time_and_cpu(name, count)
                value *= 1000
            else:
                value, cpu = reference.verify_load(name, suite.cores, seconds=4.0)
        run = suite.run_once(server, "login.lua", connections, args.duration, env)
        run["reference"] = {"value": value, "cpu_per_verify_ms": cpu * 1000, "cpu": meter.result}
        run["disturbance"] = max(run["cpu"]["foreign_share"], meter.result["foreign_share"])
        return run

    kept, set_aside = suite.runs(pair)
    summary = summarise(kept, set_aside, (200, 401), connections)
    summary["reference"] = {
        "what": "one_verify_ms" if latency else "verify_per_s_all_cores",
        "value": spread(run["reference"]["value"] for run in kept),
    }
    summary["foreign_share_max"] = max(run["disturbance"] for run in kept)
    return summary
