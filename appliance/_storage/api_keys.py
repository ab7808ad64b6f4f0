"""API keys bound to one user (C-10: no shared credentials, every call attributable).

A key reads ``alprbox_<key id>_<secret>``. Only SHA-256 of the secret is stored: the secret is
32 random bytes, so a slow password hash adds nothing, and a leaked database or replica yields no
usable key. The key carries no role of its own: each call acts with its user's *current* role,
organization, training and enabled state, so disabling a user or changing their role takes effect
on their keys at once.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from . import Store

logger = logging.getLogger(__name__)

PREFIX = "alprbox"
_KEY = re.compile(r"alprbox_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
KEY_ID = re.compile(r"[0-9a-f]{12}")


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    username: str
    name: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    def usable(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


@dataclass(frozen=True)
class NewKey:
    """A key just created: ``token`` is shown once and never stored."""

    key: ApiKey
    token: str


def _hash(secret: str) -> bytes:
    return hashlib.sha256(f"alprbox-api-key|{secret}".encode()).digest()


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="microseconds")


def _moment(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


_COLUMNS = (
    "k.key_id, u.username, k.name, k.created_at, k.created_by, k.expires_at, k.revoked_at,"
    " k.last_used_at"
)


def _key(row: tuple[str, str, str, str, str, str | None, str | None, str | None]) -> ApiKey:
    key_id, username, name, created, by, expires, revoked, used = row
    return ApiKey(key_id, username, name, datetime.fromisoformat(created), by,
                  _moment(expires), _moment(revoked), _moment(used))


class ApiKeyRecords:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def create(
        self, username: str, name: str, created_by: str, now: datetime,
        expires_at: datetime | None = None,
    ) -> NewKey:
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)

        def op(c: sqlite3.Connection) -> None:
            row = c.execute("SELECT id FROM users WHERE username = ?", (username,)).fetchone()
            if row is None:
                raise KeyError(f"no user {username!r}")
            c.execute(
                "INSERT INTO api_keys (key_id, user_id, name, secret_hash, created_at,"
                " created_by, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key_id, row[0], name, _hash(secret), _iso(now), created_by, _iso(expires_at)),
            )

        await self._store.write(op)
        key = ApiKey(key_id, username, name, now, created_by, expires_at, None, None)
        return NewKey(key, f"{PREFIX}_{key_id}_{secret}")

    async def of_user(self, username: str) -> list[ApiKey]:
        """The user's keys, newest first (revoked ones included: they are history)."""
        rows = await self._store.query(
            lambda c: c.execute(
                f"SELECT {_COLUMNS} FROM api_keys k JOIN users u ON u.id = k.user_id"
                " WHERE u.username = ? ORDER BY k.id DESC",
                (username,),
            ).fetchall()
        )
        return [_key(r) for r in rows]

    async def get(self, key_id: str) -> ApiKey | None:
        row = await self._store.query(
            lambda c: c.execute(
                f"SELECT {_COLUMNS} FROM api_keys k JOIN users u ON u.id = k.user_id"
                " WHERE k.key_id = ?",
                (key_id,),
            ).fetchone()
        )
        return None if row is None else _key(row)

    async def revoke(self, key_id: str, by: str, now: datetime) -> bool:
        """Revoke a key; False when unknown or revoked already."""
        return await self._store.write(
            lambda c: c.execute(
                "UPDATE api_keys SET revoked_at = ?, revoked_by = ?"
                " WHERE key_id = ? AND revoked_at IS NULL",
                (_iso(now), by, key_id),
            ).rowcount == 1
        )

    async def check(self, token: str, now: datetime) -> ApiKey | None:
        """The usable key ``token`` names, with its last use recorded; None for anything else
        (malformed, unknown, wrong secret, revoked, expired)."""
        match = _KEY.fullmatch(token)
        if match is None:
            return None
        key_id, secret = match.groups()
        row = await self._store.query(
            lambda c: c.execute(
                "SELECT secret_hash FROM api_keys WHERE key_id = ?", (key_id,)
            ).fetchone()
        )
        # Compared in constant time, and hashed even for unknown ids, so timing tells nothing.
        expected = bytes(row[0]) if row is not None else _hash(secrets.token_urlsafe(32))
        if not hmac.compare_digest(expected, _hash(secret)) or row is None:
            return None
        key = await self.get(key_id)
        if key is None or not key.usable(now):
            return None
        try:
            await self._store.write(
                lambda c: c.execute(
                    "UPDATE api_keys SET last_used_at = ? WHERE key_id = ?", (_iso(now), key_id)
                )
            )
        except sqlite3.Error as err:
            # Only a convenience for the account page; the call's audit record is what counts
            # (and fails closed on its own when the disk is full).
            logger.warning("API key %s: could not note its last use: %s", key_id, err)
        return key
