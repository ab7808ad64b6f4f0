"""Identity: TOTP MFA at every sign-in, recovery codes, training before data access, /users."""

from __future__ import annotations

import html as html_lib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from aiohttp.test_utils import TestClient
from console_fixtures import (
    T0,
    FakeClock,
    csrf_from,
    enrol_mfa,
    login,
    password_step,
    record_training,
    running_appliance,
    submit_code,
    totp_now,
)

from appliance._appliance import Appliance
from appliance._auth import hash_password
from appliance._web import create_app

Client = TestClient[Any, Any]
MakeClient = Callable[..., Awaitable[Client]]
SITE = "site: {name: Test City, timezone: America/Los_Angeles}\n"
PASSWORD = "correct horse 42"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
async def appliance(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Appliance]:
    async with running_appliance(tmp_path / "data", SITE, clock) as app:
        yield app


@pytest.fixture
async def client(aiohttp_client: MakeClient, appliance: Appliance) -> Client:
    return await aiohttp_client(create_app(appliance))


def wrong_code(right: str) -> str:
    return f"{(int(right) + 1) % 1_000_000:06d}"


async def kinds(appliance: Appliance) -> list[str]:
    assert appliance.store is not None
    return [e["kind"] for e in await appliance.store.events(500)]


async def logout(client: Client) -> None:
    page = await client.get("/plugins")
    token = csrf_from(await page.text())
    response = await client.post("/logout", data={"csrf_token": token}, allow_redirects=False)
    assert response.status == 303


async def enrol_through_pages(client: Client, appliance: Appliance) -> tuple[str, list[str]]:
    """Password, then the enrolment page; returns the secret shown and the recovery codes."""
    assert appliance.first_admin is not None
    response = await password_step(client, "admin", appliance.first_admin.password)
    assert response.status == 303 and response.headers["Location"] == "/mfa/enrol"
    page = await (await client.get("/mfa/enrol")).text()
    match = re.search(r'id="secret">([A-Z2-7 ]+)<', page)
    assert match and 'src="/mfa/qr.svg"' in page
    secret = match.group(1).replace(" ", "")
    qr = await client.get("/mfa/qr.svg")
    assert qr.status == 200 and qr.content_type == "image/svg+xml"
    assert "<svg" in await qr.text()
    response = await submit_code(client, totp_now(appliance, secret), "/mfa/enrol")
    assert response.status == 200
    codes = re.findall(r"<li>([A-Z2-9]{5}-[A-Z2-9]{5})</li>", await response.text())
    assert len(codes) == 10
    return secret, codes


# -- MFA -------------------------------------------------------------------------------------


async def test_password_alone_does_not_sign_in(client: Client, appliance: Appliance) -> None:
    assert appliance.first_admin is not None
    await enrol_mfa(appliance, "admin")
    response = await password_step(client, "admin", appliance.first_admin.password)
    assert response.status == 303 and response.headers["Location"] == "/mfa"
    for path in ("/", "/alerts", "/users", "/plugins"):
        page = await client.get(path, allow_redirects=False)
        assert page.status == 303 and page.headers["Location"] == "/mfa", path
    for path in ("/api/reads", "/events"):
        assert (await client.get(path, allow_redirects=False)).status == 401, path
    assert "login" not in await kinds(appliance)


async def test_first_admin_must_enrol_and_enrolment_needs_a_valid_code(
    client: Client, appliance: Appliance
) -> None:
    assert appliance.first_admin is not None and appliance.store is not None
    response = await password_step(client, "admin", appliance.first_admin.password)
    assert response.headers["Location"] == "/mfa/enrol"
    page = await (await client.get("/mfa/enrol")).text()
    secret = re.search(r'id="secret">([A-Z2-7 ]+)<', page)
    assert secret
    bad = wrong_code(pyotp.TOTP(secret.group(1).replace(" ", "")).at(appliance.clock.now()))
    response = await submit_code(client, bad, "/mfa/enrol")
    assert response.status == 401 and "does not match" in await response.text()
    assert await appliance.store.identity.mfa_secret("admin") is None
    user = await appliance.store.get_user("admin")
    assert user is not None and user.failed_logins == 1
    assert (await client.get("/", allow_redirects=False)).headers["Location"] == "/mfa/enrol"


async def test_enrolment_then_login_with_totp(client: Client, appliance: Appliance) -> None:
    secret, _codes = await enrol_through_pages(client, appliance)
    assert (await client.get("/", allow_redirects=False)).status == 200
    assert {"mfa.enrolled", "login"} <= set(await kinds(appliance))
    await logout(client)
    appliance_clock = appliance.clock
    assert isinstance(appliance_clock, FakeClock)
    appliance_clock.advance(30)
    assert appliance.first_admin is not None
    response = await password_step(client, "admin", appliance.first_admin.password)
    assert response.headers["Location"] == "/mfa"
    response = await submit_code(client, totp_now(appliance, secret))
    assert response.status == 303 and response.headers["Location"] == "/"
    assert (await client.get("/", allow_redirects=False)).status == 200


async def test_wrong_code_is_refused_and_counted(client: Client, appliance: Appliance) -> None:
    assert appliance.first_admin is not None and appliance.store is not None
    secret = await enrol_mfa(appliance, "admin")
    await password_step(client, "admin", appliance.first_admin.password)
    response = await submit_code(client, wrong_code(totp_now(appliance, secret)))
    assert response.status == 401 and "not valid" in await response.text()
    user = await appliance.store.get_user("admin")
    assert user is not None and user.failed_logins == 1
    assert (await client.get("/", allow_redirects=False)).headers["Location"] == "/mfa"
    # The right code still works, and a full sign-in clears the count.
    response = await submit_code(client, totp_now(appliance, secret))
    assert response.status == 303
    user = await appliance.store.get_user("admin")
    assert user is not None and user.failed_logins == 0


async def test_five_wrong_codes_lock_the_account(
    client: Client, appliance: Appliance, clock: FakeClock
) -> None:
    assert appliance.first_admin is not None and appliance.store is not None
    secret = await enrol_mfa(appliance, "admin")
    password = appliance.first_admin.password
    # A correct password does not restart the count of wrong codes.
    for _ in range(2):
        await password_step(client, "admin", password)
        for _ in range(2):
            bad = wrong_code(totp_now(appliance, secret))
            assert (await submit_code(client, bad)).status == 401
    await password_step(client, "admin", password)
    response = await submit_code(client, wrong_code(totp_now(appliance, secret)))
    assert response.status == 401 and "locked for 15 minutes" in await response.text()
    assert "account.locked" in await kinds(appliance)
    # The pending session is gone, and even password + right code are refused while locked.
    assert (await client.get("/mfa", allow_redirects=False)).headers["Location"] == "/login"
    assert (await password_step(client, "admin", password)).status == 401
    clock.advance(16 * 60)
    assert (await login(client, "admin", password)).status == 303


async def test_replayed_code_is_refused(client: Client, appliance: Appliance) -> None:
    assert appliance.first_admin is not None and appliance.store is not None
    secret = await enrol_mfa(appliance, "admin")
    code = totp_now(appliance, secret)
    await password_step(client, "admin", appliance.first_admin.password)
    assert (await submit_code(client, code)).status == 303
    await logout(client)
    await password_step(client, "admin", appliance.first_admin.password)
    response = await submit_code(client, code)
    assert response.status == 401
    detail = [e["detail"] for e in await appliance.store.events(50) if e["kind"] == "login.failed"]
    assert detail and detail[0]["reason"] == "replayed code"


async def test_recovery_code_works_once(
    client: Client, appliance: Appliance, clock: FakeClock
) -> None:
    assert appliance.first_admin is not None
    _secret, codes = await enrol_through_pages(client, appliance)
    await logout(client)
    await password_step(client, "admin", appliance.first_admin.password)
    response = await submit_code(client, codes[3].lower())
    assert response.status == 303 and response.headers["Location"] == "/"
    page = await (await client.get("/")).text()
    assert "recovery code; 9 left" in page
    await logout(client)
    await password_step(client, "admin", appliance.first_admin.password)
    assert (await submit_code(client, codes[3])).status == 401
    assert (await submit_code(client, "AAAAA-BBBBB")).status == 401


async def test_secrets_and_codes_are_not_stored_or_logged_in_clear(
    client: Client, appliance: Appliance, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret, codes = await enrol_through_pages(client, appliance)
    assert appliance.store is not None
    assert await appliance.store.identity.mfa_secret("admin") == secret
    await appliance.stop()  # checkpoint the WAL: everything is on disk now
    needles = [secret.encode(), *(c.encode() for c in codes),
               *(c.replace("-", "").encode() for c in codes)]
    files = [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
    assert files
    for path in files:
        data = path.read_bytes()
        for needle in needles:
            assert needle not in data, (path, needle)
    logged = caplog.text
    for needle in needles:
        assert needle.decode() not in logged


# -- training --------------------------------------------------------------------------------


async def test_missing_training_refuses_data_pages_until_an_admin_records_it(
    client: Client, appliance: Appliance
) -> None:
    assert appliance.store is not None and appliance.first_admin is not None
    await appliance.store.create_user("ofc.lee", hash_password(PASSWORD), "operator", "Test City")
    officer = client
    assert (await login(officer, "ofc.lee", PASSWORD)).status == 303
    for path in ("/", "/alerts", "/hotlists", "/bolos", "/reads/abc/crop.jpg"):
        page = await officer.get(path, allow_redirects=False)
        assert page.status == 403, path
        text = html_lib.unescape(await page.text())
        assert "training record is missing" in text and "until an administrator" in text, path
    for path in ("/api/reads", "/events"):
        response = await officer.get(path, allow_redirects=False)
        assert response.status == 403 and "training" in await response.text(), path
    # The administrator records the training on /users.
    officer.session.cookie_jar.clear()
    assert (await login(client, "admin", appliance.first_admin.password)).status == 303
    page = await (await client.get("/users")).text()
    assert re.search(r'id="user-ofc.lee">.*?missing', page, re.S)
    response = await client.post("/users/ofc.lee/training", data={
        "csrf_token": csrf_from(page), "course": "ALPR policy 2026", "completed_on": "2026-04-30",
    }, allow_redirects=False)
    assert response.status == 303
    events = await appliance.store.events(20)
    recorded = next(e for e in events if e["kind"] == "user.training_recorded")
    assert recorded["actor"] == "admin" and recorded["detail"]["target"] == "ofc.lee"
    assert recorded["detail"]["organization"] == "Test City"
    client.session.cookie_jar.clear()
    assert (await login(client, "ofc.lee", PASSWORD)).status == 303
    assert (await client.get("/", allow_redirects=False)).status == 200


async def test_expired_training_refuses_access(
    client: Client, appliance: Appliance, clock: FakeClock
) -> None:
    assert appliance.store is not None
    await appliance.store.create_user("ofc.kim", hash_password(PASSWORD), "operator", "Test City")
    await record_training(appliance, "ofc.kim")
    assert (await login(client, "ofc.kim", PASSWORD)).status == 303
    assert (await client.get("/", allow_redirects=False)).status == 200
    clock.advance(366 * 86400)
    client.session.cookie_jar.clear()
    assert (await login(client, "ofc.kim", PASSWORD)).status == 303
    page = await client.get("/", allow_redirects=False)
    assert page.status == 403 and "more than 365 days old" in await page.text()


# -- /users ----------------------------------------------------------------------------------


async def test_only_administrators_reach_users(client: Client, appliance: Appliance) -> None:
    assert appliance.store is not None
    for role in ("supervisor", "operator", "auditor"):
        name = f"u.{role}"
        await appliance.store.create_user(name, hash_password(PASSWORD), role, "Test City")
        await record_training(appliance, name)
        client.session.cookie_jar.clear()
        assert (await login(client, name, PASSWORD)).status == 303
        assert (await client.get("/users")).status == 403, role
        token = csrf_from(await (await client.get("/plugins")).text())
        for action in ("/users", "/users/admin/unlock", "/users/admin/reset-mfa",
                       "/users/admin/training"):
            response = await client.post(action, data={
                "csrf_token": token, "username": "x.y", "role": "administrator",
                "organization": "Evil", "course": "x"}, allow_redirects=False)
            assert response.status == 403, (role, action)
        assert "Users" not in (await (await client.get("/")).text()).split("</nav>")[0]
    assert await appliance.store.get_user("x.y") is None


async def test_created_user_must_change_password(client: Client, appliance: Appliance) -> None:
    assert appliance.store is not None and appliance.first_admin is not None
    assert (await login(client, "admin", appliance.first_admin.password)).status == 303
    page = await (await client.get("/users")).text()
    assert '<a href="/users" aria-current="page">Users</a>' in page
    response = await client.post("/users", data={
        "csrf_token": csrf_from(page), "username": "det.ruiz", "role": "analyst",
        "organization": "Test City PD",
    })
    text = await response.text()
    assert response.status == 200
    match = re.search(r'id="created-password">([^<]+)<', text)
    assert match
    one_time = html_lib.unescape(match.group(1))
    created = next(e for e in await appliance.store.events(20) if e["kind"] == "user.created")
    assert created["actor"] == "admin" and created["detail"]["target"] == "det.ruiz"
    assert created["detail"]["organization"] == "Test City PD"
    assert one_time not in str(created)
    assert one_time not in await (await client.get("/users")).text()  # shown once only
    await client.post("/users/det.ruiz/training", data={
        "csrf_token": csrf_from(page), "course": "ALPR", "completed_on": "2026-05-01"})

    user = client
    user.session.cookie_jar.clear()
    response = await password_step(user, "det.ruiz", one_time)
    assert response.headers["Location"] == "/mfa/enrol"
    enrol = await (await user.get("/mfa/enrol")).text()
    found = re.search(r'id="secret">([A-Z2-7 ]+)<', enrol)
    assert found
    secret = found.group(1).replace(" ", "")
    response = await submit_code(user, totp_now(appliance, secret), "/mfa/enrol")
    assert 'href="/password"' in await response.text()
    # Nothing but the password form until the password is changed.
    for path in ("/", "/users", "/mfa"):
        page_r = await user.get(path, allow_redirects=False)
        assert page_r.headers.get("Location") == "/password", path
    form = await (await user.get("/password")).text()
    for new, confirm in (("short", "short"), (one_time, one_time),
                         ("a long new password 1", "a different one 22")):
        bad = await user.post("/password", data={
            "csrf_token": csrf_from(form), "new_password": new, "confirm_password": confirm})
        assert bad.status == 400
    response = await user.post("/password", data={
        "csrf_token": csrf_from(form), "new_password": "a long new password 1",
        "confirm_password": "a long new password 1"}, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/"
    assert (await user.get("/", allow_redirects=False)).status == 200
    assert "password.changed" in await kinds(appliance)
    assert not await appliance.store.identity.must_change_password("det.ruiz")


async def test_admin_unlocks_and_resets_mfa(client: Client, appliance: Appliance) -> None:
    assert appliance.store is not None and appliance.first_admin is not None
    await appliance.store.create_user("ofc.ng", hash_password(PASSWORD), "operator", "Test City")
    await enrol_mfa(appliance, "ofc.ng")
    await appliance.store.update_login_state(
        "ofc.ng", failed_logins=0, locked_until=T0 + timedelta(minutes=10)
    )
    assert (await login(client, "admin", appliance.first_admin.password)).status == 303
    page = await (await client.get("/users")).text()
    assert "/users/ofc.ng/unlock" in page
    for action in ("unlock", "reset-mfa"):
        response = await client.post(f"/users/ofc.ng/{action}",
                                     data={"csrf_token": csrf_from(page)}, allow_redirects=False)
        assert response.status == 303
    user = await appliance.store.get_user("ofc.ng")
    assert user is not None and user.locked_until is None
    assert await appliance.store.identity.mfa_secret("ofc.ng") is None
    assert {"user.unlocked", "user.mfa_reset"} <= set(await kinds(appliance))
    forged = await client.post("/users/ofc.ng/unlock", data={"csrf_token": "x" * 43})
    assert forged.status == 403
