"""The tamper-evident audit trail: a SHA-256 hash chain over ``events`` with an Ed25519-signed head.

Each record's ``hash`` is SHA-256 over a length-prefixed encoding of (id, at, kind, actor, detail
ciphertext, prev_hash), and ``prev_hash`` is the previous record's hash (:data:`GENESIS` for the
first). Editing, inserting or deleting a record breaks the chain at that record; deleting the last
records leaves an intact but shorter chain, which the signed head catches: after every append the
writer stores (last id, last hash, Ed25519 signature) in ``meta`` together with the public key, so
an auditor holding only a replica can check it. The private key is ``audit-signing.key`` beside the
database and the master key (0600, refused when others can read it, like the master key).

Appends run inside the store's single writer transaction (:meth:`AuditChain.append`), which is why
no lock is needed. The writer chains from the *signed head*, not from whatever row is last, so a
truncation stays visible after new events are appended; if the head is missing or its signature
fails, the new record chains from :data:`BROKEN_LINK` and the break stays in the chain for good.

Old records can be pruned once past the audit retention (CJIS 5.4.7: at least a year; see
:func:`prune_audit`). Pruning leaves a signed *checkpoint* in ``meta`` (the id and hash of the last
pruned record, Ed25519-signed) and an ``audit.pruned`` record in the chain, so the remaining
records still verify from the checkpoint, and deleting more from the front still shows.

Rows written before migration 0004 have no hashes (SQLite cannot compute SHA-256 in a migration);
the first append afterwards chains them from genesis, in id order, before appending.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import secrets
import sqlite3
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

if TYPE_CHECKING:
    from . import Store

logger = logging.getLogger(__name__)

KEY_NAME = "audit-signing.key"
#: what the first record chains from
GENESIS = hashlib.sha256(b"alprbox audit chain genesis v1").digest()
#: what a record chains from when the writer found the signed head missing, forged or signed by
#: another key: tampering happened before it, and no later append can hide that
BROKEN_LINK = hashlib.sha256(b"alprbox audit chain: head failed verification v1").digest()

_RECORD_DOMAIN = b"alprbox audit record v1\x00"
_HEAD_DOMAIN = b"alprbox audit head v1\x00"
_CHECKPOINT_DOMAIN = b"alprbox audit checkpoint v1\x00"
_CHECKPOINT_KEY = "audit_checkpoint"
_HEAD_KEY = "audit_head"
_PUBLIC_KEY = "audit_public_key"
_SEED_BYTES = 32


#: CJIS 5.4.7 (C-5): audit records are kept at least a year, whatever the data retention
MIN_RETENTION_DAYS = 365


class AuditKeyError(Exception):
    """The audit signing key file is unusable (readable by others, wrong size); says what to do."""


class AuditWriteError(RuntimeError):
    """An event could not be appended (disk full, I/O error...): what it recorded is refused."""


class WallClock(Protocol):
    """What the store needs of the appliance's clock."""

    def now(self) -> datetime: ...


# -- hashing and signing ---------------------------------------------------------------------


def record_hash(
    record_id: int, at: str, kind: str, actor: str, detail: bytes, prev_hash: bytes
) -> bytes:
    """SHA-256 of a record: every field length-prefixed, so no two records encode alike."""
    digest = hashlib.sha256(_RECORD_DOMAIN)
    for field in (
        record_id.to_bytes(8, "big", signed=True),
        at.encode(),
        kind.encode(),
        actor.encode(),
        detail,
        prev_hash,
    ):
        digest.update(len(field).to_bytes(4, "big"))
        digest.update(field)
    return digest.digest()


def head_message(record_id: int, digest: bytes) -> bytes:
    """The bytes the head signature covers."""
    return _HEAD_DOMAIN + record_id.to_bytes(8, "big", signed=True) + digest


def _signed(public_key: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class SignedHead:
    id: int
    hash: bytes
    signature: bytes

    def verifies(self, public_key: bytes) -> bool:
        return _signed(public_key, self.signature, head_message(self.id, self.hash))


def signing_key_path(db_path: Path) -> Path:
    """``DATA_DIR/audit-signing.key``: the store's database lives in the data directory."""
    return db_path.parent / KEY_NAME


def load_signing_key(path: Path, *, create: bool) -> Ed25519PrivateKey | None:
    """Read the Ed25519 signing key; create it (0600) when ``create`` and absent, else None."""
    if not path.exists():
        if not create:
            return None
        return _create_signing_key(path)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise AuditKeyError(
            f"audit signing key {path} is readable by others (mode {mode:o}); "
            f"chmod 600 {path}: anyone who can read it can re-sign a tampered audit trail"
        )
    seed = path.read_bytes()
    if len(seed) != _SEED_BYTES:
        raise AuditKeyError(
            f"audit signing key {path} is {len(seed)} bytes, expected {_SEED_BYTES}: restore it "
            "from backup, or move it away to start a new key (the change shows in the trail)"
        )
    return Ed25519PrivateKey.from_private_bytes(seed)


def _create_signing_key(path: Path) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Written aside and linked into place, so a second process starting at the same moment sees
    # either no key or a whole one, never a half-written file.
    staging = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(seed)
            f.flush()
            os.fsync(f.fileno())
        os.link(staging, path)
    except FileExistsError:
        loaded = load_signing_key(path, create=False)
        assert loaded is not None
        return loaded
    finally:
        staging.unlink(missing_ok=True)
    logger.info("Created audit signing key %s (back it up with the master key)", path)
    return key


def _public_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _meta(conn: sqlite3.Connection, key: str) -> bytes | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    if row is None:
        return None
    value = row[0]
    # An edited value may come back as text or a number; it must fail verification, not crash it.
    if isinstance(value, str):
        return value.encode()
    return value if isinstance(value, bytes) else b""


def _read_head(conn: sqlite3.Connection) -> SignedHead | None:
    raw = _meta(conn, _HEAD_KEY)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        return SignedHead(
            int(data["id"]), bytes.fromhex(data["hash"]), bytes.fromhex(data["signature"])
        )
    except (ValueError, KeyError, TypeError):
        # An unreadable head is treated like a forged one: it does not verify.
        return SignedHead(0, b"", b"")


def checkpoint_message(record_id: int, digest: bytes) -> bytes:
    """The bytes a pruning checkpoint's signature covers (its own domain: a head signature can
    never pass for a checkpoint, nor the other way round)."""
    return _CHECKPOINT_DOMAIN + record_id.to_bytes(8, "big", signed=True) + digest


@dataclass(frozen=True)
class Checkpoint:
    """The last pruned record: its id and hash, signed."""

    id: int
    hash: bytes
    signature: bytes

    def verifies(self, public_key: bytes) -> bool:
        return _signed(public_key, self.signature, checkpoint_message(self.id, self.hash))


def _read_checkpoint(conn: sqlite3.Connection) -> Checkpoint | None:
    raw = _meta(conn, _CHECKPOINT_KEY)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        return Checkpoint(
            int(data["id"]), bytes.fromhex(data["hash"]), bytes.fromhex(data["signature"])
        )
    except (ValueError, KeyError, TypeError):
        return Checkpoint(0, b"", b"")


# -- appending -------------------------------------------------------------------------------


class AuditChain:
    """Appends chained, signed events; one per store, used only on the store's writer thread."""

    def __init__(self, key_path: Path) -> None:
        self.key_path = key_path
        self._key: Ed25519PrivateKey | None = None
        self._public: bytes = b""

    def _signing_key(self) -> Ed25519PrivateKey:
        if self._key is None:
            key = load_signing_key(self.key_path, create=True)
            assert key is not None
            self._key, self._public = key, _public_bytes(key)
        return self._key

    def append(
        self, conn: sqlite3.Connection, at: str, kind: str, actor: str, detail: bytes
    ) -> int:
        """Insert one event chained to the signed head and re-sign the head; returns its id.

        Runs inside the writer's transaction, so the head read here is the one this append
        replaces: concurrent ``record_event`` calls are serialized by the single writer.
        """
        key = self._signing_key()
        last = conn.execute("SELECT id, hash FROM events ORDER BY id DESC LIMIT 1").fetchone()
        last_id = 0 if last is None else int(last[0])
        head = _read_head(conn)
        if head is None:
            if last is None:
                prev = GENESIS
            elif conn.execute("SELECT 1 FROM events WHERE hash IS NOT NULL LIMIT 1").fetchone():
                logger.error(
                    "Audit trail: the signed head is missing although records are chained; "
                    "event %d is chained as a break (run alprbox audit verify)",
                    last_id + 1,
                )
                prev = BROKEN_LINK
            else:
                prev = self._chain_legacy(conn)
        elif not head.verifies(self._public):
            logger.error(
                "Audit trail: the signed head does not verify with %s (altered, forged or signed "
                "by another key); event %d is chained as a break (run alprbox audit verify)",
                self.key_path,
                max(last_id, head.id) + 1,
            )
            prev = BROKEN_LINK
        else:
            # Chain from the signed head even when rows after it were deleted or added, so the
            # gap stays visible after this append.
            prev = head.hash
            if head.id != last_id:
                logger.error(
                    "Audit trail: the last record is %d but the signed head names %d "
                    "(run alprbox audit verify)",
                    last_id,
                    head.id,
                )
        # Never reuse the id of a truncated record: the gap then names what is missing.
        record_id = max(last_id, head.id if head else 0) + 1
        digest = record_hash(record_id, at, kind, actor, detail, prev)
        conn.execute(
            "INSERT INTO events (id, at, kind, actor, detail, prev_hash, hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (record_id, at, kind, actor, detail, prev, digest),
        )
        self._sign_head(conn, key, record_id, digest)
        return record_id

    def _sign_head(
        self, conn: sqlite3.Connection, key: Ed25519PrivateKey, record_id: int, digest: bytes
    ) -> None:
        signature = key.sign(head_message(record_id, digest))
        head = json.dumps({"id": record_id, "hash": digest.hex(), "signature": signature.hex()})
        stored = _meta(conn, _PUBLIC_KEY)
        if stored != self._public:
            if stored is not None:
                logger.error(
                    "Audit trail: the signing key changed (was %s, now %s from %s)",
                    stored.hex(),
                    self._public.hex(),
                    self.key_path,
                )
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                (_PUBLIC_KEY, self._public),
            )
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (_HEAD_KEY, head.encode())
        )

    def _chain_legacy(self, conn: sqlite3.Connection) -> bytes:
        """Chain, in id order, the rows written before migration 0004; returns the last hash."""
        prev = GENESIS
        rows = conn.execute("SELECT id, at, kind, actor, detail FROM events ORDER BY id").fetchall()
        for record_id, at, kind, actor, detail in rows:
            digest = record_hash(record_id, at, kind, actor, bytes(detail), prev)
            conn.execute(
                "UPDATE events SET prev_hash = ?, hash = ? WHERE id = ?",
                (prev, digest, record_id),
            )
            prev = digest
        logger.info("Audit trail: chained %d event(s) recorded before the chain existed", len(rows))
        return prev


# -- verification ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditReport:
    """What :func:`verify_audit` found. ``first_broken_id`` is None when intact or when only the
    head (not a record) is wrong."""

    intact: bool
    records: int
    first_broken_id: int | None
    reason: str
    #: the record the signed head names, if there is a head
    head_id: int | None = None
    #: hex Ed25519 public key the head was checked against
    public_key: str | None = None
    #: "key file" (checked against this box's signing key) or "database" (the key stored beside
    #: the chain: compare it with the box's published key)
    key_source: str = "database"
    #: the last pruned record the signed checkpoint names, if records were pruned
    checkpoint_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def verify_audit(store: Store) -> AuditReport:
    """Recompute the chain of ``store`` and check the signed head against its last record.

    The public key comes from the box's signing key file when it is there (an attacker who can
    write the database cannot make it agree), else from the database.
    """
    key = await asyncio.to_thread(load_signing_key, signing_key_path(store.path), create=False)
    trusted = None if key is None else _public_bytes(key)
    return await store.query(lambda conn: verify_connection(conn, trusted))


def verify_database(
    path: Path, public_key: bytes | None = None, *, key_source: str = "key file"
) -> AuditReport:
    """Verify a database file opened read-only, without the master key: for a replica.

    :param public_key: the key to trust (e.g. the one the city keeps, see
        :func:`load_public_key`); None trusts the key stored in the database.
    :param key_source: how the report names ``public_key``'s origin.
    """
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return verify_connection(conn, public_key, key_source=key_source)
    finally:
        conn.close()


def load_public_key(path: Path) -> bytes:
    """An Ed25519 public key from ``path``: 64 hex digits (as ``alprbox audit verify`` prints
    it), a PEM ``PUBLIC KEY`` block, or the 32 raw bytes. ValueError says what was wrong."""
    data = path.read_bytes()
    text = data.decode("ascii", "replace").strip()
    if b"-----BEGIN" in data:
        key = serialization.load_pem_public_key(data)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"{path} holds a public key that is not Ed25519")
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    if len(text) == 64:
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    if len(data) == 32:
        return data
    raise ValueError(
        f"{path} is not an Ed25519 public key: expected 64 hex digits, a PEM PUBLIC KEY block "
        "or 32 raw bytes"
    )


def public_key_pem(public_key: bytes) -> str:
    """The key as a PEM ``PUBLIC KEY`` block, for the city to keep."""
    return Ed25519PublicKey.from_public_bytes(public_key).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def verify_connection(
    conn: sqlite3.Connection, trusted_key: bytes | None, *, key_source: str = "key file"
) -> AuditReport:
    """Verify in one read transaction, so a concurrent append cannot look like a break."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
    if not {"prev_hash", "hash"} <= columns:
        return AuditReport(
            False, 0, None, "the database predates the audit chain (schema before version 4)"
        )
    own_transaction = not conn.in_transaction
    if own_transaction:
        conn.execute("BEGIN")
    try:
        return _verify(conn, trusted_key, key_source)
    finally:
        if own_transaction:
            conn.execute("COMMIT")


def _verify(conn: sqlite3.Connection, trusted_key: bytes | None, key_source: str) -> AuditReport:
    head = _read_head(conn)
    checkpoint = _read_checkpoint(conn)
    stored_key = _meta(conn, _PUBLIC_KEY)
    key = trusted_key if trusted_key is not None else stored_key
    source = key_source if trusted_key is not None else "database"

    def report(intact: bool, records: int, broken: int | None, reason: str) -> AuditReport:
        return AuditReport(
            intact,
            records,
            broken,
            reason,
            head_id=None if head is None else head.id,
            public_key=None if key is None else key.hex(),
            key_source=source,
            checkpoint_id=None if checkpoint is None else checkpoint.id,
        )

    records = 0
    broken: tuple[int, str] | None = None
    prev_id: int | None = None
    prev_hash = GENESIS
    if checkpoint is not None:
        # Records up to the checkpoint were pruned: the rest must chain from its signed hash.
        if key is None:
            return report(False, 0, None, "records were pruned but the signing public key is "
                          "missing, so the checkpoint cannot be checked")
        if not checkpoint.verifies(key):
            return report(False, 0, None, "the signature of the pruning checkpoint does not "
                          "verify (forged or altered)")
        prev_id, prev_hash = checkpoint.id, checkpoint.hash
    rows = conn.execute(
        "SELECT id, at, kind, actor, detail, prev_hash, hash FROM events ORDER BY id"
    )
    for record_id, at, kind, actor, detail, stored_prev, stored_hash in rows:
        records += 1
        if broken is None:
            broken = _check_record(
                record_id, at, kind, actor, detail, stored_prev, stored_hash, prev_id, prev_hash
            )
        prev_id, prev_hash = record_id, stored_hash if isinstance(stored_hash, bytes) else b""
    if broken is not None:
        return report(False, records, broken[0], broken[1])

    last_id = prev_id or 0
    origin = (
        "genesis" if checkpoint is None
        else f"the signed checkpoint (records 1..{checkpoint.id} pruned)"
    )
    if head is None:
        if records == 0:
            return report(True, 0, None, "no audit records yet")
        return report(False, records, None, "the signed head is missing from the database")
    if key is None:
        return report(False, records, None, "the signing public key is missing from the database")
    if trusted_key is not None and stored_key != trusted_key:
        return report(
            False,
            records,
            None,
            "the public key stored in the database is not this box's signing key",
        )
    if not head.verifies(key):
        return report(
            False, records, None, "the signature of the head does not verify (forged or altered)"
        )
    if head.id > last_id:
        return report(
            False,
            records,
            last_id + 1,
            f"{_span(last_id + 1, head.id)} missing: the chain ends at record {last_id} but "
            f"the signed head names record {head.id} (truncated)",
        )
    if head.id < last_id:
        return report(
            False,
            records,
            head.id + 1,
            f"{_span(head.id + 1, last_id)} after the signed head (record {head.id}): "
            "added without the signing key",
        )
    if head.hash != prev_hash:
        return report(False, records, last_id, f"record {last_id} does not match the signed head")
    return report(
        True,
        records,
        None,
        f"{records} record(s) chained from {origin}; the signed head (record {head.id}) "
        "verifies",
    )


def _check_record(
    record_id: int,
    at: object,
    kind: object,
    actor: object,
    detail: object,
    stored_prev: object,
    stored_hash: object,
    prev_id: int | None,
    prev_hash: bytes,
) -> tuple[int, str] | None:
    """(id to name, reason) for the first problem with this record, or None."""
    if stored_hash is None or stored_prev is None:
        return record_id, (
            f"record {record_id} is not chained (no hash): altered, or written before the chain "
            "existed and not chained yet (the next recorded event chains such records)"
        )
    if not (
        isinstance(at, str)
        and isinstance(kind, str)
        and isinstance(actor, str)
        and isinstance(detail, bytes)
        and isinstance(stored_prev, bytes)
        and isinstance(stored_hash, bytes)
    ):
        return record_id, f"record {record_id} has columns of the wrong type (altered)"
    if record_hash(record_id, at, kind, actor, detail, stored_prev) != stored_hash:
        return record_id, f"record {record_id} was altered: its hash does not match its contents"
    if stored_prev == prev_hash:
        return None
    if stored_prev == BROKEN_LINK:
        return record_id, (
            f"record {record_id} was appended after the writer found the signed head missing, "
            "forged or signed by another key: the trail was tampered with before it"
        )
    if prev_id is None:
        if record_id > 1:
            return 1, (
                f"{_span(1, record_id - 1)} missing: record {record_id} is the first and "
                "does not chain from genesis"
            )
        return record_id, f"record {record_id} does not chain from genesis"
    if record_id > prev_id + 1:
        return prev_id + 1, (
            f"{_span(prev_id + 1, record_id - 1)} missing: "
            f"record {record_id} does not follow record {prev_id}"
        )
    return record_id, f"record {record_id} does not follow record {prev_id} (prev_hash differs)"


def _span(first: int, last: int) -> str:
    return f"record {first} is" if first == last else f"records {first}..{last} are"


# -- retention -------------------------------------------------------------------------------


class AuditPruneRefused(ValueError):
    """A prune the audit retention does not allow (too recent, or the chain does not verify)."""


@dataclass(frozen=True)
class PruneResult:
    pruned: int  #: records removed
    through_id: int | None  #: the last pruned record (the checkpoint), None when none was
    before: datetime
    event_id: int  #: the ``audit.pruned`` record that documents this prune


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


async def prune_audit(
    store: Store,
    before: datetime,
    *,
    actor: str,
    now: datetime | None = None,
    retention_days: int = MIN_RETENTION_DAYS,
) -> PruneResult:
    """Remove the audit records older than ``before``, leaving a signed checkpoint.

    Only a prefix of the chain goes (records 1..N, where N+1 is the first record at or after
    ``before``), and never the last record. Refused (:class:`AuditPruneRefused`, recorded as
    ``audit.prune_refused``) when ``before`` is less than ``retention_days`` ago, when
    ``retention_days`` is under a year (CJIS 5.4.7), or when the chain does not verify (pruning
    would hide where it broke). Otherwise one write transaction deletes the records, stores the
    signed checkpoint and appends an ``audit.pruned`` record, so the prune is itself audited.
    """
    now = now or (store.clock.now() if store.clock is not None else datetime.now(UTC))
    if before.tzinfo is None:
        raise AuditPruneRefused("the prune date needs a time zone")
    refusal = None
    if retention_days < MIN_RETENTION_DAYS:
        refusal = (f"audit records are kept at least {MIN_RETENTION_DAYS} days (CJIS 5.4.7); "
                   f"a retention of {retention_days} days is not allowed")
    elif before > now - timedelta(days=retention_days):
        refusal = (f"{before.date().isoformat()} is less than {retention_days} days ago; audit "
                   f"records before {(now - timedelta(days=retention_days)).date().isoformat()}"
                   " at most may be pruned")
    else:
        report = await verify_audit(store)
        if not report.intact:
            refusal = (f"the audit trail does not verify ({report.reason}); pruning would hide "
                       "the break: investigate it first")
    if refusal is not None:
        await store.record_event("audit.prune_refused", actor,
                                 {"before": _utc(before), "why": refusal})
        raise AuditPruneRefused(refusal)

    if store._audit is None:
        store._audit = AuditChain(signing_key_path(store.path))
    chain = store._audit
    cipher = store.cipher
    at = _utc(now)
    cutoff = _utc(before)

    def op(conn: sqlite3.Connection) -> tuple[int, int | None, int]:
        first, last = conn.execute("SELECT min(id), max(id) FROM events").fetchone()
        kept = conn.execute("SELECT min(id) FROM events WHERE at >= ?", (cutoff,)).fetchone()[0]
        # A prefix only (ids are the chain's order, not times), and never the last record.
        through = min(kept if kept is not None else last or 0, last or 0) - 1
        pruned, through_id = 0, None
        if first is not None and through >= first:
            digest = conn.execute("SELECT hash FROM events WHERE id = ?", (through,)).fetchone()[0]
            pruned = conn.execute("DELETE FROM events WHERE id <= ?", (through,)).rowcount
            signature = chain._signing_key().sign(checkpoint_message(through, bytes(digest)))
            record = {"id": through, "hash": bytes(digest).hex(), "signature": signature.hex(),
                      "at": at}
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                         (_CHECKPOINT_KEY, json.dumps(record).encode()))
            through_id = through
        detail = {"before": cutoff, "pruned": pruned, "through_id": through_id,
                  "through_hash": None if through_id is None else bytes(digest).hex(),
                  "retention_days": retention_days}
        blob = cipher.encrypt(json.dumps(detail).encode(), f"event|{at}|audit.pruned".encode())
        return pruned, through_id, chain.append(conn, at, "audit.pruned", actor, blob)

    try:
        pruned, through_id, event_id = await store.write(op)
    except Exception as err:
        store.audit_failure = f"{type(err).__name__}: {err}"
        raise AuditWriteError(f"the audit trail could not be pruned: {err}") from err
    logger.info("Audit trail: pruned %d record(s) before %s (checkpoint at record %s)",
                pruned, cutoff, through_id)
    return PruneResult(pruned, through_id, before, event_id)


async def prune_expired_audit(
    store: Store, *, actor: str = "retention", retention_days: int = MIN_RETENTION_DAYS,
    now: datetime | None = None,
) -> PruneResult:
    """What a retention scheduler calls: prune records older than ``retention_days`` (≥ 365)."""
    now = now or (store.clock.now() if store.clock is not None else datetime.now(UTC))
    return await prune_audit(store, now - timedelta(days=retention_days), actor=actor, now=now,
                             retention_days=retention_days)
