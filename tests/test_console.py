"""The web console against a real Appliance (store, bus, plugins), through aiohttp's test client."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from argon2 import PasswordHasher
from console_fixtures import T0, FakeClock, csrf_from, jpeg, login, make_read, running_appliance

from appliance._appliance import Appliance
from appliance._auth import needs_rehash, verify_password
from appliance._pipeline.camera_supervisor import CameraStatus
from appliance._web import create_app
from appliance._web.app import CONTENT_SECURITY_POLICY

Client = TestClient[Any, Any]
MakeClient = Callable[..., Awaitable[Client]]
SITE = "site: {name: Test City, timezone: America/Los_Angeles}\n"
HOSTILE = "<script>alert(1)</script>"


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


@pytest.fixture
async def admin(client: Client, appliance: Appliance) -> Client:
    """The client, signed in as the first administrator."""
    assert appliance.first_admin is not None
    response = await login(client, appliance.first_admin.username, appliance.first_admin.password)
    assert response.status == 303, await response.text()
    return client


async def event_kinds(appliance: Appliance) -> list[str]:
    assert appliance.store is not None
    return [e["kind"] for e in await appliance.store.events()]


# -- sign-in -------------------------------------------------------------------------------


async def test_login_page_shows_banner_and_security_headers(
    client: Client, appliance: Appliance
) -> None:
    response = await client.get("/login")
    assert response.status == 200
    html = await response.text()
    assert appliance.config.root.console.banner in html
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    # CSP forbids inline code: every script has a src, and there is no inline style.
    assert re.findall(r"<script(?![^>]*\bsrc=)", html) == []
    assert "style=" not in html and "<style" not in html


@pytest.mark.parametrize("path", ["/", "/plugins", "/reads/abc123/crop.jpg", "/nowhere"])
async def test_pages_redirect_to_login(client: Client, path: str) -> None:
    response = await client.get(path, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/login"


@pytest.mark.parametrize("path", ["/api/reads", "/events"])
async def test_script_endpoints_answer_401(client: Client, path: str) -> None:
    response = await client.get(path, allow_redirects=False)
    assert response.status == 401
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


async def test_login_success(client: Client, appliance: Appliance) -> None:
    assert appliance.first_admin is not None
    response = await login(client, appliance.first_admin.username, appliance.first_admin.password)
    assert response.status == 303 and response.headers["Location"] == "/"
    cookie = response.headers.getall("Set-Cookie")
    session_cookie = next(c for c in cookie if c.startswith("alprbox_session="))
    assert "HttpOnly" in session_cookie and "SameSite=Strict" in session_cookie
    assert "Secure" not in session_cookie  # loopback console without TLS
    page = await client.get("/")
    html = await page.text()
    assert page.status == 200
    assert '<span class="user" id="current-user">admin</span>' in html
    assert '<span class="org">Test City</span>' in html
    assert "login" in await event_kinds(appliance)


async def test_session_cookie_is_secure_off_loopback(
    tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    async with running_appliance(tmp_path, "console: {host: 0.0.0.0}\n") as appliance:
        client = await aiohttp_client(create_app(appliance))
        page = await client.get("/login")
        login_cookie = page.cookies["alprbox_login"]
        assert login_cookie["secure"] and login_cookie["httponly"]
        assert appliance.first_admin is not None
        # The client's jar rightly keeps a Secure cookie off plain HTTP: send it by hand.
        response = await client.post(
            "/login",
            data={"username": "admin", "password": appliance.first_admin.password,
                  "csrf_token": csrf_from(await page.text()), "acknowledge": "yes"},
            headers={"Cookie": f"alprbox_login={login_cookie.value}"},
            allow_redirects=False,
        )
        assert response.status == 303
        session_cookie = next(c for c in response.headers.getall("Set-Cookie")
                              if c.startswith("alprbox_session="))
        assert "Secure" in session_cookie
        await client.close()


async def test_wrong_password_is_refused_and_recorded(
    client: Client, appliance: Appliance
) -> None:
    response = await login(client, "admin", "not-the-password")
    assert response.status == 401
    assert "Invalid username or password." in await response.text()
    assert (await client.get("/", allow_redirects=False)).status == 303
    assert appliance.store is not None
    user = await appliance.store.get_user("admin")
    assert user is not None and user.failed_logins == 1
    assert "login.failed" in await event_kinds(appliance)


async def test_lockout_after_five_failures(
    client: Client, appliance: Appliance, clock: FakeClock
) -> None:
    assert appliance.first_admin is not None
    password = appliance.first_admin.password
    for attempt in range(1, 6):
        text = await (await login(client, "admin", "wrong")).text()
        assert ("locked for 15 minutes" in text) == (attempt == 5), attempt
    # Even the right password is refused while locked.
    response = await login(client, "admin", password)
    assert response.status == 401 and "locked for 15 minutes" in await response.text()
    assert "account.locked" in await event_kinds(appliance)
    clock.advance(14 * 60)
    assert (await login(client, "admin", password)).status == 401
    clock.advance(2 * 60)
    assert (await login(client, "admin", password)).status == 303


async def test_outdated_password_hash_is_upgraded(client: Client, appliance: Appliance) -> None:
    assert appliance.store is not None and appliance.first_admin is not None
    password = appliance.first_admin.password
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(password)
    await appliance.store.update_login_state(
        "admin", failed_logins=0, locked_until=None, password_hash=weak
    )
    assert (await login(client, "admin", password)).status == 303
    user = await appliance.store.get_user("admin")
    assert user is not None and user.password_hash != weak
    assert verify_password(user.password_hash, password) and not needs_rehash(user.password_hash)


async def test_unknown_user_looks_like_a_real_one(client: Client) -> None:
    messages = [await (await login(client, "nobody", "wrong")).text() for _ in range(5)]
    assert "Invalid username or password." in messages[0]
    assert "locked for 15 minutes" in messages[4]


async def test_login_without_csrf_token_is_forbidden(client: Client) -> None:
    await client.get("/login")  # sets the login cookie, but the form field is missing
    response = await client.post("/login", data={"username": "admin", "password": "x"})
    assert response.status == 403
    response = await client.post(
        "/login", data={"username": "admin", "password": "x", "csrf_token": "forged"}
    )
    assert response.status == 403


async def test_logout_needs_csrf_and_ends_session(admin: Client, appliance: Appliance) -> None:
    html = await (await admin.get("/")).text()
    forged = await admin.post("/logout", data={"csrf_token": "forged"}, allow_redirects=False)
    assert forged.status == 403
    missing = await admin.post("/logout", allow_redirects=False)
    assert missing.status == 403
    assert (await admin.get("/", allow_redirects=False)).status == 200
    response = await admin.post(
        "/logout", data={"csrf_token": csrf_from(html)}, allow_redirects=False
    )
    assert response.status == 303 and response.headers["Location"] == "/login"
    assert (await admin.get("/", allow_redirects=False)).status == 303
    assert "logout" in await event_kinds(appliance)


async def test_session_locks_after_idle_timeout(admin: Client, clock: FakeClock) -> None:
    clock.advance(29 * 60)
    assert (await admin.get("/", allow_redirects=False)).status == 200  # activity: timer restarts
    clock.advance(20 * 60)
    # A crop loaded by the page is not user activity and must not keep the session open.
    await admin.get("/api/reads", headers={"Sec-Fetch-Dest": "empty"})
    clock.advance(11 * 60)
    response = await admin.get("/", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/login"
    page = await (await admin.get("/login")).text()
    assert "locked after 30 minutes of inactivity" in page


# -- reads ----------------------------------------------------------------------------------


async def test_live_page_lists_reads_in_site_time(admin: Client, appliance: Appliance) -> None:
    read = make_read("7ABC123", confidence=0.934)
    await appliance._on_read(read)
    response = await admin.get("/")
    html = await response.text()
    assert response.headers["Cache-Control"] == "no-store"
    assert f'id="read-{read.id}"' in html
    assert '<td class="plate">7ABC123</td>' in html
    assert "93%" in html and "north-gate" in html
    # T0 is 15:30:05 UTC; Los Angeles is on daylight time in May.
    assert "2026-05-01 08:30:05 PDT" in html
    assert f'src="/reads/{read.id}/crop.jpg"' in html


async def test_hostile_plate_text_is_escaped(admin: Client, appliance: Appliance) -> None:
    await appliance._on_read(make_read(HOSTILE))
    html = await (await admin.get("/")).text()
    assert HOSTILE not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


async def test_crop_is_served_decrypted(
    admin: Client, appliance: Appliance, tmp_path: Path
) -> None:
    read = make_read()
    await appliance._on_read(read)
    response = await admin.get(f"/reads/{read.id}/crop.jpg")
    assert response.status == 200
    assert response.content_type == "image/jpeg"
    assert response.headers["Cache-Control"] == "no-store"
    assert await response.read() == read.crop_jpeg == jpeg()
    # The image is stored encrypted: its bytes are nowhere in the database files.
    for path in (tmp_path / "data").glob("alprbox.db*"):
        assert read.crop_jpeg[200:400] not in path.read_bytes()
    assert (await admin.get("/reads/0123456789abcdef/crop.jpg")).status == 404


async def test_vehicle_image_is_served_decrypted(admin: Client, appliance: Appliance) -> None:
    read = dataclasses.replace(make_read(), vehicle_jpeg=jpeg(320, 200))
    await appliance._on_read(read)
    response = await admin.get(f"/reads/{read.id}/vehicle.jpg")
    assert response.status == 200 and response.content_type == "image/jpeg"
    assert await response.read() == read.vehicle_jpeg
    no_vehicle = make_read("NOVEH1")
    await appliance._on_read(no_vehicle)
    assert (await admin.get(f"/reads/{no_vehicle.id}/vehicle.jpg")).status == 404


async def test_api_reads(admin: Client, appliance: Appliance) -> None:
    for text in ("AAA111", "BBB222", "CCC333"):
        await appliance._on_read(make_read(text))
    response = await admin.get("/api/reads?limit=2")
    body = await response.json()
    assert response.status == 200 and len(body) == 2
    assert set(body[0]) >= {"id", "text", "confidence", "camera", "first_seen", "crop_url"}
    assert body[0]["crop_url"] == f"/reads/{body[0]['id']}/crop.jpg"
    assert (await admin.get("/api/reads?limit=lots")).status == 400
    assert (await admin.get("/api/reads?limit=0")).status == 400


async def _next_event(response: Any) -> dict[str, Any]:
    event: dict[str, str] = {}
    async with asyncio.timeout(5):
        while True:
            line = (await response.content.readline()).decode().rstrip("\n")
            if not line:
                if "data" in event:
                    return {"event": event.get("event"), **json.loads(event["data"])}
                event = {}
                continue
            field, _, value = line.partition(": ")
            event[field] = value


async def test_sse_delivers_reads_published_after_connecting(
    admin: Client, appliance: Appliance
) -> None:
    response = await admin.get("/events")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    # Subscribed before the headers were sent, so nothing published from here on is missed.
    assert appliance.bus.listeners == 1
    read = make_read(HOSTILE, confidence=0.81)
    await appliance._on_read(read)
    event = await _next_event(response)
    assert event["event"] == "read"
    assert event["id"] == read.id and event["text"] == HOSTILE
    assert event["confidence"] == 0.81 and event["camera"] == "north-gate"
    assert event["first_seen"] == "2026-05-01T08:30:05-07:00"
    assert event["crop_url"] == f"/reads/{read.id}/crop.jpg"
    response.close()


# -- other pages ----------------------------------------------------------------------------


async def test_plugins_page(admin: Client) -> None:
    html = await (await admin.get("/plugins")).text()
    assert "appliance.testing.fakes" in html
    assert "recognizer:fake" in html
    assert '<span class="badge">ok</span>' in html


async def test_cameras_and_recognizer_error_are_shown(
    admin: Client, appliance: Appliance
) -> None:
    appliance.cameras["north-gate"] = CameraStatus("north-gate", "rtsp", state="reconnecting",
                                                   error="unavailable: connection refused")
    appliance.recognizer_error = "PluginConfigError: model file missing"
    html = await (await admin.get("/")).text()
    assert "north-gate" in html and "reconnecting" in html
    assert "connection refused" in html
    assert "Not reading plates" in html and "model file missing" in html


async def test_healthz(client: Client, appliance: Appliance) -> None:
    await appliance._on_read(make_read("SECRET1"))
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {
        "status": "ok", "cameras": {}, "recognizer": "ok", "plugins_failed": [],
        "safe_mode": False, "store": "ok", "audit": "ok", "retention": "ok",
    }
    appliance.cameras["north-gate"] = CameraStatus("north-gate", "rtsp", state="failed")
    response = await client.get("/healthz")
    body = await response.json()
    assert response.status == 200 and body["status"] == "degraded"
    assert body["cameras"] == {"north-gate": "failed"}
    assert "SECRET1" not in await response.text()
    await appliance.stop()
    response = await client.get("/healthz")
    assert response.status == 503 and (await response.json())["store"] == "unavailable"


async def test_metrics(client: Client, appliance: Appliance) -> None:
    await appliance._on_read(make_read())
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert 'alprbox_reads_total{camera="north-gate"} 1.0' in await response.text()
