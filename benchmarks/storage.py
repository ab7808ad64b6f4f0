"""The encrypted store at volume, on this machine.

    python benchmarks/storage.py [--ingest 20000] [--reads 200000] [--purge-reads 50000]
                                 [--rate 400] [--crop-kb 20] [--vehicle-kb 0] [--dir PATH]
                                 [--only ingest|search|purge|wal|idle] [--repeat N] [--idle-s 10]
                                 [--control] [--json]

Measures, in one run, against a fresh data directory (default: a temporary one; ``--dir`` to put
it on the box's real disk):

1. sustained ingest: ``--ingest`` reads with a 20 KB plate crop (``--vehicle-kb`` adds a vehicle
   image) through
   ``Store.add_read`` (AES-256-GCM under day keys, images appended to segment files, every write
   acknowledged after commit), from 64 concurrent producers; then the same rows into plain
   SQLite (plate in clear, images inline, 256 rows per transaction) and into plain SQLite with
   unencrypted segment files (the same design minus encryption): reads/s and both ratios
   (``overhead_ratio`` = plain inline / encrypted; ``encryption_ratio`` = plain segments /
   encrypted);
2. exact plate search over ``--reads`` stored reads spread over a year (``--reads 10000000`` for
   the issue's target): ``Store.find_plate`` latency p50/p99 (a keyed-hash lookup in each stored
   day, then decryption);
3. purging one day of ``--purge-reads`` reads (images, then reads, key destroyed) while reads keep
   arriving at ``--rate`` per second, the purge running for one window (``WINDOW_S``) and held
   for the next two, in turn: ingest latency p50/p99 in the purge's windows vs the idle windows
   interleaved with them (the second held window, starting a full window after the purge's last
   batch: ``p99_ratio_vs_idle_windows``), vs the first held windows (``p99_ratio``), and vs
   idle phases before and after (``--idle-s`` each, the disk flushed before each;
   ``p99_ratio_vs_idle`` takes both together).
   ``--repeat N`` runs this part N times on fresh stores and prints every run (the tail is
   noisy on a shared machine: report all runs, not the best); ``--control`` follows each run
   with its control, the same run with no purge, as long (``p99_ratio_vs_control``: the purge's
   windows against every window of a run in which nothing was purged);
4. what purging that day writes, alone: WAL frames per 100-read transaction, against the size
   of the database (every frame is checkpointed and shipped by litestream);
5. only with ``--only idle``: the purge part's store and ingest with no purge, for ``--idle-s``
   (``--idle-s 600``: ten minutes), ingest p99 minute by minute: how far the purge part's short
   idle phases, just after the disk was flushed, are from idle over as long as a purge takes.

Nothing is asserted: the numbers are for the README. Replication is not running here (see the
replication benchmark for lag); segment files are what litestream does not have to ship.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import string
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from appliance._crypto import FieldCipher  # noqa: E402
from appliance._lifecycle.holds import active_clause  # noqa: E402
from appliance._lifecycle.records import READ, read_ad, utc  # noqa: E402
from appliance._lifecycle.retention import Purger, purge_steps  # noqa: E402
from appliance._lifecycle.settings import RetentionSettings  # noqa: E402
from appliance._storage import Store  # noqa: E402
from appliance._storage.plate_keys import INSERT_PLATE_KEY  # noqa: E402
from appliance.models import PlateRead  # noqa: E402

DAY0 = datetime(2026, 1, 1, tzinfo=UTC)
CROP = 20_000
VEHICLE = 0  # --vehicle-kb: the vehicle image the console compares with a hot-list entry


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def filesystem(path: Path) -> str:
    best, kind = "", "?"
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            _, mount, fstype, *_ = line.split()
            if str(path.resolve()).startswith(mount) and len(mount) > len(best):
                best, kind = mount, fstype
    except OSError:
        pass
    return kind


def machine(folder: Path) -> dict[str, Any]:
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "load_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "filesystem": filesystem(folder),
    }


def bytes_written() -> int | None:
    """Bytes this process has sent to the disk so far (Linux ``/proc/self/io``): the WAL, the
    checkpoints' copies into the database file, segments. None where it cannot be read."""
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def plate(rng: random.Random) -> str:
    return f"{rng.randint(1, 9)}{''.join(rng.choices(string.ascii_uppercase, k=3))}" + "".join(
        rng.choices(string.digits, k=3)
    )


def a_read(rng: random.Random, at: datetime, images: bytes) -> PlateRead:
    text = plate(rng)
    return PlateRead(
        camera=f"cam{rng.randint(1, 4)}",
        text=text,
        confidence=0.9,
        first_seen=at,
        last_seen=at + timedelta(seconds=2),
        box=(10, 20, 120, 40),
        frames=5,
        crop_jpeg=images[:CROP],
        vehicle_jpeg=images[CROP : CROP + VEHICLE],
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def open_store(folder: Path) -> Store:
    return await Store.open(folder / "alprbox.db", FieldCipher(os.urandom(32)))


# -- 1. ingest -------------------------------------------------------------------------------


async def ingest(folder: Path, count: int, rng: random.Random) -> dict[str, Any]:
    images = os.urandom(CROP + VEHICLE)
    reads = [a_read(rng, DAY0 + timedelta(seconds=i * 0.5), images) for i in range(count)]
    store = await open_store(folder / "encrypted")
    queue = iter(reads)

    async def producer() -> None:
        for read in queue:
            await store.add_read(read)

    start = time.perf_counter()
    await asyncio.gather(*(producer() for _ in range(64)))
    encrypted_s = time.perf_counter() - start
    await store.close()

    plain_db = folder / "plain.db"
    conn = sqlite3.connect(plain_db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(
        "CREATE TABLE reads (id TEXT PRIMARY KEY, camera TEXT, seen_at TEXT, day TEXT,"
        " plate TEXT, payload TEXT)"
    )
    conn.execute("CREATE INDEX reads_plate ON reads (plate)")
    conn.execute("CREATE INDEX reads_seen ON reads (seen_at)")
    conn.execute("CREATE TABLE crops (read_id TEXT PRIMARY KEY, data BLOB, vehicle BLOB)")
    start = time.perf_counter()
    for first in range(0, count, 256):
        conn.execute("BEGIN")
        for read in reads[first : first + 256]:
            seen = utc(read.first_seen)
            body = json.dumps({"text": read.text, "confidence": read.confidence,
                               "box": list(read.box), "frames": read.frames})
            conn.execute("INSERT INTO reads VALUES (?, ?, ?, ?, ?, ?)",
                         (read.id, read.camera, seen, seen[:10], read.text, body))
            conn.execute("INSERT INTO crops VALUES (?, ?, ?)",
                         (read.id, read.crop_jpeg, read.vehicle_jpeg))
        conn.execute("COMMIT")
    plain_s = time.perf_counter() - start
    conn.close()

    # The same design without encryption: plain rows, images appended to one file, fsync per
    # transaction, so the ratio to this is the cost of encryption and keys alone.
    seg_db = folder / "plain-segments.db"
    conn = sqlite3.connect(seg_db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(
        "CREATE TABLE reads (id TEXT PRIMARY KEY, camera TEXT, seen_at TEXT, day TEXT,"
        " plate TEXT, payload TEXT)"
    )
    conn.execute("CREATE INDEX reads_plate ON reads (plate)")
    conn.execute("CREATE INDEX reads_seen ON reads (seen_at)")
    conn.execute("CREATE TABLE images (read_id TEXT, kind TEXT, offset INTEGER, length INTEGER)")
    fd = os.open(folder / "plain.seg", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    offset = 0
    start = time.perf_counter()
    for first in range(0, count, 256):
        conn.execute("BEGIN")
        for read in reads[first : first + 256]:
            seen = utc(read.first_seen)
            body = json.dumps({"text": read.text, "confidence": read.confidence,
                               "box": list(read.box), "frames": read.frames})
            conn.execute("INSERT INTO reads VALUES (?, ?, ?, ?, ?, ?)",
                         (read.id, read.camera, seen, seen[:10], read.text, body))
            for kind, data in (("crop", read.crop_jpeg), ("vehicle", read.vehicle_jpeg)):
                if data:
                    os.write(fd, data)
                    conn.execute("INSERT INTO images VALUES (?, ?, ?, ?)",
                                 (read.id, kind, offset, len(data)))
                    offset += len(data)
        os.fsync(fd)
        conn.execute("COMMIT")
    plain_segments_s = time.perf_counter() - start
    os.close(fd)
    conn.close()
    db_bytes = sum(p.stat().st_size for p in (folder / "encrypted").glob("alprbox.db*"))
    seg_bytes = sum(p.stat().st_size for p in (folder / "encrypted" / "segments").iterdir())
    return {
        "reads": count,
        "image_bytes_per_read": CROP + VEHICLE,
        "encrypted_reads_per_s": round(count / encrypted_s),
        "plain_sqlite_reads_per_s": round(count / plain_s),
        "overhead_ratio": round((count / plain_s) / (count / encrypted_s), 2),
        "plain_sqlite_segments_reads_per_s": round(count / plain_segments_s),
        "encryption_ratio": round((count / plain_segments_s) / (count / encrypted_s), 2),
        "encrypted_db_mb": round(db_bytes / 1e6, 1),
        "segment_files_mb": round(seg_bytes / 1e6, 1),
    }


# -- 2. exact search ---------------------------------------------------------------------------


async def bulk_fill(store: Store, count: int, rng: random.Random, days: int) -> list[str]:
    """Stored reads without images, spread over ``days`` days (fast path for big N)."""
    cipher = store.cipher
    probes: list[str] = []
    per_batch = 5000
    for first in range(0, count, per_batch):
        rows = []
        for i in range(first, min(count, first + per_batch)):
            at = DAY0 + timedelta(seconds=(i * days * 86400) // count)
            text = plate(rng)
            seen = utc(at)
            read_id = f"{i:012x}"
            body = json.dumps({"text": text, "confidence": 0.9, "candidates": [[text, 0.9]],
                               "box": [1, 2, 3, 4], "frames": 3, "last_seen": seen,
                               "state": "CA", "state_confidence": 0.8}).encode()
            payload = cipher.encrypt_for(READ, seen[:10], body, read_ad(read_id, "cam1", seen))
            rows.append((read_id, "cam1", seen, seen[:10], cipher.plate_index(text), payload,
                         READ, cipher.key_id_of(payload)))
            if rng.random() < 0.001 and len(probes) < 5000:
                probes.append(text)

        def op(c: sqlite3.Connection, rows: list[tuple[Any, ...]] = rows) -> None:
            c.executemany(
                "INSERT INTO reads (id, camera, seen_at, day, plate_index, payload, class,"
                " key_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            c.executemany(INSERT_PLATE_KEY, [(row[3], row[4], row[0]) for row in rows])

        await store.write(op)
    return probes


async def search(folder: Path, count: int, rng: random.Random) -> dict[str, Any]:
    store = await open_store(folder / "search")
    start = time.perf_counter()
    probes = await bulk_fill(store, count, rng, 365)
    fill_s = time.perf_counter() - start
    latencies = []
    hits = 0
    for text in probes[:2000] or [plate(rng)]:
        t = time.perf_counter()
        found = await store.find_plate(text)
        latencies.append((time.perf_counter() - t) * 1000)
        hits += len(found)
    misses = []
    for _ in range(500):
        t = time.perf_counter()
        await store.find_plate(plate(rng))
        misses.append((time.perf_counter() - t) * 1000)
    db_bytes = sum(p.stat().st_size for p in (folder / "search").glob("alprbox.db*"))
    await store.close()
    return {
        "stored_reads": count,
        "fill_s": round(fill_s, 1),
        "db_mb": round(db_bytes / 1e6, 1),
        "queries": len(latencies),
        "rows_returned": hits,
        "hit_p50_ms": round(statistics.median(latencies), 3),
        "hit_p99_ms": round(pct(latencies, 0.99), 3),
        "miss_p50_ms": round(statistics.median(misses), 3),
        "miss_p99_ms": round(pct(misses, 0.99), 3),
    }


#: how long the purge runs, then is held, in turn, while ingest goes on
WINDOW_S = 2.0

# -- 3. purge while ingesting ----------------------------------------------------------------


async def paced_ingest(
    store: Store,
    rate: float,
    seconds: float,
    at: datetime,
    rng: random.Random,
    images: bytes,
    skip: float = 0.0,
    spans: list[tuple[float, float]] | None = None,
) -> list[float]:
    """Ingest at ``rate`` for ``seconds``; the latencies of the writes started after ``skip``
    (and, into ``spans``, when each of those began and ended, in ``time.perf_counter()``)."""
    latencies: list[float] = []
    pending: set[asyncio.Task[None]] = set()
    interval = 1.0 / rate
    start = time.perf_counter()
    n = 0

    async def one(read: PlateRead) -> None:
        t = time.perf_counter()
        await store.add_read(read)
        if t - start >= skip:
            ended = time.perf_counter()
            latencies.append((ended - t) * 1000)
            if spans is not None:
                spans.append((t, ended))

    while time.perf_counter() - start < seconds:
        read = a_read(rng, at + timedelta(microseconds=n), images)
        task = asyncio.create_task(one(read))
        pending.add(task)
        task.add_done_callback(pending.discard)
        n += 1
        next_at = start + n * interval
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    await asyncio.gather(*pending)
    return latencies


async def settle(store: Store) -> None:
    """Flush dirty pages to disk and let the WAL be copied back before a measured phase."""
    await asyncio.to_thread(os.sync)
    ticket = store.checkpointer.request()
    for _ in range(100):
        if store.checkpointer.finished_through >= ticket:
            break
        await asyncio.sleep(0.1)
    await store.write(lambda c: None)  # the writer's tail pass: the WAL can start over
    await asyncio.to_thread(os.sync)


async def fill_day(store: Store, count: int, rng: random.Random, day: datetime) -> None:
    """A day of ``count`` reads with small images (bulk, like a busy site's day)."""
    small = os.urandom(2000)
    stored = [a_read(rng, day + timedelta(seconds=i * 86400 / count), small) for i in range(count)]
    for first in range(0, count, 2000):
        await asyncio.gather(*(store.add_read(r) for r in stored[first : first + 2000]))


async def day_store(folder: Path, count: int, rng: random.Random) -> tuple[Store, float]:
    """A new store in ``folder`` holding one day (``DAY0``) of ``count`` reads, the disk settled
    after the fill; and how long the fill took. The fill's dirty pages and WAL would otherwise
    be written back during the first measured phase and inflate its tail (seen: idle p99 of
    400 ms)."""
    store = await open_store(folder)
    started = time.perf_counter()
    await fill_day(store, count, rng, DAY0)
    fill_s = time.perf_counter() - started
    await settle(store)
    return store, fill_s


def day_purger(store: Store) -> Purger:
    """A purger with the benchmarks' policy: non-hit images the day after, reads 30 days."""
    return Purger(store, RetentionSettings(read_days=30, hit_days=365, image_days=0))


async def purge_day(purger: Purger, day: datetime, today: datetime) -> None:
    """Purge one stored day as the lifecycle task does: its images, then its reads."""
    for klass in ("image", "read"):
        await purger.purge(klass, day.date().isoformat(), today, "benchmark")


async def purge_while_ingesting(
    folder: Path,
    count: int,
    rate: float,
    rng: random.Random,
    window: float = WINDOW_S,
    idle_s: float = 10.0,
    control_s: float | None = None,
) -> dict[str, Any]:
    """The purge part; with ``control_s``, its control: the same store, ingest and window
    cycle, with the purge replaced by a wait of ``control_s`` seconds."""
    store, fill_s = await day_store(Path(tempfile.mkdtemp(prefix="purge-", dir=folder)), count, rng)
    images = os.urandom(CROP + VEHICLE)
    day = DAY0
    today = day + timedelta(days=40)
    idle = await paced_ingest(store, rate, idle_s, today, rng, images)

    # During the purge, the purge runs for one window and is held for the next two, in turn,
    # while ingest never stops. The shared disk's own fsync tail swings several-fold within a
    # minute (held-window p99 per tenth of a 500,000-read run: 1.4-13 ms), so phases before and
    # after the purge are a poor baseline for a purge that runs half an hour: windows
    # interleaved over the same minutes see the same disk. The first held window ("held") may
    # still have checkpoints of the pages the purge just dirtied; the second ("idle") starts a
    # full window after the purge's last batch and is the idle baseline. Only
    # the writes that start in a window's second half count, so no window inherits another's
    # start.
    purge_on = asyncio.Event()
    purge_on.set()
    plain_write = store.write

    async def held_between_windows(op: Any, *, background: bool = False, **how: Any) -> Any:
        if background:  # the purge's batches; ingest is never held
            await purge_on.wait()
        return await plain_write(op, background=background, **how)

    store.write = held_between_windows  # type: ignore[method-assign]
    purger = day_purger(store)
    during: list[float] = []
    held: list[float] = []
    idle_windows: list[float] = []
    purge_start = time.perf_counter()

    async def purge() -> None:
        if control_s is not None:
            await asyncio.sleep(control_s)
        else:
            await purge_day(purger, day, today)

    written_before = bytes_written()
    purge_task = asyncio.create_task(purge())
    windows = 0
    while not purge_task.done():
        latencies = await paced_ingest(
            store, rate, window, today, rng, images, skip=window / 2
        )
        (during, held, idle_windows)[windows % 3].extend(latencies)
        windows += 1
        if windows % 3 == 0:
            purge_on.set()
        else:
            purge_on.clear()
    purge_task.result()
    purge_s = time.perf_counter() - purge_start
    written_after = bytes_written()
    store.write = plain_write  # type: ignore[method-assign]
    # Idle again after the purge, same process: how far idle alone moves between two phases.
    await settle(store)
    idle_after = await paced_ingest(store, rate, idle_s, today, rng, images)
    remaining = await store.count_reads()
    await store.close()
    return {
        "day_reads": count,
        "fill_s": round(fill_s, 1),
        "ingest_rate_per_s": rate,
        "purge_s": round(purge_s, 1),
        "purge_windows": (windows + 2) // 3,
        "slowed_rests": purger.slowed_rests,
        "batches_gave_way": getattr(store, "background_yields", None),
        # everything written while the purge ran (ingest's WAL and segments, checkpoints, the
        # purge's pages); the purge's own WAL is the "wal" part
        "disk_written_mb_during_purge": (
            round((written_after - written_before) / 1e6) if written_before is not None
            and written_after is not None else None
        ),

        "window_s": window,
        "purged_reads_per_s_while_running": round(count / (purge_s / 3)),
        "held_p50_ms": round(statistics.median(held), 2) if held else None,
        "held_p99_ms": round(pct(held, 0.99), 2) if held else None,
        "during_purge_p50_ms": round(statistics.median(during), 2),
        "during_purge_p99_ms": round(pct(during, 0.99), 2),
        "p99_ratio": round(pct(during, 0.99) / pct(held, 0.99), 2) if held else None,
        "idle_windows_p50_ms": round(statistics.median(idle_windows), 2) if idle_windows else None,
        "idle_windows_p99_ms": round(pct(idle_windows, 0.99), 2) if idle_windows else None,
        "p99_ratio_vs_idle_windows": (
            round(pct(during, 0.99) / pct(idle_windows, 0.99), 2) if idle_windows else None
        ),
        "idle_before_p99_ms": round(pct(idle, 0.99), 2),
        "idle_after_p99_ms": round(pct(idle_after, 0.99), 2),
        "idle_s": idle_s,
        "idle_p99_ms": round(pct(idle + idle_after, 0.99), 2),
        "p99_ratio_vs_idle_before": round(pct(during, 0.99) / pct(idle, 0.99), 2),
        "p99_ratio_vs_idle_after": round(pct(during, 0.99) / pct(idle_after, 0.99), 2),
        "p99_ratio_vs_idle": round(pct(during, 0.99) / pct(idle + idle_after, 0.99), 2),
        "held_max_ms": round(max(held), 1) if held else None,
        "during_purge_max_ms": round(max(during), 1),
        "reads_left": remaining,
        # every latency, for the pooled figures of --repeat (popped before printing)
        "_samples": {"during": during, "held": held, "idle": idle_windows},
    }


async def purge_control(
    folder: Path, count: int, rate: float, rng: random.Random, seconds: float
) -> dict[str, Any]:
    """The purge part run again with no purge, as long as the purge ran: every window is idle.
    Its p99 over all windows is what the same disk gives ingest over as long a run, at nearly
    the same time, with nothing purged. It tells whether the purge run's idle windows carry
    something of the purge (they would read higher than the control's)."""
    run = await purge_while_ingesting(folder, count, rate, rng, control_s=seconds)
    every = [x for kind in ("during", "held", "idle") for x in run["_samples"][kind]]
    return {
        "control_s": round(seconds, 1),
        "samples": len(every),
        "windows_p50_ms": round(statistics.median(every), 2),
        "windows_p99_ms": round(pct(every, 0.99), 2),
        # the windows in the purge run's slots, for the same comparison it makes
        "purge_slot_p99_ms": run["during_purge_p99_ms"],
        "held_slot_p99_ms": run["held_p99_ms"],
        "idle_slot_p99_ms": run["idle_windows_p99_ms"],
        "_samples": every,
    }


# -- 3b. idle ingest, minute by minute -------------------------------------------------------


async def idle_by_minute(
    folder: Path, count: int, rate: float, rng: random.Random, idle_s: float
) -> dict[str, Any]:
    """The purge part's store and ingest with no purge at all, for ``idle_s`` rounded to whole
    minutes (at least one): p99 per minute.
    Shows how far a short idle phase just after ``settle()`` (the purge part's idle phases)
    is from idle over as long as a big purge takes."""
    store, _ = await day_store(Path(tempfile.mkdtemp(prefix="idle-", dir=folder)), count, rng)
    images = os.urandom(CROP + VEHICLE)
    minutes: list[list[float]] = []
    today = DAY0 + timedelta(days=40)
    for _ in range(max(1, round(idle_s / 60))):
        minutes.append(await paced_ingest(store, rate, 60.0, today, rng, images))
    await store.close()
    every = [x for minute in minutes for x in minute]
    return {
        "day_reads": count,
        "ingest_rate_per_s": rate,
        "minutes": len(minutes),
        "p99_ms_by_minute": [round(pct(minute, 0.99), 2) for minute in minutes],
        "first_minute_p99_ms": round(pct(minutes[0], 0.99), 2),
        "p99_ms": round(pct(every, 0.99), 2),
        "p50_ms": round(statistics.median(every), 2),
    }


# -- 4. what a purge writes -----------------------------------------------------------------


async def purge_wal(folder: Path, count: int, rng: random.Random) -> dict[str, Any]:
    """A day of ``count`` reads (2 KB crops) and a fifth as many on a later day; the day
    deleted alone, 100 rows per transaction with the purge's own steps (images, plate keys,
    reads, plate keys), and the WAL
    frames each transaction wrote counted (a checkpoint after each). Every frame is copied back
    by a checkpoint and shipped by litestream, so this is the disk and network a purge costs."""
    path = Path(tempfile.mkdtemp(prefix="wal-", dir=folder))
    store = await open_store(path)
    small = os.urandom(2000)
    day, later = DAY0, DAY0 + timedelta(days=40)
    for at, n in ((day, count), (later, count // 5)):
        reads = [a_read(rng, at + timedelta(seconds=i * 86400 / n), small) for i in range(n)]
        for first in range(0, n, 2000):
            await asyncio.gather(*(store.add_read(r) for r in reads[first : first + 2000]))
    await store.close()
    conn = sqlite3.connect(store.path, isolation_level=None)
    try:
        conn.execute("PRAGMA secure_delete = ON")  # as the store runs
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        held_sql, held_args = active_clause(utc(later))
        frames = transactions = 0
        start = time.perf_counter()
        steps = [
            step
            for klass in ("image", "read")
            for step in purge_steps(klass, day.date().isoformat(), held_sql, held_args)
        ]
        for step in steps:
            after: tuple[bytes, str] = (b"", "")
            while True:
                conn.execute("BEGIN IMMEDIATE")
                done = step(conn, 100, after)
                conn.execute("COMMIT")
                frames += conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                transactions += 1
                after = done.last
                if done.seen < 100:
                    break
        took = time.perf_counter() - start
    finally:
        conn.close()
    return {
        "day_reads": count,
        "database_mb": round(pages * page / 1e6, 1),
        "transactions": transactions,
        "wal_frames": frames,
        "wal_mb": round(frames * page / 1e6, 1),
        "wal_frames_per_transaction": round(frames / transactions, 1),
        "wal_mb_per_1000_reads": round(frames * page / 1e6 / count * 1000, 2),
        "seconds_alone": round(took, 1),
    }


def pooled(runs: list[dict[str, Any]], controls: list[list[float]]) -> dict[str, Any]:
    """The purge runs' window latencies taken together. One run's p99 rests on its ~20
    slowest writes, and stalls come in bursts (one 20 ms stall delays ~8 writes in a row at
    400/s), so a single run's ratio mostly counts how many stalls fell on which side; pooling
    N runs gives each p99 N times the samples."""
    during = [x for run in runs for x in run["during"]]
    held = [x for run in runs for x in run["held"]]
    idle = [x for run in runs for x in run["idle"]]
    out: dict[str, Any] = {
        "runs": len(runs),
        "held_samples": len(held),
        "during_samples": len(during),
        "held_p99_ms": round(pct(held, 0.99), 2),
        "during_purge_p99_ms": round(pct(during, 0.99), 2),
        "p99_ratio": round(pct(during, 0.99) / pct(held, 0.99), 2),
        "idle_windows_samples": len(idle),
        "idle_windows_p99_ms": round(pct(idle, 0.99), 2),
        "p99_ratio_vs_idle_windows": round(pct(during, 0.99) / pct(idle, 0.99), 2),
        "held_p999_ms": round(pct(held, 0.999), 2),
        "during_purge_p999_ms": round(pct(during, 0.999), 2),
        "median_run_p99_ratio": statistics.median(
            round(pct(r["during"], 0.99) / pct(r["held"], 0.99), 2) for r in runs
        ),
    }
    if controls:
        control = [x for run in controls for x in run]
        out["control_samples"] = len(control)
        out["control_p99_ms"] = round(pct(control, 0.99), 2)
        out["p99_ratio_vs_control"] = round(pct(during, 0.99) / pct(control, 0.99), 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ingest", type=int, default=20_000)
    parser.add_argument("--reads", type=int, default=200_000)
    parser.add_argument("--purge-reads", type=int, default=50_000)
    parser.add_argument("--rate", type=float, default=400.0, help="ingest rate during purge")
    parser.add_argument("--crop-kb", type=int, default=20, help="plate crop size (20 KB)")
    parser.add_argument("--vehicle-kb", type=int, default=0, help="vehicle image size (0)")
    parser.add_argument("--dir", type=Path, help="where to write (default: a temporary dir)")
    parser.add_argument(
        "--only", choices=("ingest", "search", "purge", "wal", "idle"), help="run one of the parts"
    )
    parser.add_argument("--repeat", type=int, default=1, help="run the purge part N times")
    parser.add_argument(
        "--idle-s", type=float, default=10.0, help="each idle phase of the purge part (10 s)"
    )
    parser.add_argument(
        "--control",
        action="store_true",
        help="after each purge run, its control: the same run with no purge, as long",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    global CROP, VEHICLE
    CROP, VEHICLE = args.crop_kb * 1000, args.vehicle_kb * 1000
    folder = Path(tempfile.mkdtemp(prefix="alprbox-storage-", dir=args.dir))
    rng = random.Random(7)
    result: dict[str, Any] = {"machine": machine(folder)}
    parts = {
        "ingest": lambda: ingest(folder, args.ingest, rng),
        "search": lambda: search(folder, args.reads, rng),
        "purge": lambda: purge_while_ingesting(
            folder, args.purge_reads, args.rate, rng, idle_s=args.idle_s
        ),
        "wal": lambda: purge_wal(folder, args.purge_reads, rng),
        "idle": lambda: idle_by_minute(folder, args.purge_reads, args.rate, rng, args.idle_s),
    }
    if not args.json:
        print(json.dumps({"machine": result["machine"]}, indent=1))
    try:
        for name, run in parts.items():
            # "idle" is a long run of its own, asked for by name
            if (args.only and name != args.only) or (name == "idle" and args.only != "idle"):
                continue
            runs = args.repeat if name == "purge" else 1
            samples = []
            controls: list[list[float]] = []
            for n in range(runs):
                key = name if n == 0 else f"{name}_{n + 1}"
                result[key] = asyncio.run(run())
                result[key]["load_1m"] = round(os.getloadavg()[0], 2)
                if "_samples" in result[key]:
                    samples.append(result[key].pop("_samples"))
                if not args.json:
                    print(json.dumps({key: result[key]}, indent=1), flush=True)
                if name == "purge" and args.control:
                    control = asyncio.run(
                        purge_control(
                            folder, args.purge_reads, args.rate, rng, result[key]["purge_s"]
                        )
                    )
                    control["load_1m"] = round(os.getloadavg()[0], 2)
                    controls.append(control.pop("_samples"))
                    control["p99_ratio_vs_control"] = round(
                        result[key]["during_purge_p99_ms"] / control["windows_p99_ms"], 2
                    )
                    result[f"{key}_control"] = control
                    if not args.json:
                        print(json.dumps({f"{key}_control": control}, indent=1), flush=True)
            if len(samples) > 1:
                result[f"{name}_pooled"] = pooled(samples, controls)
                if not args.json:
                    print(json.dumps({f"{name}_pooled": result[f"{name}_pooled"]}, indent=1))
        if args.json:
            print(json.dumps(result, indent=1))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
