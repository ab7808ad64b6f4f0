"""Searching a restored copy read-only (``alprbox copy search``), for city IT.

Nothing in the copy is written: ``alprbox.db`` and ``keys.db`` are opened ``immutable``
(:func:`~appliance._lifecycle.keyring.connect_readonly`: no locks, no ``-shm``/``-wal``), the
keys are unwrapped in memory, and no key is ever created. What makes a search possible is the
key city IT holds: the site's master key file, its passphrase (the salt is in the copy's
keys.db) or, where the site seals its day keys to the city, the city's private key. Days the box
purged before the copy was made are unreadable in it (their keys are gone from keys.db); those
reads are counted, never shown.

Every search needs a purpose and a case number, and is recorded, with what was asked and which
reads were shown, in the copy's signed access log (:mod:`.copy_log`), as is every refusal for a
wrong key.
"""

from __future__ import annotations

import fnmatch
import json
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import yaml
from pydantic import ValidationError

from .._crypto import FieldCipher, KeyShredded, normalize_plate, read_key_file
from .._lifecycle.city import city_cipher
from .._lifecycle.keyprovider import derive_from_passphrase
from .._lifecycle.keyring import (
    KEYS_DB,
    DataKey,
    KeyRing,
    MasterKeyError,
    connect_readonly,
    master_check,
)
from .._lifecycle.records import ReadRecords, utc
from .._lifecycle.settings import KeySettings
from .._storage.plate_keys import PLATE_READS, plate_reads_args
from ..settings import SecretRef

MAIN_DB = "alprbox.db"


class CopyError(Exception):
    """The copy cannot be searched as asked; says why."""


class ReadOnlyKeyRing(KeyRing):
    """A copy's keys.db opened immutable and unwrapped with the site's master key."""

    def __init__(self, path: Path, master: bytes) -> None:
        self.path = path
        self._master = master
        self._city_public = None
        self._lock = threading.Lock()
        self._by_id: dict[int, DataKey] = {}
        self._by_class_day: dict[tuple[str, str], DataKey] = {}
        self._conn = connect_readonly(path)
        try:
            self._check_master()
        except BaseException:
            self._conn.close()
            raise

    def _check_master(self) -> None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'master_check'").fetchone()
        if row is None:
            raise MasterKeyError(f"{self.path} holds no master key check: not a key store")
        if bytes(row[0]) != master_check(self._master):
            raise MasterKeyError(
                f"the key given does not open {self.path}: wrong key file or passphrase"
            )

    def key(self, klass: str, day: str = "-", *, create: bool = True) -> DataKey:
        return super().key(klass, day, create=False)

    def import_key(self, klass: str, day: str, raw: bytes) -> DataKey:
        raise MasterKeyError("a restored copy is read-only")

    def destroy(self, klass: str, day: str) -> int | None:
        raise MasterKeyError("a restored copy is read-only")

    def set_meta(self, key: str, value: bytes) -> None:
        raise MasterKeyError("a restored copy is read-only")


@dataclass(frozen=True)
class KeySource:
    """Which key opens the copy: exactly one of these."""

    key_file: Path | None = None
    passphrase: SecretRef | None = None
    city_key: Path | None = None

    def describe(self) -> str:
        if self.key_file is not None:
            return f"master key file {self.key_file}"
        if self.passphrase is not None:
            return f"passphrase from {self.passphrase.ref}"
        return f"city key {self.city_key}"

    @classmethod
    def from_config(cls, text: str) -> KeySource:
        """The ``keys:`` section of a site (or city-copy) config, validated alone."""
        data = yaml.safe_load(text) or {}
        section = data.get("keys") if isinstance(data, dict) else None
        if not isinstance(section, dict):
            raise CopyError("the config has no keys: section (give --key-file or --passphrase)")
        try:
            keys = KeySettings.model_validate(section)
        except ValidationError as err:
            raise CopyError(f"keys: {err.errors()[0]['msg']}") from err
        if keys.passphrase is not None:
            return cls(passphrase=keys.passphrase)
        if keys.master_key_file is not None:
            return cls(key_file=keys.master_key_file)
        raise CopyError("the config's keys: section names no master_key_file or passphrase")


def copy_cipher(copy_dir: Path, source: KeySource) -> FieldCipher:
    """A decrypt-only cipher over the copy's keys.db. Raises :class:`MasterKeyError` for a
    wrong or unreadable key."""
    keys_db = copy_dir / KEYS_DB
    if not keys_db.is_file():
        raise MasterKeyError(
            f"no {KEYS_DB} in {copy_dir}: restore it with the copy (or copy the escrowed one in)"
        )
    if source.city_key is not None:
        return city_cipher(keys_db, source.city_key)
    if source.key_file is not None:
        master = read_key_file(source.key_file)
    else:
        assert source.passphrase is not None
        try:
            passphrase = source.passphrase.get()
        except LookupError as err:
            raise MasterKeyError(str(err)) from err
        conn = connect_readonly(keys_db)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'kdf_salt'").fetchone()
        finally:
            conn.close()
        if row is None:
            raise MasterKeyError(f"{keys_db} was made with a key file, not a passphrase")
        master = derive_from_passphrase(passphrase, bytes(row[0]))
    ring = ReadOnlyKeyRing(keys_db, master)
    cipher = FieldCipher(master)
    try:
        cipher.attach_readonly(ring)
    except KeyError as err:
        ring.close()
        raise MasterKeyError(f"{keys_db} has no plate index key") from err
    return cipher


@dataclass
class Query:
    purpose: str
    case_number: str
    plate: str | None = None
    pattern: str | None = None
    read_ids: list[str] = field(default_factory=list)
    start: datetime | None = None
    end: datetime | None = None
    limit: int = 100

    def check(self) -> None:
        if len(self.purpose.strip()) < 3:
            raise CopyError("give the purpose of the search (--purpose)")
        if not self.case_number.strip():
            raise CopyError("give the case or incident number (--case)")
        asked = sum(1 for x in (self.plate, self.pattern, self.read_ids or None) if x)
        if asked != 1:
            raise CopyError("search by one of --plate, --pattern or --read")
        if self.pattern is not None and (self.start is None or self.end is None):
            raise CopyError("a --pattern search decrypts a time window: give --start and --end")
        if self.start and self.end and self.start >= self.end:
            raise CopyError("--start must be before --end")

    def as_detail(self) -> dict[str, Any]:
        return {
            "purpose": self.purpose,
            "case_number": self.case_number,
            "plate": self.plate,
            "pattern": self.pattern,
            "read_ids": self.read_ids,
            "start": utc(self.start) if self.start else None,
            "end": utc(self.end) if self.end else None,
            "limit": self.limit,
        }


@dataclass
class SearchResult:
    reads: list[dict[str, Any]]
    #: reads the query matched (by index or window) whose day key is gone: purged on the box
    unreadable: int
    copy_id: str

    def as_dict(self) -> dict[str, Any]:
        return {"reads": self.reads, "unreadable": self.unreadable, "copy": self.copy_id}


def search(copy_dir: Path, cipher: FieldCipher, query: Query) -> SearchResult:
    """Run one query against the copy, read-only."""
    query.check()
    conn = connect_readonly(copy_dir / MAIN_DB)
    try:
        bound = conn.execute("SELECT value FROM meta WHERE key = 'keyring_id'").fetchone()
        ring_id = cipher.ring.keyring_id
        if bound is not None and bytes(bound[0]).decode() != ring_id:
            raise MasterKeyError(
                f"{copy_dir / KEYS_DB} belongs to another store than {copy_dir / MAIN_DB}"
            )
        rows = _candidates(conn, cipher, query)
        images = {
            (r[0], r[1])
            for r in conn.execute(
                "SELECT read_id, kind FROM images WHERE read_id IN"
                f" ({','.join('?' * len(rows))})",
                [row[0] for row in rows],
            )
        } if rows else set()
    finally:
        conn.close()
    records = ReadRecords(cast(Any, SimpleNamespace(cipher=cipher)))
    wanted = _glob(query.pattern) if query.pattern else None
    found: list[dict[str, Any]] = []
    unreadable = 0
    for read_id, camera, seen_at, payload in rows:
        try:
            read = records.decode(read_id, camera, seen_at, bytes(payload))
        except (KeyShredded, MasterKeyError):
            unreadable += 1
            continue
        if wanted is not None and not fnmatch.fnmatchcase(normalize_plate(read.text), wanted):
            continue
        if len(found) >= query.limit:
            break
        found.append(
            {
                "id": read.id,
                "camera": read.camera,
                "seen_at": seen_at,
                "plate": read.text,
                "confidence": read.confidence,
                "state": read.state,
                "images": sorted(kind for rid, kind in images if rid == read_id),
            }
        )
    return SearchResult(found, unreadable, ring_id)


def _has_plate_keys(conn: sqlite3.Connection) -> bool:
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'plate_keys'"
    ).fetchone()
    return found is not None


def _glob(pattern: str) -> str:
    """A plate pattern (``7AB*``, ``?XY12?``), normalized like plates, wildcards kept."""
    return "".join(c if c in "*?" else normalize_plate(c) for c in pattern)


def _candidates(
    conn: sqlite3.Connection, cipher: FieldCipher, query: Query
) -> list[tuple[str, str, str, bytes]]:
    where: list[str] = []
    args: list[Any] = []
    prefix = ""
    if query.plate is not None:
        index = cipher.plate_index(query.plate)
        if _has_plate_keys(conn):
            prefix = PLATE_READS + " "
            args += plate_reads_args(index, query.start, query.end)
            where.append("id IN (SELECT id FROM plate_reads)")
        else:  # a replica of a site from before migration 0010: reads.plate_index was indexed
            where.append("plate_index = ?")
            args.append(index)
    if query.read_ids:
        where.append(f"id IN ({','.join('?' * len(query.read_ids))})")
        args += query.read_ids
    if query.start is not None:
        where.append("seen_at >= ?")
        args.append(utc(query.start))
    if query.end is not None:
        where.append("seen_at < ?")
        args.append(utc(query.end))
    # An exact search is bounded by the limit; a pattern decrypts the whole window.
    limit = "" if query.pattern else f" LIMIT {int(query.limit) * 4 + 100}"
    return [
        (r[0], r[1], r[2], bytes(r[3]))
        for r in conn.execute(
            f"{prefix}SELECT id, camera, seen_at, payload FROM reads WHERE {' AND '.join(where)}"
            f" ORDER BY seen_at DESC{limit}",
            args,
        )
    ]


def format_result(result: SearchResult, as_json: bool) -> str:
    if as_json:
        return json.dumps(result.as_dict())
    lines = [
        f"{r['seen_at']}  {r['plate']:10} {r['state'] or '--':3} {r['camera']:12} {r['id']}"
        f"  images: {','.join(r['images']) or 'none'}"
        for r in result.reads
    ]
    lines.append(f"{len(result.reads)} read(s)")
    if result.unreadable:
        lines.append(
            f"{result.unreadable} matching read(s) are unreadable: their day was purged "
            "(key destroyed) on the box"
        )
    return "\n".join(lines)
