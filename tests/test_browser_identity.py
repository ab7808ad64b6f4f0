"""Identity in real Chromium: enrol an authenticator from the QR page, sign in with TOTP, and the
lockout after five wrong codes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from console_fixtures import (
    BROWSER_MARKS,
    T0,
    FakeClock,
    chromium_page,
    enrol_mfa,
    fresh_code,
    running_appliance,
    serve_console,
    wait_image,
)

from appliance._appliance import Appliance

TIMEOUT = 5000

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
    async with chromium_page(900, TIMEOUT) as opened:
        yield opened


async def password(page: Any, base: str, username: str, secret_word: str) -> None:
    await page.goto(f"{base}/login")
    await page.fill("#username", username)
    await page.fill("#password", secret_word)
    await page.check("#acknowledge")
    await page.click("button[type=submit]")


async def test_enrol_from_the_qr_page_then_sign_in_with_totp(
    console: tuple[str, Appliance], page: Any
) -> None:
    base, appliance = console
    assert appliance.first_admin is not None
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda err: problems.append(str(err)))

    await password(page, base, "admin", appliance.first_admin.password)
    await page.wait_for_url(f"{base}/mfa/enrol")
    # The QR code is an image from this origin: it loads under img-src 'self'.
    await wait_image(page, "#qr")
    secret = (await page.text_content("#secret") or "").replace(" ", "")
    assert len(secret) == 32
    await page.fill("#code", pyotp.TOTP(secret).at(appliance.clock.now()))
    await page.click("button[type=submit]")
    await page.wait_for_selector("#recovery-codes")
    assert await page.locator("#recovery-codes li").count() == 10
    await page.click("#continue")
    await page.wait_for_url(f"{base}/")
    assert await page.text_content("#current-user") == "admin"
    assert await page.locator("nav >> text=Users").count() == 1

    await page.click("form.logout button")
    await page.wait_for_url(f"{base}/login")
    await password(page, base, "admin", appliance.first_admin.password)
    await page.wait_for_url(f"{base}/mfa")
    await page.fill("#code", await fresh_code(appliance, "admin", secret))
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/")
    assert await page.text_content("#current-user") == "admin"
    assert [p for p in problems if "Content Security Policy" in p] == []


async def test_five_wrong_codes_lock_the_account(console: tuple[str, Appliance], page: Any) -> None:
    base, appliance = console
    assert appliance.first_admin is not None and appliance.store is not None
    secret = await enrol_mfa(appliance, "admin")
    right = pyotp.TOTP(secret).at(appliance.clock.now())
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    await password(page, base, "admin", appliance.first_admin.password)
    await page.wait_for_url(f"{base}/mfa")
    for _ in range(4):
        await page.fill("#code", wrong)
        await page.click("button[type=submit]")
        await page.wait_for_selector("#mfa-message")
    await page.fill("#code", wrong)
    await page.click("button[type=submit]")
    await page.wait_for_selector("#login-message")
    assert "locked for 15 minutes" in (await page.text_content("#login-message") or "")
    user = await appliance.store.get_user("admin")
    assert user is not None and user.locked_until is not None
    # The right password and code no longer get in.
    await password(page, base, "admin", appliance.first_admin.password)
    await page.wait_for_selector("#login-message")
    assert "locked" in (await page.text_content("#login-message") or "")
    assert page.url == f"{base}/login"


async def test_banner_must_be_ticked_then_password_changed_on_the_account_page(
    console: tuple[str, Appliance], page: Any
) -> None:
    base, appliance = console
    assert appliance.first_admin is not None and appliance.store is not None
    secret = await enrol_mfa(appliance, "admin")
    await page.goto(f"{base}/login")
    assert "authorized law enforcement use only" in (await page.text_content("#banner") or "")
    await page.fill("#username", "admin")
    await page.fill("#password", appliance.first_admin.password)
    await page.click("button[type=submit]")  # not ticked: the browser keeps the form
    assert page.url == f"{base}/login"
    assert await page.evaluate("document.querySelector('#acknowledge').validity.valueMissing")
    assert await appliance.store.events(10, kind="login.banner_acknowledged") == []
    await page.check("#acknowledge")
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/mfa")
    await page.fill("#code", await fresh_code(appliance, "admin", secret))
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/")
    [ack] = await appliance.store.events(10, kind="login.banner_acknowledged")
    assert ack["actor"] == "admin" and len(ack["detail"]["banner_sha256"]) == 64

    await page.click("#account-link")
    await page.wait_for_url(f"{base}/account")
    new_password = "a fresh <passphrase> & more"
    await page.fill("#current_password", appliance.first_admin.password)
    await page.fill("#new_password", new_password)
    await page.fill("#confirm_password", new_password)
    await page.click("#account-password button[type=submit]")
    await page.wait_for_selector("p.notice")
    assert "Your password was changed" in (await page.text_content("p.notice") or "")
    assert await page.locator("#sign-ins tbody tr").count() == 1

    await page.click("form.logout button")
    await page.wait_for_url(f"{base}/login")
    await password(page, base, "admin", new_password)
    await page.wait_for_url(f"{base}/mfa")
    await page.fill("#code", await fresh_code(appliance, "admin", secret))
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/")
    assert await page.text_content("#current-user") == "admin"
