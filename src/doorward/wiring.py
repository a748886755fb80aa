"""The composition root: settings in, the ready use cases (and what they stand on) out."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

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
from doorward.core.errors import StorageUnavailable
from doorward.core.hashpool import HashPool
from doorward.core.mfa import Mfa
from doorward.core.outcomes import NoMetrics
from doorward.core.passkeys import Passkeys
from doorward.core.password_hashes import PasswordHasher
from doorward.core.passwords import PasswordPolicy
from doorward.core.ports import Metrics, ThrottleStore
from doorward.core.profiles import TESTING
from doorward.core.relying_party import RelyingParty
from doorward.core.secret_box import SecretBox
from doorward.core.sessions import Authenticator
from doorward.core.throttle import Throttle, ThrottlePolicy
from doorward.mail import FileTransport, MailOutbox, SmtpTransport, Transport
from doorward.metrics import FLUSH_SECONDS, PrometheusMetrics
from doorward.storage import SqlStore, create_engine, load_or_create_secret, open_checkpointer
from doorward.storage.audit import SqlAuditSink
from doorward.storage.lookup import open_driver, open_lookup
from doorward.storage.redis_throttle import RedisThrottleStore
from doorward.storage.throttle import SqlThrottleStore

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


async def secret_box(settings: Settings, engine: AsyncEngine) -> SecretBox:
    """The box TOTP secrets are encrypted in: DOORWARD_SECRET_KEYS, or a key kept in the database.

    The generated key is used as its hex text, as the database shows it: to move to keys of your
    own, set DOORWARD_SECRET_KEYS to yours followed by that text, until every secret was re-encrypted.
    """
    keys = settings.secret_key_list
    if keys:
        return SecretBox(keys)
    _log.warning(
        "DOORWARD_SECRET_KEYS is unset: TOTP secrets are encrypted with a key generated and kept in "
        "the database, beside the data it protects; set DOORWARD_SECRET_KEYS"
    )
    return SecretBox([(await load_or_create_secret(engine, "secret_key")).hex().encode()])


def relying_party(settings: Settings) -> RelyingParty:
    """doorward as the relying party of passkeys: DOORWARD_WEBAUTHN_RP_ID and _ORIGINS, or the
    public URL's host and origin."""
    rp_id = settings.rp_id
    with contextlib.suppress(ValueError):
        ipaddress.ip_address(rp_id)
        _log.warning(
            "the passkeys' relying party ID %r is an IP address, which browsers refuse: passkeys will "
            "not work; reach doorward by a name (localhost in development), or set DOORWARD_WEBAUTHN_RP_ID",
            rp_id,
        )
    return RelyingParty(rp_id, tuple(settings.webauthn_origin_list))


def hash_pool(settings: Settings, hasher: PasswordHasher, metrics: Metrics | None = None) -> HashPool:
    """Hashes on threads of this process, or in the processes ``doorward serve`` shares among its
    workers (doorward/hashing/runner.py); either way this process admits hash_workers + hash_queue."""
    runner = None
    if settings.hash_socket is not None:
        from doorward.hashing.runner import ProcessRunner

        runner = ProcessRunner(settings.hash_socket, metrics)
    return HashPool(hasher, settings.hash_workers, settings.hash_queue, runner, metrics)


async def keep_metrics(store: SqlStore, settings: Settings, metrics: PrometheusMetrics, clock: Clock) -> None:
    """Flush the fast path's figures every FLUSH_SECONDS (``PrometheusMetrics.flush``), and count
    the active sessions for their gauge every DOORWARD_METRICS_SESSIONS_INTERVAL: one COUNT per
    worker per interval, rather than one per scrape, or a gauge moved at every login and logout
    (which expiry, prune and other instances would leave wrong)."""
    interval = settings.metrics_sessions_interval.total_seconds()
    idle = settings.session_idle_timeout
    loop = asyncio.get_running_loop()
    count_at = loop.time()
    try:
        while True:
            metrics.flush()
            if loop.time() >= count_at:
                count_at = loop.time() + interval
                await _count_sessions(store, metrics, clock(), idle)
            await asyncio.sleep(min(FLUSH_SECONDS, interval))
    finally:
        metrics.flush()


async def _count_sessions(
    store: SqlStore, metrics: PrometheusMetrics, now: datetime, idle: timedelta | None
) -> None:
    try:
        async with store.read() as tx:
            count = await tx.sessions.count_active(now, now - idle if idle is not None else None)
    except StorageUnavailable as exc:
        metrics.store_error(exc.store)
    except Exception:
        _log.exception("counting the active sessions failed")
    else:
        metrics.active_sessions(count)


def mail_transport(settings: Settings) -> Transport:
    """The transport DOORWARD_MAILER names."""
    if settings.mailer == "smtp":
        return SmtpTransport(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_tls,
            settings.smtp_username,
            settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        )
    return FileTransport(settings.mail_dir)


def throttle_policy(settings: Settings) -> ThrottlePolicy:
    """The throttle numbers of these settings."""
    return ThrottlePolicy(
        free_failures=settings.throttle_free_failures,
        base_delay=settings.throttle_base_delay,
        max_delay=settings.throttle_max_delay,
        lockout_failures=settings.throttle_lockout_failures,
        client_failures=settings.throttle_client_failures,
        client_window=settings.throttle_client_window,
        client_registrations=settings.throttle_client_registrations,
        registration_window=settings.throttle_registration_window,
        client_mails=settings.throttle_client_mails,
        account_mails=settings.throttle_account_mails,
        mail_window=settings.throttle_mail_window,
        admin_requests=settings.throttle_admin_requests,
        admin_window=settings.throttle_admin_window,
    )
