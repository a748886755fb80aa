"""The capacity model: from CPU per request by process to cores, instances and a sizing table, and
its prediction for the machine it was measured on beside what that machine then served.

Every figure comes from results/capacity.json (capacity.py): the calibration's runs (one instance)
give the CPU per request; the check's runs (several instances at once) give the measured rates.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

GROUPS = {
    "workers": ("supervisor", "workers"),
    "hashing": ("hashing",),
    "database": ("database",),
    "database_aux": ("database_aux",),
    "pooler": ("pooler",),
    "generator": ("generator",),
    "runner": ("runner",),
}
"""procfs roles grouped; "pooler" is pgbouncer (capacity.py counts it apart from the runner)."""

TARGET_UTILISATION = 0.7
"""The sizing table provisions cores for the load at 70 % busy: headroom for bursts and a lost node."""

SIZING_ACCOUNTS = (10_000, 1_000_000, 100_000_000)
SIZING_LOGINS = (100, 1_000)
SIZING_CHECKS = (10_000, 100_000)
SESSION_ROWS_SECONDS = 2 * 86_400
"""A session row lives its 24 h (the default lifetime), then up to a day more until the daily prune."""
AUDIT_RETENTION_DAYS = 365
TOUCH_SHARE = 0.1
"""Checks that touch their session in the sizing: a session checked about ten times a minute while in
use (a touch is at most once a minute per session; one checked once a minute touches at every check)."""


def summary(runs: list[dict[str, Any]], good: tuple[str, ...], connections: int) -> dict[str, Any]:
    """A load's recorded runs, each with its served rate (over every wrk at once) and CPU per request."""
    for run in runs:
        served = sum(sum(w["statuses"].get(code, 0) for code in good) for w in run["wrk"])
        rate = sum(sum(w["statuses"].get(code, 0) for code in good) / w["duration_s"] for w in run["wrk"])
        run["served"], run["served_per_s"] = served, round(rate, 1)
        roles = run["cpu"]["by_role_s"]
        run["cpu_ms"] = {
            group: round(sum(roles.get(r, 0.0) for r in members) * 1000 / served, 4) if served else None
            for group, members in GROUPS.items()
        }
        run["cpu_ms"]["redis"] = round(run["cpu"].get("redis_s", 0.0) * 1000 / served, 4) if served else None
    statuses: dict[str, int] = {}
    for run in runs:
        for w in run["wrk"]:
            for code, n in w["statuses"].items():
                statuses[code] = statuses.get(code, 0) + n
    return {"connections": connections, "statuses": dict(sorted(statuses.items())), "runs": runs}


def _median(load: dict[str, Any], group: str) -> float:
    return float(statistics.median(run["cpu_ms"][group] or 0.0 for run in load["runs"]))


def rate(load: dict[str, Any]) -> float:
    return float(statistics.median(run["served_per_s"] for run in load["runs"]))


def per_request(load: dict[str, Any]) -> dict[str, float]:
    """Median ms of CPU per request by group, and ``host``: everything ours on the machine."""
    out = {group: round(_median(load, group), 4) for group in (*GROUPS, "redis")}
    out["host"] = round(sum(out[g] for g in GROUPS), 4)
    return out


def model(results: dict[str, Any]) -> dict[str, Any]:
    """The model's figures from the calibration, and the check beside its prediction when it ran."""
    cal = results.get("calibration", {})
    if "login" not in cal or "session" not in cal:
        return {}
    login, check = per_request(cal["login"]), per_request(cal["session"])
    cores = results["machine"]["nproc"]
    workers = 2  # the sizing's unit: an instance of 2 cores (serve --workers 2, its hashing beside)
    login_instance = login["workers"] + login["hashing"]
    out: dict[str, Any] = {
        "login_ms": login,
        "check_ms": check,
        "raw_verify_cpu_ms": results.get("raw_verify_cpu_ms"),
        "per_core": {
            "logins_per_instance_core": round(1000 / login_instance, 1),
            "logins_per_core_argon2_bound": round(1000 / results["raw_verify_cpu_ms"], 1)
            if results.get("raw_verify_cpu_ms")
            else None,
            "logins_per_postgres_core": round(1000 / login["database"], 0),
            "logins_per_pooler_core": round(1000 / login["pooler"], 0) if login["pooler"] else None,
            "checks_per_worker_core": round(1000 / check["workers"], 0),
            "checks_per_postgres_core": round(1000 / check["database"], 0),
            "checks_per_pooler_core": round(1000 / check["pooler"], 0) if check["pooler"] else None,
        },
        "instances_per_postgres_core": {
            "logins": round(login_instance / login["database"] / workers, 1),
            "checks": round(check["workers"] / check["database"] / workers, 1),
        },
    }
    out |= {
        "prediction": {
            "cores": cores,
            "logins_per_s": round(cores * 1000 / login["host"], 1),
            "checks_per_s": round(cores * 1000 / check["host"], 0),
        },
    }
    if "session_paced" in cal:
        # The check's instances each run at a share of the machine: the checks' CPU at that share.
        paced = per_request(cal["session_paced"])
        out["check_paced_ms"] = paced
        out["prediction"]["checks_per_s_saturated_instance"] = out["prediction"]["checks_per_s"]
        out["prediction"]["checks_per_s"] = round(cores * 1000 / paced["host"], 0)
    if "login_redis" in cal:
        redis = per_request(cal["login_redis"])
        out["login_redis_ms"] = redis
        out["redis_saves_postgres_ms_per_login"] = round(login["database"] - redis["database"], 4)
    if "session_touch" in cal:
        out["touch_ms"] = touch_cost(cal["session_touch"], check)
    for key in ("direct_login", "direct_session"):
        if key in cal:
            out[f"{key}_ms"] = per_request(cal[key])
    out["bytes_per_row"] = bytes_per_row(results)
    # Sized from the paced figure when there is one: an instance below saturation pays more per check.
    sized = out.get("check_paced_ms", check)
    out["sizing"] = sizing(login, sized, out.get("touch_ms") or {}, out["bytes_per_row"])
    if "check" in results:
        out["check"] = {}
        for kind, predicted in (("login", "logins_per_s"), ("session", "checks_per_s")):
            if kind in results["check"]:
                load = results["check"][kind]
                measured = rate(load)
                foreign = statistics.mean(run["cpu"]["foreign_share"] for run in load["runs"])
                out["check"][kind] = {
                    "predicted_per_s": out["prediction"][predicted],
                    "predicted_for_cpu_got_per_s": round(out["prediction"][predicted] * (1 - foreign), 1),
                    "measured_per_s": measured,
                    "measured_runs": [run["served_per_s"] for run in load["runs"]],
                    "ratio": round(measured / out["prediction"][predicted], 3),
                    "cpu_ms": per_request(load),
                    "machine_busy_share": [run["cpu"]["machine_busy_share"] for run in load["runs"]],
                    "foreign_share": [run["cpu"]["foreign_share"] for run in load["runs"]],
                }
    return out


def touch_cost(load: dict[str, Any], check: dict[str, float]) -> dict[str, float] | None:
    """CPU per touch by group: the touch run's CPU less its checks at the lookup's cost, per touch."""
    run = load["runs"][0]
    if not run.get("touches"):
        return None
    roles = run["cpu"]["by_role_s"]
    out = {}
    for group, members in GROUPS.items():
        spent = sum(roles.get(r, 0.0) for r in members) * 1000
        out[group] = round(max(0.0, spent - check[group] * run["served"]) / run["touches"], 4)
    out["host"] = round(sum(out[g] for g in GROUPS), 4)
    out["touches"] = run["touches"]
    return out


def bytes_per_row(results: dict[str, Any]) -> dict[str, int]:
    """Bytes on disk (with indexes) per row of each table, its growth since the empty schema per row:
    users and sessions as loaded (before the runs' updates left dead rows), the rest after the runs."""
    empty = results.get("table_bytes_empty", {})
    loaded, after = results.get("table_bytes", {}), results.get("table_bytes_after", {})
    out = {}
    for table, seen in (after | {t: loaded[t] for t in ("users", "sessions") if t in loaded}).items():
        if seen["rows"]:
            out[table] = round((seen["bytes"] - empty.get(table, {}).get("bytes", 0)) / seen["rows"])
    return out


def sizing(
    login: dict[str, float], check: dict[str, float], touch: dict[str, float], per_row: dict[str, int]
) -> list[dict[str, Any]]:
    """Cores, instances and storage for each combination of accounts, logins/s and checks/s."""
    rows = []
    check = {g: check[g] + TOUCH_SHARE * touch.get(g, 0.0) for g in GROUPS}
    user_b, session_b = per_row.get("users", 400), per_row.get("sessions", 300)
    audit_b = per_row.get("audit_events", 300)
    for accounts in SIZING_ACCOUNTS:
        for logins in SIZING_LOGINS:
            for checks in SIZING_CHECKS:

                def cores(*parts: tuple[float, float]) -> float:
                    return sum(n * ms for n, ms in parts) / 1000 / TARGET_UTILISATION

                instance = cores((logins, login["workers"] + login["hashing"]), (checks, check["workers"]))
                postgres = cores((logins, login["database"]), (checks, check["database"]))
                pooler = cores((logins, login["pooler"]), (checks, check["pooler"]))
                sessions = logins * SESSION_ROWS_SECONDS
                rows.append(
                    {
                        "accounts": accounts,
                        "logins_per_s": logins,
                        "checks_per_s": checks,
                        "instance_cores": round(instance, 1),
                        "instances_2_cores": math.ceil(instance / 2),
                        "postgres_cores": round(postgres, 1),
                        "pgbouncer_processes": math.ceil(pooler),
                        "hashing_memory_gib": round(math.ceil(instance / 2) * 2 * 19 / 1024, 1),
                        "database_gb": round((accounts * user_b + sessions * session_b) / 1e9, 1),
                        "audit_gb_per_year": round(logins * 86_400 * AUDIT_RETENTION_DAYS * audit_b / 1e9),
                    }
                )
    return rows


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f} µs" if value < 1 else f"{value:.2f} ms"


def markdown(results: dict[str, Any]) -> list[str]:
    """results/capacity.md: the CPU per request, the model's figures, the check, the sizing table."""
    m = results.get("model") or {}
    machine = results["machine"]
    opts = results["options"]
    lines = [
        f"# Capacity check, {results['timestamp']}",
        "",
        f"{machine['nproc']} vCPUs ({machine['cpu_model']}), "
        f"doorward {results['doorward'].get('commit', '?')[:7]}, "
        f"hash profile {opts['hash_profile']}, PostgreSQL through pgbouncer (transaction mode, "
        f"{opts['pool_size']} server connections), `serve --workers {opts['workers']}`; "
        f"{opts['runs']} runs of {opts['duration']:g} s per load. Generated by `benchmarks/capacity.py`.",
    ]
    if not m:
        return [*lines, "", "No calibration in the JSON."]
    cal = results["calibration"]
    lines += [
        "",
        "## CPU per request, one instance (calibration; median of the runs)",
        "",
        "| load | rate | workers | hashing | PostgreSQL backends | PostgreSQL's own | pgbouncer | wrk "
        "| runner | all on the host | redis-server (shared) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, label in (
        ("login", "login"),
        ("session", "session check"),
        ("session_paced", "session check, paced to the check's rate per instance"),
        ("direct_login", "login, no pgbouncer"),
        ("direct_session", "session check, no pgbouncer"),
        ("login_redis", "login, throttle in Redis"),
    ):
        if key in cal:
            p = per_request(cal[key])
            cells = " | ".join(_ms(p[g]) for g in (*GROUPS, "host", "redis"))
            lines.append(f"| {label} | {rate(cal[key]):,.1f}/s | {cells} |")
    pc, inst = m["per_core"], m["instances_per_postgres_core"]
    lines += [
        "",
        f"Raw argon2id verify: {_ms(m['raw_verify_cpu_ms'])} of CPU. Per core: "
        f"{pc['logins_per_instance_core']} logins/s of an instance's (workers + hashing; "
        f"argon2 alone bounds it at {pc['logins_per_core_argon2_bound']}), "
        f"{pc['logins_per_postgres_core']:,.0f} logins/s of PostgreSQL's, "
        f"{pc['checks_per_worker_core']:,.0f} checks/s of the workers', "
        f"{pc['checks_per_postgres_core']:,.0f} checks/s of PostgreSQL's, "
        f"{pc['checks_per_pooler_core'] or 0:,.0f} checks/s of pgbouncer's. "
        "Instances of 2 cores per PostgreSQL core: "
        f"{inst['logins']} for logins, {inst['checks']} for checks.",
    ]
    touch = m.get("touch_ms")
    if touch:
        lines += [
            "",
            f"A touch (a session's `last_seen_at`, written behind a check at most once a minute per session; "
            f"{touch['touches']:,} in one run with every session due): {_ms(touch['host'])} on the host, "
            "of it "
            f"workers {_ms(touch['workers'])}, PostgreSQL {_ms(touch['database'] + touch['database_aux'])}, "
            f"pgbouncer {_ms(touch['pooler'])}. The session figures above are the lookup alone (no session "
            f"was due during their runs); the sizing counts a touch for {TOUCH_SHARE:.0%} of the checks.",
        ]
    if "check" in m:
        lines += [
            "",
            f"## The check: {opts['instances']} instances at once, one wrk each",
            "",
            "| load | predicted for the host | the same, in the CPU others left | measured (runs) "
            "| measured ÷ predicted | workers | hashing | "
            "PostgreSQL | pgbouncer | wrk | all ours per request | machine busy | others' share |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for kind, c in m["check"].items():
            p = c["cpu_ms"]
            runs = ", ".join(f"{r:,.0f}" for r in c["measured_runs"])
            lines.append(
                f"| {kind} | {c['predicted_per_s']:,.1f}/s | {c['predicted_for_cpu_got_per_s']:,.1f}/s | "
                f"{c['measured_per_s']:,.1f}/s ({runs}) | "
                f"**{c['ratio']:.2f}** | {_ms(p['workers'])} | {_ms(p['hashing'])} | "
                f"{_ms(p['database'] + p['database_aux'])} | {_ms(p['pooler'])} | {_ms(p['generator'])} | "
                f"{_ms(p['host'])} | {', '.join(f'{s:.0%}' for s in c['machine_busy_share'])} | "
                f"{', '.join(f'{s:.0%}' for s in c['foreign_share'])} |"
            )
        lines += [
            "",
            "Other processes that took the most CPU during the check's runs, and the load average:",
            "",
        ]
        for kind, load in results["check"].items():
            for i, run in enumerate(load["runs"], 1):
                top = (
                    "; ".join(f"{o['name']} {o['cpu_s']:.1f} s" for o in run["other_processes"][:4]) or "none"
                )
                lines.append(
                    f"- {kind} run {i}: loadavg {' '.join(run['loadavg_before'])} → "
                    f"{' '.join(run['loadavg_after'])}; {top}"
                )
    lines += [
        "",
        f"## Sizing (cores at {TARGET_UTILISATION:.0%} busy; checks at the paced calibration's CPU, "
        f"{TOUCH_SHARE:.0%} of them with a touch; storage from this run's bytes per row: "
        + ", ".join(f"{t} {b}" for t, b in m["bytes_per_row"].items())
        + ")",
        "",
        "| accounts | logins/s | checks/s | instance cores | instances (2 cores) | PostgreSQL cores | "
        "pgbouncer processes | hashing memory | users + sessions | audit per year |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in m["sizing"]:
        lines.append(
            f"| {r['accounts']:,} | {r['logins_per_s']:,} | {r['checks_per_s']:,} | {r['instance_cores']} | "
            f"{r['instances_2_cores']} | {r['postgres_cores']} | {r['pgbouncer_processes']} | "
            f"{r['hashing_memory_gib']} GiB | {r['database_gb']} GB | {r['audit_gb_per_year']:,} GB |"
        )
    return lines
