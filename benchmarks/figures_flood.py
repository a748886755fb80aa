"""Figures 4 and 5: the session check's p99 without and during a login flood, and the server's peak RSS."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import procfs
import wrk
from harness import in_background, log, spread, summarise, total_statuses
from launch import Server

from doorward.config import Settings

if TYPE_CHECKING:
    from suite import Suite


def measure(suite: Suite, server: Server, tokens: list[str], users: int, name: str) -> dict[str, Any]:
    """Session checks at a steady pace, without and then during a login flood; RSS throughout."""
    args = suite.args
    probe_connections, probe_delay = 8, 10.0
    probe_env = suite.token_env(tokens, f"{name}-probe", delay_ms=probe_delay)
    wrk.run(server.url, "session.lua", connections=probe_connections, duration=args.warmup, env=probe_env)
    time.sleep(0.5)
    idle_rss = procfs.tree_rss_bytes(server.pid)
    log(
        f"[{name}] 4. session probe without flood ({probe_connections} connections, {probe_delay:g} ms pause)"
    )
    without = suite.runs(
        lambda: suite.run_once(server, "session.lua", probe_connections, args.duration, probe_env)
    )

    capacity = suite.results["reference"]["verify_per_s_all_cores"]["median"]
    target = args.flood_factor * capacity
    flood_connections = 1024
    # Connections holding a hashing slot or a queue place do not cycle; the rest pace themselves.
    held = suite.cores * (suite.cores + 8 * suite.cores)
    delay_ms = max(1.0, (flood_connections - held) / target * 1000)
    flood_env = suite.login_env(users)
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
        run_flood = in_background(
            lambda: wrk.run(
                server.url,
                "login.lua",
                connections=flood_connections,
                duration=args.duration + 2,
                env=flood_env,
            )
        )
        time.sleep(1.0)
        run = suite.run_once(server, "session.lua", probe_connections, args.duration, probe_env, quiet=False)
        run["flood"] = run_flood().as_json()
        return run

    with procfs.RssSampler(server.pid) as sampler:
        during = suite.runs(flooded)
    profile = (
        under_py_spy(suite, server, flood_connections, flood_env, probe_env, name) if args.profile else None
    )
    # The defaults: hash_workers hashing processes (the cores), shared by the workers.
    concurrent = Settings.model_construct().hash_workers
    argon2_bytes = concurrent * suite.profile.memory_cost * 1024
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


def under_py_spy(
    suite: Suite,
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
    collapsed = suite.args.output / f"profile-flood-{name}.txt"
    seconds = suite.args.duration
    run_flood = in_background(
        lambda: wrk.run(server.url, "login.lua", connections=connections, duration=seconds + 3, env=flood_env)
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
