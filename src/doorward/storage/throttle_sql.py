"""The throttle's SQL statements, built once: the reads and upserts SqlThrottleStore (throttle.py) runs,
for the dialect's ``insert`` (both speak ``ON CONFLICT``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Table, bindparam, case, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite

from doorward.storage.login_trips import FORGET, release_ctes
from doorward.storage.tables import attempts, rate_windows

_KEY = attempts.c.key == bindparam("key")
# One statement for both of a login's reads: an account's state and its client's failures.
LOGIN_STATE = select(
    select(attempts.c.failures).where(_KEY).scalar_subquery().label("failures"),
    select(attempts.c.next_allowed_at).where(_KEY).scalar_subquery().label("next_allowed_at"),
    select(rate_windows.c.count)
    .where(rate_windows.c.key == bindparam("counter"), rate_windows.c.window_start == bindparam("start"))
    .scalar_subquery()
    .label("counted"),
)

# Taking back only the account's one failure (login_trips.py has the rest of a release).
UNFAIL = (
    update(attempts)
    .where(attempts.c.key == bindparam("account"), attempts.c.failures > 0)
    .values(
        failures=attempts.c.failures - 1,
        # The wait before this reservation had passed (it was admitted): none is the same.
        next_allowed_at=case(
            (attempts.c.failures == bindparam("reserved"), None), else_=attempts.c.next_allowed_at
        ),
    )
)

# PostgreSQL: a release alone (a second factor to come, an unverified email), by (reset, client).
RELEASES = {
    (reset, client): select(literal(1)).add_cte(*release_ctes(FORGET if reset else UNFAIL, client=client))
    for reset in (False, True)
    for client in (False, True)
}


def dialect_insert(dialect: str) -> Callable[[Table], Any]:
    """PostgreSQL's or SQLite's ``insert``: the one with ``on_conflict_do_update``."""
    insert: Callable[[Table], Any] = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert


def failure_upsert(insert: Any, key: str) -> Any:
    """One more failure for the account ``key`` names; returns the new count."""
    failure = insert.values(key=bindparam(key), failures=1, updated_at=bindparam("now"))
    return failure.on_conflict_do_update(
        index_elements=[attempts.c.key],
        set_={"failures": attempts.c.failures + 1, "updated_at": failure.excluded.updated_at},
    ).returning(attempts.c.failures)
