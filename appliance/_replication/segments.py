"""Shipping closed image segment files to the replica target, once each (the outbox).

The store's ``segments`` table (issue 5, part A) is the outbox: a segment is ``closed`` (size
and SHA-256 recorded) once its day is over or it is full, and ``shipped_at`` is set here after
the target holds it. Each file is checked against its recorded SHA-256 before it leaves, so a
corrupt file is reported, not replicated. A segment open longer than ``segment_roll`` (1 h) is
closed and shipped (:meth:`SegmentShipper.roll`), so a restore lacks at most the last hour or so
of images; the next image starts the day's next segment. Failures are retried on the
next pass and shown beside the databases' replication state; the box keeps storing reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp

from .._lifecycle.segments import finish_closing
from .process import ReplicaStatus
from .segment_store import SegmentStore

if TYPE_CHECKING:
    from .._storage import Store

logger = logging.getLogger(__name__)

PASS_LIMIT = 50


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class SegmentShipper:
    store: Store
    folder: Path
    target: SegmentStore
    interval: float = 5.0
    #: open segments older than this are closed and shipped (None: only at day end / when full)
    roll_seconds: float | None = 3600.0
    status: ReplicaStatus = field(init=False)
    _task: asyncio.Task[None] | None = None
    _failing: bool = False

    def __post_init__(self) -> None:
        self.status = ReplicaStatus(database="segments", target=self.target.url)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="segment-shipper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        with contextlib.suppress(RuntimeError, TimeoutError):  # RuntimeError: store closed
            await asyncio.wait_for(self.ship_pending(), 10)  # what closed just before stopping
        self.status.state = "stopped"

    async def _loop(self) -> None:
        while True:
            try:
                await self.roll()
                await self.ship_pending()
            except RuntimeError:  # the store closed under us: the box is stopping
                return
            await asyncio.sleep(self.interval)

    async def roll(self) -> list[str]:
        """Close the segments open longer than ``roll_seconds`` and record their SHA-256, so
        the next pass ships them: today's images reach the replica within about
        ``roll_seconds`` + ``interval``, not only when their day ends."""
        if self.roll_seconds is None:
            return []
        store = self.store
        cutoff = (datetime.now(UTC) - timedelta(seconds=self.roll_seconds)).isoformat(
            timespec="seconds"
        )
        closed = await store.write(lambda c: store.segments.close_opened_before(c, cutoff))
        if closed:
            await finish_closing(store)
        return closed

    async def pending(self) -> list[tuple[str, int, str]]:
        def rows(c: sqlite3.Connection) -> list[tuple[str, int, str]]:
            return [(r[0], int(r[1]), str(r[2])) for r in c.execute(
                "SELECT name, size, sha256 FROM segments WHERE state = 'closed'"
                " AND shipped_at IS NULL ORDER BY closed_at, name LIMIT ?", (PASS_LIMIT,))]
        return await self.store.query(rows)

    async def _remove_purged(self) -> None:
        """Take purged segments off the target too. Their day key is destroyed, so a copy
        left there would be unreadable anyway; removing it is hygiene, not the protection.
        ``shipped_at`` goes back to NULL once the target no longer holds the file."""
        def rows(c: sqlite3.Connection) -> list[str]:
            return [r[0] for r in c.execute(
                "SELECT name FROM segments WHERE state = 'deleted' AND shipped_at IS NOT NULL"
                " LIMIT ?", (PASS_LIMIT,))]

        for name in await self.store.query(rows):
            await self.target.delete(name)

            def mark(c: sqlite3.Connection, n: str = name) -> None:
                c.execute("UPDATE segments SET shipped_at = NULL WHERE name = ?"
                          " AND state = 'deleted'", (n,))

            await self.store.write(mark)

    async def ship_pending(self) -> int:
        """Ship every closed, unshipped segment; how many went. Errors are recorded, not raised."""
        shipped = 0
        try:
            batch = await self.pending()
            for name, size, sha256 in batch:
                path = self.folder / name
                actual = await asyncio.to_thread(_sha256, path)
                if actual != sha256:
                    raise OSError(f"segment {name} does not match its recorded SHA-256: "
                                  "not shipped (the file on the box is damaged)")
                await self.target.put(name, path, size, sha256)
                at = datetime.now(UTC).isoformat(timespec="seconds")

                def mark(c: sqlite3.Connection, n: str = name, at: str = at) -> None:
                    c.execute("UPDATE segments SET shipped_at = ? WHERE name = ?"
                              " AND shipped_at IS NULL", (at, n))

                await self.store.write(mark)
                shipped += 1
            left = len(await self.pending()) if len(batch) == PASS_LIMIT else 0
            await self._remove_purged()
        except (OSError, LookupError, aiohttp.ClientError, TimeoutError) as err:
            self.status.state, self.status.reason = "behind", f"segments not shipped: {err}"
            self.status.sync_errors += 1
            if not self._failing:
                logger.error("Shipping image segments to %s failed: %s; retrying",
                             self.target.url, err)
                self._failing = True
            return shipped
        if self._failing:
            logger.info("Shipping image segments to %s recovered", self.target.url)
            self._failing = False
        self.status.state, self.status.reason = "replicating", None
        self.status.sync_count += shipped
        self.status.last_sync_at = datetime.now(UTC)
        self.status.lag_seconds = 0.0
        self.status.local_txid = left
        return shipped
