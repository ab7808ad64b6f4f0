"""The audit page (auditors and administrators): the trail, its chain status and audit samples.

The trail is shown newest first with the access-record fields of Civil Code 1798.90.52(a) /
Oakland 430.7(a): when, who, organization, kind, purpose, case number and data queried. Filters
are posted, never put in a URL, because one of them is a plate: it is compared server-side with
the decrypted data queried of each event. The chain status comes from
:func:`~appliance._storage.audit.verify_audit`.

An audit sample (Vallejo 462.7) draws inquiries with :func:`~appliance._search_audit.sample_memo`,
keeps the memo inside its ``audit.sample`` audit event (encrypted like every event detail) through
:func:`~appliance._search_audit.record_memo`.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from .._hotlist.plates import WILDCARD, normalize_plate
from .._search import plate_matches
from .._search_audit import record_memo, sample_memo
from .._storage import Store
from .._storage.audit import verify_audit
from .auth import require_role
from .keys import APPLIANCE
from .present import form_text, local_time, render_page, site_zone

logger = logging.getLogger(__name__)

AUDIT_ROLES = frozenset({"auditor", "administrator"})
#: events read from the store per page (filters then apply); rows shown at most
SCAN_LIMIT = 20_000
SHOW_LIMIT = 500
_SHA = re.compile(r"[0-9a-f]{64}")
_FILTERS = ("user", "organization", "purpose", "kind", "start", "end", "plate")


def _store(request: web.Request) -> Store:
    store = request.app[APPLIANCE].store
    if store is None:
        raise web.HTTPServiceUnavailable(text="The appliance is starting; try again shortly.")
    return store


def _moment(text: str, zone: ZoneInfo) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def _queried(detail: Mapping[str, Any]) -> str:
    query = detail.get("query")
    if isinstance(query, Mapping):
        return " ".join(f"{k}={v}" for k, v in query.items())
    target = detail.get("target")
    return f"target={target}" if target else ""


def _plates(detail: Mapping[str, Any]) -> list[str]:
    query = detail.get("query")
    if not isinstance(query, Mapping):
        return []
    return [str(query[k]) for k in ("plate", "text") if query.get(k)]


def _plate_hit(wanted: str, detail: Mapping[str, Any]) -> bool:
    for queried in _plates(detail):
        pattern = normalize_plate(queried, wildcards=True)
        if WILDCARD in pattern:
            if WILDCARD not in wanted and plate_matches(pattern, wanted):
                return True
        elif pattern == wanted:
            return True
    return False


def _row(event: Mapping[str, Any], zone: ZoneInfo) -> dict[str, Any]:
    detail = event["detail"] if isinstance(event["detail"], Mapping) else {}
    at = datetime.fromisoformat(str(event["at"]))
    return {
        "id": event["id"],
        "when": local_time(at, zone),
        "who": event["actor"],
        "organization": str(detail.get("organization") or detail.get("actor_organization")
                            or ""),
        "kind": event["kind"],
        "purpose": str(detail.get("purpose") or ""),
        "case_number": str(detail.get("case_number") or ""),
        "queried": _queried(detail),
        "why": str(detail.get("why") or ""),
    }


def _matches(event: Mapping[str, Any], f: Mapping[str, str], plate: str) -> bool:
    detail = event["detail"] if isinstance(event["detail"], Mapping) else {}
    organization = str(detail.get("organization") or detail.get("actor_organization") or "")
    if f["user"] and event["actor"] != f["user"]:
        return False
    if f["organization"] and f["organization"].lower() not in organization.lower():
        return False
    if f["purpose"] and f["purpose"].lower() != str(detail.get("purpose") or "").lower():
        return False
    return not plate or _plate_hit(plate, detail)


async def _page(
    request: web.Request, filters: Mapping[str, str], *, error: str | None = None,
    memo: dict[str, str] | None = None, status: int = 200,
) -> web.Response:
    appliance = request.app[APPLIANCE]
    store = _store(request)
    zone = site_zone(appliance)
    values = {name: filters.get(name, "") for name in _FILTERS}
    rows: list[dict[str, Any]] = []
    if error is None:
        try:
            start, end = _moment(values["start"], zone), _moment(values["end"], zone)
        except ValueError:
            error = "Times must be given as YYYY-MM-DDTHH:MM (site time)."
            start = end = None
        plate = normalize_plate(values["plate"]) if values["plate"] else ""
        if values["plate"] and not plate:
            error = "The plate filter holds no letters or digits."
        if error is None:
            events = await store.events(
                SCAN_LIMIT, kind=values["kind"] or None, start=start, end=end
            )
            for event in events:
                if _matches(event, values, plate):
                    rows.append(_row(event, zone))
                    if len(rows) >= SHOW_LIMIT:
                        break
    report = await verify_audit(store)
    samples = [
        {
            "when": local_time(datetime.fromisoformat(str(e["at"])), zone),
            "who": e["actor"],
            "sha256": str(e["detail"].get("sha256", "")),
            "inquiries": e["detail"].get("inquiries", ""),
            "sampled": len(e["detail"].get("sampled_event_ids", []) or []),
            "non_compliant": e["detail"].get("non_compliant", ""),
        }
        for e in await store.events(100, kind="audit.sample")
        if isinstance(e["detail"], Mapping)
    ]
    kinds = await store.query(
        lambda c: [r[0] for r in c.execute("SELECT DISTINCT kind FROM events ORDER BY kind")]
    )
    return render_page(request, "audit.html", {
        "title": "Audit",
        "report": report,
        "rows": rows,
        "show_limit": SHOW_LIMIT,
        "values": values,
        "kinds": kinds,
        "purposes": appliance.config.root.policy.purposes,
        "timezone": zone.key,
        "error": error,
        "samples": samples,
        "memo": memo,
    }, status=status)


async def audit_page(request: web.Request) -> web.Response:
    require_role(request, AUDIT_ROLES, "read the audit trail")
    return await _page(request, {})


async def audit_filter(request: web.Request) -> web.Response:
    require_role(request, AUDIT_ROLES, "read the audit trail")
    form = await request.post()
    filters = {name: form_text(form, name, 200) for name in _FILTERS}
    return await _page(request, filters)


def _bounded_int(text: str, low: int, high: int) -> int | None:
    try:
        value = int(text)
    except ValueError:
        return None
    return value if low <= value <= high else None


async def audit_sample(request: web.Request) -> web.Response:
    session = require_role(request, AUDIT_ROLES, "draw an audit sample")
    appliance = request.app[APPLIANCE]
    store = _store(request)
    form = await request.post()
    months = _bounded_int(form_text(form, "months", 4), 1, 60)
    count = _bounded_int(form_text(form, "count", 6), 1, 1000)
    if months is None or count is None:
        return await _page(request, {}, status=400,
                           error="Months must be 1 to 60 and the sample size 1 to 1000.")
    # Events carry the appliance clock's time, so the sample window is taken from it too.
    memo = await sample_memo(
        store, appliance.config.root.policy, months=months, count=count,
        now=appliance.clock.now(),
        auditor=f"{session.username} ({session.organization})",
        site=appliance.config.root.site.name,
    )
    # The memo names users, purposes and the data they queried: it is kept inside its audit
    # event, encrypted like every event detail, never as a file in clear.
    await record_memo(store, memo, session.username, None, keep_text=True)
    logger.info("Audit sample drawn by %r: %d of %d inquiries", session.username,
                len(memo.sampled), memo.total)
    return await _page(request, {}, memo={"text": memo.text, "sha256": memo.sha256})


async def memo_page(request: web.Request) -> web.Response:
    require_role(request, AUDIT_ROLES, "read audit memos")
    sha = request.match_info["sha256"]
    if not _SHA.fullmatch(sha):
        raise web.HTTPNotFound(text="No such memo.")
    events = await _store(request).events(limit=-1, kind="audit.sample")
    texts = [e["detail"].get("memo_text") for e in events if e["detail"].get("sha256") == sha]
    text = next((t for t in texts if isinstance(t, str)), None)
    if text is None:
        raise web.HTTPNotFound(text="No such memo.")
    intact = hashlib.sha256(text.encode()).hexdigest() == sha
    return render_page(request, "memo.html", {
        "title": "Audit memo", "text": text, "sha256": sha, "intact": intact,
    })
