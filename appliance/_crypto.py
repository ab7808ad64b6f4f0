"""Field encryption for the store: AES-256-GCM values and an HMAC blind index for plates.

The master key (from :mod:`appliance._lifecycle.keyprovider`: a key file outside the data
directory, or a passphrase) never encrypts data itself. It wraps the data keys kept in
``keys.db`` (:mod:`appliance._lifecycle.keyring`): one per retention class and UTC day for reads,
hits and images, so purging a day can destroy its key (crypto-shredding), and one long-lived
``records`` key for what is never purged by day (users, hot lists, BOLOs, alerts, audit details).
Associated data binds each ciphertext to its row so a value cannot be moved unnoticed.

Ciphertext formats (first byte):

- ``1``: nonce + AES-GCM under a key derived from the master key (stores written before keys.db;
  still read, through the ``legacy`` key imported into keys.db on first start);
- ``2``: 4-byte data key id + nonce + AES-GCM under that data key.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import struct
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ._hotlist.plates import normalize_plate as _normalize
from ._lifecycle.keyring import (
    INDEX,
    LEGACY,
    RECORDS,
    UNDATED,
    KeyRing,
    KeyShredded,
    MasterKeyError,
    derive,
)

logger = logging.getLogger(__name__)

__all__ = [
    "FieldCipher",
    "KeyShredded",
    "MasterKeyError",
    "load_or_create_key",
    "normalize_plate",
]

_KEY_BYTES = 32
_NONCE_BYTES = 12
_LEGACY_FORMAT = b"\x01"
_KEYED_FORMAT = b"\x02"
_KEY_ID = struct.Struct(">I")


def normalize_plate(text: str) -> str:
    """The same normalization the hot-list matcher uses, so the index and the lists agree."""
    return _normalize(text)


def load_or_create_key(path: Path) -> bytes:
    """Read the master key file, creating it (mode 0600) if it does not exist yet.

    The key is the only thing that makes the store readable: losing it loses the data, which is
    said plainly rather than silently starting over with an empty store.
    """
    if path.exists():
        return read_key_file(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_bytes(_KEY_BYTES)
    try:
        write_key_file(path, key, replace=False)
    except FileExistsError:
        # Another process created it at the same moment: use theirs, never overwrite a key.
        return read_key_file(path)
    logger.info("Created master key %s (back it up: the store cannot be read without it)", path)
    return key


def read_key_file(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise MasterKeyError(f"master key {path} cannot be read: {err.strerror}") from err
    if len(data) != _KEY_BYTES:
        raise MasterKeyError(
            f"master key {path} is {len(data)} bytes, expected {_KEY_BYTES}: "
            "restore the right key file; without it the stored data cannot be read"
        )
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise MasterKeyError(f"master key {path} is readable by others (mode {mode:o}); chmod 600")
    return data


def write_key_file(path: Path, key: bytes, *, replace: bool = True) -> None:
    """Write a key file (0600) atomically: a crash leaves the old file or the new, never half.

    Without ``replace`` an existing file is kept and :class:`FileExistsError` raised.
    """
    staging = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(key)
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(staging, path)
        else:
            os.link(staging, path)
    finally:
        staging.unlink(missing_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class FieldCipher:
    """Encrypts values with AES-256-GCM and computes the plate blind index.

    Built from the master key; :meth:`attach` (done by the store when it opens) binds it to the
    store's keys.db, after which every value is encrypted under a data key from there.
    """

    def __init__(self, master_key: bytes, city_public_key: bytes | None = None) -> None:
        if len(master_key) != _KEY_BYTES:
            raise ValueError("master key must be 32 bytes")
        self._master = master_key
        #: opt-in: data keys are also sealed to this city X25519 key (docs/data-lifecycle.md)
        self.city_public_key = city_public_key
        # The scheme of stores written before keys.db: subkeys derived from the master key.
        self._legacy_field = derive(master_key, b"alprbox field encryption v1")
        self._legacy_index = derive(master_key, b"alprbox plate index v1")
        self._check = derive(master_key, b"alprbox key check v1")[:8]
        self._legacy_aead = AESGCM(self._legacy_field)
        self._index_key = self._legacy_index
        self._ring: KeyRing | None = None
        self._readonly = False

    @property
    def key_check(self) -> bytes:
        """The fingerprint a pre-keys.db store kept in its ``meta`` table."""
        return self._check

    @property
    def master_key(self) -> bytes:
        return self._master

    @property
    def ring(self) -> KeyRing:
        if self._ring is None:
            raise RuntimeError("the cipher is not attached to a key store yet")
        return self._ring

    def attach(self, ring: KeyRing, *, legacy_store: bool) -> None:
        """Use ``ring``'s data keys from now on; ``legacy_store`` imports the old derived keys
        so values and the plate index written before keys.db stay readable."""
        if legacy_store:
            ring.import_key(LEGACY, UNDATED, self._legacy_field)
            ring.import_key(INDEX, UNDATED, self._legacy_index)
        self._ring = ring
        self._index_key = ring.key(INDEX).raw
        ring.key(RECORDS)

    def attach_readonly(self, ring: KeyRing) -> None:
        """Decrypt with ``ring``'s keys only (a city's replica view; no key is ever made)."""
        self._ring = ring
        self._index_key = ring.key(INDEX, create=False).raw
        self._readonly = True

    def detach(self) -> None:
        if self._ring is not None:
            self._ring.close()
        self._ring = None

    # -- values ------------------------------------------------------------------------------

    def encrypt(self, plaintext: bytes, associated: bytes) -> bytes:
        """Encrypt a value that is kept until deleted (the long-lived ``records`` key)."""
        if self._ring is None:
            nonce = secrets.token_bytes(_NONCE_BYTES)
            return _LEGACY_FORMAT + nonce + self._legacy_aead.encrypt(nonce, plaintext, associated)
        return self.encrypt_for(RECORDS, UNDATED, plaintext, associated)

    def encrypt_for(self, klass: str, day: str, plaintext: bytes, associated: bytes) -> bytes:
        """Encrypt under the data key of a retention class and UTC day (created on first use)."""
        if self._readonly:
            raise RuntimeError("this cipher only decrypts (a city's read-only replica view)")
        key = self.ring.key(klass, day)
        nonce = secrets.token_bytes(_NONCE_BYTES)
        header = _KEYED_FORMAT + _KEY_ID.pack(key.id)
        return header + nonce + key.aead.encrypt(nonce, plaintext, header + associated)

    def decrypt(self, blob: bytes, associated: bytes) -> bytes:
        fmt = blob[:1]
        if fmt == _KEYED_FORMAT:
            header = blob[: 1 + _KEY_ID.size]
            (key_id,) = _KEY_ID.unpack(header[1:])
            aead = self.ring.by_id(key_id).aead
            body = blob[len(header) :]
            associated = header + associated
        elif fmt == _LEGACY_FORMAT:
            aead = self._ring.key(LEGACY).aead if self._ring is not None else self._legacy_aead
            body = blob[1:]
        else:
            raise ValueError("unknown ciphertext format")
        try:
            return aead.decrypt(body[:_NONCE_BYTES], body[_NONCE_BYTES:], associated)
        except InvalidTag as err:
            raise ValueError("ciphertext does not authenticate (wrong key or moved value)") from err

    @staticmethod
    def key_id_of(blob: bytes) -> int | None:
        """The data key id a ciphertext names (None for the legacy format)."""
        if blob[:1] != _KEYED_FORMAT:
            return None
        return int(_KEY_ID.unpack(blob[1 : 1 + _KEY_ID.size])[0])

    def plate_index(self, plate: str) -> bytes:
        """16-byte keyed hash of the normalized plate: exact search without clear text."""
        return hmac.new(self._index_key, normalize_plate(plate).encode(), hashlib.sha256).digest()[
            :16
        ]
