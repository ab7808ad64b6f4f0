"""Retention: purge each class's days on schedule and destroy their keys (crypto-shredding).

Data of UTC day D in a class kept N days is purged on day D + N + 1 ("on the 366th day" for
365). A purge of (class, day), in order:

1. reads of that day under an active legal hold are re-encrypted under their hold's key (with
   their images), so destroying the day key does not take them;
2. (non-hit reads and images) a read with an alert that was not yet promoted becomes a ``hit``;
3. the day's rows are deleted in small transactions (``retention.batch_rows``), each a background
   write on the store's single writer that gives way to any write queued while it runs;
4. the day's segment files are deleted, then the day's data key is destroyed in keys.db
   (``secure_delete`` + checkpoint): every copy of that day's ciphertext, in any replica
   generation or backup of the database or segments, is unreadable from then on;
5. a purge proof (class, day, counts, policy version, time) is signed with the audit Ed25519 key,
   kept in ``purges`` and recorded in the audit trail.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .._storage import WriteYielded
from .._storage.audit import load_signing_key, signing_key_path
from .holds import active_clause
from .keyring import KeyShredded
from .records import HIT, HOLD, IMAGE, READ, utc
from .settings import RetentionSettings

if TYPE_CHECKING:
    from .._storage import Store
    from .._storage.commit_times import CommitTimes

logger = logging.getLogger(__name__)

#: the order classes are purged in (images before the reads they belong to)
PURGED_CLASSES = (IMAGE, READ, HIT)
SIX_MONTHS = timedelta(days=183)


@dataclass(frozen=True)
class PurgeProof:
    klass: str
    day: str
    at: str
    rows: int
    images: int
    held: int
    key_destroyed: bool
    policy_version: str
    signature: bytes

    def body(self) -> str:
        return proof_body(
            {
                "class": self.klass,
                "day": self.day,
                "at": self.at,
                "rows": self.rows,
                "images": self.images,
                "held": self.held,
                "key_destroyed": self.key_destroyed,
                "policy_version": self.policy_version,
            }
        )


def proof_body(fields: dict[str, Any]) -> str:
    """The canonical JSON that is signed: sorted keys, no spaces."""
    return json.dumps(fields, sort_keys=True, separators=(",", ":"))


def verify_proof(body: str, signature: bytes, public_key: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(
            signature, b"alprbox purge proof v1\x00" + body.encode()
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def purge_day(day: str, days: int) -> date:
    """The day a class's data of ``day`` is purged on, when kept ``days`` days."""
    return date.fromisoformat(day) + timedelta(days=days + 1)


class Purger:
    """Purges one store by a retention policy."""

    def __init__(self, store: Store, settings: RetentionSettings) -> None:
        self.store = store
        self.settings = settings
        #: batches after which a purge rested longer because ingest commits had slowed
        self.slowed_rests = 0

    # -- what is due -------------------------------------------------------------------------

    async def due(self, today: date) -> list[tuple[str, str]]:
        """(class, day) pairs whose retention has ended by ``today``, oldest first."""
        found: list[tuple[str, str]] = []
        ring = self.store.cipher.ring
        for klass in PURGED_CLASSES:
            days = self.settings.days(klass)
            if days is None:
                continue
            cutoff = (today - timedelta(days=days)).isoformat()  # purge days < cutoff
            table = "images" if klass == IMAGE else "reads"
            sql = f"SELECT DISTINCT day FROM {table} WHERE class = ? AND day < ?"
            args = (klass, cutoff)

            def days_due(
                c: sqlite3.Connection, sql: str = sql, args: tuple[str, str] = args
            ) -> list[Any]:
                return c.execute(sql, args).fetchall()

            rows = await self.store.query(days_due)
            candidates = {r[0] for r in rows}
            candidates |= {d for _, k, d, _ in ring.list_keys() if k == klass and d < cutoff}
            found += [(klass, d) for d in sorted(candidates)]
        return found

    async def run(self, now: datetime, actor: str = "system") -> list[PurgeProof]:
        """Purge everything due; one proof per (class, day). Also drops released hold keys."""
        proofs = []
        for klass, day in await self.due(now.date()):
            proofs.append(await self.purge(klass, day, now, actor))
        await self.drop_released_hold_keys(now)
        return proofs

    # -- one day -----------------------------------------------------------------------------

    async def purge(self, klass: str, day: str, now: datetime, actor: str) -> PurgeProof:
        store = self.store
        records = store.read_records
        ring = store.cipher.ring
        batch = self.settings.batch_rows
        held_sql, held_args = active_clause(utc(now))
        day_key = ring.key(klass, day, create=False).id if ring.has(klass, day) else None

        # 1. held reads under this day's key move to their hold's key first.
        table = "images" if klass == IMAGE else "reads"
        id_col = "read_id" if klass == IMAGE else "id"

        def held_under_day_key(c: sqlite3.Connection) -> list[tuple[str, int]]:
            return c.execute(
                f"SELECT DISTINCT t.{id_col}, min(i.hold_id) FROM {table} t"
                " JOIN hold_items i ON i.read_id = t." + id_col +
                " JOIN holds h ON h.id = i.hold_id"
                " WHERE t.class = ? AND t.day = ? AND t.key_id IS ?"
                " AND h.released_at IS NULL AND (h.until IS NULL OR h.until > ?)"
                f" GROUP BY t.{id_col}",
                (klass, day, day_key, utc(now)),
            ).fetchall()

        held = await store.query(held_under_day_key) if day_key is not None else []
        for start in range(0, len(held), batch):
            chunk = held[start : start + batch]

            def move(c: sqlite3.Connection, chunk: list[tuple[str, int]] = chunk) -> None:
                for read_id, hold_id in chunk:
                    row = c.execute("SELECT class FROM reads WHERE id = ?", (read_id,)).fetchone()
                    if row is not None:
                        records.reencrypt(c, read_id, HOLD, f"h{hold_id}", row[0])

            await store.write(move)

        # 2. a non-hit read with an alert is a hit that missed its promotion (its images too).
        if klass in (READ, IMAGE):
            missed = await store.query(
                lambda c: c.execute(
                    "SELECT DISTINCT r.id FROM reads r JOIN alerts a ON a.read_id = r.id"
                    " WHERE r.class = 'read' AND r.day = ?",
                    (day,),
                ).fetchall()
            )
            for (read_id,) in missed:

                def promote(c: sqlite3.Connection, read_id: str = read_id) -> bool:
                    return records.promote_on_writer(c, read_id)

                await store.write(promote)

        # 3. delete the day's rows, a small background batch per transaction (_in_batches).
        # One pace for the whole purge: its baseline is ingest before the purge began.
        pace = PurgePace(store.commit_times)
        rows = images = 0
        for step in purge_steps(klass, day, held_sql, held_args):
            deleted_rows, deleted_images = await self._in_batches(step, batch, pace)
            rows += deleted_rows
            images += deleted_images
        self.slowed_rests += pace.slowed
        # Held rows left in place (reads keep their class under a hold key); held images move
        # to the hold's class, so for images the ones moved now are the held ones.
        remaining_held = len(held) if klass == IMAGE else 0
        remaining_held += int(
            await store.query(
                lambda c: c.execute(
                    f"SELECT count(*) FROM {table} WHERE class = ? AND day = ?", (klass, day)
                ).fetchone()[0]
            )
        )

        # 4. the day's files and key.
        if klass in (IMAGE, HIT):
            names = await store.write(lambda c: store.segments.delete(c, klass, day))
            await asyncio.to_thread(store.segments.unlink, names)
        destroyed = await asyncio.to_thread(ring.destroy, klass, day)

        # 5. the proof.
        proof = await self._prove(
            klass, day, now, rows, images, remaining_held, destroyed is not None, actor
        )
        logger.info(
            "Purged %s data of %s: %d reads, %d images, %d held; key destroyed",
            klass, day, rows, images, remaining_held,
        )
        return proof

    async def _in_batches(self, one: Step, batch: int, pace: PurgePace) -> tuple[int, int]:
        """Run ``one`` batch after another until one comes back short; (rows, images) deleted.

        Each batch is a *background* write: it runs alone in its own transaction and only when
        no ingest write is waiting (Store.write), it is sized to take about BATCH_TARGET_S, and
        the purge then rests REST_FACTOR times as long as the batch took. An ingest write that
        arrives mid-batch stops it (it *yields*: rolled back, tried again smaller), so ingest
        waits for SQLite to notice, not for the batch; after MAX_GIVE_WAY yields in a row one
        batch runs to the end, so a purge finishes under any ingest rate. WAL checkpoints run
        off the writer (_storage/checkpoints.py). ``after`` is where the last committed batch
        stopped (a yielded batch was rolled back, so it does not move)."""
        store = self.store
        rows = images = 0
        size = min(batch, 100)
        gave_way = 0  # batches in a row that gave way to another write
        after: tuple[bytes, str] = (b"", "")
        while True:

            def timed(
                c: sqlite3.Connection, n: int = size, at: tuple[bytes, str] = after
            ) -> tuple[Batch, float]:
                started = time.perf_counter()
                done = one(c, n, at)
                return done, time.perf_counter() - started

            try:
                done, took = await store.write(
                    timed, background=True, yields=gave_way < MAX_GIVE_WAY
                )
            except WriteYielded as yielded:
                # An ingest write came while the batch ran: it went first, and the batch is
                # tried again, smaller, after the floor rest (PurgePace.floor).
                gave_way += 1
                size = max(MIN_BATCH_ROWS, size // 2)
                await asyncio.sleep(pace.floor(yielded.took))
                continue
            gave_way = 0
            rows += done.rows
            images += done.images
            after = done.last
            if done.seen < size:
                break
            size = _next_size(size, took, batch)
            await asyncio.sleep(pace.rest_after(took))
        return rows, images

    async def _prove(
        self,
        klass: str,
        day: str,
        now: datetime,
        rows: int,
        images: int,
        held: int,
        destroyed: bool,
        actor: str,
    ) -> PurgeProof:
        store = self.store
        at = utc(now)
        version = self.settings.version()
        fields: dict[str, Any] = {
            "class": klass,
            "day": day,
            "at": at,
            "rows": rows,
            "images": images,
            "held": held,
            "key_destroyed": destroyed,
            "policy_version": version,
        }
        body = proof_body(fields)
        key = load_signing_key(signing_key_path(store.path), create=True)
        assert key is not None
        signature = key.sign(b"alprbox purge proof v1\x00" + body.encode())
        await store.write(
            lambda c: c.execute(
                "INSERT INTO purges (class, day, at, rows, images, held, key_destroyed,"
                " policy_version, proof, signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (klass, day, at, rows, images, held, int(destroyed), version, body, signature),
            )
        )
        await store.record_event(
            "retention.purged", actor, {**fields, "proof": body, "signature": signature.hex()}
        )
        return PurgeProof(klass, day, at, rows, images, held, destroyed, version, signature)

    async def drop_released_hold_keys(self, now: datetime) -> list[int]:
        """Destroy the key (and segments) of each released hold that no row uses any more."""
        store = self.store
        ring = store.cipher.ring
        _, held_args = active_clause(utc(now))
        released = await store.query(
            lambda c: c.execute(
                "SELECT id FROM holds WHERE released_at IS NOT NULL"
                " OR (until IS NOT NULL AND until <= ?)",
                held_args,
            ).fetchall()
        )
        dropped = []
        for (hold_id,) in released:
            day = f"h{hold_id}"
            if not ring.has(HOLD, day):
                continue
            key_id = ring.key(HOLD, day, create=False).id

            def uses(c: sqlite3.Connection, k: int = key_id) -> int:
                return int(
                    c.execute(
                        "SELECT (SELECT count(*) FROM reads WHERE key_id = ?)"
                        " + (SELECT count(*) FROM images WHERE key_id = ?)",
                        (k, k),
                    ).fetchone()[0]
                )

            if await store.query(uses):
                continue

            def drop_segments(c: sqlite3.Connection, d: str = day) -> list[str]:
                return store.segments.delete(c, HOLD, d)

            await asyncio.to_thread(store.segments.unlink, await store.write(drop_segments))
            await asyncio.to_thread(ring.destroy, HOLD, day)
            dropped.append(hold_id)
        return dropped

    async def proofs(self) -> list[dict[str, Any]]:
        rows = await self.store.query(
            lambda c: c.execute(
                "SELECT proof, signature FROM purges ORDER BY id"
            ).fetchall()
        )
        return [{"proof": body, "signature": bytes(sig).hex()} for body, sig in rows]


#: how long one purge transaction should hold the writer (an ingest write arriving meanwhile
#: stops it; see MAX_GIVE_WAY). Measured on the 2-core box (benchmarks/storage.py, purge phase):
#: 10 ms batches took 9 ms p50 / 35 ms p99 under load, 3 ms ones 2.9 / 5-7 ms, 1.5 ms ones
#: 1.5 / 2.7 ms, the purge no slower (it was never writer-bound).
BATCH_TARGET_S = 0.0015
#: the fewest rows a batch is cut down to
MIN_BATCH_ROWS = 10
#: batches in a row that may give way to ingest before one is run to the end. At 400 ingest
#: writes/s a ~1.5 ms batch is stopped about half the time (benchmarks/storage.py), so 8 in a row
#: is rare; under a flood of writes it bounds how long a purge can be put off.
MAX_GIVE_WAY = 8
#: after each batch the purge rests this many times as long as the batch took (the writer's
#: share the purge takes is at most 1 / (1 + REST_FACTOR)). A purge has all day; ingest p99 is
#: ~1 ms, so every batch that lands beside an ingest write shows in it. Measured
#: (benchmarks/storage.py, purge phase, 50,000-read day at 400 ingest writes/s, quiet runs):
#: 4x gave ingest p99 2.8-2.9x the held windows' and purged the day in ~22 s of windows;
#: 24x gave 1.3-1.7x in ~100-125 s (a 500,000-read day: 1,571 s of windows, ~13 min running).
REST_FACTOR = 24.0


#: which quantile of ingest commit times the pace watches
QUANTILE = 0.9
#: ingest commits (QUANTILE over the last RECENT_S) slower than this many times the same
#: quantile before the purge began mean the disk is not keeping up: the purge rests longer
SLOW_FACTOR = 2.0
#: the p90 before the purge is taken as at least this (an idle box's commits are ~0.5 ms, and a
#: purge should not back off from 1 ms to 2 ms)
MIN_BASELINE_S = 0.002
#: how far back "ingest commits now" looks
RECENT_S = 1.0
#: the longest rest between two batches while ingest is slow (a 500,000-read day still
#: finishes: the rest halves again as soon as commits are back to normal)
MAX_REST_S = 2.0


class PurgePace:
    """How long a purge rests after each batch.

    At least ``REST_FACTOR`` times the batch (the writer's share the purge takes). A batch is
    ~1.5 ms, but the pages it dirties are written back later, when a checkpoint fsyncs the
    database, and ingest's own fsyncs then wait behind them: on the 2-core box ingest commits
    went from p99 4 ms to 17 ms during a purge, and the disk's own slow spells (p99 8-66 ms
    from one minute to the next) make it worse. So the rest doubles (up to ``MAX_REST_S``)
    while ingest commits are ``SLOW_FACTOR`` times slower than before the purge, and halves
    back to the floor once they are not: a purge backs off from a disk that is already behind.
    """

    def __init__(self, commits: CommitTimes) -> None:
        self.commits = commits
        self.baseline = max(commits.quantile(QUANTILE) or 0.0, MIN_BASELINE_S)
        self.rest = 0.0
        self.slowed = 0

    @staticmethod
    def floor(took: float) -> float:
        """The rest after a batch that took ``took`` when ingest is not slow; also the rest
        after a batch that gave way (the writer was busy, which says nothing of the disk: a
        doubled rest there put a purge under a steady stream of writes MAX_GIVE_WAY x
        MAX_REST_S behind every batch)."""
        return min(max(REST_FACTOR * took, 0.002), 0.5)

    def rest_after(self, took: float) -> float:
        floor = self.floor(took)
        recent = self.commits.quantile(QUANTILE, within=RECENT_S)
        if recent is not None and recent > SLOW_FACTOR * self.baseline:
            self.rest = min(max(2 * self.rest, 2 * floor, 0.01), MAX_REST_S)
            self.slowed += 1
        else:
            self.rest = max(floor, self.rest / 2)
        return self.rest


def _next_size(size: int, took: float, limit: int) -> int:
    """Grow or shrink the batch toward BATCH_TARGET_S per transaction (10..limit rows)."""
    if took <= 0:
        return min(limit, size * 2)
    scaled = int(size * BATCH_TARGET_S / took)
    return max(MIN_BATCH_ROWS, min(limit, scaled, size * 2))


class Batch(NamedTuple):
    """What one purge batch did."""

    #: rows it looked at: a batch that saw fewer than it was allowed to was the last
    seen: int
    rows: int
    images: int
    #: the last plate key it looked at, where the next batch starts (key sweeps)
    last: tuple[bytes, str] = (b"", "")


Step = Callable[[sqlite3.Connection, int, tuple[bytes, str]], Batch]


def purge_steps(klass: str, day: str, held_sql: str, held_args: tuple[str]) -> list[Step]:
    """What purging (klass, day) deletes, in order; each step is run in batches until one comes
    back short (``Purger._in_batches``; benchmarks/storage.py counts the WAL they write).

    Reads (and hits) go with their plate keys (migration 0010). Those are deleted apart, in
    their own order, a few pages per batch: deleted with each batch of reads, in the reads'
    order, every batch rewrote ~100 pages of the plate index. Keys first, so a purge cut short
    leaves its reads and the day stays due; once more after the reads, for the keys of reads
    that arrived for this day while it was being purged."""

    def images(c: sqlite3.Connection, n: int, after: tuple[bytes, str]) -> Batch:
        deleted = _delete_images(c, day, n, held_sql, held_args)
        return Batch(deleted, 0, deleted)

    def keys(c: sqlite3.Connection, n: int, after: tuple[bytes, str]) -> Batch:
        return _delete_plate_keys(c, klass, day, n, held_sql, held_args, after)

    def reads(c: sqlite3.Connection, n: int, after: tuple[bytes, str]) -> Batch:
        deleted_rows, deleted_images = _delete_reads(c, klass, day, n, held_sql, held_args)
        return Batch(deleted_rows, deleted_rows, deleted_images)

    return [images] if klass == IMAGE else [keys, reads, keys]


def _delete_plate_keys(
    conn: sqlite3.Connection,
    klass: str,
    day: str,
    batch: int,
    held_sql: str,
    held_args: tuple[str],
    after: tuple[bytes, str],
) -> Batch:
    """The next ``batch`` plate keys of ``day`` after ``after``, in key order; those of
    ``klass`` reads not under a hold, and those whose read is gone, are deleted."""
    found = conn.execute(
        "SELECT k.plate_index, k.read_id, r.id IS NULL OR (r.class = ? AND r.id NOT IN"
        f" ({held_sql})) FROM plate_keys k LEFT JOIN reads r ON r.id = k.read_id"
        " WHERE k.day = ? AND (k.plate_index, k.read_id) > (?, ?)"
        " ORDER BY k.plate_index, k.read_id LIMIT ?",
        (klass, *held_args, day, *after, batch),
    ).fetchall()
    gone = [(day, index, read_id) for index, read_id, purged in found if purged]
    conn.executemany(
        "DELETE FROM plate_keys WHERE day = ? AND plate_index = ? AND read_id = ?", gone
    )
    last = (bytes(found[-1][0]), str(found[-1][1])) if found else after
    return Batch(len(found), 0, 0, last)


def _delete_images(
    conn: sqlite3.Connection, day: str, batch: int, held_sql: str, held_args: tuple[str]
) -> int:
    cursor = conn.execute(
        "DELETE FROM images WHERE rowid IN (SELECT rowid FROM images WHERE class = ? AND day = ?"
        f" AND read_id NOT IN ({held_sql}) LIMIT ?)",
        (IMAGE, day, *held_args, batch),
    )
    return cursor.rowcount


def _delete_reads(
    conn: sqlite3.Connection,
    klass: str,
    day: str,
    batch: int,
    held_sql: str,
    held_args: tuple[str],
) -> tuple[int, int]:
    ids = [
        r[0]
        for r in conn.execute(
            f"SELECT id FROM reads WHERE class = ? AND day = ? AND id NOT IN ({held_sql}) LIMIT ?",
            (klass, day, *held_args, batch),
        ).fetchall()
    ]
    if not ids:
        return 0, 0
    marks = ",".join("?" * len(ids))
    conn.execute(
        f"DELETE FROM alert_events WHERE alert_id IN (SELECT id FROM alerts WHERE read_id IN"
        f" ({marks}))",
        ids,
    )
    conn.execute(f"DELETE FROM alerts WHERE read_id IN ({marks})", ids)
    images = conn.execute(f"DELETE FROM images WHERE read_id IN ({marks})", ids).rowcount
    rows = conn.execute(f"DELETE FROM reads WHERE id IN ({marks})", ids).rowcount
    return rows, images


__all__ = ["KeyShredded", "PurgeProof", "Purger", "purge_day", "verify_proof"]
