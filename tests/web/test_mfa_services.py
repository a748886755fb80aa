"""Multi-factor login through the real services, on both databases: the wiring (keys, policy), an
AAL2 session as every read sees it, the admin reset from the command line, and what the database
holds (no TOTP secret, recovery code or mfaToken in clear). The HTTP contract is tests/web/test_mfa.py."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pyotp
import pytest
from fastapi import FastAPI

from doorward.core.errors import MfaRequired
from doorward.core.mfa import Mfa
from doorward.core.models import Client, User
from doorward.wiring import Services, open_services
from tests.cli.conftest import assert_one_line_error, invoke
from tests.conftest import EMAIL, PASSWORD, FakeClock, app_for, bearer, make_settings, register
from tests.db import fetch, fetch_sync

CLIENT = Client("192.0.2.9", "pytest")
KEYS = "a configured key of at least thirty-two characters"


def services_of(app: FastAPI) -> Services:
    services = app.state.services
    assert isinstance(services, Services)
    return services


async def enrol(mfa: Mfa, user: User, now: object = None) -> tuple[str, list[str]]:
    """Turn TOTP on for ``user``: its secret and recovery codes."""
    enrolment = await mfa.begin_totp(user, PASSWORD, CLIENT, aal=2)
    totp = pyotp.TOTP(enrolment.secret)
    code = totp.at(now) if now is not None else totp.now()  # type: ignore[arg-type]
    return enrolment.secret, await mfa.confirm_totp(user, code, CLIENT, aal=2)


async def enrolled_user(app: FastAPI, client: httpx.AsyncClient, clock: FakeClock) -> tuple[str, list[str]]:
    await register(client)
    services = services_of(app)
    async with services.store.read() as tx:
        user = await tx.users.by_canonical_email(EMAIL)
    assert user is not None
    secret, codes = await enrol(services.mfa, user, clock())
    clock.advance(seconds=30)  # the confirming code is used up
    return secret, codes


async def mfa_token(client: httpx.AsyncClient) -> str:
    response = await client.post("/login", json={"email": EMAIL, "password": PASSWORD})
    assert response.status_code == 401, response.text
    return str(response.json()["mfaToken"])


# --- the second step, as every read sees it (the HTTP contract: tests/web/test_mfa.py) -------------


async def test_the_second_step_opens_an_aal2_session_every_read_sees(
    started: tuple[FastAPI, httpx.AsyncClient], clock: FakeClock
) -> None:
    app, client = started
    secret, _ = await enrolled_user(app, client, clock)
    services = services_of(app)

    result = await services.mfa.complete_login(
        await mfa_token(client), CLIENT, code=pyotp.TOTP(secret).at(clock())
    )

    assert (await client.get("/session", headers=bearer(result.token))).status_code == 200
    user, session = await services.auth.check(result.token)  # the fast lookup
    assert (user.mfa_enabled, session.aal, session.amr) == (True, 2, ("pwd", "otp"))
    (listed,) = await services.auth.list_sessions(user.id)
    assert (listed.aal, listed.amr) == (2, ("pwd", "otp"))


# --- the database holds no factor secret in clear -----------------------------------------------


async def secrets_in_clear(started: tuple[FastAPI, httpx.AsyncClient], clock: FakeClock) -> list[bytes]:
    """Enrol, log in with a code and with a recovery code, leave one login half done: every secret
    that passed through, as bytes to look for."""
    app, client = started
    secret, codes = await enrolled_user(app, client, clock)
    mfa = services_of(app).mfa
    used = await mfa_token(client)
    await mfa.complete_login(used, CLIENT, code=pyotp.TOTP(secret).at(clock()))
    await mfa.complete_login(await mfa_token(client), CLIENT, recovery_code=codes[0])
    pending = await mfa_token(client)
    assert await fetch(services_of(app).settings.database_url, "SELECT count(*) FROM mfa_challenges") == [
        (3,)
    ]
    values = [secret, secret.lower(), used, pending, PASSWORD]
    for code in codes:
        values += [code, code.replace("-", ""), code.upper()]
    return [value.encode() for value in values]


async def test_no_totp_secret_recovery_code_or_mfa_token_in_the_sqlite_files(
    sqlite_url: str, clock: FakeClock
) -> None:
    async with app_for(sqlite_url, clock) as started:
        clear = await secrets_in_clear(started, clock)
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    files = [p for p in path.parent.iterdir() if p.name.startswith(path.name)]  # db, WAL, shm
    assert files
    for file in files:
        raw = file.read_bytes()
        for value in clear:
            assert value not in raw, (file, value)


async def test_no_totp_secret_recovery_code_or_mfa_token_in_a_postgresql_dump(
    postgres_database: str, clock: FakeClock
) -> None:
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        pytest.skip("pg_dump is not installed")
    async with app_for(postgres_database, clock) as started:
        clear = await secrets_in_clear(started, clock)
    dump = subprocess.run([pg_dump, "--data-only", postgres_database], capture_output=True, check=True).stdout
    assert b"COPY public.totp_factors" in dump and b"COPY public.recovery_codes" in dump
    assert b"$argon2id$" in dump  # the codes' hashes are there...
    for value in clear:
        assert value not in dump, value  # ...and nothing in clear
    # Nor hex-encoded, as bytea columns are dumped.
    for value in clear:
        assert value.hex().encode() not in dump, value


# --- keys and the policy, from the settings -------------------------------------------------------


async def test_without_configured_keys_a_key_is_generated_kept_and_warned_about(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="doorward"):
        async with open_services(make_settings(database_url)) as services:
            user = await services.accounts.register(EMAIL, PASSWORD)
            assert user is not None
            secret, _ = await enrol(services.mfa, user)
    assert "DOORWARD_SECRET_KEYS is unset" in caplog.text
    ((key,),) = await fetch(database_url, "SELECT value FROM secrets WHERE name = 'secret_key'")
    # Generated once: the next start reads it back and opens the secret it encrypted.
    async with open_services(make_settings(database_url)) as services:
        async with services.store.read() as tx:
            stored = await tx.users.by_canonical_email(EMAIL)
            assert stored is not None and stored.mfa_enabled
        assert await fetch(database_url, "SELECT value FROM secrets WHERE name = 'secret_key'") == [(key,)]
        assert (await services.mfa.status(stored)).totp
    # And the text the database shows, given as a configured key, opens it too (moving to own keys).
    async with open_services(make_settings(database_url, secret_keys=f"{KEYS},{key}")) as services:
        token = await password_step(services)
        next_step = pyotp.TOTP(secret).at(time.time() + 30)  # the confirming step's code is used up
        result = await services.mfa.complete_login(token, CLIENT, code=next_step)
        assert result.session.aal == 2


async def password_step(services: Services) -> str:
    with pytest.raises(MfaRequired) as required:
        await services.auth.login(EMAIL, PASSWORD, CLIENT)
    return required.value.token


async def test_configured_keys_are_used_and_nothing_is_generated(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="doorward"):
        async with open_services(make_settings(database_url, secret_keys=f" {KEYS} ")) as services:
            user = await services.accounts.register(EMAIL, PASSWORD)
            assert user is not None
            await enrol(services.mfa, user)
    assert "DOORWARD_SECRET_KEYS" not in caplog.text
    assert await fetch(database_url, "SELECT value FROM secrets WHERE name = 'secret_key'") == []
    assert KEYS not in repr(make_settings(database_url, secret_keys=KEYS))


def test_a_short_secret_key_is_named_but_never_printed(database_url: str) -> None:
    keys = f"{KEYS},too-short-secret-xyz"
    result = invoke(database_url, "users", "disable", EMAIL, secret_keys=keys)
    assert_one_line_error(result, "DOORWARD_SECRET_KEYS", "key 2")
    assert "too-short-secret-xyz" not in result.output
    assert KEYS not in result.output


async def test_the_mfa_policy_setting_reaches_the_login(database_url: str) -> None:
    async with open_services(make_settings(database_url, require_mfa=True)) as services:
        await services.accounts.register(EMAIL, PASSWORD)
        result = await services.auth.login(EMAIL, PASSWORD, CLIENT)
        assert (result.session.aal, result.mfa_enrollment_required) == (1, True)
        assert services.auth.enrollment_required(result.user)
    async with open_services(make_settings(database_url)) as services:
        assert not (await services.auth.login(EMAIL, PASSWORD, CLIENT)).mfa_enrollment_required


# --- doorward users mfa-reset ---------------------------------------------------------------------


def test_users_mfa_reset_removes_the_factor_ends_the_sessions_and_mails(
    database_url: str, tmp_path: Path
) -> None:
    mail_dir = tmp_path / "mail"  # not tmp_path itself: the SQLite database is there

    async def set_up() -> str:
        async with open_services(make_settings(database_url, mail_dir=mail_dir)) as services:
            user = await services.accounts.register(EMAIL, PASSWORD)
            assert user is not None
            _, codes = await enrol(services.mfa, user)
            token = await password_step(services)
            return (await services.mfa.complete_login(token, CLIENT, recovery_code=codes[0])).token

    session_token = asyncio.run(set_up())
    for mail in mail_dir.iterdir():
        mail.unlink()

    result = invoke(database_url, "users", "mfa-reset", EMAIL.upper(), mail_dir=str(mail_dir))

    assert result.exit_code == 0, result.output
    # The email as stored, not as typed (as every users command echoes it).
    assert result.stdout.strip() == f"reset two-step verification of {EMAIL}; ended 1 session(s)"
    assert fetch_sync(database_url, "SELECT mfa_enabled FROM users") in ([(False,)], [(0,)])
    for table in ("totp_factors", "recovery_codes", "mfa_challenges", "sessions"):
        assert fetch_sync(database_url, f"SELECT count(*) FROM {table}") == [(0,)], table  # noqa: S608
    (mail,) = mail_dir.iterdir()
    assert "Subject: Two-step verification was reset by an administrator" in mail.read_text()
    events = [
        json.loads(detail)
        for (detail,) in fetch_sync(
            database_url, "SELECT detail FROM audit_events WHERE event = 'mfa.admin_reset'"
        )
    ]
    assert events == [{"sessions_ended": 1}]
    assert session_token

    again = invoke(database_url, "users", "mfa-reset", EMAIL)
    assert_one_line_error(again, "Two-step verification is not on")
    assert_one_line_error(invoke(database_url, "users", "mfa-reset", "nobody@example.com"), "No account")
