"""Identity, the rest of issue 6: the login banner's recorded acknowledgement, the account page,
disabling users, API keys bound to users, and refusing what the audit trail cannot record."""

from __future__ import annotations

import hashlib
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
    add_user,
    appliance_with_lists,
    csrf_from,
    fresh_code,
    login,
    login_as,
    make_read,
    password_step,
)

from appliance._appliance import Appliance
from appliance._storage import Store
from appliance._web import create_app
from appliance.testing import FakeClock

Client = TestClient[Any, Any]
MakeClient = Callable[..., Awaitable[Client]]
PASSWORD = "correct horse 42"
NEW_PASSWORD = "a much better <secret> & 'phrase'"
BANNER = 'Restricted <b>system</b> & "monitored"; use is consent.'
SITE = ("site: {name: Test City, timezone: America/Los_Angeles}\n"
        f"console: {{banner: '{BANNER.replace(chr(39), chr(39) * 2)}'}}\n")
HOSTILES = (
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "' OR 1=1 --",
    "bad\x00\x07\x1b[31mred\x1b[0m\x7f",
)
QUERY = {"purpose": "stolen vehicle", "case_number": "26-001234",
         "reason": "Stolen Camry reported by the owner on Main St"}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
async def appliance(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Appliance]:
    async with appliance_with_lists(tmp_path / "data", SITE, clock) as app:
        assert app.store is not None
        await app.store.add_read(make_read("7ABC123"))
        await app.store.add_read(make_read("8XYZ999", first_seen=T0 + timedelta(seconds=5)))
        clock.advance(60)
        yield app


@pytest.fixture
async def client(aiohttp_client: MakeClient, appliance: Appliance) -> Client:
    return await aiohttp_client(create_app(appliance))


def store_of(appliance: Appliance) -> Store:
    assert appliance.store is not None
    return appliance.store


async def events(appliance: Appliance, kind: str) -> list[dict[str, Any]]:
    return await store_of(appliance).events(500, kind=kind)


async def signed_in(client: Client, appliance: Appliance, name: str, role: str) -> str:
    """Sign ``name`` in (created, trained, of ``role``, if new); the account page's CSRF token."""
    if await store_of(appliance).get_user(name) is None:
        await add_user(appliance, name, role, PASSWORD)
    await login_as(client, name, PASSWORD)
    return csrf_from(await (await client.get("/account")).text())


async def post(client: Client, path: str, token: str, **data: str) -> Any:
    return await client.post(path, data={"csrf_token": token, **data}, allow_redirects=False)


# -- the login banner ---------------------------------------------------------------------


async def test_sign_in_needs_the_banner_acknowledged_and_records_its_hash(
    client: Client, appliance: Appliance
) -> None:
    await add_user(appliance, "officer", "operator", PASSWORD)
    page = await client.get("/login")
    html = await page.text()
    assert "Restricted &lt;b&gt;system&lt;/b&gt; &amp; &#34;monitored&#34;" in html
    assert 'type="checkbox" id="acknowledge" name="acknowledge"' in html and "required" in html
    # Without the tick: refused before the password is even checked, and nothing counts.
    response = await client.post("/login", data={
        "username": "officer", "password": PASSWORD, "csrf_token": csrf_from(html),
    }, allow_redirects=False)
    assert response.status == 400 and "acknowledge" in await response.text()
    assert "alprbox_session" not in response.cookies
    assert await events(appliance, "login.failed") == []
    assert await events(appliance, "login.banner_acknowledged") == []
    user = await store_of(appliance).get_user("officer")
    assert user is not None and user.failed_logins == 0
    # With it: recorded with the hash of exactly the text shown.
    response = await login(client, "officer", PASSWORD)
    assert response.status == 303 and response.headers["Location"] == "/"
    [ack] = await events(appliance, "login.banner_acknowledged")
    assert ack["actor"] == "officer" and ack["detail"]["organization"] == "Test City"
    assert ack["detail"]["banner_sha256"] == hashlib.sha256(BANNER.encode()).hexdigest()


def test_an_empty_banner_is_not_a_banner() -> None:
    from pydantic import ValidationError

    from appliance._config import ConsoleSettings

    with pytest.raises(ValidationError):
        ConsoleSettings(banner="  ")


# -- the account page --------------------------------------------------------------------


async def test_password_change_needs_the_current_password_and_ends_other_sessions(
    client: Client, aiohttp_client: MakeClient, appliance: Appliance
) -> None:
    other = await aiohttp_client(create_app(appliance))  # not the same app: separate sessions
    token = await signed_in(client, appliance, "officer", "operator")
    wrong = await post(client, "/account/password", token, current_password="not it",
                       new_password=NEW_PASSWORD, confirm_password=NEW_PASSWORD)
    assert wrong.status == 400 and "current password is wrong" in await wrong.text()
    [failed] = await events(appliance, "login.failed")
    assert failed["detail"]["reason"] == "bad current password"
    short = await post(client, "/account/password", token, current_password=PASSWORD,
                       new_password="short", confirm_password="short")
    assert short.status == 400 and "was not changed" in await short.text()
    before = await store_of(appliance).get_user("officer")
    assert before is not None

    # A second session in the same app, to see it end.
    second = await aiohttp_client(client.server.app)
    await login_as(second, "officer", PASSWORD)
    assert (await second.get("/", allow_redirects=False)).status == 200

    done = await post(client, "/account/password", token, current_password=PASSWORD,
                      new_password=NEW_PASSWORD, confirm_password=NEW_PASSWORD)
    assert done.status == 303 and done.headers["Location"] == "/account"
    page = await client.get("/account")
    assert page.status == 200 and "Your password was changed" in await page.text()
    assert (await second.get("/", allow_redirects=False)).headers["Location"] == "/login"
    after = await store_of(appliance).get_user("officer")
    assert after is not None and after.password_hash.startswith("$argon2id$")
    assert after.password_hash != before.password_hash
    [changed] = await events(appliance, "password.changed")
    assert changed["detail"]["via"] == "account" and changed["detail"]["other_sessions_ended"] == 1
    assert NEW_PASSWORD not in str(await store_of(appliance).events(500))
    # The old password no longer signs in; the new one does.
    other.session.cookie_jar.clear()
    assert (await password_step(other, "officer", PASSWORD)).status == 401
    assert (await login(other, "officer", NEW_PASSWORD)).status == 303


async def test_new_recovery_codes_replace_the_old_and_need_a_current_code(
    client: Client, appliance: Appliance, clock: FakeClock
) -> None:
    store = store_of(appliance)
    token = await signed_in(client, appliance, "officer", "operator")
    secret = await store.identity.mfa_secret("officer")
    assert secret is not None
    refused = await post(client, "/account/recovery-codes", token, code="000000")
    assert refused.status == 400 and "not valid" in await refused.text()
    assert await store.identity.unused_recovery_codes("officer") == 0
    code = await fresh_code(appliance, "officer", secret)
    made = await post(client, "/account/recovery-codes", token, code=code)
    html = await made.text()
    codes = re.findall(r"<li>([A-Z2-9]{5}-[A-Z2-9]{5})</li>", html)
    assert made.status == 200 and len(codes) == 10
    # The same TOTP code is not accepted twice.
    again = await post(client, "/account/recovery-codes", token, code=code)
    assert again.status == 400
    assert await store.identity.unused_recovery_codes("officer") == 10
    assert [e["kind"] for e in await events(appliance, "mfa.recovery_regenerated")]
    # Shown once: not on the page afterwards, and never stored in clear.
    assert codes[0] not in await (await client.get("/account")).text()
    raw = b"".join(p.read_bytes() for p in appliance.data_dir.rglob("*") if p.is_file())
    assert codes[0].encode() not in raw and codes[0].replace("-", "").encode() not in raw
    # A new code signs in in place of the authenticator.
    client.session.cookie_jar.clear()
    clock.advance(30)
    assert (await password_step(client, "officer", PASSWORD)).headers["Location"] == "/mfa"
    page = await client.get("/mfa")
    response = await client.post("/mfa", data={"code": codes[3], "csrf_token": csrf_from(
        await page.text())}, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/"


async def test_own_mfa_reset_needs_a_code_then_enrols_a_new_authenticator(
    client: Client, appliance: Appliance
) -> None:
    store = store_of(appliance)
    token = await signed_in(client, appliance, "officer", "operator")
    old = await store.identity.mfa_secret("officer")
    assert old is not None
    refused = await post(client, "/account/mfa-reset", token, code="123")
    assert refused.status == 400 and await store.identity.mfa_secret("officer") == old
    reset = await post(client, "/account/mfa-reset", token,
                       code=await fresh_code(appliance, "officer", old))
    assert reset.status == 303 and reset.headers["Location"] == "/mfa/enrol"
    assert await store.identity.mfa_secret("officer") is None
    [event] = await events(appliance, "mfa.self_reset")
    assert event["actor"] == "officer"
    # Nothing opens until the new authenticator is confirmed.
    assert (await client.get("/", allow_redirects=False)).headers["Location"] == "/mfa/enrol"
    page = await (await client.get("/mfa/enrol")).text()
    shown = re.search(r'id="secret">([A-Z2-7 ]+)<', page)
    assert shown is not None
    new_secret = shown.group(1).replace(" ", "")
    assert new_secret != old
    response = await client.post("/mfa/enrol", data={
        "code": pyotp.TOTP(new_secret).at(appliance.clock.now()), "csrf_token": csrf_from(page),
    }, allow_redirects=False)
    assert response.status == 200 and await store.identity.mfa_secret("officer") == new_secret


async def test_account_lists_own_recent_sign_ins(client: Client, appliance: Appliance) -> None:
    await add_user(appliance, "officer", "operator", PASSWORD)
    assert (await password_step(client, "officer", "wrong password")).status == 401
    token = await signed_in(client, appliance, "officer", "operator")
    await signed_in(client, appliance, "other", "operator")  # someone else's are not shown
    client.session.cookie_jar.clear()
    await login_as(client, "officer", PASSWORD)
    html = await (await client.get("/account")).text()
    table = html.split('id="sign-ins"', 1)[1]
    assert table.count("signed in</td>") == 2 and table.count("failed</td>") == 1
    assert "bad password" in table and "other" not in table
    assert token


# -- disabling users ---------------------------------------------------------------------


async def test_disabled_users_cannot_sign_in_and_lose_their_sessions(
    client: Client, aiohttp_client: MakeClient, appliance: Appliance
) -> None:
    officer = await aiohttp_client(client.server.app)
    await signed_in(officer, appliance, "officer", "operator")
    admin = await signed_in(client, appliance, "boss", "administrator")
    assert (await officer.get("/", allow_redirects=False)).status == 200

    done = await post(client, "/users/officer/disable", admin)
    assert done.status == 303
    listing = await (await client.get("/users")).text()
    assert "officer is disabled; 1 session(s) ended" in listing
    assert re.search(r'id="user-officer">.*?class="status error">disabled<', listing, re.S)
    assert (await officer.get("/", allow_redirects=False)).headers["Location"] == "/login"
    [event] = await events(appliance, "user.disabled")
    assert event["actor"] == "boss" and event["detail"]["target"] == "officer"
    assert event["detail"]["organization"] == "Test City"

    officer.session.cookie_jar.clear()
    refused = await password_step(officer, "officer", PASSWORD)
    assert refused.status == 401 and "This account is disabled" in await refused.text()
    # A wrong password gets the ordinary answer: "disabled" is never a hint to a stranger.
    wrong = await password_step(officer, "officer", "wrong password")
    assert "disabled" not in await wrong.text()
    reasons = [e["detail"]["reason"] for e in await events(appliance, "login.failed")]
    assert "disabled" in reasons

    assert (await post(client, "/users/officer/enable", admin)).status == 303
    assert [e["actor"] for e in await events(appliance, "user.enabled")] == ["boss"]
    assert (await login(officer, "officer", PASSWORD)).status == 303


async def test_an_administrator_cannot_disable_themselves_or_the_last_administrator(
    client: Client, appliance: Appliance
) -> None:
    token = await signed_in(client, appliance, "boss", "administrator")
    response = await post(client, "/users/boss/disable", token)
    assert response.status == 400 and "your own account" in await response.text()
    assert (await post(client, "/users/admin/disable", token)).status == 303  # boss remains
    assert await store_of(appliance).identity.enabled_administrators() == ["boss"]
    assert await events(appliance, "user.disabled") != []


# -- API keys ----------------------------------------------------------------------------


async def make_key(client: Client, token: str, name: str = "dispatch CAD") -> str:
    response = await post(client, "/account/api-keys", token, name=name)
    html = await response.text()
    assert response.status == 200, html
    match = re.search(r'id="new-key-token">(alprbox_[0-9a-f]{12}_[A-Za-z0-9_-]{43})<', html)
    assert match, html
    return match.group(1)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_api_key_calls_are_audited_with_user_organization_and_purpose(
    client: Client, aiohttp_client: MakeClient, appliance: Appliance
) -> None:
    token = await signed_in(client, appliance, "officer", "operator")
    key = await make_key(client, token)
    key_id = key.split("_")[1]
    # Shown once, stored only as a hash.
    assert key not in await (await client.get("/account")).text()
    raw = b"".join(p.read_bytes() for p in appliance.data_dir.rglob("*") if p.is_file())
    assert key.split("_", 2)[2].encode() not in raw
    [created] = await events(appliance, "api_key.created")
    assert created["detail"]["key_id"] == key_id and created["detail"]["target"] == "officer"

    api = await aiohttp_client(client.server.app)  # no cookies: the key alone
    refused = await api.get("/api/reads", headers=bearer(key))
    assert refused.status == 400 and "purpose" in (await refused.json())["error"]
    [no_purpose] = await events(appliance, "search.refused")
    assert no_purpose["detail"]["api_key"] == key_id and no_purpose["detail"]["via"] == "api"
    vague = await api.get("/api/reads", headers=bearer(key),
                          params={**QUERY, "reason": "investigation"})
    assert vague.status == 400

    # Older than a console search may reach (30 days here): never listed.
    await store_of(appliance).add_read(make_read("OLD4321", first_seen=T0 - timedelta(days=45)))
    recent = await api.get("/api/reads", headers=bearer(key), params=QUERY)
    body = await recent.json()
    assert recent.status == 200 and {r["text"] for r in body["reads"]} == {"7ABC123", "8XYZ999"}
    plate = await api.get("/api/reads", headers=bearer(key), params={**QUERY, "plate": "7ABC123"})
    assert [r["text"] for r in (await plate.json())["reads"]] == ["7ABC123"]
    searches = await events(appliance, "search")
    assert len(searches) == 2
    for event in searches:
        d = event["detail"]
        assert event["actor"] == "officer" and d["username"] == "officer"
        assert d["organization"] == "Test City" and d["purpose"] == "stolen vehicle"
        assert d["case_number"] == "26-001234" and d["api_key"] == key_id
    assert {e["detail"]["query"]["mode"] for e in searches} == {"recent", "exact"}
    assert [k.last_used_at for k in
            await store_of(appliance).identity.api_keys.of_user("officer")] == [T0 + timedelta(
                seconds=60)]

    # The key opens the API only: a console page treats it as no sign-in at all.
    page = await api.get("/search", headers=bearer(key), allow_redirects=False)
    assert page.status == 303 and page.headers["Location"] == "/login"
    assert (await api.get("/api/reads", headers=bearer(key + "x"))).status == 401
    assert (await api.get("/api/reads", headers={"Authorization": "Basic abc"})).status == 401


async def test_api_keys_stop_with_revocation_expiry_disabling_and_training(
    client: Client, aiohttp_client: MakeClient, appliance: Appliance, clock: FakeClock
) -> None:
    store = store_of(appliance)
    api = await aiohttp_client(client.server.app)
    token = await signed_in(client, appliance, "officer", "operator")

    async def status(key: str) -> int:
        return (await api.get("/api/reads", headers=bearer(key), params=QUERY)).status

    revoked = await make_key(client, token, "old laptop")
    assert await status(revoked) == 200
    key_id = revoked.split("_")[1]
    assert (await post(client, f"/account/api-keys/{key_id}/revoke", token)).status == 303
    assert await status(revoked) == 401
    assert [e["detail"]["key_id"] for e in await events(appliance, "api_key.revoked")] == [key_id]

    expiring = await post(client, "/account/api-keys", token, name="short",
                          expires_on=(T0.date() + timedelta(days=2)).isoformat())
    short = re.search(r'id="new-key-token">([^<]+)<', await expiring.text())
    assert short is not None
    assert await status(short.group(1)) == 200
    clock.advance(4 * 86400)
    assert await status(short.group(1)) == 401
    token = await signed_in(client, appliance, "officer", "operator")  # the session timed out
    past = await post(client, "/account/api-keys", token, name="past", expires_on="2020-01-01")
    assert past.status == 400 and "in the past" in await past.text()

    admin = await aiohttp_client(client.server.app)
    admin_token = await signed_in(admin, appliance, "boss", "administrator")
    made = await post(admin, "/users/officer/api-keys", admin_token, name="made by admin")
    key = re.search(r'id="new-key-token">([^<]+)<', await made.text())
    assert made.status == 200 and key is not None
    assert await status(key.group(1)) == 200
    [by_admin] = [k for k in await store.identity.api_keys.of_user("officer")
                  if k.name == "made by admin"]
    assert by_admin.created_by == "boss"

    await post(admin, "/users/officer/disable", admin_token)
    assert await status(key.group(1)) == 401
    await post(admin, "/users/officer/enable", admin_token)
    assert await status(key.group(1)) == 200
    clock.advance(400 * 86400)  # training lapses (and the key has no expiry)
    response = await api.get("/api/reads", headers=bearer(key.group(1)), params=QUERY)
    assert response.status == 403 and "training" in await response.text()
    whys = {e["detail"]["why"] for e in await events(appliance, "api.refused")}
    assert any("disabled" in w for w in whys) and any("training" in w for w in whys)


async def test_auditors_get_no_api_keys(client: Client, appliance: Appliance) -> None:
    token = await signed_in(client, appliance, "checker", "auditor")
    response = await post(client, "/account/api-keys", token, name="mine")
    assert response.status == 400 and "auditor role may not" in await response.text()
    assert await store_of(appliance).identity.api_keys.of_user("checker") == []


@pytest.mark.parametrize("hostile", HOSTILES)
async def test_hostile_key_names_are_stored_and_shown_safely(
    client: Client, aiohttp_client: MakeClient, appliance: Appliance, hostile: str
) -> None:
    from test_console_routes import assert_escaped

    token = await signed_in(client, appliance, "officer", "operator")
    response = await post(client, "/account/api-keys", token, name=hostile)
    assert response.status in (200, 400)
    assert_escaped(await response.text(), "new key")
    response = await post(client, "/account/api-keys", token, name="cad", expires_on=hostile)
    assert response.status == 400 and "YYYY-MM-DD" in await response.text()
    assert_escaped(await response.text(), "key expiry")
    assert_escaped(await (await client.get("/account")).text(), "account")
    for field in ("current_password", "new_password", "confirm_password"):
        data = {"current_password": PASSWORD, "new_password": NEW_PASSWORD,
                "confirm_password": NEW_PASSWORD, field: hostile}
        page = await post(client, "/account/password", token, **data)
        assert page.status in (303, 400)
        assert_escaped(await page.text(), f"password {field}")
    for path in ("/account/recovery-codes", "/account/mfa-reset"):
        page = await post(client, path, token, code=hostile)
        assert page.status == 400 and hostile not in await page.text()
    admin = await aiohttp_client(client.server.app)
    admin_token = await signed_in(admin, appliance, "boss", "administrator")
    await post(admin, "/users/officer/api-keys", admin_token, name=hostile)
    assert_escaped(await (await admin.get("/users")).text(), "users")
    names = {k.name for k in await store_of(appliance).identity.api_keys.of_user("officer")}
    if "<" in hostile:
        assert hostile in names  # stored as given, shown escaped


# -- audit processing failure (C-5) ------------------------------------------------------


async def fail_audit_writes(store: Store) -> None:
    """Make every append to the audit trail fail inside SQLite, as a full disk makes it fail
    (the writer sees an error from the INSERT and rolls it back)."""
    await store.write(lambda c: c.execute(
        "CREATE TRIGGER audit_disk_full BEFORE INSERT ON events"
        " BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
    ))


async def heal_audit_writes(store: Store) -> None:
    await store.write(lambda c: c.execute("DROP TRIGGER audit_disk_full"))


async def test_a_failing_audit_trail_refuses_data_access_and_alerts(
    client: Client, aiohttp_client: MakeClient, appliance: Appliance
) -> None:
    store = store_of(appliance)
    officer = await aiohttp_client(client.server.app)
    officer_token = await signed_in(officer, appliance, "officer", "operator")
    key = await make_key(officer, officer_token)
    await signed_in(client, appliance, "boss", "administrator")
    assert (await client.get("/healthz")).status == 200

    await fail_audit_writes(store)
    search = await officer.post("/search", data={"csrf_token": officer_token, **QUERY,
                                                 "plate": "7ABC123"})
    text = await search.text()
    assert search.status == 503 and "audit trail cannot record it" in text
    assert "7ABC123" not in text
    api = await officer.get("/api/reads", headers=bearer(key), params=QUERY)
    assert api.status == 503 and "7ABC123" not in await api.text()
    health = await client.get("/healthz")
    body = await health.json()
    assert health.status == 503 and body["audit"] == "failing" and body["status"] == "degraded"
    users = await (await client.get("/users")).text()
    assert 'id="audit-failure"' in users and "database or disk is full" in users
    # Operators are not the ones to fix it: no banner for them.
    assert 'id="audit-failure"' not in await (await officer.get("/account")).text()

    await heal_audit_writes(store)
    ok = await officer.post("/search", data={"csrf_token": officer_token, **QUERY,
                                             "plate": "7ABC123"})
    assert ok.status == 200 and "7ABC123" in await ok.text()
    assert (await (await client.get("/healthz")).json())["audit"] == "ok"
    assert 'id="audit-failure"' not in await (await client.get("/users")).text()
    # Nothing refused was recorded as done: one search event, the successful one.
    assert len(await events(appliance, "search")) == 1


async def test_an_api_key_opens_no_route_outside_the_api(
    client: Client, aiohttp_client: MakeClient, appliance: Appliance
) -> None:
    from test_console_routes import PUBLIC_200, app_of, walk

    token = await signed_in(client, appliance, "boss", "administrator")
    key = await make_key(client, token)
    api = await aiohttp_client(client.server.app)
    for method, path in walk(app_of(api)):
        response = await api.request(method, path, headers=bearer(key), allow_redirects=False)
        await response.read()
        if path.startswith("/api/"):
            continue
        assert response.status != 500, (method, path)
        assert response.status != 200 or (method, path) in PUBLIC_200, (method, path)
    assert await events(appliance, "search") == []


async def test_a_key_needs_its_own_secret_and_only_its_owner_revokes_it(
    client: Client, aiohttp_client: MakeClient, appliance: Appliance
) -> None:
    store = store_of(appliance)
    await add_user(appliance, "officer", "operator", PASSWORD)
    new = await store.identity.api_keys.create("officer", "cad", "officer", appliance.clock.now())
    now = appliance.clock.now()
    assert (await store.identity.api_keys.check(new.token, now)) is not None
    forged = new.token[:21] + ("A" if new.token[21] != "A" else "B") + new.token[22:]
    assert await store.identity.api_keys.check(forged, now) is None  # right id, wrong secret
    other = f"alprbox_{'0' * 12}_{new.token[21:]}"
    assert await store.identity.api_keys.check(other, now) is None  # unknown id, same secret
    # Another user cannot revoke it through their own account page.
    token = await signed_in(client, appliance, "someone", "operator")
    response = await post(client, f"/account/api-keys/{new.key.key_id}/revoke", token)
    assert response.status == 404
    assert (await store.identity.api_keys.check(new.token, now)) is not None
    assert await events(appliance, "api_key.revoked") == []
