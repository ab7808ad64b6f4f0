"""Outbox rows: deliveries the policy gate approved, waiting for (or done with) their exporter.

Runs through the store's single writer and reader like every other table. The payload and the
last error are encrypted with associated data binding them to the delivery id, exporter and
creation time, so a row's ciphertext cannot be moved onto another row.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import Store

PENDING = "pending"
DELIVERED = "delivered"
DEAD = "dead"


class OutboxFull(Exception):
    """The exporter's outbox holds ``max_pending`` deliveries already; the new one is refused."""


@dataclass(frozen=True)
class OutboxRow:
    """One delivery as stored, decrypted."""

    id: str
    exporter: str
    approval_id: str
    channel: str
    created_at: datetime
    status: str
    attempts: int
    next_attempt_at: datetime
    finished_at: datetime | None
    body: dict[str, Any]
    last_error: str | None


@dataclass(frozen=True)
class OutboxCounts:
    pending: int = 0
    delivered: int = 0
    dead: int = 0
    oldest_pending: datetime | None = None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _ad(delivery_id: str, exporter: str, created_at: str, part: str) -> bytes:
    return f"outbox|{delivery_id}|{exporter}|{created_at}|{part}".encode()


def encode_files(files: Mapping[str, bytes]) -> dict[str, str]:
    return {path: base64.b64encode(data).decode() for path, data in files.items()}


def decode_files(files: Mapping[str, str]) -> dict[str, bytes]:
    return {path: base64.b64decode(data) for path, data in files.items()}


class OutboxRecords:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def add(
        self,
        delivery_id: str,
        exporter: str,
        approval_id: str,
        channel: str,
        created_at: datetime,
        body: Mapping[str, Any],
        *,
        max_pending: int,
    ) -> bool:
        """Queue a delivery; False if this id is queued already (idempotent enqueue).

        Raises :class:`OutboxFull` when ``exporter`` has ``max_pending`` deliveries pending; the
        count and the insert run in one writer transaction, so the bound holds under concurrency.
        """
        created = _iso(created_at)
        blob = self._store.cipher.encrypt(
            json.dumps(body).encode(), _ad(delivery_id, exporter, created, "payload")
        )

        def op(c: sqlite3.Connection) -> bool:
            if c.execute("SELECT 1 FROM outbox WHERE id = ?", (delivery_id,)).fetchone():
                return False
            pending = c.execute(
                "SELECT count(*) FROM outbox WHERE exporter = ? AND status = ?",
                (exporter, PENDING),
            ).fetchone()[0]
            if pending >= max_pending:
                raise OutboxFull(
                    f"outbox of exporter {exporter!r} holds {pending} pending deliveries "
                    f"(max_pending {max_pending})"
                )
            c.execute(
                "INSERT INTO outbox (id, exporter, approval_id, channel, created_at, status,"
                " attempts, next_attempt_at, payload) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)",
                (delivery_id, exporter, approval_id, channel, created, PENDING, created, blob),
            )
            return True

        return await self._store.write(op)

    async def due(self, exporter: str, now: datetime, limit: int = 16) -> list[OutboxRow]:
        """Pending deliveries of ``exporter`` whose next attempt is due, oldest first."""
        rows = await self._store.query(
            lambda c: c.execute(
                "SELECT id, exporter, approval_id, channel, created_at, status, attempts,"
                " next_attempt_at, finished_at, payload, last_error FROM outbox"
                " WHERE exporter = ? AND status = ? AND next_attempt_at <= ?"
                " ORDER BY next_attempt_at, created_at LIMIT ?",
                (exporter, PENDING, _iso(now), limit),
            ).fetchall()
        )
        return [self._decode(row) for row in rows]

    async def get(self, delivery_id: str) -> OutboxRow | None:
        row = await self._store.query(
            lambda c: c.execute(
                "SELECT id, exporter, approval_id, channel, created_at, status, attempts,"
                " next_attempt_at, finished_at, payload, last_error FROM outbox WHERE id = ?",
                (delivery_id,),
            ).fetchone()
        )
        return None if row is None else self._decode(row)

    async def next_due(self, exporter: str) -> datetime | None:
        value = await self._store.query(
            lambda c: c.execute(
                "SELECT min(next_attempt_at) FROM outbox WHERE exporter = ? AND status = ?",
                (exporter, PENDING),
            ).fetchone()[0]
        )
        return None if value is None else datetime.fromisoformat(value)

    async def mark_delivered(self, row: OutboxRow, at: datetime) -> None:
        """Record the delivery and drop its payload: once handed over, the box keeps no second
        copy of what left (the audit event says what data it was); the id stays for
        idempotency and status."""
        await self._store.write(
            lambda c: c.execute(
                "UPDATE outbox SET status = ?, attempts = attempts + 1, finished_at = ?,"
                " last_error = NULL, payload = x'' WHERE id = ? AND status = ?",
                (DELIVERED, _iso(at), row.id, PENDING),
            )
        )

    async def prune(self, delivered_before: datetime, dead_before: datetime) -> int:
        """Delete delivered rows finished before ``delivered_before`` and dead letters (with
        their payloads) finished before ``dead_before``; returns how many."""

        def op(c: sqlite3.Connection) -> int:
            gone = c.execute(
                "DELETE FROM outbox WHERE status = ? AND finished_at < ?",
                (DELIVERED, _iso(delivered_before)),
            ).rowcount
            gone += c.execute(
                "DELETE FROM outbox WHERE status = ? AND finished_at < ?",
                (DEAD, _iso(dead_before)),
            ).rowcount
            return int(gone)

        return await self._store.write(op)

    async def mark_failed(
        self, row: OutboxRow, at: datetime, error: str, retry_at: datetime | None
    ) -> None:
        """Count a failed attempt: retry at ``retry_at``, or dead-letter when it is None."""
        created = _iso(row.created_at)
        blob = self._store.cipher.encrypt(
            error.encode(), _ad(row.id, row.exporter, created, "error")
        )
        status = PENDING if retry_at is not None else DEAD
        await self._store.write(
            lambda c: c.execute(
                "UPDATE outbox SET status = ?, attempts = attempts + 1, next_attempt_at = ?,"
                " finished_at = ?, last_error = ? WHERE id = ? AND status = ?",
                (
                    status,
                    _iso(retry_at or at),
                    None if retry_at is not None else _iso(at),
                    blob,
                    row.id,
                    PENDING,
                ),
            )
        )

    async def requeue(self, delivery_id: str, at: datetime) -> bool:
        """Put a dead-lettered delivery back in the queue (an administrator's retry)."""

        def op(c: sqlite3.Connection) -> bool:
            cursor = c.execute(
                "UPDATE outbox SET status = ?, attempts = 0, next_attempt_at = ?,"
                " finished_at = NULL WHERE id = ? AND status = ?",
                (PENDING, _iso(at), delivery_id, DEAD),
            )
            return cursor.rowcount == 1

        return await self._store.write(op)

    async def counts(self) -> dict[str, OutboxCounts]:
        """Per exporter: pending, delivered and dead deliveries, and the oldest pending one."""
        rows = await self._store.query(
            lambda c: c.execute(
                "SELECT exporter, status, count(*), min(created_at) FROM outbox"
                " GROUP BY exporter, status"
            ).fetchall()
        )
        found: dict[str, dict[str, Any]] = {}
        for exporter, status, count, oldest in rows:
            entry = found.setdefault(exporter, {})
            entry[status] = count
            if status == PENDING:
                entry["oldest_pending"] = datetime.fromisoformat(oldest)
        return {name: OutboxCounts(**values) for name, values in found.items()}

    async def recent(self, limit: int = 50, *, status: str | None = None) -> list[OutboxRow]:
        where = " WHERE status = ?" if status else ""
        args: tuple[Any, ...] = (status, limit) if status else (limit,)
        rows = await self._store.query(
            lambda c: c.execute(
                "SELECT id, exporter, approval_id, channel, created_at, status, attempts,"
                " next_attempt_at, finished_at, payload, last_error FROM outbox"
                f"{where} ORDER BY created_at DESC LIMIT ?",
                args,
            ).fetchall()
        )
        return [self._decode(row) for row in rows]

    def _decode(self, row: tuple[Any, ...]) -> OutboxRow:
        (delivery_id, exporter, approval_id, channel, created, status, attempts, next_at,
         finished, payload, error) = row  # fmt: skip
        cipher = self._store.cipher
        body = (
            json.loads(
                cipher.decrypt(bytes(payload), _ad(delivery_id, exporter, created, "payload"))
            )
            if payload
            else {}  # delivered: the payload was dropped
        )
        last_error = (
            cipher.decrypt(bytes(error), _ad(delivery_id, exporter, created, "error")).decode()
            if error
            else None
        )
        return OutboxRow(
            id=delivery_id,
            exporter=exporter,
            approval_id=approval_id,
            channel=channel,
            created_at=datetime.fromisoformat(created),
            status=status,
            attempts=attempts,
            next_attempt_at=datetime.fromisoformat(next_at),
            finished_at=datetime.fromisoformat(finished) if finished else None,
            body=body,
            last_error=last_error,
        )
