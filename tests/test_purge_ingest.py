"""A retention purge shares the single writer with ingest: it works in small background batches
that never hold up a write queued beside them, and WAL checkpoints happen off the writer.

(How long ingest waits is measured by benchmarks/storage.py, purge phase; these tests check the
behaviour that bounds it, with real SQLite.)
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from checkpoint_waits import fresh_checkpoint

from appliance import PlateRead
from appliance._crypto import FieldCipher
from appliance._lifecycle.retention import (
    MAX_GIVE_WAY,
    MAX_REST_S,
    REST_FACTOR,
    PurgePace,
    Purger,
)
from appliance._lifecycle.settings import RetentionSettings
from appliance._storage import Store, WriteYielded
from appliance._storage.checkpoints import MAX_INTERVAL_SECONDS, POLL_SECONDS, Checkpointer
from appliance._storage.commit_times import CommitTimes

DAY = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def a_read(i: int, at: datetime = DAY, letters: str = "ABC") -> PlateRead:
    return PlateRead(
        camera="gate",
        text=f"{i % 9 + 1}{letters}{i:03d}",
        confidence=0.9,
        first_seen=at + timedelta(seconds=i),
        last_seen=at + timedelta(seconds=i + 1),
        box=(1, 2, 3, 4),
        crop_jpeg=b"\xff\xd8crop-" + os.urandom(300),
    )


async def open_store(folder: Path) -> Store:
    return await Store.open(folder / "alprbox.db", FieldCipher(os.urandom(32)))


async def test_a_write_queued_with_a_purge_batch_goes_first(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    try:
        order: list[str] = []
        release = threading.Event()

        def blocker(c: sqlite3.Connection) -> None:
            release.wait(30)  # holds the writer so the next writes queue up together
            order.append("blocker")

        def step(name: str) -> Callable[[sqlite3.Connection], None]:
            def op(c: sqlite3.Connection) -> None:
                order.append(name)

            return op

        first = asyncio.create_task(store.write(blocker))
        await asyncio.sleep(0.05)
        purge = asyncio.create_task(store.write(step("purge"), background=True))
        await asyncio.sleep(0)
        ingest = [asyncio.create_task(store.write(step(f"ingest{i}"))) for i in range(3)]
        await asyncio.sleep(0.05)
        release.set()
        await asyncio.gather(first, purge, *ingest)
        assert order == ["blocker", "ingest0", "ingest1", "ingest2", "purge"]
    finally:
        await store.close()


async def test_a_failing_purge_batch_fails_alone(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    try:
        def bad(c: sqlite3.Connection) -> None:
            c.execute("INSERT INTO meta (key, value) VALUES ('probe', x'00')")
            raise RuntimeError("purge batch broke")

        read = a_read(1)
        results = await asyncio.gather(
            store.write(bad, background=True), store.add_read(read), return_exceptions=True
        )
        assert isinstance(results[0], RuntimeError)
        assert results[1] is None
        assert [r.id for r in await store.find_plate(read.text)] == [read.id]
        probe = await store.query(
            lambda c: c.execute("SELECT count(*) FROM meta WHERE key = 'probe'").fetchone()[0]
        )
        assert probe == 0
    finally:
        await store.close()


#: a query that runs for tens of seconds unless stopped: counts to 10^8
LONG_QUERY = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000000)"
    " SELECT count(*) FROM n"
)


async def test_a_yielding_batch_is_stopped_by_a_write_queued_while_it_runs(
    tmp_path: Path,
) -> None:
    store = await open_store(tmp_path)
    try:
        started = threading.Event()

        def long_batch(c: sqlite3.Connection) -> None:
            c.execute("INSERT INTO meta (key, value) VALUES ('half-done', x'00')")
            started.set()
            c.execute(LONG_QUERY).fetchone()

        batch = asyncio.create_task(store.write(long_batch, background=True, yields=True))
        assert await asyncio.to_thread(started.wait, 30)
        read = a_read(1)
        # Without the yield this write would wait out the long query, and the batch would
        # then commit instead of raising.
        await store.add_read(read)
        with pytest.raises(WriteYielded) as yielded:
            await batch
        assert yielded.value.took > 0
        assert store.background_yields == 1
        # The write went first and is stored; nothing of the stopped batch is.
        assert [r.id for r in await store.find_plate(read.text)] == [read.id]
        half = await store.query(
            lambda c: c.execute("SELECT count(*) FROM meta WHERE key = 'half-done'").fetchone()
        )
        assert half[0] == 0
        # The writer is not left interrupted: later writes of every kind commit.
        await store.add_read(a_read(2))
        assert await store.write(lambda c: 7, background=True, yields=True) == 7
        assert await store.count_reads() == 2
    finally:
        await store.close()


@pytest.mark.parametrize("statements_after", [1, 0])
async def test_a_yielding_batch_gives_way_to_a_write_queued_between_its_statements(
    tmp_path: Path, statements_after: int
) -> None:
    # SQLite forgets an interrupt that comes while no statement runs; a purge batch is several
    # statements with Python between them, so the write must not wait for the rest of it (nor
    # for its commit, when it came after the last statement).
    store = await open_store(tmp_path)
    try:
        between, go_on = threading.Event(), threading.Event()

        def batch(c: sqlite3.Connection) -> None:
            c.execute("INSERT INTO meta (key, value) VALUES ('first', x'00')")
            between.set()
            go_on.wait(30)  # no statement runs while the write is queued
            for n in range(statements_after):
                c.execute("INSERT INTO meta (key, value) VALUES (?, x'00')", (f"then{n}",))

        task = asyncio.create_task(store.write(batch, background=True, yields=True))
        assert await asyncio.to_thread(between.wait, 30)
        read = a_read(1)
        ingest = asyncio.create_task(store.add_read(read))
        # the write is queued (and interrupt() was called)
        assert await asyncio.to_thread(store._give_way.wait, 30)
        go_on.set()
        with pytest.raises(WriteYielded):
            await task
        await ingest
        assert store.background_yields == 1
        assert [r.id for r in await store.find_plate(read.text)] == [read.id]
        kept = await store.query(
            lambda c: c.execute(
                "SELECT count(*) FROM meta WHERE key = 'first' OR key LIKE 'then%'"
            ).fetchone()[0]
        )
        assert kept == 0
        # The next background write runs and commits.
        assert await store.write(lambda c: 7, background=True, yields=True) == 7
    finally:
        await store.close()


async def test_a_batch_that_does_not_yield_runs_to_the_end(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    try:
        started, release = threading.Event(), threading.Event()
        order: list[str] = []

        def batch(c: sqlite3.Connection) -> int:
            started.set()
            release.wait(30)
            order.append("batch")
            return int(c.execute("SELECT count(*) FROM reads").fetchone()[0])

        task = asyncio.create_task(store.write(batch, background=True))
        assert await asyncio.to_thread(started.wait, 30)
        ingest = asyncio.create_task(store.add_read(a_read(1)))
        await asyncio.sleep(0.05)
        release.set()
        assert await task == 0
        await ingest
        assert order == ["batch"] and store.background_yields == 0
        assert await store.count_reads() == 1
    finally:
        await store.close()


async def test_a_purge_under_a_flood_of_writes_still_finishes(tmp_path: Path) -> None:
    """Every batch that may yield does; after MAX_GIVE_WAY in a row one runs to the end."""
    store = await open_store(tmp_path)
    try:
        await asyncio.gather(*(store.add_read(a_read(i)) for i in range(60)))
        real_write = store.write
        asked: list[bool] = []

        async def flooded(
            op: Callable[[sqlite3.Connection], Any], *, background: bool = False, **how: Any
        ) -> Any:
            if background:
                asked.append(how.get("yields", False))
                if how.get("yields"):
                    raise WriteYielded(0.001)  # a write always arrives mid-batch
            return await real_write(op, background=background, **how)

        store.write = flooded  # type: ignore[method-assign]
        purger = Purger(store, RetentionSettings(read_days=30, image_days=0, batch_rows=25))
        now = DAY + timedelta(days=40)
        proof = await asyncio.wait_for(
            purger.purge("read", DAY.date().isoformat(), now, "test"), 120
        )
        store.write = real_write  # type: ignore[method-assign]
        assert proof.rows == 60 and await store.count_reads() == 0
        # Each batch that ran was asked to yield MAX_GIVE_WAY times first.
        ran = [i for i, yields in enumerate(asked) if not yields]
        assert ran and all(
            asked[i - MAX_GIVE_WAY : i] == [True] * MAX_GIVE_WAY for i in ran
        )
    finally:
        await store.close()


async def test_purge_works_in_bounded_background_batches_and_the_day_is_gone(
    tmp_path: Path,
) -> None:
    store = await open_store(tmp_path)
    try:
        reads = [a_read(i) for i in range(240)]
        await asyncio.gather(*(store.add_read(r) for r in reads))
        seg_dir = tmp_path / "segments"
        assert any(seg_dir.iterdir())

        calls: list[tuple[bool, Any]] = []
        real_write = store.write

        async def spy(
            op: Callable[[sqlite3.Connection], Any], *, background: bool = False, **how: Any
        ) -> Any:
            result = await real_write(op, background=background, **how)
            calls.append((background, result))
            return result

        store.write = spy  # type: ignore[method-assign]
        purger = Purger(store, RetentionSettings(read_days=30, image_days=0, batch_rows=25))
        now = DAY + timedelta(days=40)
        day = DAY.date().isoformat()
        # Ingest keeps arriving while the purge runs.
        later = [a_read(i, now, "XYZ") for i in range(20)]

        async def purge_day() -> tuple[Any, Any]:
            return (
                await purger.purge("image", day, now, "test"),
                await purger.purge("read", day, now, "test"),
            )

        (image_proof, read_proof), _ = await asyncio.gather(
            purge_day(), asyncio.gather(*(store.add_read(r) for r in later))
        )
        store.write = real_write  # type: ignore[method-assign]

        batches = [result[0] for background, result in calls if background]
        # Every delete batch is a background write that looks at no more than batch_rows rows,
        # images or plate keys: the images, the reads' plate keys in their own order, the reads.
        assert len(batches) >= (240 // 25) * 3
        assert all(b.seen <= 25 and b.rows <= 25 and b.images <= 25 for b in batches)
        assert sum(b.rows for b in batches) == 240
        assert image_proof.images == 240 and read_proof.rows == 240
        # No plate key of the day is left, and those of the reads that came in meanwhile are.
        keys = await store.query(
            lambda c: c.execute("SELECT day, count(*) FROM plate_keys GROUP BY day").fetchall()
        )
        assert keys == [(now.date().isoformat(), 20)]
        assert image_proof.key_destroyed and read_proof.key_destroyed

        # The day is gone: no rows, no key, no segment file; the reads that came in meanwhile
        # are all there.
        for r in reads[:20]:
            assert await store.find_plate(r.text) == []
        ring = store.cipher.ring
        assert not ring.has("read", day) and not ring.has("image", day)
        left = [p.name for p in seg_dir.iterdir() if p.name.startswith(f"image-{day}")]
        assert left == []
        assert await store.count_reads() == 20
        assert [await store.get_crop(r.id) for r in later] == [r.crop_jpeg for r in later]
    finally:
        await store.close()


async def test_checkpoints_copy_the_wal_back_without_the_writer(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    db = tmp_path / "alprbox.db"
    wal = tmp_path / "alprbox.db-wal"
    try:
        writer_setting = await store.write(
            lambda c: c.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        )
        assert writer_setting == 0  # the writer never checkpoints inside a commit

        def fill(c: sqlite3.Connection, n: int) -> None:
            # A commit that takes a millisecond, as on a busy disk: the thread's own
            # checkpoints (every 250 commits) then also run while the writes go on, and cannot
            # catch up with them.
            time.sleep(0.001)
            c.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)", (f"filler{n}", os.urandom(8000))
            )

        checkpointer = store.checkpointer

        # 2,000 commits of ~5 WAL pages: a WAL that never started over would reach ~40 MB.
        # The writes pause every 300 commits, as ingest does between cars, until a checkpoint
        # begun in the pause has finished.
        largest = 0
        for n in range(2000):
            await store.write(lambda c, n=n: fill(c, n))
            if n % 100 == 99:
                largest = max(largest, wal.stat().st_size)
            if n % 300 == 299:
                await fresh_checkpoint(checkpointer)
        assert checkpointer.checkpoints >= 6
        # The checkpoint thread copied the pages back, and the WAL started over instead of
        # growing with every commit: it stays near the 300 commits (~6.5 MB) between two
        # pauses, far from the 40 MB of one that never restarts. The writer copied nothing.
        assert largest < 12_000_000
        assert checkpointer.tail_passes == 0
    finally:
        await store.close()
    # Everything written is in the database file after close.
    conn = sqlite3.connect(db)
    try:
        stored = conn.execute("SELECT count(*) FROM meta WHERE key LIKE 'filler%'").fetchone()
        assert stored[0] == 2000
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


async def test_the_thread_checkpoints_by_itself_once_enough_commits_are_waiting(
    tmp_path: Path,
) -> None:
    store = await open_store(tmp_path)
    checkpointer = store.checkpointer
    try:
        for n in range(checkpointer.every // 2):
            await store.write(
                lambda c, n=n: c.execute("INSERT INTO meta VALUES (?, 'x')", (f"a{n}",))
            )
        await asyncio.sleep(5 * POLL_SECONDS)
        assert checkpointer.started == 0  # half the count: nothing yet (nor for 30 s)
        for n in range(checkpointer.every):
            await store.write(
                lambda c, n=n: c.execute("INSERT INTO meta VALUES (?, 'y')", (f"b{n}",))
            )
        # No request, and well before the 30 s timer: the count alone starts it.
        deadline = time.monotonic() + MAX_INTERVAL_SECONDS / 3
        while checkpointer.finished_through < 1:
            assert time.monotonic() < deadline, "the thread never checkpointed"
            await asyncio.sleep(0.01)
        assert checkpointer.tail_passes == 0
    finally:
        await store.close()


async def test_a_writer_that_never_lets_the_thread_catch_up_pays_a_tail_pass_only_for_a_big_wal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Steady ingest: frames keep coming while every checkpoint runs, so it never catches up and
    # the WAL cannot start over by itself. Modelled here by a thread that copies nothing and
    # counts the frames committed since the writer's last tail pass (a commit here is ~4).
    store = await open_store(tmp_path)
    wal = tmp_path / "alprbox.db-wal"
    checkpointer = store.checkpointer
    bound = 1200  # frames; ~5 MB, so the test sees a few of them
    checkpointer.tail_min_frames = bound
    since_tail = {"passes": 0, "commits": 0}

    def never_caught_up(conn: sqlite3.Connection) -> tuple[bool, int]:
        if checkpointer.tail_passes != since_tail["passes"]:
            since_tail.update(passes=checkpointer.tail_passes, commits=store.writes_committed)
        return False, 4 * (store.writes_committed - since_tail["commits"])

    monkeypatch.setattr(checkpointer, "_catch_up", never_caught_up)
    try:

        def fill(c: sqlite3.Connection, n: int) -> None:
            c.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)", (f"filler{n}", os.urandom(8000))
            )

        passes_before_bound = None
        largest = 0
        for n in range(1500):
            await store.write(lambda c, n=n: fill(c, n))
            if n % 100 == 99:
                largest = max(largest, wal.stat().st_size)
                await fresh_checkpoint(checkpointer)
                if n == 199:  # ~800 frames: under the bound, the writer has not paid yet
                    await store.write(lambda c: None)
                    passes_before_bound = checkpointer.tail_passes
        assert passes_before_bound == 0
        # Past the bound the writer copied the last frames, and the WAL started over.
        assert checkpointer.tail_passes >= 1
        assert largest < 3 * bound * 4200
        # Each pass kept when it ran (benchmarks/purge_after.py tells the writes that waited
        # behind one by these), one after the other on the writer's thread.
        spans = list(checkpointer.tail_pass_spans)
        assert len(spans) == checkpointer.tail_passes
        assert all(a < b for a, b in spans)
        assert all(b <= a for (_, b), (a, _) in itertools.pairwise(spans))
        assert len(checkpointer.checkpoint_spans) >= checkpointer.checkpoints
    finally:
        await store.close()


async def test_temporary_tables_and_statement_journals_never_touch_the_disk(
    tmp_path: Path,
) -> None:
    store = await open_store(tmp_path)
    try:
        # 2 = MEMORY: a purge batch's temporary b-tree and statement journal are not files the
        # writer creates, unlinks and evicts (and no temporary file holds the box's data).
        assert await store.write(lambda c: c.execute("PRAGMA temp_store").fetchone()[0]) == 2
        assert await store.query(lambda c: c.execute("PRAGMA temp_store").fetchone()[0]) == 2
    finally:
        await store.close()


def test_a_tail_pass_is_wanted_only_when_the_thread_fell_behind_a_big_wal() -> None:
    checkpointer = Checkpointer(Path("unused.db"), lambda: 0, tail_min_frames=4000)
    assert not checkpointer.wants_tail_pass(caught_up=True, frames=9000)
    assert not checkpointer.wants_tail_pass(caught_up=False, frames=3999)
    assert checkpointer.wants_tail_pass(caught_up=False, frames=4000)


class Ticks:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_commit_times_quantile_looks_only_at_the_recent_window() -> None:
    clock = Ticks()
    times = CommitTimes(clock)
    assert times.quantile(0.9) is None
    for _ in range(50):
        times.add(0.040)  # a slow spell, long ago
    clock.now += 10
    for _ in range(50):
        times.add(0.001)
    assert times.quantile(0.9, within=1.0) == 0.001
    assert times.quantile(0.9) == 0.040  # all kept commits: the slow spell is in them


def test_a_purge_rests_longer_while_ingest_commits_are_slow_and_recovers() -> None:
    clock = Ticks()
    times = CommitTimes(clock)
    for _ in range(100):
        times.add(0.0005)  # ingest before the purge: half a millisecond
    pace = PurgePace(times)
    assert pace.rest_after(0.0015) == pytest.approx(REST_FACTOR * 0.0015)

    # The disk falls behind: ingest commits take 30 ms. Each batch's rest doubles, up to the cap.
    rests = []
    for _ in range(12):
        clock.now += 0.1
        for _ in range(20):
            times.add(0.030)
        rests.append(pace.rest_after(0.0015))
    assert rests[0] > REST_FACTOR * 0.0015
    assert all(b >= a for a, b in itertools.pairwise(rests))
    assert rests[-1] == MAX_REST_S
    assert pace.slowed == 12

    # Commits are fast again: the rest halves back down to the floor.
    clock.now += 5
    for _ in range(50):
        times.add(0.0005)
    back = [pace.rest_after(0.0015) for _ in range(12)]
    assert back[0] == MAX_REST_S / 2
    assert back[-1] == pytest.approx(REST_FACTOR * 0.0015)


async def test_the_store_times_ingest_commits_not_background_ones(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    try:
        slow = threading.Event()

        def background_op(c: sqlite3.Connection) -> None:
            slow.wait(0.2)  # a slow purge batch must not count as slow ingest

        await store.write(background_op, background=True)
        assert store.commit_times.quantile(0.5) is None
        await asyncio.gather(*(store.add_read(a_read(i)) for i in range(5)))
        assert store.commit_times.quantile(0.5) is not None
        assert store.commit_times.quantile(1.0) < 0.2
    finally:
        await store.close()


async def test_a_purge_backs_off_when_ingest_commits_slow_down_and_still_finishes(
    tmp_path: Path,
) -> None:
    store = await open_store(tmp_path)
    try:
        await asyncio.gather(*(store.add_read(a_read(i)) for i in range(60)))
        for _ in range(50):
            await store.write(lambda c: None)  # quick ingest commits before the purge
        purger = Purger(store, RetentionSettings(read_days=30, image_days=0, batch_rows=10))
        now = DAY + timedelta(days=40)
        day = DAY.date().isoformat()
        purging = asyncio.create_task(purger.purge("read", day, now, "test"))

        def slow_commit(c: sqlite3.Connection) -> None:
            threading.Event().wait(0.03)  # a disk that is behind: 30 ms ingest commits

        while not purging.done():
            await store.write(slow_commit)
        proof = await purging
        assert purger.slowed_rests > 0
        assert proof.rows == 60 and proof.key_destroyed
        assert await store.count_reads() == 0
    finally:
        await store.close()
