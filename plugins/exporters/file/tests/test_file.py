"""The file exporter through the host's outbox: CSV/JSON files for an approved delivery only,
rewritten (not duplicated) on retry, a missing medium retried."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alprbox_exporter_file import plugin

from appliance._sharing.authority import Authorization, DeliveryRefused
from appliance.base import Recipient
from appliance.testing import ExporterConformance, FakeClock, make_appliance

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
AUTH = Authorization(approval_id="req-3", channel="export",
                     recipient=Recipient("Berkeley Police Department", "CA0010300"),
                     purpose="homicide", case_number="26-004321", requested_by="det. lee")
READS = {"kind": "reads", "reads": [
    {"read_id": "r1", "plate": "7ABC123", "seen_at": T0.isoformat()},
    {"read_id": "r2", "plate": "=HYPERLINK(1)", "seen_at": T0.isoformat()},
]}


class Approved:
    async def authorize_delivery(self, approval_id: str, *, exporter: str, channel: str,
                                 actor: str) -> Authorization:
        if approval_id != "req-3":
            raise DeliveryRefused("no such approval")
        return AUTH


async def test_csv_and_json_files_for_an_approved_delivery(tmp_path: Path) -> None:
    media = tmp_path / "media"
    config = {"exporters": [
        {"type": "file", "name": "usb-csv", "directory": str(media / "csv"), "format": "csv"},
        {"type": "file", "name": "usb-json", "directory": str(media / "json")},
    ]}
    async with make_appliance(tmp_path / "box", plugins=[plugin], config=config,
                              clock=FakeClock(T0)) as box:
        assert box.store is not None
        assert box.sharing is not None
        outbox = box.sharing.outbox  # the box's own, built from the config; the test drives it
        outbox.authority = Approved()
        csv_id = await outbox.enqueue(AUTH, "usb-csv", READS, actor="lee")
        json_id = await outbox.enqueue(AUTH, "usb-json", READS, actor="lee",
                                       files={"images/r1-crop.jpg": b"\xff\xd8"})
        await outbox.deliver_due("usb-csv")
        await outbox.deliver_due("usb-json")
        await outbox.deliver_due("usb-json")  # nothing due: no second copy
    rows = list(csv.DictReader((media / "csv" / f"{csv_id}.csv").read_text().splitlines()))
    assert [r["plate"] for r in rows] == ["7ABC123", "'=HYPERLINK(1)"]
    assert set(rows[0]) == {"read_id", "plate", "seen_at"}
    data = json.loads((media / "json" / f"{json_id}.json").read_text())
    assert data["approval_id"] == "req-3" and data["case_number"] == "26-004321"
    assert (media / "json" / json_id / "images" / "r1-crop.jpg").read_bytes() == b"\xff\xd8"
    assert sorted(p.name for p in (media / "json").iterdir()) == sorted([f"{json_id}.json",
                                                                        json_id])


async def test_unwritable_medium_is_retried_not_lost(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the medium should be mounted")
    config = {"exporters": [{"type": "file", "name": "usb", "directory": str(blocker / "x")}]}
    async with make_appliance(tmp_path / "box", plugins=[plugin], config=config,
                              clock=FakeClock(T0)) as box:
        assert box.store is not None
        assert box.sharing is not None
        outbox = box.sharing.outbox
        outbox.authority = Approved()
        delivery_id = await outbox.enqueue(AUTH, "usb", READS, actor="lee")
        await outbox.deliver_due("usb")
        row = await outbox.records.get(delivery_id)
        assert row is not None and row.status == "pending" and "cannot write" in (
            row.last_error or "")


# -- an approved request exported from the command line, through the real gate ---------------

SHARING = {"enabled": True, "agencies": [{
    "name": "Berkeley Police Department", "ori": "CA0010300", "kind": "city police",
    "approved_by": "Chief of Police", "approved_on": "2026-01-02", "expires": "2026-12-31"}]}


async def test_alprbox_export_writes_only_what_the_approved_request_covers(
    tmp_path: Path,
) -> None:
    import asyncio
    import subprocess
    import sys
    from datetime import timedelta

    import yaml

    from appliance._policy.gate import ShareRequest, ShareScope, gate_for
    from appliance.models import PlateRead

    data, media = tmp_path / "box", tmp_path / "usb"
    now = datetime.now(UTC)
    exporters = [{"type": "file", "name": "usb", "directory": str(media), "format": "csv"}]
    async with make_appliance(data, plugins=[plugin], clock=FakeClock(now), config={
            "sharing": SHARING, "exporters": exporters}) as box:
        assert box.store is not None
        for plate in ("7ABC123", "8XYZ999"):
            await box.store.add_read(PlateRead(
                camera="north-gate", text=plate, confidence=0.9, first_seen=now,
                last_seen=now, box=(1, 2, 3, 4)))
        records = gate_for(box.store, box.config.root, box.clock).records
        request = ShareRequest(agency="Berkeley Police Department", ori="CA0010300",
                               person="Det. Lee", purpose="homicide", case_number="26-004321",
                               scope=ShareScope(plates=("7ABC123",)))
        ids = {}
        for status in ("approved", "revoked"):
            ids[status] = await records.create(
                "request", {"request": request.as_dict(), "channels": ["export"]}, "lee",
                box.clock.now(), status=status, decided_by="chief",
                expires_at=box.clock.now() + timedelta(days=30))
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump({"sharing": SHARING, "exporters": exporters,
                                    "keys": {"master_key_file": str(tmp_path / "box.key")}}))

    async def export(approval: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(subprocess.run, [
            sys.executable, "-m", "appliance", "export", "--config", str(site), "--data-dir",
            str(data), "--approval", approval, "--exporter", "usb", "--deliver-now", "--json"],
            capture_output=True, text=True, timeout=120)

    refused = await export(ids["revoked"])
    assert refused.returncode == 1 and "policy gate refused" in refused.stderr
    assert not media.exists()
    done = await export(ids["approved"])
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "delivered" and result["reads"] == 1
    text = (media / f"{result['delivery_id']}.csv").read_text()
    assert "7ABC123" in text and "8XYZ999" not in text


class TestFileConformance(ExporterConformance):
    @pytest.fixture
    def exporter_plugin(self) -> object:
        return plugin

    @pytest.fixture(params=["csv", "json"])
    def exporter_settings(self, tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, Any]:
        return {"type": "file", "name": "usb", "directory": str(tmp_path / "media"),
                "format": request.param}
