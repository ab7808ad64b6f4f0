"""Typed application keys shared by the console's modules."""

from __future__ import annotations

import asyncio

from aiohttp import web

from .._appliance import Appliance
from .lockout import LoginGuard
from .sessions import SessionStore

APPLIANCE = web.AppKey("appliance", Appliance)
SESSIONS = web.AppKey("sessions", SessionStore)
LOGIN_GUARD = web.AppKey("login_guard", LoginGuard)
#: Set on shutdown so open live streams end instead of holding the server open.
STOPPING = web.AppKey("stopping", asyncio.Event)
