"""WAL checkpoints off the single writer.

SQLite's default auto-checkpoint runs inside whichever commit crosses 1,000 WAL pages, on the
writing connection: that commit copies every page back into the database file and fsyncs it
(15-60 ms measured on the 2-core box), and every write queued behind it waits. A retention purge
dirties index pages all over the file, so it made those checkpoints several times more frequent
(benchmarks/storage.py, purge phase): that, not the deletes themselves, was most of the ingest
tail during a purge.

So the store's writer connection has auto-checkpoints off, and this class does the work:

1. a thread with its own connection runs ``PRAGMA wal_checkpoint(PASSIVE)`` every
   ``DEFAULT_COMMITS`` commits (about SQLite's 1,000 pages) or 30 s after any commit. A passive
   checkpoint never takes the write lock: the writer keeps committing while pages are copied
   and the database file is fsynced.
2. Frames committed while it ran are still only in the WAL, and SQLite restarts the WAL from its
   start only when every frame has been copied. So the thread checkpoints again, a few times,
   until a pass finds nothing new; the writer's next transaction then starts the WAL over. Only
   when the writer never lets it catch up, and the WAL has grown past ``TAIL_MIN_FRAMES``, does
   the thread ask the writer for a *tail pass* (:meth:`take_tail_pass`): a passive checkpoint
   on the writer's connection, between transactions and when no write is waiting (or after a
   few dozen busy commits). A tail pass costs the writer an fsync (~10 ms idle, several times
   that behind a purge's writes), which is why it is the fallback: under steady ingest the
   thread never quite catches up, and a tail pass after every checkpoint put one fsync per
   ~250 commits into the ingest tail (benchmarks/storage.py, purge phase). A WAL of a few
   thousand frames costs nothing but disk space until it starts over.
3. Before each checkpoint the thread fsyncs the segment files appended to since the last one
   (``before``): images reach the disk with the rows' checkpoint, not inside each commit (see
   _lifecycle/segments.py).

With litestream replicating the database, these are the same passive checkpoints SQLite's
auto-checkpoint ran before (litestream runs its own as well); nothing here truncates or restarts
the WAL by force (those modes wait for, and block, writers). Tested with the replication kill
drills (tests/test_replication.py).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)

#: commits since the last checkpoint that start the next one (a read commits ~3-6 WAL pages,
#: so about SQLite's own 1,000-page threshold)
DEFAULT_COMMITS = 250
#: how often the thread looks at the commit count
POLL_SECONDS = 0.1
#: at most this long between checkpoints while anything was committed
MAX_INTERVAL_SECONDS = 30.0
#: commits a wanted tail pass waits for an idle writer before it runs anyway
TAIL_DEFER_COMMITS = 32
#: passive checkpoints the thread runs in a row to catch up with the writer
CATCH_UP_PASSES = 4
#: WAL frames (pages, ~4 KB) left behind by the thread before the writer runs a tail pass
#: (~16 MB of WAL)
TAIL_MIN_FRAMES = 4000
#: how many of the latest tail passes and checkpoints keep their start and end times
SPANS_KEPT = 4096

#: (start, end) in ``time.perf_counter()`` seconds
Span = tuple[float, float]


class Checkpointer:
    """Checkpoints one WAL-mode database from its own thread and connection.

    It decides when from the store's commit count, never by opening the ``-shm`` file: closing
    any descriptor of a file drops every POSIX lock the process holds on it, so another process
    (litestream) would find the wal-index unowned, reset it under our mapping, and the box would
    die of SIGBUS (seen in the replication kill drills).
    """

    def __init__(
        self,
        db_path: Path,
        commits: Callable[[], int],
        every: int = DEFAULT_COMMITS,
        *,
        before: Callable[[], None] | None = None,
        tail_min_frames: int = TAIL_MIN_FRAMES,
    ) -> None:
        self.db_path = db_path
        self.every = every
        self.tail_min_frames = tail_min_frames
        self._before = before
        #: checkpoints finished; ``started`` counts those begun, and ``finished_through`` is the
        #: number (in ``started``'s count) of the last one that finished
        self.checkpoints = 0
        self.started = 0
        self.finished_through = 0
        self.tail_passes = 0
        #: when the latest tail passes (on the writer) and the thread's checkpoints ran, so a
        #: benchmark can tell which slow writes waited behind one (benchmarks/purge_after.py)
        self.tail_pass_spans: deque[Span] = deque(maxlen=SPANS_KEPT)
        self.checkpoint_spans: deque[Span] = deque(maxlen=SPANS_KEPT)
        self.last_error: str | None = None
        self._commits = commits
        self._stop = threading.Event()
        self._now = threading.Event()
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

    def request(self) -> int:
        """Checkpoint at the next look, whatever the count; returns the request's ticket.

        The request is served once ``finished_through`` reaches the ticket: that checkpoint
        began its passes after the request. A checkpoint already running when it was made does
        not count: it began while frames were still being committed, so it may have left the
        WAL unable to start over (a test that waited for "any next checkpoint" failed on a slow
        disk for that reason)."""
        ticket = self.started + 1
        self._now.set()
        return ticket

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
        started = time.perf_counter()
        try:
            busy, frames, copied = writer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            self.tail_passes += 1
        except sqlite3.Error as err:
            self._note(err)
            return
        finally:
            self.tail_pass_spans.append((started, time.perf_counter()))
        if busy or copied < frames:
            # The thread was mid-checkpoint (or a reader held frames back): try again after
            # the next commit, or the WAL never starts over.
            self._tail_wanted.set()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self.db_path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 5000")
        except sqlite3.Error as err:
            self._note(err)
            return
        try:
            done_at, last = self._commits(), time.monotonic()
            while not self._stop.wait(POLL_SECONDS):
                pending = self._commits() - done_at
                due = pending >= self.every or self._now.is_set()
                due = due or (pending > 0 and time.monotonic() - last >= MAX_INTERVAL_SECONDS)
                if not due:
                    continue
                self._now.clear()
                self.started += 1
                number = self.started
                done_at, last = self._commits(), time.monotonic()
                began = time.perf_counter()
                try:
                    if self._before is not None:
                        self._before()
                    caught_up, frames = self._catch_up(conn)
                except (sqlite3.Error, OSError) as err:
                    self._note(err)
                    continue
                finally:
                    self.checkpoint_spans.append((began, time.perf_counter()))
                self.checkpoints += 1
                self.finished_through = number
                self.last_error = None
                if self.wants_tail_pass(caught_up, frames):
                    self._tail_wanted.set()
        finally:
            conn.close()

    def wants_tail_pass(self, caught_up: bool, frames: int) -> bool:
        """After a checkpoint: frames kept coming while it ran, and so many are in the WAL now
        that the writer should copy the last few between two transactions, so the WAL can
        start over. Below the bound the next checkpoint tries again, off the writer."""
        return not caught_up and frames >= self.tail_min_frames

    @staticmethod
    def _catch_up(conn: sqlite3.Connection) -> tuple[bool, int]:
        """Passive checkpoints until one finds nothing new to copy, at most
        ``CATCH_UP_PASSES``; returns (caught up, frames in the WAL). The first copies the bulk;
        the next ones copy what was committed meanwhile, a few frames each. Once every frame is
        copied, the writer's next transaction starts the WAL over by itself, and no tail pass
        is needed."""
        previous = -1
        frames = 0
        for _ in range(CATCH_UP_PASSES):
            _, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if frames == copied and frames == previous:
                return True, frames
            previous = frames
        return False, frames

    def _note(self, err: sqlite3.Error | OSError) -> None:
        message = f"{type(err).__name__}: {err}"
        if message != self.last_error:
            logger.warning("Checkpoint of %s failed: %s", self.db_path.name, message)
        self.last_error = message
