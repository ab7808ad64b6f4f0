"""Console pages and endpoints other than sign-in and the live stream."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from .._appliance import Appliance
from .._storage import Store
from .hardware_view import hardware_rows
from .keys import APPLIANCE
from .present import local_time, read_view, render_page, site_zone

logger = logging.getLogger(__name__)

LIVE_ROWS = 50
API_MAX_LIMIT = 500
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Camera states that make the box "degraded" for monitoring.
_BAD_CAMERA_STATES = frozenset({"failed", "reconnecting"})
_HEALTH_STORE_TIMEOUT = 2.0


def _store(appliance: Appliance) -> Store:
    if appliance.store is None:
        raise web.HTTPServiceUnavailable(text="The store is not open.")
    return appliance.store


async def live_page(request: web.Request) -> web.Response:
    appliance = request.app[APPLIANCE]
    zone = site_zone(appliance)
    reads = await _store(appliance).recent_reads(LIVE_ROWS)
    cameras = [
        {**status.as_dict(), "last_frame": local_time(status.last_frame_at, zone)}
        for status in appliance.cameras.values()
    ]
    return render_page(request, "live.html", {
        "title": "Live reads",
        "reads": [read_view(read, zone) for read in reads],
        "cameras": cameras,
        # The enclosure's devices (issue 8): tamper, GPS quality (no position), lamp, power, uplink.
        "hardware": hardware_rows(appliance.hardware.status() if appliance.hardware else None),
        "recognizer_error": appliance.recognizer_error,
        "config_problems": appliance.config_problems,
        "live_rows": LIVE_ROWS,
        "timezone": zone.key,
    })


async def plugins_page(request: web.Request) -> web.Response:
    appliance = request.app[APPLIANCE]
    return render_page(request, "plugins.html", {
        "title": "Plugins",
        "plugins": [status.as_dict() for status in appliance.plugins.statuses],
    })


async def crop(request: web.Request) -> web.Response:
    return await _image(request, "crop")


async def vehicle(request: web.Request) -> web.Response:
    return await _image(request, "vehicle")


async def _image(request: web.Request, kind: str) -> web.Response:
    data = await _store(request.app[APPLIANCE]).get_image(request.match_info["read_id"], kind)
    if data is None:
        raise web.HTTPNotFound(text="No image for this read.")
    return web.Response(body=data, content_type="image/jpeg",
                        headers={"Cache-Control": "no-store"})


async def api_reads(request: web.Request) -> web.Response:
    from .api_keys import api_reads as api_key_reads
    from .api_keys import principal

    if (caller := principal(request)) is not None:  # an API key (issue 6, C-10): audited
        return await api_key_reads(request, caller)
    try:
        limit = int(request.query.get("limit", LIVE_ROWS))
    except ValueError:
        raise web.HTTPBadRequest(text="limit must be a whole number") from None
    if not 1 <= limit <= API_MAX_LIMIT:
        raise web.HTTPBadRequest(text=f"limit must be between 1 and {API_MAX_LIMIT}")
    appliance = request.app[APPLIANCE]
    zone = site_zone(appliance)
    reads = await _store(appliance).recent_reads(limit)
    return web.json_response([read_view(read, zone) for read in reads])


async def _store_ok(appliance: Appliance) -> bool:
    if appliance.store is None or not appliance.started:
        return False
    try:
        # The users table is tiny: this proves the store answers without scanning reads.
        await asyncio.wait_for(appliance.store.user_count(), _HEALTH_STORE_TIMEOUT)
    except Exception as err:
        logger.debug("Health check: store unavailable: %s", err)
        return False
    return True


async def healthz(request: web.Request) -> web.Response:
    """Health for monitoring: states and errors only, never plate data."""
    appliance = request.app[APPLIANCE]
    cameras = {name: status.state for name, status in appliance.cameras.items()}
    failed_plugins = [s.name for s in appliance.plugins.statuses if s.status == "failed"]
    store_ok = await _store_ok(appliance)
    degraded = (
        not store_ok
        or appliance.recognizer_error is not None
        or bool(appliance.config_problems)
        or bool(failed_plugins)
        or any(state in _BAD_CAMERA_STATES for state in cameras.values())
    )
    # The enclosure's devices (issue 8): tamper, GPS state (never a position), sensors, uplink.
    hardware = appliance.hardware
    if hardware is not None and hardware.degraded():
        degraded = True
    # C-5: a failing audit trail is an alert; audited data access is refused meanwhile.
    audit_failure = appliance.store.audit_failure if appliance.store is not None else None
    body: dict[str, object] = {
        "status": "degraded" if degraded or audit_failure else "ok",
        "audit": "ok" if audit_failure is None else "failing",
        "cameras": cameras,
        "recognizer": appliance.recognizer_error or "ok",
        "plugins_failed": failed_plugins,
        "safe_mode": bool(appliance.config_problems),
        "store": "ok" if store_ok else "unavailable",
    }
    # Replication to the city (issue 5): behind or down makes the box degraded, not down.
    replication = appliance.replication
    if replication is not None and replication.settings.enabled:
        body["replication"] = replication.health()
        if not replication.healthy:
            body["status"] = "degraded"
    if hardware is not None:
        body["hardware"] = {**hardware.status(), "attention": hardware.degraded()}
    # Retention (issue 5): a failing purge keeps data past its retention: degraded.
    lifecycle = appliance.lifecycle
    if lifecycle is not None:
        body["retention"] = lifecycle.last_error or "ok"
        if lifecycle.last_error:
            body["status"] = "degraded"
    return web.json_response(body, status=200 if store_ok and not audit_failure else 503)


async def metrics(request: web.Request) -> web.Response:
    body = request.app[APPLIANCE].metrics.render()
    return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE})
