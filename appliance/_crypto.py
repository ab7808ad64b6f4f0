"""Field encryption for the store: AES-256-GCM values and an HMAC blind index for plates.

This is the first slice of the data-lifecycle design (issue 5): one master key from a key file
(created 0600 on first start) encrypts every sensitive value, with associated data binding each
ciphertext to its row so a value cannot be moved to another row unnoticed. Day keys wrapped by
the master key, rotation and crypto-shredding come with issue 5 behind this same interface.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ._hotlist.plates import normalize_plate as _normalize

logger = logging.getLogger(__name__)

_KEY_BYTES = 32
_NONCE_BYTES = 12
_FORMAT = b"\x01"  # ciphertext format version, so later key schemes can coexist


class MasterKeyError(Exception):
    """The master key is missing, unreadable or wrong; says which and what to do."""


def normalize_plate(text: str) -> str:
    """The same normalization the hot-list matcher uses, so the index and the lists agree."""
    return _normalize(text)


def load_or_create_key(path: Path) -> bytes:
    """Read the master key file, creating it (mode 0600) if it does not exist yet.

    The key is the only thing that makes the store readable: losing it loses the data, which is
    said plainly rather than silently starting over with an empty store.
    """
    if path.exists():
        data = path.read_bytes()
        if len(data) != _KEY_BYTES:
            raise MasterKeyError(
                f"master key {path} is {len(data)} bytes, expected {_KEY_BYTES}: "
                "restore the right key file; without it the stored data cannot be read"
            )
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise MasterKeyError(
                f"master key {path} is readable by others (mode {mode:o}); chmod 600"
            )
        return data
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_bytes(_KEY_BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    logger.info("Created master key %s (back it up: the store cannot be read without it)", path)
    return key


class FieldCipher:
    """Encrypts values with AES-256-GCM and computes the plate blind index."""

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != _KEY_BYTES:
            raise ValueError("master key must be 32 bytes")
        # Separate subkeys for encryption and the index, so one never reveals the other.
        self._aead = AESGCM(_derive(master_key, b"alprbox field encryption v1"))
        self._index_key = _derive(master_key, b"alprbox plate index v1")
        self._check = _derive(master_key, b"alprbox key check v1")[:8]

    @property
    def key_check(self) -> bytes:
        """A fingerprint stored beside the data to detect a wrong key at start-up."""
        return self._check

    def encrypt(self, plaintext: bytes, associated: bytes) -> bytes:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return _FORMAT + nonce + self._aead.encrypt(nonce, plaintext, associated)

    def decrypt(self, blob: bytes, associated: bytes) -> bytes:
        if blob[:1] != _FORMAT:
            raise ValueError("unknown ciphertext format")
        nonce, body = blob[1 : 1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, body, associated)
        except InvalidTag as err:
            raise ValueError("ciphertext does not authenticate (wrong key or moved value)") from err

    def plate_index(self, plate: str) -> bytes:
        """16-byte keyed hash of the normalized plate: exact search without clear text."""
        return hmac.new(self._index_key, normalize_plate(plate).encode(), hashlib.sha256).digest()[
            :16
        ]


def _derive(key: bytes, label: bytes) -> bytes:
    return hmac.new(key, label, hashlib.sha256).digest()
