"""Legal holds: held reads survive the purge of their day, return to normal retention when
released, and both steps are audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from appliance import PlateRead
from appliance._lifecycle.holds import HoldError, Holds
from appliance.testing import FakeClock, make_appliance, plate_read

T0 = datetime(2026, 5, 1, 8, 30, tzinfo=UTC)
POLICY = {"retention": {"read_days": 30, "hit_days": 365, "image_days": 7}}


def a_read(text: str, at: datetime = T0) -> PlateRead:
    return plate_read(text, at)


def day(n: int) -> datetime:
    return (T0 + timedelta(days=n)).replace(hour=0, minute=5)


async def test_hold_survives_purge_then_returns_to_normal_retention(tmp_path: Path) -> None:
    async with make_appliance(tmp_path / "box", config=POLICY, clock=FakeClock(T0)) as box:
        store, life = box.store, box.lifecycle
        assert store is not None and life is not None
        evidence, other = a_read("EVID123"), a_read("OTHER45")
        await store.add_read(evidence)
        await store.add_read(other)
        holds = Holds(store)
        hold = await holds.add(
            case_number="2026-00417", reason="evidence in a burglary case", actor="sgt.lee",
            now=T0, read_ids=[evidence.id],
        )
        assert hold.reads == 1 and hold.active(T0)

        [images] = await life.tick(day(8))  # images of the day purged, except the held one
        assert (images.klass, images.images, images.held) == ("image", 1, 1)
        assert await store.get_crop(evidence.id) == evidence.crop_jpeg
        assert await store.get_crop(other.id) is None
        proofs = await life.tick(day(31))  # reads of the day purged, except the held one
        assert [(p.klass, p.rows, p.held, p.key_destroyed) for p in proofs] == [
            ("read", 1, 1, True)
        ]
        ring = store.cipher.ring
        assert not ring.has("read", "2026-05-01")  # the day key is gone ...
        [kept] = await store.find_plate("EVID123")  # ... yet the held read reads
        assert kept.id == evidence.id
        assert await store.get_crop(evidence.id) == evidence.crop_jpeg
        assert await store.find_plate("OTHER45") == []

        released = await holds.release(hold.id, "lt.diaz", day(40), "case closed")
        assert released.released_by == "lt.diaz" and not released.active(day(40))
        await life.tick(day(41))  # its retention ended long ago: purged now, hold key too
        assert await store.find_plate("EVID123") == []
        assert not ring.has("hold", f"h{hold.id}")
        assert not list((store.segments.folder).glob("hold-*"))

        created = await store.events(kind="hold.created")
        assert created[0]["actor"] == "sgt.lee"
        assert created[0]["detail"]["case_number"] == "2026-00417"
        assert created[0]["detail"]["read_ids"] == [evidence.id]
        [gone] = await store.events(kind="hold.released")
        assert gone["actor"] == "lt.diaz" and gone["detail"]["why"] == "case closed"


async def test_hold_by_plate_and_window_and_expiry(tmp_path: Path) -> None:
    async with make_appliance(tmp_path / "box", config=POLICY, clock=FakeClock(T0)) as box:
        store, life = box.store, box.lifecycle
        assert store is not None and life is not None
        inside = a_read("WIN7777", T0)
        later = a_read("WIN7777", T0 + timedelta(days=3))
        await store.add_read(inside)
        await store.add_read(later)
        holds = Holds(store)
        hold = await holds.add(
            case_number="CASE-9", reason="discovery request from defence", actor="clerk",
            now=T0, plate="win 7777", start=T0 - timedelta(hours=1),
            end=T0 + timedelta(days=1), until=day(60),
        )
        assert hold.reads == 1
        await life.tick(day(31))
        assert [r.id for r in await store.find_plate("WIN7777")] == [later.id, inside.id]
        await life.tick(day(61))  # the hold ended on day 60: released (audited), then purged
        [expired] = await store.events(kind="hold.released")
        assert expired["actor"] == "system" and "ended" in expired["detail"]["why"]
        assert await store.find_plate("WIN7777") == []


async def test_bad_holds_are_refused(tmp_path: Path) -> None:
    async with make_appliance(tmp_path / "box", config=POLICY, clock=FakeClock(T0)) as box:
        store = box.store
        assert store is not None
        read = a_read("BAD1234")
        await store.add_read(read)
        holds = Holds(store)
        kw = {"actor": "x", "now": T0}
        with pytest.raises(HoldError, match="digit"):
            await holds.add(case_number="NODIGITS", reason="a good long reason", read_ids=[read.id],
                            **kw)  # type: ignore[arg-type]
        with pytest.raises(HoldError, match="reason"):
            await holds.add(case_number="C-1", reason="short", read_ids=[read.id],
                            **kw)  # type: ignore[arg-type]
        with pytest.raises(HoldError, match="no such read"):
            await holds.add(case_number="C-1", reason="a good long reason", read_ids=["nope"],
                            **kw)  # type: ignore[arg-type]
        with pytest.raises(HoldError, match="nothing to hold"):
            await holds.add(case_number="C-1", reason="a good long reason", plate="ZZZ999",
                            start=T0, end=T0 + timedelta(days=1), **kw)  # type: ignore[arg-type]
        assert await holds.list() == []
        assert await store.events(kind="hold.created") == []


async def test_status_names_the_case_that_keeps_old_data(tmp_path: Path) -> None:
    from appliance._lifecycle.settings import RetentionSettings
    from appliance._lifecycle.status import retention_status

    async with make_appliance(tmp_path / "box", config=POLICY, clock=FakeClock(T0)) as box:
        store, life = box.store, box.lifecycle
        assert store is not None and life is not None
        held, other = a_read("OLD0001"), a_read("OLD0002", T0 + timedelta(days=1))
        await store.add_read(held)
        await store.add_read(other)
        holds = Holds(store)
        await holds.add(case_number="2026-00999", reason="homicide investigation evidence",
                        actor="det", now=T0, read_ids=[held.id])
        await holds.add(case_number="2026-01000", reason="another case entirely here",
                        actor="det", now=T0, read_ids=[other.id])
        await life.tick(day(200))
        report = await retention_status(store, RetentionSettings(**POLICY["retention"]), day(200))
        reasons = {(o["class"], o["day"]): o["reason"] for o in report["older_than_six_months"]}
        assert reasons[("read", "2026-05-01")] == "legal hold, case 2026-00999"
        assert reasons[("read", "2026-05-02")] == "legal hold, case 2026-01000"
