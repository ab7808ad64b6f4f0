"""The cameras page: each configured camera's status, and "Test connection" (issue 8).

Testing runs the plugin's ``probe()`` on a fresh instance (never the running camera's) in a
worker thread with a time limit, and shows exactly what failed: unreachable, credentials
refused, a configuration the camera cannot serve (no H.264 profile), or a plugin bug. Only
administrators may test (a probe reaches out to a device with the box's credentials); each test
is audited. Credentials never reach the page: the settings shown carry secret references only,
and the probe's answer is scrubbed of the secrets' values and of credentials in URLs.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from .._appliance import Appliance
from .._camera_probe import ProbeResult, probe_camera, scrub, secrets_of
from ..settings import CameraSettings
from .auth import require_role
from .keys import APPLIANCE
from .present import local_time, render_page, site_zone

logger = logging.getLogger(__name__)

ADMIN_ROLES = frozenset({"administrator"})
#: settings shown beside a camera (addresses, not secrets); the rest stay in the config file
_SHOWN = ("host", "port", "source", "resolution", "profile", "device")


def _settings(appliance: Appliance, name: str) -> CameraSettings:
    settings = next((c for c in appliance.config.cameras if c.name == name), None)
    if settings is None:
        raise web.HTTPNotFound(text="No such camera.")
    return settings


def _camera_rows(appliance: Appliance) -> list[dict[str, Any]]:
    zone = site_zone(appliance)
    rows = []
    for settings in appliance.config.cameras:
        status = appliance.cameras.get(settings.name)
        # A stream URL may carry a user and password (rtsp://user:pass@host/...): masked.
        secrets = secrets_of(settings)
        shown = {key: scrub(str(getattr(settings, key)), secrets) for key in _SHOWN
                 if getattr(settings, key, None) not in (None, "")}
        rows.append({
            "name": settings.name,
            "type": settings.type,
            "settings": shown,
            "state": status.state if status else "not started",
            "error": status.error if status else None,
            "frames": status.frames if status else 0,
            "last_frame": local_time(status.last_frame_at, zone) if status else "",
        })
    return rows


def _page(request: web.Request, probe: ProbeResult | None = None) -> web.Response:
    appliance = request.app[APPLIANCE]
    return render_page(request, "cameras.html", {
        "title": "Cameras",
        "cameras": _camera_rows(appliance),
        "probe": probe,
    })


async def cameras_page(request: web.Request) -> web.Response:
    require_role(request, ADMIN_ROLES, "manage cameras")
    return _page(request)


async def camera_probe(request: web.Request) -> web.Response:
    session = require_role(request, ADMIN_ROLES, "test camera connections")
    appliance = request.app[APPLIANCE]
    settings = _settings(appliance, request.match_info["camera"])
    cls = appliance.plugins.type_for("camera", settings.type)
    if cls is None:  # the plugin failed to load; the config still names the camera
        raise web.HTTPConflict(text=f"The {settings.type} camera plugin is not loaded.")
    result = await probe_camera(cls, settings, appliance.context("cameras", settings.name))
    if appliance.store is not None:
        await appliance.store.record_event("camera.probe", session.username, {
            "camera": settings.name,
            "type": settings.type,
            "ok": result.ok,
            "failure": result.failure,
            "message": result.message,
            "organization": session.organization,
        })
    logger.info("Camera '%s': connection test by %r: %s", settings.name, session.username,
                "ok" if result.ok else result.failure)
    return _page(request, result)
