"""Where the master key comes from: a key file outside the data directory, or a passphrase.

A small interface (:class:`KeyProvider`) so a TPM or a KMS can come later. The rules every
provider keeps:

- the key never lives inside the data directory (a copy of that directory, a backup or a replica
  must not carry its own key), except a pre-existing ``<data_dir>/master.key`` of the old layout,
  which is still used (with a warning) until a key file is configured, and then moved there;
- a missing, corrupt or wrong key is explained, never answered with a new empty store: a key is
  created only for a data directory that holds no store yet.
"""

from __future__ import annotations

import logging
import os
import secrets
import sqlite3
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from .._crypto import load_or_create_key, read_key_file, write_key_file
from .keyring import KEYS_DB, KeyRing, MasterKeyError, connect_keys, master_check
from .settings import KeySettings

logger = logging.getLogger(__name__)

LEGACY_KEY_NAME = "master.key"
KEY_FILE_ENV = "ALPRBOX_KEY_FILE"
DB_NAME = "alprbox.db"
_SCRYPT = {"n": 2**15, "r": 8, "p": 1}


class KeyProvider(Protocol):
    """Gives the master key of one data directory."""

    #: what the operator is told ("key file /etc/...", "passphrase from env:...")
    description: str

    def load(self, *, create: bool) -> bytes:
        """The master key; ``create`` allows making one (only for a new store)."""
        ...

    def rotate(self, ring: KeyRing, new_passphrase: str | None = None) -> int:
        """Re-wrap every data key under a new master key; return how many were re-wrapped."""
        ...


def _peek_meta(keys_db: Path, key: str) -> bytes | None:
    """A value of keys.db's meta table, read without creating anything."""
    if not keys_db.exists():
        return None
    conn = sqlite3.connect(f"file:{keys_db}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    return None if row is None else bytes(row[0])


class FileKeyProvider:
    """A 32-byte key file, mode 0600."""

    def __init__(self, path: Path, keys_db: Path) -> None:
        self.path = path
        self.keys_db = keys_db
        self.description = f"key file {path}"

    @property
    def _next(self) -> Path:
        return self.path.with_name(self.path.name + ".next")

    def load(self, *, create: bool) -> bytes:
        self._finish_rotation()
        if not self.path.exists() and not create:
            raise MasterKeyError(
                f"the master key file {self.path} is missing, but the store in "
                f"{self.keys_db.parent} holds data encrypted under it: restore the key file "
                "from its backup (or set keys.master_key_file to where it is). A new key "
                "would not read the existing data, so none is created"
            )
        return load_or_create_key(self.path)

    def _finish_rotation(self) -> None:
        """A rotation that crashed between re-wrapping keys.db and renaming the new key file
        is finished here: whichever file matches keys.db is the key."""
        if not self._next.exists():
            return
        expected = _peek_meta(self.keys_db, "master_check")
        pending = read_key_file(self._next)
        if expected is not None and master_check(pending) == expected:
            os.replace(self._next, self.path)
            logger.warning("Finished an interrupted key rotation: %s is the new key", self.path)
        else:
            self._next.unlink()

    def rotate(self, ring: KeyRing, new_passphrase: str | None = None) -> int:
        new = secrets.token_bytes(32)
        # New key on disk first, keys.db second, the rename last: a crash at any point leaves a
        # key file that matches keys.db (see _finish_rotation).
        write_key_file(self._next, new)
        count = ring.rotate(new)
        os.replace(self._next, self.path)
        return count


class PassphraseKeyProvider:
    """A master key derived from a passphrase with scrypt; the salt is kept in keys.db."""

    def __init__(self, passphrase: str, keys_db: Path, source: str) -> None:
        self._passphrase = passphrase
        self.keys_db = keys_db
        self.description = f"passphrase from {source}"

    def load(self, *, create: bool) -> bytes:
        salt = _peek_meta(self.keys_db, "kdf_salt")
        if salt is None:
            if _peek_meta(self.keys_db, "master_check") is not None or not create:
                raise MasterKeyError(
                    f"the key store {self.keys_db} has no passphrase salt: it was made with a "
                    "key file, or is missing. Configure keys.master_key_file, or restore keys.db"
                )
            salt = secrets.token_bytes(16)
            self.keys_db.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            conn = connect_keys(self.keys_db)
            try:
                conn.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('kdf_salt', ?)", (salt,)
                )
                salt = bytes(
                    conn.execute("SELECT value FROM meta WHERE key = 'kdf_salt'").fetchone()[0]
                )
            finally:
                conn.close()
        return derive_from_passphrase(self._passphrase, salt)

    def rotate(self, ring: KeyRing, new_passphrase: str | None = None) -> int:
        if not new_passphrase:
            raise MasterKeyError("rotating a passphrase-derived key needs the new passphrase")
        salt = secrets.token_bytes(16)
        return ring.rotate(
            derive_from_passphrase(new_passphrase, salt), extra_meta={"kdf_salt": salt}
        )


def derive_from_passphrase(passphrase: str, salt: bytes) -> bytes:
    if not passphrase:
        raise MasterKeyError("the passphrase is empty")
    return Scrypt(salt=salt, length=32, **_SCRYPT).derive(passphrase.encode())


def default_key_file(site: str) -> Path:
    env = os.environ.get(KEY_FILE_ENV)
    if env:
        return Path(env)
    config_home = Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config"))
    return config_home / "alprbox" / site / LEGACY_KEY_NAME


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def key_provider(settings: KeySettings, data_dir: Path, site: str) -> KeyProvider:
    """The provider the site config chooses. Raises :class:`MasterKeyError` for a key file
    configured inside the data directory."""
    keys_db = data_dir / KEYS_DB
    if settings.passphrase is not None:
        try:
            passphrase = settings.passphrase.get()
        except LookupError as err:
            raise MasterKeyError(f"the key passphrase cannot be read: {err}") from err
        return PassphraseKeyProvider(passphrase, keys_db, settings.passphrase.ref)
    explicit = settings.master_key_file or (
        Path(os.environ[KEY_FILE_ENV]) if os.environ.get(KEY_FILE_ENV) else None
    )
    legacy = data_dir / LEGACY_KEY_NAME
    if explicit is not None:
        if _inside(explicit, data_dir):
            raise MasterKeyError(
                f"the master key file {explicit} is inside the data directory {data_dir}: a "
                "copy or replica of that directory would carry its own key. Put it elsewhere "
                "(e.g. /etc/alprbox/master.key, mode 0600) and set keys.master_key_file"
            )
        if legacy.exists() and not explicit.exists():
            _move_key(legacy, explicit)
        return FileKeyProvider(explicit, keys_db)
    if legacy.exists():
        logger.warning(
            "The master key %s is inside the data directory; set keys.master_key_file (or %s) "
            "to a path outside it and restart: the key is moved there",
            legacy,
            KEY_FILE_ENV,
        )
        return FileKeyProvider(legacy, keys_db)
    return FileKeyProvider(default_key_file(site), keys_db)


def _move_key(old: Path, new: Path) -> None:
    """Move a key of the old layout out of the data directory (copy, fsync, then remove)."""
    new.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_key_file(new, read_key_file(old), replace=False)
    old.unlink()
    logger.warning("Moved the master key out of the data directory: %s -> %s", old, new)


def store_exists(data_dir: Path) -> bool:
    return (data_dir / DB_NAME).exists() or (data_dir / KEYS_DB).exists()


def load_master_key(settings: KeySettings, data_dir: Path, site: str) -> bytes:
    """The master key of a data directory; a new one only when there is no store yet."""
    provider = key_provider(settings, data_dir, site)
    return provider.load(create=not store_exists(data_dir))


def has_master_key(settings: KeySettings, data_dir: Path, site: str) -> bool:
    """Whether this machine holds the key of this data directory (the box, not a replica)."""
    if not (data_dir / KEYS_DB).exists() and not (data_dir / LEGACY_KEY_NAME).exists():
        return False
    try:
        provider = key_provider(settings, data_dir, site)
    except MasterKeyError:
        return False
    if isinstance(provider, FileKeyProvider):
        return provider.path.exists()
    return True


def safe_mode_sections(config_file: Path) -> str:
    """The ``site``, ``data_dir``, ``keys`` and ``retention`` sections of a broken site file, as
    YAML, so safe mode still finds the store and its key ("" when unreadable)."""
    import yaml

    try:
        data = yaml.safe_load(config_file.read_text())
    except (OSError, yaml.YAMLError):
        return ""
    if not isinstance(data, dict):
        return ""
    kept = {k: data[k] for k in ("site", "data_dir", "keys", "retention") if k in data}
    return yaml.safe_dump(kept) if kept else ""
