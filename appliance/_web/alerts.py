"""Alert pages: the newest alerts, and the verification page that walks one through its tiers.

An alert is not grounds for a stop (Vallejo 426.4(e)/(f), Alameda 462.2): the verification page
puts the plate image beside the hot-list entry, character by character, and offers only the next
step of the lifecycle. The lifecycle rules themselves live in :mod:`appliance._hotlist.alerts`
and are checked by the store inside its write transaction; this module only presents them.
"""

from __future__ import annotations

import logging
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from .._hotlist.alerts import (
    ALERT_ROLES,
    COVERT_ROLES,
    DISPOSITIONS,
    FINAL_STATES,
    REJECT_REASONS,
    STATE_LABELS,
    Alert,
    AlertEvent,
    AlertState,
    AlertTransitionError,
    next_state,
)
from .._hotlist.plates import WILDCARD, normalize_plate, normalize_state
from .._recognition.colour import describe_colour
from .._storage import Store
from ..models import PlateRead
from .auth import require_role, require_session
from .keys import APPLIANCE
from .present import crop_url, form_text, local_time, render_page, site_zone

logger = logging.getLogger(__name__)

ALERT_ROWS = 100
#: Shown on the list and on every verification page (Vallejo 426.4(e)).
NOT_PROBABLE_CAUSE = (
    "An alert alone is not grounds for a stop: verify the characters, the state and the "
    "vehicle, then validate with a live query."
)
_VIEW_ROLES = frozenset({"administrator", "supervisor", "operator", "analyst", "auditor"})
_NOTE_MAX = 500
#: What the form for each next step asks for, by the state it moves the alert to.
_STEP_TITLES = {
    AlertState.TENTATIVE: "Visual verification",
    AlertState.VALIDATED: "Live query validated",
    AlertState.CONFIRMED: "Entering agency confirmed",
    AlertState.CLOSED: "Close with disposition",
}
_STEP_BUTTONS = {
    AlertState.TENTATIVE: "Mark visually verified (tentative hit)",
    AlertState.VALIDATED: "Record live query validated",
    AlertState.CONFIRMED: "Record agency confirmation",
    AlertState.CLOSED: "Close alert",
}


def _store(request: web.Request) -> Store:
    store = request.app[APPLIANCE].store
    if store is None:
        raise web.HTTPServiceUnavailable(text="The store is not open.")
    return store


def alert_url(alert_id: str) -> str:
    # Only the opaque alert id goes into a URL, never the plate or the entry.
    return f"/alerts/{alert_id}"


def sees_covert(role: str) -> bool:
    return role in COVERT_ROLES


def alert_row(alert: Alert, zone: ZoneInfo, read: PlateRead | None = None) -> dict[str, Any]:
    """One alert as the list shows it and the live stream sends it."""
    read = read or alert.read
    return {
        "id": alert.id,
        "state": alert.state.value,
        "label": alert.label,
        "list": alert.list_name,
        "category": alert.entry.category,
        "text": read.text if read else "",
        "camera": read.camera if read else "",
        "first_seen": alert.created_at.astimezone(zone).isoformat(),
        "time": local_time(alert.created_at, zone),
        "stale": alert.stale,
        "covert": alert.covert,
        "detail_url": alert_url(alert.id),
    }


async def alerts_page(request: web.Request) -> web.Response:
    session = require_role(request, _VIEW_ROLES, "view alerts")
    appliance = request.app[APPLIANCE]
    store = _store(request)
    zone = site_zone(appliance)
    alerts = await store.alerts.recent(ALERT_ROWS, include_covert=sees_covert(session.role))
    reads = await store.reads_by_id(sorted({a.read_id for a in alerts}))
    return render_page(request, "alerts.html", {
        "title": "Alerts",
        "alerts": [alert_row(a, zone, reads.get(a.read_id)) for a in alerts],
        "not_probable_cause": NOT_PROBABLE_CAUSE,
        "max_rows": ALERT_ROWS,
        "timezone": zone.key,
    })


def compare_plates(alert: Alert) -> list[dict[str, Any]]:
    """The read and the listed plate side by side, one column per character position.

    Positions come from the matcher's ``differences`` (1-based, on normalized plates); any other
    position where the characters differ is flagged too, so a column is never wrongly plain.
    """
    read = normalize_plate(alert.read.text) if alert.read else ""
    listed = normalize_plate(alert.entry.plate, wildcards=True)
    flagged = {int(d[0]) for d in alert.differences}
    columns = []
    for i in range(max(len(read), len(listed))):
        read_char = read[i] if i < len(read) else ""
        listed_char = listed[i] if i < len(listed) else ""
        columns.append({
            "position": i + 1,
            "read": read_char,
            "listed": listed_char,
            "differs": (i + 1) in flagged or read_char != listed_char,
            "wildcard": listed_char == WILDCARD,
        })
    return columns


def _state_check(alert: Alert) -> dict[str, Any]:
    read_state = normalize_state(alert.read.state) if alert.read else None
    listed_state = normalize_state(alert.entry.state)
    if alert.state_matched:
        verdict, kind = "match", "ok"
    elif alert.state_matched is False:
        verdict, kind = "DIFFERENT", "bad"
    else:
        verdict, kind = "unknown: check the state on the image", "warn"
    return {"read": read_state or "not read", "listed": listed_state or "not listed",
            "verdict": verdict, "kind": kind}


def _event_view(event: AlertEvent, zone: ZoneInfo) -> dict[str, Any]:
    detail = event.detail
    notes = []
    if detail.get("verified_characters") and detail.get("verified_state") \
            and detail.get("verified_vehicle"):
        notes.append("characters, state and vehicle compared")
    for key, label in (("reason", "reason"), ("disposition", "disposition"), ("note", "note")):
        if detail.get(key):
            notes.append(f"{label}: {detail[key]}")
    return {
        "at": local_time(event.at, zone),
        "actor": event.actor,
        "from": STATE_LABELS[event.from_state],
        "to": STATE_LABELS[event.to_state],
        "detail": "; ".join(notes),
    }


def _vehicle(alert: Alert) -> str:
    entry = alert.entry
    parts = [str(entry.vehicle_year) if entry.vehicle_year else "", entry.vehicle_make or "",
             entry.vehicle_model or "", entry.vehicle_colour or ""]
    return " ".join(p for p in parts if p) or "not listed"


def _render_alert(
    request: web.Request,
    alert: Alert,
    *,
    error: str | None = None,
    form: dict[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    session = require_session(request)
    zone = site_zone(request.app[APPLIANCE])
    read = alert.read
    step = next_state(alert.state)
    final = alert.state in FINAL_STATES
    return render_page(request, "alert.html", {
        "title": "Verify alert",
        "alert": alert_row(alert, zone),
        "label": alert.label,
        "kind": alert.kind,
        "explanation": alert.explanation,
        "stale": alert.stale,
        "read": {
            "text": read.text if read else "",
            "camera": read.camera if read else "—",
            "time": local_time(read.first_seen, zone) if read else "—",
            "confidence": round(read.confidence * 100) if read else None,
            "crop_url": crop_url(read.id) if read else None,
            "vehicle_url": f"/reads/{read.id}/vehicle.jpg" if read else None,
            # Beside the listed vehicle, for the colour check before a stop; an estimate only.
            "colour": describe_colour(read.vehicle_colour, read.vehicle_colour_confidence)
            if read
            else "—",
        },
        "entry": alert.entry,
        "vehicle": _vehicle(alert),
        "entered": alert.entry.entered.isoformat() if alert.entry.entered else "—",
        "expires": alert.entry.expires.isoformat() if alert.entry.expires else "—",
        "columns": compare_plates(alert),
        "state_check": _state_check(alert),
        "history": [_event_view(e, zone) for e in alert.events],
        "can_act": session.role in ALERT_ROLES and not final,
        "final": final,
        "step": step.value if step and not final else None,
        "step_title": _STEP_TITLES.get(step) if step else None,
        "step_button": _STEP_BUTTONS.get(step) if step else None,
        "dispositions": DISPOSITIONS,
        "reject_reasons": REJECT_REASONS,
        "error": error,
        "form": form or {},
        "not_probable_cause": NOT_PROBABLE_CAUSE,
    }, status=status)


async def _get_alert(request: web.Request, role: str) -> Alert:
    alert = await _store(request).alerts.get(
        request.match_info["alert_id"], include_covert=sees_covert(role)
    )
    if alert is None:
        # A covert alert answers like a missing one: its existence is itself sensitive.
        raise web.HTTPNotFound(text="No such alert.")
    return alert


async def alert_page(request: web.Request) -> web.Response:
    session = require_role(request, _VIEW_ROLES, "view alerts")
    alert = await _get_alert(request, session.role)
    # Opening a hit is an access to its data: record who looked, and when (Civ. Code 1798.90.52).
    await _store(request).record_event("alert.viewed", session.username, {
        "alert": alert.id, "list": alert.list_name, "organization": session.organization,
    })
    return _render_alert(request, alert)


async def alert_transition(request: web.Request) -> web.Response:
    session = require_role(request, ALERT_ROLES, "act on alerts")
    alert = await _get_alert(request, session.role)
    form = await request.post()
    values = {name: form_text(form, name, _NOTE_MAX) for name in (
        "target", "reason", "disposition", "note",
        "verified_characters", "verified_state", "verified_vehicle",
    )}
    try:
        target = AlertState(values["target"])
    except ValueError:
        raise web.HTTPBadRequest(text="Unknown alert step.") from None
    detail: dict[str, Any] = {}
    if target is AlertState.REJECTED:
        detail["reason"] = values["reason"]
    elif target is AlertState.TENTATIVE:
        for check in ("verified_characters", "verified_state", "verified_vehicle"):
            detail[check] = bool(values[check])
    elif target is AlertState.CLOSED:
        detail["disposition"] = values["disposition"]
    if values["note"]:
        detail["note"] = values["note"]
    try:
        await _store(request).alerts.transition(alert.id, session.username, target, **detail)
    except AlertTransitionError as err:
        # Show the alert as it stands now: another operator may have just moved it.
        current = await _get_alert(request, session.role)
        return _render_alert(request, current, error=str(err), form=values, status=400)
    logger.info("Alert %s moved from %s to %s by %r", alert.id, alert.state.value, target.value,
                session.username)
    session.notices.append(f"Alert moved to: {STATE_LABELS[target]}.")
    raise web.HTTPSeeOther(alert_url(alert.id))
