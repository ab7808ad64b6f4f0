"""User administration (administrators only): list, create, unlock, reset MFA, record training,
disable and re-enable accounts, and make or revoke a user's API keys.

Accounts are never deleted or renamed, only disabled: a username always means the same person
(C-10, no shared or reused accounts), and their history stays attributable.

Every action is written to the audit trail with the acting administrator, the target user and
organizations. One-time passwords are shown once in the response and never logged or audited.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from datetime import UTC, date, timedelta
from typing import Any

from aiohttp import web

from .._auth import ROLES, hash_password
from .._storage import Store
from .._storage.identity import UserSummary, training_valid_until
from .auth import require_role
from .keys import APPLIANCE, SESSIONS
from .present import form_text, local_time, render_page, site_zone
from .sessions import Session

logger = logging.getLogger(__name__)

ADMIN_ROLES = ("administrator",)
USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
DEFAULT_COURSE = "ALPR system use and policy (annual)"


def _store(request: web.Request) -> Store:
    store = request.app[APPLIANCE].store
    if store is None:
        raise web.HTTPServiceUnavailable(text="The appliance is starting; try again shortly.")
    return store


def _admin(request: web.Request, action: str) -> Session:
    return require_role(request, ADMIN_ROLES, action)


def _today(request: web.Request) -> date:
    return request.app[APPLIANCE].clock.now().astimezone(UTC).date()


def _row(request: web.Request, user: UserSummary, max_days: int) -> dict[str, Any]:
    appliance = request.app[APPLIANCE]
    now = appliance.clock.now()
    today = _today(request)
    if user.training is None:
        training, training_ok = "missing", False
    else:
        until = training_valid_until(user.training, max_days)
        training_ok = user.training.completed_on <= today <= until
        training = (f"{'valid' if training_ok else 'expired'} until {until.isoformat()}"
                    f" ({user.training.course}, {user.training.completed_on.isoformat()})")
    locked = user.locked_until is not None and user.locked_until > now
    return {
        "username": user.username,
        "role": user.role,
        "organization": user.organization,
        "mfa": user.mfa_enrolled,
        "must_change": user.must_change_password,
        "training": training,
        "training_ok": training_ok,
        "locked": locked,
        "locked_until": local_time(user.locked_until, site_zone(appliance)) if locked else "",
        "failures": user.failed_logins,
        "disabled": user.disabled,
    }


async def _page(
    request: web.Request, *, created: dict[str, str] | None = None, error: str | None = None,
    new_key: dict[str, str] | None = None, status: int = 200,
) -> web.Response:
    from .account import key_rows

    appliance = request.app[APPLIANCE]
    max_days = appliance.config.root.console.training_max_days
    users = await _store(request).identity.users()
    rows = []
    for u in users:
        row = _row(request, u, max_days)
        row["api_keys"] = [k for k in await key_rows(request, u.username) if k["active"]]
        rows.append(row)
    return render_page(request, "users.html", {
        "title": "Users",
        "users": rows,
        "new_key": new_key,
        "roles": ROLES,
        "default_organization": appliance.config.root.site.name,
        "default_course": DEFAULT_COURSE,
        "today": _today(request).isoformat(),
        "training_max_days": max_days,
        "created": created,
        "error": error,
    }, status=status)


async def users_page(request: web.Request) -> web.Response:
    _admin(request, "manage users")
    return await _page(request)


async def user_create(request: web.Request) -> web.Response:
    session = _admin(request, "create users")
    form = await request.post()
    username = form_text(form, "username", 64).lower()
    role = form_text(form, "role", 32)
    organization = form_text(form, "organization", 200)
    store = _store(request)
    error = None
    if not USERNAME.fullmatch(username):
        error = ("Usernames are 2 to 64 characters: lowercase letters, digits, '.', '_' or '-', "
                 "starting with a letter or digit.")
    elif role not in ROLES:
        error = "Choose one of the listed roles."
    elif not organization:
        error = "Enter the user's organization."
    elif await store.get_user(username) is not None:
        error = f"A user named {username!r} exists already; accounts are never shared or reused."
    if error is not None:
        return await _page(request, error=error, status=400)
    password = secrets.token_urlsafe(12)
    password_hash = await asyncio.to_thread(hash_password, password)
    await store.create_user(username, password_hash, role, organization)
    await store.identity.set_password(username, password_hash, must_change=True)
    await store.record_event("user.created", session.username, {
        "target": username, "role": role, "organization": organization,
        "actor_organization": session.organization,
    })
    logger.info("User %r (%s) created by %r", username, role, session.username)
    # The one-time password is in this response only; the store keeps its hash.
    return await _page(request, created={"username": username, "password": password})


async def _target(request: web.Request) -> UserSummary:
    name = request.match_info["username"]
    for user in await _store(request).identity.users():
        if user.username == name:
            return user
    raise web.HTTPNotFound(text="No such user.")


def _done(session: Session, notice: str) -> web.HTTPSeeOther:
    session.notices.append(notice)
    return web.HTTPSeeOther("/users")


async def user_unlock(request: web.Request) -> web.Response:
    session = _admin(request, "unlock users")
    target = await _target(request)
    store = _store(request)
    await store.update_login_state(target.username, failed_logins=0, locked_until=None)
    await store.record_event("user.unlocked", session.username, {
        "target": target.username, "organization": target.organization,
        "actor_organization": session.organization,
    })
    raise _done(session, f"{target.username} is unlocked.")


async def user_reset_mfa(request: web.Request) -> web.Response:
    session = _admin(request, "reset MFA")
    target = await _target(request)
    store = _store(request)
    await store.identity.reset_mfa(target.username)
    ended = request.app[SESSIONS].end_user(target.username)
    await store.record_event("user.mfa_reset", session.username, {
        "target": target.username, "organization": target.organization,
        "actor_organization": session.organization, "sessions_ended": ended,
    })
    raise _done(session, f"{target.username} will set up a new authenticator at next sign-in.")


async def user_training(request: web.Request) -> web.Response:
    session = _admin(request, "record training")
    target = await _target(request)
    form = await request.post()
    course = form_text(form, "course", 200)
    completed = form_text(form, "completed_on", 10)
    today = _today(request)
    max_days = request.app[APPLIANCE].config.root.console.training_max_days
    try:
        completed_on = date.fromisoformat(completed) if completed else today
    except ValueError:
        return await _page(request, error="The completion date must be YYYY-MM-DD.", status=400)
    if not course:
        return await _page(request, error="Enter the course name.", status=400)
    if completed_on > today:
        return await _page(request, error="The completion date is in the future.", status=400)
    expires_on = completed_on + timedelta(days=max_days)
    store = _store(request)
    await store.identity.record_training(
        target.username, course, completed_on, expires_on, session.username
    )
    await store.record_event("user.training_recorded", session.username, {
        "target": target.username, "organization": target.organization,
        "actor_organization": session.organization, "course": course,
        "completed_on": completed_on.isoformat(), "expires_on": expires_on.isoformat(),
    })
    note = "" if expires_on >= today else " It is already expired and grants no access."
    raise _done(session, f"Training recorded for {target.username} until "
                         f"{expires_on.isoformat()}.{note}")


async def user_disable(request: web.Request) -> web.Response:
    session = _admin(request, "disable users")
    target = await _target(request)
    store = _store(request)
    if target.username == session.username:
        return await _page(request, status=400, error="You cannot disable your own account.")
    if (target.role == "administrator"
            and await store.identity.enabled_administrators() == [target.username]):
        return await _page(request, status=400,
                           error="This is the last enabled administrator; enable or create "
                                 "another administrator first.")
    changed = await store.identity.set_disabled(
        target.username, session.username, request.app[APPLIANCE].clock.now()
    )
    # Signed-in sessions end now; the password step refuses the account from here on, and its
    # API keys stop working at their next call.
    ended = request.app[SESSIONS].end_user(target.username)
    if changed:
        await store.record_event("user.disabled", session.username, {
            "target": target.username, "organization": target.organization,
            "actor_organization": session.organization, "sessions_ended": ended,
        })
        logger.info("User %r disabled by %r (%d session(s) ended)", target.username,
                    session.username, ended)
    raise _done(session, f"{target.username} is disabled; {ended} session(s) ended."
                if changed else f"{target.username} was disabled already.")


async def user_enable(request: web.Request) -> web.Response:
    session = _admin(request, "re-enable users")
    target = await _target(request)
    store = _store(request)
    changed = await store.identity.set_disabled(target.username, None, None)
    if changed:
        await store.record_event("user.enabled", session.username, {
            "target": target.username, "organization": target.organization,
            "actor_organization": session.organization,
        })
        logger.info("User %r re-enabled by %r", target.username, session.username)
    raise _done(session, f"{target.username} is enabled again." if changed
                else f"{target.username} was not disabled.")


async def user_create_key(request: web.Request) -> web.Response:
    from .account import create_key

    session = _admin(request, "create API keys for users")
    target = await _target(request)
    if target.disabled:
        return await _page(request, status=400, error="The account is disabled: no key made.")
    made = await create_key(request, session, target.username, target.role,
                            await request.post())
    if isinstance(made, str):
        return await _page(request, error=made, status=400)
    return await _page(request, new_key={"username": target.username, "name": made.key.name,
                                         "token": made.token})


async def user_revoke_key(request: web.Request) -> web.Response:
    from .account import revoke_key

    session = _admin(request, "revoke API keys")
    target = await _target(request)
    key_id = request.match_info["key_id"]
    revoked = await revoke_key(request, session, target.username, key_id)
    raise _done(session, f"API key {key_id} of {target.username} is revoked." if revoked
                else f"API key {key_id} was revoked already.")
