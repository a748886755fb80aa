"""The chart the README shows: every ratio against its goal, and the absolute figures behind them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, NullFormatter, StrMethodFormatter

COLORS = {"sqlite": "#3b75af", "postgresql": "#e1812c"}
GOALS = {  # key -> (goal, higher is better, label)
    "login_throughput": (0.95, True, "login/s ÷ argon2 verifies/s"),
    "login_latency.p50": (1.2, False, "login p50 ÷ one verify"),
    "login_latency.p99": (2.0, False, "login p99 ÷ one verify"),
    "session_throughput": (0.5, True, "session/s ÷ bare Starlette/s, {} conns"),
    "flood_p99": (3.0, False, "session p99: flood ÷ none"),
    "flood_rss": (1.0, False, "peak RSS ÷ bound"),
    "growth_session": (1.3, False, "session cost: largest ÷ smallest"),
    "growth_login": (1.3, False, "login cost: largest ÷ smallest"),
}


def _goal_key(key: str) -> str | None:
    if key in GOALS:
        return key
    base = key.rsplit(".", 1)[0]
    return base if base in GOALS and "{}" in GOALS[base][2] else None


def _label(key: str) -> str:
    base = _goal_key(key) or key
    return GOALS[base][2].format(key.rsplit(".", 1)[-1])


def _err(s: dict[str, Any]) -> list[list[float]]:
    return [[s["median"] - s["min"]], [s["max"] - s["median"]]]


def draw(results: dict[str, Any], path: Path) -> None:
    dbs = list(results["databases"])
    cpu_rows = [r for r in results.get("cpu_figures", []) if not r["key"].startswith("growth")]
    fig, axes = plt.subplots(3 if cpu_rows else 2, 2, figsize=(17, 16 if cpu_rows else 10.5))
    m = results["machine"]
    fig.suptitle(
        f"doorward benchmarks — {m['nproc']} cores ({m['cpu_model']}), {m['memory_gib']} GiB, "
        f"Python {m['python']}, argon2id {results['hash_profile']['name']} — {results['timestamp']}",
        fontsize=11,
    )
    _ratios(axes[0][0], results, dbs)
    _login(axes[0][1], results, dbs)
    _session(axes[1][0], results, dbs)
    _growth(axes[1][1], results, dbs)
    if cpu_rows:
        logins = [r for r in cpu_rows if r["per"] in {"login", "step", "sign-in"}]
        _cpu(axes[2][0], logins, 1.0, "ms", "CPU per login, second step and passkey sign-in, by process")
        checks = [r for r in cpu_rows if r["per"] not in {"login", "step", "sign-in"}]
        _cpu(
            axes[2][1], checks, 1000.0, "µs", "CPU per session check (and bare Starlette request), by process"
        )
    fig.tight_layout(rect=(0, 0, 1, 0.97 if cpu_rows else 0.96))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _ratios(ax: Any, results: dict[str, Any], dbs: list[str]) -> None:
    goal_of: dict[str, str] = {}  # a figure's key -> its GOALS key, in the order figures come
    for r in results.get("figures", []):
        if r["ratio"] is not None and (base := _goal_key(r["key"])) is not None:
            goal_of.setdefault(r["key"], base)
    rows = [r for r in results.get("figures", []) if r["key"] in goal_of and r["ratio"] is not None]
    keys = sorted(goal_of, key=lambda key: list(GOALS).index(goal_of[key]))
    height = 0.8 / max(1, len(dbs))
    for i, key in enumerate(keys):
        goal, higher, _ = GOALS[goal_of[key]]
        for j, db in enumerate(dbs):
            row = next((r for r in rows if r["key"] == key and r["db"] == db), None)
            if row is None:
                continue
            met = row["ratio"] >= goal if higher else row["ratio"] <= goal
            y = i + (j - (len(dbs) - 1) / 2) * height
            ax.barh(
                y,
                row["ratio"],
                height=height * 0.9,
                color=COLORS.get(db, "grey"),
                edgecolor="green" if met else "red",
                linewidth=2,
            )
            ax.text(row["ratio"], y, f" {row['ratio']:.2f}", va="center", fontsize=8)
        ax.plot([goal, goal], [i - 0.45, i + 0.45], color="black", linewidth=2)
        # Above the tick, in the gap between figures (the y axis is inverted): clear of the values.
        ax.text(goal, i - 0.45, ("≥" if higher else "≤") + f"{goal:g}", fontsize=7, ha="center", va="bottom")
    ax.set_yticks(range(len(keys)), [_label(k) for k in keys], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator([0.25, 0.5, 1, 2, 4, 8, 16]))
    ax.xaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("ratio (log scale); black tick = goal; green edge = met, red = missed")
    ax.set_title("Each figure ÷ its reference, same run")
    handles = [Patch(color=COLORS.get(db, "grey"), label=db) for db in dbs]
    ax.legend(handles=handles, fontsize=8, loc="lower right")


def _login(ax: Any, results: dict[str, Any], dbs: list[str]) -> None:
    ref = results.get("reference", {}).get("verify_per_s_all_cores")
    labels, values, errors, colors = [], [], [], []
    if ref:
        labels.append("argon2id verify\n(all cores)")
        values.append(ref["median"])
        errors.append(_err(ref))
        colors.append("grey")
    for db in dbs:
        out = results["databases"][db]
        key = "login_throughput"
        if key in out:
            labels.append(f"{db}\ndefaults")
            values.append(out[key]["served_per_s"]["median"])
            errors.append(_err(out[key]["served_per_s"]))
            colors.append(COLORS.get(db, "grey"))
    if not values:
        ax.set_axis_off()
        return
    err = [[e[0][0] for e in errors], [e[1][0] for e in errors]]
    ax.bar(range(len(values)), values, yerr=err, color=colors, capsize=4)
    for x, v in enumerate(values):
        ax.text(x, v, f"{v:.1f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(values)), labels, fontsize=7)
    ax.set_ylabel("per second (median, min-max)")
    ax.set_title("Logins/s (right and wrong passwords, 50/50) vs the argon2id limit")


def _session(ax: Any, results: dict[str, Any], dbs: list[str]) -> None:
    labels, values, errors, colors, notes = [], [], [], [], []
    for db in dbs:
        out = results["databases"][db]
        for conns, pair in sorted(out.get("session", {}).items(), key=lambda kv: int(kv[0])):
            for key, label, color in (
                ("bare", "bare", "grey"),
                ("doorward", "doorward", COLORS.get(db, "grey")),
            ):
                s = pair[key]
                labels.append(f"{db}\n{label}\n{conns} conns")
                values.append(s["served_per_s"]["median"])
                errors.append(_err(s["served_per_s"]))
                colors.append(color)
                notes.append(f"p50 {s['p50_ms']['median']:.1f} ms\np99 {s['p99_ms']['median']:.1f} ms")
        if "flood" in out:
            f = out["flood"]
            for key, label in (("without", "probe"), ("during", "probe in\nlogin flood")):
                s = f[key]
                labels.append(f"{db}\n{label}")
                values.append(s["served_per_s"]["median"])
                errors.append(_err(s["served_per_s"]))
                colors.append("#9ccb86" if key == "without" else "#d65f5f")
                notes.append(f"p50 {s['p50_ms']['median']:.1f} ms\np99 {s['p99_ms']['median']:.1f} ms")
    if not values:
        ax.set_axis_off()
        return
    err = [[e[0][0] for e in errors], [e[1][0] for e in errors]]
    ax.bar(range(len(values)), values, yerr=err, color=colors, capsize=4)
    for x, (v, note) in enumerate(zip(values, notes, strict=True)):
        ax.text(x, v, f"{v:,.0f}/s\n{note}", ha="center", va="bottom", fontsize=6)
    ax.set_xticks(range(len(values)), labels, fontsize=6)
    ax.set_yscale("log")
    positive = [v for v in values if v > 0] or [1.0]
    ax.set_ylim(min(positive) / 2, max(positive) * 6)
    ax.set_ylabel("requests per second, log scale (median, min-max)")
    ax.set_title("GET /session: doorward vs the bare HTTP stack; paced probe without and with a flood")


def _growth(ax: Any, results: dict[str, Any], dbs: list[str]) -> None:
    drawn = False
    for db in dbs:
        growth = results["databases"][db].get("growth", {})
        sizes = sorted(growth, key=int)
        if len(sizes) < 2:
            continue
        for what, style in (("session", "-o"), ("login", "--s")):
            base = growth[sizes[0]][what]["served_per_s"]["median"]
            cost = [base / growth[s][what]["served_per_s"]["median"] for s in sizes]
            ax.plot([int(s) for s in sizes], cost, style, color=COLORS.get(db, "grey"), label=f"{db} {what}")
            drawn = True
    if not drawn:
        ax.set_axis_off()
        return
    ax.axhline(1.3, color="black", linewidth=1, linestyle=":")
    ax.text(ax.get_xlim()[0], 1.31, " goal ≤ 1.3", fontsize=7, va="bottom")
    ax.set_xscale("log")
    ax.set_ylim(0.5, max(1.6, ax.get_ylim()[1]))
    ax.set_xlabel("users and sessions in the database")
    ax.set_ylabel("cost per request ÷ cost at the smallest size")
    ax.set_title("Growth: cost per request as the tables grow")
    ax.legend(fontsize=8)


CPU_COLORS = {
    "workers": "#3b75af",
    "database": "#e1812c",
    "database_aux": "#f2c08f",
    "hashing": "#8c8c8c",
    "generator": "#9ccb86",
}


def _cpu(ax: Any, rows: list[dict[str, Any]], scale: float, unit: str, title: str) -> None:
    """Stacked bars: each figure's CPU per request by process (cpu.py's rows), the raw verify ticked."""
    if not rows:
        ax.set_axis_off()
        return
    for y, row in enumerate(rows):
        left = 0.0
        for group, color in CPU_COLORS.items():
            width = row["cpu_ms"][group] * scale
            ax.barh(y, width, left=left, color=color, height=0.7)
            left += width
        non_hash = (row["cpu_ms"]["workers"] + row["cpu_ms"]["database"]) * scale
        ax.text(left, y, f" {non_hash:,.3g} {unit} workers + db", va="center", fontsize=7)
        if "raw_verify_cpu_ms" in row:
            x = (row["cpu_ms"]["workers"] + row["cpu_ms"]["database"] + row["cpu_ms"]["database_aux"]) * scale
            x += row["raw_verify_cpu_ms"] * scale
            ax.plot([x, x], [y - 0.45, y + 0.45], color="black", linewidth=2)
    ax.set_yticks(range(len(rows)), [f"{r['db']}: {r['figure']}" for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, ax.get_xlim()[1] * 1.3)  # room for the labels
    ax.set_xlabel(f"CPU {unit} per request (median of runs; black tick: workers + db + one raw verify)")
    ax.set_title(title)
    labels = {"workers": "workers", "database": "PostgreSQL backends", "database_aux": "PostgreSQL's own"}
    labels |= {"hashing": "hashing processes", "generator": "load generator"}
    handles = [Patch(color=color, label=labels[group]) for group, color in CPU_COLORS.items()]
    ax.legend(handles=handles, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=5)
