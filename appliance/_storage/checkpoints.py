"""WAL checkpoints off the single writer.

SQLite's default auto-checkpoint runs inside whichever commit crosses 1,000 WAL pages, on the
writing connection: that commit copies every page back into the database file and fsyncs it
(15-60 ms measured on the 2-core box), and every write queued behind it waits. A retention purge
dirties index pages all over the file, so it made those checkpoints several times more frequent
(benchmarks/storage.py, purge phase): that, not the deletes themselves, was most of the ingest
tail during a purge.

So the store's writer connection has auto-checkpoints off, and this class does the work:

1. a thread with its own connection runs ``PRAGMA wal_checkpoint(PASSIVE)`` once the WAL holds
   ``pages`` frames not yet copied back. A passive checkpoint never takes the write lock: the
   writer keeps committing while pages are copied and the database file is fsynced.
2. Frames committed while it ran are still only in the WAL, and SQLite restarts the WAL from its
   start only when every frame has been copied. So the thread then asks the writer for a short
   *tail pass* (:meth:`take_tail_pass`): a passive checkpoint on the writer's connection, between
   transactions and when no write is waiting (or after a few dozen busy commits), that copies
   just those few frames. The next write then starts the WAL over instead of growing it.

When litestream replicates the database it holds a read transaction on the WAL until it has
copied the frames, so passive checkpoints (ours, like SQLite's own) never go past what it has
shipped; litestream runs its own checkpoints as well. Nothing here truncates or restarts the WAL
by force (those modes wait for, and block, writers).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import struct
import threading
from pathlib import Path

logger = logging.getLogger(__name__)

#: WAL frames not yet copied back that start a checkpoint (SQLite's own default threshold)
DEFAULT_PAGES = 1000
#: how often the thread looks at the WAL
POLL_SECONDS = 0.1
#: at most this long between checkpoints while anything is waiting in the WAL
MAX_INTERVAL_SECONDS = 5.0
#: commits a wanted tail pass waits for an idle writer before it runs anyway
TAIL_DEFER_COMMITS = 32


def wal_frames(db_path: Path) -> tuple[int, int] | None:
    """(frames in the WAL, frames of those already copied back), or None if unknown.

    Read from the wal-index header in the ``-shm`` file (SQLite file format, "WAL-index
    format": ``mxFrame`` at byte 16, ``nBackfill`` at byte 96, native byte order); reading it
    takes no lock and costs one small read, so the thread can look often without checkpointing.
    """
    try:
        fd = os.open(f"{db_path}-shm", os.O_RDONLY)
    except OSError:
        return None
    try:
        header = os.pread(fd, 100, 0)
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(header) < 100:
        return None
    (max_frame,) = struct.unpack_from("=I", header, 16)
    (backfilled,) = struct.unpack_from("=I", header, 96)
    return max_frame, backfilled


def wal_backlog(db_path: Path) -> int | None:
    """WAL frames written but not yet copied into the database file, or None if unknown."""
    frames = wal_frames(db_path)
    return None if frames is None else max(0, frames[0] - frames[1])


class Checkpointer:
    """Checkpoints one WAL-mode database from its own thread and connection."""

    def __init__(self, db_path: Path, pages: int = DEFAULT_PAGES) -> None:
        self.db_path = db_path
        self.pages = pages
        self.checkpoints = 0
        self.tail_passes = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._tail_wanted = threading.Event()
        self._deferred = 0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"checkpoint-{self.db_path.name}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def take_tail_pass(self, *, idle: bool) -> bool:
        """Whether the writer should run a tail pass now (after a commit). Wanted after each
        background checkpoint; run when no write is waiting (``idle``), or after
        ``TAIL_DEFER_COMMITS`` busy commits, so a writer that is never idle (a burst, a catch-up)
        still lets the WAL start over instead of growing it without bound."""
        if not self._tail_wanted.is_set():
            return False
        if not idle and self._deferred < TAIL_DEFER_COMMITS:
            self._deferred += 1
            return False
        self._tail_wanted.clear()
        self._deferred = 0
        return True

    def tail_pass(self, writer: sqlite3.Connection) -> None:
        """On the writer's thread, between transactions: copy the last few frames back."""
        try:
            writer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            self.tail_passes += 1
        except sqlite3.Error as err:
            self._note(err)

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self.db_path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 5000")
        except sqlite3.Error as err:
            self._note(err)
            return
        try:
            waited = 0.0
            while not self._stop.wait(POLL_SECONDS):
                waited += POLL_SECONDS
                backlog = wal_backlog(self.db_path)
                due = backlog is None and waited >= MAX_INTERVAL_SECONDS
                due = due or (backlog is not None and backlog >= self.pages)
                due = due or (bool(backlog) and waited >= MAX_INTERVAL_SECONDS)
                if not due:
                    continue
                waited = 0.0
                try:
                    _, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as err:
                    self._note(err)
                    continue
                self.checkpoints += 1
                self.last_error = None
                # Frames committed while it ran (or held back by a reader) are left for the
                # writer's tail pass; the WAL starts over only once all are copied.
                if frames > 0 or copied < frames:
                    self._tail_wanted.set()
        finally:
            conn.close()

    def _note(self, err: sqlite3.Error) -> None:
        message = f"{type(err).__name__}: {err}"
        if message != self.last_error:
            logger.warning("Checkpoint of %s failed: %s", self.db_path.name, message)
        self.last_error = message
