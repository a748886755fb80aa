"""doorward's benchmark suite: each figure beside its reference, measured in the same run, as a ratio.

Real ``doorward serve`` processes (workers = cores), real databases (SQLite; PostgreSQL when one
answers: a throw-away database per run, dropped at the end), wrk with Lua scripts as the client.
Every figure is the median of several runs, with min and max; the raw runs go to the JSON.

    .venv/bin/python benchmarks/run.py                        # everything, about 15 minutes
    .venv/bin/python benchmarks/run.py --only session --db sqlite
    .venv/bin/python benchmarks/run.py --growth 10000,100000  # a shorter growth series
    .venv/bin/python benchmarks/run.py --profile              # also py-spy the session check

Writes benchmarks/results/latest.json, latest.md and chart.png; prints the Markdown table.
See benchmarks/README.md for what each figure means. Here: the options and the run's outline; suite.py
runs the benchmark, figures_*.py measure the figures, table.py lays them out.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cpu
import dataset
import harness
import table
import wrk
from harness import log
from suite import Suite

from doorward.core.profiles import PROFILES

RESULTS = harness.HERE / "results"
ALL_PARTS = ("login", "latency", "session", "flood", "flows", "growth")


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
        "--access-log",
        action="store_true",
        help="serve doorward with its access log on, as it runs by default (the bare reference has none)",
    )
    parser.add_argument(
        "--render",
        action="store_true",
        help="measure nothing: redraw latest.md and chart.png from latest.json",
    )
    parser.add_argument("--note", action="append", default=[], help="a line to add to the notes")
    parser.add_argument(
        "--metrics",
        action="store_true",
        help="serve with DOORWARD_METRICS_TOKEN set: every figure with metrics on (no scraper runs)",
    )
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


def tabulate(results: dict[str, Any]) -> None:
    """The figures' rows (table.py) and the CPU per request's (cpu.py), from the raw runs."""
    results["figures"] = table.figures(results)
    results["cpu_figures"] = cpu.figures(results)


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
        tabulate(results)
        write_json(args.output / "latest.json", results)
        (args.output / "latest.md").write_text(table.markdown(results), encoding="utf-8")
        chart.draw(results, args.output / "chart.png")
        print(table.markdown(results))
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
            tabulate(results)
            write_json(args.output / "latest.json", results)  # what is done so far survives a crash
        results["duration_s"] = round(time.monotonic() - started)
        tabulate(results)
        text = table.markdown(results)
        write_json(args.output / "latest.json", results)
        (args.output / "latest.md").write_text(text, encoding="utf-8")
        chart.draw(results, args.output / "chart.png")
    print(text)
    log(f"done in {results['duration_s'] / 60:.1f} min: {args.output}/latest.json, latest.md, chart.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
