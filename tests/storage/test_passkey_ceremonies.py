"""Passkeys through the real services on both databases: every ceremony answered by the software
authenticator, and what the database then holds: the public key and the counts, every challenge as
a digest only (the SQLite files and a PostgreSQL dump scanned for each one in clear)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from doorward.core.errors import InvalidCredentials, MfaRequired
from doorward.core.models import Client
from doorward.core.relying_party import challenge_digest
from doorward.wiring import open_services
from tests.authenticator import SoftwareAuthenticator, unb64url
from tests.conftest import EMAIL, PASSWORD, make_settings
from tests.db import fetch

CLIENT = Client("192.0.2.9", "pytest")
ORIGIN = "https://id.doorward.example"


def database_bytes(database_url: str) -> bytes:
    """Everything the database holds, as bytes to search: the SQLite files, or a PostgreSQL dump."""
    if database_url.startswith("sqlite"):
        path = Path(database_url.removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in path.parent.iterdir() if p.name.startswith(path.name))
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        pytest.skip("pg_dump is not installed")
    return subprocess.run([pg_dump, "--data-only", database_url], capture_output=True, check=True).stdout


async def test_every_ceremony_on_the_database_and_no_challenge_in_clear(database_url: str) -> None:
    settings = make_settings(database_url, public_url=ORIGIN, webauthn_rp_id="doorward.example")
    authenticator = SoftwareAuthenticator("doorward.example", ORIGIN)
    challenges: list[str] = []
    async with open_services(settings) as services:
        user = await services.accounts.register(EMAIL, PASSWORD)
        assert user is not None
        options = await services.passkeys.registration_options(user, PASSWORD, CLIENT, aal=2)
        challenges.append(str(options["challenge"]))
        info = await services.passkeys.register(user, authenticator.create(options), "Laptop", CLIENT, aal=2)

        login = await services.passkeys.login_options()
        challenges.append(str(login["challenge"]))
        assertion = authenticator.get(login)
        result = await services.passkeys.login(assertion, CLIENT)
        assert (result.session.aal, result.session.amr) == (2, ("hwk", "user"))
        user_now, session = await services.auth.check(result.token)
        assert (session.aal, session.amr, user_now.mfa_enabled) == (2, ("hwk", "user"), True)
        with pytest.raises(InvalidCredentials):
            await services.passkeys.login(assertion, CLIENT)  # replayed

        with pytest.raises(MfaRequired) as required:
            await services.auth.login(EMAIL, PASSWORD, CLIENT)
        assert required.value.methods == ("passkey",)
        second = await services.passkeys.second_step_options(required.value.token)
        challenges.append(str(second["challenge"]))
        done = await services.mfa.complete_login(
            required.value.token, CLIENT, credential=authenticator.get(second)
        )
        assert (done.session.aal, done.session.amr) == (2, ("pwd", "hwk"))

        challenges.append(str((await services.passkeys.login_options())["challenge"]))  # left pending
        assert [p.name for p in await services.passkeys.list(user)] == ["Laptop"]

    rows = await fetch(
        database_url,
        "SELECT id, credential_id, public_key, sign_count, transports, backup_eligible, backed_up, "
        "user_handle, name FROM passkeys",
    )
    assert [
        (r[0], bytes(r[1]), bytes(r[2]), r[3], r[4], bool(r[5]), bool(r[6]), bytes(r[7]), r[8]) for r in rows
    ] == [
        (
            info.id,
            authenticator.credential_id,
            authenticator.cose_key(),
            2,
            "internal hybrid",
            False,
            False,
            authenticator.user_handle,
            "Laptop",
        )
    ]
    stored = {bytes(d) for (d,) in await fetch(database_url, "SELECT digest FROM webauthn_challenges")}
    assert stored == {challenge_digest(unb64url(c)) for c in challenges}
    held = database_bytes(database_url)
    for challenge in challenges:
        raw = unb64url(challenge)
        digest = challenge_digest(raw)
        assert digest in held or digest.hex().encode() in held  # the scan sees what is stored...
        for form in (challenge.encode(), raw, raw.hex().encode()):
            assert form not in held, form  # ...and no challenge in clear
