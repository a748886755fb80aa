"""The administrator's reads as JSON objects, in the admin API's names: the admin API answers with
them and ``doorward users show --json`` and ``doorward audit --json`` print them, so the two cannot
drift apart. Times are ``clock.timestamp``'s (UTC, to the second)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from doorward.core.admin_records import AccountDetail, AuditEntry, SessionInfo
from doorward.core.clock import timestamp
from doorward.core.models import User


def optional_timestamp(moment: datetime | None) -> str | None:
    """``timestamp``, or None (JSON null) for a time that is not there."""
    return timestamp(moment) if moment is not None else None


def user_summary(user: User) -> dict[str, Any]:
    """An account as a list shows it."""
    return {
        "id": user.id,
        "email": user.email,
        "createdAt": timestamp(user.created_at),
        "disabled": user.disabled,
        "verified": user.email_verified_at is not None,
        "mfaEnabled": user.mfa_enabled,
    }


def account_json(detail: AccountDetail, summary: dict[str, Any]) -> dict[str, Any]:
    """One account: ``summary`` (the account as its reader lists it), its state, its live sessions."""
    return {
        "user": {**summary, **account_state(detail)},
        "sessions": [session_json(session) for session in detail.sessions],
    }


def account_state(detail: AccountDetail) -> dict[str, Any]:
    """An account's login state and its second factors, counted (the fields after its summary)."""
    return {
        "locked": detail.locked,
        "failedLogins": detail.throttle.failures,
        "lockedOut": detail.throttle.locked,
        "retryAt": optional_timestamp(detail.throttle.wait_until),
        "factors": {
            "totp": detail.factors.totp,
            "recoveryCodesLeft": detail.factors.recovery_codes_left,
            "passkeys": detail.factors.passkeys,
        },
    }


def session_json(session: SessionInfo) -> dict[str, Any]:
    """One live session of an account (never its token)."""
    return {
        "id": session.id,
        "createdAt": timestamp(session.created_at),
        "lastSeenAt": timestamp(session.last_seen_at),
        "expiresAt": timestamp(session.expires_at),
        "clientAddress": session.client_address,
        "userAgent": session.user_agent,
        "device": session.device,
        "aal": session.aal,
        "amr": list(session.amr),
    }


def event_json(entry: AuditEntry) -> dict[str, Any]:
    """One audit event."""
    return {
        "id": entry.id,
        "at": timestamp(entry.at),
        "event": entry.event,
        "userId": entry.user_id,
        "clientAddress": entry.client,
        "detail": entry.detail,
    }
