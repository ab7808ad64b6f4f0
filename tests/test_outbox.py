"""The outbox: gate-authorized deliveries, retries with backoff, dead letters, bounds, audit, and
an exporter that cannot reach the store."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import random
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from appliance._appliance import Appliance
from appliance._crypto import FieldCipher
from appliance._sharing.authority import Authorization, DeliveryRefused, Scope
from appliance._sharing.outbox import Outbox, OutboxFull, backoff_delay
from appliance._sharing.payload import reads_payload
from appliance._storage import Store
from appliance.base import Delivery, Exporter, PluginContext, Recipient
from appliance.models import PlateRead
from appliance.testing import (
    FAKES,
    ExporterConformance,
    FakeClock,
    RecordingExporter,
    make_appliance,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
AGENCY = Recipient(agency="Oakland Police Department", ori="CA0010900",
                   organization="Oakland Police Department", person="Sgt. A. Rivera")


class Approvals:
    """Stands in for the gate's approval book (the real gate is tested in its own suite): a
    set of approvals that can be revoked, answering the outbox's one question."""

    def __init__(self) -> None:
        self.approved: dict[str, Authorization] = {}
        self.asked = 0

    def approve(self, approval_id: str, channel: str = "webhook", **scope: Any) -> Authorization:
        auth = Authorization(
            approval_id=approval_id, channel=channel, recipient=AGENCY, purpose="stolen vehicle",
            case_number="26-001234", requested_by="Sgt. A. Rivera (Oakland PD)",
            scope=Scope(**scope) if scope else Scope(),
        )
        self.approved[approval_id] = auth
        return auth

    async def authorize_delivery(self, approval_id: str, *, exporter: str, channel: str,
                                 actor: str) -> Authorization:
        self.asked += 1
        auth = self.approved.get(approval_id)
        if auth is None or auth.channel != channel:
            raise DeliveryRefused(f"approval {approval_id} is not in force for {channel}")
        return auth


def read(plate: str, minutes: int = 0) -> PlateRead:
    at = T0 + timedelta(minutes=minutes)
    return PlateRead(camera="north-gate", text=plate, confidence=0.93, first_seen=at,
                     last_seen=at, box=(1, 2, 3, 4), crop_jpeg=b"\xff\xd8crop-" + plate.encode(),
                     state="CA")


@pytest.fixture
async def box(tmp_path: Path) -> AsyncIterator[Appliance]:
    RecordingExporter.delivered.clear()
    RecordingExporter.fail_next.clear()
    config = {"exporters": [{"type": "recording", "name": "oakland", "max_attempts": 3,
                             "max_pending": 4}]}
    async with make_appliance(tmp_path / "box", config=config, clock=FakeClock(T0)) as app:
        yield app
    RecordingExporter.delivered.clear()
    RecordingExporter.fail_next.clear()


def outbox_for(box: Appliance, approvals: Approvals) -> Outbox:
    """The box's own outbox (its workers are not running: the test drives deliveries), asking
    ``approvals`` instead of the gate."""
    assert box.sharing is not None
    outbox = box.sharing.outbox
    outbox.authority = approvals
    outbox.rng = random.Random(7)
    return outbox


async def test_delivery_carries_only_what_the_scope_allows_and_is_audited(box: Appliance) -> None:
    assert box.store is not None
    approvals = Approvals()
    auth = approvals.approve("req-1", fields=frozenset({"read_id", "plate", "seen_at"}),
                             plates=frozenset({"7ABC123"}))
    reads = [read("7ABC123"), read("8XYZ999", 1)]
    for r in reads:
        await box.store.add_read(r)
    payload, files = await reads_payload(box.store, auth, reads)
    outbox = outbox_for(box, approvals)
    delivery_id = await outbox.enqueue(auth, "oakland", payload, files=files, actor="rivera")
    assert await outbox.deliver_due("oakland") == 1

    [got] = RecordingExporter.delivered["oakland"]
    assert got.id == delivery_id and got.approval_id == "req-1"
    assert got.recipient.agency == "Oakland Police Department"
    assert [dict(r) for r in got.payload["reads"]] == [
        {"read_id": reads[0].id, "plate": "7ABC123", "seen_at": T0.isoformat()}
    ]  # the other plate is not in the approval; camera, state, confidence not in its fields
    assert got.files == {}  # images were not in the scope
    with pytest.raises(TypeError):
        got.payload["reads"][0]["plate"] = "X"  # type: ignore[index]
    assert isinstance(got.payload, MappingProxyType)
    plain = got.payload_dict()  # a plugin's own copy, for json.dumps
    plain["reads"][0]["plate"] = "changed"
    assert got.payload["reads"][0]["plate"] == "7ABC123"

    [event] = await box.store.events(5, kind="export.delivered")
    detail = event["detail"]
    # Civil Code 1798.90.52(a): when, what data, who (agency and organization), purpose
    assert detail["at"] and detail["data"]["plates"] == ["7ABC123"]
    assert detail["recipient_agency"] == "Oakland Police Department"
    assert detail["organization"] == "Oakland Police Department"
    assert detail["purpose"] == "stolen vehicle" and detail["case_number"] == "26-001234"
    assert event["actor"] == "rivera"
    assert await box.store.events(5, kind="export.queued")


async def test_payload_is_encrypted_in_the_outbox_table(box: Appliance) -> None:
    assert box.store is not None
    approvals = Approvals()
    auth = approvals.approve("req-1")
    r = read("7ABC123")
    await box.store.add_read(r)
    payload, _files = await reads_payload(box.store, auth, [r])
    await outbox_for(box, approvals).enqueue(auth, "oakland", payload, actor="rivera")
    raw = sqlite3.connect(box.store.path)
    blobs = b"".join(bytes(row[0]) for row in raw.execute("SELECT payload FROM outbox"))
    raw.close()
    assert blobs and b"7ABC123" not in blobs and b"Oakland" not in blobs


async def test_failures_back_off_then_deliver_once(box: Appliance) -> None:
    assert box.store is not None
    clock = box.clock
    assert isinstance(clock, FakeClock)
    approvals = Approvals()
    auth = approvals.approve("req-1")
    outbox = outbox_for(box, approvals)
    RecordingExporter.fail_next["oakland"] = 2
    delivery_id = await outbox.enqueue(auth, "oakland", {"kind": "note"}, actor="rivera")
    assert await outbox.deliver_due("oakland") == 1  # fails: retry later, not now
    assert await outbox.deliver_due("oakland") == 0
    row = await outbox.records.get(delivery_id)
    assert row is not None and row.status == "pending" and row.attempts == 1
    wait = (row.next_attempt_at - clock.now()).total_seconds()
    assert 1.0 <= wait <= 2.0  # base 2 s, jittered between half and all of it
    clock.advance(wait)
    assert await outbox.deliver_due("oakland") == 1  # fails again: the delay doubles
    row = await outbox.records.get(delivery_id)
    assert row is not None and row.attempts == 2
    assert 2.0 <= (row.next_attempt_at - clock.now()).total_seconds() <= 4.0
    assert row.last_error and "told to fail" in row.last_error
    clock.advance(4)
    assert await outbox.deliver_due("oakland") == 1
    assert [d.id for d in RecordingExporter.delivered["oakland"]] == [delivery_id]
    assert RecordingExporter.delivered["oakland"][0].attempt == 3
    row = await outbox.records.get(delivery_id)
    assert row is not None and row.status == "delivered"
    metrics = box.metrics.render().decode()
    assert 'alprbox_outbox_failures_total{exporter="oakland"} 2.0' in metrics
    assert 'alprbox_outbox_delivered_total{exporter="oakland"} 1.0' in metrics


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    rng = random.Random(1)
    for attempt in range(1, 20):
        full = min(3600.0, 2.0 * 2 ** (attempt - 1))
        delays = [backoff_delay(attempt, rng) for _ in range(50)]
        assert all(full / 2 <= d <= full for d in delays)
        assert len(set(delays)) > 1  # jittered


async def test_dead_letter_after_max_attempts_and_requeue(box: Appliance) -> None:
    assert box.store is not None
    clock = box.clock
    assert isinstance(clock, FakeClock)
    approvals = Approvals()
    auth = approvals.approve("req-1")
    outbox = outbox_for(box, approvals)
    RecordingExporter.fail_next["oakland"] = 100
    delivery_id = await outbox.enqueue(auth, "oakland", {"kind": "note"}, actor="rivera")
    for _ in range(3):
        await outbox.deliver_due("oakland")
        clock.advance(3600)
    row = await outbox.records.get(delivery_id)
    assert row is not None and row.status == "dead" and row.attempts == 3
    assert 'alprbox_outbox_dead{exporter="oakland"} 1.0' in box.metrics.render().decode()
    assert outbox.status()[0]["dead"] == 1
    [dead] = await box.store.events(5, kind="export.dead_letter")
    assert dead["detail"]["attempts"] == 3
    RecordingExporter.fail_next["oakland"] = 0
    assert await outbox.retry_dead(delivery_id, "admin")
    await outbox.deliver_due("oakland")
    assert [d.id for d in RecordingExporter.delivered["oakland"]] == [delivery_id]


async def test_outbox_is_bounded_and_refusals_are_audited(box: Appliance) -> None:
    assert box.store is not None
    approvals = Approvals()
    auth = approvals.approve("req-1")
    outbox = outbox_for(box, approvals)
    for i in range(4):
        await outbox.enqueue(auth, "oakland", {"kind": "note", "n": i}, actor="rivera")
    with pytest.raises(OutboxFull):
        await outbox.enqueue(auth, "oakland", {"kind": "note", "n": 5}, actor="rivera")
    assert await box.store.events(5, kind="export.refused")
    # The same key queues once: a stream re-sending a hit does not duplicate it.
    await outbox.deliver_due("oakland")
    first = await outbox.enqueue(auth, "oakland", {"kind": "hit"}, actor="system", key="hit-1")
    again = await outbox.enqueue(auth, "oakland", {"kind": "hit"}, actor="system", key="hit-1")
    assert first == again
    await outbox.deliver_due("oakland")
    assert [d.payload["kind"] for d in RecordingExporter.delivered["oakland"]].count("hit") == 1


async def test_revoked_approval_stops_queued_deliveries(box: Appliance) -> None:
    assert box.store is not None
    approvals = Approvals()
    auth = approvals.approve("req-1")
    outbox = outbox_for(box, approvals)
    delivery_id = await outbox.enqueue(auth, "oakland", {"kind": "note"}, actor="rivera")
    del approvals.approved["req-1"]  # revoked (or expired) before the worker got to it
    await outbox.deliver_due("oakland")
    assert RecordingExporter.delivered.get("oakland", []) == []
    row = await outbox.records.get(delivery_id)
    assert row is not None and row.status == "dead"
    [refused] = await box.store.events(5, kind="export.refused")
    assert "not in force" in refused["detail"]["why"]


async def test_a_hanging_destination_never_blocks_reading_plates(box: Appliance) -> None:
    assert box.store is not None

    class Hangs(RecordingExporter):
        async def deliver(self, delivery: Delivery) -> None:
            await asyncio.Event().wait()

    settings = box.config.exporters[0].model_copy(update={"timeout_seconds": 0.05})
    approvals = Approvals()
    auth = approvals.approve("req-1")
    outbox = Outbox(box.store, box.clock, approvals,
                    {"oakland": (Hangs(settings, box.context("exporters", "oakland")), settings)})
    await outbox.start()  # with its worker, as the running box has
    try:
        delivery_id = await outbox.enqueue(auth, "oakland", {"kind": "note"}, actor="rivera")
        for i in range(20):  # reads keep being stored while the worker waits on its timeout
            await box.store.add_read(read(f"7ABC{i:03d}", i))
        for _ in range(200):
            row = await outbox.records.get(delivery_id)
            if row is not None and row.attempts >= 1:
                break
            await asyncio.sleep(0.01)
        assert row is not None and row.attempts == 1 and "timed out" in (row.last_error or "")
        assert await box.store.count_reads() == 20
    finally:
        await outbox.stop()


# -- an exporter cannot reach the store -----------------------------------------------------

FORBIDDEN = (Store, FieldCipher, Appliance, Outbox, sqlite3.Connection)


def reachable(root: object, limit: int = 20_000) -> list[object]:
    """Every object reachable from ``root`` through attributes, slots, containers and closures
    (not through classes, modules or the logging machinery, which are global)."""
    seen: set[int] = set()
    out: list[object] = []
    stack = [root]
    while stack and len(out) < limit:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type | type(logging) | logging.Logger):
            continue
        seen.add(id(obj))
        out.append(obj)
        if isinstance(obj, str | bytes | int | float | bool | datetime | Path) or obj is None:
            continue
        if isinstance(obj, dict | MappingProxyType):
            stack.extend(obj.keys())
            stack.extend(obj.values())
            continue
        if isinstance(obj, list | tuple | set | frozenset):
            stack.extend(obj)
            continue
        if dataclasses.is_dataclass(obj):
            stack.extend(getattr(obj, f.name) for f in dataclasses.fields(obj))
        for name in getattr(type(obj), "__slots__", ()):
            if hasattr(obj, name):
                stack.append(getattr(obj, name))
        stack.extend(getattr(obj, "__dict__", {}).values())
        closure = getattr(obj, "__closure__", None) or ()
        stack.extend(cell.cell_contents for cell in closure)
        bound = getattr(obj, "__self__", None)
        if bound is not None:
            stack.append(bound)
    return out


async def test_an_exporter_cannot_reach_the_store_except_through_the_gate(box: Appliance) -> None:
    assert box.store is not None
    approvals = Approvals()
    auth = approvals.approve("req-1", fields=frozenset({"read_id", "plate", "crop"}))
    r = read("7ABC123")
    await box.store.add_read(r)
    payload, files = await reads_payload(box.store, auth, [r])

    seen: list[tuple[Exporter, Delivery, PluginContext]] = []

    class Snoop(RecordingExporter):
        async def deliver(self, delivery: Delivery) -> None:
            seen.append((self, delivery, self.context))

    settings = box.config.exporters[0]
    outbox = Outbox(box.store, box.clock, approvals,
                    {"oakland": (Snoop(settings, box.context("exporters", "oakland")), settings)})
    await outbox.enqueue(auth, "oakland", payload, files=files, actor="rivera")
    await outbox.deliver_due("oakland")
    [(exporter, delivery, context)] = seen
    assert delivery.files == {f"images/{r.id}-crop.jpg": r.crop_jpeg}
    names = {f.name for f in dataclasses.fields(context)}
    assert {"logger", "data_dir", "clock"} <= names
    assert not names & {"store", "cipher", "appliance", "gate", "outbox", "db"}
    # The walk does find a store where there is one to find:
    assert any(isinstance(o, Store) for o in reachable(outbox))
    assert box.sharing is not None
    built, _ = box.sharing.outbox.exporters["oakland"]  # as the running box builds it
    found = reachable(exporter) + reachable(delivery) + reachable(built)
    leaks = [type(o).__name__ for o in found if isinstance(o, FORBIDDEN)]
    assert leaks == [], f"an exporter can reach {leaks}"
    # Nor can it find the store among the objects that refer to what it holds.
    referrers = [o for o in gc.get_referrers(delivery) if isinstance(o, FORBIDDEN)]
    assert referrers == []


# -- the console's outbox page ------------------------------------------------------------------


async def test_outbox_page_shows_waiting_and_dead_letters(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    from console_fixtures import add_user, appliance_with_lists, csrf_from, login_as

    from appliance._web import create_app

    RecordingExporter.fail_next.clear()
    extra = "exporters: [{type: recording, name: oakland, max_attempts: 1}]\n"
    async with appliance_with_lists(tmp_path / "data", extra, FakeClock(T0)) as box:
        approvals = Approvals()
        auth = approvals.approve("req-1")
        outbox = outbox_for(box, approvals)
        RecordingExporter.fail_next["oakland"] = 1
        await outbox.enqueue(auth, "oakland", {"kind": "note"}, actor="rivera")
        await outbox.deliver_due("oakland")  # one attempt allowed: dead-lettered
        await outbox.enqueue(auth, "oakland", {"kind": "note", "n": 2}, actor="rivera")
        client = await aiohttp_client(create_app(box))
        await add_user(box, "chief", "administrator")
        await login_as(client, "chief", "correct horse 42")
        html = await (await client.get("/outbox")).text()
        row = html[html.index("oakland"):]
        cells = [c.split("</td>")[0] for c in row.split("<td>")[1:5]]
        assert cells == ["recording", "1", "0", "1"]  # type, waiting, delivered, dead
        assert "told to fail" in row
        [dead] = await outbox.records.recent(5, status="dead")
        assert html.count('class="dead-letter"') == 1 and dead.id in html
        assert "note" not in html  # a dead letter's payload is never shown
        token = csrf_from(html)
        response = await client.post(f"/outbox/{dead.id}/retry", data={"csrf_token": token},
                                     allow_redirects=False)
        assert response.status == 303
        row_after = await outbox.records.get(dead.id)
        assert row_after is not None and row_after.status == "pending"
        assert await box.store.events(5, kind="export.requeued")  # type: ignore[union-attr]
        await add_user(box, "auditor", "auditor")
        await login_as(client, "auditor", "correct horse 42")
        assert (await client.get("/outbox")).status == 200  # auditors see it, cannot retry
        await add_user(box, "op", "operator")
        await login_as(client, "op", "correct horse 42")
        assert (await client.get("/outbox")).status == 403


class TestRecordingExporterConformance(ExporterConformance):
    @pytest.fixture
    def exporter_plugin(self) -> object:
        return FAKES

    @pytest.fixture
    def exporter_settings(self) -> dict[str, Any]:
        return {"type": "recording", "name": "recorder"}


async def test_an_exporter_still_written_for_send_is_not_started(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from pydantic import Field

    from appliance import ExporterSettings, hookimpl

    class OldSettings(ExporterSettings):
        type: str = Field(default="old", pattern="^old$", description="An 0.1 exporter.")

    class OldExporter(Exporter):
        settings_model = OldSettings

        async def send(self, read: PlateRead) -> None:  # the 0.1 interface
            raise AssertionError("never called")

    class OldPlugin:
        __name__ = "old_exporter_plugin"

        @hookimpl
        def appliance_exporter_types(self) -> list[type[Exporter]]:
            return [OldExporter]

    with caplog.at_level(logging.ERROR):
        async with make_appliance(tmp_path / "box", plugins=[OldPlugin()],
                                  config={"exporters": [{"type": "old", "name": "legacy"}]}) as box:
            assert box.sharing is not None and "legacy" not in box.sharing.outbox.exporters
    assert "does not implement deliver" in caplog.text


async def test_delivered_payloads_are_dropped_and_old_rows_pruned(box: Appliance) -> None:
    assert box.store is not None and isinstance(box.clock, FakeClock)
    approvals = Approvals()
    auth = approvals.approve("req-1")
    outbox = outbox_for(box, approvals)
    delivered = await outbox.enqueue(auth, "oakland", {"kind": "hit", "plate": "7ABC123"},
                                     actor="rivera")
    await outbox.deliver_due("oakland")
    RecordingExporter.fail_next["oakland"] = 100
    dead = await outbox.enqueue(auth, "oakland", {"kind": "hit", "plate": "8XYZ999"},
                                actor="rivera")
    for _ in range(3):
        await outbox.deliver_due("oakland")
        box.clock.advance(3600)
    raw = sqlite3.connect(box.store.path)
    sizes = dict(raw.execute("SELECT id, length(payload) FROM outbox").fetchall())
    raw.close()
    assert sizes[delivered] == 0  # nothing of what left stays behind
    assert sizes[dead] > 0  # a dead letter keeps its payload for a retry
    assert outbox.keep_dead == timedelta(days=30)  # the site keeps non-hit reads 30 days
    box.clock.advance(29 * 86400)
    assert await outbox.prune() == 0
    box.clock.advance(2 * 86400)
    assert await outbox.prune() == 2
    assert await outbox.records.get(delivered) is None and await outbox.records.get(dead) is None
