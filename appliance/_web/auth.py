"""Console sign-in: the session middleware, login and logout, CSRF checks and cookie flags."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import re
import secrets
from collections.abc import Collection
from datetime import UTC
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from aiohttp.typedefs import Handler

from .._storage.audit import AuditKeyError, AuditWriteError
from .keys import APPLIANCE, LOGIN_GUARD, SESSIONS
from .lockout import LOCKOUT, authenticate
from .sessions import Session

logger = logging.getLogger(__name__)

SESSION_COOKIE = "alprbox_session"
#: Double-submit token for the login form, which has no session to hold a CSRF token yet.
LOGIN_COOKIE = "alprbox_login"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"

# favicon.ico is public so the browser's automatic request gets a plain 404, not a login page.
_PUBLIC = frozenset({"/login", "/healthz", "/metrics", "/favicon.ico",
                     "/transparency", "/policy"})  # public by law (issue 7, 1798.90.51)
_STATIC = "/static/"
#: Script-driven endpoints answer 401: a redirect to an HTML login page means nothing to them.
_NO_REDIRECT = ("/api/", "/events")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

#: A session that still owes a sign-in step reaches only that step's pages (and logout).
STEP_PATHS: dict[str, frozenset[str]] = {
    "mfa": frozenset({"/mfa"}),
    "enrol": frozenset({"/mfa/enrol", "/mfa/qr.svg"}),
    "password": frozenset({"/password"}),
}
STEP_HOME = {"mfa": "/mfa", "enrol": "/mfa/enrol", "password": "/password"}
#: Reachable without current training (Piedmont 438.7): nothing here shows ALPR data. User
#: administration stays open so an administrator can record training, their own included.
_TRAINING_EXEMPT = frozenset({"/logout", "/users", "/account"})
_TRAINING_EXEMPT_PREFIX = ("/users/", "/account/")
#: the only paths an API key (``Authorization: Bearer``) opens; everywhere else it is ignored
API_PREFIX = "/api/"

MESSAGES = {
    "invalid": "Invalid username or password.",
    "locked": (
        "Too many failed sign-in attempts. Sign-in for this account is locked for "
        f"{int(LOCKOUT.total_seconds() // 60)} minutes; try again later or ask an administrator."
    ),
    "timeout": "Your session was locked after 30 minutes of inactivity. Please sign in again.",
    "disabled": "This account is disabled. Ask an administrator.",
    "banner": "Read the notice above and tick the box to acknowledge it before signing in.",
}
#: the checkbox under the login banner (CJIS 5.5.4: the notice stays until acknowledged)
ACK_FIELD = "acknowledge"


def banner_sha256(banner: str) -> str:
    """The hash the audit trail records with an acknowledgement: which text was accepted."""
    return hashlib.sha256(banner.encode()).hexdigest()


def current_session(request: web.Request) -> Session | None:
    return request.app[SESSIONS].get(request.cookies.get(SESSION_COOKIE))


def require_session(request: web.Request) -> Session:
    session = current_session(request)
    if session is None or session.pending is not None:
        raise web.HTTPUnauthorized(text="Sign in first.")
    return session


def require_pending(request: web.Request, step: str) -> Session:
    """The session that is at sign-in step ``step``; elsewhere a redirect to where it belongs."""
    session = current_session(request)
    if session is None:
        raise web.HTTPSeeOther("/login")
    if session.pending != step:
        raise web.HTTPSeeOther(STEP_HOME.get(session.pending or "", "/"))
    return session


def require_role(request: web.Request, roles: Collection[str], action: str) -> Session:
    """The signed-in session if its role is one of ``roles``; 403 otherwise.

    Pages hide what a role may not do, but every handler checks again: a hidden button is not
    access control.
    """
    session = require_session(request)
    if session.role not in roles:
        logger.warning("Refused %s %s to %r (%s): role may not %s", request.method,
                       request.path, session.username, session.role, action)
        raise web.HTTPForbidden(text=f"The {session.role} role may not {action}.")
    return session


def _is_public(path: str) -> bool:
    return path in _PUBLIC or path.startswith(_STATIC)


def _is_user_activity(request: web.Request) -> bool:
    # Crops, scripts and the live stream load by themselves; only pages the user opens and forms
    # they send count (Sec-Fetch-Dest: document), or an open live page would never lock.
    if request.path == "/events":
        return False
    return request.headers.get("Sec-Fetch-Dest", "document") == "document"


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every route needs a session unless listed as public: new routes are protected by default.

    An action whose audit record cannot be written is refused (fail closed, C-5)."""
    try:
        return await _guarded(request, handler)
    except (AuditWriteError, AuditKeyError) as err:
        logger.error("Refused %s %s: %s", request.method, request.path, err)
        raise web.HTTPServiceUnavailable(
            text="This action was refused because the audit trail cannot record it (storage "
                 "full or failing). An administrator has been alerted on the console and "
                 "/healthz; try again once it is fixed."
        ) from None


async def _guarded(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(API_PREFIX) and "Authorization" in request.headers:
        from .api_keys import api_key_principal

        # Bearer calls carry no cookies, so there is no session and no CSRF to check; the key's
        # user must still be enabled and trained, checked there.
        await api_key_principal(request)
        return await handler(request)
    session = current_session(request)
    if session is None and not _is_public(request.path):
        if request.path.startswith(_NO_REDIRECT):
            raise web.HTTPUnauthorized(text="Sign in first.")
        raise web.HTTPSeeOther("/login")
    if (session is not None and session.pending is not None and not _is_public(request.path)
            and request.path not in STEP_PATHS[session.pending] and request.path != "/logout"):
        if request.path.startswith(_NO_REDIRECT):
            raise web.HTTPUnauthorized(text="Finish signing in first.")
        raise web.HTTPSeeOther(STEP_HOME[session.pending])
    if session is not None and _is_user_activity(request):
        request.app[SESSIONS].touch(session)
    if request.method not in _SAFE_METHODS:
        await _check_csrf(request, session)
    if (session is not None and session.pending is None and not _is_public(request.path)
            and request.path not in _TRAINING_EXEMPT
            and not request.path.startswith(_TRAINING_EXEMPT_PREFIX)):
        refusal = await _training_refusal(request, session)
        if refusal is not None:
            return refusal
    return await handler(request)


TRAINING_REASON = (
    "Your ALPR training record is missing or more than {days} days old. Policy (Piedmont 438.7, "
    "Oakland 430.9) allows no access to ALPR data without current training: live reads, alerts, "
    "hot lists, BOLOs, searches, images and the API stay closed to you until an administrator "
    "records your training."
)


async def _training_refusal(request: web.Request, session: Session) -> web.Response | None:
    """A 403 page when ``session``'s user has no current training; None when they do."""
    appliance = request.app[APPLIANCE]
    store = appliance.store
    if store is None:
        raise web.HTTPServiceUnavailable(text="The appliance is starting; try again shortly.")
    max_days = appliance.config.root.console.training_max_days
    today = appliance.clock.now().astimezone(UTC).date()
    if await store.identity.trained_until(session.username, today, max_days) is not None:
        return None
    logger.warning("Refused %s %s to %r: training missing or expired",
                   request.method, request.path, session.username)
    reason = TRAINING_REASON.format(days=max_days)
    if request.path.startswith(_NO_REDIRECT) or request.method not in _SAFE_METHODS:
        raise web.HTTPForbidden(text=reason)
    return aiohttp_jinja2.render_template("training.html", request, {
        "title": "Training required",
        "user": session,
        "notices": [],
        "csrf_field": CSRF_FIELD,
        "csrf_token": session.csrf,
        "site": appliance.config.root.site.name,
        "path": request.path,
        "reason": reason,
        "is_admin": session.role == "administrator",
    }, status=403)


async def _check_csrf(request: web.Request, session: Session | None) -> None:
    if request.path == "/login":
        expected = request.cookies.get(LOGIN_COOKIE)
    else:
        expected = session.csrf if session is not None else None
    sent: Any = request.headers.get(CSRF_HEADER)
    if sent is None:
        sent = (await request.post()).get(CSRF_FIELD)
    if not (expected and isinstance(sent, str)
            and hmac.compare_digest(sent.encode(), expected.encode())):
        logger.warning("Rejected %s %s from %s: CSRF token missing or wrong",
                       request.method, request.path, request.remote)
        raise web.HTTPForbidden(text="Missing or invalid CSRF token. Reload the page and retry.")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cookie_flags(request: web.Request) -> dict[str, Any]:
    # Off loopback the console must be behind TLS; a Secure cookie refuses to travel without it.
    host = request.app[APPLIANCE].config.root.console.host
    secure = request.secure or not _is_loopback(host)
    return {"httponly": True, "samesite": "Strict", "secure": secure}


def login_response(
    request: web.Request, message: str | None, *, status: int = 200, username: str = ""
) -> web.Response:
    appliance = request.app[APPLIANCE]
    # Keep an existing token: another tab or a stray request to /login must not invalidate a
    # form already on screen.
    token = request.cookies.get(LOGIN_COOKIE, "")
    if not _TOKEN.fullmatch(token):
        token = secrets.token_urlsafe(32)
    context = {
        "title": "Sign in",
        "user": None,
        "site": appliance.config.root.site.name,
        "banner": appliance.config.root.console.banner,
        "ack_field": ACK_FIELD,
        "message": MESSAGES.get(message or ""),
        "message_kind": message,
        "csrf_token": token,
        "username": username,
    }
    response = aiohttp_jinja2.render_template("login.html", request, context, status=status)
    response.set_cookie(LOGIN_COOKIE, token, path="/login", **cookie_flags(request))
    if SESSION_COOKIE in request.cookies:
        response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def login_page(request: web.Request) -> web.Response:
    session = current_session(request)
    if session is not None and session.pending is None:
        raise web.HTTPSeeOther("/")
    if session is not None:
        # Back at the form half-way through: start over.
        request.app[SESSIONS].end(session.token)
    timed_out = request.app[SESSIONS].pop_timed_out(request.cookies.get(SESSION_COOKIE))
    return login_response(request, "timeout" if timed_out else None)


async def login_submit(request: web.Request) -> web.Response:
    form = await request.post()
    username = form.get("username")
    password = form.get("password")
    username = username.strip()[:128] if isinstance(username, str) else ""
    password = password[:1024] if isinstance(password, str) else ""
    appliance = request.app[APPLIANCE]
    if form.get(ACK_FIELD) not in ("yes", "on"):
        # Checked before the password, so the notice is acknowledged before any sign-in attempt.
        return login_response(request, "banner", status=400, username=username)
    if not username or not password:
        return login_response(request, "invalid", status=401, username=username)
    store = appliance.store
    if store is None:
        raise web.HTTPServiceUnavailable(text="The appliance is starting; try again shortly.")
    remote = request.remote or ""
    # Failures are kept until the second factor is given too: codes count toward the same lockout.
    result = await authenticate(
        store, request.app[LOGIN_GUARD], username, password, appliance.clock.now(), remote,
        reset_failures=False,
    )
    if result.outcome != "ok" or result.user is None:
        return login_response(request, result.outcome, status=401, username=username)
    user = result.user
    # The password alone signs no one in (CJIS 5.6.2.2 MFA): next comes the TOTP step.
    step = "mfa" if await store.identity.mfa_secret(user.username) is not None else "enrol"
    session = request.app[SESSIONS].create(
        user.username, user.role, user.organization, pending=step
    )
    banner = appliance.config.root.console.banner
    await store.record_event("login.banner_acknowledged", user.username, {
        "organization": user.organization, "remote": remote,
        "banner_sha256": banner_sha256(banner), "banner_chars": len(banner),
    })
    await store.record_event(
        "login.password_ok", user.username,
        {"role": user.role, "organization": user.organization, "remote": remote, "next": step},
    )
    logger.info("Console password accepted for %r from %s; %s step next",
                user.username, remote, step)
    response = web.HTTPSeeOther(STEP_HOME[step])
    response.set_cookie(SESSION_COOKIE, session.token, path="/", **cookie_flags(request))
    response.del_cookie(LOGIN_COOKIE, path="/login")
    raise response


async def logout(request: web.Request) -> web.Response:
    session = current_session(request)
    if session is None:
        raise web.HTTPUnauthorized(text="Sign in first.")
    request.app[SESSIONS].end(session.token)
    store = request.app[APPLIANCE].store
    if store is not None:
        await store.record_event("logout", session.username, {"remote": request.remote or ""})
    logger.info("Console sign-out: %r", session.username)
    response = web.HTTPSeeOther("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response
