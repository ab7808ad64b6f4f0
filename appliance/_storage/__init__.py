"""The only code that talks to SQLite.

One WAL-mode database, one writer: every write goes through a queue to a single writer task that
commits batches in one transaction on its own thread and connection, and a caller's ``await``
returns only after its write is committed (that is the acknowledgement graceful shutdown keeps).
Reads use a second connection on another thread, so the console never waits behind a batch.
Sensitive values are encrypted by :class:`~appliance._crypto.FieldCipher` before they reach
SQLite; nothing in the file, its WAL or a litestream replica holds a plate in clear.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from .._crypto import FieldCipher
from .._lifecycle.bind import bind_keyring
from .._lifecycle.records import ReadRecords
from .._lifecycle.segments import SEGMENT_DIR, LostImages, SegmentFiles
from ..models import PlateRead
from .alerting import AlertRecords, HotlistRecords
from .audit import AuditChain, AuditKeyError, AuditWriteError, WallClock, signing_key_path
from .bolos import BoloRecords
from .checkpoints import SPANS_KEPT, Checkpointer, Span
from .commit_times import CommitTimes
from .identity import IdentityRecords
from .plate_keys import PLATE_READS, plate_reads_args

logger = logging.getLogger(__name__)

T = TypeVar("T")
_BATCH = 256
_STOP = object()


class WriteYielded(Exception):
    """A background write stopped part-way so that a write queued after it could go first.

    Nothing of it was committed; run it again (smaller) later."""

    def __init__(self, took: float) -> None:
        super().__init__(f"background write gave way after {took * 1000:.2f} ms")
        #: how long it ran before it stopped, in seconds
        self.took = took


class WriterConnection(sqlite3.Connection):
    """The writer's connection. While a yielding background write runs, ``give_way`` is the
    event set by a write queued behind it, and each statement the op starts checks it first.

    ``Connection.interrupt()`` stops a statement that is running, but SQLite forgets an interrupt
    that arrives between two statements (it resets the flag when the next one starts), and a
    purge batch is several statements with Python in between: such a write waited for the whole
    batch and its commit (benchmarks/purge_after.py sets each slow write beside what it waited
    for)."""

    give_way: threading.Event | None = None

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        self.check_give_way()
        return super().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        self.check_give_way()
        return super().executemany(sql, parameters)

    def check_give_way(self) -> None:
        """Stop the yielding write that runs (rolled back, ``WriteYielded``) if one is queued."""
        if self.give_way is not None and self.give_way.is_set():
            raise _GaveWay


class _GaveWay(Exception):
    """A yielding background write saw a write queued behind it between two statements."""


@dataclass(frozen=True)
class User:
    id: int
    username: str
    password_hash: str
    role: str
    organization: str
    failed_logins: int
    locked_until: datetime | None


def migrations() -> list[tuple[int, str]]:
    """(version, sql) for every file in migrations/, in order."""
    folder = resources.files(__package__).joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text()))
    return sorted(found)


def _connect(
    path: Path, factory: type[sqlite3.Connection] = sqlite3.Connection
) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, factory=factory)
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA foreign_keys = ON")
    # Deleted pages are zeroed so old ciphertext does not linger in free pages and snapshots.
    conn.execute("PRAGMA secure_delete = ON")
    conn.execute("PRAGMA synchronous = NORMAL")
    # Temporary b-trees and statement journals (a purge batch's DELETE ... IN (SELECT ...)
    # makes both) stay in memory: as files, each was created, unlinked and evicted on close by
    # the writer thread, which the kernel stacks sampled during a purge showed as the writer's
    # time (issue 5). It also means no temporary file ever holds the box's data.
    conn.execute("PRAGMA temp_store = MEMORY")
    return conn


def migrate(conn: sqlite3.Connection) -> int:
    """Apply every migration not yet applied, each in one transaction; return the schema version.

    Applied migrations are recorded one by one in ``schema_migrations``, not only as the highest
    number in ``user_version``: work developed in parallel can land a lower number after a
    higher one, and a high-water mark would skip it for ever.
    """
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations"
        " (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    if not applied and version:
        # A store from before this table: everything up to its user_version ran.
        applied = {number for number, _ in migrations() if number <= version}
        conn.executemany(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?, 'before tracking')",
            [(number,) for number in sorted(applied)],
        )
    for number, sql in migrations():
        if number in applied:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in sql.split(";\n"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                (number, datetime.now(UTC).isoformat(timespec="seconds")),
            )
            version = max(version, number)
            conn.execute(f"PRAGMA user_version = {version:d}")
            conn.execute("COMMIT")
        except Exception:
            conn.execute("ROLLBACK")
            raise
        logger.info("Database migrated: applied schema migration %d", number)
    return version


class Store:
    """Encrypted storage of reads, crops, users and events."""

    def __init__(self, path: Path, cipher: FieldCipher) -> None:
        self.path = path
        self.cipher = cipher
        self._write_conn: WriterConnection | None = None
        self._read_conn: sqlite3.Connection | None = None
        self._writer_thread = ThreadPoolExecutor(1, thread_name_prefix="store-writer")
        self._reader_thread = ThreadPoolExecutor(1, thread_name_prefix="store-reader")
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self.writes_committed = 0
        # A yielding background write gives way to a write queued after it was picked: it
        # does not start once ``_give_way`` is set, and is stopped (sqlite3_interrupt) while
        # ``_interruptible``; the lock keeps an interrupt off its COMMIT and ROLLBACK.
        self._give_way = threading.Event()
        self._interruptible = False
        self._interrupt_lock = threading.Lock()
        #: background writes that gave way to a write queued after them
        self.background_yields = 0
        #: when the latest background writes held the writer (benchmarks/purge_after.py)
        self.background_spans: collections.deque[Span] = collections.deque(maxlen=SPANS_KEPT)
        # How long ingest commits take now: a purge backs off when they slow (issue 5).
        self.commit_times = CommitTimes()
        self.alerts = AlertRecords(self)
        self.hotlists = HotlistRecords(self)
        self.bolos = BoloRecords(self)
        self.identity = IdentityRecords(self)
        # Reads and images by retention class and day, images in segment files (issue 5).
        self.read_records = ReadRecords(self)
        self.segments = SegmentFiles(path.parent / SEGMENT_DIR)
        # WAL checkpoints run on their own thread, not inside an ingest commit (issue 5).
        self.checkpointer = Checkpointer(
            path, lambda: self.writes_committed, before=self.segments.sync
        )
        #: images found missing from their segment files when the store opened
        self.images_lost: list[LostImages] = []

    @classmethod
    async def open(cls, path: Path, cipher: FieldCipher) -> Store:
        store = cls(path, cipher)
        await store._start()
        return store

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)

        def setup() -> None:
            conn = _connect(self.path, WriterConnection)
            assert isinstance(conn, WriterConnection)
            conn.execute("PRAGMA journal_mode = WAL")
            # The writer never checkpoints inside a commit: see _storage/checkpoints.py.
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            migrate(conn)
            try:
                # Data keys live in keys.db beside the database (crypto-shredding, issue 5).
                bind_keyring(conn, self.path, self.cipher)
            except Exception:
                conn.close()
                raise
            # Before anything is appended: rows whose image never reached the disk.
            conn.execute("BEGIN IMMEDIATE")
            self.images_lost = self.segments.drop_missing(conn)
            conn.execute("COMMIT")
            self._write_conn = conn

        await loop.run_in_executor(self._writer_thread, setup)
        self._read_conn = await loop.run_in_executor(
            self._reader_thread, lambda: _connect(self.path)
        )
        self._writer = asyncio.create_task(self._write_loop(), name="store-writer")
        self.checkpointer.start()
        if self.images_lost:
            await self._report_images_lost()

    async def _report_images_lost(self) -> None:
        for lost in self.images_lost:
            reads = sorted({read_id for read_id, _ in lost.images})
            why = (
                "a power cut before their checkpoint"
                if lost.reason == "cut short"
                else "the file is not here: a replica restored before the segment shipped?"
            )
            logger.warning(
                "Store %s: %d image(s) of %d read(s) are not in segment %s (%s, %s); the"
                " reads are kept without them",
                self.path,
                len(lost.images),
                len(reads),
                lost.segment,
                lost.reason,
                why,
            )
            try:
                await self.record_event(
                    "storage.images_lost",
                    "system",
                    {
                        "segment": lost.segment,
                        "reason": lost.reason,
                        "images": len(lost.images),
                        "reads": reads[:1000],
                    },
                )
            except AuditWriteError as err:  # the warning above still says it; reading goes on
                logger.error("Store %s: could not audit the lost images: %s", self.path, err)

    async def close(self) -> None:
        """Commit everything queued, then close. Acknowledged writes are never lost."""
        if self._writer is not None:
            await self._queue.put(_STOP)
            await self._writer
            self._writer = None
        await asyncio.to_thread(self.checkpointer.stop)
        loop = asyncio.get_running_loop()
        for conn, pool in (
            (self._write_conn, self._writer_thread),
            (self._read_conn, self._reader_thread),
        ):
            if conn is not None:
                await loop.run_in_executor(pool, conn.close)
        self._writer_thread.shutdown()
        self._reader_thread.shutdown()
        self.segments.close_all()
        self.cipher.detach()

    # -- the single writer -------------------------------------------------------------------

    async def write(
        self,
        op: Callable[[sqlite3.Connection], T],
        *,
        background: bool = False,
        yields: bool = False,
    ) -> T:
        """Run ``op`` on the writer; return its result once committed.

        ``background`` (a purge batch): the op runs alone in its own transaction, and only when
        no other write is waiting, so a write queued at the same time never waits for it.
        ``yields`` (background only): a write queued while the op runs stops it part-way
        (:class:`WriteYielded` is raised here, nothing of the op committed) and goes first, so
        it waits for SQLite to notice, not for the op to finish.
        """
        if self._writer is None:
            raise RuntimeError("store is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        await self._queue.put((op, future, background, yields and background))
        if not background:
            self._give_way.set()
            with self._interrupt_lock:
                if self._interruptible and self._write_conn is not None:
                    self._write_conn.interrupt()
        return await future

    async def _write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = False
        waiting: collections.deque[tuple[Callable[[sqlite3.Connection], Any], Any]]
        waiting = collections.deque()
        deferred: collections.deque[tuple[Callable[[sqlite3.Connection], Any], Any, bool]]
        deferred = collections.deque()
        while True:
            if not waiting and not deferred:
                if stopping:
                    break
                items = [await self._queue.get()]
            else:
                items = []
            while not self._queue.empty():
                items.append(self._queue.get_nowait())
            for item in items:
                if item is _STOP:
                    stopping = True
                elif item[2]:
                    deferred.append((item[0], item[1], item[3]))
                else:
                    waiting.append((item[0], item[1]))
            if waiting:
                batch = [waiting.popleft() for _ in range(min(_BATCH, len(waiting)))]
                started = time.monotonic()
                results = await loop.run_in_executor(self._writer_thread, self._commit, batch)
                self.commit_times.add(time.monotonic() - started)
            elif deferred:
                op, future, yields = deferred.popleft()
                batch = [(op, future)]
                self._give_way.clear()  # only writes queued from now on stop it
                began = time.perf_counter()
                results = [
                    await loop.run_in_executor(
                        self._writer_thread, self._commit_background, op, yields
                    )
                ]
                self.background_spans.append((began, time.perf_counter()))
            else:
                continue
            for (_, future), (ok, value) in zip(batch, results, strict=True):
                if future.done():
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
            idle = not waiting and self._queue.empty()
            if self.checkpointer.take_tail_pass(idle=idle):
                conn = self._write_conn
                assert conn is not None
                await loop.run_in_executor(self._writer_thread, self.checkpointer.tail_pass, conn)

    def _commit(
        self, batch: list[tuple[Callable[[sqlite3.Connection], Any], Any]]
    ) -> list[tuple[bool, Any]]:
        conn = self._write_conn
        assert conn is not None
        results: list[tuple[bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for op, _ in batch:
                # A savepoint per operation: one bad write fails alone, the batch still commits.
                conn.execute("SAVEPOINT op")
                try:
                    results.append((True, op(conn)))
                    conn.execute("RELEASE op")
                except Exception as err:
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    results.append((False, err))
            # No fsync here: segment files reach the disk with the checkpoints, like the WAL
            # (see _lifecycle/segments.py).
            conn.execute("COMMIT")
        except (sqlite3.Error, OSError) as err:
            # The commit itself failed (disk full, I/O error): nothing in the batch is stored,
            # so nobody is told their write was.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            logger.error("Store %s: commit failed: %s", self.path, err)
            return [(False, err)] * len(batch)
        self.writes_committed += sum(1 for ok, _ in results if ok)
        return results

    def _commit_background(
        self, op: Callable[[sqlite3.Connection], Any], yields: bool
    ) -> tuple[bool, Any]:
        """One background op in its own transaction; with ``yields``, a write queued meanwhile
        interrupts it (``Store.write``) and it is rolled back whole."""
        conn = self._write_conn
        assert conn is not None
        started = time.perf_counter()
        with self._interrupt_lock:
            self._interruptible = yields
        # Every statement checks for a queued write first (WriterConnection), BEGIN included:
        # a write queued while this thread was starting goes first too.
        conn.give_way = self._give_way if yields else None
        failed: Exception | None = None
        try:
            conn.execute("BEGIN IMMEDIATE")
            value = op(conn)
            # A write queued after the last statement goes first too, not after the commit.
            conn.check_give_way()
        except Exception as err:
            failed = err
        finally:
            conn.give_way = None
            with self._interrupt_lock:
                self._interruptible = False
        if failed is not None:
            self._roll_back(conn)
            interrupted = getattr(failed, "sqlite_errorcode", None) == sqlite3.SQLITE_INTERRUPT
            if interrupted or isinstance(failed, _GaveWay):
                self.background_yields += 1
                return False, WriteYielded(time.perf_counter() - started)
            return False, failed
        try:
            conn.execute("COMMIT")
        except (sqlite3.Error, OSError) as err:
            self._roll_back(conn)
            logger.error("Store %s: commit failed: %s", self.path, err)
            return False, err
        self.writes_committed += 1
        return True, value

    def _roll_back(self, conn: sqlite3.Connection) -> None:
        """Undo a background op's open transaction; a failure to is logged, not raised, so the
        writer goes on (the next BEGIN then says what is wrong)."""
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error as err:
            logger.error("Store %s: rollback failed: %s", self.path, err)

    async def query(self, op: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._read_conn
        if conn is None:
            raise RuntimeError("store is closed")
        return await asyncio.get_running_loop().run_in_executor(
            self._reader_thread, lambda: op(conn)
        )

    # -- reads ------------------------------------------------------------------------------

    async def add_read(self, read: PlateRead) -> None:
        """Store a read and its images; returns once committed.

        Encrypted under its day's ``read`` and ``image`` keys, images in segment files
        (:mod:`appliance._lifecycle.records`).
        """
        await self.read_records.add(read)

    async def promote_to_hit(self, read_id: str) -> bool:
        """A read matched a hot list: keep it (and its images) under its day's ``hit`` key, so
        the purge of non-hit reads never takes it."""
        return await self.read_records.promote_to_hit(read_id)

    async def recent_reads(self, limit: int = 50) -> list[PlateRead]:
        """The newest reads, newest first, decrypted (without crops)."""
        rows = await self.query(
            lambda c: c.execute(
                "SELECT id, camera, seen_at, payload FROM reads ORDER BY seen_at DESC LIMIT ?",
                (limit,),
            ).fetchall()
        )
        return [self._decode_read(*row) for row in rows]

    async def find_plate(self, plate: str, limit: int = 100) -> list[PlateRead]:
        """Reads of exactly this plate (normalized), newest first."""
        args = plate_reads_args(self.cipher.plate_index(plate))
        rows = await self.query(
            lambda c: c.execute(
                f"{PLATE_READS} SELECT id, camera, seen_at, payload FROM reads"
                " WHERE id IN (SELECT id FROM plate_reads) ORDER BY seen_at DESC LIMIT ?",
                (*args, limit),
            ).fetchall()
        )
        return [self._decode_read(*row) for row in rows]

    async def get_crop(self, read_id: str) -> bytes | None:
        """The plate crop of a read, decrypted; None if it has none."""
        return await self.get_image(read_id, "crop")

    async def get_image(self, read_id: str, kind: str) -> bytes | None:
        """A read's ``crop`` (the plate) or ``vehicle`` image, decrypted; None if absent."""
        return await self.read_records.get_image(read_id, kind)

    async def reads_by_id(self, ids: list[str]) -> dict[str, PlateRead]:
        """The reads with these ids (decrypted, without crops)."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = await self.query(
            lambda c: c.execute(
                f"SELECT id, camera, seen_at, payload FROM reads WHERE id IN ({marks})", ids
            ).fetchall()
        )
        return {row[0]: self._decode_read(*row) for row in rows}

    async def reads_between(self, start: datetime, end: datetime) -> list[PlateRead]:
        """Every read first seen in [start, end), decrypted; for partial-plate searches."""
        rows = await self.query(
            lambda c: c.execute(
                "SELECT id, camera, seen_at, payload FROM reads WHERE seen_at >= ? AND seen_at < ?"
                " ORDER BY seen_at",
                (_utc(start), _utc(end)),
            ).fetchall()
        )
        return [self._decode_read(*row) for row in rows]

    async def count_reads(self) -> int:
        return int(
            await self.query(lambda c: c.execute("SELECT count(*) FROM reads").fetchone()[0])
        )

    def _decode_read(self, read_id: str, camera: str, seen_at: str, payload: bytes) -> PlateRead:
        return self.read_records.decode(read_id, camera, seen_at, payload)

    # -- users ------------------------------------------------------------------------------

    async def user_count(self) -> int:
        return int(
            await self.query(lambda c: c.execute("SELECT count(*) FROM users").fetchone()[0])
        )

    async def create_user(
        self, username: str, password_hash: str, role: str, organization: str
    ) -> None:
        now = _utc(datetime.now(UTC))
        await self.write(
            lambda c: c.execute(
                "INSERT INTO users (username, password_hash, role, organization, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (username, password_hash, role, organization, now),
            )
        )

    async def get_user(self, username: str) -> User | None:
        row = await self.query(
            lambda c: c.execute(
                "SELECT id, username, password_hash, role, organization, failed_logins,"
                " locked_until FROM users WHERE username = ?",
                (username,),
            ).fetchone()
        )
        if row is None:
            return None
        user_id, name, password_hash, role, organization, failed, locked = row
        return User(
            id=user_id,
            username=name,
            password_hash=password_hash,
            role=role,
            organization=organization,
            failed_logins=failed,
            locked_until=datetime.fromisoformat(locked) if locked else None,
        )

    async def update_login_state(
        self,
        username: str,
        *,
        failed_logins: int,
        locked_until: datetime | None,
        password_hash: str | None = None,
    ) -> None:
        locked = _utc(locked_until) if locked_until else None

        def op(c: sqlite3.Connection) -> None:
            c.execute(
                "UPDATE users SET failed_logins = ?, locked_until = ? WHERE username = ?",
                (failed_logins, locked, username),
            )
            if password_hash is not None:
                c.execute(
                    "UPDATE users SET password_hash = ? WHERE username = ?",
                    (password_hash, username),
                )

        await self.write(op)

    # -- events -----------------------------------------------------------------------------

    #: the audit chain's writer side; made on first use, used only on the writer thread
    _audit: AuditChain | None = None
    #: the appliance's clock (set by Appliance.open_store), so event times and FakeClock-driven
    #: tests agree; None: the system clock
    clock: WallClock | None = None
    #: why the last append to the audit trail failed (C-5: alert on audit processing failure);
    #: None again once an append succeeds
    audit_failure: str | None = None

    async def record_event(self, kind: str, actor: str, detail: dict[str, Any]) -> None:
        """Append an event (login, logout, config change...) to the hash-chained, signed audit
        trail (see :mod:`.audit`); details are encrypted. Raises :class:`AuditWriteError` when
        the append fails (disk full...): callers must then refuse what they were auditing."""
        at = _utc(self.clock.now() if self.clock is not None else datetime.now(UTC))
        blob = self.cipher.encrypt(json.dumps(detail).encode(), f"event|{at}|{kind}".encode())
        if self._audit is None:
            self._audit = AuditChain(signing_key_path(self.path))
        chain = self._audit
        # The chain's head is read and replaced inside the writer's transaction: no lock needed.
        try:
            await self.write(lambda c: chain.append(c, at, kind, actor, blob))
        except Exception as err:
            self.audit_failure = f"{type(err).__name__}: {err}"
            logger.error("Audit trail: could not record %s event: %s", kind, err)
            if isinstance(err, AuditKeyError):
                raise  # a key problem says itself what to fix
            raise AuditWriteError(f"the audit trail could not record {kind!r}: {err}") from err
        self.audit_failure = None

    async def events(
        self,
        limit: int = 100,
        *,
        kind: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        oldest_first: bool = False,
    ) -> list[dict[str, Any]]:
        """Audit events, decrypted: newest first, optionally of one kind in [start, end)."""
        where, args = [], []
        if kind is not None:
            where.append("kind = ?")
            args.append(kind)
        if start is not None:
            where.append("at >= ?")
            args.append(_utc(start))
        if end is not None:
            where.append("at < ?")
            args.append(_utc(end))
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        order = "ASC" if oldest_first else "DESC"
        rows = await self.query(
            lambda c: c.execute(
                f"SELECT id, at, kind, actor, detail FROM events{clause} ORDER BY id {order}"
                " LIMIT ?",
                (*args, limit),
            ).fetchall()
        )
        return [
            {
                "id": event_id,
                "at": at,
                "kind": kind,
                "actor": actor,
                "detail": json.loads(
                    self.cipher.decrypt(bytes(blob), f"event|{at}|{kind}".encode())
                ),
            }
            for event_id, at, kind, actor, blob in rows
        ]

    async def count_reads_before(self, cutoff: datetime) -> int:
        """Reads first seen before ``cutoff`` (what a retention audit asks about)."""
        return int(
            await self.query(
                lambda c: c.execute(
                    "SELECT count(*) FROM reads WHERE seen_at < ?", (_utc(cutoff),)
                ).fetchone()[0]
            )
        )

def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _read_ad(read_id: str, camera: str, seen_at: str) -> bytes:
    return f"read|{read_id}|{camera}|{seen_at}".encode()
