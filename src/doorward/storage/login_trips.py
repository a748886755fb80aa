"""A login's two trips to the database, when the throttle's counters live there beside the users.

The attempt must be counted before the verify and the session written after it, so a login cannot
take fewer than two trips; these statements make it two (issue 24 item 2). Before the verify, the
user's row is read with the reservation: on PostgreSQL in its statement (a join on the reservation's
row), on SQLite in its write transaction. After a right password, the reservation is taken back with
the session's write: on PostgreSQL one statement (CTEs), on SQLite one write transaction. A failed
login needs no second trip: its attempt was counted as a failure when it was reserved.

The reservation's conditional upserts are built here (``client_reservation``,
``account_reservation``; SqlThrottleStore builds each once), and on PostgreSQL a login's two
statements run on asyncpg itself when the store has a driver (``OnDriver``, ``SqlStore.driver``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    bindparam,
    case,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from doorward.core.models import Opened, Opening, User
from doorward.storage.rows import user_of
from doorward.storage.store import (
    SqlStore,
    open_session_on,
    open_session_statement,
    open_session_values,
    opened,
)
from doorward.storage.tables import UTCDateTime, attempts, rate_windows, sessions, users
from doorward.storage.users import USER_BY_EMAIL

# Taking a reservation back: the client's attempt (in its window only), and the account's failures.
UNHIT = (
    update(rate_windows)
    .where(
        rate_windows.c.key == bindparam("counter"),
        rate_windows.c.window_start == bindparam("start"),
        rate_windows.c.count > 0,
    )
    .values(count=rate_windows.c.count - 1)
)
# Named ``account``, not ``key``: beside an UPDATE, a parameter named as a column becomes a SET.
FORGET = delete(attempts).where(attempts.c.key == bindparam("account"))


def window_hit(insert: Any, key: str, where: Any = None) -> Any:
    """One more event in the window of the counter ``key`` names (a new window starts at 1), where
    ``where`` holds for the row; returns the window's count (``insert``: the dialect's INSERT of
    ``rate_windows``)."""
    hit = insert.values(key=bindparam(key), window_start=bindparam("start"), count=1)
    return hit.on_conflict_do_update(
        index_elements=[rate_windows.c.key],
        set_={
            "count": case(
                (rate_windows.c.window_start == hit.excluded.window_start, rate_windows.c.count + 1),
                else_=1,
            ),
            "window_start": hit.excluded.window_start,
        },
        where=where,
    ).returning(rate_windows.c.count)


def client_reservation(insert: Any) -> Any:
    """One more attempt in the window of ``counter``, only while it counts under ``limit``."""
    return window_hit(
        insert,
        "counter",
        where=or_(
            rate_windows.c.window_start != insert.excluded.window_start,
            rate_windows.c.count < bindparam("limit"),
        ),
    )


def account_reservation(insert: Any, steps: int, client_reservation: Any = None) -> Any:
    """One more failure of ``key`` with the wait it brings (``wait0`` .. ``wait{steps-1}`` from
    failure ``free`` on), only while the account is neither locked nor waiting at ``now``
    (``insert``: the dialect's INSERT of ``attempts``).

    With the ``client_reservation`` (PostgreSQL): one statement with it, the account's only if
    the client's was admitted; it answers both counts (None where refused).
    """
    when = UTCDateTime()
    row = {
        "key": bindparam("key", type_=attempts.c.key.type),
        "failures": literal(1, Integer),
        "updated_at": bindparam("now", type_=when),
        "next_allowed_at": bindparam("first_wait", type_=when),
    }
    client = client_reservation.cte("client") if client_reservation is not None else None
    if client is None:
        reserve = insert.values(**row)
    else:
        admitted = select(*(value.label(name) for name, value in row.items())).where(
            exists(select(client.c.count))
        )
        reserve = insert.from_select(list(row), admitted)
    failures = attempts.c.failures + 1
    branches: list[tuple[ColumnElement[bool], Any]] = [
        (failures == bindparam(f"at{i}"), bindparam(f"wait{i}", type_=when)) for i in range(steps - 1)
    ]
    branches.append((failures >= bindparam(f"at{steps - 1}"), bindparam(f"wait{steps - 1}", type_=when)))
    statement = reserve.on_conflict_do_update(
        index_elements=[attempts.c.key],
        set_={
            "failures": failures,
            "updated_at": reserve.excluded.updated_at,
            "next_allowed_at": case(*branches, else_=attempts.c.next_allowed_at),
        },
        where=(attempts.c.failures < bindparam("lockout"))
        & or_(
            attempts.c.next_allowed_at.is_(None),
            attempts.c.next_allowed_at <= bindparam("now", type_=when),
        ),
    ).returning(attempts.c.failures, attempts.c.next_allowed_at)
    if client is None:
        return statement
    account = statement.cte("account")
    return select(
        select(client.c.count).scalar_subquery().label("counted"),
        select(account.c.failures).scalar_subquery().label("failures"),
        select(account.c.next_allowed_at).scalar_subquery().label("next_allowed_at"),
    ).add_cte(client, account)


class OnDriver:
    """A statement compiled once for asyncpg, run on ``SqlStore.driver`` without SQLAlchemy's
    execution, whose fixed cost per statement is several times the rest of the statement's (see
    benchmarks/README.md). Values are passed as the driver takes them: aware datetimes, bytes."""

    def __init__(self, statement: Any, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        self._order = tuple(compiled.positiontup or ())
        # The values SQLAlchemy bound itself (literals, a VALUES clause's constants).
        self._bound = {name: bind.value for name, bind in compiled.binds.items()}

    def args(self, parameters: Mapping[str, Any]) -> list[Any]:
        return [parameters[k] if k in parameters else self._bound[k] for k in self._order]


def with_user(reservation: Any) -> Any:
    """PostgreSQL: the reservation's one row, joined with the user of ``email`` (columns all None
    when there is none), so that reading the user costs no trip of its own."""
    row = reservation.subquery("reservation")
    joined = row.outerjoin(users, users.c.email_canonical == bindparam("email"))
    return select(row, users).select_from(joined)


def user_in(row: Mapping[Any, Any]) -> User | None:
    """The user of a ``with_user`` row (a mapping), or None."""
    return user_of(row) if row["id"] is not None else None


async def read_user(conn: AsyncConnection, email: str) -> User | None:
    """SQLite: the user of ``email``, read inside the reservation's transaction."""
    row = (await conn.execute(USER_BY_EMAIL, {"email": email})).first()
    return user_of(row._mapping) if row is not None else None


def _release_and_open(*, rehash: bool, client: bool, device: bool) -> Any:
    """PostgreSQL: ``open_session_statement`` with the reservation taken back in CTEs of its own,
    which run whether or not the session is written (a right password takes its attempt back
    even when a reset won meanwhile, as it did in a trip of its own).

    The client's row is locked before the account's, as a reservation locks them (its account
    upsert reads the client's CTE): the account's DELETE reads the client's CTE too, which makes
    PostgreSQL run that first. In the other order, a reservation and a release of the same
    account and client could each wait for the other's row: a deadlock, one of them failed.
    """
    statement = open_session_statement(rehash=rehash, device=device)
    return statement.add_cte(*release_ctes(FORGET, client=client))


def release_ctes(account: Any, *, client: bool) -> list[Any]:
    """A release's CTEs, the client's window (``UNHIT``) before the account's ``account`` (a DELETE
    or UPDATE of ``attempts``), which reads the client's CTE so that PostgreSQL runs that first."""
    if not client:
        return [account.cte("account")]
    unhit = UNHIT.returning(rate_windows.c.count).cte("client")
    after = select(func.count()).select_from(unhit).scalar_subquery() >= 0
    return [unhit, account.where(after).cte("account")]


_RELEASE_AND_OPEN = {
    (rehash, client, device): _release_and_open(rehash=rehash, client=client, device=device)
    for rehash in (False, True)
    for client in (False, True)
    for device in (False, True)
}
_ON_DRIVER: dict[tuple[bool, bool, bool], OnDriver] = {}  # the same, returning the session's id


async def release_and_open(
    store: SqlStore, key: str, counter: str | None, window_start: datetime, opening: Opening
) -> Opened:
    """Forget the account ``key``, take the attempt back from ``counter``'s window, and write the
    session of ``opening`` if its user's hash is still the one seen (``Store.open_session``), with
    its device noted when it names one."""
    device = opening.device
    if store.engine.dialect.name == "postgresql":
        values = open_session_values(
            opening.session, opening.token_digest, opening.seen_hash, opening.new_hash, device
        )
        values.update(account=key, counter=counter, start=window_start)
        which = opening.new_hash is not None, counter is not None, device is not None
        if store.driver is not None:
            driven = _ON_DRIVER.get(which)
            if driven is None:
                statement = _RELEASE_AND_OPEN[which]
                returning = statement if device is not None else statement.returning(sessions.c.id)
                driven = _ON_DRIVER[which] = OnDriver(returning, store.engine.dialect)
            return opened(device, await store.driver.fetchrow(driven.sql, *driven.args(values)))
        async with store.connection() as conn:  # autocommit: the statement is its transaction
            result = await conn.execute(_RELEASE_AND_OPEN[which], values)
            if device is None:
                return bool(result.rowcount == 1)
            row = result.first()
            return opened(device, row._mapping if row is not None else None)
    session = opening.session
    async with store.transaction() as conn:  # committed even when no session is written
        await conn.execute(FORGET, {"account": key})
        if counter is not None:
            await conn.execute(UNHIT, {"counter": counter, "start": window_start})
        return await open_session_on(
            conn, session, opening.token_digest, opening.seen_hash, opening.new_hash, device
        )
