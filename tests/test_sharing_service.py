"""The running box shares a hit only through the real policy gate: a standing approval on file
streams hits to an exporter; a revoked one, or a denylisted agency, streams nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from appliance._appliance import Appliance
from appliance._policy.gate import ShareRequest, ShareScope, gate_for
from appliance._sharing.authority import DeliveryRefused
from appliance._sharing.gate_adapter import GateAuthority
from appliance.models import PlateRead
from appliance.testing import FakeClock, RecordingExporter, make_appliance

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SHARING = {
    "enabled": True,
    "agencies": [{
        "name": "Oakland Police Department", "ori": "CA0010900", "kind": "city police",
        "approved_by": "Chief of Police", "approved_on": "2026-01-02",
        "expires": "2026-12-31",
    }],
}
HOTLIST = {"type": "fake", "name": "wanted", "plates": ["7ABC123"]}


@pytest.fixture(autouse=True)
def fresh_recording_exporter() -> Iterator[None]:
    """The recording exporter keeps its state on the class: start and end every test clean."""
    RecordingExporter.delivered.clear()
    RecordingExporter.fail_next.clear()
    yield
    RecordingExporter.delivered.clear()
    RecordingExporter.fail_next.clear()


def read(plate: str) -> PlateRead:
    return PlateRead(camera="north-gate", text=plate, confidence=0.93, first_seen=T0,
                     last_seen=T0, box=(1, 2, 3, 4), crop_jpeg=b"\xff\xd8crop", state="CA")


async def standing_approval(box: Appliance, status: str = "approved", **request: Any) -> str:
    """A standing approval kept on file, as the sharing console makes one (MFA step elided)."""
    assert box.store is not None
    gate = gate_for(box.store, box.config.root, box.clock)
    fields = {"agency": "Oakland Police Department", "ori": "CA0010900",
              "person": "Sgt. A. Rivera", "purpose": "stolen vehicle",
              "case_number": "26-001234", "channel": "export",
              "scope": ShareScope(description="hits on stolen vehicles")}
    fields.update(request)
    payload = {"request": ShareRequest(**fields).as_dict(), "channels": ["export", "webhook"]}
    return await gate.records.create(
        "standing", payload, "chief", box.clock.now(), status=status, decided_by="chief",
        expires_at=box.clock.now() + timedelta(days=30),
    )


async def run_box(data: Path, approval: str) -> tuple[list[Any], list[dict[str, Any]]]:
    """Start the box with a hit-streaming exporter under ``approval``; read a listed plate."""
    RecordingExporter.delivered.clear()
    config = {"sharing": SHARING, "hotlists": [HOTLIST], "exporters": [
        {"type": "recording", "name": "oakland", "approval": approval, "stream": "hits"}]}
    async with make_appliance(data, config=config, clock=FakeClock(T0)) as box:
        assert box.store is not None and box.hotlists is not None
        await box.hotlists.refresh("wanted")
        await box._on_read(read("7ABC123"))
        await box._on_read(read("8XYZ999"))  # no hit: never leaves
        assert box.sharing is not None
        for _ in range(100):  # the hit stream queues in the background; deliver what is due
            await asyncio.sleep(0.01)
            await box.sharing.outbox.deliver_due("oakland")
            if RecordingExporter.delivered.get("oakland"):
                break
        await asyncio.sleep(0.05)
        decisions = await box.store.events(20, kind="share.decision")
        return list(RecordingExporter.delivered.get("oakland", [])), decisions


async def test_a_hit_is_delivered_under_a_standing_approval(tmp_path: Path) -> None:
    data = tmp_path / "box"
    async with make_appliance(data, config={"sharing": SHARING}, clock=FakeClock(T0)) as box:
        approval = await standing_approval(box)
    delivered, decisions = await run_box(data, approval)
    [delivery] = delivered
    assert delivery.approval_id == approval and delivery.channel == "export"
    assert delivery.recipient.ori == "CA0010900"
    assert [r["plate"] for r in delivery.payload["reads"]] == ["7ABC123"]
    assert delivery.payload["kind"] == "hit"
    assert set(delivery.files) == {f"images/{delivery.payload['reads'][0]['read_id']}-crop.jpg"}
    assert decisions and all(d["detail"].get("allowed") for d in decisions)


async def test_a_revoked_approval_streams_nothing_and_is_audited(tmp_path: Path) -> None:
    data = tmp_path / "box"
    async with make_appliance(data, config={"sharing": SHARING}, clock=FakeClock(T0)) as box:
        approval = await standing_approval(box, status="revoked")
    delivered, decisions = await run_box(data, approval)
    assert delivered == []
    assert decisions and not any(d["detail"].get("allowed") for d in decisions)


async def test_an_approval_on_behalf_of_ice_is_refused_by_the_gate(tmp_path: Path) -> None:
    data = tmp_path / "box"
    async with make_appliance(data, config={"sharing": SHARING}, clock=FakeClock(T0)) as box:
        approval = await standing_approval(box, on_behalf_of=("ICE ERO San Francisco",))
        assert box.store is not None
        authority = GateAuthority(gate_for(box.store, box.config.root, box.clock))
        try:
            await authority.authorize_delivery(approval, exporter="oakland", channel="export",
                                               actor="system")
        except DeliveryRefused as err:
            assert any("denylist" in m for m in err.matched)
        else:
            raise AssertionError("the gate let an ICE request through")


async def test_the_running_box_delivers_on_its_own(tmp_path: Path) -> None:
    data = tmp_path / "box"
    async with make_appliance(data, config={"sharing": SHARING}, clock=FakeClock(T0)) as box:
        approval = await standing_approval(box)
    RecordingExporter.delivered.clear()
    config = {"sharing": SHARING, "hotlists": [HOTLIST], "exporters": [
        {"type": "recording", "name": "oakland", "approval": approval, "stream": "hits"}]}
    async with make_appliance(data, config=config, clock=FakeClock(T0),
                              schedule_hotlists=True) as box:  # workers run, as on a site
        assert box.hotlists is not None
        await box.hotlists.refresh("wanted")
        await box._on_read(read("7ABC123"))
        for _ in range(500):
            if RecordingExporter.delivered.get("oakland"):
                break
            await asyncio.sleep(0.01)
    assert [d.payload["kind"] for d in RecordingExporter.delivered["oakland"]] == ["hit"]


async def test_a_burst_of_hits_is_queued_whole(tmp_path: Path) -> None:
    """More hits at once than a live listener keeps: the share stream must not drop any."""
    import dataclasses

    data = tmp_path / "box"
    async with make_appliance(data, config={"sharing": SHARING}, clock=FakeClock(T0)) as box:
        approval = await standing_approval(box)
    config = {"sharing": SHARING, "hotlists": [HOTLIST], "exporters": [
        {"type": "recording", "name": "oakland", "approval": approval, "stream": "hits",
         "max_pending": 1000}]}
    async with make_appliance(data, config=config, clock=FakeClock(T0)) as box:
        assert box.store is not None and box.hotlists is not None and box.sharing is not None
        await box.hotlists.refresh("wanted")
        watch = box.alert_bus.subscribe()
        await box._on_read(read("7ABC123"))
        hit = await asyncio.wait_for(watch.get(), 10)
        burst = 250  # the alert bus keeps 100 per live listener
        for n in range(burst):  # all in one go, as several cameras' hits can arrive
            box.alert_bus.publish(dataclasses.replace(hit, id=f"{hit.id}-{n}"))
        queued = 0
        for _ in range(600):
            counts = (await box.sharing.outbox.records.counts()).get("oakland")
            queued = counts.pending + counts.delivered if counts else 0
            if queued >= burst + 1:
                break
            await asyncio.sleep(0.05)
        assert queued == burst + 1
