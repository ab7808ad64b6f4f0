"""Identity records: TOTP secrets (encrypted), recovery codes (hashed), forced password changes
and training records.

These run through the store's single writer and its reader thread, like every other table. The
TOTP secret is encrypted with the store's cipher and bound to the user's id; it is decrypted only
to check a code.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from .api_keys import ApiKeyRecords

if TYPE_CHECKING:
    from . import Store


@dataclass(frozen=True)
class Training:
    course: str
    completed_on: date
    expires_on: date
    recorded_by: str


@dataclass(frozen=True)
class UserSummary:
    username: str
    role: str
    organization: str
    mfa_enrolled: bool
    must_change_password: bool
    failed_logins: int
    locked_until: datetime | None
    training: Training | None  #: the record that expires last, if any
    #: disabled by an administrator: cannot sign in, keys refused (the account is kept, C-10)
    disabled: bool = False


def recovery_hash(code: str) -> bytes:
    """SHA-256 of a recovery code, ignoring case, spaces and dashes."""
    normalized = "".join(ch for ch in code.upper() if ch.isalnum())
    return hashlib.sha256(f"alprbox-recovery|{normalized}".encode()).digest()


def training_valid_until(record: Training, max_days: int) -> date:
    """The last day ``record`` counts: its stored expiry, or sooner if the policy got stricter."""
    return min(record.expires_on, record.completed_on + timedelta(days=max_days))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _secret_ad(user_id: int) -> bytes:
    return f"user-mfa|{user_id}".encode()


def _user_id(c: sqlite3.Connection, username: str) -> int:
    row = c.execute("SELECT id FROM users WHERE username = ?", (username,)).fetchone()
    if row is None:
        raise KeyError(f"no user {username!r}")
    return int(row[0])


@dataclass(frozen=True)
class SignIn:
    """One sign-in attempt of a user, as their account page lists it."""

    at: datetime
    kind: str  #: "login" (signed in) or "login.failed"
    remote: str
    detail: str  #: how (MFA method) or why it failed


class IdentityRecords:
    def __init__(self, store: Store) -> None:
        self._store = store
        self.api_keys = ApiKeyRecords(store)

    # -- MFA ------------------------------------------------------------------------------

    async def mfa_secret(self, username: str) -> str | None:
        """The user's TOTP secret, decrypted; None when not enrolled."""
        row = await self._store.query(
            lambda c: c.execute(
                "SELECT id, mfa_secret FROM users WHERE username = ?", (username,)
            ).fetchone()
        )
        if row is None or row[1] is None:
            return None
        return self._store.cipher.decrypt(bytes(row[1]), _secret_ad(int(row[0]))).decode()

    async def enrol(
        self, username: str, secret: str, step: int, recovery_hashes: list[bytes]
    ) -> None:
        """Store ``secret`` (encrypted), mark ``step`` used and replace the recovery codes."""

        def op(c: sqlite3.Connection) -> None:
            user_id = _user_id(c, username)
            blob = self._store.cipher.encrypt(secret.encode(), _secret_ad(user_id))
            c.execute(
                "UPDATE users SET mfa_secret = ?, mfa_last_step = ? WHERE id = ?",
                (blob, step, user_id),
            )
            c.execute("DELETE FROM mfa_recovery_codes WHERE user_id = ?", (user_id,))
            c.executemany(
                "INSERT INTO mfa_recovery_codes (user_id, code_hash) VALUES (?, ?)",
                [(user_id, h) for h in recovery_hashes],
            )

        await self._store.write(op)

    async def consume_step(self, username: str, step: int) -> bool:
        """Accept TOTP time step ``step`` once: False if it (or a later one) was used already."""

        def op(c: sqlite3.Connection) -> bool:
            cursor = c.execute(
                "UPDATE users SET mfa_last_step = ? WHERE username = ?"
                " AND (mfa_last_step IS NULL OR mfa_last_step < ?)",
                (step, username, step),
            )
            return cursor.rowcount == 1

        return await self._store.write(op)

    async def use_recovery_code(self, username: str, code: str) -> bool:
        """Spend an unused recovery code; False if it is unknown or used."""
        digest = recovery_hash(code)

        def op(c: sqlite3.Connection) -> bool:
            cursor = c.execute(
                "UPDATE mfa_recovery_codes SET used_at = ? WHERE id = ("
                " SELECT r.id FROM mfa_recovery_codes r JOIN users u ON u.id = r.user_id"
                " WHERE u.username = ? AND r.code_hash = ? AND r.used_at IS NULL LIMIT 1)",
                (_now(), username, digest),
            )
            return cursor.rowcount == 1

        return await self._store.write(op)

    async def unused_recovery_codes(self, username: str) -> int:
        return int(await self._store.query(
            lambda c: c.execute(
                "SELECT count(*) FROM mfa_recovery_codes r JOIN users u ON u.id = r.user_id"
                " WHERE u.username = ? AND r.used_at IS NULL",
                (username,),
            ).fetchone()[0]
        ))

    async def reset_mfa(self, username: str) -> None:
        """Forget the secret and recovery codes: the user enrols again at the next sign-in."""

        def op(c: sqlite3.Connection) -> None:
            user_id = _user_id(c, username)
            c.execute(
                "UPDATE users SET mfa_secret = NULL, mfa_last_step = NULL WHERE id = ?", (user_id,)
            )
            c.execute("DELETE FROM mfa_recovery_codes WHERE user_id = ?", (user_id,))

        await self._store.write(op)

    async def replace_recovery_codes(self, username: str, recovery_hashes: list[bytes]) -> None:
        """Forget every recovery code (used or not) and keep these instead."""

        def op(c: sqlite3.Connection) -> None:
            user_id = _user_id(c, username)
            c.execute("DELETE FROM mfa_recovery_codes WHERE user_id = ?", (user_id,))
            c.executemany(
                "INSERT INTO mfa_recovery_codes (user_id, code_hash) VALUES (?, ?)",
                [(user_id, h) for h in recovery_hashes],
            )

        await self._store.write(op)

    # -- disabling ---------------------------------------------------------------------------

    async def set_disabled(self, username: str, by: str | None, at: datetime | None) -> bool:
        """Disable (``at`` given) or re-enable (``at`` None) an account; False if unchanged."""

        def op(c: sqlite3.Connection) -> bool:
            _user_id(c, username)
            if at is None:
                cursor = c.execute(
                    "UPDATE users SET disabled_at = NULL, disabled_by = NULL"
                    " WHERE username = ? AND disabled_at IS NOT NULL", (username,))
            else:
                cursor = c.execute(
                    "UPDATE users SET disabled_at = ?, disabled_by = ?"
                    " WHERE username = ? AND disabled_at IS NULL",
                    (at.astimezone(UTC).isoformat(timespec="microseconds"), by, username))
            return cursor.rowcount == 1

        return await self._store.write(op)

    async def is_disabled(self, username: str) -> bool:
        row = await self._store.query(
            lambda c: c.execute(
                "SELECT disabled_at IS NOT NULL FROM users WHERE username = ?", (username,)
            ).fetchone()
        )
        return bool(row and row[0])

    async def enabled_administrators(self) -> list[str]:
        rows = await self._store.query(
            lambda c: c.execute(
                "SELECT username FROM users WHERE role = 'administrator'"
                " AND disabled_at IS NULL ORDER BY username"
            ).fetchall()
        )
        return [r[0] for r in rows]

    # -- sign-in history ---------------------------------------------------------------------

    async def sign_ins(self, username: str, limit: int = 20) -> list[SignIn]:
        """The user's recent sign-ins and failed attempts, newest first, from the audit trail."""
        rows = await self._store.query(
            lambda c: c.execute(
                "SELECT at, kind, detail FROM events WHERE actor = ?"
                " AND kind IN ('login', 'login.failed') ORDER BY id DESC LIMIT ?",
                (username, limit),
            ).fetchall()
        )
        out = []
        for at, kind, blob in rows:
            detail = json.loads(
                self._store.cipher.decrypt(bytes(blob), f"event|{at}|{kind}".encode())
            )
            how = detail.get("mfa") if kind == "login" else detail.get("reason")
            out.append(SignIn(datetime.fromisoformat(at), kind, str(detail.get("remote", "")),
                              str(how or "")))
        return out

    # -- passwords --------------------------------------------------------------------------

    async def must_change_password(self, username: str) -> bool:
        row = await self._store.query(
            lambda c: c.execute(
                "SELECT must_change_password FROM users WHERE username = ?", (username,)
            ).fetchone()
        )
        return bool(row and row[0])

    async def set_password(self, username: str, password_hash: str, *, must_change: bool) -> None:
        await self._store.write(
            lambda c: c.execute(
                "UPDATE users SET password_hash = ?, must_change_password = ? WHERE username = ?",
                (password_hash, int(must_change), username),
            )
        )

    # -- training ---------------------------------------------------------------------------

    async def record_training(
        self, username: str, course: str, completed_on: date, expires_on: date, recorded_by: str
    ) -> None:
        await self._store.write(
            lambda c: c.execute(
                "INSERT INTO training_records"
                " (user_id, course, completed_on, expires_on, recorded_by, recorded_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (_user_id(c, username), course, completed_on.isoformat(),
                 expires_on.isoformat(), recorded_by, _now()),
            )
        )

    async def trainings(self, username: str) -> list[Training]:
        """The user's training records, the one expiring last first."""
        rows = await self._store.query(
            lambda c: c.execute(
                "SELECT t.course, t.completed_on, t.expires_on, t.recorded_by"
                " FROM training_records t JOIN users u ON u.id = t.user_id"
                " WHERE u.username = ? ORDER BY t.expires_on DESC, t.id DESC",
                (username,),
            ).fetchall()
        )
        return [
            Training(course, date.fromisoformat(done), date.fromisoformat(until), by)
            for course, done, until, by in rows
        ]

    async def trained_until(self, username: str, today: date, max_days: int) -> date | None:
        """The last day the user's training counts, if it counts today; None if missing/expired."""
        best: date | None = None
        for record in await self.trainings(username):
            if record.completed_on > today:
                continue
            until = training_valid_until(record, max_days)
            if until >= today and (best is None or until > best):
                best = until
        return best

    # -- listing ----------------------------------------------------------------------------

    async def users(self) -> list[UserSummary]:
        rows = await self._store.query(
            lambda c: c.execute(
                "SELECT u.username, u.role, u.organization, u.mfa_secret IS NOT NULL,"
                " u.must_change_password, u.failed_logins, u.locked_until,"
                " u.disabled_at IS NOT NULL,"
                " (SELECT json_array(t.course, t.completed_on, t.expires_on, t.recorded_by)"
                "  FROM training_records t WHERE t.user_id = u.id"
                "  ORDER BY t.expires_on DESC, t.id DESC LIMIT 1)"
                " FROM users u ORDER BY u.username"
            ).fetchall()
        )
        result = []
        for name, role, org, enrolled, must_change, failed, locked, disabled, training in rows:
            record = None
            if training:
                course, done, until, by = json.loads(training)
                record = Training(course, date.fromisoformat(done), date.fromisoformat(until), by)
            result.append(UserSummary(
                username=name, role=role, organization=org, mfa_enrolled=bool(enrolled),
                must_change_password=bool(must_change), failed_logins=int(failed),
                locked_until=datetime.fromisoformat(locked) if locked else None,
                training=record, disabled=bool(disabled),
            ))
        return result
