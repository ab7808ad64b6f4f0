"""The console in real Chromium: sign in, watch a read arrive live, its crop load, no XSS."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from console_fixtures import (
    BROWSER_MARKS,
    T0,
    FakeClock,
    browser_sign_in,
    chromium_page,
    make_read,
    running_appliance,
    serve_console,
    wait_image,
    wait_text,
)

from appliance._appliance import Appliance
from appliance._pipeline.camera_supervisor import CameraStatus

SCREENSHOT = Path(os.environ.get("ALPRBOX_CONSOLE_SCREENSHOT", "/tmp/console.png"))
HOSTILE = "<img src=x onerror=alert(1)><script>alert(2)</script>"

pytestmark = BROWSER_MARKS


@pytest.fixture
async def console(tmp_path: Path) -> AsyncIterator[tuple[str, Appliance]]:
    site = "site: {name: Test City, timezone: America/Los_Angeles}\n"
    async with (
        running_appliance(tmp_path / "data", site, FakeClock(T0)) as appliance,
        serve_console(appliance) as base,
    ):
        yield base, appliance


@pytest.fixture
async def page() -> AsyncIterator[Any]:
    async with chromium_page(720, None) as opened:
        yield opened


async def test_live_reads_arrive_without_reload(console: tuple[str, Appliance], page: Any) -> None:
    base, appliance = console
    assert appliance.first_admin is not None
    appliance.cameras["north-gate"] = CameraStatus(
        "north-gate", "rtsp", state="running", last_frame_at=T0, frames=1234
    )
    for i, text in enumerate(("8FJK402", "4TRX911")):
        await appliance._on_read(
            make_read(text, confidence=0.88 + i / 20, first_seen=T0 + timedelta(minutes=i))
        )
    problems: list[str] = []
    dialogs: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda err: problems.append(str(err)))
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))

    await page.goto(f"{base}/")
    assert page.url == f"{base}/login"  # not signed in yet
    assert await page.text_content("#banner") == appliance.config.root.console.banner
    await browser_sign_in(
        page, base, appliance, appliance.first_admin.username, appliance.first_admin.password
    )
    assert await page.text_content("#current-user") == "admin"
    await wait_text(page, "#live-status", "Live")
    await page.evaluate("window.notReloaded = true")

    read = make_read("7LIVE42", confidence=0.97, first_seen=T0 + timedelta(minutes=5))
    await appliance._on_read(read)
    row = page.locator(f"#read-{read.id}")
    await row.wait_for(timeout=5000)
    assert await row.locator(".plate").text_content() == "7LIVE42"
    assert await row.locator("td.num").text_content() == "97%"
    assert await page.locator("#reads tbody tr").first.get_attribute("id") == f"read-{read.id}"
    await wait_image(page, f"#read-{read.id} img.crop", limit_s=5)

    hostile = make_read(HOSTILE, first_seen=T0 + timedelta(minutes=6))
    await appliance._on_read(hostile)
    hostile_row = page.locator(f"#read-{hostile.id}")
    await hostile_row.wait_for(timeout=5000)
    assert await hostile_row.locator(".plate").text_content() == HOSTILE
    assert await hostile_row.locator(".plate *").count() == 0  # shown as text, not parsed

    assert await page.evaluate("window.notReloaded") is True
    assert dialogs == []
    assert [p for p in problems if "Content Security Policy" in p or "alert" in p] == []
    await page.screenshot(path=str(SCREENSHOT), full_page=True)

    # Idle lock: once the session has timed out, the next live event ends the stream, the
    # browser's reconnect is refused and the page falls back to the sign-in screen by itself.
    assert isinstance(appliance.clock, FakeClock)
    appliance.clock.advance(31 * 60)
    await appliance._on_read(make_read("9LATE00"))
    await page.wait_for_url(f"{base}/login", timeout=10_000)
    assert "inactivity" in (await page.text_content("#login-message") or "")
