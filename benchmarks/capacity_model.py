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
        for extra in ("redis", "interrupts"):
            seconds = run["cpu"].get(f"{extra}_s", 0.0)
            run["cpu_ms"][extra] = round(seconds * 1000 / served, 4) if served else None
    statuses: dict[str, int] = {}
    for run in runs:
        for w in run["wrk"]:
            for code, n in w["statuses"].items():
                statuses[code] = statuses.get(code, 0) + n
    return {"connections": connections, "statuses": dict(sorted(statuses.items())), "runs": runs}


def _median(load: dict[str, Any], group: str) -> float:
    return float(statistics.median(run["cpu_ms"].get(group) or 0.0 for run in load["runs"]))


def rate(load: dict[str, Any]) -> float:
    return float(statistics.median(run["served_per_s"] for run in load["runs"]))


def per_request(load: dict[str, Any]) -> dict[str, float]:
    """Median ms of CPU per request by group; ``host``: everything the load cost the machine, ours and
    the interrupts' (no process's: the loopback's packets, mostly the load's own)."""
    out = {group: round(_median(load, group), 4) for group in (*GROUPS, "redis", "interrupts")}
    out["host"] = round(sum(out[g] for g in GROUPS) + out["interrupts"], 4)
    return out


def model(results: dict[str, Any]) -> dict[str, Any]:
    """The model's figures from the calibration, and the check beside its prediction when it ran."""
    cal = results.get("calibration", {})
    if "login" not in cal or "session" not in cal:
        return {}
    measured, check = per_request(cal["login"]), per_request(cal["session"])
    login = busy_hashing(measured, results.get("raw_verify_cpu_ms"), results.get("verify_all_cores_cpu_ms"))
    cores = results["machine"]["nproc"]
    workers = 2  # the sizing's unit: an instance of 2 cores (serve --workers 2, its hashing beside)
    login_instance = login["workers"] + login["hashing"]
    out: dict[str, Any] = {
        "login_measured_ms": measured,
        "login_ms": login,
        "verify_all_cores_cpu_ms": results.get("verify_all_cores_cpu_ms"),
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
        # Each process's CPU per check at the rate that process sees: a worker at its instance's share
        # of the machine (the paced run), PostgreSQL and pgbouncer at the sum of every instance's
        # (the saturated run, whose one instance served about what the whole machine does).
        paced = per_request(cal["session_paced"])
        out["check_paced_ms"] = paced
        mixed = dict(check, workers=paced["workers"], hashing=paced["hashing"])
        mixed["host"] = round(check["host"] - check["workers"] + paced["workers"], 4)
        out["check_model_ms"] = mixed
        out["prediction"]["checks_per_s_saturated_instance"] = out["prediction"]["checks_per_s"]
        out["prediction"]["checks_per_s"] = round(cores * 1000 / mixed["host"], 0)
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
    # Sized from the workers' paced figure when there is one: below saturation a worker pays more.
    sized = out.get("check_model_ms", check)
    direct = (out["direct_login_ms"], out["direct_session_ms"]) if "direct_session_ms" in out else None
    out["sizing"] = sizing(login, sized, out.get("touch_ms") or {}, out["bytes_per_row"], direct)
    if "check" in results:
        out["check"] = {}
        for kind, predicted in (("login", "logins_per_s"), ("session", "checks_per_s")):
            if kind in results["check"]:
                load = results["check"][kind]
                served = rate(load)
                # Interrupts count in the CPU per request (``host``), so not as others' here.
                irq = [
                    run["cpu"].get("interrupts_s", 0.0) / (run["cpu"]["wall_s"] * cores)
                    for run in load["runs"]
                ]
                foreign = statistics.mean(
                    run["cpu"]["foreign_share"] for run in load["runs"]
                ) - statistics.mean(irq)
                out["check"][kind] = {
                    "predicted_per_s": out["prediction"][predicted],
                    "predicted_for_cpu_got_per_s": round(out["prediction"][predicted] * (1 - foreign), 1),
                    "measured_per_s": served,
                    "measured_runs": [run["served_per_s"] for run in load["runs"]],
                    "ratio": round(served / out["prediction"][predicted], 3),
                    "cpu_ms": per_request(load),
                    "machine_busy_share": [run["cpu"]["machine_busy_share"] for run in load["runs"]],
                    "foreign_share": [run["cpu"]["foreign_share"] for run in load["runs"]],
                    "interrupt_share": [
                        run["cpu"].get("interrupts_s", 0.0) / (run["cpu"]["wall_s"] * cores)
                        for run in load["runs"]
                    ],
                }
    return out


def busy_hashing(login: dict[str, float], alone: float | None, busy: float | None) -> dict[str, float]:
    """A login's CPU with its verify at the cost of one while every core verifies (the calibration's
    instance hashed one at a time, beside idle cores): what an instance pays when all its cores are busy,
    as in the check and at the sizing's load."""
    if not alone or not busy:
        return login
    out = dict(login)
    if out["hashing"]:
        out["hashing"] = round(out["hashing"] * busy / alone, 4)
    else:  # serve --workers 1: the hash runs on a thread of the worker
        out["workers"] = round(out["workers"] + busy - alone, 4)
    out["host"] = round(sum(out[g] for g in GROUPS) + out.get("interrupts", 0.0), 4)
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
    login: dict[str, float],
    check: dict[str, float],
    touch: dict[str, float],
    per_row: dict[str, int],
    direct: tuple[dict[str, float], dict[str, float]] | None = None,
) -> list[dict[str, Any]]:
    """Cores, instances and storage for each combination of accounts, logins/s and checks/s; with
    ``direct`` (a login's and a check's CPU straight to PostgreSQL), PostgreSQL's cores without pgbouncer
    too (its touches still at their cost through pgbouncer: not measured straight)."""
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
                straight = None
                if direct:
                    check_pg = direct[1]["database"] + TOUCH_SHARE * touch.get("database", 0.0)
                    straight = round(cores((logins, direct[0]["database"]), (checks, check_pg)), 1)
                rows.append(
                    {
                        "accounts": accounts,
                        "logins_per_s": logins,
                        "checks_per_s": checks,
                        "instance_cores": round(instance, 1),
                        "instances_2_cores": math.ceil(instance / 2),
                        "postgres_cores": round(postgres, 1),
                        "postgres_cores_no_pgbouncer": straight,
                        "pgbouncer_processes": math.ceil(pooler),
                        "hashing_memory_gib": round(math.ceil(instance / 2) * 2 * 19 / 1024, 1),
                        "database_gb": round((accounts * user_b + sessions * session_b) / 1e9, 1),
                        "audit_gb_per_year": round(logins * 86_400 * AUDIT_RETENTION_DAYS * audit_b / 1e9),
                    }
                )
    return rows
