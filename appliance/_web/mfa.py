"""The sign-in steps after the password: TOTP enrolment or check, recovery codes, and the forced
password change of accounts created with a one-time password.

Codes are checked against the appliance clock, one time step either side; each accepted time step
is recorded, so a code is never accepted twice. Wrong codes count toward the same lockout as
wrong passwords. Neither codes nor secrets are ever logged or put in the audit trail.
"""

from __future__ import annotations

import asyncio
import hmac
import io
import logging
import secrets
from datetime import datetime
from typing import Any

import pyotp
import segno
from aiohttp import web

from .._auth import hash_password, verify_password
from .._storage import Store
from .._storage.identity import recovery_hash
from .auth import SESSION_COOKIE, cookie_flags, login_response, require_pending
from .keys import APPLIANCE, SESSIONS
from .lockout import LOCKOUT, MAX_FAILURES
from .present import form_text, render_page
from .sessions import Session

logger = logging.getLogger(__name__)

TOTP_STEP = 30
RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
MIN_PASSWORD = 12
_ISSUER = "alprbox"


def totp_step(moment: datetime) -> int:
    return int(moment.timestamp()) // TOTP_STEP


def matching_step(secret: str, code: str, moment: datetime) -> int | None:
    """The time step (now, or one either side for clock drift) whose code is ``code``."""
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = totp_step(moment)
    found = None
    for step in (current - 1, current, current + 1):
        # Check all three: the time taken does not tell which one matched.
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step
    return found


def new_recovery_codes() -> list[str]:
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def _store(request: web.Request) -> Store:
    store = request.app[APPLIANCE].store
    if store is None:
        raise web.HTTPServiceUnavailable(text="The appliance is starting; try again shortly.")
    return store


def _step_page(
    request: web.Request, template: str, session: Session, context: dict[str, Any],
    *, status: int = 200,
) -> web.Response:
    # No navigation while a step is owed: "user" stays empty in the layout.
    return render_page(request, template, {
        "user": None, "step_user": session.username, "csrf_token": session.csrf, **context,
    }, status=status)


async def _count_failure(
    request: web.Request, session: Session, reason: str
) -> web.Response | None:
    """Count a wrong code toward the lockout; the locked sign-in page once it locks."""
    store = _store(request)
    now = request.app[APPLIANCE].clock.now()
    user = await store.get_user(session.username)
    failures = (user.failed_logins if user is not None else 0) + 1
    lock = now + LOCKOUT if failures >= MAX_FAILURES else None
    await store.update_login_state(
        session.username, failed_logins=0 if lock else failures, locked_until=lock
    )
    remote = request.remote or ""
    await store.record_event("login.failed", session.username,
                             {"remote": remote, "reason": reason, "failures": failures})
    if lock is None:
        return None
    await store.record_event("account.locked", session.username,
                             {"remote": remote, "until": lock.isoformat(), "known": True})
    logger.warning("Console sign-in for %r locked for %s after %d failures",
                   session.username, LOCKOUT, failures)
    request.app[SESSIONS].end(session.token)
    return login_response(request, "locked", status=401)


async def _locked(request: web.Request, session: Session) -> web.Response | None:
    """The locked page if the account got locked while this step was open."""
    user = await _store(request).get_user(session.username)
    now = request.app[APPLIANCE].clock.now()
    if user is None or (user.locked_until is not None and user.locked_until > now):
        request.app[SESSIONS].end(session.token)
        return login_response(request, "locked" if user else "invalid", status=401)
    return None


async def _second_factor_done(request: web.Request, session: Session) -> tuple[Session, str]:
    """Clear the failure count and move on: the password change if owed, else signed in."""
    store = _store(request)
    await store.update_login_state(session.username, failed_logins=0, locked_until=None)
    must_change = await store.identity.must_change_password(session.username)
    fresh = request.app[SESSIONS].promote(session, "password" if must_change else None)
    if not must_change:
        await _signed_in(request, fresh)
    return fresh, "/password" if must_change else "/"


async def _signed_in(request: web.Request, session: Session) -> None:
    remote = request.remote or ""
    await _store(request).record_event("login", session.username, {
        "role": session.role, "organization": session.organization, "remote": remote,
        "mfa": session.mfa_method or "totp",
    })
    logger.info("Console sign-in: %r (%s) from %s", session.username, session.role, remote)


def _set_session_cookie(
    request: web.Request, response: web.StreamResponse, session: Session
) -> None:
    response.set_cookie(SESSION_COOKIE, session.token, path="/", **cookie_flags(request))


# -- TOTP check ------------------------------------------------------------------------------

async def mfa_page(request: web.Request) -> web.Response:
    session = require_pending(request, "mfa")
    return _step_page(request, "mfa.html", session, {"title": "Verification code", "error": None})


async def mfa_submit(request: web.Request) -> web.Response:
    session = require_pending(request, "mfa")
    if (locked := await _locked(request, session)) is not None:
        return locked
    store = _store(request)
    form = await request.post()
    code = "".join(form_text(form, "code", 64).split())
    now = request.app[APPLIANCE].clock.now()
    ok = False
    reason = "bad code"
    if code.isdigit():
        secret = await store.identity.mfa_secret(session.username)
        step = matching_step(secret, code, now) if secret else None
        if step is not None:
            ok = await store.identity.consume_step(session.username, step)
            reason = "replayed code"
        session.mfa_method = "totp"
    elif code:
        ok = await store.identity.use_recovery_code(session.username, code)
        reason = "bad recovery code"
        session.mfa_method = "recovery"
    if not ok:
        if (locked := await _count_failure(request, session, reason)) is not None:
            return locked
        return _step_page(request, "mfa.html", session, {
            "title": "Verification code",
            "error": "That code is not valid, or was already used. Wait for the next code.",
        }, status=401)
    if session.mfa_method == "recovery":
        left = await store.identity.unused_recovery_codes(session.username)
        await store.record_event("mfa.recovery_used", session.username,
                                 {"organization": session.organization, "left": left})
    fresh, location = await _second_factor_done(request, session)
    if session.mfa_method == "recovery":
        fresh.notices.append(
            f"You signed in with a recovery code; {left} left. Ask an administrator to reset "
            "your authenticator if you lost it."
        )
    response = web.HTTPSeeOther(location)
    _set_session_cookie(request, response, fresh)
    raise response


# -- enrolment -------------------------------------------------------------------------------

def _provisioning_uri(request: web.Request, session: Session) -> str:
    assert session.enrol_secret is not None
    site = request.app[APPLIANCE].config.root.site.name
    return pyotp.TOTP(session.enrol_secret).provisioning_uri(
        name=session.username, issuer_name=f"{_ISSUER} {site}"
    )


def _grouped(secret: str) -> str:
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


async def enrol_page(request: web.Request) -> web.Response:
    session = require_pending(request, "enrol")
    if session.enrol_secret is None:
        session.enrol_secret = pyotp.random_base32()
    return _enrol_response(request, session, None)


def _enrol_response(
    request: web.Request, session: Session, error: str | None, *, status: int = 200
) -> web.Response:
    assert session.enrol_secret is not None
    return _step_page(request, "enrol.html", session, {
        "title": "Set up your authenticator",
        "secret": _grouped(session.enrol_secret),
        "error": error,
    }, status=status)


async def enrol_qr(request: web.Request) -> web.Response:
    """The enrolment QR code, as an SVG image from this origin (CSP: img-src 'self')."""
    session = require_pending(request, "enrol")
    if session.enrol_secret is None:
        raise web.HTTPNotFound(text="Open the enrolment page first.")
    buffer = io.BytesIO()
    segno.make_qr(_provisioning_uri(request, session), error="m").save(
        buffer, kind="svg", scale=6, border=2, xmldecl=False
    )
    return web.Response(body=buffer.getvalue(), content_type="image/svg+xml")


async def enrol_submit(request: web.Request) -> web.Response:
    session = require_pending(request, "enrol")
    if (locked := await _locked(request, session)) is not None:
        return locked
    if session.enrol_secret is None:
        raise web.HTTPSeeOther("/mfa/enrol")
    form = await request.post()
    code = "".join(form_text(form, "code", 64).split())
    step = matching_step(session.enrol_secret, code, request.app[APPLIANCE].clock.now())
    if step is None:
        if (locked := await _count_failure(request, session, "bad enrolment code")) is not None:
            return locked
        return _enrol_response(
            request, session,
            "That code does not match. Check the device's time and enter the current code.",
            status=401,
        )
    store = _store(request)
    codes = new_recovery_codes()
    await store.identity.enrol(
        session.username, session.enrol_secret, step, [recovery_hash(c) for c in codes]
    )
    session.enrol_secret = None
    session.mfa_method = "totp"
    await store.record_event("mfa.enrolled", session.username,
                             {"target": session.username, "organization": session.organization})
    fresh, location = await _second_factor_done(request, session)
    # Shown this once, in this response only; the store keeps their hashes.
    response = render_page(request, "recovery.html", {
        "title": "Recovery codes", "user": None, "codes": codes, "next_url": location,
        "csrf_token": fresh.csrf,
    })
    _set_session_cookie(request, response, fresh)
    return response


# -- password change -------------------------------------------------------------------------

async def password_page(request: web.Request) -> web.Response:
    session = require_pending(request, "password")
    return _step_page(request, "password.html", session, {
        "title": "Choose a new password", "error": None, "min_length": MIN_PASSWORD,
    })


async def password_submit(request: web.Request) -> web.Response:
    session = require_pending(request, "password")
    form = await request.post()
    new = form.get("new_password")
    confirm = form.get("confirm_password")
    new = new if isinstance(new, str) else ""
    confirm = confirm if isinstance(confirm, str) else ""
    store = _store(request)
    user = await store.get_user(session.username)
    if user is None:
        request.app[SESSIONS].end(session.token)
        raise web.HTTPSeeOther("/login")
    error = None
    if len(new) < MIN_PASSWORD or len(new) > 1024:
        error = f"The new password must be {MIN_PASSWORD} to 1024 characters long."
    elif new != confirm:
        error = "The two passwords differ."
    elif await _verify(user.password_hash, new):
        error = "Choose a password different from the one-time password."
    if error is not None:
        return _step_page(request, "password.html", session, {
            "title": "Choose a new password", "error": error, "min_length": MIN_PASSWORD,
        }, status=400)
    new_hash = await asyncio.to_thread(hash_password, new)
    await store.identity.set_password(session.username, new_hash, must_change=False)
    await store.record_event("password.changed", session.username,
                             {"target": session.username, "organization": session.organization})
    fresh = request.app[SESSIONS].promote(session, None)
    await _signed_in(request, fresh)
    fresh.notices.append("Your password was changed.")
    response = web.HTTPSeeOther("/")
    _set_session_cookie(request, response, fresh)
    raise response


async def _verify(password_hash: str, password: str) -> bool:
    return await asyncio.to_thread(verify_password, password_hash, password)
