"""``keys.db``: the wrapped data keys, one per retention class and UTC day, apart from the data.

Crypto-shredding only works if the keys do not travel with the data (NOTES.md, "Storage and
replication"): with the wrapped day keys inside the replicated database an older replica state
still decrypted a shredded day. So the keys live in their own small SQLite file beside the store
(WAL, ``secure_delete``, replicated by its own litestream process with a short snapshot
retention), and destroying a day's key is one ``DELETE`` plus a checkpoint.

Each data key is 32 random bytes, wrapped (AES-256-GCM, associated data naming its class and day)
by a key derived from the master key. Rotation re-wraps every data key under a new master key in
one transaction; no data is rewritten. A fingerprint of the master key in ``meta`` says "wrong key
or passphrase" instead of failing deep inside a decryption.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

logger = logging.getLogger(__name__)

KEYS_DB = "keys.db"
KEY_BYTES = 32
_NONCE = 12

#: long-lived classes (one key, day "-"): records of users, hot lists, BOLOs, audit details...
RECORDS = "records"
#: the HMAC key of the plate blind index
INDEX = "index"
#: the field key of stores written before keys.db (format 1 ciphertexts)
LEGACY = "legacy"
UNDATED = "-"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS data_keys (
    id          INTEGER PRIMARY KEY,
    class       TEXT NOT NULL,
    day         TEXT NOT NULL,
    wrapped     BLOB NOT NULL,
    city_wrapped BLOB,
    created_at  TEXT NOT NULL,
    UNIQUE (class, day)
);
CREATE TABLE IF NOT EXISTS shredded (
    key_id      INTEGER PRIMARY KEY,
    class       TEXT NOT NULL,
    day         TEXT NOT NULL,
    at          TEXT NOT NULL
);
"""


class MasterKeyError(Exception):
    """The master key is missing, unreadable or wrong; says which and what to do."""


class KeyShredded(ValueError):
    """The value's data key was destroyed by a purge: the value is gone for good, by design."""


@dataclass(frozen=True)
class DataKey:
    id: int
    klass: str
    day: str
    aead: AESGCM
    raw: bytes


def derive(key: bytes, label: bytes) -> bytes:
    return hmac.new(key, label, hashlib.sha256).digest()


def master_check(master: bytes) -> bytes:
    """A fingerprint of the master key, stored in keys.db to recognize a wrong key early."""
    return derive(master, b"alprbox master check v1")[:16]


def _wrap_ad(klass: str, day: str) -> bytes:
    return f"alprbox data key|{klass}|{day}".encode()


def wrap(master: bytes, klass: str, day: str, raw: bytes) -> bytes:
    nonce = secrets.token_bytes(_NONCE)
    kek = AESGCM(derive(master, b"alprbox key wrap v1"))
    return nonce + kek.encrypt(nonce, raw, _wrap_ad(klass, day))


def unwrap(master: bytes, klass: str, day: str, wrapped: bytes) -> bytes:
    kek = AESGCM(derive(master, b"alprbox key wrap v1"))
    return kek.decrypt(wrapped[:_NONCE], wrapped[_NONCE:], _wrap_ad(klass, day))


_CITY_INFO = b"alprbox city wrap v1"


def _city_kek(shared: bytes, ephemeral: bytes, recipient: bytes) -> AESGCM:
    return AESGCM(
        HKDF(hashes.SHA256(), 32, salt=ephemeral + recipient, info=_CITY_INFO).derive(shared)
    )


def seal_for_city(city_public: bytes, klass: str, day: str, raw: bytes) -> bytes:
    """Seal a data key to a city's X25519 public key: ephemeral ECDH + HKDF + AES-GCM."""
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = ephemeral.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(city_public))
    nonce = secrets.token_bytes(_NONCE)
    kek = _city_kek(shared, ephemeral_public, city_public)
    return ephemeral_public + nonce + kek.encrypt(nonce, raw, _wrap_ad(klass, day))


def open_city_seal(city_private: X25519PrivateKey, klass: str, day: str, sealed: bytes) -> bytes:
    recipient = city_private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    ephemeral, nonce, body = sealed[:32], sealed[32 : 32 + _NONCE], sealed[32 + _NONCE :]
    shared = city_private.exchange(X25519PublicKey.from_public_bytes(ephemeral))
    return _city_kek(shared, ephemeral, recipient).decrypt(nonce, body, _wrap_ad(klass, day))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def connect_keys(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 5000")
    # A destroyed key must not linger in a free page (or a replica snapshot of one).
    conn.execute("PRAGMA secure_delete = ON")
    conn.execute("PRAGMA journal_mode = WAL")
    # A key must be on disk before any data it encrypts is acknowledged.
    conn.execute("PRAGMA synchronous = FULL")
    conn.executescript(_SCHEMA)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(data_keys)")}
    if "city_wrapped" not in columns:  # keys.db made before the city wrap existed
        conn.execute("ALTER TABLE data_keys ADD COLUMN city_wrapped BLOB")
    return conn


def connect_readonly(path: Path) -> sqlite3.Connection:
    """Open a database of a restored copy so that nothing at all is written: ``immutable``
    takes no locks and makes no ``-shm``/``-wal`` file. A copy with a non-empty write-ahead log
    is being written by someone (or was stopped mid-write) and is refused."""
    wal = Path(f"{path}-wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise MasterKeyError(
            f"{path} has a write-ahead log: a process has it open for writing, or stopped "
            "mid-write. Inspect a copy nobody writes to (restore a fresh one)"
        )
    if not path.is_file():
        raise MasterKeyError(f"no database at {path}")
    return sqlite3.connect(
        f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True, check_same_thread=False
    )


class KeyRing:
    """The unwrapped data keys of one store, loaded on demand and cached in memory.

    Safe to use from several threads: lookups of cached keys take no lock, creating or destroying
    a key does.
    """

    def __init__(self, path: Path, master: bytes, city_public: bytes | None = None) -> None:
        self.path = path
        self._master = master
        #: a city's X25519 public key: each data key is also sealed to it (docs/data-lifecycle.md)
        self._city_public = city_public
        self._lock = threading.Lock()
        self._by_id: dict[int, DataKey] = {}
        self._by_class_day: dict[tuple[str, str], DataKey] = {}
        self._conn = connect_keys(path)

    @classmethod
    def open(
        cls, path: Path, master: bytes, *, create: bool, city_public: bytes | None = None
    ) -> KeyRing:
        """Open keys.db and check the master key against it; create it when ``create``."""
        if not path.exists() and not create:
            raise MasterKeyError(
                f"the key store {path} is missing but the database beside it holds encrypted "
                "data: restore keys.db from its backup or replica; without it the data cannot "
                "be read"
            )
        ring = cls(path, master, city_public)
        try:
            ring._check_master()
            if city_public is not None:
                ring._seal_all_for_city()
        except Exception:
            ring.close()
            raise
        return ring

    def _check_master(self) -> None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'master_check'").fetchone()
        if row is None:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('master_check', ?),"
                " ('keyring_id', ?)",
                (master_check(self._master), secrets.token_hex(8).encode()),
            )
            self._conn.execute("COMMIT")
            row = self._conn.execute(
                "SELECT value FROM meta WHERE key = 'master_check'"
            ).fetchone()
        if not hmac.compare_digest(bytes(row[0]), master_check(self._master)):
            raise MasterKeyError(
                f"the master key does not match the key store {self.path}: wrong key file or "
                "wrong passphrase. Restore the right key (or passphrase); the stored data "
                "cannot be read without it"
            )

    @property
    def keyring_id(self) -> str:
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'keyring_id'").fetchone()
        return bytes(row[0]).decode()

    def meta(self, key: str) -> bytes | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def set_meta(self, key: str, value: bytes) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def close(self) -> None:
        self._conn.close()

    # -- keys --------------------------------------------------------------------------------

    def key(self, klass: str, day: str = UNDATED, *, create: bool = True) -> DataKey:
        """The data key of a class and day, created (and committed) on first use."""
        found = self._by_class_day.get((klass, day))
        if found is not None:
            return found
        with self._lock:
            row = self._conn.execute(
                "SELECT id, wrapped FROM data_keys WHERE class = ? AND day = ?", (klass, day)
            ).fetchone()
            if row is None:
                if not create:
                    raise KeyError((klass, day))
                return self._create(klass, day, secrets.token_bytes(KEY_BYTES))
            return self._remember(int(row[0]), klass, day, bytes(row[1]))

    def import_key(self, klass: str, day: str, raw: bytes) -> DataKey:
        """Store a given key (the legacy field and index keys of a pre-keys.db store)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT id, wrapped FROM data_keys WHERE class = ? AND day = ?", (klass, day)
            ).fetchone()
            if row is not None:
                return self._remember(int(row[0]), klass, day, bytes(row[1]))
            return self._create(klass, day, raw)

    def has(self, klass: str, day: str = UNDATED) -> bool:
        if (klass, day) in self._by_class_day:
            return True
        with self._lock:
            row = self._conn.execute(
                "SELECT 1 FROM data_keys WHERE class = ? AND day = ?", (klass, day)
            ).fetchone()
        return row is not None

    def _create(self, klass: str, day: str, raw: bytes) -> DataKey:
        shredded = self._conn.execute(
            "SELECT at FROM shredded WHERE class = ? AND day = ?", (klass, day)
        ).fetchone()
        if shredded is not None:
            raise KeyShredded(
                f"{klass} data of {day} was purged on {shredded[0]}; nothing new is written "
                "under a destroyed day"
            )
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            # Checked inside the transaction: a key wrapped under a master key that another
            # process has just rotated away would be unreadable after the restart.
            check = self._conn.execute(
                "SELECT value FROM meta WHERE key = 'master_check'"
            ).fetchone()
            if check is None or bytes(check[0]) != master_check(self._master):
                raise MasterKeyError(
                    f"the master key of {self.path} changed under this process (keys rotated "
                    "elsewhere): restart the appliance"
                )
            city = (
                seal_for_city(self._city_public, klass, day, raw)
                if self._city_public is not None
                else None
            )
            cursor = self._conn.execute(
                "INSERT INTO data_keys (class, day, wrapped, city_wrapped, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (klass, day, wrap(self._master, klass, day, raw), city, _now()),
            )
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise
        assert cursor.lastrowid is not None
        return self._cache(int(cursor.lastrowid), klass, day, raw)

    def _remember(self, key_id: int, klass: str, day: str, wrapped: bytes) -> DataKey:
        try:
            raw = unwrap(self._master, klass, day, wrapped)
        except InvalidTag as err:
            raise MasterKeyError(
                f"data key {klass}/{day} in {self.path} does not unwrap with this master key "
                "(keys.db altered, or wrapped by another key)"
            ) from err
        return self._cache(key_id, klass, day, raw)

    def _cache(self, key_id: int, klass: str, day: str, raw: bytes) -> DataKey:
        key = DataKey(key_id, klass, day, AESGCM(raw), raw)
        self._by_id[key_id] = key
        self._by_class_day[(klass, day)] = key
        return key

    def _seal_all_for_city(self) -> None:
        """Seal every key not yet sealed to the configured city key (or sealed to another)."""
        assert self._city_public is not None
        fingerprint = derive(self._city_public, b"alprbox city key id v1")[:8]
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                if self.meta("city_key_id") != fingerprint:
                    self._conn.execute("UPDATE data_keys SET city_wrapped = NULL")
                rows = self._conn.execute(
                    "SELECT id, class, day, wrapped FROM data_keys WHERE city_wrapped IS NULL"
                ).fetchall()
                for key_id, klass, day, wrapped in rows:
                    raw = unwrap(self._master, klass, day, bytes(wrapped))
                    self._conn.execute(
                        "UPDATE data_keys SET city_wrapped = ? WHERE id = ?",
                        (seal_for_city(self._city_public, klass, day, raw), key_id),
                    )
                self._conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('city_key_id', ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (fingerprint,),
                )
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    def by_id(self, key_id: int) -> DataKey:
        """The key a ciphertext names; :class:`KeyShredded` when a purge destroyed it."""
        found = self._by_id.get(key_id)
        if found is not None:
            return found
        with self._lock:
            row = self._conn.execute(
                "SELECT class, day, wrapped FROM data_keys WHERE id = ?", (key_id,)
            ).fetchone()
            if row is not None:
                return self._remember(key_id, row[0], row[1], bytes(row[2]))
            gone = self._conn.execute(
                "SELECT class, day, at FROM shredded WHERE key_id = ?", (key_id,)
            ).fetchone()
        if gone is not None:
            raise KeyShredded(
                f"this value's key ({gone[0]} data of {gone[1]}) was destroyed by the purge of "
                f"{gone[2]}: the value is unreadable everywhere, by design"
            )
        raise MasterKeyError(
            f"data key {key_id} is not in {self.path}: keys.db belongs to another store or is "
            "an older copy"
        )

    def destroy(self, klass: str, day: str) -> int | None:
        """Destroy a data key for good; return its id (None if there was none).

        ``secure_delete`` zeroes the row's bytes, and the checkpoint moves that into the main
        file and truncates the WAL, so no copy of the wrapped key is left in either.
        """
        with self._lock:
            row = self._conn.execute(
                "SELECT id FROM data_keys WHERE class = ? AND day = ?", (klass, day)
            ).fetchone()
            if row is None:
                return None
            key_id = int(row[0])
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute("DELETE FROM data_keys WHERE id = ?", (key_id,))
            self._conn.execute(
                "INSERT OR REPLACE INTO shredded (key_id, class, day, at) VALUES (?, ?, ?, ?)",
                (key_id, klass, day, _now()),
            )
            self._conn.execute("COMMIT")
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._by_id.pop(key_id, None)
            self._by_class_day.pop((klass, day), None)
        logger.info("Destroyed the %s data key of %s (crypto-shredded)", klass, day)
        return key_id

    def list_keys(self) -> list[tuple[int, str, str, str]]:
        """(id, class, day, created_at) of every live key."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, class, day, created_at FROM data_keys ORDER BY class, day"
            ).fetchall()
        return [(int(r[0]), r[1], r[2], r[3]) for r in rows]

    def shredded(self) -> list[tuple[int, str, str, str]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT key_id, class, day, at FROM shredded ORDER BY class, day"
            ).fetchall()
        return [(int(r[0]), r[1], r[2], r[3]) for r in rows]

    # -- rotation ----------------------------------------------------------------------------

    def rotate(self, new_master: bytes, extra_meta: dict[str, bytes] | None = None) -> int:
        """Re-wrap every data key under ``new_master`` in one transaction; return how many.

        ``extra_meta`` (the new passphrase's KDF salt) is committed in the same transaction, so
        keys.db is never half old, half new.
        """
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                rows = self._conn.execute(
                    "SELECT id, class, day, wrapped FROM data_keys"
                ).fetchall()
                for key_id, klass, day, wrapped in rows:
                    raw = unwrap(self._master, klass, day, bytes(wrapped))
                    self._conn.execute(
                        "UPDATE data_keys SET wrapped = ? WHERE id = ?",
                        (wrap(new_master, klass, day, raw), key_id),
                    )
                self._conn.execute(
                    "UPDATE meta SET value = ? WHERE key = 'master_check'",
                    (master_check(new_master),),
                )
                for key, value in (extra_meta or {}).items():
                    self._conn.execute(
                        "INSERT INTO meta (key, value) VALUES (?, ?)"
                        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        (key, value),
                    )
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            # The old wrappings sit in the WAL until a checkpoint overwrites them.
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._master = new_master
        return len(rows)
