"""Alert, hot-list and BOLO pages through aiohttp's test client, against a real Appliance."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from console_fixtures import (
    IMMIGRATION_DROP,
    T0,
    ConsoleListSource,
    FakeClock,
    add_user,
    appliance_with_lists,
    csrf_from,
    listed,
    load_list,
    login_as,
    make_read,
)

from appliance import DeviceUnavailable, HotlistBatch, PlateRead
from appliance._appliance import Appliance
from appliance._hotlist.alerts import AlertState
from appliance._web import create_app
from appliance._web.alerts import NOT_PROBABLE_CAUSE

Client = TestClient[Any, Any]
MakeClient = Callable[..., Awaitable[Client]]
SITE = "site: {name: Test City, timezone: America/Los_Angeles}\n"
HOSTILES = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>')
ESCAPED = ("&lt;script&gt;alert(1)&lt;/script&gt;", "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;")
PASSWORD = "correct horse 42"


@pytest.fixture(autouse=True)
def _no_scripted_batches() -> None:
    ConsoleListSource.next = []


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
async def appliance(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Appliance]:
    async with appliance_with_lists(tmp_path / "data", SITE, clock) as app:
        yield app


@pytest.fixture
async def client(aiohttp_client: MakeClient, appliance: Appliance) -> Client:
    return await aiohttp_client(create_app(appliance))


async def as_user(client: Client, appliance: Appliance, role: str) -> Client:
    """Sign in as the first administrator or a user named after ``role`` (made on first use)."""
    assert appliance.store is not None and appliance.first_admin is not None
    if role == "admin":
        await login_as(client, "admin", appliance.first_admin.password)
        return client
    if await appliance.store.get_user(role) is None:
        await add_user(appliance, role, role, PASSWORD)
    await login_as(client, role, PASSWORD)
    return client


async def raise_alert(
    appliance: Appliance, read_text: str = "7ABC123", state: str | None = "CA", **entry: Any
) -> tuple[str, PlateRead]:
    """List an entry, drive a read through the pipeline's sink, return the new alert's id."""
    plate = entry.pop("plate", "7ABC123")
    read_fields = entry.pop("read_fields", {})
    await load_list(appliance, listed(plate, **entry))
    read = dataclasses.replace(make_read(read_text), state=state, **read_fields)
    await appliance._on_read(read)
    assert appliance.store is not None
    alerts = await appliance.store.alerts.recent(1, include_covert=True)
    assert alerts and alerts[0].read_id == read.id, "the read raised no alert"
    return alerts[0].id, read


async def alert_state(appliance: Appliance, alert_id: str) -> AlertState:
    assert appliance.store is not None
    alert = await appliance.store.alerts.get(alert_id, include_covert=True)
    assert alert is not None
    return alert.state


async def post_form(client: Client, page: str, action: str, data: dict[str, str]) -> Any:
    """Post ``data`` to ``action`` with the CSRF token from ``page``, like the browser would."""
    token = csrf_from(await (await client.get(page)).text())
    return await client.post(action, data={"csrf_token": token, **data}, allow_redirects=False)


# -- access ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/alerts", "/alerts/" + "a" * 32, "/hotlists", "/bolos"])
async def test_pages_need_sign_in(client: Client, path: str) -> None:
    response = await client.get(path, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/login"


async def test_nav_links_to_the_new_pages(client: Client, appliance: Appliance) -> None:
    html = await (await (await as_user(client, appliance, "operator")).get("/alerts")).text()
    for href, name in (("/alerts", "Alerts"), ("/hotlists", "Hot lists"), ("/bolos", "BOLOs")):
        assert f'<a href="{href}"' in html and f">{name}</a>" in html


async def test_auditor_sees_pages_but_every_action_is_forbidden(
    client: Client, appliance: Appliance
) -> None:
    alert_id, _ = await raise_alert(appliance)
    await as_user(client, appliance, "operator")
    assert (await post_form(client, "/bolos", "/bolos", bolo_form())).status == 303
    assert appliance.store is not None
    [bolo] = await appliance.store.bolos.all()
    await as_user(client, appliance, "auditor")
    for page in ("/alerts", f"/alerts/{alert_id}", "/hotlists", "/bolos"):
        assert (await client.get(page)).status == 200, page
    detail = await (await client.get(f"/alerts/{alert_id}")).text()
    assert 'id="read-only"' in detail and 'id="step-form"' not in detail
    bolos = await (await client.get("/bolos")).text()
    assert 'id="bolo-form"' not in bolos and 'value="approve"' not in bolos
    assert "Refresh now" not in await (await client.get("/hotlists")).text()
    refused = [
        (f"/alerts/{alert_id}", f"/alerts/{alert_id}/transition",
         {"target": "rejected", "reason": "duplicate alert"}),
        ("/bolos", "/bolos", bolo_form()),
        ("/bolos", f"/bolos/{bolo.id}/decision", {"decision": "withdraw"}),
        ("/bolos", f"/bolos/{bolo.id}/decision", {"decision": "approve"}),
        ("/bolos", f"/bolos/{bolo.id}/search", {"purpose": "Looking for it", "days": "7"}),
        ("/hotlists", "/hotlists/ncic/refresh", {}),
    ]
    for page, action, data in refused:
        assert (await post_form(client, page, action, data)).status == 403, action
    assert await alert_state(appliance, alert_id) is AlertState.ALERT
    assert len(await appliance.store.bolos.all()) == 1
    assert (await appliance.store.bolos.all())[0].status == "pending"


async def test_posts_without_a_valid_csrf_token_are_refused(
    client: Client, appliance: Appliance
) -> None:
    alert_id, _ = await raise_alert(appliance)
    await as_user(client, appliance, "admin")
    for action, data in (
        (f"/alerts/{alert_id}/transition", {"target": "rejected", "reason": "duplicate alert"}),
        ("/bolos", bolo_form()),
        ("/hotlists/ncic/refresh", {}),
    ):
        missing = await client.post(action, data=data, allow_redirects=False)
        forged = await client.post(action, data={**data, "csrf_token": "x" * 43},
                                   allow_redirects=False)
        assert (missing.status, forged.status) == (403, 403), action
    assert await alert_state(appliance, alert_id) is AlertState.ALERT
    assert appliance.store is not None and await appliance.store.bolos.all() == []


# -- alerts ---------------------------------------------------------------------------------


async def test_alerts_page_lists_alerts_with_the_verification_line(
    client: Client, appliance: Appliance
) -> None:
    alert_id, _ = await raise_alert(appliance)
    html = await (await (await as_user(client, appliance, "operator")).get("/alerts")).text()
    assert NOT_PROBABLE_CAUSE in html
    row = re.search(rf'<tr id="alert-{alert_id}".*?</tr>', html, re.S)
    assert row, "no row for the alert"
    cells = row.group(0)
    for shown in ("Alert (not verified)", "ncic", "Stolen Vehicle", '<td class="plate">7ABC123',
                  "north-gate", "2026-05-01 08:30:05 PDT", "current",
                  f'href="/alerts/{alert_id}"'):
        assert shown in cells, shown
    assert "7ABC123" not in f"/alerts/{alert_id}"  # only ids in URLs


async def _next_event(response: Any, kind: str) -> dict[str, Any]:
    event: dict[str, str] = {}
    async with asyncio.timeout(5):
        while True:
            line = (await response.content.readline()).decode().rstrip("\n")
            if not line:
                if event.get("event") == kind and "data" in event:
                    parsed: dict[str, Any] = json.loads(event["data"])
                    return parsed
                event = {}
                continue
            name, _, value = line.partition(": ")
            event[name] = value


@pytest.mark.parametrize(("role", "sees_covert"), [("operator", False), ("supervisor", True)])
async def test_live_stream_sends_alerts_but_covert_ones_only_to_privileged_roles(
    client: Client, appliance: Appliance, role: str, sees_covert: bool
) -> None:
    await load_list(appliance, listed("7ABC123"), listed("5COV999", covert=True))
    await as_user(client, appliance, role)
    stream = await client.get("/events")
    assert stream.status == 200 and appliance.alert_bus.listeners == 1
    await appliance._on_read(make_read("5COV999"))
    await appliance._on_read(make_read("7ABC123"))
    first = await _next_event(stream, "alert")
    if sees_covert:
        assert first["text"] == "5COV999" and first["covert"] is True
        first = await _next_event(stream, "alert")
    # For an operator the first alert event is the plain one: the covert one never came.
    assert first["text"] == "7ABC123" and first["camera"] == "north-gate"
    assert first["state"] == "alert" and first["label"] == "Alert (not verified)"
    assert first["list"] == "ncic" and first["category"] == "Stolen Vehicle"
    assert first["stale"] is False and first["covert"] is False
    assert first["time"] == "2026-05-01 08:30:05 PDT"
    assert first["detail_url"] == f"/alerts/{first['id']}"
    stream.close()


async def test_covert_alerts_only_for_supervisors_and_administrators(
    client: Client, appliance: Appliance
) -> None:
    alert_id, _ = await raise_alert(appliance, "5COV999", plate="5COV999", covert=True)
    await as_user(client, appliance, "operator")
    assert alert_id not in await (await client.get("/alerts")).text()
    assert (await client.get(f"/alerts/{alert_id}")).status == 404
    token = csrf_from(await (await client.get("/alerts")).text())
    response = await client.post(f"/alerts/{alert_id}/transition", data={
        "csrf_token": token, "target": "rejected", "reason": "duplicate alert"})
    assert response.status == 404
    await as_user(client, appliance, "supervisor")
    html = await (await client.get("/alerts")).text()
    assert f'id="alert-{alert_id}"' in html and "covert" in html
    assert (await client.get(f"/alerts/{alert_id}")).status == 200
    assert await alert_state(appliance, alert_id) is AlertState.ALERT


async def test_verification_page_puts_the_image_beside_the_entry(
    client: Client, appliance: Appliance
) -> None:
    # B read for a listed 8 (a confusion pair), and no state read from the plate.
    alert_id, read = await raise_alert(appliance, "7A8C123", state=None)
    await as_user(client, appliance, "operator")
    html = await (await client.get(f"/alerts/{alert_id}")).text()
    assert NOT_PROBABLE_CAUSE in html
    assert f'src="/reads/{read.id}/crop.jpg"' in html
    for shown in ("7ABC123", "2019 Toyota Camry Blue", "Stolen Vehicle", "V7ABC123",
                  "CA0010000", "2026-04-20", "Stolen from a driveway", "ncic"):
        assert shown in html, shown
    diffs = re.findall(r'<td class="char diff"[^>]*>(.)</td>', html)
    assert diffs == ["8", "B"], "position 3 is highlighted in both rows, and nothing else"
    plain = re.findall(r'<td class="char">(.)</td>', html)
    assert "".join(plain) == "7AC1237AC123"
    assert "8↔B at position 3" in html  # the matcher's explanation
    assert 'id="state-verdict">unknown: check the state on the image' in html
    assert "STALE LIST" not in html
    assert appliance.store is not None
    viewed = [e for e in await appliance.store.events() if e["kind"] == "alert.viewed"]
    assert viewed and viewed[0]["actor"] == "operator"
    assert viewed[0]["detail"]["alert"] == alert_id


async def test_stale_list_warning(client: Client, appliance: Appliance, clock: FakeClock) -> None:
    await load_list(appliance, listed("7ABC123"))
    clock.advance(25 * 3600)
    await appliance._on_read(make_read("7ABC123"))
    assert appliance.store is not None
    [alert] = await appliance.store.alerts.recent(1)
    assert alert.stale
    await as_user(client, appliance, "operator")
    html = await (await client.get(f"/alerts/{alert.id}")).text()
    assert 'id="stale-warning"' in html and "<strong>STALE LIST</strong>" in html
    assert '<span class="badge stale">STALE</span>' in await (await client.get("/alerts")).text()


async def test_full_lifecycle_through_the_forms(client: Client, appliance: Appliance) -> None:
    alert_id, _ = await raise_alert(appliance)
    await as_user(client, appliance, "operator")
    page = f"/alerts/{alert_id}"
    action = f"{page}/transition"

    # Two boxes out of three is not a visual verification: refused, shown, nothing changes.
    response = await post_form(client, page, action, {
        "target": "tentative", "verified_characters": "yes", "verified_state": "yes"})
    assert response.status == 400
    html = await response.text()
    assert 'id="transition-error"' in html and "confirm all three" in html
    assert 'id="verified_characters" value="yes" checked' in html  # the input is kept
    assert await alert_state(appliance, alert_id) is AlertState.ALERT

    steps: list[tuple[dict[str, str], AlertState]] = [
        ({"target": "tentative", "verified_characters": "yes", "verified_state": "yes",
          "verified_vehicle": "yes"}, AlertState.TENTATIVE),
        ({"target": "validated", "note": "CLETS: record active"}, AlertState.VALIDATED),
        ({"target": "confirmed", "note": "Dispatcher at CA0010000"}, AlertState.CONFIRMED),
    ]
    for data, expected in steps:
        response = await post_form(client, page, action, data)
        assert response.status == 303 and response.headers["Location"] == page
        assert await alert_state(appliance, alert_id) is expected
    html = await (await client.get(page)).text()
    assert 'name="disposition"' in html and 'value="closed"' in html

    response = await post_form(client, page, action, {"target": "closed"})
    assert response.status == 400
    assert "needs one of the listed dispositions" in await response.text()
    # A stale form (a step that is no longer next) is refused with the lifecycle's reason.
    response = await post_form(client, page, action, {"target": "validated"})
    assert response.status == 400 and "can only move to closed" in await response.text()
    response = await post_form(client, page, action,
                               {"target": "closed", "disposition": "vehicle recovered"})
    assert response.status == 303
    assert await alert_state(appliance, alert_id) is AlertState.CLOSED

    html = await (await client.get(page)).text()
    assert "Alert moved to: Closed with disposition." in html  # the one-time notice
    assert 'id="step-form"' not in html and 'id="reject-form"' not in html
    assert 'id="final-note"' in html
    history = re.search(r'<table class="history".*?</table>', html, re.S)
    assert history
    text = history.group(0)
    assert text.count("<td>operator</td>") == 4
    assert "characters, state and vehicle compared" in text
    assert "note: CLETS: record active" in text and "disposition: vehicle recovered" in text
    assert "Confirmed hit (entering agency confirmed)</td><td>Closed with disposition" in text
    assert "Alert moved to" not in await (await client.get(page)).text()  # shown once


async def test_reject_needs_a_listed_reason(client: Client, appliance: Appliance) -> None:
    alert_id, _ = await raise_alert(appliance, "7A8C123")
    await as_user(client, appliance, "supervisor")
    page = f"/alerts/{alert_id}"
    for reason in ("", "I just don't like it"):
        response = await post_form(client, page, f"{page}/transition",
                                   {"target": "rejected", "reason": reason})
        assert response.status == 400
        assert "a rejection needs one of the listed reasons" in await response.text()
    response = await post_form(client, page, f"{page}/transition", {
        "target": "rejected", "reason": "misread (characters do not match)", "note": "B not 8"})
    assert response.status == 303
    assert await alert_state(appliance, alert_id) is AlertState.REJECTED
    html = await (await client.get(page)).text()
    assert "reason: misread (characters do not match); note: B not 8" in html
    response = await post_form(client, page, f"{page}/transition", {
        "target": "rejected", "reason": "duplicate alert"})
    assert response.status == 400 and "already rejected" in await response.text()


async def test_unknown_alert_and_step(client: Client, appliance: Appliance) -> None:
    alert_id, _ = await raise_alert(appliance)
    await as_user(client, appliance, "operator")
    assert (await client.get("/alerts/" + "0" * 32)).status == 404
    page = f"/alerts/{alert_id}"
    response = await post_form(client, page, f"{page}/transition", {"target": "arrested"})
    assert response.status == 400
    assert await alert_state(appliance, alert_id) is AlertState.ALERT


async def test_hostile_strings_are_escaped_on_alert_pages(
    client: Client, appliance: Appliance
) -> None:
    for hostile in HOSTILES:
        await load_list(appliance, listed(hostile, category=hostile, reason=hostile,
                                          agency=hostile, vehicle_make=hostile))
        await appliance._on_read(make_read(hostile))
    assert appliance.store is not None
    alerts = await appliance.store.alerts.recent(10)
    assert len(alerts) == 2
    await as_user(client, appliance, "operator")
    pages = ["/alerts", *(f"/alerts/{a.id}" for a in alerts)]
    for page in pages:
        html = await (await client.get(page)).text()
        for hostile in HOSTILES:
            assert hostile not in html, page
        assert any(escaped in html for escaped in ESCAPED), page
    assert "<img src=x" not in await (await client.get("/alerts")).text()


# -- hot lists --------------------------------------------------------------------------------


async def test_hotlists_page_shows_drops_staleness_and_errors(
    client: Client, appliance: Appliance, clock: FakeClock
) -> None:
    await load_list(appliance, listed("7ABC123"), listed("8DEF456"),
                    dropped={IMMIGRATION_DROP: 3})
    await as_user(client, appliance, "operator")
    html = await (await client.get("/hotlists")).text()
    row = re.search(r'<tr id="list-ncic".*?</tr>', html, re.S)
    assert row
    assert '<td class="num">2</td>' in row.group(0)
    assert f'<span class="num">3</span> {IMMIGRATION_DROP}' in row.group(0)
    assert "STALE" not in row.group(0)
    assert 'id="list-bolo"' in html
    clock.advance(25 * 3600)
    assert appliance.hotlists is not None
    ConsoleListSource.next.append(DeviceUnavailable("connection refused"))
    assert not await appliance.hotlists.refresh("ncic")
    await as_user(client, appliance, "operator")  # a day later the session has locked
    row = re.search(r'<tr id="list-ncic".*?</tr>',
                    await (await client.get("/hotlists")).text(), re.S)
    assert row and "STALE" in row.group(0) and "connection refused" in row.group(0)
    assert "25.0 h" in row.group(0)


async def test_refresh_now_is_for_administrators_only(
    client: Client, appliance: Appliance
) -> None:
    await load_list(appliance, listed("7ABC123"))
    await as_user(client, appliance, "supervisor")
    assert "Refresh now" not in await (await client.get("/hotlists")).text()
    response = await post_form(client, "/hotlists", "/hotlists/ncic/refresh", {})
    assert response.status == 403

    await as_user(client, appliance, "admin")
    html = await (await client.get("/hotlists")).text()
    assert html.count("Refresh now") == 1  # ncic only: the BOLO list is never fetched
    assert 'action="/hotlists/ncic/refresh"' in html and "/hotlists/bolo/refresh" not in html
    ConsoleListSource.next.append(
        HotlistBatch(tuple(listed(p) for p in ("7ABC123", "8DEF456", "9GHI789")))
    )
    response = await post_form(client, "/hotlists", "/hotlists/ncic/refresh", {})
    assert response.status == 303 and response.headers["Location"] == "/hotlists"
    assert appliance.hotlists is not None and appliance.hotlists.status["ncic"].entries == 3
    assert "List ncic refreshed: 3 entries." in await (await client.get("/hotlists")).text()
    assert (await post_form(client, "/hotlists", "/hotlists/bolo/refresh", {})).status == 404
    assert (await post_form(client, "/hotlists", "/hotlists/nope/refresh", {})).status == 404
    ConsoleListSource.next.append(DeviceUnavailable("feed down"))
    assert (await post_form(client, "/hotlists", "/hotlists/ncic/refresh", {})).status == 303
    html = await (await client.get("/hotlists")).text()
    assert "was not refreshed; the previous list stays active" in html and "feed down" in html
    assert appliance.store is not None
    kinds = [e["kind"] for e in await appliance.store.events()]
    assert kinds.count("hotlist.refresh_requested") == 2


# -- BOLOs ------------------------------------------------------------------------------------


def bolo_form(**changes: str) -> dict[str, str]:
    form = {
        "plate": "7AB*123", "state": "CA", "category": "major crime (partial plate)",
        "case_number": "26-001234", "synopsis": "Armed robbery suspect vehicle, grey sedan",
        "expires": (T0.date() + timedelta(days=14)).isoformat(),
    }
    form.update(changes)
    return form


async def test_bolo_entry_approval_and_wildcard_hit(client: Client, appliance: Appliance) -> None:
    await as_user(client, appliance, "operator")
    response = await post_form(client, "/bolos", "/bolos", bolo_form())
    assert response.status == 303 and response.headers["Location"] == "/bolos"
    html = await (await client.get("/bolos")).text()
    assert "It stays inactive until a supervisor or administrator" in html
    assert appliance.store is not None
    [bolo] = await appliance.store.bolos.all()
    assert bolo.status == "pending" and bolo.created_by == "operator"
    row = re.search(rf'<tbody id="bolo-{bolo.id}".*?</tbody>', html, re.S)
    assert row
    for shown in ("pending", "7AB*123", "CA", "major crime (partial plate)", "26-001234",
                  "Armed robbery suspect vehicle", "operator", "2026-05-15"):
        assert shown in row.group(0), shown
    assert 'value="approve"' not in row.group(0) and 'value="withdraw"' in row.group(0)
    # An operator may not approve, whatever the page shows.
    response = await post_form(client, "/bolos", f"/bolos/{bolo.id}/decision",
                               {"decision": "approve"})
    assert response.status == 403
    await appliance._on_read(make_read("7ABX123"))
    assert await appliance.store.alerts.recent(5) == []  # pending: not matched

    await as_user(client, appliance, "supervisor")
    response = await post_form(client, "/bolos", f"/bolos/{bolo.id}/decision",
                               {"decision": "approve"})
    assert response.status == 303
    html = await (await client.get("/bolos")).text()
    assert "is now active" in html
    row = re.search(rf'<tbody id="bolo-{bolo.id}".*?</tbody>', html, re.S)
    assert row and ">active<" in row.group(0) and "supervisor" in row.group(0)
    assert 'class="inline retro-search"' in row.group(0)

    await appliance._on_read(make_read("7ABX123"))
    [alert] = await appliance.store.alerts.recent(5)
    assert alert.list_name == "bolo" and alert.kind == "wildcard"


async def test_bolo_self_approval_is_refused_with_the_services_message(
    client: Client, appliance: Appliance
) -> None:
    await as_user(client, appliance, "supervisor")
    assert (await post_form(client, "/bolos", "/bolos", bolo_form())).status == 303
    assert appliance.store is not None
    [bolo] = await appliance.store.bolos.all()
    response = await post_form(client, "/bolos", f"/bolos/{bolo.id}/decision",
                               {"decision": "approve"})
    assert response.status == 400
    assert "approved by someone other than its author" in await response.text()
    assert (await appliance.store.bolos.all())[0].status == "pending"
    response = await post_form(client, "/bolos", f"/bolos/{bolo.id}/decision",
                               {"decision": "withdraw"})
    assert response.status == 303
    assert (await appliance.store.bolos.all())[0].status == "withdrawn"
    response = await post_form(client, "/bolos", f"/bolos/{bolo.id}/decision",
                               {"decision": "withdraw"})
    assert response.status == 400 and "already withdrawn" in await response.text()


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"plate": "****1"}, "plate", "a plate is 2–8 letters and digits"),
    ({"case_number": "x"}, "case_number", "a case number is 4–20 letters"),
    ({"synopsis": "short"}, "synopsis", "at least 10 characters"),
    ({"category": "parking"}, "category", "category must be one of"),
    ({"expires": ""}, "expires", "valid date"),
    ({"expires": (T0.date() + timedelta(days=120)).isoformat()}, "form", "at most 90 days"),
])
async def test_bolo_form_errors_are_shown_and_input_kept(
    client: Client, appliance: Appliance, changes: dict[str, str], field: str, message: str
) -> None:
    await as_user(client, appliance, "analyst")
    form = bolo_form(**changes)
    response = await post_form(client, "/bolos", "/bolos", form)
    assert response.status == 400
    html = await response.text()
    error_id = "bolo-form-error" if field == "form" else f"error-{field}"
    error = re.search(rf'id="{error_id}">([^<]*)<', html)
    assert error and message in error.group(1)
    assert f'value="{form["case_number"]}"' in html
    assert "Armed robbery suspect vehicle" in html or form["synopsis"] in html
    assert appliance.store is not None and await appliance.store.bolos.all() == []


async def test_hostile_bolo_strings_are_escaped(client: Client, appliance: Appliance) -> None:
    await as_user(client, appliance, "operator")
    for hostile in HOSTILES:
        # A hostile plate is refused, and the refused input is shown back escaped.
        response = await post_form(client, "/bolos", "/bolos", bolo_form(plate=hostile))
        html = await response.text()
        assert response.status == 400 and hostile not in html
        response = await post_form(client, "/bolos", "/bolos",
                                   bolo_form(synopsis=f"Suspect said {hostile}"))
        assert response.status == 303
    html = await (await client.get("/bolos")).text()
    for hostile, escaped in zip(HOSTILES, ESCAPED, strict=True):
        assert hostile not in html and escaped in html


async def test_retro_search_counts_the_alerts_it_raised(
    client: Client, appliance: Appliance, clock: FakeClock
) -> None:
    for i, text in enumerate(("7ABQ123", "7ABZ123", "9ZZZ999")):
        await appliance._on_read(make_read(text, first_seen=T0 - timedelta(days=2, minutes=i)))
    await as_user(client, appliance, "operator")
    assert (await post_form(client, "/bolos", "/bolos", bolo_form())).status == 303
    assert appliance.store is not None
    [bolo] = await appliance.store.bolos.all()
    search = f"/bolos/{bolo.id}/search"
    # Pending: nothing to search for yet.
    response = await post_form(client, "/bolos", search, {"purpose": "Robbery 26-001234",
                                                          "days": "7"})
    assert response.status == 400 and "only an approved, unexpired BOLO" in await response.text()
    await as_user(client, appliance, "supervisor")
    await post_form(client, "/bolos", f"/bolos/{bolo.id}/decision", {"decision": "approve"})
    await as_user(client, appliance, "operator")
    for days, purpose, message in (("31", "Robbery 26-001234", "search 1 to 30 days back"),
                                   ("a week", "Robbery 26-001234", "search 1 to 30 days back"),
                                   ("7", "why not", "needs a purpose")):
        response = await post_form(client, "/bolos", search, {"purpose": purpose, "days": days})
        assert response.status == 400 and message in await response.text()
    response = await post_form(client, "/bolos", search,
                               {"purpose": "Robbery 26-001234 follow-up", "days": "7"})
    assert response.status == 303
    html = await (await client.get("/bolos")).text()
    assert "Search of the last 7 days of reads for case 26-001234 raised 2 alerts." in html
    assert len(await appliance.store.alerts.recent(10)) == 2


async def test_alert_shows_the_estimated_colour_beside_the_listed_vehicle(
    client: Client, appliance: Appliance
) -> None:
    """The officer compares the listed vehicle with what was seen: the box's colour estimate is
    on the page, worded as an estimate."""
    alert_id, _ = await raise_alert(
        appliance, read_fields={"vehicle_colour": "blue", "vehicle_colour_confidence": 0.61}
    )
    await as_user(client, appliance, "operator")
    page = await (await client.get(f"/alerts/{alert_id}")).text()
    [shown] = re.findall(r'id="read-colour">([^<]*)<', page)
    assert shown == "blue (estimated from the image, score 0.61; check the image)"
