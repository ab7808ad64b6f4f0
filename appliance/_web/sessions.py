"""Server-side console sessions with the CJIS idle lock.

Sessions live in memory only: a restart signs everyone out, which is the safe direction, and no
session secret ever reaches the disk or a litestream replica. The browser holds a random token.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

#: CJIS Security Policy 5.5.5: lock a session after at most 30 minutes of inactivity.
IDLE_TIMEOUT = 30 * 60.0
#: Even an active session signs in again after a working day.
MAX_AGE = 12 * 3600.0
#: How long the login page remembers that a token timed out, to say so.
_TOMBSTONE_SECONDS = 24 * 3600.0
_MAX_TOMBSTONES = 10_000


@dataclass(frozen=True)
class SearchContext:
    """What a search was run for, kept server-side so a result can be opened under the same
    purpose and case number without putting either (or a plate) in a URL."""

    purpose: str
    case_number: str
    reason: str
    read_ids: frozenset[str]
    expires: float


@dataclass
class Session:
    token: str
    username: str
    role: str
    organization: str
    csrf: str
    created: float
    last_active: float
    #: one-time notices for the next page (post/redirect/get); never plate data
    notices: list[str] = field(default_factory=list)
    #: the sign-in step still owed ("mfa", "enrol", "password"); None once fully signed in.
    #: A pending session reaches only the pages of its step (see auth.session_middleware).
    pending: str | None = None
    #: during enrolment, the TOTP secret offered but not yet confirmed (memory only)
    enrol_secret: str | None = None
    #: how the second factor was given ("totp", "recovery"), for the audit trail
    mfa_method: str | None = None
    #: recent searches by opaque id (see web/search.py); memory only, gone with the session
    searches: dict[str, SearchContext] = field(default_factory=dict)


class SessionStore:
    """Sessions by token. ``clock`` returns monotonic seconds (tests drive a fake one)."""

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        idle_timeout: float = IDLE_TIMEOUT,
        max_age: float = MAX_AGE,
    ) -> None:
        self._clock = clock
        self.idle_timeout = idle_timeout
        self.max_age = max_age
        self._sessions: dict[str, Session] = {}
        self._timed_out: dict[str, float] = {}

    def create(
        self, username: str, role: str, organization: str, *, pending: str | None = None
    ) -> Session:
        now = self._clock()
        session = Session(
            token=secrets.token_urlsafe(32),
            username=username,
            role=role,
            organization=organization,
            csrf=secrets.token_urlsafe(32),
            created=now,
            last_active=now,
            pending=pending,
        )
        self._sessions[session.token] = session
        return session

    def get(self, token: str | None) -> Session | None:
        """The live session for ``token``; an expired one is ended and remembered as timed out."""
        if not token:
            return None
        session = self._sessions.get(token)
        if session is None:
            return None
        now = self._clock()
        if (now - session.last_active >= self.idle_timeout
                or now - session.created >= self.max_age):
            del self._sessions[token]
            self._remember_timeout(token, now)
            logger.info("Console session of %r locked after inactivity", session.username)
            return None
        return session

    def touch(self, session: Session) -> None:
        """Record user activity: only this postpones the idle lock."""
        session.last_active = self._clock()

    def promote(self, session: Session, pending: str | None) -> Session:
        """Move ``session`` to its next sign-in step under a fresh token (no session fixation)."""
        self._sessions.pop(session.token, None)
        fresh = self.create(session.username, session.role, session.organization, pending=pending)
        fresh.mfa_method = session.mfa_method
        return fresh

    def end_user(self, username: str) -> int:
        """End every session of ``username`` (MFA reset, lock); returns how many."""
        tokens = [t for t, s in self._sessions.items() if s.username == username]
        for token in tokens:
            del self._sessions[token]
        return len(tokens)

    def end(self, token: str) -> Session | None:
        return self._sessions.pop(token, None)

    def pop_timed_out(self, token: str | None) -> bool:
        """Whether ``token`` belonged to a session that timed out (answered once)."""
        if not token:
            return False
        at = self._timed_out.pop(token, None)
        return at is not None and self._clock() - at < _TOMBSTONE_SECONDS

    def __len__(self) -> int:
        return len(self._sessions)

    def _remember_timeout(self, token: str, now: float) -> None:
        while len(self._timed_out) >= _MAX_TOMBSTONES:
            # Insertion order is age order: forget the oldest.
            del self._timed_out[next(iter(self._timed_out))]
        self._timed_out[token] = now
