"""Detection browsing in the console: the search form, its results and the record view.

The rules are the back end's (:mod:`appliance._search`): a purpose from the site's closed list,
a case or incident number, a reason that is not vague, a window the policy allows. Every
search, record view and refusal is written to the audit trail there, with the username,
organization, purpose and data queried (Civil Code 1798.90.52). This module only collects the
form and shows the outcome, keeping the user's input when a request is refused.

Plates never go into a URL: the form is posted, and a result opens as ``/reads/{id}?ctx=...``
where ``ctx`` names a short-lived search context held in the server-side session (purpose, case
number, reason and the ids the search found).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from .._recognition.colour import describe_colour
from .._search import SearchRefused, record_view, search_reads
from .._storage import Store, User
from .auth import require_role
from .keys import APPLIANCE
from .present import form_text, local_time, read_view, render_page, site_zone
from .sessions import SearchContext, Session

logger = logging.getLogger(__name__)

SEARCH_ROLES = frozenset({"administrator", "supervisor", "operator", "analyst"})
#: how long a result list can be opened from (seconds of the appliance's monotonic clock)
CONTEXT_SECONDS = 30 * 60.0
#: a session keeps at most this many recent searches
MAX_CONTEXTS = 20
RECORDED = (
    "Every search and every record you open is recorded with your username, organization, "
    "purpose, case number and the data queried (Civil Code 1798.90.52)."
)
_FIELDS = ("purpose", "case_number", "reason", "plate", "camera", "start", "end")


def _store(request: web.Request) -> Store:
    store = request.app[APPLIANCE].store
    if store is None:
        raise web.HTTPServiceUnavailable(text="The appliance is starting; try again shortly.")
    return store


async def _user(store: Store, session: Session) -> User:
    user = await store.get_user(session.username)
    if user is None:
        raise web.HTTPForbidden(text="This account no longer exists.")
    return user


def _form_page(
    request: web.Request,
    values: Mapping[str, str],
    *,
    error: str | None = None,
    results: list[dict[str, Any]] | None = None,
    summary: str | None = None,
    status: int = 200,
) -> web.Response:
    appliance = request.app[APPLIANCE]
    policy = appliance.config.root.policy
    return render_page(request, "search.html", {
        "title": "Search",
        "purposes": policy.purposes,
        "cameras": sorted(appliance.cameras),
        "max_days": policy.search_max_days,
        "timezone": site_zone(appliance).key,
        "recorded": RECORDED,
        "values": {name: values.get(name, "") for name in _FIELDS},
        "error": error,
        "results": results,
        "summary": summary,
    }, status=status)


async def search_page(request: web.Request) -> web.Response:
    require_role(request, SEARCH_ROLES, "search stored reads")
    return _form_page(request, {})


def _moment(text: str, zone: ZoneInfo) -> datetime | str | None:
    """A form time (``datetime-local``, site time) made aware; the text as given when it does not
    parse, so the back end refuses (and audits) it."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


async def search_submit(request: web.Request) -> web.Response:
    session = require_role(request, SEARCH_ROLES, "search stored reads")
    appliance = request.app[APPLIANCE]
    store = _store(request)
    zone = site_zone(appliance)
    form = await request.post()
    values = {name: form_text(form, name, 500) for name in _FIELDS}
    raw: dict[str, Any] = {
        "purpose": values["purpose"],
        "case_number": values["case_number"],
        "reason": values["reason"],
        "plate": values["plate"] or None,
        "camera": values["camera"] or None,
        "start": _moment(values["start"], zone),
        "end": _moment(values["end"], zone),
    }
    user = await _user(store, session)
    try:
        result = await search_reads(
            store, user, raw, now=appliance.clock.now(), policy=appliance.config.root.policy
        )
    except SearchRefused as err:
        # The back end has written the search.refused event; show why beside the kept input.
        return _form_page(request, values, error=f"Search refused: {err}", status=400)
    context_id = _remember(request, session, result.request.purpose,
                           result.request.case_number, result.request.reason,
                           frozenset(r.id for r in result.reads))
    # Crops load by read id; console.js marks a read without one.
    results = [
        {**read_view(r, zone), "href": f"/reads/{r.id}?ctx={context_id}"} for r in result.reads
    ]
    summary = (f"{len(results)} read(s) from {local_time(result.start, zone)} to "
               f"{local_time(result.end, zone)} · case {result.request.case_number} · "
               f"purpose {result.request.purpose}")
    if result.truncated:
        summary += " · more reads matched than are shown: narrow the search"
    return _form_page(request, values, results=results, summary=summary)


def _remember(
    request: web.Request, session: Session, purpose: str, case_number: str, reason: str,
    read_ids: frozenset[str],
) -> str:
    now = request.app[APPLIANCE].clock.monotonic()
    for key in [k for k, c in session.searches.items() if c.expires <= now]:
        del session.searches[key]
    while len(session.searches) >= MAX_CONTEXTS:
        del session.searches[next(iter(session.searches))]
    context_id = secrets.token_urlsafe(16)
    session.searches[context_id] = SearchContext(
        purpose, case_number, reason, read_ids, now + CONTEXT_SECONDS
    )
    return context_id


async def record_page(request: web.Request) -> web.Response:
    """One read, opened from a search's results under that search's purpose and case number."""
    session = require_role(request, SEARCH_ROLES, "open stored reads")
    appliance = request.app[APPLIANCE]
    read_id = request.match_info["read_id"]
    context = session.searches.get(request.query.get("ctx", ""))
    if (context is None or context.expires <= appliance.clock.monotonic()
            or read_id not in context.read_ids):
        raise web.HTTPForbidden(
            text="Open a record from the results of a search: the record view needs that "
                 "search's purpose and case number. Search again if the results are older "
                 "than 30 minutes."
        )
    store = _store(request)
    user = await _user(store, session)
    try:
        read = await record_view(
            store, user, read_id, context.purpose, context.case_number, reason=context.reason,
            policy=appliance.config.root.policy, now=appliance.clock.now(),
        )
    except SearchRefused as err:
        raise web.HTTPForbidden(text=f"Record view refused: {err}") from None
    if read is None:
        raise web.HTTPNotFound(text="This read is no longer stored.")
    zone = site_zone(appliance)
    crop = await store.get_image(read.id, "crop")
    vehicle = await store.get_image(read.id, "vehicle")
    return render_page(request, "record.html", {
        "title": "Read",
        "read": read_view(read, zone, has_crop=crop is not None),
        "vehicle_url": f"/reads/{read.id}/vehicle.jpg" if vehicle else None,
        "last_seen": local_time(read.last_seen, zone),
        "state": read.state or "—",
        # issue 3: the colour seen, to compare with the registration's (plate switching)
        "colour": describe_colour(read.vehicle_colour, read.vehicle_colour_confidence),
        "purpose": context.purpose,
        "case_number": context.case_number,
        "reason": context.reason,
        "recorded": RECORDED,
    })
