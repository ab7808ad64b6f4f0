"""The signed-in user's own account (``/account``): password, recovery codes, authenticator,
API keys and recent sign-ins.

Every change needs proof beyond the session cookie: the current password for a new password, a
current TOTP code for new recovery codes or a new authenticator. Wrong proofs count toward the
sign-in lockout, as at sign-in. Every change is in the audit trail (never a password, code, key
or secret). Nothing here shows ALPR data, so it stays open without current training, like the
sign-in steps; API keys made by an untrained user still open nothing until training is recorded.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from .._auth import hash_password, verify_password
from .._storage import Store
from .._storage.api_keys import NewKey
from .._storage.identity import recovery_hash
from .auth import require_session
from .keys import APPLIANCE, SESSIONS
from .mfa import (
    MIN_PASSWORD,
    _count_failure,
    _set_session_cookie,
    matching_step,
    new_recovery_codes,
)
from .present import form_text, local_time, render_page, site_zone
from .search import SEARCH_ROLES
from .sessions import Session

logger = logging.getLogger(__name__)

SIGN_INS_SHOWN = 20
MAX_ACTIVE_KEYS = 10
KEY_NAME_MAX = 100


def _store(request: web.Request) -> Store:
    store = request.app[APPLIANCE].store
    if store is None:
        raise web.HTTPServiceUnavailable(text="The appliance is starting; try again shortly.")
    return store


async def key_rows(request: web.Request, username: str) -> list[dict[str, Any]]:
    appliance = request.app[APPLIANCE]
    zone = site_zone(appliance)
    now = appliance.clock.now()
    rows = []
    for key in await _store(request).identity.api_keys.of_user(username):
        if key.revoked_at is not None:
            state = f"revoked {local_time(key.revoked_at, zone)}"
        elif key.expires_at is not None and key.expires_at <= now:
            state = f"expired {local_time(key.expires_at, zone)}"
        else:
            state = "active"
        rows.append({
            "key_id": key.key_id, "name": key.name, "state": state,
            "active": key.usable(now), "created": local_time(key.created_at, zone),
            "created_by": key.created_by,
            "expires": local_time(key.expires_at, zone) if key.expires_at else "never",
            "last_used": local_time(key.last_used_at, zone) if key.last_used_at else "never",
        })
    return rows


async def _page(
    request: web.Request, session: Session, *, error: str | None = None,
    codes: list[str] | None = None, new_key: NewKey | None = None, status: int = 200,
) -> web.Response:
    appliance = request.app[APPLIANCE]
    store = _store(request)
    zone = site_zone(appliance)
    sign_ins = [
        {"when": local_time(s.at, zone), "ok": s.kind == "login", "remote": s.remote,
         "detail": s.detail}
        for s in await store.identity.sign_ins(session.username, SIGN_INS_SHOWN)
    ]
    return render_page(request, "account.html", {
        "title": "Your account",
        "error": error,
        "min_length": MIN_PASSWORD,
        "mfa_enrolled": await store.identity.mfa_secret(session.username) is not None,
        "recovery_left": await store.identity.unused_recovery_codes(session.username),
        "codes": codes,
        "new_key": None if new_key is None else {"name": new_key.key.name,
                                                 "token": new_key.token},
        "keys": await key_rows(request, session.username),
        "may_have_keys": session.role in SEARCH_ROLES,
        "sign_ins": sign_ins,
        "today": appliance.clock.now().astimezone(zone).date().isoformat(),
    }, status=status)


async def account_page(request: web.Request) -> web.Response:
    return await _page(request, require_session(request))


def _done(session: Session, notice: str) -> web.HTTPSeeOther:
    session.notices.append(notice)
    return web.HTTPSeeOther("/account")


# -- password --------------------------------------------------------------------------------

async def change_password(request: web.Request) -> web.Response:
    session = require_session(request)
    store = _store(request)
    form = await request.post()
    current, new, confirm = (_raw(form, name) for name in
                             ("current_password", "new_password", "confirm_password"))
    user = await store.get_user(session.username)
    if user is None:
        raise web.HTTPForbidden(text="This account no longer exists.")
    if not await asyncio.to_thread(verify_password, user.password_hash, current):
        if (locked := await _count_failure(request, session, "bad current password")) is not None:
            return locked
        return await _page(request, session, status=400,
                           error="The current password is wrong. The password was not changed.")
    error = None
    if len(new) < MIN_PASSWORD or len(new) > 1024:
        error = f"The new password must be {MIN_PASSWORD} to 1024 characters long."
    elif new != confirm:
        error = "The two new passwords differ."
    elif new == current:
        error = "Choose a password different from the current one."
    if error is not None:
        return await _page(request, session, error=error + " The password was not changed.",
                           status=400)
    new_hash = await asyncio.to_thread(hash_password, new)
    await store.identity.set_password(session.username, new_hash, must_change=False)
    sessions = request.app[SESSIONS]
    # Every other session of this user ends: whoever knew the old password is out.
    ended = sessions.end_user(session.username) - 1
    fresh = sessions.create(session.username, session.role, session.organization)
    fresh.mfa_method = session.mfa_method
    await store.record_event("password.changed", session.username, {
        "target": session.username, "organization": session.organization, "via": "account",
        "other_sessions_ended": ended, "remote": request.remote or "",
    })
    logger.info("Password changed by %r on the account page", session.username)
    response = _done(fresh, "Your password was changed. Other sessions of yours were signed "
                            "out.")
    _set_session_cookie(request, response, fresh)
    raise response


def _raw(form: MultiDictProxy[Any], name: str) -> str:
    # Passwords are taken as typed (form_text would strip spaces and control characters).
    value = form.get(name)
    return value[:1025] if isinstance(value, str) else ""


# -- second factor ---------------------------------------------------------------------------

async def _code_ok(request: web.Request, session: Session, code: str) -> bool:
    """Whether ``code`` is the user's current TOTP code, unused so far (then it is spent)."""
    store = _store(request)
    secret = await store.identity.mfa_secret(session.username)
    step = matching_step(secret, code, request.app[APPLIANCE].clock.now()) if secret else None
    return step is not None and await store.identity.consume_step(session.username, step)


async def _code_refused(request: web.Request, session: Session, reason: str) -> web.Response:
    if (locked := await _count_failure(request, session, reason)) is not None:
        return locked
    return await _page(request, session, status=400,
                       error="That authenticator code is not valid or was already used. Enter "
                             "the current code from your authenticator.")


async def regenerate_recovery_codes(request: web.Request) -> web.Response:
    session = require_session(request)
    form = await request.post()
    code = "".join(form_text(form, "code", 64).split())
    if not await _code_ok(request, session, code):
        return await _code_refused(request, session, "bad code for new recovery codes")
    store = _store(request)
    codes = new_recovery_codes()
    await store.identity.replace_recovery_codes(session.username, [recovery_hash(c) for c in codes])
    await store.record_event("mfa.recovery_regenerated", session.username, {
        "target": session.username, "organization": session.organization, "count": len(codes),
    })
    # Shown in this response only; the store keeps their hashes.
    return await _page(request, session, codes=codes)


async def reset_own_mfa(request: web.Request) -> web.Response:
    session = require_session(request)
    form = await request.post()
    code = "".join(form_text(form, "code", 64).split())
    if not await _code_ok(request, session, code):
        return await _code_refused(request, session, "bad code for MFA reset")
    store = _store(request)
    await store.identity.reset_mfa(session.username)
    sessions = request.app[SESSIONS]
    ended = sessions.end_user(session.username) - 1
    # Straight into enrolment: until a new authenticator is confirmed, nothing else opens.
    fresh = sessions.create(session.username, session.role, session.organization,
                            pending="enrol")
    await store.record_event("mfa.self_reset", session.username, {
        "target": session.username, "organization": session.organization,
        "other_sessions_ended": ended, "remote": request.remote or "",
    })
    response = web.HTTPSeeOther("/mfa/enrol")
    _set_session_cookie(request, response, fresh)
    raise response


# -- API keys (shared with user administration) ---------------------------------------------

async def create_key(
    request: web.Request, actor: Session, username: str, role: str, form: MultiDictProxy[Any],
) -> NewKey | str:
    """Create a key for ``username`` from the posted name and expiry; a message when refused."""
    appliance = request.app[APPLIANCE]
    store = _store(request)
    name = form_text(form, "name", KEY_NAME_MAX)
    expires_text = form_text(form, "expires_on", 10)
    now = appliance.clock.now()
    zone = site_zone(appliance)
    if role not in SEARCH_ROLES:
        return (f"API keys serve /api/reads, which the {role} role may not use: no key was "
                "created.")
    if not name:
        return "Give the key a name that says where it is used."
    expires_at = None
    if expires_text:
        try:
            last_day = date.fromisoformat(expires_text)
        except ValueError:
            return "The expiry date must be YYYY-MM-DD."
        # Valid through the last day, in site time.
        expires_at = datetime.combine(last_day + timedelta(days=1), time(), zone).astimezone(UTC)
        if expires_at <= now:
            return "The expiry date is in the past."
    active = [k for k in await store.identity.api_keys.of_user(username) if k.usable(now)]
    if len(active) >= MAX_ACTIVE_KEYS:
        return f"{username} has {MAX_ACTIVE_KEYS} active keys already; revoke one first."
    new = await store.identity.api_keys.create(username, name, actor.username, now, expires_at)
    target = await store.get_user(username)
    await store.record_event("api_key.created", actor.username, {
        "target": username, "organization": target.organization if target else "",
        "actor_organization": actor.organization, "key_id": new.key.key_id, "name": name,
        "expires_at": None if expires_at is None else expires_at.isoformat(),
    })
    logger.info("API key %s created for %r by %r", new.key.key_id, username, actor.username)
    return new


async def revoke_key(request: web.Request, actor: Session, username: str, key_id: str) -> bool:
    store = _store(request)
    key = await store.identity.api_keys.get(key_id)
    if key is None or key.username != username:
        raise web.HTTPNotFound(text="No such API key.")
    revoked = await store.identity.api_keys.revoke(key_id, actor.username,
                                                   request.app[APPLIANCE].clock.now())
    if revoked:
        target = await store.get_user(username)
        await store.record_event("api_key.revoked", actor.username, {
            "target": username, "organization": target.organization if target else "",
            "actor_organization": actor.organization, "key_id": key_id, "name": key.name,
        })
    return revoked


async def account_create_key(request: web.Request) -> web.Response:
    session = require_session(request)
    form = await request.post()
    made = await create_key(request, session, session.username, session.role, form)
    if isinstance(made, str):
        return await _page(request, session, error=made, status=400)
    return await _page(request, session, new_key=made)


async def account_revoke_key(request: web.Request) -> web.Response:
    session = require_session(request)
    key_id = request.match_info["key_id"]
    revoked = await revoke_key(request, session, session.username, key_id)
    raise _done(session, f"API key {key_id} is revoked." if revoked
                else f"API key {key_id} was revoked already.")
