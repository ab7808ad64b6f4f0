"""Is the audit trail intact? Asked before every sharing decision, so it must be cheap.

A full verification (:func:`~appliance._storage.audit.verify_connection`) recomputes every
record's hash. The gate needs the answer on every delivery, and every decision itself appends a
record, so a cache keyed only by the chain head would never hit. Instead the last fully verified
point (record id and hash) is kept, and each check verifies only what was appended since: the
kept record still has its hash, each newer record hashes to its stored hash and chains to the one
before, and the signed head names the last record and verifies with the box's signing key. A full
verification runs at least every ``full_every`` seconds (monotonic clock) to catch an in-place
edit of an older record, and whenever the incremental check finds anything unexpected — it then
gives the full verifier's report (naming the first broken record) as the answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization

from .._storage.audit import (
    GENESIS,
    AuditReport,
    SignedHead,
    load_signing_key,
    record_hash,
    signing_key_path,
    verify_connection,
)

if TYPE_CHECKING:
    from .._storage import Store
    from ..base import Clock

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Verified:
    record_id: int
    digest: bytes
    report: AuditReport


class ChainVerifier:
    """Verifies the store's audit chain, incrementally between full verifications."""

    def __init__(self, store: Store, clock: Clock, full_every: float = 300.0) -> None:
        self.store = store
        self.clock = clock
        self.full_every = full_every
        self._verified: _Verified | None = None
        self._full_at = 0.0
        self._key: bytes | None = None
        self._lock = asyncio.Lock()
        #: how many full verifications ran (the cost a caller pays; for tests and metrics)
        self.full_runs = 0

    async def _trusted_key(self) -> bytes | None:
        if self._key is None:
            key = await asyncio.to_thread(
                load_signing_key, signing_key_path(self.store.path), create=False
            )
            if key is not None:
                self._key = key.public_key().public_bytes(
                    serialization.Encoding.Raw, serialization.PublicFormat.Raw
                )
        return self._key

    def forget(self) -> None:
        """Drop the verified point: the next check is a full verification."""
        self._verified = None

    async def report(self) -> AuditReport:
        async with self._lock:
            key = await self._trusted_key()
            now = self.clock.monotonic()
            verified = self._verified
            if verified is not None and now - self._full_at < self.full_every:
                fresh = await self.store.query(lambda c: _incremental(c, verified, key))
                if fresh is not None:
                    self._verified = fresh
                    return fresh.report
                logger.warning("Audit chain: incremental check failed; verifying in full")
            result = await self.store.query(lambda c: _full(c, key))
            self.full_runs += 1
            self._full_at = now
            self._verified = result if result.report.intact else None
            return result.report


def _last(conn: sqlite3.Connection) -> tuple[int, bytes]:
    row = conn.execute("SELECT id, hash FROM events ORDER BY id DESC LIMIT 1").fetchone()
    if row is None:
        return 0, GENESIS
    return int(row[0]), bytes(row[1]) if isinstance(row[1], bytes) else b""


def _full(conn: sqlite3.Connection, key: bytes | None) -> _Verified:
    conn.execute("BEGIN")
    try:
        report = verify_connection(conn, key)
        record_id, digest = _last(conn)
    finally:
        conn.execute("COMMIT")
    return _Verified(record_id, digest, report)


def _incremental(
    conn: sqlite3.Connection, verified: _Verified, key: bytes | None
) -> _Verified | None:
    """The new verified point if everything appended since ``verified`` checks out, else None."""
    if key is None:
        return None
    conn.execute("BEGIN")
    try:
        if verified.record_id:
            # The last verified record is re-hashed too: an edit of the newest record, the one
            # most worth altering, shows at once rather than at the next full verification.
            row = conn.execute(
                "SELECT at, kind, actor, detail, prev_hash, hash FROM events WHERE id = ?",
                (verified.record_id,),
            ).fetchone()
            if row is None or row[5] != verified.digest or not isinstance(row[3], bytes):
                return None
            if record_hash(verified.record_id, row[0], row[1], row[2], row[3], row[4]) != row[5]:
                return None
        prev_id, prev = verified.record_id, verified.digest
        added = 0
        for record_id, at, kind, actor, detail, stored_prev, stored_hash in conn.execute(
            "SELECT id, at, kind, actor, detail, prev_hash, hash FROM events WHERE id > ?"
            " ORDER BY id",
            (verified.record_id,),
        ):
            if record_id != prev_id + 1 or stored_prev != prev or not isinstance(detail, bytes):
                return None
            if record_hash(record_id, at, kind, actor, detail, prev) != stored_hash:
                return None
            prev_id, prev = record_id, stored_hash
            added += 1
        if prev_id and not _head_ok(conn, prev_id, prev, key):
            return None
    except (sqlite3.Error, TypeError, ValueError):
        return None
    finally:
        conn.execute("COMMIT")
    records = verified.report.records + added
    report = replace(
        verified.report,
        records=records,
        head_id=prev_id or None,
        reason=f"{records} record(s) chained; the signed head (record {prev_id}) verifies",
    )
    return _Verified(prev_id, prev, report)


def _head_ok(conn: sqlite3.Connection, record_id: int, digest: bytes, key: bytes) -> bool:
    stored = {k: v for k, v in conn.execute(
        "SELECT key, value FROM meta WHERE key IN ('audit_head', 'audit_public_key')"
    )}
    if stored.get("audit_public_key") != key:
        return False
    raw = stored.get("audit_head")
    try:
        data = json.loads(raw if isinstance(raw, bytes | str) else b"")
        head = SignedHead(
            int(data["id"]), bytes.fromhex(data["hash"]), bytes.fromhex(data["signature"])
        )
    except (ValueError, KeyError, TypeError):
        return False
    return head.id == record_id and head.hash == digest and head.verifies(key)
