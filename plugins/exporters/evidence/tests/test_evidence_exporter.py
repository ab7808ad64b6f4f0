"""The evidence exporter writes the host's signed package to media; it verifies there, and a
read the approval does not cover is never packaged."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alprbox_exporter_evidence import plugin

from appliance._sharing.authority import Authorization, DeliveryRefused, Scope
from appliance._sharing.evidence import EvidenceError, queue_evidence, verify_package
from appliance.base import Recipient
from appliance.models import PlateRead
from appliance.testing import ExporterConformance, FakeClock, make_appliance

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def read(plate: str) -> PlateRead:
    return PlateRead(camera="north-gate", text=plate, confidence=0.9, first_seen=T0,
                     last_seen=T0, box=(1, 2, 3, 4), crop_jpeg=b"\xff\xd8" + plate.encode())


class CaseApproval:
    """The approval for one case's evidence: only the plate the case is about."""

    async def authorize_delivery(self, approval_id: str, *, exporter: str, channel: str,
                                 actor: str) -> Authorization:
        if approval_id != "ev-1" or channel != "evidence":
            raise DeliveryRefused("not approved")
        return Authorization(
            approval_id="ev-1", channel="evidence",
            recipient=Recipient("Alameda County District Attorney", "CA0010200"),
            purpose="homicide", case_number="26-000042", requested_by="DDA Ortiz",
            scope=Scope(fields=frozenset({"plate", "crop"}), plates=frozenset({"7ABC123"})))


@pytest.mark.parametrize("as_zip", [False, True])
async def test_package_written_to_media_verifies(tmp_path: Path, as_zip: bool) -> None:
    media = tmp_path / "usb"
    config = {"exporters": [{"type": "evidence", "name": "media", "directory": str(media),
                             "zip": as_zip}]}
    async with make_appliance(tmp_path / "box", plugins=[plugin], config=config,
                              clock=FakeClock(T0)) as box:
        assert box.store is not None and box.sharing is not None
        wanted, other = read("7ABC123"), read("8XYZ999")
        await box.store.add_read(wanted)
        await box.store.add_read(other)
        outbox = box.sharing.outbox
        outbox.authority = CaseApproval()
        with pytest.raises(EvidenceError):  # a read of another plate is outside the approval
            await queue_evidence(outbox, "media", "ev-1", read_ids=[wanted.id, other.id],
                                 actor="ortiz", organization="Test City PD", site="Test City")
        delivery_id = await queue_evidence(outbox, "media", "ev-1", read_ids=[wanted.id],
                                           actor="ortiz", organization="Test City PD",
                                           site="Test City")
        await outbox.deliver_due("media")
    [package] = [p for p in media.iterdir() if not p.name.startswith(".")]
    assert package.name == f"26-000042-{delivery_id}" + (".zip" if as_zip else "")
    report = verify_package(package)
    assert report.ok, report.problem
    assert report.case_number == "26-000042"


class TestEvidenceConformance(ExporterConformance):
    @pytest.fixture
    def exporter_plugin(self) -> object:
        return plugin

    @pytest.fixture(params=[False, True])
    def exporter_settings(self, tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, Any]:
        return {"type": "evidence", "name": "media", "directory": str(tmp_path / "media"),
                "zip": request.param}
