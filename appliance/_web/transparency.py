"""Public pages (no sign-in): the transparency report and the usage and privacy policy.

Both are generated from the box's own records and live configuration on every request (issue 7
"Transparency"; Civil Code 1798.90.51(b)); neither ever shows a plate, a location or a person.
The outbox status page for administrators and auditors lives here too.
"""

from __future__ import annotations

import weakref
from typing import Any

from aiohttp import web

from .._sharing.policy_doc import policy_document
from .._sharing.transparency import agencies_with_access, build_report
from .._storage import Store
from .auth import require_role
from .keys import APPLIANCE
from .present import local_time, render_page, site_zone

OUTBOX_ROLES = frozenset({"administrator", "supervisor", "auditor"})
RETRY_ROLES = frozenset({"administrator", "supervisor"})
DEAD_SHOWN = 100
#: what each table is called on the public page
TABLE_TITLES = {
    "reads": "Plates read",
    "hits": "Hot-list hits",
    "outcomes": "What hits turned out to be",
    "searches": "Searches by purpose",
    "sharing": "Sharing decisions and requests",
    "exports": "Exports and evidence packages",
    "purges": "Scheduled purges performed",
}


async def transparency_page(request: web.Request) -> web.Response:
    appliance = request.app[APPLIANCE]
    if appliance.store is None:
        raise web.HTTPServiceUnavailable(text="The appliance is starting; try again shortly.")
    root = appliance.config.root
    today = appliance.clock.now().date()
    report = await _cached_report(request)
    doc = policy_document(root, today)
    return render_page(request, "transparency.html", {
        "title": "Transparency",
        "tables": [(TABLE_TITLES[name], table) for name, table in report.items()],
        "agencies": agencies_with_access(root, today),
        "sharing_enabled": root.sharing.enabled,
        "sections": doc["sections"],
        "policy_version": doc["version"],
        "suppress_below": root.transparency.suppress_below,
        "contact": root.transparency.contact,
        "generated": local_time(appliance.clock.now(), site_zone(appliance)),
    })


#: the public report is recomputed at most this often (seconds): anyone may ask for the page,
#: and each computation reads the whole audit trail
REPORT_MAX_AGE = 60.0
#: per open store: (monotonic time computed, published report)
_REPORTS: weakref.WeakKeyDictionary[Store, tuple[float, dict[str, Any]]] = (
    weakref.WeakKeyDictionary()
)


async def _cached_report(request: web.Request) -> dict[str, Any]:
    appliance = request.app[APPLIANCE]
    store = appliance.store
    assert store is not None
    now = appliance.clock.monotonic()
    cached = _REPORTS.get(store)
    if cached is None or now - cached[0] > REPORT_MAX_AGE:
        below = appliance.config.root.transparency.suppress_below
        cached = (now, (await build_report(store)).published(below))
        _REPORTS[store] = cached
    return cached[1]


async def policy_page(request: web.Request) -> web.Response:
    appliance = request.app[APPLIANCE]
    doc = policy_document(appliance.config.root, appliance.clock.now().date())
    return render_page(request, "policy.html", {
        "title": "Usage and privacy policy",
        "sections": doc["sections"],
        "policy_version": doc["version"],
        "generated": local_time(appliance.clock.now(), site_zone(appliance)),
    })


async def outbox_retry(request: web.Request) -> web.Response:
    """Put a dead-lettered delivery back in the queue (audited; the gate is asked again)."""
    session = require_role(request, RETRY_ROLES, "retry dead-lettered deliveries")
    appliance = request.app[APPLIANCE]
    if appliance.sharing is None:
        raise web.HTTPNotFound(text="No exporters are running.")
    delivery_id = request.match_info["delivery_id"]
    if await appliance.sharing.outbox.retry_dead(delivery_id, session.username):
        session.notices.append(f"Delivery {delivery_id} queued again.")
    else:
        session.notices.append(f"Delivery {delivery_id} is not dead-lettered; nothing done.")
    raise web.HTTPSeeOther("/outbox")


async def outbox_page(request: web.Request) -> web.Response:
    session = require_role(request, OUTBOX_ROLES, "see the exporter outbox")
    appliance = request.app[APPLIANCE]
    outbox = appliance.sharing.outbox if appliance.sharing is not None else None
    zone = site_zone(appliance)
    rows = []
    for state in outbox.status() if outbox is not None else []:
        rows.append({**state,
                     "oldest_pending": local_time(state["oldest_pending"], zone),
                     "last_delivered_at": local_time(state["last_delivered_at"], zone),
                     "failing_since": local_time(state["failing_since"], zone)})
    dead = []
    if outbox is not None:
        for row in await outbox.records.recent(DEAD_SHOWN, status="dead"):
            # What the console shows of a dead letter: where and when, never what it carries.
            dead.append({"id": row.id, "exporter": row.exporter, "approval": row.approval_id,
                         "channel": row.channel, "attempts": row.attempts,
                         "queued": local_time(row.created_at, zone),
                         "error": row.last_error or ""})
    return render_page(request, "outbox.html", {
        "title": "Exporter outbox", "exporters": rows, "dead": dead,
        "can_retry": session.role in RETRY_ROLES,
    })
