"""Helpers for the console tests: a real Appliance with the test kit's model-free recognizer."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyotp
import pytest
from aiohttp.test_utils import TestClient

from appliance import PlateCandidate, PlateRead
from appliance._appliance import Appliance
from appliance._config import parse_config
from appliance._plugins import create_plugin_host
from appliance._web.keys import APPLIANCE
from appliance.testing import FAKES, FakeClock

BASE_CONFIG = "recognition: {type: fake}\ncameras: []\n"
T0 = datetime(2026, 5, 1, 15, 30, 5, tzinfo=UTC)


@asynccontextmanager
async def running_appliance(
    data_dir: Path, extra_config: str = "", clock: FakeClock | None = None
) -> AsyncIterator[Appliance]:
    host = create_plugin_host(discover=False, plugins=[FAKES])
    config = parse_config(BASE_CONFIG + extra_config, "test.yaml", host)
    appliance = Appliance(
        config=config, plugins=host, data_dir=data_dir, clock=clock or FakeClock(T0)
    )
    await appliance.start()
    try:
        yield appliance
    finally:
        if appliance.started:
            await appliance.stop()


def jpeg(width: int = 160, height: int = 48) -> bytes:
    """A real small JPEG: a white plate with a dark band, so it is not a flat colour."""
    image = np.full((height, width, 3), 255, np.uint8)
    image[height // 3 : 2 * height // 3, 10 : width - 10] = (40, 40, 40)
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return bytes(data.tobytes())


def make_read(
    text: str = "7ABC123",
    *,
    camera: str = "north-gate",
    confidence: float = 0.93,
    first_seen: datetime = T0,
    crop: bool = True,
) -> PlateRead:
    return PlateRead(
        camera=camera,
        text=text,
        confidence=confidence,
        first_seen=first_seen,
        last_seen=first_seen + timedelta(seconds=1),
        box=(10, 20, 160, 48),
        candidates=(PlateCandidate(text, confidence),),
        frames=3,
        crop_jpeg=jpeg() if crop else b"",
    )


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


async def enrol_mfa(appliance: Appliance, username: str) -> str:
    """Enrol ``username`` in TOTP directly through the store (for speed); returns the secret."""
    assert appliance.store is not None
    secret = pyotp.random_base32()
    await appliance.store.identity.enrol(username, secret, 0, [])
    return secret


def totp_now(appliance: Appliance, secret: str) -> str:
    """The current code by the appliance clock (the one the console checks codes against)."""
    return pyotp.TOTP(secret).at(appliance.clock.now())


async def password_step(client: TestClient[Any, Any], username: str, password: str) -> Any:
    """Submit the password form like a browser; returns the (unfollowed) response."""
    page = await client.get("/login")
    token = csrf_from(await page.text())
    return await client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token,
              "acknowledge": "yes"},
        allow_redirects=False,
    )


async def submit_code(client: TestClient[Any, Any], code: str, path: str = "/mfa") -> Any:
    """Submit a TOTP or recovery code on the MFA step page; returns the (unfollowed) response."""
    token = csrf_from(await (await client.get(path)).text())
    return await client.post(path, data={"code": code, "csrf_token": token}, allow_redirects=False)


async def login(client: TestClient[Any, Any], username: str, password: str) -> Any:
    """Sign in like a browser: password, then the TOTP code (a user without MFA is enrolled
    through the store first). Returns the last (unfollowed) response: the password step's when
    that one fails, else the code step's."""
    appliance = client.server.app[APPLIANCE]
    assert appliance.store is not None
    secret: str | None = None
    if await appliance.store.get_user(username) is not None:
        secret = await appliance.store.identity.mfa_secret(username)
        if secret is None:
            secret = await enrol_mfa(appliance, username)
    response = await password_step(client, username, password)
    if response.status != 303 or response.headers["Location"] != "/mfa":
        return response
    assert secret is not None
    return await submit_code(client, await fresh_code(appliance, username, secret))


async def fresh_code(appliance: Appliance, username: str, secret: str) -> str:
    """A code the console has not accepted yet. A code is accepted once per 30-second step, so
    a second sign-in in the same step moves the fake clock on to the next step."""
    assert appliance.store is not None
    if isinstance(appliance.clock, FakeClock):
        step = int(appliance.clock.now().timestamp()) // 30
        last = await appliance.store.query(
            lambda c: c.execute(
                "SELECT mfa_last_step FROM users WHERE username = ?", (username,)
            ).fetchone()[0]
        )
        if last is not None and last >= step:
            appliance.clock.advance(30 * (last - step + 1))
    return totp_now(appliance, secret)


async def browser_sign_in(
    page: Any, base: str, appliance: Appliance, username: str, password: str
) -> None:
    """Sign in through real pages: password, then the TOTP code (enrolled through the store
    first if needed)."""
    assert appliance.store is not None
    secret = await appliance.store.identity.mfa_secret(username)
    if secret is None:
        secret = await enrol_mfa(appliance, username)
    await page.goto(f"{base}/login")
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.check("#acknowledge")  # the login banner (CJIS 5.5.4)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/mfa")
    await page.fill("#code", await fresh_code(appliance, username, secret))
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/")


# -- hot lists, users and alerts (alert, hot-list and BOLO pages) ---------------------------

from typing import ClassVar, Literal  # noqa: E402

from aiohttp.test_utils import TestClient as _TestClient  # noqa: E402

from appliance import HotlistBatch, HotlistEntry, HotlistSource, HotlistSourceSettings  # noqa: E402
from appliance import hookimpl as _hookimpl  # noqa: E402
from appliance._auth import hash_password  # noqa: E402

LISTS_CONFIG = "hotlists:\n  - {name: ncic, type: console-list, max_age_hours: 24}\n"
#: Immigration Violator records are dropped by law (Gov. Code 7284.6); the console shows counts.
IMMIGRATION_DROP = "Immigration Violator File (Gov. Code 7284.6)"


class ConsoleListSettings(HotlistSourceSettings):
    type: Literal["console-list"] = "console-list"


class ConsoleListSource(HotlistSource):
    """Each fetch returns (or raises) the next item the test put in ``next``."""

    settings_model = ConsoleListSettings
    next: ClassVar[list[HotlistBatch | Exception]] = []

    async def fetch(self) -> HotlistBatch:
        item = ConsoleListSource.next.pop(0)
        if isinstance(item, Exception):
            raise item
        return item


class _ConsoleLists:
    __name__ = "console-lists"

    @_hookimpl
    def appliance_hotlist_source_types(self) -> list[type[HotlistSource]]:
        return [ConsoleListSource]


CONSOLE_LISTS = _ConsoleLists()


def listed(plate: str = "7ABC123", **kw: Any) -> HotlistEntry:
    """A stolen-vehicle entry with everything an officer checks."""
    values: dict[str, Any] = {
        "state": "CA",
        "category": "Stolen Vehicle",
        "reference": f"V{plate}",
        "agency": "CA0010000",
        "reason": "Stolen from a driveway",
        "entered": datetime(2026, 4, 20).date(),
        "vehicle_year": 2019,
        "vehicle_make": "Toyota",
        "vehicle_model": "Camry",
        "vehicle_colour": "Blue",
    }
    values.update(kw)
    return HotlistEntry(plate=plate, **values)


@asynccontextmanager
async def appliance_with_lists(
    data_dir: Path, extra_config: str = "", clock: FakeClock | None = None
) -> AsyncIterator[Appliance]:
    """Like :func:`running_appliance`, with the list ``ncic`` fed by :class:`ConsoleListSource`."""
    host = create_plugin_host(discover=False, plugins=[FAKES, CONSOLE_LISTS])
    config = parse_config(BASE_CONFIG + LISTS_CONFIG + extra_config, "test.yaml", host)
    appliance = Appliance(
        config=config,
        plugins=host,
        data_dir=data_dir,
        clock=clock or FakeClock(T0),
        schedule_hotlists=False,
    )
    await appliance.start()
    try:
        yield appliance
    finally:
        if appliance.started:
            await appliance.stop()


async def load_list(appliance: Appliance, *entries: HotlistEntry, **kw: Any) -> None:
    """Put ``entries`` in place as list ``ncic`` (``kw``: HotlistBatch's dropped, skipped)."""
    assert appliance.hotlists is not None
    ConsoleListSource.next.append(HotlistBatch(tuple(entries), **kw))
    assert await appliance.hotlists.refresh("ncic")


async def add_user(
    appliance: Appliance, username: str, role: str, password: str = "correct horse 42"
) -> str:
    assert appliance.store is not None
    await appliance.store.create_user(username, hash_password(password), role, "Test City")
    await record_training(appliance, username)
    return password


async def record_training(appliance: Appliance, username: str) -> None:
    """A current training record for ``username`` (data pages need one)."""
    assert appliance.store is not None
    today = appliance.clock.now().date()
    await appliance.store.identity.record_training(
        username, "test course", today, today + timedelta(days=365), "test"
    )


async def login_as(client: _TestClient[Any, Any], username: str, password: str) -> None:
    """Sign ``client`` in as ``username``, dropping any session it had."""
    client.session.cookie_jar.clear()
    response = await login(client, username, password)
    assert response.status == 303, await response.text()


# -- browser waits that work under the console's CSP ---------------------------------------
# page.wait_for_function compiles its predicate inside the page, which the strict CSP (no
# 'unsafe-eval') blocks whenever Playwright has to poll; these use locators and evaluate().


async def wait_text(page: Any, selector: str, prefix: str, limit_s: float = 10.0) -> None:
    """Wait until the element's text starts with ``prefix``."""
    import re as _re

    from playwright.async_api import expect

    await expect(page.locator(selector)).to_have_text(
        _re.compile("^" + _re.escape(prefix)), timeout=limit_s * 1000
    )


async def wait_image(page: Any, selector: str, limit_s: float = 10.0) -> None:
    """Wait until the image has loaded with real pixels."""
    locator = page.locator(selector)
    await locator.wait_for(timeout=limit_s * 1000)
    for _ in range(int(limit_s / 0.05)):
        if await locator.evaluate("img => img.complete && img.naturalWidth > 0"):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"image {selector} did not load")


# -- real Chromium against a console on loopback (shared by the browser test files) -------

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium at /usr/bin/chromium"),
]


@asynccontextmanager
async def serve_console(appliance: Appliance) -> AsyncIterator[str]:
    """The console of ``appliance`` on a free loopback port; yields its base URL."""
    from aiohttp import web

    from appliance._web import create_app

    runner = web.AppRunner(create_app(appliance))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def chromium_page(
    height: int = 900, default_timeout_ms: int | None = 5000
) -> AsyncIterator[Any]:
    """A page in a fresh headless Chromium (Debian's build; Playwright's own is not used)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = await browser.new_context(viewport={"width": 1180, "height": height})
        if default_timeout_ms is not None:
            context.set_default_timeout(default_timeout_ms)
        try:
            yield await context.new_page()
        finally:
            await browser.close()
