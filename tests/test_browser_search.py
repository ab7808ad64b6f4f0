"""Search in real Chromium: a refused search, then a proper one, and opening a result."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from console_fixtures import (
    T0,
    add_user,
    browser_sign_in,
    make_read,
    running_appliance,
    wait_image,
    wait_text,
)

from appliance._appliance import Appliance
from appliance._web import create_app
from appliance.testing import FakeClock

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
TIMEOUT = 5000
PASSWORD = "correct horse 42"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium at /usr/bin/chromium"),
]


@pytest.fixture
async def console(tmp_path: Path) -> AsyncIterator[tuple[str, Appliance]]:
    site = "site: {name: Test City, timezone: America/Los_Angeles}\n"
    clock = FakeClock(T0)
    async with running_appliance(tmp_path / "data", site, clock) as appliance:
        assert appliance.store is not None
        await appliance.store.add_read(make_read("7ABC123"))
        await appliance.store.add_read(make_read("8XYZ999"))
        clock.advance(60)
        runner = web.AppRunner(create_app(appliance))
        await runner.setup()
        tcp = web.TCPSite(runner, "127.0.0.1", 0)
        await tcp.start()
        port = runner.addresses[0][1]
        try:
            yield f"http://127.0.0.1:{port}", appliance
        finally:
            await runner.cleanup()


@pytest.fixture
async def page() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = await browser.new_context(viewport={"width": 1180, "height": 900})
        context.set_default_timeout(TIMEOUT)
        try:
            yield await context.new_page()
        finally:
            await browser.close()


async def test_refused_search_then_a_result_opened(
    console: tuple[str, Appliance], page: Any
) -> None:
    base, appliance = console
    await add_user(appliance, "officer", "operator", PASSWORD)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    await browser_sign_in(page, base, appliance, "officer", PASSWORD)
    await page.click("nav >> text=Search")
    await page.wait_for_url(f"{base}/search")
    await page.select_option("#search-purpose", "stolen vehicle")
    await page.fill("#search-reason", "Stolen Camry reported by the owner on Main St")
    await page.fill("#search-plate", "7ABC123")
    await page.click("#search-submit")
    await wait_text(page, "#search-error", "Search refused:")
    assert "case or incident number" in await page.text_content("#search-error")
    # The input is kept: add the case number and search again.
    assert await page.input_value("#search-plate") == "7ABC123"
    await page.fill("#search-case", "26-001234")
    await page.click("#search-submit")
    await wait_text(page, "#search-summary", "1 read(s)")
    assert await page.locator("#search-results .plate").all_text_contents() == ["7ABC123"]
    await wait_image(page, "#search-results img.crop")
    await page.click("#search-results a.open-record")
    await wait_text(page, "#record-plate", "7ABC123")
    assert "7ABC123" not in page.url
    assert await page.text_content("#record-case") == "26-001234"
    await wait_image(page, "#record-crop")
    assert not [e for e in errors if "Content Security Policy" in e], errors
    assert appliance.store is not None
    assert len(await appliance.store.events(10, kind="record.view")) == 1
    assert len(await appliance.store.events(10, kind="search")) == 1
