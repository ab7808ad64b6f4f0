"""Encrypted images in append-only segment files beside the database, not in SQLite.

Measured (NOTES.md): 20 KB crops inline made litestream upload each byte about four times
(compaction, snapshots); appended to files and shipped once when closed, they cost once. One file
per retention class and UTC day (``image-2026-05-01-000.seg``), so purging a day deletes whole
files, and every image in a file is encrypted under that class and day's key, so even a copy of a
deleted file is unreadable once the key is destroyed.

Durability: images are appended by the store's single writer while it builds a transaction, and
the write is acknowledged once the transaction commits. A kill -9 loses nothing acknowledged:
the appended bytes are in the page cache, like the WAL frames of the commit. Against a power
cut, the rows themselves are only as durable as ``synchronous = NORMAL`` makes them (the WAL is
fsynced by checkpoints, not by each commit), and the segment files get the same treatment: every
file appended to is fsynced by the checkpoint thread before each checkpoint, when a segment is
closed, and when the store closes, never inside an ingest commit. An fsync per commit cost each
ingest write a trip to the disk, and the tail of those fsyncs, behind a purge's checkpoints, was
most of the ingest latency tail during a purge (issue 5, benchmarks/storage.py).

So a power cut can leave a row whose image bytes never reached the disk. :meth:`SegmentFiles.
drop_missing` finds those when the store opens (rows pointing past the end of their file, or
at a file a restored replica does not have), drops the image rows and reports them; the read
itself is kept. Bytes appended by a transaction that
then rolled back are unreferenced garbage (ciphertext) inside the file.

The ``segments`` table is the outbox the replication side ships from: a segment is ``open`` while
it can grow, ``closing`` once its day is over or it is full (no longer written), ``closed`` once
its size and SHA-256 are recorded (ready to ship), ``deleted`` after a purge.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._storage import Store

logger = logging.getLogger(__name__)

SEGMENT_DIR = "segments"
MAX_SEGMENT_BYTES = 256 * 1024 * 1024


@dataclass
class _Open:
    name: str
    fd: int
    size: int


@dataclass
class LostImages:
    """Images a segment file does not hold although rows point at them."""

    segment: str
    reason: str  # "cut short" (a power cut) | "missing" (a replica restored before shipping)
    images: list[tuple[str, str]]  # (read id, kind)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class SegmentFiles:
    """Appends to and reads from the segment files of one store."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._open: dict[tuple[str, str], _Open] = {}
        self._dirty: set[int] = set()
        self._lock = threading.Lock()

    # -- writing (the store's writer thread) -------------------------------------------------

    def append(
        self, conn: sqlite3.Connection, klass: str, day: str, blob: bytes
    ) -> tuple[str, int]:
        """Append ``blob`` to the open segment of (class, day); return (name, offset)."""
        with self._lock:
            seg = self._open.get((klass, day))
            if seg is not None and seg.size + len(blob) > MAX_SEGMENT_BYTES:
                self._close(conn, seg)
                del self._open[(klass, day)]
                seg = None
            if seg is None:
                seg = self._start(conn, klass, day)
            offset = seg.size
            written = os.write(seg.fd, blob)
            if written != len(blob):
                raise OSError(f"short write to segment {seg.name} ({written} of {len(blob)})")
            seg.size += written
            self._dirty.add(seg.fd)
            return seg.name, offset

    def _start(self, conn: sqlite3.Connection, klass: str, day: str) -> _Open:
        """Reopen the day's open segment (after a restart), or start the next one."""
        row = conn.execute(
            "SELECT name FROM segments WHERE class = ? AND day = ? AND state = 'open'"
            " ORDER BY name DESC LIMIT 1",
            (klass, day),
        ).fetchone()
        if row is not None:
            name = row[0]
        else:
            count = conn.execute(
                "SELECT count(*) FROM segments WHERE class = ? AND day = ?", (klass, day)
            ).fetchone()[0]
            name = f"{klass}-{day}-{count:03d}.seg"
            conn.execute(
                "INSERT INTO segments (name, class, day, state, created_at)"
                " VALUES (?, ?, ?, 'open', ?)",
                (name, klass, day, _now()),
            )
        path = self.folder / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        seg = _Open(name, fd, os.fstat(fd).st_size)
        self._open[(klass, day)] = seg
        if row is None:
            _fsync_dir(self.folder)
        return seg

    def sync(self) -> None:
        """fsync every segment appended to since the last call (the checkpoint thread, before
        each checkpoint). The lock is held only to duplicate the descriptors: the writer keeps
        appending while the disk catches up, and a segment closed meanwhile is still fsynced
        through its duplicate."""
        with self._lock:
            fds = [os.dup(fd) for fd in self._dirty]
            self._dirty.clear()
        try:
            for fd in fds:
                os.fsync(fd)
        finally:
            for fd in fds:
                os.close(fd)

    def drop_missing(self, conn: sqlite3.Connection) -> list[LostImages]:
        """Image rows of segments still written to (open or closing) whose bytes are not in
        their file: delete those rows and say which they were. A power cut leaves a file
        shorter than its rows (``cut short``); a restored replica lacks the files of segments
        that were not shipped yet (``missing``). Either way the images are not on this disk,
        and the next append would reuse those offsets, so the rows go; the reads stay. Runs on
        the writer when the store opens, before anything is appended."""
        lost: list[LostImages] = []
        for name, klass, day in conn.execute(
            "SELECT name, class, day FROM segments WHERE state IN ('open', 'closing')"
        ).fetchall():
            path = self.folder / name
            size = path.stat().st_size if path.exists() else 0
            rows = conn.execute(
                "SELECT read_id, kind FROM images WHERE class = ? AND day = ? AND segment = ?"
                " AND offset + length > ?",
                (klass, day, name, size),
            ).fetchall()
            if not rows:
                continue
            for read_id, kind in rows:
                conn.execute(
                    "DELETE FROM images WHERE read_id = ? AND kind = ?", (read_id, kind)
                )
            reason = "cut short" if path.exists() else "missing"
            lost.append(LostImages(name, reason, [(r, k) for r, k in rows]))
        return lost

    def close_before(self, conn: sqlite3.Connection, day: str) -> list[str]:
        """Close the open segments of days before ``day`` (their day is over): outbox them."""
        closed = []
        with self._lock:
            for key, seg in list(self._open.items()):
                if key[1] < day:
                    self._close(conn, seg)
                    del self._open[key]
                    closed.append(seg.name)
            # Open in the table but not in this process (written before a restart).
            for (name,) in conn.execute(
                "SELECT name FROM segments WHERE state = 'open' AND day < ?", (day,)
            ).fetchall():
                if name not in closed:
                    self._mark_closed(conn, name)
                    closed.append(name)
        return closed

    def close_opened_before(self, conn: sqlite3.Connection, cutoff: str) -> list[str]:
        """Close the open segments started at or before ``cutoff`` (ISO UTC, seconds) so they
        can ship: with replication on, today's images reach the replica within the roll period
        instead of at the end of the day. The next image of that class and day starts a new
        segment (``-001``, ``-002``...)."""
        closed = []
        with self._lock:
            for name, klass, day in conn.execute(
                "SELECT name, class, day FROM segments WHERE state = 'open' AND created_at <= ?",
                (cutoff,),
            ).fetchall():
                seg = self._open.get((klass, day))
                if seg is not None and seg.name == name:
                    self._close(conn, seg)
                    del self._open[(klass, day)]
                else:
                    self._mark_closed(conn, name)
                closed.append(name)
        return closed

    def _close(self, conn: sqlite3.Connection, seg: _Open) -> None:
        os.fsync(seg.fd)
        os.close(seg.fd)
        self._dirty.discard(seg.fd)
        self._mark_closed(conn, seg.name)

    def _mark_closed(self, conn: sqlite3.Connection, name: str) -> None:
        # 'closing': never appended to again. Hashing a day's file (up to a few hundred MB) is
        # left to :func:`finish_closing`, off the writer, so ingest never waits for it.
        conn.execute(
            "UPDATE segments SET state = 'closing', closed_at = ? WHERE name = ?",
            (_now(), name),
        )

    def digest(self, name: str) -> tuple[int, str]:
        """(size, SHA-256 hex) of a segment file."""
        digest = hashlib.sha256()
        size = 0
        with (self.folder / name).open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
                size += len(chunk)
        return size, digest.hexdigest()

    def delete(self, conn: sqlite3.Connection, klass: str, day: str) -> list[str]:
        """Mark every segment of (class, day) deleted (the purge of that day's images) and
        return their names; :meth:`unlink` removes the files, off the writer (unlinking a few
        hundred MB can take a while)."""
        removed = []
        with self._lock:
            seg = self._open.pop((klass, day), None)
            if seg is not None:
                self._dirty.discard(seg.fd)
                os.close(seg.fd)
            for (name,) in conn.execute(
                "SELECT name FROM segments WHERE class = ? AND day = ? AND state != 'deleted'",
                (klass, day),
            ).fetchall():
                conn.execute(
                    "UPDATE segments SET state = 'deleted', deleted_at = ? WHERE name = ?",
                    (_now(), name),
                )
                removed.append(name)
        return removed

    def unlink(self, names: list[str]) -> None:
        for name in names:
            (self.folder / name).unlink(missing_ok=True)
        if names:
            _fsync_dir(self.folder)

    def leftovers(self, conn: sqlite3.Connection) -> list[str]:
        """Files of segments marked deleted that are still on disk (a crash before unlink)."""
        return [
            name
            for (name,) in conn.execute(
                "SELECT name FROM segments WHERE state = 'deleted'"
            ).fetchall()
            if (self.folder / name).exists()
        ]

    def close_all(self) -> None:
        """fsync and close every file handle (the store is closing); segments stay open."""
        with self._lock:
            for seg in self._open.values():
                os.fsync(seg.fd)
                os.close(seg.fd)
            self._open.clear()
            self._dirty.clear()

    # -- reading (any thread) ----------------------------------------------------------------

    def read(self, name: str, offset: int, length: int) -> bytes:
        path = self.folder / name
        fd = os.open(path, os.O_RDONLY)
        try:
            data = os.pread(fd, length, offset)
        finally:
            os.close(fd)
        if len(data) != length:
            raise OSError(f"segment {name} is shorter than its index says (offset {offset})")
        return data


async def finish_closing(store: Store) -> list[str]:
    """Hash each segment closed for writing and mark it ``closed``: ready to be shipped."""
    segments = store.segments
    pending = await store.query(
        lambda c: c.execute("SELECT name FROM segments WHERE state = 'closing'").fetchall()
    )
    done = []
    for (name,) in pending:
        try:
            size, digest = await asyncio.to_thread(segments.digest, name)
        except FileNotFoundError:
            continue  # purged meanwhile
        values = (size, digest, name)

        def mark(c: sqlite3.Connection, values: tuple[int, str, str] = values) -> None:
            c.execute(
                "UPDATE segments SET state = 'closed', size = ?, sha256 = ?"
                " WHERE name = ? AND state = 'closing'",
                values,
            )

        await store.write(mark)
        done.append(name)
    return done


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
