"""Figure 7: the flows of two-step verification and passkeys, each with its rate and CPU per request
beside the password login's (figure 1): a login's second step (POST /login/mfa with a TOTP code, for
an mfaToken loaded into the database, so no hash is in it) and a passkey sign-in (POST
/login/passkey/options, then POST /login/passkey with an ECDSA P-256 assertion); and the session
check with /metrics on, beside one with it off in the same minutes.

wrk's Lua cannot compute codes nor sign, so flowload.py, a small asyncio generator, drives these
figures; the CPU per request comes from /proc, whatever the generator's own speed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dataset
import figures_session
import flowload
import flows_data
import wrk
from harness import log, summarise
from launch import Server

from doorward.config import Settings

if TYPE_CHECKING:
    from suite import Suite

APP_ACCOUNTS = 20_000
"""Accounts with the app: a code works once per account and step, so each takes at most two logins a
30-second step (now's and the next step's code), and 20,000 carry 1,300 second steps a second."""

PASSKEY_ACCOUNTS = 1_000


METRICS_TOKEN = "bench-metrics-token-0123456789"  # as suite.py's --metrics (no scraper asks)


def measure(suite: Suite, db: dataset.Database, tokens: list[str]) -> dict[str, Any]:
    """Both flows on one server (with DOORWARD_SECRET_KEYS, which sealed the loaded TOTP secrets),
    then the session check with metrics on against off."""
    defaults = Settings.model_construct()
    rp_id, origin = defaults.rp_id, defaults.webauthn_origin_list[0]
    log(f"[{db.name}] 7. load {APP_ACCOUNTS:,} accounts with the app, {PASSKEY_ACCOUNTS:,} with a passkey")
    secrets_ = flows_data.load_totp_accounts(db, APP_ACCOUNTS, suite.hashes)
    passkeys = flows_data.load_passkey_accounts(db, PASSKEY_ACCOUNTS, suite.hashes, rp_id, origin)
    base = {"rp_id": rp_id, "origin": origin, "clients": 1_000_000 if suite.many_clients else 1}
    scratch = suite.scratch / f"flows-{db.name}"
    scratch.mkdir(exist_ok=True)
    out: dict[str, Any] = {"app_accounts": APP_ACCOUNTS, "passkey_accounts": PASSKEY_ACCOUNTS}
    with suite.doorward(db, secret_keys=flows_data.SECRET_KEY) as server:
        log(f"[{db.name}] 7. a login's second step (TOTP), {suite.args.login_connections} connections")
        mfa = Flow(suite, server, db, "mfa", base | {"totp_secrets": secrets_}, scratch)
        out["mfa"] = mfa.measure()
        log(f"[{db.name}] 7. a passkey sign-in, {suite.args.login_connections} connections")
        passkey = Flow(suite, server, db, "passkey", base | {"passkeys": passkeys}, scratch)
        out["passkey"] = passkey.measure()
    if "metrics_token" in suite.settings and not getattr(suite.args, "metrics", False):
        out |= metrics_on_off(suite, db, tokens)
    return out


def metrics_on_off(suite: Suite, db: dataset.Database, tokens: list[str]) -> dict[str, Any]:
    """The session check on a server with /metrics on (DOORWARD_METRICS_TOKEN: every worker counts
    what it answers) and one without, their runs interleaved as figure 3's with the bare app."""
    args, connections = suite.args, suite.args.session_conns[0]
    log(f"[{db.name}] 7. session check with metrics on and off, {connections} connections")
    env = suite.token_env(tokens, f"{db.name}-metrics")
    with suite.doorward(db) as off, suite.doorward(db, metrics_token=METRICS_TOKEN) as on:
        for target in (off, on):
            wrk.run(target.url, "session.lua", connections=connections, duration=args.warmup, env=env)
        kept, set_aside = suite.runs(lambda: figures_session.pair(suite, off, on, connections, env))
    return {
        "session_metrics_off": summarise(
            [p["doorward"] for p in kept], [p["doorward"] for p in set_aside], (200,), connections
        ),
        "session_metrics_on": summarise(
            [p["bare"] for p in kept], [p["bare"] for p in set_aside], (200,), connections
        ),
    }


class Flow:
    """One flow's warm-up and recorded runs; for the second step, fresh mfaTokens before each."""

    def __init__(
        self, suite: Suite, server: Server, db: dataset.Database, flow: str, data: dict[str, Any], path: Path
    ) -> None:
        self.suite, self.server, self.db, self.flow, self.data = suite, server, db, flow, data
        self.data_path = path / f"{flow}.json"
        self.state = path / f"{flow}-steps.json"
        self.rate = 1000.0  # a guess until a run measures it: how many mfaTokens to load
        self.loaded = 0

    def _prepare(self, seconds: float) -> None:
        """The generator's data for a run of ``seconds``: for the second step, fresh mfaTokens, loaded
        now, before the run's CPU is counted."""
        data = self.data
        if self.flow == "mfa":
            # Enough for the run at 1.5x the fastest rate seen so far, spread over the accounts in turn.
            count = int(self.rate * seconds * 1.5) + 500
            data = data | {"tokens": flows_data.load_challenges(self.db, count, APP_ACCOUNTS, self.loaded)}
            self.loaded += count
        self.data_path.write_text(json.dumps(data), encoding="utf-8")

    def _generate(self, seconds: float) -> wrk.WrkResult:
        result = flowload.run(
            self.server.url,
            self.flow,
            self.data_path,
            connections=self.suite.args.login_connections,
            duration=seconds,
            state=self.state,
        )
        self.rate = max(self.rate, result.rate)
        return result

    def measure(self) -> dict[str, Any]:
        args = self.suite.args
        connections = args.login_connections
        if args.warmup > 0:
            self._prepare(args.warmup)
            self.rate = 0.0
            self._generate(args.warmup)

        def run() -> dict[str, Any]:
            self._prepare(args.duration)
            return self.suite.run_once(
                self.server,
                self.flow,
                connections,
                args.duration,
                {},
                load=lambda: self._generate(args.duration),
            )

        kept, set_aside = self.suite.runs(run)
        summary = summarise(kept, set_aside, (200,), connections)
        summary["exhausted_runs"] = sum(1 for run in kept if run.get("exhausted"))
        return summary
