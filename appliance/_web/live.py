"""Live reads and alerts over Server-Sent Events.

Each stored read is one ``read`` event whose data is the JSON of
:func:`~appliance._web.present.read_view`; each new alert is one ``alert`` event whose data is
:func:`~appliance._web.alerts.alert_row` (covert alerts only to the roles that may see them). The
stream ends when the session locks (checked at least every heartbeat) or the server shuts down;
the browser then reconnects, gets 401, and the page reloads into the login screen, which says the
session timed out.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import web

from .._hotlist.alerts import Alert
from ..models import PlateRead
from .alerts import alert_row, sees_covert
from .auth import SESSION_COOKIE, require_session
from .keys import APPLIANCE, SESSIONS, STOPPING
from .present import read_view, site_zone

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0
RETRY_MS = 3000


async def _next_items(
    reads: asyncio.Queue[PlateRead],
    alerts: asyncio.Queue[Alert],
    stopping: asyncio.Event,
    wait_seconds: float,
) -> tuple[list[PlateRead], list[Alert]]:
    """What arrived next on either bus; nothing on heartbeat timeout or shutdown."""
    if reads.empty() and alerts.empty():
        get_read = asyncio.ensure_future(reads.get())
        get_alert = asyncio.ensure_future(alerts.get())
        stop = asyncio.ensure_future(stopping.wait())
        try:
            await asyncio.wait({get_read, get_alert, stop}, timeout=wait_seconds,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            for get in (get_read, get_alert):
                if not get.done():
                    get.cancel()
        # A cancelled get leaves its item queued; a finished one is returned below.
        got_reads = [get_read.result()] if get_read.done() and not get_read.cancelled() else []
        got_alerts = (
            [get_alert.result()] if get_alert.done() and not get_alert.cancelled() else []
        )
    else:
        got_reads, got_alerts = [], []
    while not reads.empty():
        got_reads.append(reads.get_nowait())
    while not alerts.empty():
        got_alerts.append(alerts.get_nowait())
    return got_reads, got_alerts


def _event(kind: str, item_id: str, data: dict[str, Any]) -> bytes:
    # json.dumps escapes newlines, so one data line always holds one event.
    return f"id: {item_id}\nevent: {kind}\ndata: {json.dumps(data)}\n\n".encode()


async def events(request: web.Request) -> web.StreamResponse:
    session = require_session(request)
    app = request.app
    appliance = app[APPLIANCE]
    zone = site_zone(appliance)
    covert_ok = sees_covert(session.role)
    stopping = app[STOPPING]
    reads = appliance.bus.subscribe()
    alerts = appliance.alert_bus.subscribe()
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream",
        "Cache-Control": "no-store",
        # Reverse proxies must not buffer a stream.
        "X-Accel-Buffering": "no",
    })
    try:
        await response.prepare(request)
        await response.write(f"retry: {RETRY_MS}\n\n".encode())
        while not stopping.is_set():
            new_reads, new_alerts = await _next_items(reads, alerts, stopping, HEARTBEAT_SECONDS)
            if app[SESSIONS].get(request.cookies.get(SESSION_COOKIE)) is not session:
                break
            if not new_reads and not new_alerts:
                await response.write(b": keep-alive\n\n")
                continue
            for read in new_reads:
                data = read_view(read, zone, has_crop=bool(read.crop_jpeg))
                await response.write(_event("read", read.id, data))
            for alert in new_alerts:
                if alert.covert and not covert_ok:
                    continue
                await response.write(_event("alert", alert.id, alert_row(alert, zone)))
    except ConnectionResetError:
        logger.debug("Live stream of %r closed by the client", session.username)
    finally:
        appliance.bus.unsubscribe(reads)
        appliance.alert_bus.unsubscribe(alerts)
    return response
