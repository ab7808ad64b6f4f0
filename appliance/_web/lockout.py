"""Checking a username and password, with the CJIS lockout after repeated failures.

An unknown username is answered exactly like a known one (same message, a password check against
a dummy hash for similar timing, the same lockout after five tries), so the login form never tells
an attacker which accounts exist.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from .._auth import hash_password, needs_rehash, verify_password
from .._storage import Store, User

logger = logging.getLogger(__name__)

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
_MAX_UNKNOWN = 10_000


@dataclass(frozen=True)
class LoginResult:
    outcome: Literal["ok", "invalid", "locked", "disabled"]
    user: User | None = None


class LoginGuard:
    """Failure counts for usernames that have no account (known accounts keep theirs in the store).

    Kept in memory and bounded: it only has to make unknown names behave like known ones.
    """

    def __init__(self) -> None:
        self._unknown: dict[str, tuple[int, datetime | None]] = {}
        self._dummy_hash: str | None = None

    async def dummy_hash(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await asyncio.to_thread(hash_password, secrets.token_urlsafe(16))
        return self._dummy_hash

    def state(self, username: str) -> tuple[int, datetime | None]:
        return self._unknown.get(username, (0, None))

    def set_state(self, username: str, failures: int, locked_until: datetime | None) -> None:
        self._unknown.pop(username, None)
        while len(self._unknown) >= _MAX_UNKNOWN:
            del self._unknown[next(iter(self._unknown))]
        self._unknown[username] = (failures, locked_until)


async def authenticate(
    store: Store,
    guard: LoginGuard,
    username: str,
    password: str,
    now: datetime,
    remote: str,
    *,
    reset_failures: bool = True,
) -> LoginResult:
    """Check credentials, update failure counts and lockout, and record the audit events.

    :param reset_failures: clear the failure count on success. The console passes False: the
        count is cleared only once the second factor is given as well, so a stolen password
        cannot be used to restart the count of wrong codes.
    """
    user = await store.get_user(username)
    if user is not None:
        failures, locked_until = user.failed_logins, user.locked_until
    else:
        failures, locked_until = guard.state(username)
    detail: dict[str, object] = {"remote": remote}

    if locked_until is not None and locked_until > now:
        await store.record_event("login.failed", username, {**detail, "reason": "locked"})
        return LoginResult("locked")

    # argon2 is deliberately slow: keep it off the event loop the pipeline shares.
    password_hash = user.password_hash if user is not None else await guard.dummy_hash()
    valid = await asyncio.to_thread(verify_password, password_hash, password)

    if user is None or not valid:
        failures += 1
        # The count restarts after a lock, so each lock follows five fresh failures.
        lock = now + LOCKOUT if failures >= MAX_FAILURES else None
        if user is not None:
            await store.update_login_state(
                username, failed_logins=0 if lock else failures, locked_until=lock
            )
        else:
            guard.set_state(username, 0 if lock else failures, lock)
        reason = "bad password" if user is not None else "unknown user"
        await store.record_event(
            "login.failed", username, {**detail, "reason": reason, "failures": failures}
        )
        if lock is None:
            return LoginResult("invalid")
        await store.record_event(
            "account.locked", username, {**detail, "until": lock.isoformat(), "known": bool(user)}
        )
        logger.warning("Console sign-in for %r locked for %s after %d failures",
                       username, LOCKOUT, failures)
        return LoginResult("locked")

    if await store.identity.is_disabled(username):
        # Told only after the right password, so the form still tells no stranger what exists.
        await store.record_event("login.failed", username, {**detail, "reason": "disabled"})
        return LoginResult("disabled")

    new_hash = None
    if needs_rehash(user.password_hash):
        new_hash = await asyncio.to_thread(hash_password, password)
    failures_after = 0 if reset_failures else user.failed_logins
    if (new_hash is not None or user.failed_logins != failures_after
            or user.locked_until is not None):
        await store.update_login_state(
            username, failed_logins=failures_after, locked_until=None, password_hash=new_hash
        )
    return LoginResult("ok", user)
