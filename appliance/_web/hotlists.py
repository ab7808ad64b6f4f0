"""The hot-lists page: each list's size, age, staleness, last error and what the law dropped."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from .._hotlist.manager import BOLO_LIST, HotlistManager, ListStatus
from .auth import require_role
from .keys import APPLIANCE
from .present import local_time, render_page, site_zone

logger = logging.getLogger(__name__)

_VIEW_ROLES = frozenset({"administrator", "supervisor", "operator", "analyst", "auditor"})
REFRESH_ROLES = frozenset({"administrator"})


def _manager(request: web.Request) -> HotlistManager:
    manager = request.app[APPLIANCE].hotlists
    if manager is None:
        raise web.HTTPServiceUnavailable(text="Hot lists are not loaded.")
    return manager


def _age(hours: float | None) -> str:
    if hours is None:
        return "never refreshed"
    if hours < 1:
        return f"{round(hours * 60)} min"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} days"


def list_view(status: ListStatus, now: datetime, zone: ZoneInfo) -> dict[str, Any]:
    data = status.as_dict(now)
    return {
        **data,
        "age": _age(data["age_hours"]),
        "refreshed": local_time(status.refreshed_at, zone),
        "attempted": local_time(status.last_attempt, zone),
        "dropped": sorted(status.dropped.items()),
        "dropped_total": sum(status.dropped.values()),
        "refreshable": status.name != BOLO_LIST,
    }


async def hotlists_page(request: web.Request) -> web.Response:
    session = require_role(request, _VIEW_ROLES, "view hot lists")
    appliance = request.app[APPLIANCE]
    manager = _manager(request)
    zone = site_zone(appliance)
    now = appliance.clock.now()
    # Configured lists first, in name order; the local BOLO list last.
    statuses = sorted(manager.status.values(), key=lambda s: (s.name == BOLO_LIST, s.name))
    return render_page(request, "hotlists.html", {
        "title": "Hot lists",
        "lists": [list_view(s, now, zone) for s in statuses],
        "can_refresh": session.role in REFRESH_ROLES,
    })


async def refresh_list(request: web.Request) -> web.Response:
    session = require_role(request, REFRESH_ROLES, "refresh hot lists")
    manager = _manager(request)
    name = request.match_info["name"]
    if name == BOLO_LIST or name not in manager.status:
        raise web.HTTPNotFound(text="No such refreshable list.")
    store = request.app[APPLIANCE].store
    if store is not None:
        await store.record_event("hotlist.refresh_requested", session.username,
                                 {"list": name, "organization": session.organization})
    logger.info("Hot list '%s': refresh requested by %r", name, session.username)
    ok = await manager.refresh(name)
    status = manager.status[name]
    if ok:
        session.notices.append(f"List {name} refreshed: {status.entries} entries.")
    else:
        session.notices.append(
            f"List {name} was not refreshed; the previous list stays active ({status.error})."
        )
    raise web.HTTPSeeOther("/hotlists")
