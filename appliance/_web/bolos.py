"""The BOLO page: locally entered plates, their approval by a second person, and retro-hits.

The rules (who may enter, approve, withdraw or search; no self-approval; expiry limits) are the
:class:`~appliance._hotlist.bolo_service.BoloService`'s. Handlers check the role first, so a
refused action answers 403 before anything is read, and show the service's own messages.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import ValidationError

from .._hotlist.alerts import ALERT_ROLES, COVERT_ROLES
from .._hotlist.bolo import (
    APPROVER_ROLES,
    BOLO_CATEGORIES,
    ENTRY_ROLES,
    MAX_DAYS,
    Bolo,
    BoloError,
    BoloInput,
)
from .._hotlist.bolo_service import RETRO_MAX_DAYS, BoloService
from .._storage import Store, User
from .auth import require_role
from .keys import APPLIANCE
from .present import form_text, local_time, render_page, site_zone
from .sessions import Session

logger = logging.getLogger(__name__)

_VIEW_ROLES = frozenset({"administrator", "supervisor", "operator", "analyst", "auditor"})
_DEFAULT_DAYS = 30
_FIELDS = ("plate", "state", "category", "case_number", "synopsis", "expires", "covert")
_LABELS = {
    "plate": "Plate", "state": "State", "category": "Category", "case_number": "Case number",
    "synopsis": "Synopsis", "expires": "Expires", "covert": "Covert",
}


def _service(request: web.Request) -> tuple[BoloService, Store]:
    appliance = request.app[APPLIANCE]
    if appliance.bolos is None or appliance.store is None:
        raise web.HTTPServiceUnavailable(text="BOLOs are not available; the store is not open.")
    return appliance.bolos, appliance.store


async def _user(store: Store, session: Session) -> User:
    user = await store.get_user(session.username)
    if user is None:
        raise web.HTTPForbidden(text="This account no longer exists.")
    return user


def _visible(bolo: Bolo, session: Session) -> bool:
    # A covert entry is shown only to the roles that see covert alerts, and to its author.
    return not bolo.data.covert or session.role in COVERT_ROLES \
        or bolo.created_by == session.username


def _bolo_view(bolo: Bolo, session: Session, zone: ZoneInfo, now: Any) -> dict[str, Any]:
    active = bolo.is_active(now)
    status = "expired" if bolo.status == "active" and not active else bolo.status
    data = bolo.data
    return {
        "id": bolo.id,
        "status": status,
        "plate": data.plate,
        "state": data.state or "—",
        "category": data.category,
        "case_number": data.case_number,
        "synopsis": data.synopsis,
        "covert": data.covert,
        "created_by": bolo.created_by,
        "created_at": local_time(bolo.created_at, zone),
        "approved_by": bolo.approved_by or "—",
        "approved_at": local_time(bolo.approved_at, zone) if bolo.approved_at else "",
        "expires": data.expires.isoformat(),
        "can_decide": bolo.status == "pending" and session.role in APPROVER_ROLES,
        "can_withdraw": bolo.status in ("pending", "active") and session.role in ENTRY_ROLES,
        "can_search": active and session.role in ALERT_ROLES,
    }


async def _render(
    request: web.Request,
    session: Session,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    action_error: str | None = None,
    status: int = 200,
) -> web.Response:
    appliance = request.app[APPLIANCE]
    _, store = _service(request)
    zone = site_zone(appliance)
    now = appliance.clock.now()
    bolos = [b for b in await store.bolos.all() if _visible(b, session)]
    today = now.astimezone(zone).date()
    default_form = {"expires": (today + timedelta(days=_DEFAULT_DAYS)).isoformat()}
    return render_page(request, "bolos.html", {
        "title": "BOLOs",
        "bolos": [_bolo_view(b, session, zone, now) for b in bolos],
        "can_enter": session.role in ENTRY_ROLES,
        "categories": BOLO_CATEGORIES,
        "max_days": MAX_DAYS,
        "retro_max_days": RETRO_MAX_DAYS,
        "form": form or default_form,
        "errors": errors or {},
        "action_error": action_error,
    }, status=status)


async def bolos_page(request: web.Request) -> web.Response:
    session = require_role(request, _VIEW_ROLES, "view BOLOs")
    return await _render(request, session)


def _field_errors(err: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for item in err.errors():
        name = str(item["loc"][0]) if item["loc"] else "form"
        message = str(item["msg"]).removeprefix("Value error, ")
        errors.setdefault(name, message)
    return errors


async def bolo_create(request: web.Request) -> web.Response:
    session = require_role(request, ENTRY_ROLES, "enter BOLOs")
    service, store = _service(request)
    posted = await request.post()
    form = {name: form_text(posted, name) for name in _FIELDS}
    try:
        data = BoloInput.model_validate({
            "plate": form["plate"],
            "state": form["state"],
            "category": form["category"],
            "case_number": form["case_number"],
            "synopsis": form["synopsis"],
            "expires": form["expires"],
            "covert": bool(form["covert"]),
        })
        bolo_id = await service.create(data, await _user(store, session))
    except ValidationError as err:
        return await _render(request, session, form=form, errors=_field_errors(err), status=400)
    except BoloError as err:
        return await _render(request, session, form=form, errors={"form": str(err)}, status=400)
    logger.info("BOLO %s entered by %r; pending approval", bolo_id, session.username)
    session.notices.append(
        f"BOLO for case {data.case_number} entered. It stays inactive until a supervisor or "
        "administrator other than you approves it."
    )
    raise web.HTTPSeeOther("/bolos")


async def _get_bolo(store: Store, request: web.Request, session: Session) -> Bolo:
    bolo = await store.bolos.get(request.match_info["bolo_id"])
    if bolo is None or not _visible(bolo, session):
        raise web.HTTPNotFound(text="No such BOLO.")
    return bolo


async def bolo_decide(request: web.Request) -> web.Response:
    require_role(request, ENTRY_ROLES | APPROVER_ROLES, "decide on BOLOs")
    posted = await request.post()
    decision = form_text(posted, "decision", 20)
    if decision in ("approve", "reject"):
        session = require_role(request, APPROVER_ROLES, f"{decision} BOLOs")
    elif decision == "withdraw":
        session = require_role(request, ENTRY_ROLES, "withdraw BOLOs")
    else:
        raise web.HTTPBadRequest(text="Unknown BOLO decision.")
    service, store = _service(request)
    bolo = await _get_bolo(store, request, session)
    try:
        decided = await service.decide(bolo.id, decision, await _user(store, session))
    except BoloError as err:
        return await _render(request, session, action_error=str(err), status=400)
    logger.info("BOLO %s: %s by %r (now %s)", bolo.id, decision, session.username, decided.status)
    session.notices.append(f"BOLO for case {bolo.data.case_number} is now {decided.status}.")
    raise web.HTTPSeeOther("/bolos")


async def bolo_search(request: web.Request) -> web.Response:
    session = require_role(request, ALERT_ROLES, "search past reads")
    service, store = _service(request)
    bolo = await _get_bolo(store, request, session)
    posted = await request.post()
    purpose = form_text(posted, "purpose")
    try:
        days = int(form_text(posted, "days", 4))
    except ValueError:
        return await _render(request, session, status=400,
                             action_error=f"search 1 to {RETRO_MAX_DAYS} days back")
    try:
        alert_ids = await service.retro_search(
            bolo.id, await _user(store, session), purpose=purpose, days=days
        )
    except BoloError as err:
        return await _render(request, session, action_error=str(err), status=400)
    appliance = request.app[APPLIANCE]
    for alert_id in alert_ids:
        # Retro-hits are new alerts too: open alert pages show them as they are raised.
        alert = await store.alerts.get(alert_id, include_covert=True)
        if alert is not None:
            appliance.alert_bus.publish(alert)
    logger.info("BOLO %s: %r searched %d days of reads; %d alerts", bolo.id, session.username,
                days, len(alert_ids))
    session.notices.append(
        f"Search of the last {days} days of reads for case {bolo.data.case_number} raised "
        f"{len(alert_ids)} alert{'s' if len(alert_ids) != 1 else ''}."
    )
    raise web.HTTPSeeOther("/bolos")
