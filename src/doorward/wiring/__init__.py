"""The composition root: settings in, the ready use cases (and what they stand on) out; the parts
it puts together are built in parts.py."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from doorward.breaches import RangeClient
from doorward.config import Settings
from doorward.core.account_care import AccountCare
from doorward.core.accounts import Accounts
from doorward.core.admin import Admin
from doorward.core.admin_keys import AdminKeyring
from doorward.core.audit import Auditor
from doorward.core.clock import Clock, utc_now
from doorward.core.deps import AccountPolicy, Deps, SessionPolicy
from doorward.core.hashpool import HashPool
from doorward.core.mfa import Mfa
from doorward.core.outcomes import NoMetrics
from doorward.core.passkeys import Passkeys
from doorward.core.password_hashes import PasswordHasher
from doorward.core.passwords import PasswordPolicy
from doorward.core.ports import ThrottleStore
from doorward.core.profiles import TESTING
from doorward.core.sessions import Authenticator
from doorward.core.throttle import Throttle
from doorward.mail import MailOutbox
from doorward.metrics import PrometheusMetrics
from doorward.storage import SqlStore, create_engine, load_or_create_secret, open_checkpointer
from doorward.storage.audit import SqlAuditSink
from doorward.storage.lookup import open_driver, open_lookup
from doorward.storage.redis_throttle import RedisThrottleStore
from doorward.storage.throttle import SqlThrottleStore
from doorward.wiring.parts import (
    hash_pool,
    keep_metrics,
    mail_transport,
    relying_party,
    secret_box,
    throttle_policy,
)

_log = logging.getLogger("doorward")


@dataclass(frozen=True)
class Services:
    """Everything a request or a command needs, built once per process."""

    settings: Settings
    engine: AsyncEngine
    store: SqlStore
    pool: HashPool
    auth: Authenticator
    accounts: Accounts
    admin: Admin
    keyring: AdminKeyring
    mfa: Mfa
    care: AccountCare  # the holder's own email change and deletion
    passkeys: Passkeys
    throttle: Throttle
    redis: RedisThrottleStore | None  # the throttle's counters, when DOORWARD_REDIS_URL is set
    audit_sink: SqlAuditSink
    outbox: MailOutbox
    csrf_key: bytes = field(repr=False)
    metrics: PrometheusMetrics | None = None  # None: metrics are off (or a command, not a server)


@asynccontextmanager
async def open_services(
    settings: Settings,
    *,
    clock: Clock = utc_now,
    serving: bool = True,
    metrics: PrometheusMetrics | None = None,
) -> AsyncIterator[Services]:
    """Build the services for ``settings``; close the pool and the engine on exit.

    ``serving``: for the app, whose requests' database work DOORWARD_DB_TIMEOUT bounds as a whole;
    a command passes False. With ``metrics``, the core reports to them and a task counts the active
    sessions.
    """
    if settings.profile is TESTING:
        _log.warning("hash profile 'testing' is in use: never use it for real accounts")
    engine = create_engine(
        settings.database_url,
        timeout=settings.db_timeout,
        statement_timeout=settings.db_statement_timeout,
        pool_size=settings.db_pool_size,
        pooler=settings.db_pooler,
    )
    lookup = open_lookup(
        engine.url,
        engine.dialect,
        timeout=settings.db_timeout,
        statement_timeout=settings.db_statement_timeout,
        pool_size=settings.db_pool_size,
        pooler=settings.db_pooler,
    )
    # Serving, a request's every use of the database ends within DOORWARD_DB_TIMEOUT, statements
    # included; a command's statements may each take DOORWARD_DB_STATEMENT_TIMEOUT.
    store = SqlStore(
        engine,
        lookup=lookup,
        driver=open_driver(
            engine.url,
            engine.dialect,
            timeout=settings.db_timeout,
            statement_timeout=settings.db_statement_timeout,
            pool_size=settings.db_pool_size,
            pooler=settings.db_pooler,
        ),
        checkpointer=open_checkpointer(engine.url),
        limit=settings.db_timeout if serving else None,
    )
    audit_sink = SqlAuditSink(store)
    flusher = asyncio.create_task(audit_sink.run(), name="doorward-audit-flush")
    redis_store = (
        RedisThrottleStore.from_url(
            settings.redis_url.get_secret_value(), timeout=settings.db_timeout, prefix=settings.redis_prefix
        )
        if settings.redis_url is not None
        else None
    )
    throttle_store: ThrottleStore = redis_store or SqlThrottleStore(store, settings.throttle_lockout_failures)
    outbox = MailOutbox(
        mail_transport(settings),
        sender=settings.mail_from,
        public_url=settings.public_url,
        reset_minutes=max(1, int(settings.reset_token_lifetime.total_seconds() // 60)),
        link_hours=max(1, int(settings.verification_token_lifetime.total_seconds() // 3600)),
        clock=clock,
    )
    postman = asyncio.create_task(outbox.run(), name="doorward-mail")
    breached = (
        RangeClient(
            settings.breached_passwords_url,
            settings.breached_passwords_timeout,
            on_failure=(lambda: metrics.outcome("breach_check", "failed_open")) if metrics else None,
        )
        if settings.breached_passwords_url
        else None
    )
    deps: Deps | None = None
    pool: HashPool | None = None
    counter = (
        asyncio.create_task(keep_metrics(store, settings, metrics, clock), name="doorward-metrics")
        if metrics is not None
        else None
    )
    try:
        key = (
            settings.pepper.get_secret_value().encode()
            if settings.pepper is not None
            else await load_or_create_secret(engine, "import_hmac_key")
        )
        audit = Auditor([audit_sink], clock)
        hasher = PasswordHasher(settings.profile, key)
        pool = hash_pool(settings, hasher, metrics)
        deps = Deps(
            store=store,
            pool=pool,
            password_policy=PasswordPolicy(min_length=settings.password_min_length),
            session_policy=SessionPolicy(
                lifetime=settings.session_lifetime, idle_timeout=settings.session_idle_timeout
            ),
            throttle=Throttle(throttle_store, throttle_policy(settings), clock, audit),
            audit=audit,
            notifications=outbox,
            account_policy=AccountPolicy(
                require_email_verification=settings.require_email_verification,
                reset_token_lifetime=settings.reset_token_lifetime,
                verification_token_lifetime=settings.verification_token_lifetime,
                require_mfa=settings.require_mfa,
                new_device_mail=settings.new_device_mail,
            ),
            clock=clock,
            breached=breached,
            metrics=metrics or NoMetrics(),
        )
        accounts = Accounts(deps)
        rp = relying_party(settings)
        box = await secret_box(settings, engine)
        yield Services(
            settings=settings,
            engine=engine,
            store=store,
            pool=pool,
            auth=Authenticator(deps),
            accounts=accounts,
            admin=Admin(deps, accounts, audit_retention=settings.audit_retention),
            keyring=AdminKeyring(deps),
            mfa=Mfa(deps, box, rp),
            care=AccountCare(deps, box, accounts),
            passkeys=Passkeys(deps, rp),
            throttle=deps.throttle,
            redis=redis_store,
            audit_sink=audit_sink,
            outbox=outbox,
            csrf_key=await load_or_create_secret(engine, "csrf_key"),
            metrics=metrics,
        )
    finally:
        if counter is not None:
            counter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await counter
        if deps is not None:
            await deps.background.drain()  # the one set of background tasks all three share
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(outbox.drain(), timeout=5)  # mails in flight, not the retry tail
        postman.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await postman
        flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flusher
        await audit_sink.flush()
        if redis_store is not None:
            await redis_store.close()
        if breached is not None:
            await breached.close()
        if pool is not None:
            pool.close()
        await store.close()
        await engine.dispose()
