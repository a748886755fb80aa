"""Figure 6: what a session check and a login cost as the database grows."""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any

import dataset
from harness import log

if TYPE_CHECKING:
    from suite import Suite


def measure(
    suite: Suite,
    db: dataset.Database,
    rng: random.Random,
    users: int,
    tokens: list[str],
    load_s: dict[str, float],
) -> dict[str, Any]:
    """The session check and login at each --growth size, the database loaded up to it first."""
    args = suite.args
    sizes = args.growth_sizes
    growth: dict[str, Any] = {}
    for index, size in enumerate(sizes):
        if index > 0:
            log(f"[{db.name}] 6. load up to {size:,} users and sessions")
            stage = dataset.Stage(sizes[index - 1], size)
            started = time.monotonic()
            db.load(stage, suite.hashes, args.tokens, rng)
            load_s[str(size)] = round(time.monotonic() - started, 1)
            users, tokens = size, stage.tokens
        log(f"[{db.name}] 6. growth at {size:,}: session check and login")
        with suite.doorward(db) as server:
            growth[str(size)] = {
                "session": suite.measure(
                    server,
                    "session.lua",
                    connections=args.session_conns[0],
                    duration=args.growth_duration,
                    env=suite.token_env(tokens, f"{db.name}-{size}"),
                    good=(200,),
                ),
                "login": suite.measure(
                    server,
                    "login.lua",
                    connections=args.login_connections,
                    duration=args.growth_duration,
                    env=suite.login_env(users),
                    good=(200, 401),
                ),
            }
    return growth
