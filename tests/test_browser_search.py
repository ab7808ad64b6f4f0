"""Search in real Chromium: a refused search, then a proper one, and opening a result."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from console_fixtures import (
    BROWSER_MARKS,
    T0,
    add_user,
    browser_sign_in,
    chromium_page,
    make_read,
    running_appliance,
    serve_console,
    wait_image,
    wait_text,
)

from appliance._appliance import Appliance
from appliance.testing import FakeClock

TIMEOUT = 5000
PASSWORD = "correct horse 42"

pytestmark = BROWSER_MARKS


@pytest.fixture
async def console(tmp_path: Path) -> AsyncIterator[tuple[str, Appliance]]:
    site = "site: {name: Test City, timezone: America/Los_Angeles}\n"
    clock = FakeClock(T0)
    async with running_appliance(tmp_path / "data", site, clock) as appliance:
        assert appliance.store is not None
        await appliance.store.add_read(make_read("7ABC123"))
        await appliance.store.add_read(make_read("8XYZ999"))
        clock.advance(60)
        async with serve_console(appliance) as base:
            yield base, appliance


@pytest.fixture
async def page() -> AsyncIterator[Any]:
    async with chromium_page(900, TIMEOUT) as opened:
        yield opened


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
