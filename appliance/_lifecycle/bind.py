"""Binding a store's database to its keys.db when the store opens.

The database records which key store it belongs to (``meta.keyring_id``), so a keys.db from
another box, or a missing one, is named at start-up instead of surfacing as decryption errors.
A store written before keys.db (``meta.key_check``, values under keys derived from the master
key) is checked against the master key as before, then its derived keys are imported into a new
keys.db, so old values and the plate index stay readable and rotate with everything else.
"""

from __future__ import annotations

import hmac
import logging
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from .keyring import KEYS_DB, KeyRing, MasterKeyError

if TYPE_CHECKING:
    from .._crypto import FieldCipher

logger = logging.getLogger(__name__)


def _meta(conn: sqlite3.Connection, key: str) -> bytes | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else bytes(row[0])


def ensure_lifecycle_schema(conn: sqlite3.Connection) -> None:
    """Apply migration 0007 to a database that skipped it.

    Migrations run by ``user_version``; a development database already moved past 7 by a
    later-numbered migration written at the same time (0008, 0010) never ran 0007.
    """
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'images'").fetchone():
        return
    from .._storage import migrations

    [sql] = [text for number, text in migrations() if number == 7]
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in sql.split(";\n"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    logger.warning("Database had skipped migration 0007 (lifecycle); applied it now")


def bind_keyring(conn: sqlite3.Connection, db_path: Path, cipher: FieldCipher) -> KeyRing:
    """Open (or create) ``keys.db`` beside the database and attach ``cipher`` to it."""
    ensure_lifecycle_schema(conn)
    keys_path = db_path.parent / KEYS_DB
    bound = _meta(conn, "keyring_id")
    legacy_check = _meta(conn, "key_check")
    if bound is not None:
        ring = KeyRing.open(
            keys_path, cipher.master_key, create=False, city_public=cipher.city_public_key
        )
        if ring.keyring_id != bound.decode():
            ring.close()
            raise MasterKeyError(
                f"{keys_path} belongs to another store (key store {ring.keyring_id}, the "
                f"database expects {bound.decode()}): restore this store's keys.db"
            )
        cipher.attach(ring, legacy_store=False)
        return ring
    legacy = legacy_check is not None
    if legacy and not hmac.compare_digest(legacy_check or b"", cipher.key_check):
        raise MasterKeyError(
            f"the master key does not match the store {db_path}: it was written with "
            "another key. Restore the original key file; the data cannot be read without it"
        )
    ring = KeyRing.open(
        keys_path, cipher.master_key, create=True, city_public=cipher.city_public_key
    )
    try:
        cipher.attach(ring, legacy_store=legacy)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('keyring_id', ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (ring.keyring_id.encode(),),
        )
        # The old fingerprint would name the old master key after a rotation: keys.db checks it.
        conn.execute("DELETE FROM meta WHERE key = 'key_check'")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        ring.close()
        raise
    if legacy:
        logger.info("Store %s: keys moved into %s (per class and day)", db_path, keys_path)
    return ring
