"""GET /metrics through the real app and database (issue 22): where it is served, its token, and
that its counters say what the requests did, with labels no request can add to."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import EMAIL, PASSWORD, FakeClock, app_for, bearer, login, register
from tests.servers import free_port

TOKEN = "metrics-token-0123456789abcdef"
NOT_FOUND = {"success": False, "error": "Not found", "code": "not_found"}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """Every sample of a scrape, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(scrape: Samples, name: str, *, absent: float | None = None, **labels: str) -> float:
    """The sample's value; a series the scrape lacks fails the test unless ``absent`` stands in
    (a labelled counter appears at its first count, so a "before" scrape may rightly lack it)."""
    key = (name, frozenset(labels.items()))
    if key not in scrape:
        assert absent is not None, f"no series {name}{dict(labels)} in the scrape"
        return absent
    return scrape[key]


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics", headers=bearer(TOKEN))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


async def test_metrics_are_off_unless_a_token_or_an_address_is_set(database_url: str) -> None:
    async with app_for(database_url) as (_app, client):
        response = await client.get("/metrics", headers=bearer(TOKEN))
    assert (response.status_code, response.json()) == (404, NOT_FOUND)


async def test_the_main_port_asks_for_the_token(database_url: str) -> None:
    async with app_for(database_url, metrics_token=TOKEN) as (_app, client):
        missing = await client.get("/metrics")
        wrong = await client.get("/metrics", headers=bearer(TOKEN[:-1] + "0"))
        basic = await client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"})
        right = await client.get("/metrics", headers=bearer(TOKEN))
    for refused in (missing, wrong, basic):
        assert refused.status_code == 401
        assert refused.json() == {"success": False, "error": "Invalid metrics token", "code": "invalid_token"}
        assert refused.headers["www-authenticate"] == "Bearer"
        assert TOKEN not in refused.text
    assert right.status_code == 200
    assert "doorward_build_info" in right.text


async def test_a_session_token_is_not_the_metrics_token(database_url: str) -> None:
    async with app_for(database_url, metrics_token=TOKEN) as (_app, client):
        await register(client)
        response = await client.get("/metrics", headers=bearer(await login(client)))
    assert response.status_code == 401


async def test_the_counters_follow_the_requests(database_url: str) -> None:
    async with app_for(database_url, metrics_token=TOKEN, throttle_free_failures=1) as (_app, client):
        before = await scrape(client)
        await register(client)
        short = await client.post("/register", json={"email": "b@example.com", "password": "short"})
        assert short.json()["code"] == "password_too_short"
        token = await login(client)
        for _ in range(3):
            assert (await client.get("/session", headers=bearer(token))).status_code == 200
        assert (await client.get("/session", headers=bearer("not-a-token"))).status_code == 401
        assert (await client.get("/session")).status_code == 401
        assert (await client.post("/login", json={"email": EMAIL})).status_code == 400
        statuses = []
        for _ in range(4):  # wrong passwords until the back-off answers 429
            wrong = await client.post("/login", json={"email": EMAIL, "password": "not the password at all"})
            statuses.append(wrong.status_code)
        assert statuses[0] == 401 and 429 in statuses, statuses
        bad_link = await client.post("/email/verify", json={"token": "x" * 43})
        assert bad_link.status_code == 400, bad_link.text
        asked = await client.post("/password/reset/request", json={"email": "nobody@example.com"})
        assert asked.status_code == 202
        reset_body = {"token": "x" * 43, "newPassword": PASSWORD}
        reset = await client.post("/password/reset/confirm", json=reset_body)
        assert reset.status_code == 400, reset.text
        after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, absent=0.0, **labels)

    logins = "doorward_logins_total"
    assert delta(logins, method="password", outcome="success") == 1
    assert delta(logins, method="password", outcome="invalid_request") == 1
    assert delta(logins, method="password", outcome="invalid_credentials") == statuses.count(401)
    assert delta(logins, method="password", outcome="rate_limited") == statuses.count(429)
    assert delta("doorward_registrations_total", outcome="success") == 1
    assert delta("doorward_registrations_total", outcome="password_too_short") == 1
    assert delta("doorward_session_checks_total", outcome="valid") == 3
    assert delta("doorward_session_checks_total", outcome="invalid_session") == 2
    assert delta("doorward_email_verifications_total", outcome="token_invalid") == 1
    # Asked for an unknown account: "success" all the same, as the answer says nothing either.
    assert delta("doorward_password_resets_total", stage="request", outcome="success") == 1
    assert delta("doorward_password_resets_total", stage="complete", outcome="token_invalid") == 1
    assert delta("doorward_request_duration_seconds_count", route="/session") == 5
    assert delta("doorward_request_duration_seconds_bucket", route="/session", le="+Inf") == 5
    assert delta("doorward_request_duration_seconds_bucket", route="/session", le="10.0") == 5  # cumulative
    assert 0 < delta("doorward_request_duration_seconds_sum", route="/session") < 5 * 10
    assert delta("doorward_request_duration_seconds_count", route="/login") == 2 + len(statuses)
    # Each login that reached its hash verified once (not the 400, not a 429): thread timings.
    assert delta("doorward_hash_duration_seconds_count", op="verify") == 1 + statuses.count(401)
    assert value(after, "doorward_hash_slots_busy") == 0
    assert value(after, "doorward_build_info", version="0.1.0", python=_python()) == 1


def _python() -> str:
    import platform

    return platform.python_version()


async def test_a_full_hash_pool_counts_the_refusal_and_the_login(database_url: str) -> None:
    async with app_for(database_url, metrics_token=TOKEN, hash_workers=1, hash_queue=0) as (app, client):
        with app.state.services.pool.slot():  # the one slot, taken
            busy = await scrape(client)
            refused = await client.post("/login", json={"email": EMAIL, "password": PASSWORD})
        after = await scrape(client)
    assert refused.status_code == 503
    assert value(busy, "doorward_hash_slots_busy") == 1
    assert value(after, "doorward_hash_slots_busy") == 0
    assert value(after, "doorward_hash_refusals_total") == 1
    assert value(after, "doorward_logins_total", method="password", outcome="overloaded") == 1


async def test_redis_down_is_a_store_error_of_redis(database_url: str) -> None:
    nowhere = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    async with app_for(database_url, metrics_token=TOKEN, redis_url=nowhere, db_timeout=1) as (_app, client):
        registered = await client.post("/register", json={"email": EMAIL, "password": PASSWORD})
        logins = [await client.post("/login", json={"email": EMAIL, "password": PASSWORD}) for _ in range(2)]
        after = await scrape(client)
    for response in (registered, *logins):  # both ask the throttle first
        assert (response.status_code, response.json()["code"]) == (503, "unavailable")
    assert value(after, "doorward_store_errors_total", store="redis") == 3
    # Absent (no database error ever counted) or 0: the Redis line above shows the series is named right.
    assert value(after, "doorward_store_errors_total", store="database", absent=0.0) == 0
    assert value(after, "doorward_logins_total", method="password", outcome="unavailable") == 2
    assert value(after, "doorward_registrations_total", outcome="unavailable") == 1


async def test_active_sessions_are_counted_in_the_background(database_url: str) -> None:
    async with app_for(database_url, metrics_token=TOKEN, metrics_sessions_interval=0.05) as (_app, client):
        await register(client)
        tokens = [await login(client) for _ in range(3)]
        await client.post("/logout", headers=bearer(tokens[0]))
        for _ in range(100):
            if value(await scrape(client), "doorward_active_sessions") == 2:
                break
            await asyncio.sleep(0.05)
        assert value(await scrape(client), "doorward_active_sessions") == 2


async def test_no_request_adds_a_series(database_url: str) -> None:
    """Labels are fixed words and error codes: emails, paths and tokens never become one."""
    async with app_for(database_url, metrics_token=TOKEN) as (_app, client):
        await register(client)

        async def traffic() -> None:
            for _ in range(15):
                unique = uuid.uuid4().hex
                await client.post("/login", json={"email": f"{unique}@example.com", "password": PASSWORD})
                await client.post("/login", json={"email": EMAIL, "password": f"wrong {unique} wrong"})
                await client.get("/session", headers=bearer(unique * 2))
                await client.get(f"/{unique}")
                await client.get("/metrics", headers=bearer(unique))
                await client.post("/register", json={"email": f"{unique}@example.com", "password": unique})
            await client.post("/login", json={"email": EMAIL, "password": PASSWORD})  # 429 by now

        await traffic()
        await traffic()  # past the registration limit too: every outcome this traffic has is seen
        first = await scrape(client)
        await traffic()
        second = await scrape(client)
    assert set(second) == set(first)
    assert not any("@" in label or len(label) >= 32 for _, labels in second for _, label in labels)
    # All of it was counted, under the same few series.
    logins = [count for (name, _), count in second.items() if name == "doorward_logins_total"]
    assert sum(logins) == 3 * 31


async def test_the_metrics_address_serves_them_without_a_token(database_url: str) -> None:
    port = free_port()
    async with app_for(database_url, metrics_address=f"127.0.0.1:{port}") as (_app, client):
        await register(client)
        await login(client)
        on_main_port = await client.get("/metrics", headers=bearer(TOKEN))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as direct:
            scraped = await direct.get("/metrics")
            elsewhere = await direct.get("/login")
    assert (on_main_port.status_code, on_main_port.json()) == (404, NOT_FOUND)
    assert scraped.status_code == 200
    assert value(samples(scraped.text), "doorward_logins_total", method="password", outcome="success") == 1
    assert (elsewhere.status_code, elsewhere.json()) == (404, NOT_FOUND)
    async with httpx.AsyncClient() as after_close:
        with pytest.raises(httpx.ConnectError):  # closed with the app
            await after_close.get(f"http://127.0.0.1:{port}/metrics")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("metrics_token", "short", "at least 16 characters"),
        ("metrics_address", "9108", "host:port"),
        ("metrics_address", "[::1:9108", "brackets"),
    ],
)
def test_metrics_settings_are_checked(name: str, value: str, message: str) -> None:
    from pydantic import ValidationError

    from tests.conftest import make_settings

    with pytest.raises(ValidationError, match=message):
        make_settings("sqlite:///x.db", **{name: value})


async def test_a_login_with_a_second_step_is_counted_by_method(database_url: str, clock: FakeClock) -> None:
    from tests.web.test_mfa import enrol, password_step, second_step

    async with app_for(database_url, clock, metrics_token=TOKEN) as (_app, client):
        enrolled = await enrol(client, clock)
        token = await password_step(client)
        assert (await second_step(client, token, code=enrolled.wrong_code(clock))).status_code == 401
        assert (await second_step(client, token, code=enrolled.code(clock))).status_code == 200
        assert (await second_step(client, "x" * 43, code=enrolled.code(clock))).status_code == 401
        after = await scrape(client)
    assert value(after, "doorward_logins_total", method="password", outcome="success") == 1  # enrolling
    assert value(after, "doorward_logins_total", method="password", outcome="mfa_required") == 1
    assert value(after, "doorward_logins_total", method="second_step", outcome="mfa_invalid") == 1
    assert value(after, "doorward_logins_total", method="second_step", outcome="success") == 1
    assert value(after, "doorward_logins_total", method="second_step", outcome="mfa_token_invalid") == 1


async def test_a_passkey_login_is_counted_by_method(database_url: str, clock: FakeClock) -> None:
    from tests.web.test_passkeys import login_options, passkey_app, passkey_login, with_passkey

    async with passkey_app(database_url, clock, metrics_token=TOKEN) as (_app, client):
        _session, authenticator, _id = await with_passkey(client)  # signs in with it once
        before = await scrape(client)
        signed = authenticator.get(await login_options(client))
        assert (await passkey_login(client, signed)).status_code == 200
        assert (await passkey_login(client, signed)).status_code == 401  # its challenge is used
        after = await scrape(client)
    success = {"method": "passkey", "outcome": "success"}
    assert (
        value(after, "doorward_logins_total", **success) - value(before, "doorward_logins_total", **success)
        == 1
    )
    assert value(after, "doorward_logins_total", method="passkey", outcome="invalid_credentials") == 1
