"""The retention page: what is kept per class and day and until when, legal holds, purges.

Administrators, supervisors and auditors see it (Alameda 462.3(b)5 audits ask why anything is
kept past six months); administrators and supervisors place and release holds. Viewing and each
hold action are audited. No plate or image is shown here, only counts, days and case numbers.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time

from aiohttp import web

from .._lifecycle.holds import HoldError, Holds
from .._lifecycle.status import retention_status
from .auth import require_role
from .keys import APPLIANCE
from .present import form_text, render_page

VIEW_ROLES = frozenset({"administrator", "supervisor", "auditor"})
HOLD_ROLES = frozenset({"administrator", "supervisor"})
_READ_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _day(text: str, *, end: bool = False) -> datetime | None:
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError as err:
        raise HoldError(f"{text!r} is not a date (YYYY-MM-DD)") from err
    # A window's end date is included whole.
    return datetime.combine(day, time.max if end else time.min, tzinfo=UTC)


async def _render(
    request: web.Request, *, form: dict[str, str] | None = None, error: str | None = None,
    status: int = 200,
) -> web.Response:
    appliance = request.app[APPLIANCE]
    store = appliance.store
    if store is None:
        raise web.HTTPServiceUnavailable(text="The store is not open.")
    report = await retention_status(store, appliance.config.root.retention, appliance.clock.now())
    session = require_role(request, VIEW_ROLES, "view retention")
    return render_page(request, "retention.html", {
        "title": "Retention",
        "report": report,
        "can_hold": session.role in HOLD_ROLES,
        "form": form or {},
        "error": error,
    }, status=status)


async def retention_page(request: web.Request) -> web.Response:
    session = require_role(request, VIEW_ROLES, "view retention")
    store = request.app[APPLIANCE].store
    if store is not None:
        await store.record_event("retention.viewed", session.username, {"via": "console"})
    return await _render(request)


async def hold_create(request: web.Request) -> web.Response:
    session = require_role(request, HOLD_ROLES, "place legal holds")
    appliance = request.app[APPLIANCE]
    store = appliance.store
    if store is None:
        raise web.HTTPServiceUnavailable(text="The store is not open.")
    posted = await request.post()
    names = ("case_number", "reason", "read_ids", "plate", "start", "end", "until")
    form = {name: form_text(posted, name, 2000 if name == "read_ids" else 300) for name in names}
    ids = [i for i in re.split(r"[\s,]+", form["read_ids"]) if i]
    try:
        if any(not _READ_ID.match(i) for i in ids):
            raise HoldError("read ids are letters, digits, '-' and '_'")
        hold = await Holds(store).add(
            case_number=form["case_number"],
            reason=form["reason"],
            actor=session.username,
            now=appliance.clock.now(),
            until=_day(form["until"], end=True),
            read_ids=ids or None,
            plate=form["plate"] or None,
            start=_day(form["start"]),
            end=_day(form["end"], end=True),
        )
    except HoldError as err:
        return await _render(request, form=form, error=str(err), status=400)
    session.notices.append(
        f"Hold {hold.id} for case {hold.case_number} placed on {hold.reads} read(s)."
    )
    raise web.HTTPSeeOther("/retention")


async def hold_release(request: web.Request) -> web.Response:
    session = require_role(request, HOLD_ROLES, "release legal holds")
    appliance = request.app[APPLIANCE]
    store = appliance.store
    if store is None:
        raise web.HTTPServiceUnavailable(text="The store is not open.")
    posted = await request.post()
    raw = form_text(posted, "hold_id", 12)
    why = form_text(posted, "why", 300)
    try:
        if not raw.isdigit():
            raise HoldError("choose a hold to release")
        hold = await Holds(store).release(int(raw), session.username, appliance.clock.now(), why)
    except HoldError as err:
        return await _render(request, error=str(err), status=400)
    session.notices.append(
        f"Hold {hold.id} released: its reads return to normal retention."
    )
    raise web.HTTPSeeOther("/retention")
