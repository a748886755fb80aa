"""Mails that tell an account holder what happened: failed logins that began a wait or locked the
account (once per streak), and a login from a device not seen before (remembered by the login's own
write of its session: ``device_note``). Each says when, from which address and from what device, as
the sessions list names it."""

from __future__ import annotations

import hashlib
import ipaddress
from datetime import timedelta

from doorward.core.deps import Deps
from doorward.core.devices import describe_device
from doorward.core.models import Client, DeviceNote, Opened, Recognition, Sighting, User

KNOWN_DEVICE_DAYS = 90
"""A device not seen on the account for this long is new again."""

LAST_SEEN_PRECISION = timedelta(days=1)
"""A known device's last login is written at most this often: most logins are from one, and the
session's write then only reads the device's row (on PostgreSQL, writing it would add WAL)."""


def sighting(deps: Deps, client: Client) -> Sighting:
    """Now, the client's address and its device's name."""
    return Sighting(at=deps.clock(), address=client.address, device=describe_device(client.user_agent))


async def count_failed_login(deps: Deps, canonical: str, user: User | None, client: Client) -> None:
    """Count a failed login (``Throttle.login_failed``) and mail the account's owner when it is the
    one that began the wait or reached the lockout.

    The store's counter is atomic: each count is returned to exactly one failure, so the mail goes
    once per streak even when failures arrive all at once. None for an unknown address.
    """
    failures = await deps.throttle.login_failed(canonical, client.address)
    streak_notice(deps, user, failures, client)


def streak_notice(deps: Deps, user: User | None, failures: int, client: Client) -> None:
    """The mail, if any, that the account's ``failures``-th consecutive failure calls for."""
    if user is None:
        return
    policy = deps.throttle.policy
    if failures == policy.lockout_failures:
        deps.notifications.account_locked(user.email, sighting(deps, client))
    elif failures == policy.free_failures and failures < policy.lockout_failures:
        wait = policy.delay_after(failures)
        if wait > timedelta(0):
            deps.notifications.login_backoff(user.email, sighting(deps, client), wait)


def device_digest(seen: Sighting) -> bytes:
    """What identifies a device without keeping it: a SHA-256 of its name (browser and system, not
    the full user agent, which changes with every update) and its network (the /24 of an IPv4
    address, the /64 of an IPv6 one), so a new address from the same provider is no new device."""
    network = ""
    if seen.address:
        try:
            address = ipaddress.ip_address(seen.address)
            prefix = 24 if address.version == 4 else 64
            network = str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))
        except ValueError:
            network = seen.address
    return hashlib.sha256(f"{seen.device}\n{network}".encode()).digest()


def device_note(deps: Deps, client: Client) -> DeviceNote | None:
    """What a login hands its session's write to remember its device with (``Opening.device``,
    ``Store.open_session``): in that write, not in a read and a write of their own after it. None
    when new-device mails are off (nothing remembered either)."""
    if not deps.account_policy.new_device_mail:
        return None
    seen = sighting(deps, client)
    return DeviceNote(
        digest=device_digest(seen),  # the device named once, for the mail and the digest
        seen=seen,
        known_since=seen.at - timedelta(days=KNOWN_DEVICE_DAYS),
        noted_since=seen.at - LAST_SEEN_PRECISION,
    )


def mail_if_new(deps: Deps, user: User, device: DeviceNote | None, opened: Opened) -> None:
    """After the session's write with ``device`` answered ``opened``: mail the account's owner if
    it is a new device, behind the answer (a mail is rendered when queued)."""
    if device is not None and opened is Recognition.NEW:
        deps.background.spawn(_mail_new_device(deps, user.email, device.seen), "new-device-mail")


async def _mail_new_device(deps: Deps, to: str, seen: Sighting) -> None:
    deps.notifications.new_device(to, seen)
