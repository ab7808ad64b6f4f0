"""Reading a site's replica at the city, with the city's own private key.

Opt-in (``keys.city_public_key``): each data key is then also sealed to the city's X25519 public
key in keys.db (:func:`~.keyring.seal_for_city`), so city IT can open a restored replica
read-only without the box's master key. The trade-off is in docs/data-lifecycle.md: a keys.db
generation the city keeps still opens the days it held keys for, so "purged means unreadable
everywhere" then also depends on the city deleting old keys.db generations.
"""

from __future__ import annotations

import base64
import os
import threading
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from .._crypto import FieldCipher, read_key_file, write_key_file
from .keyring import (
    DataKey,
    KeyRing,
    KeyShredded,
    MasterKeyError,
    connect_readonly,
    open_city_seal,
)


def parse_public_key(text: str) -> bytes:
    """A city public key as configured: base64 of the raw 32-byte X25519 key."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except ValueError as err:
        raise ValueError("city_public_key: not base64") from err
    if len(raw) != 32:
        raise ValueError(f"city_public_key: {len(raw)} bytes, expected a 32-byte X25519 key")
    return raw


def generate_city_key(private_path: Path) -> str:
    """Make a city key pair: the private key into ``private_path`` (0600, refused if it exists),
    the public key returned as base64 for the sites' ``keys.city_public_key``."""
    key = X25519PrivateKey.generate()
    private_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_key_file(
        private_path,
        key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()),
        replace=False,
    )
    return base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


class CityKeyRing(KeyRing):
    """A read-only view of a replica's keys.db, unsealed with the city's private key."""

    def __init__(self, path: Path, city_private: X25519PrivateKey) -> None:
        if not path.exists():
            raise MasterKeyError(f"no key store at {path}: restore keys.db with the replica")
        self.path = path
        self._private = city_private
        self._lock = threading.Lock()
        self._by_id: dict[int, DataKey] = {}
        self._by_class_day: dict[tuple[str, str], DataKey] = {}
        # Nothing is written to the copy, not even a -shm file.
        self._conn = connect_readonly(path)

    def _unseal(self, key_id: int, klass: str, day: str, sealed: bytes | None) -> DataKey:
        if sealed is None:
            raise MasterKeyError(
                f"data key {klass}/{day} in {self.path} is not sealed to a city key: the site "
                "has no keys.city_public_key (or set it after this copy was made)"
            )
        try:
            raw = open_city_seal(self._private, klass, day, bytes(sealed))
        except InvalidTag as err:
            raise MasterKeyError(
                f"data key {klass}/{day} was sealed to another city key than this one"
            ) from err
        key = DataKey(key_id, klass, day, AESGCM(raw), raw)
        self._by_id[key_id] = key
        self._by_class_day[(klass, day)] = key
        return key

    def key(self, klass: str, day: str = "-", *, create: bool = True) -> DataKey:
        found = self._by_class_day.get((klass, day))
        if found is not None:
            return found
        row = self._conn.execute(
            "SELECT id, city_wrapped FROM data_keys WHERE class = ? AND day = ?", (klass, day)
        ).fetchone()
        if row is None:
            raise KeyShredded(f"no {klass} key for {day} in this replica (purged, or never made)")
        return self._unseal(int(row[0]), klass, day, row[1])

    def by_id(self, key_id: int) -> DataKey:
        found = self._by_id.get(key_id)
        if found is not None:
            return found
        row = self._conn.execute(
            "SELECT class, day, city_wrapped FROM data_keys WHERE id = ?", (key_id,)
        ).fetchone()
        if row is None:
            gone = self._conn.execute(
                "SELECT class, day, at FROM shredded WHERE key_id = ?", (key_id,)
            ).fetchone()
            what = f"{gone[0]} data of {gone[1]}, purged {gone[2]}" if gone else "unknown key"
            raise KeyShredded(f"this value's key is not in the replica ({what})")
        return self._unseal(key_id, row[0], row[1], row[2])

    def import_key(self, klass: str, day: str, raw: bytes) -> DataKey:
        raise MasterKeyError("a city replica is read-only")

    def destroy(self, klass: str, day: str) -> int | None:
        raise MasterKeyError("a city replica is read-only")


def city_cipher(keys_db: Path, private_key_file: Path) -> FieldCipher:
    """A cipher that decrypts (never encrypts) a replica's values with the city's key."""
    private = X25519PrivateKey.from_private_bytes(read_key_file(private_key_file))
    ring = CityKeyRing(keys_db, private)
    # The master key is not known at the city; the placeholder is never used to decrypt.
    cipher = FieldCipher(os.urandom(32))
    cipher.attach_readonly(ring)
    return cipher
