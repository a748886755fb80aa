"""Typed settings from DOORWARD_* environment variables, validated once at start-up.

Over 300 lines on purpose: Settings is one table of every variable an operator sets, each with its
default, bounds, description and check; its parsing helpers are the 40 lines around it.
"""

from __future__ import annotations

import difflib
import functools
import ipaddress
import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from doorward.core.profiles import PROFILES, Profile


def _positive(value: timedelta | None) -> timedelta | None:
    if value is not None and value <= timedelta(0):
        raise ValueError("must be a positive duration")
    return value


def _duration(value: Any) -> Any:
    """Durations accept plain seconds ("3600") as well as ISO 8601 ("PT1H"); empty means unset."""
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
        if value.replace(".", "", 1).isdigit():
            return float(value)
    return value


def _not_negative(value: timedelta) -> timedelta:
    if value < timedelta(0):
        raise ValueError("must not be negative")
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration), AfterValidator(_positive)]
OptionalDuration = Annotated[timedelta | None, BeforeValidator(_duration), AfterValidator(_positive)]


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class Settings(BaseSettings):
    """Every setting doorward reads. Secrets are SecretStr, so they print as '**********'."""

    model_config = SettingsConfigDict(env_prefix="DOORWARD_", frozen=True, extra="ignore")

    database_url: str = Field(
        "sqlite:///./doorward.db",
        repr=False,  # may hold a password
        description="sqlite:///path/to/file.db or postgresql://user@host:port/db",
    )
    db_timeout: Annotated[float, Field(gt=0)] = Field(
        5.0, description="Seconds to wait to connect, for a pooled connection, or for SQLite's write lock"
    )
    db_statement_timeout: Annotated[float, Field(gt=0)] = Field(
        5.0, description="Seconds one statement may run (PostgreSQL statement_timeout) before 503"
    )
    db_pool_size: Annotated[int, Field(ge=1)] = Field(
        10,
        description="Database connections kept per process (as many again may open under load); "
        "on PostgreSQL, session checks have a pool of this size of their own",
    )
    db_pooler: Literal["none", "transaction"] = Field(
        "none",
        description="transaction: PostgreSQL is reached through pgbouncer in pool_mode=transaction: no "
        "startup parameters, no named prepared statements, and the statement timeout is the client's",
    )
    session_lifetime: Duration = Field(
        timedelta(hours=24), description="Absolute session lifetime (seconds or ISO 8601)"
    )
    session_idle_timeout: OptionalDuration = Field(
        None, description="Sessions unused this long are invalid; unset = no idle timeout"
    )
    hash_profile: str = Field("owasp-2023", description="argon2id profile: " + ", ".join(PROFILES))
    hash_workers: Annotated[int, Field(ge=1)] = Field(
        default_factory=_cpu_count,
        description="Password hashes computed at once (default: the cores): threads of the one "
        "process, or with serve --workers N, hashing processes the N share",
    )
    hash_queue: Annotated[int, Field(ge=0)] = Field(
        default_factory=lambda: 8 * _cpu_count(),
        description="Hashes allowed to wait per process (adds latency, not memory); beyond, 503 at once",
    )
    hash_socket: str | None = Field(
        None,
        description="Set by serve --workers N for its workers (the hashing processes' socket); leave unset",
    )
    password_min_length: Annotated[int, Field(ge=8, le=64)] = Field(
        15, description="Minimum password length in code points (NIST SP 800-63B rev 4: 15)"
    )
    pepper: SecretStr | None = Field(
        None,
        description="HMAC key wrapping imported SHA-256 hashes; generated and kept in the database "
        "when unset. Must never change once hashes were imported with it.",
    )
    secret_keys: SecretStr | None = Field(
        None,
        description="Comma-separated keys (each at least 32 characters) encrypting TOTP secrets: the "
        "first encrypts, all decrypt, so put a new key first and keep the old ones. Unset: a key is "
        "generated and kept in the database, beside the data it protects (a warning says so)",
    )
    require_mfa: bool = Field(
        False,
        description="Accounts without a second factor may only set one up (403 mfa_enrollment_required "
        "elsewhere); their sessions say mfaEnrollmentRequired",
    )
    redis_url: SecretStr | None = Field(
        None, description="redis://host:port/db: keep throttle counters in Redis instead of the database"
    )
    redis_prefix: str = Field("doorward:", description="Prefix of every Redis key doorward writes")
    breached_passwords_url: str | None = Field(
        None,
        description="A k-anonymity range service of breached passwords (such as "
        "https://api.pwnedpasswords.com/range): new passwords it lists are refused, and a login with one "
        "is flagged passwordCompromised. Unset: no check",
    )
    breached_passwords_timeout: Annotated[float, Field(gt=0, le=30)] = Field(
        1.0, description="Seconds to wait for the range service; then the check fails open (logged)"
    )
    trusted_proxies: str = Field(
        "",
        description="Comma-separated addresses or networks whose X-Forwarded-For is believed; "
        "from anyone else the header is ignored",
    )
    throttle_free_failures: Annotated[int, Field(ge=1)] = Field(
        5, description="Consecutive failed logins per account before waits begin"
    )
    throttle_base_delay: Duration = Field(
        timedelta(seconds=1), description="First wait; doubles each failure"
    )
    throttle_max_delay: Duration = Field(timedelta(minutes=15), description="Longest wait")
    throttle_lockout_failures: Annotated[int, Field(ge=2, le=99)] = Field(
        50, description="Consecutive failures that lock password login until unlock or reset (< 100)"
    )
    throttle_client_failures: Annotated[int, Field(ge=1)] = Field(
        100, description="Failed logins per client address per window"
    )
    throttle_client_window: Duration = Field(timedelta(minutes=15), description="Window of the above")
    throttle_client_registrations: Annotated[int, Field(ge=1)] = Field(
        20, description="Registrations per client address per window"
    )
    throttle_registration_window: Duration = Field(timedelta(hours=1), description="Window of the above")
    throttle_client_mails: Annotated[int, Field(ge=1)] = Field(
        10, description="Password reset requests and verification resends per client address per window"
    )
    throttle_account_mails: Annotated[int, Field(ge=1)] = Field(
        3, description="Mails of those kinds to one address per window (more are dropped in silence)"
    )
    throttle_mail_window: Duration = Field(timedelta(hours=1), description="Window of the two above")
    throttle_admin_requests: Annotated[int, Field(ge=1)] = Field(
        600, description="Admin API calls per admin key per window; beyond, 429"
    )
    throttle_admin_window: Duration = Field(timedelta(minutes=1), description="Window of the above")
    public_url: str = Field(
        "http://127.0.0.1:8000", description="Where users reach doorward: the base of links in mails"
    )
    webauthn_rp_id: str | None = Field(
        None,
        description="The passkeys' relying party ID: a domain, the host of DOORWARD_PUBLIC_URL or a "
        "parent domain of it (default: that host)",
    )
    webauthn_origins: str = Field(
        "",
        description="Comma-separated origins (https://app.example.com) whose pages may use passkeys "
        "(default: the origin of DOORWARD_PUBLIC_URL)",
    )
    hsts_max_age: Annotated[timedelta, BeforeValidator(_duration), AfterValidator(_not_negative)] = Field(
        timedelta(days=365),
        description="Strict-Transport-Security max-age, sent when DOORWARD_PUBLIC_URL is https; "
        "0 tells browsers to forget it",
    )
    hsts_preload: bool = Field(
        False,
        description="Add includeSubDomains and preload to Strict-Transport-Security (for the browsers' "
        "preload list: every subdomain must then serve https, and leaving the list takes months)",
    )
    require_email_verification: bool = Field(
        False,
        description="New accounts must confirm their address before logging in; registration then "
        "answers 202 alike for new and existing emails",
    )
    reset_token_lifetime: Duration = Field(timedelta(minutes=30), description="Password reset links expire")
    verification_token_lifetime: Duration = Field(
        timedelta(hours=24), description="Verification links expire"
    )
    mailer: Literal["file", "smtp"] = Field(
        "file", description="file: write each mail as an .eml file into DOORWARD_MAIL_DIR; smtp: send it"
    )
    mail_dir: Path = Field(Path("./mail"), description="Where the file mailer writes")
    new_device_mail: bool = Field(
        True,
        description="Mail the account's owner on a login from a device (browser and system, network) "
        "not seen on the account for 90 days; never for the account's first login",
    )
    mail_from: str = Field("doorward <no-reply@localhost>", description="From: of every mail")
    smtp_host: str = "localhost"
    smtp_port: Annotated[int, Field(ge=1, le=65535)] = 587
    smtp_tls: Literal["starttls", "tls", "none"] = Field(
        "starttls", description="starttls (port 587), tls (implicit, port 465) or none (local relays only)"
    )
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    cookie_secure: bool = Field(
        True,
        description="Browser sessions use a __Host- cookie, which requires Secure. Browsers accept "
        "Secure cookies from http://localhost; elsewhere plain HTTP needs this off (development only)",
    )
    cors_origins: str = Field(
        "",
        description="Comma-separated origins (https://app.example.com) that may call the API from a browser",
    )
    audit_retention: OptionalDuration = Field(
        timedelta(days=365),
        description="doorward prune deletes audit events older than this (seconds or ISO 8601, e.g. "
        "P365D); empty keeps them forever",
    )
    max_body_bytes: Annotated[int, Field(ge=1024)] = 64 * 1024
    api_docs: bool = Field(
        False,
        description="Serve the Swagger UI (/docs) and ReDoc (/redoc) viewers of /openapi.json. Off: they "
        "run a CDN's script on the login page's origin, without a CSP (development only)",
    )
    max_header_bytes: Annotated[int, Field(ge=1024)] = Field(
        16 * 1024,
        description="Largest request head (request line and headers); larger answers 431 and is not read",
    )
    max_headers: Annotated[int, Field(ge=8)] = Field(100, description="Most header lines in a request; 431")
    header_timeout: Duration = Field(
        timedelta(seconds=10),
        description="The whole request head must arrive within this, counted from the connection's "
        "start or the request's first byte (a keep-alive wait is uvicorn's 5 s); then 408",
    )
    body_timeout: Duration = Field(
        timedelta(seconds=15),
        description="The whole request body must arrive within this after its head; then 408",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    access_log: bool = Field(
        True,
        description="One JSON line per request (query strings redacted); off when a proxy in "
        "front already logs requests: it is about a twentieth of a session check's cost",
    )
    metrics_token: SecretStr | None = Field(
        None,
        description="Bearer token (at least 16 characters) that GET /metrics on the main port asks "
        "for; unset: /metrics is not served there",
    )
    metrics_address: str | None = Field(
        None,
        description="host:port (127.0.0.1:9108) where the supervisor serves GET /metrics without a "
        "token; keep it private",
    )
    metrics_sessions_interval: Duration = Field(
        timedelta(seconds=30), description="How often each worker counts the active sessions for /metrics"
    )

    @field_validator("hash_profile")
    @classmethod
    def _known_profile(cls, value: str) -> str:
        if value not in PROFILES:
            raise ValueError(f"unknown profile {value!r}; choose one of {', '.join(PROFILES)}")
        return value

    @field_validator("hash_socket")
    @classmethod
    def _a_socket(cls, value: str | None) -> str | None:
        # Set by hand, or left over from a serve that has stopped, it would answer every login 503.
        if value is not None and not Path(value).is_socket():  # False when there is nothing
            raise ValueError(
                f"{value!r} is not a listening socket: serve --workers N sets this for its workers; unset it"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        scheme = value.partition("://")[0].partition("+")[0]
        if scheme not in {"sqlite", "postgresql", "postgres"}:
            raise ValueError("database_url must start with sqlite:// or postgresql://")
        if scheme == "sqlite" and ":memory:" in value:
            raise ValueError("an in-memory SQLite database is not shared between connections")
        return value

    @model_validator(mode="after")
    def _pooler_needs_postgresql(self) -> Settings:
        if self.db_pooler != "none" and self.database_url.startswith("sqlite"):
            raise ValueError(
                "DOORWARD_DB_POOLER is for PostgreSQL; a SQLite DOORWARD_DATABASE_URL has no pooler"
            )
        return self

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")) or "?" in value or "#" in value:
            raise ValueError("must be an http(s) URL without query or fragment, e.g. https://id.example.com")
        return value.rstrip("/")

    @field_validator("breached_passwords_url")
    @classmethod
    def _range_url(cls, value: str | None) -> str | None:
        if not value:
            return None  # empty, as unset: no check
        return cls._http_url(value)

    @model_validator(mode="after")
    def _preload_needs_a_year(self) -> Settings:
        # hstspreload.org refuses shorter: better one line at start than a refusal weeks later.
        if self.hsts_preload and self.hsts_max_age < timedelta(days=365):
            raise ValueError("DOORWARD_HSTS_PRELOAD needs DOORWARD_HSTS_MAX_AGE of at least a year")
        return self

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        for item in filter(None, (part.strip() for part in value.split(","))):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"not an address or network: {item!r}") from None
        return value

    @field_validator("webauthn_rp_id")
    @classmethod
    def _a_domain(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None  # set but empty: as unset
        value = value.strip().lower()
        if urlsplit(f"//{value}").hostname != value or "/" in value:
            raise ValueError("must be a domain, without scheme, port or path, e.g. example.com")
        return value

    @field_validator("webauthn_origins")
    @classmethod
    def _origins(cls, value: str) -> str:
        for item in filter(None, (part.strip() for part in value.split(","))):
            parts = urlsplit(item)
            if parts.scheme not in {"http", "https"} or not parts.hostname or item != _origin(item):
                raise ValueError(f"not an origin (scheme://host[:port], no path): {item!r}")
        return value

    @model_validator(mode="after")
    def _origins_under_the_rp_id(self) -> Settings:
        # A browser refuses a ceremony whose RP ID is not the page's host or a parent domain of it;
        # saying so at start beats every passkey failing later.
        for origin in self.webauthn_origin_list:
            host = urlsplit(origin).hostname or ""
            if host != self.rp_id and not host.endswith(f".{self.rp_id}"):
                raise ValueError(
                    f"DOORWARD_WEBAUTHN_ORIGINS: {origin} is not on DOORWARD_WEBAUTHN_RP_ID {self.rp_id!r} "
                    "or a subdomain of it"
                )
        return self

    @property
    def rp_id(self) -> str:
        """The relying party ID of passkeys: ``webauthn_rp_id``, or the host of ``public_url``."""
        return self.webauthn_rp_id or urlsplit(self.public_url).hostname or ""

    @property
    def webauthn_origin_list(self) -> list[str]:
        """The origins passkey ceremonies may come from: ``webauthn_origins``, or ``public_url``'s."""
        listed = [part.strip() for part in self.webauthn_origins.split(",") if part.strip()]
        return listed or [_origin(self.public_url)]

    @property
    def cors_origin_list(self) -> list[str]:
        """``cors_origins`` parsed."""
        return [origin.strip().rstrip("/") for origin in self.cors_origins.split(",") if origin.strip()]

    @property
    def trusted_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """``trusted_proxies`` parsed (once per value: every request asks)."""
        return _networks(self.trusted_proxies)

    @field_validator("metrics_token")
    @classmethod
    def _long_metrics_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("the metrics token must be at least 16 characters (e.g. 32 hex digits)")
        return value

    @field_validator("metrics_address")
    @classmethod
    def _host_and_port(cls, value: str | None) -> str | None:
        if value is not None and value.strip():
            _host_port(value.strip())
            return value.strip()
        return None

    @property
    def metrics_listen(self) -> tuple[str, int] | None:
        """``metrics_address`` as (host, port), brackets of an IPv6 address removed."""
        return _host_port(self.metrics_address) if self.metrics_address else None

    @property
    def metrics_enabled(self) -> bool:
        """/metrics is served somewhere: on the main port with a token, or on its own address."""
        return self.metrics_token is not None or self.metrics_address is not None

    @field_validator("pepper")
    @classmethod
    def _long_pepper(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("pepper must be at least 32 characters (e.g. 64 hex digits)")
        return value

    @field_validator("secret_keys")
    @classmethod
    def _long_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        keys = [key.strip() for key in value.get_secret_value().split(",")]
        if not any(keys):
            return None  # set but empty: as unset
        for position, key in enumerate(keys, 1):
            if len(key) < 32:
                raise ValueError(f"key {position} is shorter than 32 characters (e.g. use 64 hex digits)")
        return value

    @property
    def secret_key_list(self) -> list[bytes]:
        """``secret_keys`` parsed, the encrypting key first; empty when unset."""
        if self.secret_keys is None:
            return []
        return [key.strip().encode() for key in self.secret_keys.get_secret_value().split(",")]

    @property
    def profile(self) -> Profile:
        """The argon2id profile named by ``hash_profile``."""
        return PROFILES[self.hash_profile]


def _host_port(address: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` as (host, port); ValueError if it is neither."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("must be host:port, e.g. 127.0.0.1:9108")
    if host.startswith("[") != host.endswith("]"):
        raise ValueError("an IPv6 address goes in brackets: [::1]:9108")
    return host.strip("[]"), int(port)


def _origin(url: str) -> str:
    """scheme://host[:port] of ``url``, as a browser writes it into clientDataJSON (no default port)."""
    parts = urlsplit(url)
    scheme, host, port = parts.scheme.lower(), (parts.hostname or ""), parts.port
    if ":" in host:
        host = f"[{host}]"
    default = (scheme, port) in {("http", 80), ("https", 443)}
    return f"{scheme}://{host}" if port is None or default else f"{scheme}://{host}:{port}"


@functools.lru_cache(maxsize=8)
def _networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    parts = (part.strip() for part in text.split(","))
    return tuple(ipaddress.ip_network(part, strict=False) for part in parts if part)


PREFIX = "DOORWARD_"
NOT_SETTINGS = ("DOORWARD_TEST_",)
"""Prefixes of DOORWARD_* variables that are not settings: the test suite's servers (README)."""


def unknown_variables(environ: Mapping[str, str]) -> list[tuple[str, str | None]]:
    """The ``DOORWARD_*`` names of ``environ`` that no setting reads (a misspelling, most likely), in
    order, each with the setting's name it is closest to, or None. Names only: never a value."""
    known = {name.upper(): f"{PREFIX}{name.upper()}" for name in Settings.model_fields}
    found = []
    for name in sorted(environ):
        upper = name.upper()  # pydantic-settings reads names in any case
        if not upper.startswith(PREFIX) or upper.startswith(NOT_SETTINGS) or upper[len(PREFIX) :] in known:
            continue
        # Compared without the prefix, which every name shares and which would make anything look close.
        close = difflib.get_close_matches(upper[len(PREFIX) :], list(known), n=1)
        found.append((name, known[close[0]] if close else None))
    return found
