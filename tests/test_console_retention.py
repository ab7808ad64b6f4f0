"""The retention page: who sees it, placing and releasing a hold from the console, audited."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from console_fixtures import T0, add_user, csrf_from, login_as, make_read, running_appliance

from appliance._appliance import Appliance
from appliance._web import create_app
from appliance.testing import FakeClock

Client = TestClient[Any, Any]
MakeClient = Callable[..., Awaitable[Client]]
PASSWORD = "correct horse 42"


@pytest.fixture
async def appliance(tmp_path: Path) -> AsyncIterator[Appliance]:
    async with running_appliance(tmp_path / "data", clock=FakeClock(T0)) as app:
        yield app


@pytest.fixture
async def client(aiohttp_client: MakeClient, appliance: Appliance) -> Client:
    return await aiohttp_client(create_app(appliance))


async def sign_in(client: Client, appliance: Appliance, role: str) -> str:
    await add_user(appliance, role, role, PASSWORD)
    await login_as(client, role, PASSWORD)
    page = await client.get("/retention")
    assert page.status == 200, await page.text()
    return csrf_from(await page.text())


async def test_supervisor_places_and_releases_a_hold(client: Client, appliance: Appliance) -> None:
    store = appliance.store
    assert store is not None
    read = make_read("7HOLD11")
    await store.add_read(read)
    token = await sign_in(client, appliance, "supervisor")
    bad = await client.post("/retention/holds", data={
        "csrf_token": token, "case_number": "NODIGIT", "reason": "evidence in a robbery",
        "read_ids": read.id,
    })
    assert bad.status == 400 and "digit" in await bad.text()
    placed = await client.post("/retention/holds", data={
        "csrf_token": token, "case_number": "26-000123", "reason": "evidence in a robbery",
        "plate": "7HOLD11", "start": "2026-05-01", "end": "2026-05-01",
    }, allow_redirects=False)
    assert placed.status == 303, await placed.text()
    html = await (await client.get("/retention")).text()
    assert "26-000123" in html and "evidence in a robbery" in html
    assert "7HOLD11" not in html  # counts and cases only, never a plate
    [created] = await store.events(kind="hold.created")
    assert created["actor"] == "supervisor" and created["detail"]["read_ids"] == [read.id]
    released = await client.post("/retention/holds/release", data={
        "csrf_token": token, "hold_id": "1", "why": "case closed",
    }, allow_redirects=False)
    assert released.status == 303
    [gone] = await store.events(kind="hold.released")
    assert gone["actor"] == "supervisor" and gone["detail"]["why"] == "case closed"


async def test_auditor_views_but_cannot_hold_operator_sees_nothing(
    client: Client, appliance: Appliance
) -> None:
    token = await sign_in(client, appliance, "auditor")
    html = await (await client.get("/retention")).text()
    assert 'id="hold-form"' not in html and "Kept longer than six months" in html
    refused = await client.post("/retention/holds", data={
        "csrf_token": token, "case_number": "26-1", "reason": "a long enough reason",
    })
    assert refused.status == 403
    assert appliance.store is not None
    viewed = await appliance.store.events(kind="retention.viewed")
    assert viewed and viewed[0]["actor"] == "auditor"
    await add_user(appliance, "operator", "operator", PASSWORD)
    await login_as(client, "operator", PASSWORD)
    assert (await client.get("/retention")).status == 403


async def test_healthz_names_a_failing_retention_run(client: Client, appliance: Appliance) -> None:
    assert (await (await client.get("/healthz")).json())["retention"] == "ok"
    assert appliance.lifecycle is not None
    await appliance.lifecycle.stop()  # its scheduled run would clear the error we set
    appliance.lifecycle.last_error = "OperationalError: disk I/O error"
    body = await (await client.get("/healthz")).json()
    assert body["retention"].startswith("OperationalError") and body["status"] == "degraded"
