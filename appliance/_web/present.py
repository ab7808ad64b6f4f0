"""How reads and pages are presented: site time zone, the JSON shape of a read, page context."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import aiohttp_jinja2
from aiohttp import web

from .._appliance import Appliance
from ..models import PlateRead
from .auth import CSRF_FIELD, current_session
from .keys import APPLIANCE

logger = logging.getLogger(__name__)

_UTC = ZoneInfo("UTC")
#: C0 and C1 control characters other than tab and line breaks: no form field needs them, and
#: HTML escaping leaves them as they are (terminal escapes in a log or an export).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def site_zone(appliance: Appliance) -> ZoneInfo:
    name = appliance.config.root.site.timezone
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        logger.warning("Unknown site time zone %r; showing times in UTC", name)
        return _UTC


def local_time(moment: datetime | None, zone: ZoneInfo) -> str:
    if moment is None:
        return "—"
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def crop_url(read_id: str) -> str:
    # Only the opaque read id ever goes into a URL: access logs record URLs, never plates.
    return f"/reads/{read_id}/crop.jpg"


def read_view(read: PlateRead, zone: ZoneInfo, *, has_crop: bool = True) -> dict[str, Any]:
    """One read as the page, the JSON API and the live stream show it."""
    return {
        "id": read.id,
        "text": read.text,
        "confidence": round(read.confidence, 4),
        "camera": read.camera,
        "first_seen": read.first_seen.astimezone(zone).isoformat(),
        "time": local_time(read.first_seen, zone),
        "crop_url": crop_url(read.id) if has_crop else None,
    }


def form_text(form: Mapping[str, Any], name: str, max_length: int = 500) -> str:
    """A posted text field without control characters, stripped and cut to ``max_length``;
    "" when absent or a file."""
    value = form.get(name)
    return _CONTROL.sub("", value).strip()[:max_length] if isinstance(value, str) else ""


def render_page(
    request: web.Request, template: str, context: dict[str, Any], *, status: int = 200
) -> web.Response:
    """Render a signed-in page with what the layout needs (user, CSRF token, site)."""
    session = current_session(request)
    appliance = request.app[APPLIANCE]
    notices: list[str] = []
    if session is not None:
        notices, session.notices = session.notices, []
    full = {
        "user": session,
        "notices": notices,
        "csrf_field": CSRF_FIELD,
        "csrf_token": session.csrf if session else "",
        "site": appliance.config.root.site.name,
        "path": request.path,
        # C-5: administrators and auditors see at once when the audit trail stops recording.
        "audit_failure": (appliance.store.audit_failure if appliance.store is not None
                          and session is not None
                          and session.role in ("administrator", "auditor") else None),
        **context,
    }
    return aiohttp_jinja2.render_template(template, request, full, status=status)
