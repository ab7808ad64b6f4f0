"""API keys on the API routes: ``Authorization: Bearer alprbox_<id>_<secret>``.

A key is accepted under ``/api/`` only (the session middleware sends nothing else here) and acts
as its user, with the user's current role, organization and training (C-10). Every call is in
the audit trail: a detection-browsing call writes the same ``search`` access record as the
console (Civil Code 1798.90.52: when, the data queried, username and organization, purpose),
with the key's id and name; refused calls are recorded too. As in the console, a call that
browses detections needs a ``purpose`` from the site's list, a ``case_number`` and a ``reason``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from .._config import PolicySettings
from .._search import (
    SearchRefused,
    check_case_number,
    check_purpose,
    reason_problem,
    record_refusal,
    search_reads,
)
from .._storage import Store, User
from .._storage.api_keys import ApiKey
from .keys import APPLIANCE
from .present import read_view, site_zone
from .search import SEARCH_ROLES

logger = logging.getLogger(__name__)

API_MAX_LIMIT = 500
DEFAULT_LIMIT = 50
_QUERY_FIELDS = ("purpose", "case_number", "reason", "plate", "camera", "start", "end")


@dataclass(frozen=True)
class ApiPrincipal:
    key: ApiKey
    user: User

    def via(self) -> dict[str, str]:
        """What the access record adds about the channel."""
        return {"via": "api", "api_key": self.key.key_id, "api_key_name": self.key.name}


_PRINCIPAL = web.RequestKey("alprbox_api_key", ApiPrincipal)


def _store(request: web.Request) -> Store:
    store = request.app[APPLIANCE].store
    if store is None:
        raise web.HTTPServiceUnavailable(text="The appliance is starting; try again shortly.")
    return store


def principal(request: web.Request) -> ApiPrincipal | None:
    """The key this request was authenticated with, if any."""
    return request.get(_PRINCIPAL)


def _unauthorized(text: str) -> web.HTTPUnauthorized:
    return web.HTTPUnauthorized(text=text, headers={"WWW-Authenticate": 'Bearer realm="alprbox"'})


async def api_key_principal(request: web.Request) -> ApiPrincipal:
    """Authenticate the request's bearer key; 401/403 (audited) when it may not be used."""
    appliance = request.app[APPLIANCE]
    store = _store(request)
    now = appliance.clock.now()
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    remote = request.remote or ""
    key = await store.identity.api_keys.check(token.strip(), now) if scheme == "Bearer" else None
    if key is None:
        # The token itself is never recorded; only its public id when it has the key's shape.
        key_id = token.strip()[8:20] if token.strip().startswith("alprbox_") else ""
        await store.record_event("api.refused", "(api key)", {
            "remote": remote, "path": request.path, "key_id": key_id,
            "why": "missing, unknown, revoked or expired API key",
        })
        raise _unauthorized("A valid API key is required: Authorization: Bearer <key>.")
    user = await store.get_user(key.username)
    why = None
    if user is None or await store.identity.is_disabled(key.username):
        why = "the key's user is disabled"
    else:
        max_days = appliance.config.root.console.training_max_days
        today = now.astimezone(UTC).date()
        if await store.identity.trained_until(key.username, today, max_days) is None:
            why = "the key's user has no current ALPR training"
    if why is not None or user is None:
        await store.record_event("api.refused", key.username, {
            "remote": remote, "path": request.path, "key_id": key.key_id,
            "organization": user.organization if user else "", "why": why,
        })
        logger.warning("Refused API call to %s with key %s: %s", request.path, key.key_id, why)
        if user is None or why == "the key's user is disabled":
            raise _unauthorized(f"This API key may not be used: {why}.")
        raise web.HTTPForbidden(text=f"This API key may not be used: {why}.")
    found = ApiPrincipal(key, user)
    request[_PRINCIPAL] = found
    return found


def _time(text: str) -> datetime | str | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return text  # refused (and audited) by the search rules


def _limit(request: web.Request) -> int:
    try:
        limit = int(request.query.get("limit", DEFAULT_LIMIT))
    except ValueError:
        raise web.HTTPBadRequest(text="limit must be a whole number") from None
    if not 1 <= limit <= API_MAX_LIMIT:
        raise web.HTTPBadRequest(text=f"limit must be between 1 and {API_MAX_LIMIT}")
    return limit


async def api_reads(request: web.Request, caller: ApiPrincipal) -> web.Response:
    """``GET /api/reads`` with a key: a search (``plate``, or ``camera`` with ``start`` and
    ``end``) or the most recent reads (neither), each under a purpose, case number and reason."""
    appliance = request.app[APPLIANCE]
    store = _store(request)
    policy = appliance.config.root.policy
    now = appliance.clock.now()
    zone = site_zone(appliance)
    user = caller.user
    limit = _limit(request)
    values = {name: request.query.get(name, "")[:500] for name in _QUERY_FIELDS}
    raw: dict[str, Any] = {
        "purpose": values["purpose"], "case_number": values["case_number"],
        "reason": values["reason"], "plate": values["plate"] or None,
        "camera": values["camera"] or None,
        "start": _time(values["start"]), "end": _time(values["end"]),
    }
    if user.role not in SEARCH_ROLES:
        why = f"the {user.role} role may not browse detections"
        await record_refusal(store, user, "search", raw, why, policy, now, caller.via())
        raise web.HTTPForbidden(text=f"Refused: {why}.")
    try:
        if raw["plate"] is not None or raw["camera"] is not None:
            result = await search_reads(store, user, raw, now, policy=policy, via=caller.via())
            reads = list(result.reads)[:limit]
            body: dict[str, Any] = {
                "purpose": result.request.purpose, "case_number": result.request.case_number,
                "truncated": result.truncated or len(result.reads) > limit,
            }
        else:
            body = await _recent(store, user, raw, policy, now, caller, limit)
            reads = body.pop("_reads")
    except SearchRefused as err:
        return web.json_response({"error": f"refused: {err}"}, status=400)
    body["reads"] = [read_view(r, zone) for r in reads]
    return web.json_response(body)


async def _recent(
    store: Store, user: User, raw: dict[str, Any], policy: PolicySettings, now: datetime,
    caller: ApiPrincipal, limit: int,
) -> dict[str, Any]:
    """The newest reads: the same rules and the same ``search`` access record as a search."""
    try:
        try:
            purpose = check_purpose(raw["purpose"], policy)
            case_number = check_case_number(raw["case_number"], policy)
        except ValueError as err:
            raise SearchRefused(str(err)) from None
        if problem := reason_problem(raw["reason"], policy):
            raise SearchRefused(problem)
    except SearchRefused as err:
        await record_refusal(store, user, "search", {**raw, "limit": limit}, str(err), policy,
                             now, caller.via())
        raise
    # No further back than a console search may reach.
    earliest = now - timedelta(days=policy.search_max_days)
    reads = [r for r in await store.recent_reads(limit) if r.first_seen >= earliest]
    reason = " ".join(str(raw["reason"]).split())
    await store.record_event("search", user.username, {
        "username": user.username,
        "organization": user.organization.strip() or "(none on the account)",
        "requested_at": now.astimezone(UTC).isoformat(timespec="seconds"),
        "query": {"mode": "recent", "limit": str(limit),
                  "start": earliest.astimezone(UTC).isoformat(timespec="seconds")},
        "purpose": purpose, "case_number": case_number, "reason": reason,
        "results": len(reads), "truncated": False, "policy_version": policy.version(),
        **caller.via(),
    })
    return {"purpose": purpose, "case_number": case_number, "truncated": False, "_reads": reads}
