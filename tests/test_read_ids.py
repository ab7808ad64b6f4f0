"""Time-ordered read ids keep one day's reads on neighbouring pages of every index keyed by read
id, and plate keys are led by the day, so purging a day in small transactions rewrites few pages
(issue 5)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from appliance import PlateRead
from appliance._crypto import FieldCipher
from appliance._lifecycle.holds import active_clause
from appliance._lifecycle.retention import purge_steps
from appliance._storage import Store
from appliance.models import time_ordered_id

DAY = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def a_read(i: int, at: datetime, text: str | None = None) -> PlateRead:
    return PlateRead(
        camera="gate",
        text=text or f"{i % 9 + 1}ABC{i:04d}",
        confidence=0.9,
        first_seen=at + timedelta(seconds=i),
        last_seen=at + timedelta(seconds=i + 1),
        box=(1, 2, 3, 4),
        crop_jpeg=os.urandom(300),
    )


async def open_store(folder: Path) -> Store:
    return await Store.open(folder / "alprbox.db", FieldCipher(os.urandom(32)))


def test_read_ids_are_uuid7_and_sort_by_creation_time() -> None:
    ids = []
    for _ in range(5):
        ids.append(time_ordered_id())
        ids.append(PlateRead(camera="c", text="X", confidence=1.0, first_seen=DAY,
                             last_seen=DAY, box=(0, 0, 1, 1)).id)
        asyncio.run(asyncio.sleep(0.002))
    assert len(set(ids)) == len(ids)
    parsed = [uuid.UUID(hex=i) for i in ids]
    assert all(len(i) == 32 and p.version == 7 and p.variant == uuid.RFC_4122
               for i, p in zip(ids, parsed, strict=True))
    # ids made 2 ms or more apart sort in the order they were made
    assert ids[::2] == sorted(ids[::2]) and ids[1::2] == sorted(ids[1::2])
    now_ms = datetime.now(UTC).timestamp() * 1000
    assert abs(int(ids[-1][:12], 16) - now_ms) < 60_000  # the leading 48 bits are Unix ms


async def test_purging_a_day_in_small_batches_rewrites_few_pages(tmp_path: Path) -> None:
    """Three days of reads; one purged 50 reads per transaction. Each transaction writes the
    pages it changed to the WAL (all of which are checkpointed and shipped by litestream). With
    random (v4) read ids every transaction rewrote pages all over the id-keyed indexes:
    measured 7,587-8,439 frames for a ~1,680-page database (4.5-5.0x); with ordered ids 4,059
    (2.4x), most of it the plate index, which is in hash order; with the plate keys in a table
    led by the day and deleted in their own order (migration 0010), 2,462 for 1,763 pages
    (1.4x)."""
    store = await open_store(tmp_path)
    try:
        for day in range(3):
            at = DAY + timedelta(days=day)
            await asyncio.gather(*(store.add_read(a_read(i, at)) for i in range(3000)))
    finally:
        await store.close()
    conn = sqlite3.connect(tmp_path / "alprbox.db", isolation_level=None)
    try:
        conn.execute("PRAGMA secure_delete = ON")  # as the store runs
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        held_sql, held_args = active_clause("2026-12-01T00:00:00.000000+00:00")
        day = DAY.date().isoformat()
        frames = deleted = 0
        for klass in ("image", "read"):
            for step in purge_steps(klass, day, held_sql, held_args):
                after: tuple[bytes, str] = (b"", "")
                while True:
                    conn.execute("BEGIN IMMEDIATE")
                    done = step(conn, 50, after)
                    conn.execute("COMMIT")
                    deleted += done.rows
                    frames += conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    after = done.last
                    if done.seen < 50:
                        break
        assert deleted == 3000
        assert frames < 2 * pages, (frames, pages)
    finally:
        conn.close()

