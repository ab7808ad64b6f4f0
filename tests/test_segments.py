"""Images in encrypted segment files: not in SQLite, fsynced with the checkpoints (not inside
each commit), one file per class and day, closed segments listed for shipping once, and images a
power cut lost reported, never left as rows pointing past their file."""

from __future__ import annotations

import hashlib
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from checkpoint_waits import fresh_checkpoint

from appliance import PlateRead
from appliance._crypto import FieldCipher
from appliance._lifecycle.segments import finish_closing
from appliance._storage import Store

T0 = datetime(2026, 5, 1, 8, 30, tzinfo=UTC)


def a_read(text: str, at: datetime = T0) -> PlateRead:
    return PlateRead(
        camera="gate",
        text=text,
        confidence=0.9,
        first_seen=at,
        last_seen=at,
        box=(1, 2, 3, 4),
        crop_jpeg=b"crop-" + text.encode() * 50,
        vehicle_jpeg=b"vehicle-" + text.encode() * 200,
    )


@pytest.fixture
def master() -> bytes:
    return os.urandom(32)


async def test_images_live_in_day_segments_not_in_sqlite(tmp_path: Path, master: bytes) -> None:
    store = await Store.open(tmp_path / "alprbox.db", FieldCipher(master))
    day1, day2 = a_read("SEG0001"), a_read("SEG0002", T0 + timedelta(days=1))
    await store.add_read(day1)
    await store.add_read(day2)
    rows = await store.query(
        lambda c: c.execute(
            "SELECT read_id, kind, class, day, segment, length FROM images ORDER BY day, kind"
        ).fetchall()
    )
    assert [(r[1], r[2], r[3], r[4]) for r in rows] == [
        ("crop", "image", "2026-05-01", "image-2026-05-01-000.seg"),
        ("vehicle", "image", "2026-05-01", "image-2026-05-01-000.seg"),
        ("crop", "image", "2026-05-02", "image-2026-05-02-000.seg"),
        ("vehicle", "image", "2026-05-02", "image-2026-05-02-000.seg"),
    ]
    assert await store.query(lambda c: c.execute("SELECT count(*) FROM crops").fetchone()[0]) == 0
    # The database stays small: the image bytes are not in it.
    assert (tmp_path / "segments" / "image-2026-05-01-000.seg").stat().st_size == sum(
        r[5] for r in rows if r[3] == "2026-05-01"
    )
    assert await store.get_image(day2.id, "vehicle") == day2.vehicle_jpeg
    await store.close()


async def test_hit_images_move_to_the_hit_segment(tmp_path: Path, master: bytes) -> None:
    store = await Store.open(tmp_path / "alprbox.db", FieldCipher(master))
    read = a_read("HITSEG1")
    await store.add_read(read)
    assert await store.promote_to_hit(read.id)
    assert not await store.promote_to_hit(read.id)  # already a hit
    segment = await store.query(
        lambda c: c.execute("SELECT DISTINCT segment FROM images").fetchall()
    )
    assert segment == [("hit-2026-05-01-000.seg",)]
    assert await store.get_crop(read.id) == read.crop_jpeg
    [back] = await store.find_plate("HITSEG1")
    assert back.id == read.id
    await store.close()


async def test_reopened_store_appends_to_the_open_segment(tmp_path: Path, master: bytes) -> None:
    store = await Store.open(tmp_path / "alprbox.db", FieldCipher(master))
    first = a_read("REOPEN1")
    await store.add_read(first)
    await store.close()
    store = await Store.open(tmp_path / "alprbox.db", FieldCipher(master))
    second = a_read("REOPEN2", T0 + timedelta(minutes=1))
    await store.add_read(second)
    assert await store.get_crop(first.id) == first.crop_jpeg
    assert await store.get_crop(second.id) == second.crop_jpeg
    assert [p.name for p in (tmp_path / "segments").iterdir()] == ["image-2026-05-01-000.seg"]
    await store.close()


async def test_closed_segments_are_the_outbox_with_their_hash(
    tmp_path: Path, master: bytes
) -> None:
    store = await Store.open(tmp_path / "alprbox.db", FieldCipher(master))
    await store.add_read(a_read("OUTBOX1"))
    await store.add_read(a_read("OUTBOX2", T0 + timedelta(days=1)))
    closed = await store.write(lambda c: store.segments.close_before(c, "2026-05-02"))
    assert closed == ["image-2026-05-01-000.seg"]
    # Closed for writing at once; hashed off the writer, then ready to ship.
    assert await finish_closing(store) == closed
    outbox = await store.query(
        lambda c: c.execute(
            "SELECT name, size, sha256 FROM segments WHERE state = 'closed' AND shipped_at IS NULL"
        ).fetchall()
    )
    [(name, size, digest)] = outbox
    data = (tmp_path / "segments" / name).read_bytes()
    assert size == len(data) and digest == hashlib.sha256(data).hexdigest()
    # A closed segment is never appended to again: a late image of that day starts the next.
    await store.add_read(a_read("LATE001", T0 + timedelta(hours=1)))
    names = sorted(p.name for p in (tmp_path / "segments").iterdir())
    assert names == [
        "image-2026-05-01-000.seg", "image-2026-05-01-001.seg", "image-2026-05-02-000.seg"
    ]
    assert (tmp_path / "segments" / name).read_bytes() == data
    await store.close()


async def test_a_failed_segment_write_fails_the_read_not_the_store(
    tmp_path: Path, master: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Disk full while appending an image: that read is refused (never acknowledged), the
    store keeps working afterwards."""
    store = await Store.open(tmp_path / "alprbox.db", FieldCipher(master))
    real_write = os.write

    def full(fd: int, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("appliance._lifecycle.segments.os.write", full)
    with pytest.raises(OSError, match="No space"):
        await store.add_read(a_read("NOSPACE"))
    monkeypatch.setattr("appliance._lifecycle.segments.os.write", real_write)
    assert await store.find_plate("NOSPACE") == []
    ok = a_read("SPACE01")
    await store.add_read(ok)
    assert await store.get_crop(ok.id) == ok.crop_jpeg
    await store.close()


async def test_location_is_kept_inside_the_encrypted_read(tmp_path: Path, master: bytes) -> None:
    from appliance import models

    location_cls = getattr(models, "Location", None)
    if location_cls is None:
        pytest.skip("PlateRead has no location yet")
    fix = T0 - timedelta(seconds=1)
    read = a_read("GPS0001")
    read = PlateRead(**{**{f: getattr(read, f) for f in read.__dataclass_fields__},
                        "location": location_cls(lat=37.871234, lon=-122.272345, fix_time=fix)})
    store = await Store.open(tmp_path / "alprbox.db", FieldCipher(master))
    await store.add_read(read)
    [back] = await store.find_plate("GPS0001")
    assert back.location == read.location
    await store.close()
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert b"37.871234" not in path.read_bytes() and b"122.272345" not in path.read_bytes()


async def test_a_purged_segment_left_on_disk_by_a_crash_is_removed(tmp_path: Path) -> None:
    """The purge commits 'deleted' first and unlinks after; a crash in between leaves a file
    (ciphertext under a destroyed key) that the next lifecycle run removes."""
    from appliance.testing import FakeClock, make_appliance

    async with make_appliance(tmp_path / "box", clock=FakeClock(T0)) as box:
        store = box.store
        assert store is not None and box.lifecycle is not None
        await store.add_read(a_read("CRASH01"))
        names = await store.write(lambda c: store.segments.delete(c, "image", "2026-05-01"))
        assert names and (store.segments.folder / names[0]).exists()  # "crash" before unlink
        await box.lifecycle.tick(T0)
        assert not (store.segments.folder / names[0]).exists()


async def test_images_reach_the_disk_with_the_checkpoint_not_inside_the_commit(
    tmp_path: Path, master: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await Store.open(tmp_path / "alprbox.db", FieldCipher(master))
    segment = tmp_path / "segments" / "image-2026-05-01-000.seg"
    fsynced: list[int] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        fsynced.append(os.fstat(fd).st_ino)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    try:
        await store.add_read(a_read("SYNC001"))
        inode = segment.stat().st_ino
        # Acknowledged without a trip to the disk for the image (the ingest tail, issue 5)...
        assert inode not in fsynced
        # ...which the next checkpoint makes, before it copies the rows into the database.
        await fresh_checkpoint(store.checkpointer)
        assert inode in fsynced
    finally:
        await store.close()


async def stored_and_closed(
    tmp_path: Path, master: bytes, prefix: str, count: int
) -> list[PlateRead]:
    """``count`` reads with images, stored a second apart; the store closed again."""
    store = await Store.open(tmp_path / "alprbox.db", FieldCipher(master))
    reads = [a_read(f"{prefix}{n:04d}", T0 + timedelta(seconds=n)) for n in range(count)]
    for read in reads:
        await store.add_read(read)
    await store.close()
    return reads


async def test_images_a_power_cut_lost_are_reported_and_the_reads_kept(
    tmp_path: Path, master: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    reads = await stored_and_closed(tmp_path, master, "CUT", 5)
    # What a power cut can leave: the rows of the last read reached the disk, the tail of its
    # image bytes did not (the segment is fsynced with checkpoints, not with each commit).
    segment = tmp_path / "segments" / "image-2026-05-01-000.seg"
    with segment.open("r+b") as f:
        f.truncate(segment.stat().st_size - 10)

    with caplog.at_level(logging.WARNING):
        store = await Store.open(tmp_path / "alprbox.db", FieldCipher(master))
    try:
        last = reads[-1]
        [lost] = store.images_lost
        assert (lost.segment, lost.reason, lost.images) == (
            segment.name,
            "cut short",
            [(last.id, "vehicle")],
        )
        assert "1 image(s) of 1 read(s) are not in segment" in caplog.text
        assert "a power cut" in caplog.text
        events = await store.events(10, kind="storage.images_lost")
        assert [e["detail"] for e in events] == [
            {"segment": segment.name, "reason": "cut short", "images": 1, "reads": [last.id]}
        ]
        # Every read is still there, and every image that did reach the disk.
        assert await store.count_reads() == 5
        assert [len(await store.find_plate(r.text)) for r in reads] == [1] * 5
        assert await store.get_crop(last.id) == last.crop_jpeg
        assert await store.get_image(last.id, "vehicle") is None
        assert [await store.get_image(r.id, "vehicle") for r in reads[:4]] == [
            r.vehicle_jpeg for r in reads[:4]
        ]
        # The segment goes on from where the disk ends; a new image reads back whole.
        later = a_read("CUT0099", T0 + timedelta(minutes=5))
        await store.add_read(later)
        assert await store.get_image(later.id, "vehicle") == later.vehicle_jpeg
    finally:
        await store.close()
    # Reported once: the next open finds nothing missing.
    store = await Store.open(tmp_path / "alprbox.db", FieldCipher(master))
    try:
        assert store.images_lost == []
        assert len(await store.events(10, kind="storage.images_lost")) == 1
    finally:
        await store.close()


async def test_a_restored_copy_without_its_open_segment_says_so_and_appends_afresh(
    tmp_path: Path, master: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    # A replica restored on a new box carries closed segments only: today's open one is not
    # there. Its rows must not point into the file the new box starts under the same name.
    reads = await stored_and_closed(tmp_path, master, "RST", 3)
    (tmp_path / "segments" / "image-2026-05-01-000.seg").unlink()

    with caplog.at_level(logging.WARNING):
        store = await Store.open(tmp_path / "alprbox.db", FieldCipher(master))
    try:
        [lost] = store.images_lost
        assert lost.reason == "missing" and len(lost.images) == 6
        assert "restored before the segment shipped" in caplog.text
        assert await store.count_reads() == 3
        assert [await store.get_crop(r.id) for r in reads] == [None, None, None]
        later = a_read("RST0099", T0 + timedelta(minutes=5))
        await store.add_read(later)
        assert await store.get_crop(later.id) == later.crop_jpeg
        assert [await store.get_crop(r.id) for r in reads] == [None, None, None]
    finally:
        await store.close()
