"""Live reads over Server-Sent Events.

Each stored read is one ``read`` event whose data is the JSON of
:func:`~appliance._web.present.read_view`. The stream ends when the session locks (checked at
least every heartbeat) or the server shuts down; the browser then reconnects, gets 401, and the
page reloads into the login screen, which says the session timed out.
"""

from __future__ import annotations

import asyncio
import json
import logging

from aiohttp import web

from ..models import PlateRead
from .auth import SESSION_COOKIE, require_session
from .keys import APPLIANCE, SESSIONS, STOPPING
from .present import read_view, site_zone

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0
RETRY_MS = 3000


async def _next_read(
    queue: asyncio.Queue[PlateRead], stopping: asyncio.Event, wait_seconds: float
) -> PlateRead | None:
    """The next read, or None on heartbeat timeout or shutdown."""
    get = asyncio.ensure_future(queue.get())
    stop = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait({get, stop}, timeout=wait_seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
        if not get.done():
            get.cancel()
    return get.result() if get.done() and not get.cancelled() else None


async def events(request: web.Request) -> web.StreamResponse:
    session = require_session(request)
    app = request.app
    appliance = app[APPLIANCE]
    zone = site_zone(appliance)
    stopping = app[STOPPING]
    queue = appliance.bus.subscribe()
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
            read = await _next_read(queue, stopping, HEARTBEAT_SECONDS)
            if app[SESSIONS].get(request.cookies.get(SESSION_COOKIE)) is not session:
                break
            if read is None:
                await response.write(b": keep-alive\n\n")
                continue
            # json.dumps escapes newlines, so one data line always holds one event.
            data = json.dumps(read_view(read, zone, has_crop=bool(read.crop_jpeg)))
            await response.write(f"id: {read.id}\nevent: read\ndata: {data}\n\n".encode())
    except ConnectionResetError:
        logger.debug("Live stream of %r closed by the client", session.username)
    finally:
        appliance.bus.unsubscribe(queue)
    return response
