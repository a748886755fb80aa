"""CPU per request, by role, from each run's /proc accounting (procfs.CpuMeter): the figures of record.

A rate measured on a shared 2-vCPU host depends on everything else the host runs; the CPU seconds a
request costs each process depend far less on it (a busy host still costs some: shared caches, a
connection's first statements in a short run), so they answer an operator's question (how many cores
for so many logins and checks a second) where the rates cannot. For each figure: the workers' CPU per request
(with the supervisor's), the hashing processes', PostgreSQL's backends of the benchmark database
(doorward's connections) and its own processes (WAL writer, checkpointer: shared with any other
database on that server, so shown apart), and the load generator's. The figures of record:

- non-hash CPU per login: workers + PostgreSQL backends;
- hash CPU per login ÷ the CPU of one raw argon2id verify (the reference of the same run);
- CPU per session check: workers + PostgreSQL backends (beside the bare Starlette endpoint's).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any

GROUPS = {
    "workers": ("supervisor", "workers"),
    "hashing": ("hashing",),
    "database": ("database",),
    "database_aux": ("database_aux",),
    "generator": ("generator",),
}
"""The columns of the CPU table: procfs.ROLES grouped (the runner's own CPU is left out)."""

LABELS = {
    "workers": "workers",
    "hashing": "hashing processes",
    "database": "PostgreSQL backends",
    "database_aux": "PostgreSQL's own processes",
    "generator": "load generator",
}


def per_request_ms(run: dict[str, Any]) -> dict[str, float] | None:
    """Milliseconds of CPU per answered request in one run, by group; None without the accounting."""
    roles = run.get("cpu", {}).get("by_role_s")
    count = run.get("requests", 0)
    if not roles or not count:
        return None
    return {
        group: sum(roles.get(r, 0.0) for r in members) * 1000 / count for group, members in GROUPS.items()
    }


def by_group(runs: Iterable[dict[str, Any]]) -> tuple[dict[str, float], list[float]] | None:
    """The median of each group over ``runs``, and each run's non-hash CPU (workers + PostgreSQL)."""
    each = [p for p in (per_request_ms(run) for run in runs) if p is not None]
    if not each:
        return None
    medians = {group: statistics.median(p[group] for p in each) for group in GROUPS}
    return medians, [p["workers"] + p["database"] for p in each]


def fmt_ms(ms: float) -> str:
    """Milliseconds as people read them: µs below one."""
    return f"{ms * 1000:.0f} µs" if ms < 1 else f"{ms:.2f} ms"


def _span(values: list[float]) -> str:
    low, high = min(values), max(values)
    middle = statistics.median(values)
    return fmt_ms(middle) + (f" ({fmt_ms(low)}-{fmt_ms(high)})" if len(values) > 1 else "")


class _Rows:
    """The rows of one database's figures."""

    def __init__(self, db: str, rows: list[dict[str, Any]]) -> None:
        self.db, self.rows = db, rows
        self.server = "workers + PostgreSQL" if db == "postgresql" else "workers"

    def add(self, key: str, figure: str, m: dict[str, Any], per: str, record: str) -> dict[str, Any] | None:
        found = by_group(m.get("runs", []))
        if found is None:
            return None
        row = {
            "db": self.db,
            "key": key,
            "figure": figure,
            "per": per,
            "rate_per_s": m["served_per_s"]["median"],
            "cpu_ms": {group: round(ms, 4) for group, ms in found[0].items()},
            "non_hash_ms": [round(ms, 4) for ms in found[1]],
            "record": record.format(non_hash=_span(found[1]), server=self.server),
        }
        self.rows.append(row)
        return row

    def login(self, key: str, label: str, m: dict[str, Any]) -> None:
        """A login figure's row: non-hash CPU, and the hash's CPU against one raw verify of the same run."""
        verify = [r.get("reference", {}).get("cpu_per_verify_ms") for r in m.get("runs", [])]
        verify = [v for v in verify if v is not None]
        row = self.add(key, label, m, "login", "non-hash ({server}): {non_hash} per login")
        if row is None or not verify:
            return
        raw = statistics.median(verify)
        row["raw_verify_cpu_ms"] = round(raw, 4)
        row["hash_vs_raw_verify"] = round(row["cpu_ms"]["hashing"] / raw, 3) if raw else None
        row["record"] += (
            f"; hash {fmt_ms(row['cpu_ms']['hashing'])} per login = {row['hash_vs_raw_verify']:.2f}x "
            f"one raw verify ({fmt_ms(raw)} of CPU, same run)"
        )


def figures(results: dict[str, Any]) -> list[dict[str, Any]]:
    """A row per measured figure: its rate, its CPU per request by group, and its figure of record."""
    rows: list[dict[str, Any]] = []
    for db, out in results["databases"].items():
        add = _Rows(db, rows)
        for key, label in (("login_throughput", "1. login"), ("login_latency", "2. login")):
            if key in out:
                add.login(key, f"{label}, {out[key]['connections']} conns", out[key])
        for conns, pair in sorted(out.get("session", {}).items(), key=lambda kv: int(kv[0])):
            label = f"3. bare Starlette, {conns} conns"
            bare = add.add(f"session_bare.{conns}", label, pair["bare"], "request", "")
            record = "{server}: {non_hash} per check"
            if bare is not None:
                record += f"; bare Starlette's workers {fmt_ms(bare['cpu_ms']['workers'])}"
            add.add(f"session.{conns}", f"3. session check, {conns} conns", pair["doorward"], "check", record)
        flows = out.get("flows", {})
        if "mfa" in flows:
            record = "{server}: {non_hash} per second step (no hash in it)"
            add.add("flows.mfa", "7. a login's second step (TOTP code)", flows["mfa"], "step", record)
        if "passkey" in flows:
            record = "{server}: {non_hash} per sign-in (options, then the assertion)"
            add.add(
                "flows.passkey", "7. a passkey sign-in (ECDSA P-256)", flows["passkey"], "sign-in", record
            )
        if "session_metrics_on" in flows:
            label = f"7. session check, metrics off, {flows['session_metrics_off']['connections']} conns"
            off = add.add("flows.session_metrics_off", label, flows["session_metrics_off"], "check", "")
            record = "{server}: {non_hash} per check"
            if off is not None:
                off_ms = statistics.median(off["non_hash_ms"])
                record += f"; metrics off, same minutes: {fmt_ms(off_ms)}"
            label = label.replace("metrics off", "metrics on")
            add.add("flows.session_metrics_on", label, flows["session_metrics_on"], "check", record)
        for size, stage in sorted(out.get("growth", {}).items(), key=lambda kv: int(kv[0])):
            for what in ("session", "login"):
                if what in stage:
                    label = f"6. {what} at {int(size):,} rows"
                    per = "check" if what == "session" else what
                    add.add(
                        f"growth_{what}.{size}", label, stage[what], per, "{server}: {non_hash} per " + per
                    )
    return rows


def markdown(rows: list[dict[str, Any]]) -> list[str]:
    """The CPU table's lines (none when the results have no CPU accounting)."""
    if not rows:
        return []
    lines = [
        "",
        "CPU per request, by process (from /proc, median of the runs): the figures of record, which "
        "depend far less than rates on how busy the host was. A passkey sign-in is two requests "
        "(options, assertion).",
        "",
        "| db | figure | rate | " + " | ".join(LABELS.values()) + " | figure of record |",
        "|---|---|---|" + "---|" * len(LABELS) + "---|",
    ]
    for row in rows:
        cells = " | ".join(
            "-"
            if row["db"] != "postgresql" and group.startswith("database")
            else fmt_ms(row["cpu_ms"][group])
            for group in LABELS
        )
        lines.append(
            f"| {row['db']} | {row['figure']} | {row['rate_per_s']:,.1f} {row['per']}s/s | {cells} | "
            f"{row['record']} |"
        )
    return lines
