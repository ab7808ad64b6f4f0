"""Regional partner share against a real partner server on loopback, through the real policy
gate: the partner gets hit/no-hit for its own plates and never a read of any other plate."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from alprbox_exporter_partner_share import plugin

from appliance._appliance import Appliance
from appliance._policy.gate import ShareRequest, gate_for
from appliance._sharing.partner import run_partner_query
from appliance.models import PlateRead
from appliance.testing import ExporterConformance, FakeClock, make_appliance

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SECRET = "partner-shared-secret"
SHARING = {"enabled": True, "agencies": [{
    "name": "Hayward Police Department", "ori": "CA0010600", "kind": "city police",
    "approved_by": "Chief of Police", "approved_on": "2026-01-02", "expires": "2026-12-31"}]}


class Partner:
    def __init__(self) -> None:
        self.plates = ["7ABC123", "9NOPE00", "7abc 123"]
        self.bodies: list[bytes] = []
        self.answers: list[dict[str, Any]] = []
        self.keys: list[str] = []

    def signed(self, request: web.Request, body: bytes) -> bool:
        stamp = request.headers[plugin.TIMESTAMP_HEADER]
        want = "sha256=" + hmac.new(SECRET.encode(), stamp.encode() + b"." + body,
                                    hashlib.sha256).hexdigest()
        return hmac.compare_digest(want, request.headers[plugin.SIGNATURE_HEADER])

    async def list(self, request: web.Request) -> web.Response:
        if not self.signed(request, b""):
            return web.Response(status=401)
        return web.json_response({"id": "hayward-2026-03-01", "plates": self.plates})

    async def post(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not self.signed(request, body):
            return web.Response(status=401)
        self.bodies.append(body)
        self.keys.append(request.headers[plugin.IDEMPOTENCY_HEADER])
        self.answers.append(json.loads(body))
        return web.Response(status=204)


@pytest.fixture
async def partner() -> AsyncIterator[tuple[Partner, str]]:
    p = Partner()
    app = web.Application()
    app.router.add_get("/alpr/list", p.list)
    app.router.add_post("/alpr/answers", p.post)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield p, f"http://127.0.0.1:{runner.addresses[0][1]}/alpr"
    finally:
        await runner.cleanup()


def read(plate: str, minutes: int) -> PlateRead:
    at = T0 - timedelta(minutes=minutes)
    return PlateRead(camera="north-gate", text=plate, confidence=0.9, first_seen=at,
                     last_seen=at, box=(1, 2, 3, 4))


async def approve(data: Path, status: str = "approved") -> str:
    async with make_appliance(data, config={"sharing": SHARING}, clock=FakeClock(T0)) as box:
        assert box.store is not None
        for plate, minutes in (("7ABC123", 30), ("7ABC123", 10), ("8XYZ999", 5)):
            await box.store.add_read(read(plate, minutes))
        gate = gate_for(box.store, box.config.root, box.clock)
        request = ShareRequest(agency="Hayward Police Department", ori="CA0010600",
                               person="Lt. M. Chan", purpose="stolen vehicle",
                               case_number="26-007777", channel="partner_query")
        return await gate.records.create(
            "standing", {"request": request.as_dict(), "channels": ["partner_query"]},
            "chief", box.clock.now(), status=status, decided_by="chief",
            expires_at=box.clock.now() + timedelta(days=30))


async def box_with_partner(data: Path, url: str, approval: str,
                           monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Appliance]:
    monkeypatch.setenv("HAYWARD_SECRET", SECRET)
    config = {"sharing": SHARING, "exporters": [{
        "type": "partner_share", "name": "hayward", "url": url, "secret": "env:HAYWARD_SECRET",
        "approval": approval}]}
    async with make_appliance(data, plugins=[plugin], config=config,
                              clock=FakeClock(T0)) as box:
        yield box


async def test_partner_gets_hit_or_no_hit_for_its_own_plates_only(
    tmp_path: Path, partner: tuple[Partner, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    p, url = partner
    data = tmp_path / "box"
    approval = await approve(data)
    async for box in box_with_partner(data, url, approval, monkeypatch):
        assert box.sharing is not None and box.store is not None
        outbox = box.sharing.outbox
        delivery_id = await run_partner_query(outbox, "hayward", box.clock.now())
        assert delivery_id is not None
        await outbox.deliver_due("hayward")
        [event] = await box.store.events(5, kind="export.delivered")
        assert event["detail"]["recipient_agency"] == "Hayward Police Department"
        assert event["detail"]["data"]["hit_plates"] == ["7ABC123"]
        assert event["detail"]["purpose"] == "stolen vehicle"
    [sent] = p.answers
    answers = sent["answer"]["answers"]
    assert [(a["plate"], a["hit"]) for a in answers] == [("7ABC123", True), ("9NOPE00", False)]
    assert answers[0]["reads"] == 2  # the duplicate spelling was answered once
    assert p.keys == [delivery_id] and sent["approval_id"] == approval
    # The non-hit read of a plate the partner did not ask about never left the box.
    assert all(b"8XYZ999" not in body for body in p.bodies)
    assert all(b"north-gate" not in body for body in p.bodies)


async def test_a_revoked_partner_gets_no_answer(
    tmp_path: Path, partner: tuple[Partner, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    p, url = partner
    data = tmp_path / "box"
    approval = await approve(data, status="revoked")
    async for box in box_with_partner(data, url, approval, monkeypatch):
        assert box.sharing is not None and box.store is not None
        assert await run_partner_query(box.sharing.outbox, "hayward", box.clock.now()) is None
        await box.sharing.outbox.deliver_due("hayward")
        decisions = await box.store.events(5, kind="share.decision")
        assert decisions and decisions[0]["detail"]["allowed"] is False
    assert p.answers == []


class TestPartnerShareConformance(ExporterConformance):
    @pytest.fixture
    def exporter_plugin(self) -> object:
        return plugin

    @pytest.fixture
    def exporter_settings(self, partner: tuple[Partner, str],
                          monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
        monkeypatch.setenv("HAYWARD_SECRET", SECRET)
        return {"type": "partner_share", "name": "hayward", "url": partner[1],
                "secret": "env:HAYWARD_SECRET"}
