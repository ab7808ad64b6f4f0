"""Audited detection browsing: searching stored reads, and viewing one, under the site policy.

Every search names a purpose from the site's closed list (Civil Code 1798.90.52(b)), a case or
incident number and a reason that is not vague (Vallejo 426.5(e)), and reaches back at most
``policy.search_max_days``. Each search, record view and refusal writes exactly one audit event
holding the access record of Civil Code 1798.90.52(a) / Oakland 430.7(a): the date and time (the
event's own ``at``), the plate or other data queried, the username and organization, and the
purpose, with the case number, reason, result count and the policy version. Immigration
enforcement is never a purpose and a request mentioning it is refused (Gov. Code 7284.6).

Plates are logged at debug level only; the audit detail that holds them is encrypted.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ._config import (
    IMMIGRATION_STATUTE,
    IMMIGRATION_TERMS,
    IMMIGRATION_TEXT_TERMS,
    PolicySettings,
    immigration_term,
)
from ._hotlist.plates import WILDCARD, normalize_plate
from ._storage import Store, User
from .models import PlateRead

logger = logging.getLogger(__name__)

#: the most reads one search returns; a search is for one case, not a bulk export
MAX_RESULTS = 1000
NOT_GIVEN = "(not given)"


class SearchRefused(ValueError):
    """A search or record view the policy does not allow; the message says why."""


def _policy(info: ValidationInfo) -> PolicySettings:
    context = info.context if isinstance(info.context, Mapping) else {}
    policy = context.get("policy")
    return policy if isinstance(policy, PolicySettings) else PolicySettings()


def check_purpose(value: str, policy: PolicySettings) -> str:
    """The purpose as the policy spells it; ValueError (naming the statute) when not allowed."""
    text = " ".join(str(value).split())
    term = immigration_term(text, IMMIGRATION_TERMS)
    if term is not None:
        raise ValueError(
            f"immigration enforcement ({term!r}) is not an authorized purpose: California law "
            f"forbids using ALPR data for it ({IMMIGRATION_STATUTE})"
        )
    for name in policy.purposes:
        if name.lower() == text.lower():
            return name
    raise ValueError(f"purpose must be one of: {', '.join(policy.purposes)}")


def check_case_number(value: str, policy: PolicySettings) -> str:
    case = str(value).strip().upper()
    if not re.fullmatch(policy.case_number_pattern, case):
        raise ValueError(
            "a case or incident number is required and must match the site's pattern "
            "(e.g. 26-001234); a word is not a case number"
        )
    return case


def reason_problem(value: str, policy: PolicySettings) -> str | None:
    """Why a reason does not document an inquiry, or None when it does."""
    text = " ".join(str(value).split())
    if text.lower().strip(" .!") in policy.vague_reasons:
        return f"the reason {text!r} is too vague; say what the inquiry is for"
    if len(text) < policy.min_reason_length:
        return (
            f"the reason is too short ({len(text)} characters, at least "
            f"{policy.min_reason_length}); say what the inquiry is for"
        )
    term = immigration_term(text, IMMIGRATION_TEXT_TERMS)
    if term is not None:
        return (
            f"the reason mentions immigration enforcement ({term!r}); ALPR data may not be "
            f"used for it ({IMMIGRATION_STATUTE})"
        )
    return None


class SearchRequest(BaseModel):
    """One detection-browsing inquiry. Validate with ``context={"policy": policy}`` (else the
    default policy applies): purpose, case number and reason are checked against it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    purpose: str
    case_number: str
    reason: str = Field(max_length=500)
    #: an exact plate, or a partial one with ``*`` for each unknown character
    plate: str | None = Field(default=None, max_length=16)
    camera: str | None = Field(default=None, max_length=100)
    start: datetime | None = None
    end: datetime | None = None
    #: the agency the search is run for, when not the user's own (partner requests)
    on_behalf_of: str | None = Field(default=None, max_length=200)

    @field_validator("purpose")
    @classmethod
    def _purpose(cls, value: str, info: ValidationInfo) -> str:
        return check_purpose(value, _policy(info))

    @field_validator("case_number", mode="before")
    @classmethod
    def _case(cls, value: Any, info: ValidationInfo) -> str:
        return check_case_number(str(value), _policy(info))

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str, info: ValidationInfo) -> str:
        problem = reason_problem(value, _policy(info))
        if problem:
            raise ValueError(problem)
        return " ".join(value.split())

    @field_validator("plate")
    @classmethod
    def _plate(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if any(not (ch.isalnum() or ch in " -.*") for ch in value):
            raise ValueError("a plate holds only letters, digits, spaces, dashes and *")
        plate = normalize_plate(value, wildcards=True)
        # As for BOLO entries: three known characters at least, or a partial search is a sweep.
        if not re.fullmatch(r"[A-Z0-9*]{2,8}", plate) or len(plate) - plate.count("*") < 3:
            raise ValueError(
                "a plate is 2–8 letters and digits; * stands for one unknown character, "
                "and at least three must be known"
            )
        return plate

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("a time needs a time zone (e.g. 2026-01-31T14:00:00-08:00)")
        return value

    @field_validator("on_behalf_of")
    @classmethod
    def _agency(cls, value: str | None) -> str | None:
        if value and immigration_term(value, IMMIGRATION_TEXT_TERMS):
            raise ValueError(
                f"ALPR data may not be searched for an immigration agency ({IMMIGRATION_STATUTE})"
            )
        return value or None

    @model_validator(mode="after")
    def _shape(self) -> SearchRequest:
        if self.plate is None and self.camera is None:
            raise ValueError("search by a plate (exact or with *), or by a camera and a window")
        if self.plate is None and (self.start is None or self.end is None):
            raise ValueError("a camera search needs a start and an end time")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("the window's end must be after its start")
        return self

    @property
    def mode(self) -> Literal["exact", "partial", "camera"]:
        if self.plate is None:
            return "camera"
        return "partial" if WILDCARD in self.plate else "exact"

    def query(self) -> dict[str, str]:
        """The data queried, as the access record holds it."""
        out: dict[str, str] = {"mode": self.mode}
        if self.plate is not None:
            out["plate"] = self.plate
        if self.camera is not None:
            out["camera"] = self.camera
        if self.start is not None:
            out["start"] = _iso(self.start)
        if self.end is not None:
            out["end"] = _iso(self.end)
        return out


@dataclass(frozen=True)
class SearchResult:
    request: SearchRequest
    reads: tuple[PlateRead, ...]
    start: datetime
    end: datetime
    truncated: bool


def plate_matches(pattern: str, text: str) -> bool:
    """Whether a read's text matches a (normalized) plate, ``*`` standing for one character.

    The read goes through :func:`normalize_plate` as in the hot-list matcher, so separators and
    look-alike letters compare alike."""
    plate = normalize_plate(text)
    return len(plate) == len(pattern) and all(
        p in (WILDCARD, c) for p, c in zip(pattern, plate, strict=True)
    )


def allowed_window(
    request: SearchRequest, policy: PolicySettings, now: datetime
) -> tuple[datetime, datetime]:
    """[start, end) the request may search; SearchRefused when it reaches past the policy."""
    earliest = now - timedelta(days=policy.search_max_days)
    start = request.start or earliest
    end = request.end or now
    if start < earliest:
        raise SearchRefused(
            f"the window reaches back {(now - start).days} days; the policy allows "
            f"{policy.search_max_days} (from {_iso(earliest)})"
        )
    return start, min(end, now + timedelta(minutes=5))


async def search_reads(
    store: Store,
    user: User,
    request: SearchRequest | Mapping[str, Any],
    now: datetime | None = None,
    *,
    policy: PolicySettings | None = None,
    via: Mapping[str, str] | None = None,
) -> SearchResult:
    """Run one audited search. A refused request raises :class:`SearchRefused` after its own
    ``search.refused`` event is written; an allowed one writes one ``search`` event.

    :param via: how the inquiry came in, added to its access record (e.g. the API key used)."""
    policy = policy or PolicySettings()
    now = now or datetime.now(UTC)
    raw: Mapping[str, Any] = request.model_dump() if isinstance(request, SearchRequest) else request
    try:
        if not user.organization.strip():
            raise SearchRefused(
                f"account {user.username!r} has no organization; the access record needs one "
                "(Civil Code 1798.90.52); an administrator must set it"
            )
        try:
            checked = SearchRequest.model_validate(dict(raw), context={"policy": policy})
        except ValidationError as err:
            raise SearchRefused(_explain(err)) from None
        start, end = allowed_window(checked, policy, now)
    except SearchRefused as err:
        await _refused(store, user, "search", raw, str(err), policy, now, via)
        raise

    if checked.mode == "exact":
        assert checked.plate is not None
        found = [
            r
            for r in await store.find_plate(checked.plate, limit=MAX_RESULTS * 4)
            if start <= r.first_seen < end
        ]
    else:
        # Only the allowed window is decrypted; each read is matched after normalization.
        found = [
            r
            for r in await store.reads_between(start, end)
            if checked.plate is None or plate_matches(checked.plate, r.text)
        ]
    if checked.camera is not None:
        found = [r for r in found if r.camera == checked.camera]
    found.sort(key=lambda r: r.first_seen, reverse=True)
    truncated = len(found) > MAX_RESULTS
    reads = tuple(found[:MAX_RESULTS])
    await store.record_event(
        "search",
        user.username,
        {
            **_who(user, checked.on_behalf_of),
            "requested_at": _iso(now),
            "query": checked.query(),
            "window": {"start": _iso(start), "end": _iso(end)},
            "purpose": checked.purpose,
            "case_number": checked.case_number,
            "reason": checked.reason,
            "results": len(reads),
            "truncated": truncated,
            "policy_version": policy.version(),
            **(via or {}),
        },
    )
    logger.info("Search by %s (%s): %d result(s)", user.username, checked.mode, len(reads))
    logger.debug("Search by %s for %s", user.username, checked.query())
    return SearchResult(checked, reads, start, end, truncated)


async def record_view(
    store: Store,
    user: User,
    read_id: str,
    purpose: str,
    case_number: str,
    *,
    reason: str | None = None,
    policy: PolicySettings | None = None,
    now: datetime | None = None,
) -> PlateRead | None:
    """Open one stored read, audited as ``record.view`` (refusals as ``search.refused``)."""
    policy = policy or PolicySettings()
    now = now or datetime.now(UTC)
    raw = {"read_id": read_id, "purpose": purpose, "case_number": case_number, "reason": reason}
    try:
        if not user.organization.strip():
            raise SearchRefused(f"account {user.username!r} has no organization")
        try:
            checked_purpose = check_purpose(purpose, policy)
            checked_case = check_case_number(case_number, policy)
        except ValueError as err:
            raise SearchRefused(str(err)) from None
        if reason is not None and (problem := reason_problem(reason, policy)):
            raise SearchRefused(problem)
    except SearchRefused as err:
        await _refused(store, user, "record.view", raw, str(err), policy, now)
        raise
    read = (await store.reads_by_id([read_id])).get(read_id)
    await store.record_event(
        "record.view",
        user.username,
        {
            **_who(user, None),
            "requested_at": _iso(now),
            "query": {"read_id": read_id, **({"plate": read.text} if read else {})},
            "purpose": checked_purpose,
            "case_number": checked_case,
            "reason": reason or NOT_GIVEN,
            "results": 1 if read else 0,
            "policy_version": policy.version(),
        },
    )
    return read


async def _refused(
    store: Store,
    user: User,
    action: str,
    raw: Mapping[str, Any],
    why: str,
    policy: PolicySettings,
    now: datetime,
    via: Mapping[str, str] | None = None,
) -> None:
    query = {
        k: _iso(v) if isinstance(v, datetime) else str(v)
        for k, v in raw.items()
        if k not in ("purpose", "case_number", "reason", "on_behalf_of") and v not in (None, "")
    }
    await store.record_event(
        "search.refused",
        user.username,
        {
            **_who(user, raw.get("on_behalf_of")),
            "action": action,
            "requested_at": _iso(now),
            "query": query or {"mode": NOT_GIVEN},
            "purpose": _given(raw.get("purpose")),
            "case_number": _given(raw.get("case_number")),
            "reason": _given(raw.get("reason")),
            "results": 0,
            "why": why,
            "policy_version": policy.version(),
            **(via or {}),
        },
    )
    logger.warning("Refused %s by %s: %s", action, user.username, _no_plate(why))


#: for callers that check an inquiry themselves (the API's recent-reads listing)
record_refusal = _refused


def _who(user: User, on_behalf_of: Any) -> dict[str, str]:
    out = {
        "username": user.username,
        "organization": user.organization.strip() or "(none on the account)",
    }
    if on_behalf_of:
        out["on_behalf_of"] = str(on_behalf_of)
    return out


def _given(value: Any) -> str:
    text = "" if value is None else " ".join(str(value).split())
    return text or NOT_GIVEN


def _explain(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"])
        message = str(e["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def _no_plate(why: str) -> str:
    # Validation messages quote input back only for reasons; keep anything quoted out of logs.
    return re.sub(r"'[^']*'", "'…'", why)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")
