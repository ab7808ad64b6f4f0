"""The /sharing pages (issue 7) through aiohttp's test client: filing, the gate's pre-check,
review with TOTP re-entry, standing approvals, roles and escaping."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient
from console_fixtures import (
    T0,
    add_user,
    csrf_from,
    fresh_code,
    login_as,
    running_appliance,
)
from test_policy_gate import TABLE

from appliance._appliance import Appliance
from appliance._web import create_app
from appliance.testing import FakeClock

Client = TestClient[Any, Any]
MakeClient = Callable[..., Awaitable[Client]]
PASSWORD = "correct horse 42"
SITE = "site: {name: Test City, timezone: America/Los_Angeles}\n" + yaml.safe_dump(
    {"sharing": TABLE["registry"]}
)
FORM = {
    "agency": "Oakland Police Department", "ori": "CA0010900",
    "person": "Sgt. A. Rivera #4411", "email": "arivera@oaklandca.gov",
    "purpose": "stolen vehicle", "case_number": "26-004417",
    "reason": "Stolen Honda Civic taken at gunpoint on Broadway", "on_behalf_of": "",
    "recipients": "", "plates": "7ABC123", "start": "2026-04-20", "end": "2026-04-30",
    "scope": "reads of one plate", "attest": "yes",
}


@pytest.fixture
async def appliance(tmp_path: Path) -> AsyncIterator[Appliance]:
    async with running_appliance(tmp_path / "data", SITE, FakeClock(T0)) as app:
        yield app


@pytest.fixture
async def client(aiohttp_client: MakeClient, appliance: Appliance) -> Client:
    return await aiohttp_client(create_app(appliance))


async def as_role(client: Client, appliance: Appliance, name: str, role: str) -> str:
    """Sign in (adding the user the first time); returns the /sharing page's CSRF token."""
    assert appliance.store is not None
    if await appliance.store.get_user(name) is None:
        await add_user(appliance, name, role, PASSWORD)
    await login_as(client, name, PASSWORD)
    return csrf_from(await (await client.get("/sharing")).text())


async def code_for(appliance: Appliance, name: str) -> str:
    assert appliance.store is not None
    secret = await appliance.store.identity.mfa_secret(name)
    assert secret is not None
    return await fresh_code(appliance, name, secret)


async def file(client: Client, token: str, **changes: str) -> tuple[str, str]:
    """POST the request form; returns (request id, the request page's HTML)."""
    data = {"csrf_token": token, **FORM, **changes}
    response = await client.post("/sharing", data=[*data.items(), ("channels", "export")],
                                 allow_redirects=False)
    assert response.status == 303, await response.text()
    location = response.headers["Location"]
    match = re.fullmatch(r"/sharing/([0-9a-f]{12})", location)
    assert match, location
    return match.group(1), await (await client.get(location)).text()


def status_of(html: str) -> str:
    match = re.search(r'id="sharing-status">([a-z]+)<', html)
    assert match
    return match.group(1)


async def test_file_review_and_approve_with_a_current_code(
    client: Client, appliance: Appliance
) -> None:
    token = await as_role(client, appliance, "op", "operator")
    request_id, page = await file(client, token)
    assert status_of(page) == "pending"
    assert "Policy gate pre-check: passed" in page
    assert "will not be used for immigration enforcement" in page
    assert 'id="decide-form"' not in page  # an operator cannot review

    token = await as_role(client, appliance, "sup", "supervisor")
    page = await (await client.get(f"/sharing/{request_id}")).text()
    assert 'id="decide-form"' in page
    token = csrf_from(page)
    wrong = await client.post(f"/sharing/{request_id}/decision", data={
        "csrf_token": token, "decision": "approve", "code": "000000", "note": "checked"})
    assert wrong.status == 400
    assert "verification code" in await wrong.text()
    right = await client.post(f"/sharing/{request_id}/decision", data={
        "csrf_token": token, "decision": "approve", "code": await code_for(appliance, "sup"),
        "note": "Verified with the requesting sergeant"}, allow_redirects=False)
    assert right.status == 303
    page = await (await client.get(f"/sharing/{request_id}")).text()
    assert status_of(page) == "approved"
    assert "Verified with the requesting sergeant" in page
    assert appliance.store is not None
    kinds = [e["kind"] for e in await appliance.store.events(200)]
    for kind in ("share.request_filed", "share.mfa_failed", "share.request_approved",
                 "share.request_viewed", "share.decision"):
        assert kind in kinds, kind


async def test_a_request_for_ice_is_refused_at_filing_and_kept_on_file(
    client: Client, appliance: Appliance
) -> None:
    token = await as_role(client, appliance, "an", "analyst")
    request_id, page = await file(client, token, on_behalf_of="Alameda County Sheriff's Office\n"
                                  "U.S. Immigration & Customs Enforcement")
    assert status_of(page) == "denied"
    assert "Policy gate pre-check: refused" in page
    assert "denylist:on_behalf_of[1]" in page
    assert "Gov. Code 7284.6" in page
    listing = await (await client.get("/sharing")).text()
    assert f'id="share-{request_id}"' in listing


async def test_a_request_without_the_attestation_is_not_filed(
    client: Client, appliance: Appliance
) -> None:
    token = await as_role(client, appliance, "op", "operator")
    data = {"csrf_token": token, **FORM, "attest": ""}
    response = await client.post("/sharing", data=[*data.items(), ("channels", "export")])
    assert response.status == 400
    assert "must attest" in await response.text()
    assert appliance.store is not None
    assert await appliance.store.events(10, kind="share.request_filed") == []


async def test_standing_approval_from_the_console(client: Client, appliance: Appliance) -> None:
    token = await as_role(client, appliance, "boss", "administrator")
    data = {"csrf_token": token, **FORM, "until": "2026-07-31", "note": "MOU 2026-3",
            "code": await code_for(appliance, "boss")}
    response = await client.post("/sharing/standing", data=[
        *data.items(), ("channels", "partner_query"), ("channels", "webhook")],
        allow_redirects=False)
    assert response.status == 303, await response.text()
    page = await (await client.get(response.headers["Location"])).text()
    assert status_of(page) == "approved" and "Standing" in page
    assert "partner_query, webhook" in page


async def test_roles(client: Client, appliance: Appliance) -> None:
    token = await as_role(client, appliance, "aud", "auditor")
    page = await (await client.get("/sharing")).text()
    assert 'id="sharing-form"' not in page and 'id="standing-form"' not in page
    for path in ("/sharing", "/sharing/standing", "/sharing/abcdefabcdef/decision",
                 "/sharing/abcdefabcdef/revoke"):
        response = await client.post(path, data={"csrf_token": token, **FORM})
        assert response.status == 403, path
    token = await as_role(client, appliance, "op", "operator")
    page = await (await client.get("/sharing")).text()
    assert 'id="sharing-form"' in page and 'id="standing-form"' not in page
    response = await client.post("/sharing/standing", data={"csrf_token": token, **FORM})
    assert response.status == 403


HOSTILES = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>')


@pytest.mark.parametrize("hostile", HOSTILES)
async def test_hostile_strings_are_escaped(
    client: Client, appliance: Appliance, hostile: str
) -> None:
    token = await as_role(client, appliance, "op", "operator")
    for field in ("agency", "person", "reason", "on_behalf_of", "scope", "case_number"):
        data = {"csrf_token": token, **FORM, field: hostile}
        response = await client.post("/sharing", data=[*data.items(), ("channels", "export")])
        html = await response.text()
        assert hostile not in html, field
        assert "<script>alert" not in html and "<img src=x" not in html, field
    listing = await (await client.get("/sharing")).text()
    assert "<script>alert" not in listing and "<img src=x" not in listing
