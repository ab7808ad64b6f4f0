"""Sharing requests and standing approvals: encrypted details, clear status, people and dates.

The details (agency, ORI, person, purpose, case number, on-behalf-of chain, scope, channels,
the reviewer's note) are one AES-GCM payload bound to the row's id and creation time; the policy
layer (:mod:`appliance._policy.requests`) gives them meaning. Rows are never deleted: approved,
denied and revoked requests are kept on file (Vallejo 426.8).
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import Store

_COLUMNS = (
    "id, kind, status, created_at, created_by, decided_by, decided_at, expires_at, updated_at"
)
KINDS = ("request", "standing")
STATUSES = ("pending", "approved", "denied", "revoked")


class SharingRecordError(Exception):
    """The row is missing or not in a state that allows the change; the message says which."""


@dataclass(frozen=True)
class SharingRow:
    id: str
    kind: str
    status: str
    created_at: datetime
    created_by: str
    decided_by: str | None
    decided_at: datetime | None
    expires_at: datetime | None
    updated_at: datetime
    payload: dict[str, Any]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


class SharingRecords:
    def __init__(self, store: Store) -> None:
        self._store = store

    def _ad(self, row_id: str, created_at: str) -> bytes:
        return f"sharing|{row_id}|{created_at}".encode()

    def _seal(self, row_id: str, created_at: str, payload: dict[str, Any]) -> bytes:
        return self._store.cipher.encrypt(
            json.dumps(payload, sort_keys=True).encode(), self._ad(row_id, created_at)
        )

    async def create(
        self,
        kind: str,
        payload: dict[str, Any],
        created_by: str,
        now: datetime,
        *,
        status: str = "pending",
        decided_by: str | None = None,
        expires_at: datetime | None = None,
    ) -> str:
        """Store a new request (``pending``) or a standing approval (``approved`` at once)."""
        if kind not in KINDS or status not in STATUSES:
            raise SharingRecordError(f"bad kind or status: {kind}, {status}")
        row_id = uuid.uuid4().hex[:12]
        created = _iso(now)
        blob = self._seal(row_id, created, payload)
        decided = created if decided_by else None
        expires = _iso(expires_at) if expires_at else None
        await self._store.write(
            lambda c: c.execute(
                f"INSERT INTO sharing_requests ({_COLUMNS}, payload)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (row_id, kind, status, created, created_by, decided_by, decided, expires,
                 created, blob),
            )
        )
        return row_id

    async def decide(
        self,
        row_id: str,
        *,
        expect: tuple[str, ...],
        status: str,
        actor: str,
        now: datetime,
        expires_at: datetime | None,
        update: dict[str, Any],
    ) -> SharingRow:
        """Move a row from one of ``expect`` to ``status``, merging ``update`` into its payload.

        The check and the change run in one writer transaction, so two reviewers deciding at
        the same moment cannot both succeed.
        """
        at = _iso(now)

        def op(c: sqlite3.Connection) -> None:
            row = c.execute(
                "SELECT status, created_at, payload FROM sharing_requests WHERE id = ?", (row_id,)
            ).fetchone()
            if row is None:
                raise SharingRecordError("no such sharing request")
            current, created, blob = row
            if current not in expect:
                raise SharingRecordError(f"this request is {current}; it cannot be changed so")
            payload = json.loads(self._store.cipher.decrypt(bytes(blob), self._ad(row_id, created)))
            payload.update(update)
            c.execute(
                "UPDATE sharing_requests SET status = ?, decided_by = ?, decided_at = ?,"
                " expires_at = coalesce(?, expires_at), updated_at = ?, payload = ? WHERE id = ?",
                (status, actor, at, _iso(expires_at) if expires_at else None, at,
                 self._seal(row_id, created, payload), row_id),
            )

        await self._store.write(op)
        found = await self.get(row_id)
        assert found is not None
        return found

    async def get(self, row_id: str) -> SharingRow | None:
        row = await self._store.query(
            lambda c: c.execute(
                f"SELECT {_COLUMNS}, payload FROM sharing_requests WHERE id = ?", (row_id,)
            ).fetchone()
        )
        return self._decode(row) if row else None

    async def all(self, limit: int = 500) -> list[SharingRow]:
        rows = await self._store.query(
            lambda c: c.execute(
                f"SELECT {_COLUMNS}, payload FROM sharing_requests ORDER BY created_at DESC"
                " LIMIT ?",
                (limit,),
            ).fetchall()
        )
        return [self._decode(row) for row in rows]

    async def counts(self) -> dict[str, int]:
        """Rows per ``kind:status`` (for the transparency page; no details decrypted)."""
        rows = await self._store.query(
            lambda c: c.execute(
                "SELECT kind, status, count(*) FROM sharing_requests GROUP BY kind, status"
            ).fetchall()
        )
        return {f"{kind}:{status}": int(n) for kind, status, n in rows}

    def _decode(self, row: tuple[Any, ...]) -> SharingRow:
        row_id, kind, status, created, by, decider, decided, expires, updated, blob = row
        payload = json.loads(self._store.cipher.decrypt(bytes(blob), self._ad(row_id, created)))
        return SharingRow(
            id=row_id,
            kind=kind,
            status=status,
            created_at=datetime.fromisoformat(created),
            created_by=by,
            decided_by=decider,
            decided_at=datetime.fromisoformat(decided) if decided else None,
            expires_at=datetime.fromisoformat(expires) if expires else None,
            updated_at=datetime.fromisoformat(updated),
            payload=payload,
        )
