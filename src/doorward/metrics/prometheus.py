"""The figures: the core's Metrics port and the fast path's timings on prometheus_client, each
labelled child looked up once; every label a fixed word or an error class's ``code`` (``_label``)."""

from __future__ import annotations

import os
import platform
from bisect import bisect_left
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from doorward import __version__
from doorward.core.errors import DoorwardError
from doorward.core.password_hashes import HashOp
from doorward.core.ports import Action
from doorward.metrics.scrape import scrape_directory

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
"""The variable that puts prometheus_client in multiprocess mode (set by serve for its workers)."""

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds: from a session check's fraction of a millisecond to a login waiting for a busy hash pool."""

HASH_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
"""Seconds: a verify of the default profile takes tens of milliseconds; ``tune``'s may take a second."""

_COUNTERS: dict[Action, tuple[str, dict[str, str]]] = {
    "login_password": ("logins", {"method": "password"}),
    "login_passkey": ("logins", {"method": "passkey"}),
    "login_second_step": ("logins", {"method": "second_step"}),
    "registration": ("registrations", {}),
    "reset_request": ("password_resets", {"stage": "request"}),
    "reset": ("password_resets", {"stage": "complete"}),
    "verification": ("email_verifications", {}),
    "breach_check": ("breached_password_checks", {}),
}
"""Each use case's counter and its fixed labels; ``outcome`` is added to them."""

ROUTES = ("/login", "/session")
"""The requests whose latency is measured (the fast path's)."""

FLUSH_SECONDS = 1.0
"""How often each process moves the fast path's figures into prometheus_client's values (``flush``)."""

STORES = ("database", "redis")


def _codes() -> set[str]:
    """Every error code there is: each subclass of DoorwardError has a fixed one."""
    found: set[str] = set()
    pending: list[type[DoorwardError]] = [DoorwardError]
    while pending:
        cls = pending.pop()
        found.add(cls.code)
        pending.extend(cls.__subclasses__())
    return found


def _label(outcome: str, known: set[str]) -> str:
    return outcome if outcome in known else "other"


class PrometheusMetrics:
    """The Metrics port (core/ports.py) on prometheus_client, and the web layer's own figures.

    Each labelled child is looked up once and kept. The fast path's figures (``answered``) are
    added up in plain Python and moved into prometheus_client's values by ``flush``, every
    FLUSH_SECONDS and before a scrape on the main port: in multiprocess mode each of those values is
    a write to a memory-mapped file under a lock, which at every check was too dear for the session
    check's budget (benchmarks/README.md, "Metrics on"). A scrape may miss the last second of
    another worker's checks.

    Gauges summed over workers are ``livesum`` (a dead worker's part goes with it); the active
    sessions are ``livemostrecent`` (each worker counts the same table: the latest count wins).
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._known = _codes() | {"success", "error", "valid", "failed_open"}
        self._families = {
            "logins": Counter(
                "doorward_logins", "Logins by method and outcome", ["method", "outcome"], registry=r
            ),
            "registrations": Counter(
                "doorward_registrations", "Registrations by outcome", ["outcome"], registry=r
            ),
            "password_resets": Counter(
                "doorward_password_resets",
                "Password reset requests and completions by outcome",
                ["stage", "outcome"],
                registry=r,
            ),
            "email_verifications": Counter(
                "doorward_email_verifications", "Email verifications by outcome", ["outcome"], registry=r
            ),
            "breached_password_checks": Counter(
                "doorward_breached_password_checks", "Range queries that failed open", ["outcome"], registry=r
            ),
        }
        self._checks = Counter("doorward_session_checks", "GET /session by outcome", ["outcome"], registry=r)
        self._latency = Histogram(
            "doorward_request_duration_seconds",
            "Time to answer POST /login and GET /session, sending included",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._hash_seconds = Histogram(
            "doorward_hash_duration_seconds",
            "Time to compute one hash, by kind (verify, hash, for_import), its wait not included",
            ["op"],
            buckets=HASH_BUCKETS,
            registry=r,
        )
        self._busy = Gauge(
            "doorward_hash_slots_busy", "Hash slots hashing now", registry=r, multiprocess_mode="livesum"
        )
        self._queued = Gauge(
            "doorward_hash_slots_queued",
            "Hash slots taken and waiting for a hasher",
            registry=r,
            multiprocess_mode="livesum",
        )
        self._refused = Counter(
            "doorward_hash_refusals", "Hashes refused at once (503 overloaded)", registry=r
        )
        self._store_errors = Counter(
            "doorward_store_errors", "Requests answered 503 because a store failed", ["store"], registry=r
        )
        self._sessions = Gauge(
            "doorward_active_sessions",
            "Unexpired sessions, counted every DOORWARD_METRICS_SESSIONS_INTERVAL",
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        build = Gauge(
            "doorward_build_info",
            "doorward's version and Python's, as labels",
            ["version", "python"],
            registry=r,
            multiprocess_mode="livemax",
        )
        build.labels(__version__, platform.python_version()).set(1)
        self._children: dict[tuple[str, str], Any] = {}
        self._routes = {route: self._latency.labels(route) for route in ROUTES}
        # Not flushed yet: per route, a count per bucket (the last one +Inf) and the sum; per outcome
        # label, the session checks.
        self._waiting = {route: [0] * (len(LATENCY_BUCKETS) + 1) for route in ROUTES}
        self._waiting_sum = dict.fromkeys(ROUTES, 0.0)
        self._waiting_checks: dict[str, int] = {}

    # --- the core's port ---------------------------------------------------------------------------

    def outcome(self, action: Action, outcome: str) -> None:
        key = (action, outcome)
        child = self._children.get(key)
        if child is None:
            family, labels = _COUNTERS[action]
            child = self._children[key] = self._families[family].labels(
                **labels, outcome=_label(outcome, self._known)
            )
        child.inc()

    def hash_slots(self, busy: int, queued: int) -> None:
        self._busy.set(busy)
        self._queued.set(queued)

    def hash_refused(self) -> None:
        self._refused.inc()

    def hashed(self, op: HashOp, seconds: float) -> None:
        self._hash_seconds.labels(op).observe(seconds)

    # --- the web layer's ---------------------------------------------------------------------------

    def answered(self, route: str, outcome: str, seconds: float) -> None:
        """The fast path answered ``route`` (one of ROUTES) in ``seconds``; a session check's
        ``outcome`` ("success" or an error's code) is counted too. Kept until ``flush``."""
        self._waiting[route][bisect_left(LATENCY_BUCKETS, seconds)] += 1  # the first bound >= seconds
        self._waiting_sum[route] += seconds
        if route == "/session":
            self._waiting_checks[outcome] = self._waiting_checks.get(outcome, 0) + 1

    def flush(self) -> None:
        """Move what ``answered`` kept into prometheus_client's values. On the event loop only.

        A histogram child has no public way to add many observations at once: its ``_buckets``
        (one value per bound, +Inf last, not cumulative) and ``_sum`` take them, as ``observe``
        adds one (prometheus_client 0.20 to 0.26; tests/web/test_metrics.py would catch a change).
        """
        for route, counts in self._waiting.items():
            if not any(counts):
                continue
            child = self._routes[route]
            for index, count in enumerate(counts):
                if count:
                    child._buckets[index].inc(count)
                    counts[index] = 0
            child._sum.inc(self._waiting_sum[route])
            self._waiting_sum[route] = 0.0
        checks, self._waiting_checks = self._waiting_checks, {}
        for outcome, count in checks.items():
            key = ("session", outcome)
            counter = self._children.get(key)
            if counter is None:
                label = "valid" if outcome == "success" else _label(outcome, self._known)
                counter = self._children[key] = self._checks.labels(label)
            counter.inc(count)

    def store_error(self, store: str) -> None:
        """A request failed because ``store`` (StorageUnavailable.store: database or Redis) did not answer."""
        label = store.lower()
        self._store_errors.labels(label if label in STORES else "other").inc()

    def active_sessions(self, count: int) -> None:
        """The latest count of unexpired sessions."""
        self._sessions.set(count)

    def scrape(self) -> bytes:
        """The text format: every worker's figures when in multiprocess mode, else this process's."""
        directory = os.environ.get(MULTIPROC_DIR)
        return scrape_directory(directory) if directory else generate_latest(self.registry)
