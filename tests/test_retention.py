"""Retention with crypto-shredding: a purged day is gone from the store and unreadable in any
older copy of it, hits outlive non-hits, and every purge leaves a signed proof."""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from appliance import PlateRead
from appliance._crypto import KeyShredded
from appliance._lifecycle.records import read_ad
from appliance._lifecycle.retention import verify_proof
from appliance._lifecycle.settings import RetentionSettings
from appliance._lifecycle.status import retention_status
from appliance.testing import FakeClock, make_appliance, plate_read

T0 = datetime(2026, 5, 1, 8, 30, tzinfo=UTC)
POLICY = {"read_days": 30, "hit_days": 365, "image_days": 7}


def a_read(text: str, at: datetime = T0) -> PlateRead:
    return plate_read(
        text,
        at,
        crop_jpeg=b"\xff\xd8crop-bytes-" + text.encode(),
        vehicle_jpeg=b"\xff\xd8vehicle-bytes-" + text.encode(),
    )


def snapshot(data: Path, into: Path) -> Path:
    """An older replica generation: a consistent copy of the database and the segment files."""
    into.mkdir()
    src = sqlite3.connect(data / "alprbox.db")
    dst = sqlite3.connect(into / "alprbox.db")
    src.backup(dst)
    src.close()
    dst.close()
    shutil.copytree(data / "segments", into / "segments")
    return into


def day_of(at: datetime, days: int) -> datetime:
    return (at + timedelta(days=days)).replace(hour=0, minute=5)


async def test_purge_shreds_the_day_even_in_an_older_copy(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    data = tmp_path / "box"
    async with make_appliance(data, config={"retention": POLICY}, clock=clock) as box:
        store, life = box.store, box.lifecycle
        assert store is not None and life is not None
        plain, hit = a_read("NOHIT11"), a_read("HITME22")
        await store.add_read(plain)
        await store.add_read(hit)
        assert await store.promote_to_hit(hit.id)
        old = snapshot(data, tmp_path / "old-replica")

        # Day 8: non-hit images are gone; reads stay.
        proofs = await life.tick(day_of(T0, 8))
        assert [(p.klass, p.day, p.images) for p in proofs] == [("image", "2026-05-01", 2)]
        assert await store.get_crop(plain.id) is None
        assert [r.text for r in await store.find_plate("NOHIT11")] == ["NOHIT11"]
        assert await store.get_crop(hit.id) == hit.crop_jpeg

        # "On the 31st day" for 30 days: the non-hit read goes, the hit stays.
        assert await life.tick(day_of(T0, 30)) == []
        proofs = await life.tick(day_of(T0, 31))
        assert [(p.klass, p.day, p.rows) for p in proofs] == [("read", "2026-05-01", 1)]
        assert await store.find_plate("NOHIT11") == []
        [kept] = await store.find_plate("HITME22")
        assert await store.get_image(kept.id, "vehicle") == hit.vehicle_jpeg
        ring = store.cipher.ring
        assert not ring.has("read", "2026-05-01") and not ring.has("image", "2026-05-01")
        assert ring.has("hit", "2026-05-01")

        # The old copy still holds the rows, but nothing reads them any more.
        with sqlite3.connect(old / "alprbox.db") as conn:
            payload = conn.execute(
                "SELECT payload FROM reads WHERE id = ?", (plain.id,)
            ).fetchone()[0]
            segment, offset, length = conn.execute(
                "SELECT segment, offset, length FROM images WHERE read_id = ? AND kind = 'crop'",
                (plain.id,),
            ).fetchone()
        conn.close()
        ad = read_ad(plain.id, plain.camera, plain.first_seen.isoformat(timespec="microseconds"))
        with pytest.raises(KeyShredded, match="destroyed"):
            store.cipher.decrypt(bytes(payload), ad)
        crop = (old / "segments" / segment).read_bytes()[offset : offset + length]
        with pytest.raises(KeyShredded):
            store.cipher.decrypt(crop, ad + b"|crop")
        assert not (data / "segments" / segment).exists()

        # Each purge is proven: signed by the audit key, in the audit trail too.
        public = await store.query(
            lambda c: c.execute(
                "SELECT value FROM meta WHERE key = 'audit_public_key'"
            ).fetchone()[0]
        )
        rows = await store.query(
            lambda c: c.execute("SELECT proof, signature FROM purges ORDER BY id").fetchall()
        )
        assert len(rows) == 2
        for body, signature in rows:
            assert verify_proof(body, bytes(signature), bytes(public))
            forged = body.replace('"rows":1', '"rows":0').replace('"images":2', '"images":0')
            assert not verify_proof(forged, bytes(signature), bytes(public))
        events = await store.events(kind="retention.purged")
        assert {e["detail"]["class"] for e in events} == {"image", "read"}
        assert all(e["detail"]["policy_version"] == RetentionSettings(**POLICY).version()
                   for e in events)

        # The hit goes on its 366th day.
        proofs = await life.tick(day_of(T0, 366))
        assert [(p.klass, p.rows) for p in proofs] == [("hit", 1)]
        assert await store.count_reads() == 0
        metrics = box.metrics.render().decode()
        assert 'alprbox_retention_purged_total{class="read"} 1.0' in metrics
        assert 'alprbox_retention_purged_total{class="image"} 2.0' in metrics
        assert "alprbox_retention_failing 0.0" in metrics


async def test_nothing_on_disk_holds_a_plate_or_image_in_clear(tmp_path: Path) -> None:
    data = tmp_path / "box"
    async with make_appliance(data, config={"retention": POLICY}, clock=FakeClock(T0)) as box:
        store = box.store
        assert store is not None
        reads = [a_read(f"ZQ{i:04d}X", T0 + timedelta(hours=i)) for i in range(30)]
        for read in reads:
            await store.add_read(read)
        await store.promote_to_hit(reads[0].id)
        await store.record_event("search", "ada", {"plate": "ZQ0001X"})
        assert box.lifecycle is not None
        await box.lifecycle.tick(day_of(T0, 8))
    files = [p for p in data.rglob("*") if p.is_file()]
    assert any(p.parent.name == "segments" for p in files)
    assert any(p.name == "keys.db" for p in files)
    for path in files:
        blob = path.read_bytes()
        for needle in (b"ZQ0001X", b"ZQ0029X", b"crop-bytes", b"vehicle-bytes"):
            assert needle not in blob, f"{needle!r} in clear in {path.relative_to(data)}"


async def test_hits_promoted_by_the_appliance_survive_the_non_hit_purge(tmp_path: Path) -> None:
    """A read that matched a hot list (an alert) is kept as a hit even if its promotion was
    missed: the purge promotes it before destroying the day."""
    async with make_appliance(tmp_path / "box", config={"retention": POLICY},
                              clock=FakeClock(T0)) as box:
        store = box.store
        assert store is not None and box.lifecycle is not None
        read = a_read("ALERT77")
        await store.add_read(read)
        await store.alerts.add(read.id, read.first_seen, "ncic", False, {"plate": "ALERT77"})
        await box.lifecycle.tick(day_of(T0, 31))
        [kept] = await store.find_plate("ALERT77")
        assert kept.id == read.id
        assert await store.get_crop(read.id) == read.crop_jpeg


async def test_status_lists_days_holds_and_data_older_than_six_months(tmp_path: Path) -> None:
    async with make_appliance(tmp_path / "box", config={"retention": POLICY},
                              clock=FakeClock(T0)) as box:
        store = box.store
        assert store is not None
        hit = a_read("OLDHIT1")
        await store.add_read(hit)
        await store.promote_to_hit(hit.id)
        await store.add_read(a_read("NEWREAD", T0 + timedelta(days=200)))
        report: dict[str, Any] = await retention_status(
            store, RetentionSettings(**POLICY), T0 + timedelta(days=200)
        )
        json.dumps(report)
        assert report["classes"]["hit"]["days"] == [
            {"day": "2026-05-01", "items": 1, "held": 0, "purge_on": "2027-05-02",
             "overdue": False}
        ]
        [old] = report["older_than_six_months"]
        assert old["class"] == "hit" and "365 days" in old["reason"]
        assert report["classes"]["audit"]["retention_days"] == 365


def test_policy_guards_and_presets() -> None:
    with pytest.raises(ValidationError, match="CJIS"):
        RetentionSettings(audit_days=90)
    with pytest.raises(ValidationError, match="image_days"):
        RetentionSettings(read_days=30, image_days=60)
    with pytest.raises(ValidationError, match="hit_days"):
        RetentionSettings(read_days=60, hit_days=30)
    chp = RetentionSettings.model_validate({"preset": "chp-60"})
    assert (chp.read_days, chp.hit_days, chp.image_days) == (60, 60, 60)
    assert RetentionSettings.model_validate({"preset": "sb274", "hit_days": 730}).hit_days == 730
    assert chp.version() != RetentionSettings().version()


def test_cli_purge_and_status(tmp_path: Path) -> None:
    import asyncio
    import os
    import subprocess
    import sys

    data, key = tmp_path / "box", tmp_path / "box.key"
    config = tmp_path / "site.yaml"
    config.write_text(
        "recognition: {type: platedet}\n"
        f"keys: {{master_key_file: {key}}}\n"
        "retention: {read_days: 1, hit_days: 1, image_days: 0}\n"
    )

    async def fill() -> None:
        async with make_appliance(data, config={"keys": {"master_key_file": str(key)}},
                                  clock=FakeClock(T0)) as box:
            assert box.store is not None
            await box.store.add_read(a_read("CLIPURG"))

    asyncio.run(fill())
    env = {k: v for k, v in os.environ.items() if k != "ALPRBOX_CONFIG"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "appliance", "retention", *args, "--config", str(config),
             "--data-dir", str(data)],
            capture_output=True, text=True, check=False, timeout=120, env=env,
        )

    status = cli("status", "--json")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["classes"]["read"]["days"][0]["overdue"] is True
    purged = cli("purge", "--now", "--json")
    assert purged.returncode == 0, purged.stderr
    assert {(p["class"], p["rows"] + p["images"]) for p in json.loads(purged.stdout)} == {
        ("image", 2), ("read", 1)
    }
    assert json.loads(cli("status", "--json").stdout)["classes"]["read"]["days"] == []


async def test_a_read_that_raises_an_alert_is_stored_as_a_hit(tmp_path: Path) -> None:
    """Through the appliance: a read matching an approved BOLO becomes an alert, and the read
    and its images move under the day's hit key in the same transaction."""
    from appliance._auth import hash_password
    from appliance._hotlist.bolo import BoloInput

    clock = FakeClock(datetime(2026, 1, 1, 12, 0, tzinfo=UTC))
    async with make_appliance(tmp_path / "box", config={"retention": POLICY}, clock=clock) as box:
        store = box.store
        assert store is not None and box.bolos is not None
        users = []
        for name, role in (("officer", "operator"), ("sergeant", "supervisor")):
            await store.create_user(name, hash_password("irrelevant-pw"), role, "Vallejo PD")
            found = await store.get_user(name)
            assert found is not None
            users.append(found)
        bolo_id = await box.bolos.create(
            BoloInput.model_validate({
                "plate": "7ABC123", "state": "CA", "category": "major crime (partial plate)",
                "case_number": "26-004512", "synopsis": "Grey sedan seen leaving a robbery",
                "expires": "2026-01-20",
            }),
            users[0],
        )
        await box.bolos.decide(bolo_id, "approve", users[1])
        hit, miss = a_read("7ABC123", clock.now()), a_read("8XYZ999", clock.now())
        await box._on_read(hit)
        await box._on_read(miss)
        classes = await store.query(
            lambda c: c.execute(
                "SELECT r.id, r.class, group_concat(i.class) FROM reads r"
                " JOIN images i ON i.read_id = r.id GROUP BY r.id"
            ).fetchall()
        )
        assert {(rid == hit.id, klass, imgs) for rid, klass, imgs in classes} == {
            (True, "hit", "hit,hit"), (False, "read", "image,image")
        }
        assert await store.get_image(hit.id, "vehicle") == hit.vehicle_jpeg
