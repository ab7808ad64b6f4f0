"""The replication page (administrators and auditors): is the city's copy current, and if not,
why. States, lag and litestream's own last error; never row data."""

from __future__ import annotations

from aiohttp import web

from .auth import require_role
from .keys import APPLIANCE
from .present import render_page

REPLICATION_ROLES = frozenset({"administrator", "auditor"})


async def replication_page(request: web.Request) -> web.Response:
    require_role(request, REPLICATION_ROLES, "view replication status")
    appliance = request.app[APPLIANCE]
    supervisor = appliance.replication
    settings = appliance.config.root.replication
    return render_page(request, "replication.html", {
        "title": "Replication",
        "enabled": settings.enabled,
        "target": settings.target.url() if settings.target is not None else None,
        "problem": supervisor.problem if supervisor is not None else None,
        "databases": [s.as_dict() for s in supervisor.statuses()] if supervisor else [],
        "snapshot": settings.snapshot,
        "keys": settings.keys,
    })
