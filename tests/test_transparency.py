"""The public transparency report and the generated usage and privacy policy: computed from the
box's own records, small counts suppressed, never a plate, a location or a person; and the
drift check."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from console_fixtures import T0, add_user, appliance_with_lists, listed, load_list, make_read

from appliance._appliance import Appliance
from appliance._hotlist.alerts import AlertState
from appliance._policy.gate import ShareRequest, gate_for
from appliance._sharing.drift import config_findings, store_findings
from appliance._sharing.transparency import build_report, suppress
from appliance._web import create_app
from appliance.testing import FakeClock

Client = TestClient[Any, Any]
MakeClient = Callable[..., Awaitable[Client]]
PLATES = ["7ABC123", "8XYZ999", "4LMN567", "5QRS321", "6TUV654", "2DEF888"]
SITE = """
site: {name: Test City, timezone: America/Los_Angeles}
transparency:
  custodian_title: Records Division Manager
  contact: Records Unit, 1 Civic Center Plaza
  suppress_below: 5
sharing:
  enabled: true
  agencies:
    - name: Oakland Police Department
      ori: CA0010900
      kind: city police
      approved_by: Chief Jane Quimby
      approved_on: 2026-01-02
      expires: 2026-12-31
    - name: Alameda County Sheriff's Office
      ori: CA0010000
      kind: county sheriff
      approved_by: Chief Jane Quimby
      approved_on: 2025-01-02
      expires: 2025-12-31
"""


@pytest.fixture
async def box(tmp_path: Path) -> AsyncIterator[Appliance]:
    clock = FakeClock(T0)
    async with appliance_with_lists(tmp_path / "data", SITE, clock) as app:
        assert app.store is not None
        await load_list(app, listed("7ABC123"), listed("8XYZ999"))
        # Six reads this month (two of them hits), one last month.
        for plate in PLATES:
            read = make_read(plate)
            await app._on_read(read)
        await app._on_read(make_read("3GHI111", first_seen=T0 - timedelta(days=31)))
        alerts = await app.store.alerts.recent(10, include_covert=True)
        assert len(alerts) == 2
        await app.store.alerts.transition(alerts[0].id, "op", AlertState.REJECTED,
                                          reason="misread (characters do not match)")
        for purpose in ["stolen vehicle"] * 6 + ["homicide"]:
            await app.store.record_event("search", "rivera", {
                "purpose": purpose, "query": {"plate": "7ABC123"}, "case_number": "26-001"})
        await app.store.record_event("share.decision", "x", {
            "allowed": False, "matched": ["denylist:agency:ICE"], "reasons": ["ICE"]})
        records = gate_for(app.store, app.config.root, app.clock).records
        request = ShareRequest(agency="Oakland Police Department", ori="CA0010900",
                               person="Sgt. Rivera", purpose="stolen vehicle",
                               case_number="26-001234").as_dict()
        for status in ["approved"] * 5 + ["denied"]:
            await records.create("request", {"request": request}, "op", app.clock.now(),
                                 status=status)
        for day in ("2026-03-01", "2026-03-02"):  # two days purged, with 7000 reads between them
            await app.store.write(lambda c, day=day: c.execute(
                "INSERT INTO purges (class, day, at, rows, images, held, key_destroyed,"
                " policy_version, proof, signature) VALUES ('read', ?, ?, 3500, 0, 0, 1, 'v',"
                " '{}', x'00')", (day, T0.isoformat())))
        yield app


async def test_report_counts_by_month_with_small_counts_suppressed(box: Appliance) -> None:
    assert box.store is not None
    report = (await build_report(box.store)).published()
    month, previous = T0.strftime("%Y-%m"), (T0 - timedelta(days=31)).strftime("%Y-%m")
    reads = {row["month"]: row["reads"] for row in report["reads"]["rows"]}
    assert reads == {month: "6", previous: "<5"}
    hits = report["hits"]["rows"]
    assert hits == [{"month": month, "hits": "<5"}]
    outcomes = report["outcomes"]["rows"][0]
    assert outcomes["misread"] == "<5" and outcomes["not yet verified"] == "<5"
    searches = report["searches"]["rows"][0]
    assert searches["stolen vehicle"] == "6" and searches["homicide"] == "<5"
    sharing = report["sharing"]["rows"][0]
    assert sharing["denylist blocks"] == "<5" and sharing["decisions denied"] == "<5"
    assert sharing["requests approved"] == "5" and sharing["requests denied"] == "<5"
    purges = report["purges"]["rows"][0]
    assert purges["days purged (read)"] == "<5" and purges["records destroyed"] == "7000"


def test_suppression() -> None:
    assert [suppress(n) for n in (0, 1, 4, 5, 12)] == ["0", "<5", "<5", "5", "12"]
    assert [suppress(n, below=3) for n in (2, 3)] == ["<3", "3"]  # transparency.suppress_below


@pytest.fixture
async def client(aiohttp_client: MakeClient, box: Appliance) -> Client:
    return await aiohttp_client(create_app(box))


async def test_transparency_page_is_public_and_never_shows_a_plate(
    client: Client, box: Appliance
) -> None:
    response = await client.get("/transparency")  # no session
    assert response.status == 200
    html = await response.text()
    for plate in [*PLATES, "3GHI111"]:
        assert plate not in html
    assert "north-gate" not in html  # camera names say where a car was
    assert "Quimby" not in html and "rivera" not in html.lower()  # no person's name
    assert "Oakland Police Department" in html and "CA0010900" in html
    assert "CA0010000" not in html  # its approval lapsed: it has no access
    assert "stolen vehicle" in html and "&lt;5" in html
    assert "Immigration enforcement" in html  # prohibited uses are stated
    assert re.search(r"<td>6</td>", html)  # the month's reads


async def test_policy_page_is_generated_from_the_live_config(client: Client) -> None:
    response = await client.get("/policy")
    assert response.status == 200
    html = await response.text()
    for key in ("A", "B", "C", "D", "E", "F", "G"):
        assert f'id="section-{key}"' in html
    assert "refresher every 365 days" in html
    assert "custodian of ALPR data for Test City is the Records Division Manager" in html
    assert "Records Unit, 1 Civic Center Plaza" in html
    assert "Oakland Police Department (CA0010900" in html
    assert "homicide: Investigate a homicide" in html
    for plate in PLATES:
        assert plate not in html


async def test_drift_check_flags_lapsed_partners_and_untrained_users(box: Appliance) -> None:
    assert box.store is not None
    findings = config_findings(box.config, date(2026, 5, 1))
    rules = [f.rule for f in findings]
    assert "partner approval" in rules  # the sheriff's approval lapsed
    assert any("Alameda County" in f.problem for f in findings)
    await add_user(box, "trained", "operator")
    await box.store.create_user("untrained", "x", "operator", "Test City")
    found = await store_findings(box.config, box.store, box.clock.now())
    training = [f.problem for f in found if f.rule == "training"]
    assert any("untrained" in p for p in training)
    assert not any("user trained " in p for p in training)


async def test_policy_check_cli_exits_non_zero_on_drift(tmp_path: Path) -> None:
    import asyncio
    import json
    import subprocess
    import sys

    import yaml

    from appliance.testing import make_appliance

    data = tmp_path / "box"
    sharing = {"enabled": True, "agencies": []}  # sharing on, nobody approved
    async with make_appliance(data, config={"sharing": sharing}, clock=FakeClock(T0)) as box:
        assert box.store is not None
        await box.store.create_user("noncompliant", "x", "operator", "Test City")
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump({
        "sharing": sharing, "keys": {"master_key_file": str(tmp_path / "box.key")},
        "exporters": []}))
    result = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "appliance", "policy", "check", "--config",
                         str(site), "--data-dir", str(data), "--json"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    findings = json.loads(result.stdout)["findings"]
    rules = {f["rule"] for f in findings}
    assert {"sharing", "training", "policy"} <= rules  # policy: no custodian named
    assert any("noncompliant" in f["problem"] for f in findings)


async def test_policy_check_cli_passes_a_compliant_box(tmp_path: Path) -> None:
    import asyncio
    import subprocess
    import sys

    import yaml

    from appliance.testing import make_appliance

    data = tmp_path / "box"
    async with make_appliance(data, clock=FakeClock(T0)):
        pass
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump({
        "keys": {"master_key_file": str(tmp_path / "box.key")},
        "transparency": {"custodian_title": "Records Division Manager"}}))
    result = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "appliance", "policy", "check", "--config",
                         str(site), "--data-dir", str(data)],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no drift" in result.stdout


async def test_public_report_is_recomputed_at_most_once_a_minute(
    client: Client, box: Appliance
) -> None:
    assert box.store is not None and isinstance(box.clock, FakeClock)
    assert "<td>6</td>" in await (await client.get("/transparency")).text()
    await box.store.add_read(make_read("1AAA111"))  # a seventh read this month
    assert "<td>6</td>" in await (await client.get("/transparency")).text()  # cached
    box.clock.advance(61)
    assert "<td>7</td>" in await (await client.get("/transparency")).text()


def test_the_policy_describes_every_role_the_console_has() -> None:
    from appliance._auth import ROLES as CONSOLE_ROLES
    from appliance._sharing.policy_doc import ROLES

    assert sorted(role for role, _ in ROLES) == sorted(CONSOLE_ROLES)


async def test_posted_policy_that_no_longer_matches_is_drift(tmp_path: Path) -> None:
    import asyncio
    import json
    import subprocess
    import sys

    import yaml

    from appliance.testing import make_appliance

    data = tmp_path / "box"
    async with make_appliance(data, clock=FakeClock(T0)):
        pass
    site = tmp_path / "site.yaml"

    def write_site(read_days: int) -> None:
        site.write_text(yaml.safe_dump({
            "keys": {"master_key_file": str(tmp_path / "box.key")},
            "transparency": {"custodian_title": "Records Division Manager"},
            "retention": {"read_days": read_days}}))

    async def alprbox(*args: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "appliance", "policy", *args, "--config",
                             str(site), "--data-dir", str(data)],
            capture_output=True, text=True, timeout=120)

    write_site(30)
    shown = await alprbox("show", "--json")
    assert shown.returncode == 0, shown.stderr
    posted = tmp_path / "posted.json"
    posted.write_text(shown.stdout)  # what the city put on its web site
    same = await alprbox("check", "--posted", str(posted), "--json")
    assert same.returncode == 0, same.stdout + same.stderr

    write_site(60)  # the box now keeps non-hit reads twice as long as the posted policy says
    drift = await alprbox("check", "--posted", str(posted), "--json")
    assert drift.returncode == 1
    findings = json.loads(drift.stdout)["findings"]
    retention = [f["problem"] for f in findings if f["rule"] == "posted retention"]
    assert any("posted" in p and "30 days" in p for p in retention)
    assert any("enforced" in p and "60 days" in p for p in retention)
    text = await alprbox("show")
    assert "(G) Retention and destruction" in text.stdout
