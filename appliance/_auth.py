"""Password hashing (argon2id) and the first administrator account."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ._storage import Store

logger = logging.getLogger(__name__)

ROLES = ("administrator", "supervisor", "operator", "analyst", "auditor")
FIRST_ADMIN = "admin"
#: Piedmont 438.7 / Oakland 430.9: training is renewed at least yearly.
TRAINING_MAX_DAYS = 365

# argon2-cffi's defaults are argon2id with RFC 9106's low-memory profile.
_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


@dataclass(frozen=True)
class FirstAdmin:
    username: str
    password: str


async def ensure_first_admin(
    store: Store,
    organization: str,
    today: date | None = None,
    training_max_days: int = TRAINING_MAX_DAYS,
) -> FirstAdmin | None:
    """Create the first administrator with a random password if there are no users yet.

    The password is returned once, for the start-up message, and stored only as its hash. The
    account gets an "initial setup" training record (so the installer can reach the console and
    record everyone else's training) and enrols in TOTP MFA at its first sign-in.
    """
    if await store.user_count() > 0:
        return None
    password = secrets.token_urlsafe(12)
    await store.create_user(FIRST_ADMIN, hash_password(password), "administrator", organization)
    await store.record_event(
        "user.created", "system", {"username": FIRST_ADMIN, "role": "administrator"}
    )
    today = today or datetime.now(UTC).date()
    await store.identity.record_training(
        FIRST_ADMIN, "initial setup", today, today + timedelta(days=training_max_days), "system"
    )
    await store.record_event(
        "user.training_recorded", "system",
        {"target": FIRST_ADMIN, "organization": organization, "course": "initial setup",
         "completed_on": today.isoformat()},
    )
    logger.info("Created the first administrator account '%s'", FIRST_ADMIN)
    return FirstAdmin(FIRST_ADMIN, password)
