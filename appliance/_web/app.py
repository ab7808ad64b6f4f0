"""The console's aiohttp application factory."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from .._appliance import Appliance
from . import alerts, auth, bolos, hotlists, live, routes
from .keys import APPLIANCE, LOGIN_GUARD, SESSIONS, STOPPING
from .lockout import LoginGuard
from .sessions import IDLE_TIMEOUT, SessionStore

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"

#: Pages carry no inline script or style, so the policy can forbid both outright.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self'; script-src 'self'; style-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
# Forms are a few fields; nothing legitimate posts more.
_MAX_BODY = 64 * 1024


async def _add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    # on_response_prepare also covers error pages, redirects, static files and the live stream.
    response.headers.update(SECURITY_HEADERS)
    if request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-cache"
    else:
        # Every other response may carry plate data or session state: never keep a copy.
        response.headers["Cache-Control"] = "no-store"


async def _end_live_streams(app: web.Application) -> None:
    app[STOPPING].set()


def create_app(appliance: Appliance, *, idle_timeout: float = IDLE_TIMEOUT) -> web.Application:
    """Build the console for ``appliance``.

    :param idle_timeout: seconds of inactivity before a session locks (CJIS: at most 30 min).
        Time is read from ``appliance.clock``, so tests drive it with a fake clock.
    """
    app = web.Application(middlewares=[auth.session_middleware], client_max_size=_MAX_BODY)
    app[APPLIANCE] = appliance
    app[SESSIONS] = SessionStore(appliance.clock.monotonic, idle_timeout=idle_timeout)
    app[LOGIN_GUARD] = LoginGuard()
    app[STOPPING] = asyncio.Event()
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("appliance._web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    app.on_response_prepare.append(_add_security_headers)
    app.on_shutdown.append(_end_live_streams)

    r = app.router
    r.add_get("/", routes.live_page)
    r.add_get("/login", auth.login_page)
    r.add_post("/login", auth.login_submit)
    r.add_post("/logout", auth.logout)
    r.add_get("/events", live.events)
    r.add_get("/reads/{read_id:[A-Za-z0-9_-]{1,64}}/crop.jpg", routes.crop)
    r.add_get("/reads/{read_id:[A-Za-z0-9_-]{1,64}}/vehicle.jpg", routes.vehicle)
    r.add_get("/plugins", routes.plugins_page)
    r.add_get("/alerts", alerts.alerts_page)
    r.add_get("/alerts/{alert_id:[0-9a-f]{32}}", alerts.alert_page)
    r.add_post("/alerts/{alert_id:[0-9a-f]{32}}/transition", alerts.alert_transition)
    r.add_get("/hotlists", hotlists.hotlists_page)
    r.add_post("/hotlists/{name:[a-z0-9][a-z0-9_-]{0,62}}/refresh", hotlists.refresh_list)
    r.add_get("/bolos", bolos.bolos_page)
    r.add_post("/bolos", bolos.bolo_create)
    r.add_post("/bolos/{bolo_id:[0-9a-f]{12}}/decision", bolos.bolo_decide)
    r.add_post("/bolos/{bolo_id:[0-9a-f]{12}}/search", bolos.bolo_search)
    r.add_get("/api/reads", routes.api_reads)
    r.add_get("/healthz", routes.healthz)
    r.add_get("/metrics", routes.metrics)
    # Identity: the sign-in steps after the password (TOTP, forced password change) and user
    # administration (issue "Identity").
    from . import mfa, users

    r.add_get("/mfa", mfa.mfa_page)
    r.add_post("/mfa", mfa.mfa_submit)
    r.add_get("/mfa/enrol", mfa.enrol_page)
    r.add_post("/mfa/enrol", mfa.enrol_submit)
    r.add_get("/mfa/qr.svg", mfa.enrol_qr)
    r.add_get("/password", mfa.password_page)
    r.add_post("/password", mfa.password_submit)
    user_path = "/users/{username:[a-z0-9][a-z0-9._-]{1,63}}"
    r.add_get("/users", users.users_page)
    r.add_post("/users", users.user_create)
    r.add_post(user_path + "/unlock", users.user_unlock)
    r.add_post(user_path + "/reset-mfa", users.user_reset_mfa)
    r.add_post(user_path + "/training", users.user_training)
    # Identity, issue 6 remainder: disabling accounts, API keys bound to users, the account page.
    from . import account

    key_path = "/api-keys/{key_id:[0-9a-f]{12}}/revoke"
    r.add_post(user_path + "/disable", users.user_disable)
    r.add_post(user_path + "/enable", users.user_enable)
    r.add_post(user_path + "/api-keys", users.user_create_key)
    r.add_post(user_path + key_path, users.user_revoke_key)
    r.add_get("/account", account.account_page)
    r.add_post("/account/password", account.change_password)
    r.add_post("/account/recovery-codes", account.regenerate_recovery_codes)
    r.add_post("/account/mfa-reset", account.reset_own_mfa)
    r.add_post("/account/api-keys", account.account_create_key)
    r.add_post("/account" + key_path, account.account_revoke_key)
    # Detection browsing and the audit trail (issue 6: L-4, L-5, P-5, P-6, P-7).
    from . import audit, search

    r.add_get("/search", search.search_page)
    r.add_post("/search", search.search_submit)
    r.add_get("/reads/{read_id:[A-Za-z0-9_-]{1,64}}", search.record_page)
    r.add_get("/audit", audit.audit_page)
    r.add_post("/audit", audit.audit_filter)
    r.add_post("/audit/sample", audit.audit_sample)
    r.add_get("/audit/memos/{sha256:[0-9a-f]{64}}", audit.memo_page)
    # Data leaving the box (issue 7 part B): public transparency report and usage and privacy
    # policy (no sign-in, generated from the box's records), and the exporter outbox status.
    from . import transparency

    r.add_get("/transparency", transparency.transparency_page)
    r.add_get("/policy", transparency.policy_page)
    r.add_get("/outbox", transparency.outbox_page)
    r.add_post("/outbox/{delivery_id:[0-9a-f]{32}}/retry", transparency.outbox_retry)
    # Replication to the city (issue 5, litestream): state and lag, administrators and auditors.
    from . import replication

    r.add_get("/replication", replication.replication_page)
    # Retention and legal holds (issue 5, lifecycle): administrators, supervisors, auditors.
    from . import retention

    r.add_get("/retention", retention.retention_page)
    r.add_post("/retention/holds", retention.hold_create)
    r.add_post("/retention/holds/release", retention.hold_release)
    # Sharing requests and standing approvals (issue 7 part A, the policy gate).
    from . import sharing

    share_path = "/sharing/{share_id:[0-9a-f]{12}}"
    r.add_get("/sharing", sharing.sharing_page)
    r.add_post("/sharing", sharing.sharing_file)
    r.add_post("/sharing/standing", sharing.sharing_standing)
    r.add_get(share_path, sharing.sharing_request_page)
    r.add_post(share_path + "/decision", sharing.sharing_decide)
    r.add_post(share_path + "/revoke", sharing.sharing_revoke)
    # Cameras (issue 8): status and "Test connection" (the plugin's probe), administrators.
    from . import cameras

    r.add_get("/cameras", cameras.cameras_page)
    r.add_post("/cameras/{camera:[a-z0-9][a-z0-9_-]{0,62}}/probe", cameras.camera_probe)
    r.add_static("/static/", STATIC_DIR)
    return app
