"""Figure 3: doorward's session check against a bare Starlette endpoint, their runs interleaved."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import dataset
import wrk
from harness import log, summarise
from launch import Server

if TYPE_CHECKING:
    from suite import Suite


def measure(suite: Suite, db: dataset.Database, tokens: list[str]) -> dict[str, Any]:
    """Figure 3 at each --session-connections, beside the bare app; with --profile, under py-spy too."""
    args = suite.args
    out: dict[str, Any] = {}
    with suite.doorward(db) as server, suite.bare() as bare:
        for connections in args.session_conns:
            ours, theirs = session_vs_bare(suite, server, bare, tokens, db.name, connections)
            out[str(connections)] = {"doorward": ours, "bare": theirs}
            if args.profile:
                out[str(connections)]["profile"] = under_py_spy(suite, server, tokens, db.name, connections)
    return out


def session_vs_bare(
    suite: Suite, server: Server, bare: Server, tokens: list[str], name: str, connections: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """doorward's and the bare app's runs interleaved, so drift affects both alike."""
    args = suite.args
    log(f"[{name}] 3. session check vs bare Starlette, {connections} connections")
    env = suite.token_env(tokens, name)
    for target in (server, bare):
        wrk.run(target.url, "session.lua", connections=connections, duration=args.warmup, env=env)
    pairs = suite.runs(lambda: pair(suite, server, bare, connections, env))
    ours = ([p["doorward"] for p in pairs[0]], [p["doorward"] for p in pairs[1]])
    theirs = ([p["bare"] for p in pairs[0]], [p["bare"] for p in pairs[1]])
    return summarise(*ours, (200,), connections), summarise(*theirs, (200,), connections)


def pair(suite: Suite, server: Server, bare: Server, connections: int, env: dict[str, str]) -> dict[str, Any]:
    """One run on each server, back to back; disturbed as much as the worse of the two."""
    ours = suite.run_once(server, "session.lua", connections, suite.args.duration, env)
    theirs = suite.run_once(bare, "session.lua", connections, suite.args.duration, env)
    worst = max(ours["cpu"]["foreign_share"], theirs["cpu"]["foreign_share"])
    return {"doorward": ours, "bare": theirs, "cpu": {"foreign_share": worst}}


def under_py_spy(
    suite: Suite, server: Server, tokens: list[str], name: str, connections: int
) -> dict[str, Any]:
    """Where the server's time goes in the session check: one more run, not recorded, under py-spy."""
    import profiling

    if profiling.py_spy() is None:
        log("  py-spy is not installed: no profile")
        return {"error": "py-spy not installed"}
    log(f"[{name}] profile of the session check, {connections} connections (py-spy)")
    collapsed = suite.args.output / f"profile-session-{name}-{connections}.txt"
    env = suite.token_env(tokens, name)
    spy = profiling.record(server.pid, suite.args.duration, collapsed)
    time.sleep(1.0)  # py-spy attaches
    result = wrk.run(
        server.url, "session.lua", connections=connections, duration=suite.args.duration, env=env
    )
    spy.wait(timeout=60)
    if spy.returncode != 0 or not collapsed.exists():
        stderr = spy.stderr.read().decode(errors="replace") if spy.stderr else ""
        return {"error": f"py-spy failed: {stderr.strip()[-300:]}"}
    summary = profiling.summarise(collapsed).as_json()
    summary["req_per_s_while_profiled"] = round(result.rate, 1)
    summary["collapsed_stacks"] = collapsed.name
    return summary
