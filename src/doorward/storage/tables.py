"""The schema, as SQLAlchemy Core tables. Migrations must produce exactly this."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


def utc(value: datetime | str | None) -> datetime | None:
    """An aware UTC datetime from what a driver returns: aware (asyncpg), naive or text (SQLite)."""
    if isinstance(value, str):  # SQLite: naive UTC text; appending the offset parses faster than replace()
        return datetime.fromisoformat(value + "+00:00")
    if value is None or value.tzinfo is UTC:
        return value
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite (which stores naive text) too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: doorward stores aware UTC times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return utc(value)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False),
    Column("email_canonical", String(320), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("email_verified_at", UTCDateTime),
    # On the user row, so a login without MFA pays no read to learn there is none.
    Column("mfa_enabled", Boolean, nullable=False, default=False, server_default=false()),
    # The breached-password check at login: only when it last ran, and since when the range service
    # lists the current password; never the password or a hash of it (a new password clears both).
    Column("breach_checked_at", UTCDateTime),
    Column("password_compromised_at", UTCDateTime),
    Index("ix_users_email_canonical", "email_canonical", unique=True),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("token_digest", LargeBinary(32), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("client_address", String(64)),
    Column("user_agent", String(512)),
    Column("aal", SmallInteger, nullable=False, server_default="1"),
    Column("amr", String(64), nullable=False, server_default="pwd"),  # RFC 8176 values, space-separated
    Index("ix_sessions_token_digest", "token_digest", unique=True),
    Index("ix_sessions_user_id", "user_id"),
)

account_tokens = Table(
    "account_tokens",
    metadata,
    Column("digest", LargeBinary(32), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("purpose", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("detail", String(320)),  # an email change's address (not a secret; the token is)
    Index("ix_account_tokens_user_id", "user_id"),
)
"""Mailed single-use tokens (password reset, email verification, email change): SHA-256 digests only."""

attempts = Table(
    "attempts",
    metadata,
    Column("key", String(400), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("next_allowed_at", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
)
"""Consecutive failed logins per account (or unknown email), and when it may try next."""

rate_windows = Table(
    "rate_windows",
    metadata,
    Column("key", String(400), primary_key=True),
    Column("window_start", UTCDateTime, nullable=False),
    Column("count", Integer, nullable=False),
)
"""Fixed-window counters per client address; one row per key, reset when a new window starts."""

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("event", String(64), nullable=False),
    Column("user_id", Integer),
    Column("client_address", String(64)),
    Column("detail", Text, nullable=False),
    Index("ix_audit_events_at", "at"),
    Index("ix_audit_events_user_id", "user_id"),
)

secrets = Table(
    "secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

totp_factors = Table(
    "totp_factors",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("secret", LargeBinary, nullable=False),
    Column("confirmed_at", UTCDateTime),
    Column("last_step", BigInteger, nullable=False, server_default="0"),
    Column("created_at", UTCDateTime, nullable=False),
)
"""One authenticator app per user: its secret AES-GCM encrypted (core/secret_box.py), pending until
confirmed; ``last_step`` the newest 30-second step a code was accepted for."""

recovery_codes = Table(
    "recovery_codes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("code_hash", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime),
    Index("ix_recovery_codes_user_id", "user_id"),
)
"""Single-use recovery codes: argon2id hashes only (50-bit codes need a salted, slow hash)."""

mfa_challenges = Table(
    "mfa_challenges",
    metadata,
    Column("digest", LargeBinary(32), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("used_at", UTCDateTime),
    # What the first step proved (RFC 8176): "pwd", or "hwk"/"swk" for a passkey without user verification
    Column("first_factor", String(8), nullable=False, server_default="pwd"),
    Index("ix_mfa_challenges_user_id", "user_id"),
)
"""Logins waiting for their second factor: SHA-256 digests of the mfaTokens, never the tokens."""

passkeys = Table(
    "passkeys",
    metadata,
    Column("id", String(32), primary_key=True),  # public and random: what the API names a passkey by
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("credential_id", LargeBinary(1023), nullable=False),  # WebAuthn caps it at 1023 bytes
    Column("public_key", LargeBinary, nullable=False),  # COSE_Key
    Column("sign_count", BigInteger, nullable=False, server_default="0"),  # an unsigned 32-bit count
    Column("transports", String(128), nullable=False, server_default=""),  # space-separated
    Column("aaguid", String(36), nullable=False),
    Column("backup_eligible", Boolean, nullable=False),
    Column("backed_up", Boolean, nullable=False),
    Column("user_handle", LargeBinary(64), nullable=False),
    Column("name", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime),
    Index("ix_passkeys_credential_id", "credential_id", unique=True),
    Index("ix_passkeys_user_id", "user_id"),
)
"""WebAuthn credentials: public keys and what the authenticator said of itself; nothing secret."""

webauthn_challenges = Table(
    "webauthn_challenges",
    metadata,
    Column("digest", LargeBinary(32), primary_key=True),
    Column("purpose", String(16), nullable=False),  # register, login, second_step
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE")),  # NULL for a login
    Column("mfa_digest", LargeBinary(32)),  # the mfaToken a second step's challenge completes
    Column("user_handle", LargeBinary(64)),  # a registration's: the user.id its options gave
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime),
    Index("ix_webauthn_challenges_user_id", "user_id"),
)
"""The challenges of passkey ceremonies: SHA-256 digests, single-use, five minutes."""

admin_keys = Table(
    "admin_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False),
    Column("scope", String(8), nullable=False),  # read, write
    Column("digest", LargeBinary(32), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
    Index("ix_admin_keys_name", "name", unique=True),
    Index("ix_admin_keys_digest", "digest", unique=True),
)
"""The admin API's keys: SHA-256 digests only (core/admin_keys.py says why not argon2). A revoked
key's row stays, so its name is never reused and the audit trail's key names stay unambiguous."""

known_devices = Table(
    "known_devices",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("digest", LargeBinary(32), primary_key=True),
    Column("last_seen_at", UTCDateTime, nullable=False),
)
"""The devices each account logged in from: a SHA-256 of the device's name and network
(core/notices.py), never the user agent or the address; the new-device mail compares with them."""
