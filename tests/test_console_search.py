"""The search page, the record view and the audit page through aiohttp's test client."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from console_fixtures import (
    T0,
    add_user,
    csrf_from,
    login_as,
    make_read,
    running_appliance,
)

from appliance._appliance import Appliance
from appliance._web import create_app
from appliance.testing import FakeClock

Client = TestClient[Any, Any]
MakeClient = Callable[..., Awaitable[Client]]
SITE = "site: {name: Test City, timezone: America/Los_Angeles}\n"
PASSWORD = "correct horse 42"
REASON = "Stolen Camry reported by the owner on Main St"
GOOD = {"purpose": "stolen vehicle", "case_number": "26-001234", "reason": REASON}


@pytest.fixture
async def appliance(tmp_path: Path) -> AsyncIterator[Appliance]:
    clock = FakeClock(T0)
    async with running_appliance(tmp_path / "data", SITE, clock) as app:
        assert app.store is not None
        for text, camera in (("7ABC123", "north-gate"), ("7ABD123", "south-gate"),
                             ("8XYZ999", "north-gate")):
            await app.store.add_read(make_read(text, camera=camera))
        # A search's window ends at "now" (exclusive): the reads are a minute old.
        clock.advance(60)
        yield app


@pytest.fixture
async def client(aiohttp_client: MakeClient, appliance: Appliance) -> Client:
    return await aiohttp_client(create_app(appliance))


async def as_role(client: Client, appliance: Appliance, role: str, name: str | None = None) -> None:
    name = name or role
    assert appliance.store is not None
    if await appliance.store.get_user(name) is None:
        await add_user(appliance, name, role, PASSWORD)
    await login_as(client, name, PASSWORD)


async def search(client: Client, **data: str) -> tuple[int, str]:
    token = csrf_from(await (await client.get("/search")).text())
    response = await client.post("/search", data={"csrf_token": token, **data})
    return response.status, await response.text()


async def events(appliance: Appliance, kind: str) -> list[dict[str, Any]]:
    assert appliance.store is not None
    return await appliance.store.events(100, kind=kind)


def result_plates(html: str) -> list[str]:
    return re.findall(r'<td class="plate">([^<]*)</td>', html)


async def test_search_page_offers_the_policy_purposes_without_immigration(
    client: Client, appliance: Appliance
) -> None:
    await as_role(client, appliance, "operator")
    html = await (await client.get("/search")).text()
    assert "Civil Code 1798.90.52" in html and "recorded" in html
    for purpose in appliance.config.root.policy.purposes:
        assert f'<option value="{purpose}"' in html
    assert "immigration" not in html.lower()
    assert '<a href="/search"' in html


async def test_search_without_a_case_number_is_refused_with_the_input_kept(
    client: Client, appliance: Appliance
) -> None:
    await as_role(client, appliance, "operator")
    status, html = await search(client, **{**GOOD, "case_number": ""}, plate="7ABC123")
    assert status == 400
    assert 'id="search-error"' in html and "case or incident number is required" in html
    assert f'value="{REASON}"' in html and 'value="7ABC123"' in html
    assert 'value="stolen vehicle" selected' in html
    [refused] = await events(appliance, "search.refused")
    assert refused["actor"] == "operator" and refused["detail"]["organization"] == "Test City"
    assert await events(appliance, "search") == []


async def test_vague_reason_is_refused(client: Client, appliance: Appliance) -> None:
    await as_role(client, appliance, "operator")
    status, html = await search(client, **{**GOOD, "reason": "investigation"}, plate="7ABC123")
    assert status == 400 and "too vague" in html
    assert len(await events(appliance, "search.refused")) == 1


async def test_immigration_purpose_is_refused_if_posted(
    client: Client, appliance: Appliance
) -> None:
    await as_role(client, appliance, "operator")
    status, html = await search(
        client, **{**GOOD, "purpose": "immigration enforcement"}, plate="7ABC123"
    )
    assert status == 400 and "7284.6" in html and "not an authorized purpose" in html
    assert len(await events(appliance, "search.refused")) == 1


async def test_exact_and_partial_searches_find_the_right_reads(
    client: Client, appliance: Appliance
) -> None:
    await as_role(client, appliance, "analyst")
    status, html = await search(client, **GOOD, plate="7ABC123")
    assert status == 200 and result_plates(html) == ["7ABC123"]
    status, html = await search(client, **GOOD, plate="7AB*123")
    assert status == 200 and sorted(result_plates(html)) == ["7ABC123", "7ABD123"]
    status, html = await search(client, **GOOD, camera="north-gate",
                                start="2026-05-01T08:00:00", end="2026-05-01T09:00:00")
    assert status == 200 and sorted(result_plates(html)) == ["7ABC123", "8XYZ999"]
    # Plates stay out of URLs: links carry the read id and an opaque search context only.
    for href in re.findall(r'href="(/reads/[^"]+)"', html):
        assert "7ABC" not in href and "8XYZ" not in href
    searches = await events(appliance, "search")
    assert len(searches) == 3
    for event in searches:
        d = event["detail"]
        assert event["actor"] == "analyst"
        assert (d["username"], d["organization"], d["purpose"]) == (
            "analyst", "Test City", "stolen vehicle")
        assert d["case_number"] == "26-001234" and d["query"]
    assert searches[-1]["detail"]["query"] == {"mode": "exact", "plate": "7ABC123"}


async def test_record_view_needs_the_search_context_and_is_recorded_once(
    client: Client, appliance: Appliance
) -> None:
    await as_role(client, appliance, "operator")
    _, html = await search(client, **GOOD, plate="7ABC123")
    [href] = re.findall(r'href="(/reads/[^"]+)"', html)
    href = href.replace("&amp;", "&")
    response = await client.get(href)
    page = await response.text()
    assert response.status == 200 and "7ABC123" in page and "26-001234" in page
    [view] = await events(appliance, "record.view")
    d = view["detail"]
    assert (view["actor"], d["organization"], d["purpose"], d["case_number"]) == (
        "operator", "Test City", "stolen vehicle", "26-001234")
    assert d["query"]["plate"] == "7ABC123"
    read_id = href.split("/")[2].split("?")[0]
    for bad in (f"/reads/{read_id}", f"/reads/{read_id}?ctx=forged"):
        assert (await client.get(bad)).status == 403
    assert len(await events(appliance, "record.view")) == 1
    # A context opens only the reads its search found.
    assert appliance.store is not None
    other = next(r for r in await appliance.store.recent_reads(10) if r.text == "8XYZ999")
    ctx = href.split("ctx=")[1]
    assert (await client.get(f"/reads/{other.id}?ctx={ctx}")).status == 403


async def test_auditor_may_not_search_and_operator_may_not_audit(
    client: Client, appliance: Appliance
) -> None:
    await as_role(client, appliance, "auditor")
    assert (await client.get("/search")).status == 403
    await as_role(client, appliance, "operator")
    assert (await client.get("/audit")).status == 403


async def _filter(client: Client, **data: str) -> str:
    token = csrf_from(await (await client.get("/audit")).text())
    response = await client.post("/audit", data={"csrf_token": token, **data})
    assert response.status == 200
    return await response.text()


def audit_rows(html: str) -> list[str]:
    return re.findall(r'<tr id="event-\d+".*?</tr>', html, re.S)


async def test_auditor_sees_searches_and_filters_by_user_and_plate(
    client: Client, appliance: Appliance
) -> None:
    await as_role(client, appliance, "operator", "alice")
    await search(client, **GOOD, plate="7ABC123")
    await as_role(client, appliance, "analyst", "bob")
    await search(client, **{**GOOD, "purpose": "homicide"}, plate="8XYZ999")
    await search(client, **GOOD, plate="7AB*123")
    await as_role(client, appliance, "auditor")
    html = await (await client.get("/audit")).text()
    assert 'id="chain-status"' in html and "Chain intact" in html
    searches = [r for r in audit_rows(html) if '<td class="kind">search</td>' in r]
    assert len(searches) == 3
    assert "alice" in searches[-1] and "Test City" in searches[-1]
    assert "stolen vehicle" in searches[-1] and "26-001234" in searches[-1]
    assert "plate=7ABC123" in searches[-1]
    by_user = audit_rows(await _filter(client, user="bob", kind="search"))
    assert len(by_user) == 2 and all("bob" in r for r in by_user)
    # The plate filter matches exact queries and the partial query that covers it.
    by_plate = audit_rows(await _filter(client, plate="7abc-123"))
    assert len(by_plate) == 2
    assert any("alice" in r for r in by_plate) and any("7AB*123" in r for r in by_plate)
    assert audit_rows(await _filter(client, plate="8XYZ999", user="alice")) == []
    by_purpose = audit_rows(await _filter(client, purpose="homicide"))
    assert len(by_purpose) == 1 and "8XYZ999" in by_purpose[0]


async def test_audit_sample_produces_and_keeps_a_memo(
    client: Client, appliance: Appliance
) -> None:
    await as_role(client, appliance, "operator")
    await search(client, **GOOD, plate="7ABC123")
    await as_role(client, appliance, "auditor")
    token = csrf_from(await (await client.get("/audit")).text())
    response = await client.post("/audit/sample",
                                 data={"csrf_token": token, "months": "6", "count": "10"})
    html = await response.text()
    assert response.status == 200 and 'id="memo-text"' in html
    assert "Memorandum: ALPR detection browsing audit" in html and "Chief of Police" in html
    [sample] = await events(appliance, "audit.sample")
    sha = sample["detail"]["sha256"]
    assert sample["actor"] == "auditor" and sample["detail"]["inquiries"] == 1
    listed = await (await client.get("/audit")).text()
    assert f'href="/audit/memos/{sha}"' in listed
    memo = await client.get(f"/audit/memos/{sha}")
    assert memo.status == 200 and "matches the memo recorded" in await memo.text()
    # The memo names who searched for what: it is kept encrypted, never as a file in clear.
    for path in appliance.data_dir.rglob("*"):
        if path.is_file():
            assert b"Memorandum: ALPR detection browsing audit" not in path.read_bytes(), path
    bad = await client.post("/audit/sample", data={"csrf_token": token, "months": "0",
                                                   "count": "x"})
    assert bad.status == 400
