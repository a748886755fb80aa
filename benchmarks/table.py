"""The table of figures: each figure beside its reference, as a ratio against its goal, in Markdown."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import cpu


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
    lines += cpu.markdown(results.get("cpu_figures", []))
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
    for flow, value in out.get("flows", {}).items():
        if isinstance(value, dict):
            yield f"flows.{flow}", value
    for conns, pair in out.get("session", {}).items():
        yield f"session.{conns}.doorward", pair["doorward"]
        yield f"session.{conns}.bare", pair["bare"]
    if "flood" in out:
        yield "flood.during", out["flood"]["during"]
        yield "flood.without", out["flood"]["without"]
    for size, stage in out.get("growth", {}).items():
        for what, value in stage.items():
            yield f"growth.{size}.{what}", value
