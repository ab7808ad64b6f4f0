"""Alerts, their transitions, hot-list refresh records and BOLOs (all sensitive fields encrypted).

These run through the store's single writer and its reader thread, like every other table.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .._hotlist.alerts import Alert, AlertEvent, AlertState, AlertTransitionError, check_transition
from .._hotlist.records import entry_from_dict

if TYPE_CHECKING:
    from . import Store


def _now(store: Store) -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class AlertRecords:
    def __init__(self, store: Store) -> None:
        self._store = store

    def _ad(self, alert_id: str, read_id: str, created_at: str) -> bytes:
        return f"alert|{alert_id}|{read_id}|{created_at}".encode()

    async def add(
        self, read_id: str, created_at: datetime, list_name: str, covert: bool, hit: dict[str, Any]
    ) -> str:
        """Store a hit as a new alert (state ``alert``); returns its id."""
        alert_id = uuid.uuid4().hex
        created = created_at.astimezone(UTC).isoformat(timespec="microseconds")
        blob = self._store.cipher.encrypt(
            json.dumps(hit).encode(), self._ad(alert_id, read_id, created)
        )
        records = self._store.read_records

        def op(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT INTO alerts (id, read_id, created_at, list_name, state, covert,"
                " updated_at, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    alert_id,
                    read_id,
                    created,
                    list_name,
                    AlertState.ALERT.value,
                    int(covert),
                    created,
                    blob,
                ),
            )
            # A read with an alert is a hit: kept under its day's hit key, in the same
            # transaction, so the purge of non-hit reads can never take it (issue 5).
            records.promote_on_writer(c, read_id)

        await self._store.write(op)
        return alert_id

    async def recent(self, limit: int = 50, *, include_covert: bool = False) -> list[Alert]:
        covert_clause = "" if include_covert else " WHERE covert = 0"
        rows = await self._store.query(
            lambda c: c.execute(
                "SELECT id, read_id, created_at, updated_at, list_name, state, covert, payload"
                f" FROM alerts{covert_clause} ORDER BY created_at DESC LIMIT ?",
                (limit,),
            ).fetchall()
        )
        return [self._decode(row) for row in rows]

    async def get(self, alert_id: str, *, include_covert: bool = False) -> Alert | None:
        row = await self._store.query(
            lambda c: c.execute(
                "SELECT id, read_id, created_at, updated_at, list_name, state, covert, payload"
                " FROM alerts WHERE id = ?",
                (alert_id,),
            ).fetchone()
        )
        if row is None or (row[6] and not include_covert):
            return None
        alert = self._decode(row)
        events = await self._store.query(
            lambda c: c.execute(
                "SELECT at, actor, from_state, to_state, detail FROM alert_events"
                " WHERE alert_id = ? ORDER BY id",
                (alert_id,),
            ).fetchall()
        )
        decoded = tuple(
            AlertEvent(
                at=datetime.fromisoformat(at),
                actor=actor,
                from_state=AlertState(src),
                to_state=AlertState(dst),
                detail=json.loads(
                    self._store.cipher.decrypt(bytes(blob), f"alert-event|{alert_id}|{at}".encode())
                ),
            )
            for at, actor, src, dst, blob in events
        )
        reads = await self._store.reads_by_id([alert.read_id])
        return _replace(alert, read=reads.get(alert.read_id), events=decoded)

    async def transition(
        self, alert_id: str, actor: str, target: AlertState, **detail: Any
    ) -> AlertState:
        """Move an alert to ``target`` if the lifecycle allows it; returns the previous state.

        The check runs inside the write transaction, so two operators acting on one alert at
        once cannot both move it.
        """
        at = _now(self._store)
        blob = self._store.cipher.encrypt(
            json.dumps(detail).encode(), f"alert-event|{alert_id}|{at}".encode()
        )

        def op(c: sqlite3.Connection) -> AlertState:
            row = c.execute("SELECT state FROM alerts WHERE id = ?", (alert_id,)).fetchone()
            if row is None:
                raise AlertTransitionError("no such alert")
            current = AlertState(row[0])
            check_transition(
                current,
                target,
                **{
                    k: v
                    for k, v in detail.items()
                    if k
                    in (
                        "reason",
                        "disposition",
                        "verified_characters",
                        "verified_state",
                        "verified_vehicle",
                    )
                },
            )
            c.execute(
                "UPDATE alerts SET state = ?, updated_at = ? WHERE id = ?",
                (target.value, at, alert_id),
            )
            c.execute(
                "INSERT INTO alert_events (alert_id, at, actor, from_state, to_state, detail)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (alert_id, at, actor, current.value, target.value, blob),
            )
            return current

        return await self._store.write(op)

    def _decode(self, row: tuple[Any, ...]) -> Alert:
        alert_id, read_id, created, updated, list_name, state, covert, blob = row
        hit = json.loads(
            self._store.cipher.decrypt(bytes(blob), self._ad(alert_id, read_id, created))
        )
        return Alert(
            id=alert_id,
            read_id=read_id,
            created_at=datetime.fromisoformat(created),
            updated_at=datetime.fromisoformat(updated),
            list_name=list_name,
            state=AlertState(state),
            covert=bool(covert),
            entry=entry_from_dict(hit["entry"]),
            kind=hit["kind"],
            explanation=hit["explanation"],
            differences=tuple(tuple(d) for d in hit["differences"]),
            state_matched=hit["state_matched"],
            stale=hit["stale"],
        )


def _replace(alert: Alert, **changes: Any) -> Alert:
    from dataclasses import replace

    return replace(alert, **changes)


@dataclass(frozen=True)
class RefreshRecord:
    list_name: str
    at: datetime
    outcome: str
    entries: int
    added: int
    removed: int
    detail: dict[str, Any]


class HotlistRecords:
    """The history of hot-list refreshes (the lists themselves live in encrypted snapshots)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def add_refresh(
        self,
        list_name: str,
        outcome: str,
        *,
        entries: int = 0,
        added: int = 0,
        removed: int = 0,
        detail: dict[str, Any],
    ) -> None:
        at = _now(self._store)
        blob = self._store.cipher.encrypt(
            json.dumps(detail).encode(), f"hotlist|{list_name}|{at}".encode()
        )
        await self._store.write(
            lambda c: c.execute(
                "INSERT INTO hotlist_refreshes (list_name, at, outcome, entries, added, removed,"
                " detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (list_name, at, outcome, entries, added, removed, blob),
            )
        )

    async def history(self, list_name: str | None = None, limit: int = 20) -> list[RefreshRecord]:
        where, args = ("WHERE list_name = ?", (list_name, limit)) if list_name else ("", (limit,))
        rows = await self._store.query(
            lambda c: c.execute(
                "SELECT list_name, at, outcome, entries, added, removed, detail FROM"
                f" hotlist_refreshes {where} ORDER BY id DESC LIMIT ?",
                args,
            ).fetchall()
        )
        return [
            RefreshRecord(
                list_name=name,
                at=datetime.fromisoformat(at),
                outcome=outcome,
                entries=entries,
                added=added,
                removed=removed,
                detail=json.loads(
                    self._store.cipher.decrypt(bytes(blob), f"hotlist|{name}|{at}".encode())
                ),
            )
            for name, at, outcome, entries, added, removed, blob in rows
        ]
