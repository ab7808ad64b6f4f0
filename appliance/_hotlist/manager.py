"""Keeps every hot list current and matches reads against them without ever pausing.

For each configured source the manager fetches on schedule, checks what came back, diffs it with
the active list, writes an encrypted snapshot (so a restart starts from the last good list, not
from nothing), builds a new index off the event loop and swaps it in with one assignment.
Matching reads the current mapping of indexes and takes no lock: a read matched during a swap
sees either the old list or the new one, never neither. A failed or malformed download keeps the
previous list and records why.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import random
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import attrgetter
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .._crypto import FieldCipher
from .._storage import Store
from ..base import Clock, HotlistBatch, HotlistEntry, HotlistSource
from ..errors import AuthFailed, DeviceUnavailable, HotlistFormatError
from ..settings import HotlistSourceSettings
from .matcher import Hit, HotlistIndex
from .records import entries_from_dicts, entry_to_dict

logger = logging.getLogger(__name__)

BOLO_LIST = "bolo"
_RETRY_FIRST = 60.0


@dataclass
class ListStatus:
    """What the console and ``alprbox hotlist status`` show about one list."""

    name: str
    type: str
    max_age: timedelta
    entries: int = 0
    refreshed_at: datetime | None = None
    last_attempt: datetime | None = None
    error: str | None = None
    dropped: dict[str, int] = field(default_factory=dict)
    skipped: int = 0

    def age(self, now: datetime) -> timedelta | None:
        return now - self.refreshed_at if self.refreshed_at else None

    def stale(self, now: datetime) -> bool:
        age = self.age(now)
        return age is None or age > self.max_age

    def as_dict(self, now: datetime) -> dict[str, Any]:
        age = self.age(now)
        return {
            "name": self.name,
            "type": self.type,
            "entries": self.entries,
            "refreshed_at": self.refreshed_at.isoformat() if self.refreshed_at else None,
            "age_hours": round(age.total_seconds() / 3600, 2) if age is not None else None,
            "stale": self.stale(now),
            "max_age_hours": self.max_age.total_seconds() / 3600,
            "last_attempt": self.last_attempt.isoformat() if self.last_attempt else None,
            "error": self.error,
            "dropped": dict(self.dropped),
            "skipped": self.skipped,
        }


@dataclass(frozen=True)
class MatchedHit:
    hit: Hit
    stale: bool

    def payload(self) -> dict[str, Any]:
        """The hit as stored with its alert (encrypted by the store)."""
        return {
            "entry": entry_to_dict(self.hit.listed.entry),
            "entry_id": self.hit.listed.entry_id,
            "kind": self.hit.kind,
            "explanation": self.hit.explain(),
            "differences": [[d.position, d.read_char, d.listed_char] for d in self.hit.differences],
            "state_matched": self.hit.state_matched,
            "stale": self.stale,
        }


class HotlistManager:
    def __init__(
        self,
        *,
        store: Store,
        cipher: FieldCipher,
        data_dir: Path,
        clock: Clock,
        sources: dict[str, tuple[HotlistSource, HotlistSourceSettings]],
    ) -> None:
        self._store = store
        self._cipher = cipher
        self._dir = data_dir / "hotlists"
        self._clock = clock
        self._sources = sources
        self._indexes: dict[str, HotlistIndex] = {}
        self._keys: dict[str, npt.NDArray[np.int64]] = {}
        self.status: dict[str, ListStatus] = {
            name: ListStatus(name, settings.type, timedelta(hours=settings.max_age_hours))
            for name, (_, settings) in sources.items()
        }
        self.status[BOLO_LIST] = ListStatus(BOLO_LIST, "bolo", timedelta(days=3650))
        self._tasks: list[asyncio.Task[None]] = []

    # -- life cycle --------------------------------------------------------------------------

    async def start(self, *, schedule: bool = True) -> None:
        self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for name in self._sources:
            await self._load_snapshot(name)
        await self.reload_bolos()
        if schedule:
            for name in self._sources:
                self._tasks.append(
                    asyncio.create_task(self._refresh_loop(name), name=f"hotlist-{name}")
                )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for source, _ in self._sources.values():
            try:
                await source.close()
            except Exception:
                logger.warning("Hot list source close() raised", exc_info=True)

    # -- matching ----------------------------------------------------------------------------

    def match(self, plate: str, state: str | None = None) -> list[MatchedHit]:
        """Every hit for a read across all lists, best first; never blocks, never locks."""
        indexes = self._indexes  # one read of the reference: a consistent set during a swap
        now = self._clock.now()
        found: list[MatchedHit] = []
        for name, index in indexes.items():
            stale = self.status[name].stale(now) if name != BOLO_LIST else False
            found.extend(MatchedHit(hit, stale) for hit in index.match(plate, state))
        order = {"exact": 0, "confusion": 1, "wildcard": 2}
        found.sort(key=lambda m: (order[m.hit.kind], len(m.hit.differences)))
        return found

    def index_sizes(self) -> dict[str, int]:
        return {name: len(index) for name, index in self._indexes.items()}

    # -- refreshing --------------------------------------------------------------------------

    def interval(self, name: str) -> timedelta:
        source, settings = self._sources[name]
        if settings.refresh_hours:
            return timedelta(hours=settings.refresh_hours)
        return min(type(source).refresh_every, timedelta(days=1))

    async def _refresh_loop(self, name: str) -> None:
        retry = _RETRY_FIRST
        status = self.status[name]
        if status.refreshed_at is not None:
            due = status.refreshed_at + self.interval(name) - self._clock.now()
            await self._clock.sleep(max(0.0, due.total_seconds()))
        while True:
            ok = await self.refresh(name)
            if ok:
                retry = _RETRY_FIRST
                delay = self.interval(name).total_seconds()
            else:
                delay = min(retry, self.interval(name).total_seconds()) * random.uniform(0.8, 1.2)
                retry *= 2
            await self._clock.sleep(delay)

    async def refresh(self, name: str) -> bool:
        """Fetch one list now. True if the new list is active; False keeps the previous one."""
        source, _ = self._sources[name]
        status = self.status[name]
        status.last_attempt = self._clock.now()
        try:
            batch = await source.fetch()
        except (DeviceUnavailable, AuthFailed, HotlistFormatError) as err:
            return await self._failed(name, f"{type(err).__name__}: {err}")
        except Exception as err:  # a plugin bug: same outcome, plus the traceback once
            logger.exception("Hot list '%s': the source raised unexpectedly", name)
            return await self._failed(name, f"{type(err).__name__}: {err}")
        return await self.apply(name, batch, outcome="ok")

    async def import_data(self, name: str, data: bytes) -> bool:
        """Import a file in the source's format (``alprbox hotlist import``)."""
        source, _ = self._sources[name]
        try:
            batch = await asyncio.to_thread(source.parse, data)
        except HotlistFormatError as err:
            return await self._failed(name, f"HotlistFormatError: {err}", outcome="import-failed")
        return await self.apply(name, batch, outcome="imported")

    async def apply(self, name: str, batch: HotlistBatch, *, outcome: str) -> bool:
        status = self.status[name]
        if not batch.entries:
            return await self._failed(name, "the list has no usable entries")
        old_keys = self._keys.get(name)
        with collector_paused():  # until the one full collection at the end
            index, keys, (added, removed) = await asyncio.to_thread(
                self._build_and_diff, name, batch.entries, old_keys
            )
            self._keys[name] = keys
            now = self._clock.now()
            self._indexes = {**self._indexes, name: index}  # the swap: one assignment
            _collect_and_freeze()
        # The new list is live first; saving it (seconds for a million entries) comes after.
        try:
            await asyncio.to_thread(self._write_snapshot, name, batch, now)
        except OSError as err:
            logger.error(
                "Hot list '%s' is active but could not be saved for restarts: %s", name, err
            )
        status.entries = len(batch.entries)
        status.refreshed_at = now
        status.error = None
        status.dropped = dict(batch.dropped)
        status.skipped = len(batch.skipped)
        detail = {
            "dropped": dict(batch.dropped),
            "skipped": list(batch.skipped[:50]),
            "skipped_total": len(batch.skipped),
        }
        await self._store.hotlists.add_refresh(
            name, outcome, entries=len(batch.entries), added=added, removed=removed, detail=detail
        )
        await self._store.record_event(
            f"hotlist.{outcome}",
            "system",
            {
                "list": name,
                "entries": len(batch.entries),
                "added": added,
                "removed": removed,
                "dropped": dict(batch.dropped),
            },
        )
        logger.info(
            "Hot list '%s' %s: %d entries (+%d −%d)%s",
            name,
            "refreshed" if outcome == "ok" else outcome,
            len(batch.entries),
            added,
            removed,
            "".join(f"; dropped {n} ({why})" for why, n in batch.dropped.items()),
        )
        return True

    async def _failed(self, name: str, error: str, outcome: str = "failed") -> bool:
        status = self.status[name]
        if status.error != error:  # once per distinct failure, not once per retry
            logger.warning(
                "Hot list '%s' not refreshed, keeping the previous list (%d entries): %s",
                name,
                status.entries,
                error,
            )
        status.error = error
        await self._store.hotlists.add_refresh(
            name, outcome, entries=status.entries, detail={"error": error}
        )
        return False

    @staticmethod
    def _build_and_diff(
        name: str, entries: Sequence[HotlistEntry], old_keys: npt.NDArray[np.int64] | None
    ) -> tuple[HotlistIndex, npt.NDArray[np.int64], tuple[int, int]]:
        with collector_paused():
            index = HotlistIndex.build_list(name, entries)  # no ListedEntry per entry
            keys = diff_keys(entries)
        if old_keys is None:
            return index, keys, (len(keys), 0)
        # Both sorted and unique: the keys in both are found by binary search.
        at = np.minimum(np.searchsorted(old_keys, keys), max(len(old_keys) - 1, 0))
        kept = int(np.count_nonzero(old_keys[at] == keys)) if len(old_keys) else 0
        return index, keys, (len(keys) - kept, len(old_keys) - kept)

    # -- snapshots: the last good list, encrypted, beside the database -----------------------

    def _snapshot_path(self, name: str) -> Path:
        return self._dir / f"{name}.list"

    def _write_snapshot(self, name: str, batch: HotlistBatch, at: datetime) -> None:
        body = json.dumps(
            {
                "refreshed_at": at.isoformat(),
                "dropped": dict(batch.dropped),
                "entries": [entry_to_dict(e) for e in batch.entries],
            },
            separators=(",", ":"),
        ).encode()
        blob = self._cipher.encrypt(zlib.compress(body, 3), f"hotlist-snapshot|{name}".encode())
        path = self._snapshot_path(name)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)  # atomic: a crash leaves the old snapshot or the new one

    async def _load_snapshot(self, name: str) -> None:
        path = self._snapshot_path(name)
        if not path.exists():
            return
        try:
            data = await asyncio.to_thread(self._read_snapshot, path, name)
        except (OSError, ValueError, zlib.error) as err:
            logger.error(
                "Hot list '%s': saved list %s unreadable (%s); waiting for a refresh",
                name,
                path,
                err,
            )
            return
        with collector_paused():  # until the one full collection at the end
            entries = await asyncio.to_thread(entries_from_dicts, data["entries"])
            del data["entries"]
            index, keys, _ = await asyncio.to_thread(self._build_and_diff, name, entries, None)
            self._indexes = {**self._indexes, name: index}
            self._keys[name] = keys
            _collect_and_freeze()
        status = self.status[name]
        status.entries = len(entries)
        status.refreshed_at = datetime.fromisoformat(data["refreshed_at"])
        status.dropped = data.get("dropped", {})

    def _read_snapshot(self, path: Path, name: str) -> dict[str, Any]:
        blob = path.read_bytes()
        body = zlib.decompress(self._cipher.decrypt(blob, f"hotlist-snapshot|{name}".encode()))
        data: dict[str, Any] = json.loads(body)
        return data

    # -- BOLOs -------------------------------------------------------------------------------

    async def reload_bolos(self) -> None:
        """Rebuild the BOLO list from the approved, unexpired entries in the store."""
        bolos = await self._store.bolos.active(self._clock.now())
        index = await asyncio.to_thread(
            HotlistIndex.build_list,
            BOLO_LIST,
            [b.entry() for b in bolos],
            entry_ids=[b.id for b in bolos],
        )
        self._indexes = {**self._indexes, BOLO_LIST: index}
        status = self.status[BOLO_LIST]
        status.entries = len(bolos)
        status.refreshed_at = self._clock.now()


_DIFF_FIELDS = tuple(map(attrgetter, ("plate", "state", "reference")))
_MIX = 0x9E3779B97F4A7C15  # odd: each step below is a bijection of the 64-bit value
_DIFF_SLICE = 16_384


def diff_keys(entries: Sequence[HotlistEntry]) -> npt.NDArray[np.int64]:
    """What a refresh is diffed against: a 64-bit hash of each entry's (plate, state,
    reference), sorted and unique. A list of a million costs 8 MB to remember instead of a set
    of tuples ten times that size. Hashed a field at a time (no tuple an entry), mixed as a
    polynomial in the fields' own hashes; compared only within this process, like them."""
    mixed = np.zeros(len(entries), np.uint64)
    for start in range(0, len(entries), _DIFF_SLICE):  # no call holds the GIL for long
        part = entries[start : start + _DIFF_SLICE]
        for field_of in _DIFF_FIELDS:
            hashes = np.fromiter(map(hash, map(field_of, part)), np.int64, len(part))
            mixed[start : start + len(part)] *= np.uint64(_MIX)
            mixed[start : start + len(part)] += hashes.view(np.uint64)
    return _sorted_unique(mixed.view(np.int64))


def _sorted_unique(values: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """``np.unique(values)``, which numpy 2.3+ computes by hashing: 50 times slower here."""
    ordered = np.sort(values)
    if len(ordered) < 2:
        return ordered
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]]


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector, if it runs, while a list is built.

    A million new entries would set off full collections on the way, each walking every object
    so far, to find nothing (building makes no reference cycles) while holding the GIL that
    matching needs. The host runs one full collection once the new list is in place instead,
    before this ends: else the collector, owed one, would start another as soon as it resumed.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _collect_and_freeze() -> None:
    # A million long-lived entries make every full garbage collection a pause in matching;
    # frozen objects are skipped by the collector (reference counting still frees the old
    # list once nothing points to it). Collect first, so no cyclic garbage is frozen for good.
    gc.collect()  # runs while the collector is paused too
    gc.freeze()
