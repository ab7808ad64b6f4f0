"""Exact plate search through ``plate_keys``, a table led by the day (migration 0010), and the
purge deleting a day's keys in their own order (issue 5: purge vs ingest)."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from appliance import PlateRead
from appliance._crypto import FieldCipher
from appliance._lifecycle.holds import Holds
from appliance._lifecycle.retention import Purger
from appliance._lifecycle.settings import RetentionSettings
from appliance._storage import Store, migrations
from appliance.testing import plate_read

DAY = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def a_read(text: str, at: datetime = DAY) -> PlateRead:
    return plate_read(text, at)


def plate_keys(db: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(db)
    try:
        return sorted(conn.execute("SELECT day, read_id FROM plate_keys").fetchall())
    finally:
        conn.close()


async def test_a_store_from_before_migration_10_finds_its_old_reads(tmp_path: Path) -> None:
    db = tmp_path / "alprbox.db"
    master = os.urandom(32)
    store = await Store.open(db, FieldCipher(master))
    old = [a_read("OLD0001"), a_read("OLD0001", DAY + timedelta(days=3)), a_read("OLD0002")]
    for read in old:
        await store.add_read(read)
    await store.close()
    # Back to the schema of migration 9: the plate index on reads, no plate_keys.
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("DROP TABLE plate_keys")
    conn.execute("CREATE INDEX reads_plate_index ON reads (plate_index)")
    conn.execute("DELETE FROM schema_migrations WHERE version = 10")
    conn.execute("PRAGMA user_version = 9")
    conn.close()

    store = await Store.open(db, FieldCipher(master))
    try:
        found = await store.find_plate("OLD0001")
        assert [r.id for r in found] == [old[1].id, old[0].id]  # newest first
        assert [r.id for r in await store.find_plate("OLD0002")] == [old[2].id]
        await store.add_read(new := a_read("OLD0001", DAY + timedelta(days=5)))
        assert (await store.find_plate("OLD0001"))[0].id == new.id
    finally:
        await store.close()
    conn = sqlite3.connect(db)
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    conn.close()
    assert "reads_plate_index" not in indexes
    assert migrations()[-1][0] >= 10


async def test_the_purge_takes_the_days_keys_and_keeps_those_of_hits_and_holds(
    tmp_path: Path,
) -> None:
    db = tmp_path / "alprbox.db"
    store = await Store.open(db, FieldCipher(os.urandom(32)))
    try:
        plain, hit, held = a_read("GONE001"), a_read("HIT0001"), a_read("HELD001")
        today = a_read("GONE001", DAY + timedelta(days=40))
        for read in (plain, hit, held, today):
            await store.add_read(read)
        assert await store.read_records.promote_to_hit(hit.id)
        now = DAY + timedelta(days=40, hours=1)
        await Holds(store).add(
            case_number="CR-2026-1", reason="evidence in a burglary case", actor="ada",
            now=now, read_ids=[held.id],
        )
        # A key whose read is already gone (a purge cut short after its reads): swept too.
        await store.write(
            lambda c: c.execute(
                "INSERT INTO plate_keys (day, plate_index, read_id) VALUES (?, ?, ?)",
                ("2026-03-02", store.cipher.plate_index("LOST001"), "0" * 32),
            )
        )
        day = DAY.date().isoformat()
        proof = await Purger(store, RetentionSettings(read_days=30, batch_rows=10)).purge(
            "read", day, now, "test"
        )
        assert proof.rows == 1
        assert [r.id for r in await store.find_plate("GONE001")] == [today.id]
        assert [r.id for r in await store.find_plate("HIT0001")] == [hit.id]
        assert [r.id for r in await store.find_plate("HELD001")] == [held.id]
    finally:
        await store.close()
    assert plate_keys(db) == sorted(
        [(day, hit.id), (day, held.id), ((DAY + timedelta(days=40)).date().isoformat(), today.id)]
    )


async def test_the_purge_deletes_keys_in_key_order_a_batch_at_a_time(tmp_path: Path) -> None:
    """300 reads of one day, purged 25 rows per batch: the key batches walk the day's keys in
    their own order, so each deletes a run of neighbouring keys."""
    db = tmp_path / "alprbox.db"
    store = await Store.open(db, FieldCipher(os.urandom(32)))
    try:
        for i in range(300):
            await store.add_read(a_read(f"K{i:05d}", DAY + timedelta(seconds=i)))
        order = await store.query(
            lambda c: [
                r[0] for r in c.execute(
                    "SELECT read_id FROM plate_keys ORDER BY day, plate_index, read_id"
                )
            ]
        )
        deleted: list[list[str]] = []
        real_write = store.write

        async def spy(op, *, background=False, **how):  # type: ignore[no-untyped-def]
            def watched(c: sqlite3.Connection) -> object:
                before = {r[0] for r in c.execute("SELECT read_id FROM plate_keys")}
                result = op(c)
                after = {r[0] for r in c.execute("SELECT read_id FROM plate_keys")}
                if before - after:
                    deleted.append([k for k in order if k in before - after])
                return result

            return await real_write(watched if background else op, background=background, **how)

        store.write = spy  # type: ignore[method-assign]
        await Purger(store, RetentionSettings(read_days=30, batch_rows=25)).purge(
            "read", DAY.date().isoformat(), DAY + timedelta(days=40), "test"
        )
    finally:
        await store.close()
    assert plate_keys(db) == []
    assert all(len(batch) <= 25 for batch in deleted)
    # Batch after batch, the keys deleted are the next ones in the index's own order.
    assert [k for batch in deleted for k in batch] == order
