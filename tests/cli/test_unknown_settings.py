"""A misspelt DOORWARD_* variable is named at start, with the setting it was probably meant to be."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.cli.conftest import invoke
from tests.servers import Server

SECRET = "s3cr3t-value-never-logged"


def warnings_in(stderr: str) -> list[dict[str, object]]:
    records = []
    for line in stderr.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("level") == "warning":
            records.append(record)
    return records


def unknown(stderr: str) -> list[dict[str, object]]:
    return [record for record in warnings_in(stderr) if "variable" in record]


@pytest.mark.parametrize(
    "command", [("migrate",), ("prune",), ("tune", "--target-ms", "1", "--memory-kib", "8")]
)
def test_a_misspelt_variable_is_named_with_a_close_match(sqlite_url: str, command: tuple[str, ...]) -> None:
    result = invoke(sqlite_url, *command, hash_worker=SECRET)
    assert result.exit_code == 0, result.output
    (record,) = unknown(result.stderr)
    assert record["event"] == (
        "DOORWARD_HASH_WORKER is not a doorward setting and is ignored; did you mean DOORWARD_HASH_WORKERS?"
    )
    assert record["variable"] == "DOORWARD_HASH_WORKER"
    assert SECRET not in result.output


def test_a_name_like_no_setting_is_named_without_a_guess(sqlite_url: str) -> None:
    result = invoke(sqlite_url, "migrate", zzz_qqq="1")
    (record,) = unknown(result.stderr)
    assert record["event"] == "DOORWARD_ZZZ_QQQ is not a doorward setting and is ignored"


def test_known_names_and_the_test_suites_own_are_not_warned_about(sqlite_url: str) -> None:
    result = invoke(
        sqlite_url, "migrate", log_level="info", test_postgres_url="postgresql://x", mailer="file"
    )
    assert result.exit_code == 0, result.output
    assert unknown(result.stderr) == []


@pytest.mark.e2e
def test_serve_warns_once(start_server: Callable[..., Server]) -> None:
    server = start_server("--workers", "2", sesion_lifetime=SECRET)
    records = unknown(server.stderr())
    assert [record["variable"] for record in records] == ["DOORWARD_SESION_LIFETIME"], server.explain()
    assert "did you mean DOORWARD_SESSION_LIFETIME?" in str(records[0]["event"])
    assert SECRET not in server.stderr()
