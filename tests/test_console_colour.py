"""The record view shows the vehicle colour the box estimated, as an estimate."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from console_fixtures import T0, add_user, csrf_from, login_as, make_read, running_appliance

from appliance._web import create_app
from appliance.testing import FakeClock

Client = TestClient[Any, Any]
SITE = "site: {name: Test City, timezone: America/Los_Angeles}\n"
PASSWORD = "correct horse 42"
SEARCH = {
    "purpose": "stolen vehicle",
    "case_number": "26-001234",
    "reason": "Stolen Camry reported by the owner on Main St",
}


async def open_record(client: Client, plate: str) -> str:
    token = csrf_from(await (await client.get("/search")).text())
    response = await client.post("/search", data={"csrf_token": token, **SEARCH, "plate": plate})
    [href] = re.findall(r'href="(/reads/[^"]+)"', await response.text())
    page = await client.get(href.replace("&amp;", "&"))
    assert page.status == 200
    return await page.text()


async def test_record_view_shows_the_estimated_colour(
    aiohttp_client: Callable[..., Awaitable[Client]], tmp_path: Path
) -> None:
    clock = FakeClock(T0)
    async with running_appliance(tmp_path / "data", SITE, clock) as app:
        assert app.store is not None
        red = dataclasses.replace(
            make_read("7ABC123"), vehicle_colour="red", vehicle_colour_confidence=0.8
        )
        await app.store.add_read(red)
        await app.store.add_read(make_read("8XYZ999"))  # stored before colours: none
        clock.advance(60)
        client = await aiohttp_client(create_app(app))
        await add_user(app, "operator", "operator", PASSWORD)
        await login_as(client, "operator", PASSWORD)
        page = await open_record(client, "7ABC123")
        [shown] = re.findall(r'id="record-colour">([^<]*)<', page)
        assert shown == "red (estimated from the image, score 0.80; check the image)"
        page = await open_record(client, "8XYZ999")
        assert re.findall(r'id="record-colour">([^<]*)<', page) == ["not estimated"]
