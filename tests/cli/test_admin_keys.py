"""``doorward admin keys create | list | revoke``, through typer's runner on both databases: the key
printed once and stored as a digest only, the list, revocation, and the refusals in one line."""

from __future__ import annotations

import hashlib
import json
import re

import httpx

from tests.cli.conftest import api, assert_one_line_error, human_lines, invoke, query
from tests.conftest import bearer

KEY = re.compile(r"dwa_[A-Za-z0-9_-]{43}")


def create(database_url: str, name: str, *options: str) -> str:
    result = invoke(database_url, "admin", "keys", "create", name, *options)
    assert result.exit_code == 0, result.output
    assert KEY.fullmatch(result.stdout.strip()), result.stdout  # the key alone: KEY=$(doorward ...)
    return result.stdout.strip()


def test_create_prints_the_key_once_and_stores_only_its_digest(database_url: str) -> None:
    key = create(database_url, "ci", "--scope", "write")
    result = invoke(database_url, "admin", "keys", "create", "ci-read")
    assert result.exit_code == 0, result.output
    assert human_lines(result.stderr) == ["created admin key ci-read (scope read); it is shown this once"]

    rows = query(database_url, "SELECT name, scope, digest, revoked_at FROM admin_keys ORDER BY id")
    assert [(name, scope) for name, scope, _, _ in rows] == [("ci", "write"), ("ci-read", "read")]
    assert bytes(rows[0][2]) == hashlib.sha256(key.encode()).digest()
    everything = " ".join(
        str(value) for row in query(database_url, "SELECT * FROM admin_keys") for value in row
    )
    assert key not in everything and key[4:] not in everything
    logged = query(database_url, "SELECT detail FROM audit_events WHERE event = 'admin.key_created'")
    assert [json.loads(str(detail)) for (detail,) in logged] == [
        {"key": "ci", "scope": "write"},
        {"key": "ci-read", "scope": "read"},
    ]


def test_the_key_never_reaches_the_log(database_url: str) -> None:
    result = invoke(database_url, "admin", "keys", "create", "ci", LOG_LEVEL="DEBUG")
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert key[4:] not in result.stderr


def test_list_names_every_key_with_its_scope_and_state_never_the_key(database_url: str) -> None:
    first = create(database_url, "ci", "--scope", "write")
    create(database_url, "dashboard")
    assert invoke(database_url, "admin", "keys", "revoke", "ci").exit_code == 0

    listed = invoke(database_url, "admin", "keys", "list")
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert [line.split("\t")[:2] for line in lines] == [["ci", "write"], ["dashboard", "read"]]
    assert lines[0].split("\t")[3].startswith("revoked 20") and lines[1].endswith("\tactive")
    assert first[4:] not in listed.output

    as_json = json.loads(invoke(database_url, "admin", "keys", "list", "--json").stdout)
    assert [(k["name"], k["scope"], k["revokedAt"] is None) for k in as_json] == [
        ("ci", "write", False),
        ("dashboard", "read", True),
    ]


def test_revoke_is_idempotent_and_keeps_the_first_time(database_url: str) -> None:
    create(database_url, "ci")
    first = invoke(database_url, "admin", "keys", "revoke", "ci")
    assert first.stdout == "revoked admin key ci\n"
    (revoked_at,) = query(database_url, "SELECT revoked_at FROM admin_keys")[0]
    assert invoke(database_url, "admin", "keys", "revoke", "ci").exit_code == 0
    assert query(database_url, "SELECT revoked_at FROM admin_keys") == [(revoked_at,)]


def test_a_name_in_use_or_once_used_is_refused(database_url: str) -> None:
    create(database_url, "ci")
    assert_one_line_error(invoke(database_url, "admin", "keys", "create", "ci"), "exists")
    invoke(database_url, "admin", "keys", "revoke", "ci")
    assert_one_line_error(
        invoke(database_url, "admin", "keys", "create", "ci"), "revoked keys keep their name"
    )
    assert len(query(database_url, "SELECT name FROM admin_keys")) == 1


def test_a_bad_name_scope_or_unknown_key_is_one_line(database_url: str) -> None:
    for name in ("with space", ".dot-first", "x" * 65, "émile", ""):
        assert_one_line_error(invoke(database_url, "admin", "keys", "create", name), "key name")
    bad_scope = invoke(database_url, "admin", "keys", "create", "ci", "--scope", "admin")
    assert bad_scope.exit_code != 0
    assert_one_line_error(invoke(database_url, "admin", "keys", "revoke", "nobody"), "No admin key")
    assert query(database_url, "SELECT name FROM admin_keys") == []


def test_a_key_made_here_opens_the_admin_api_until_revoked_here(database_url: str) -> None:
    """The command and the server share only the database: a key works, and a revocation is seen at
    the next call."""
    write, read = create(database_url, "ops", "--scope", "write"), create(database_url, "dashboard")

    async def calls(client: httpx.AsyncClient) -> list[int]:
        return [
            (await client.get("/admin/users", headers=bearer(write))).status_code,
            (await client.get("/admin/users", headers=bearer(read))).status_code,
            (await client.post("/admin/users/1/disable", headers=bearer(read))).status_code,
        ]

    assert api(database_url, calls) == [200, 200, 403]
    assert invoke(database_url, "admin", "keys", "revoke", "ops").exit_code == 0
    assert api(database_url, calls) == [401, 200, 403]
