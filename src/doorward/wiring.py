"""The composition root: settings in, a ready Authenticator (and what it stands on) out."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from doorward.config import Settings
from doorward.core import (
    Authenticator,
    Clock,
    HashPool,
    PasswordHasher,
    PasswordPolicy,
    SessionPolicy,
    utc_now,
)
from doorward.core.profiles import TESTING
from doorward.storage import SqlStore, create_engine, load_or_create_secret

_log = logging.getLogger("doorward")


@dataclass(frozen=True)
class Services:
    """Everything a request or a command needs, built once per process."""

    settings: Settings
    engine: AsyncEngine
    store: SqlStore
    pool: HashPool
    auth: Authenticator


@asynccontextmanager
async def open_services(settings: Settings, *, clock: Clock = utc_now) -> AsyncIterator[Services]:
    """Build the services for ``settings``; close the pool and the engine on exit."""
    if settings.profile is TESTING:
        _log.warning("hash profile 'testing' is in use: never use it for real accounts")
    engine = create_engine(
        settings.database_url,
        timeout=settings.db_timeout,
        statement_timeout=settings.db_statement_timeout,
        pool_size=settings.db_pool_size,
    )
    pool = HashPool(settings.hash_workers, settings.hash_queue)
    try:
        key = (
            settings.pepper.get_secret_value().encode()
            if settings.pepper is not None
            else await load_or_create_secret(engine, "import_hmac_key")
        )
        store = SqlStore(engine)
        auth = Authenticator(
            store=store,
            hasher=PasswordHasher(settings.profile, key),
            pool=pool,
            password_policy=PasswordPolicy(min_length=settings.password_min_length),
            session_policy=SessionPolicy(
                lifetime=settings.session_lifetime, idle_timeout=settings.session_idle_timeout
            ),
            clock=clock,
        )
        yield Services(settings=settings, engine=engine, store=store, pool=pool, auth=auth)
    finally:
        pool.close()
        await engine.dispose()
