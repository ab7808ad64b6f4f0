"""BOLO records: encrypted entry details, clear status and dates for approval and expiry."""

from __future__ import annotations

import json
import sqlite3
import uuid
from datetime import UTC, datetime, time
from typing import TYPE_CHECKING, Any

from .._hotlist.bolo import Bolo, BoloError, BoloInput

if TYPE_CHECKING:
    from . import Store

_COLUMNS = "id, status, created_at, created_by, approved_by, approved_at, expires_at, updated_at"


class BoloRecords:
    def __init__(self, store: Store) -> None:
        self._store = store

    def _ad(self, bolo_id: str, created_at: str) -> bytes:
        return f"bolo|{bolo_id}|{created_at}".encode()

    async def create(self, data: BoloInput, created_by: str, now: datetime) -> str:
        bolo_id = uuid.uuid4().hex[:12]
        created = now.astimezone(UTC).isoformat(timespec="microseconds")
        expires = datetime.combine(data.expires, time(23, 59, 59), UTC).isoformat()
        blob = self._store.cipher.encrypt(
            data.model_dump_json().encode(), self._ad(bolo_id, created)
        )
        await self._store.write(
            lambda c: c.execute(
                f"INSERT INTO bolos ({_COLUMNS}, payload) VALUES (?, 'pending', ?, ?, NULL, NULL,"
                " ?, ?, ?)",
                (bolo_id, created, created_by, expires, created, blob),
            )
        )
        return bolo_id

    async def edit(self, bolo_id: str, data: BoloInput, editor: str, now: datetime) -> None:
        """Replace the details; the BOLO goes back to pending until approved again."""
        at = now.astimezone(UTC).isoformat(timespec="microseconds")
        expires = datetime.combine(data.expires, time(23, 59, 59), UTC).isoformat()

        def op(c: sqlite3.Connection) -> None:
            row = c.execute(
                "SELECT created_at, status FROM bolos WHERE id = ?", (bolo_id,)
            ).fetchone()
            if row is None:
                raise BoloError("no such BOLO")
            if row[1] in ("rejected", "withdrawn"):
                raise BoloError(f"a {row[1]} BOLO cannot be edited; enter a new one")
            blob = self._store.cipher.encrypt(
                data.model_dump_json().encode(), self._ad(bolo_id, row[0])
            )
            c.execute(
                "UPDATE bolos SET payload = ?, status = 'pending', approved_by = NULL,"
                " approved_at = NULL, expires_at = ?, updated_at = ? WHERE id = ?",
                (blob, expires, at, bolo_id),
            )

        await self._store.write(op)

    async def decide(self, bolo_id: str, actor: str, decision: str, now: datetime) -> Bolo:
        """``approve``, ``reject`` (a pending BOLO) or ``withdraw`` (any live one)."""
        at = now.astimezone(UTC).isoformat(timespec="microseconds")

        def op(c: sqlite3.Connection) -> None:
            row = c.execute(
                "SELECT status, created_by FROM bolos WHERE id = ?", (bolo_id,)
            ).fetchone()
            if row is None:
                raise BoloError("no such BOLO")
            status, created_by = row
            if decision in ("approve", "reject"):
                if status != "pending":
                    raise BoloError(f"only a pending BOLO can be decided; this one is {status}")
                if actor == created_by:
                    raise BoloError("a BOLO must be approved by someone other than its author")
                new = "active" if decision == "approve" else "rejected"
                c.execute(
                    "UPDATE bolos SET status = ?, approved_by = ?, approved_at = ?, updated_at = ?"
                    " WHERE id = ?",
                    (new, actor, at, at, bolo_id),
                )
            elif decision == "withdraw":
                if status not in ("pending", "active"):
                    raise BoloError(f"this BOLO is already {status}")
                c.execute(
                    "UPDATE bolos SET status = 'withdrawn', updated_at = ? WHERE id = ?",
                    (at, bolo_id),
                )
            else:
                raise BoloError(f"unknown decision {decision!r}")

        await self._store.write(op)
        bolo = await self.get(bolo_id)
        assert bolo is not None
        return bolo

    async def get(self, bolo_id: str) -> Bolo | None:
        row = await self._store.query(
            lambda c: c.execute(
                f"SELECT {_COLUMNS}, payload FROM bolos WHERE id = ?", (bolo_id,)
            ).fetchone()
        )
        return self._decode(row) if row else None

    async def all(self, limit: int = 200) -> list[Bolo]:
        rows = await self._store.query(
            lambda c: c.execute(
                f"SELECT {_COLUMNS}, payload FROM bolos ORDER BY created_at DESC LIMIT ?",
                (limit,),
            ).fetchall()
        )
        return [self._decode(row) for row in rows]

    async def active(self, now: datetime) -> list[Bolo]:
        rows = await self._store.query(
            lambda c: c.execute(
                f"SELECT {_COLUMNS}, payload FROM bolos WHERE status = 'active' AND expires_at > ?",
                (now.astimezone(UTC).isoformat(),),
            ).fetchall()
        )
        return [self._decode(row) for row in rows]

    def _decode(self, row: tuple[Any, ...]) -> Bolo:
        bolo_id, status, created, by, approver, approved, expires, updated, blob = row
        data = json.loads(self._store.cipher.decrypt(bytes(blob), self._ad(bolo_id, created)))
        return Bolo(
            id=bolo_id,
            status=status,
            created_at=datetime.fromisoformat(created),
            created_by=by,
            approved_by=approver,
            approved_at=datetime.fromisoformat(approved) if approved else None,
            expires_at=datetime.fromisoformat(expires),
            updated_at=datetime.fromisoformat(updated),
            data=BoloInput.model_validate(data),
        )
