"""The sharing pages: written requests, their review with MFA re-entry, standing approvals.

The rules are :class:`~appliance._policy.requests.SharingService`'s and the policy gate's.
Handlers check the role first, so a refused action answers 403 before anything is read, and
show the service's own messages.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from .._policy.gate import CHANNELS, Recipient, ShareRequest, ShareScope, gate_for
from .._policy.requests import (
    APPROVER_ROLES,
    ATTESTATION,
    FILER_ROLES,
    VIEW_ROLES,
    SharingError,
    SharingRecord,
    SharingService,
)
from .._storage import User
from .auth import require_role
from .keys import APPLIANCE
from .present import form_text, local_time, render_page, site_zone
from .sessions import Session

logger = logging.getLogger(__name__)

#: channels a request may ask for (replication is hosting, not sharing)
REQUEST_CHANNELS = tuple(c for c in CHANNELS if c != "replication")
_FIELDS = ("agency", "ori", "person", "email", "purpose", "case_number", "reason",
           "on_behalf_of", "recipients", "plates", "start", "end", "scope", "until", "note",
           "attest")


def _service(request: web.Request) -> SharingService:
    appliance = request.app[APPLIANCE]
    if appliance.store is None:
        raise web.HTTPServiceUnavailable(text="Sharing is not available; the store is not open.")
    return SharingService(gate_for(appliance.store, appliance.config.root, appliance.clock))


async def _user(service: SharingService, session: Session) -> User:
    user = await service.store.get_user(session.username)
    if user is None:
        raise web.HTTPForbidden(text="This account no longer exists.")
    return user


def _record_view(record: SharingRecord, session: Session, zone: ZoneInfo,
                 now: datetime) -> dict[str, Any]:
    req = record.request
    status = record.status
    if status == "approved" and not record.current(now):
        status = "expired"
    return {
        "id": record.id,
        "kind": record.kind,
        "status": status,
        "agency": req.agency,
        "ori": req.ori or "—",
        "person": req.person,
        "email": req.email or "",
        "purpose": req.purpose,
        "case_number": req.case_number,
        "reason": req.reason,
        "on_behalf_of": list(req.on_behalf_of),
        "recipients": [r.name or r.email or r.url or "" for r in req.recipients],
        "channels": ", ".join(record.channels),
        "scope": req.scope.description,
        "plates": ", ".join(req.scope.plates),
        "window": " – ".join(
            local_time(t, zone) for t in (req.scope.start, req.scope.end) if t is not None
        ),
        "created_by": record.created_by,
        "created_at": local_time(record.created_at, zone),
        "decided_by": record.decided_by or "—",
        "decided_at": local_time(record.decided_at, zone) if record.decided_at else "",
        "expires": local_time(record.expires_at, zone) if record.expires_at else "—",
        "note": record.note,
        "attestation": record.attestation,
        "precheck": record.precheck,
        "can_decide": (record.kind == "request" and record.status == "pending"
                       and session.role in APPROVER_ROLES),
        "can_revoke": record.status == "approved" and session.role in APPROVER_ROLES,
    }


async def _render_list(
    request: web.Request,
    session: Session,
    *,
    form: dict[str, Any] | None = None,
    error: str | None = None,
    decision: dict[str, Any] | None = None,
    status: int = 200,
) -> web.Response:
    appliance = request.app[APPLIANCE]
    service = _service(request)
    zone = site_zone(appliance)
    now = appliance.clock.now()
    records = await service.all()
    today = now.astimezone(zone).date()
    sharing = appliance.config.root.sharing
    return render_page(request, "sharing.html", {
        "title": "Sharing",
        "records": [_record_view(r, session, zone, now) for r in records],
        "can_file": session.role in FILER_ROLES,
        "can_approve": session.role in APPROVER_ROLES,
        "enabled": sharing.enabled,
        "agencies": [
            {"name": a.name, "ori": a.ori, "kind": a.kind, "expires": a.expires.isoformat(),
             "current": a.approved_on <= today <= a.expires}
            for a in sharing.agencies
        ],
        "purposes": appliance.config.root.policy.purposes,
        "channels": REQUEST_CHANNELS,
        "approval_days": sharing.approval_days,
        "standing_max_days": sharing.standing_max_days,
        "attestation": ATTESTATION,
        "form": form or {"channels": ["export"],
                         "until": (today + timedelta(days=90)).isoformat()},
        "error": error,
        "decision": decision,
    }, status=status)


async def sharing_page(request: web.Request) -> web.Response:
    session = require_role(request, VIEW_ROLES, "view sharing requests")
    return await _render_list(request, session)


def _lines(text: str) -> tuple[str, ...]:
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def _moment(text: str, end: bool, zone: ZoneInfo) -> datetime | None:
    if not text:
        return None
    day = date.fromisoformat(text)
    return datetime.combine(day, time(23, 59, 59) if end else time(0), zone).astimezone(UTC)


def _request_from_form(form: dict[str, Any], zone: ZoneInfo) -> ShareRequest:
    recipients = tuple(
        Recipient(email=a) if "@" in a and "://" not in a else Recipient(url=a)
        for a in _lines(form["recipients"])
    )
    try:
        start = _moment(form["start"], False, zone)
        end = _moment(form["end"], True, zone)
    except ValueError as err:
        raise SharingError("dates are written YYYY-MM-DD") from err
    return ShareRequest(
        agency=form["agency"],
        ori=form["ori"] or None,
        person=form["person"],
        email=form["email"] or None,
        purpose=form["purpose"],
        case_number=form["case_number"],
        on_behalf_of=_lines(form["on_behalf_of"]),
        recipients=recipients,
        scope=ShareScope(
            plates=tuple(p.upper() for p in form["plates"].replace(",", " ").split()),
            start=start, end=end, description=form["scope"],
        ),
        reason=form["reason"],
    )


async def _posted(request: web.Request) -> dict[str, Any]:
    posted = await request.post()
    form: dict[str, Any] = {name: form_text(posted, name, 2000) for name in _FIELDS}
    form["channels"] = [c for c in posted.getall("channels", []) if isinstance(c, str)]
    form["code"] = form_text(posted, "code", 64)
    return form


async def sharing_file(request: web.Request) -> web.Response:
    session = require_role(request, FILER_ROLES, "file sharing requests")
    service = _service(request)
    form = await _posted(request)
    zone = site_zone(request.app[APPLIANCE])
    try:
        share = _request_from_form(form, zone)
        record, decision = await service.file(
            share, tuple(form["channels"]), await _user(service, session),
            attested=bool(form["attest"]),
        )
    except SharingError as err:
        return await _render_list(request, session, form=form, error=str(err), status=400)
    logger.info("Sharing request %s filed by %r (pre-check %s)", record.id, session.username,
                "passed" if decision.allowed else "refused")
    if decision.allowed:
        session.notices.append(
            f"Request {record.id} filed. It needs the approval of a supervisor or administrator "
            "other than you before anything is shared."
        )
    else:
        session.notices.append(
            f"Request {record.id} was refused by the policy gate and is kept on file as denied: "
            + "; ".join(decision.reasons)
        )
    raise web.HTTPSeeOther(f"/sharing/{record.id}")


async def _get(service: SharingService, request: web.Request) -> SharingRecord:
    record = await service.get(request.match_info["share_id"])
    if record is None:
        raise web.HTTPNotFound(text="No such sharing request.")
    return record


async def _render_record(
    request: web.Request, session: Session, record: SharingRecord, *,
    error: str | None = None, status: int = 200,
) -> web.Response:
    appliance = request.app[APPLIANCE]
    view = _record_view(record, session, site_zone(appliance), appliance.clock.now())
    return render_page(request, "sharing_request.html", {
        "title": f"Sharing request {record.id}", "r": view, "error": error,
    }, status=status)


async def sharing_request_page(request: web.Request) -> web.Response:
    session = require_role(request, VIEW_ROLES, "view sharing requests")
    service = _service(request)
    record = await _get(service, request)
    # Reading a request on file is an access to it: audited like any record view.
    await service.store.record_event("share.request_viewed", session.username, {
        "request_id": record.id, "organization": session.organization,
    })
    return await _render_record(request, session, record)


async def sharing_decide(request: web.Request) -> web.Response:
    session = require_role(request, APPROVER_ROLES, "approve or deny sharing requests")
    service = _service(request)
    record = await _get(service, request)
    form = await _posted(request)
    decision = form_text(await request.post(), "decision", 20)
    try:
        decided = await service.decide(
            record.id, decision, await _user(service, session), form["code"], form["note"]
        )
    except SharingError as err:
        return await _render_record(request, session, record, error=str(err), status=400)
    logger.info("Sharing request %s %s by %r", record.id, decided.status, session.username)
    session.notices.append(f"Request {record.id} is now {decided.status}.")
    raise web.HTTPSeeOther(f"/sharing/{record.id}")


async def sharing_revoke(request: web.Request) -> web.Response:
    session = require_role(request, APPROVER_ROLES, "revoke sharing approvals")
    service = _service(request)
    record = await _get(service, request)
    form = await _posted(request)
    try:
        await service.revoke(record.id, await _user(service, session), form["code"], form["note"])
    except SharingError as err:
        return await _render_record(request, session, record, error=str(err), status=400)
    session.notices.append(f"{record.kind.capitalize()} {record.id} revoked.")
    raise web.HTTPSeeOther(f"/sharing/{record.id}")


async def sharing_standing(request: web.Request) -> web.Response:
    session = require_role(request, APPROVER_ROLES, "make standing approvals")
    service = _service(request)
    form = await _posted(request)
    zone = site_zone(request.app[APPLIANCE])
    try:
        share = _request_from_form(form, zone)
        try:
            until = date.fromisoformat(form["until"])
        except ValueError as err:
            raise SharingError("the last day is written YYYY-MM-DD") from err
        record = await service.create_standing(
            share, tuple(form["channels"]), until, await _user(service, session), form["code"],
            form["note"], attested=bool(form["attest"]),
        )
    except SharingError as err:
        return await _render_list(request, session, form=form, error=str(err), status=400)
    session.notices.append(f"Standing approval {record.id} made, until {until.isoformat()}.")
    raise web.HTTPSeeOther(f"/sharing/{record.id}")
