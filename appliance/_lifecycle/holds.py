"""Legal holds: a case keeps chosen reads (and their images) from being purged.

A hold names a case number, a reason, who placed it and until when (or until released). The
reads are chosen by id or by plate within a time window. Nothing about them changes when the hold
is placed; when their day's key is about to be destroyed, the purge re-encrypts each held read
under the hold's own key first (:mod:`.retention`), so the hold survives the purge. Releasing a
hold returns its reads to normal retention: those whose day is already past it go at the next
purge, and the hold's key with them. Placing and releasing are both audited.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .._storage.plate_keys import PLATE_READS, plate_reads_args
from .records import utc

if TYPE_CHECKING:
    from .._storage import Store

_CASE = re.compile(r"^[A-Z0-9][A-Z0-9-]{2,39}$")
MIN_REASON = 10


class HoldError(ValueError):
    """A hold request that cannot be honoured (bad case number, nothing chosen...)."""


@dataclass(frozen=True)
class Hold:
    id: int
    case_number: str
    reason: str
    created_by: str
    created_at: datetime
    until: datetime | None
    released_at: datetime | None
    released_by: str | None
    reads: int

    def active(self, now: datetime) -> bool:
        return self.released_at is None and (self.until is None or self.until > now)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "case_number": self.case_number,
            "reason": self.reason,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "until": self.until.isoformat() if self.until else None,
            "released_at": self.released_at.isoformat() if self.released_at else None,
            "released_by": self.released_by,
            "reads": self.reads,
        }


def _detail_ad(hold_id: int, created_at: str) -> bytes:
    return f"hold|{hold_id}|{created_at}".encode()


def active_clause(now: str) -> tuple[str, tuple[str]]:
    """SQL selecting the read ids under an active hold, and its parameter."""
    return (
        "SELECT i.read_id FROM hold_items i JOIN holds h ON h.id = i.hold_id"
        " WHERE h.released_at IS NULL AND (h.until IS NULL OR h.until > ?)",
        (now,),
    )


class Holds:
    """Legal holds of one store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def add(
        self,
        *,
        case_number: str,
        reason: str,
        actor: str,
        now: datetime,
        until: datetime | None = None,
        read_ids: list[str] | None = None,
        plate: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> Hold:
        """Place a hold over reads chosen by id, or by plate within [start, end)."""
        case = case_number.strip().upper()
        if not _CASE.match(case) or not any(ch.isdigit() for ch in case):
            raise HoldError(f"case number {case_number!r}: letters, digits and '-', with a digit")
        if len(reason.strip()) < MIN_REASON:
            raise HoldError(f"a hold needs a reason of at least {MIN_REASON} characters")
        if until is not None and until <= now:
            raise HoldError("a hold's end must be in the future")
        store = self._store
        chosen: list[str]
        if read_ids:
            found = await store.reads_by_id(list(read_ids))
            missing = sorted(set(read_ids) - set(found))
            if missing:
                raise HoldError(f"no such read(s): {', '.join(missing[:5])}")
            chosen = list(dict.fromkeys(read_ids))
        elif plate:
            if start is None or end is None or end <= start:
                raise HoldError("a hold by plate needs a window: --start and --end")
            args = plate_reads_args(store.cipher.plate_index(plate), start, end)
            rows = await store.query(
                lambda c: c.execute(
                    f"{PLATE_READS} SELECT id FROM reads WHERE id IN (SELECT id FROM plate_reads)"
                    " AND seen_at >= ? AND seen_at < ?",
                    (*args, utc(start), utc(end)),
                ).fetchall()
            )
            chosen = [r[0] for r in rows]
        else:
            raise HoldError("choose the reads to hold: read ids, or a plate and a window")
        if not chosen:
            raise HoldError("no stored read matches: nothing to hold")
        created = utc(now)
        selection = {"read_ids": read_ids or None, "plate": plate,
                     "start": utc(start) if start else None, "end": utc(end) if end else None}

        def op(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "INSERT INTO holds (case_number, created_by, created_at, until, detail)"
                " VALUES (?, ?, ?, ?, x'')",
                (case, actor, created, utc(until) if until else None),
            )
            hold_id = int(cursor.lastrowid or 0)
            detail = json.dumps({"reason": reason.strip(), "selection": selection}).encode()
            conn.execute(
                "UPDATE holds SET detail = ? WHERE id = ?",
                (store.cipher.encrypt(detail, _detail_ad(hold_id, created)), hold_id),
            )
            conn.executemany(
                "INSERT OR IGNORE INTO hold_items (hold_id, read_id) VALUES (?, ?)",
                [(hold_id, r) for r in chosen],
            )
            return hold_id

        hold_id = await store.write(op)
        await store.record_event(
            "hold.created",
            actor,
            {
                "hold": hold_id,
                "case_number": case,
                "reason": reason.strip(),
                "until": utc(until) if until else None,
                "reads": len(chosen),
                "read_ids": chosen[:1000],
                "selection": selection,
            },
        )
        hold = await self.get(hold_id)
        assert hold is not None
        return hold

    async def release(self, hold_id: int, actor: str, now: datetime, why: str = "") -> Hold:
        hold = await self.get(hold_id)
        if hold is None:
            raise HoldError(f"no hold {hold_id}")
        if hold.released_at is not None:
            raise HoldError(f"hold {hold_id} was already released on {hold.released_at:%Y-%m-%d}")
        await self._store.write(
            lambda c: c.execute(
                "UPDATE holds SET released_at = ?, released_by = ? WHERE id = ?",
                (utc(now), actor, hold_id),
            )
        )
        await self._store.record_event(
            "hold.released",
            actor,
            {"hold": hold_id, "case_number": hold.case_number, "reads": hold.reads, "why": why},
        )
        released = await self.get(hold_id)
        assert released is not None
        return released

    async def expire(self, now: datetime) -> list[Hold]:
        """Release the holds whose end has passed (audited as expired)."""
        due = [h for h in await self.list() if h.released_at is None and h.until and h.until <= now]
        return [await self.release(h.id, "system", now, "hold period ended") for h in due]

    async def get(self, hold_id: int) -> Hold | None:
        found = [h for h in await self.list(hold_id) if h.id == hold_id]
        return found[0] if found else None

    async def list(self, hold_id: int | None = None) -> list[Hold]:
        where = "WHERE h.id = ?" if hold_id is not None else ""
        args = (hold_id,) if hold_id is not None else ()
        rows = await self._store.query(
            lambda c: c.execute(
                "SELECT h.id, h.case_number, h.created_by, h.created_at, h.until, h.released_at,"
                " h.released_by, h.detail, (SELECT count(*) FROM hold_items i"
                f" WHERE i.hold_id = h.id) FROM holds h {where} ORDER BY h.id",
                args,
            ).fetchall()
        )
        out = []
        for hid, case, by, created, until, released, released_by, detail, count in rows:
            data = json.loads(self._store.cipher.decrypt(bytes(detail), _detail_ad(hid, created)))
            out.append(
                Hold(
                    id=hid,
                    case_number=case,
                    reason=data["reason"],
                    created_by=by,
                    created_at=datetime.fromisoformat(created),
                    until=datetime.fromisoformat(until) if until else None,
                    released_at=datetime.fromisoformat(released) if released else None,
                    released_by=released_by,
                    reads=count,
                )
            )
        return out
