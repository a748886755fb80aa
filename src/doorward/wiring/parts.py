"""The parts open_services puts together, each from the settings: the secret box, the relying
party, the hash pool, the mail transport, the throttle policy, and the metrics' background task."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from doorward.config import Settings
from doorward.core.clock import Clock
from doorward.core.errors import StorageUnavailable
from doorward.core.hashpool import HashPool
from doorward.core.password_hashes import PasswordHasher
from doorward.core.ports import Metrics
from doorward.core.relying_party import RelyingParty
from doorward.core.secret_box import SecretBox
from doorward.core.throttle import ThrottlePolicy
from doorward.mail import FileTransport, SmtpTransport, Transport
from doorward.metrics import FLUSH_SECONDS, PrometheusMetrics
from doorward.storage import SqlStore, load_or_create_secret

_log = logging.getLogger("doorward")


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
