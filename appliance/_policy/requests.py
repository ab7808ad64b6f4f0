"""Written sharing requests, their review, and standing approvals.

The process the seed policies describe (Vallejo 426.8, Emeryville 429.7, Oakland 430.8, San
Leandro 418.7): an operator or analyst files a written request naming the agency, its ORI, the
person, the purpose, the case number, whom it is made for and what is asked for; the policy gate
pre-checks it at once (a request the gate refuses is kept on file as denied); a supervisor or
administrator (the chief's designee) other than the filer reviews it and approves or denies it
after re-entering a current TOTP code; an approval expires after ``sharing.approval_days``.
Standing approvals (a partner agency approved for a purpose and channels until a date) are made
by the same designee, with the same code. Nothing is ever deleted: decided requests stay on file.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import pyotp

from .._storage.sharing import SharingRecordError, SharingRow
from .gate import CHANNELS, Decision, PolicyGate, ShareRequest, share_request_from_dict

if TYPE_CHECKING:
    from .._storage import User

logger = logging.getLogger(__name__)

#: who may file a written request
FILER_ROLES = frozenset({"administrator", "supervisor", "operator", "analyst"})
#: the chief's designees: who may approve, deny, revoke and make standing approvals
APPROVER_ROLES = frozenset({"administrator", "supervisor"})
#: who may read the requests on file
VIEW_ROLES = frozenset({"administrator", "supervisor", "operator", "analyst", "auditor"})
_TOTP_STEP = 30
#: Wrong approval codes count toward the same lockout as wrong sign-in codes (CJIS 5.5.3; the
#: console's appliance/_web/lockout.py uses the same numbers): five, then 15 minutes locked.
MAX_CODE_FAILURES = 5
CODE_LOCKOUT = timedelta(minutes=15)


#: What the requester attests with every written request (L-13: an attestation on each request).
ATTESTATION = (
    "The requesting agency attests that the data will not be used for immigration enforcement "
    "and will not be given to any federal, out-of-state or private party (Gov. Code 7284.6; "
    "Civil Code 1798.90.55)."
)


class SharingError(Exception):
    """A sharing action is refused; the message says why, in words for the person acting."""


@dataclass(frozen=True)
class SharingRecord:
    """A request or standing approval as kept on file."""

    id: str
    kind: str
    status: str
    request: ShareRequest
    channels: tuple[str, ...]
    created_at: datetime
    created_by: str
    decided_by: str | None
    decided_at: datetime | None
    expires_at: datetime | None
    note: str
    precheck: dict[str, Any]
    #: the attestation the requester signed ("" on records made before attestations)
    attestation: str = ""

    def current(self, now: datetime) -> bool:
        """Approved and not expired."""
        return self.status == "approved" and (self.expires_at is None or self.expires_at > now)


def _record(row: SharingRow) -> SharingRecord:
    return SharingRecord(
        id=row.id,
        kind=row.kind,
        status=row.status,
        request=share_request_from_dict(row.payload["request"]),
        channels=tuple(row.payload.get("channels") or ()),
        created_at=row.created_at,
        created_by=row.created_by,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        expires_at=row.expires_at,
        note=str(row.payload.get("note", "")),
        precheck=dict(row.payload.get("precheck") or {}),
        attestation=str(row.payload.get("attestation", "")),
    )


def _attested(attested: bool) -> None:
    if not attested:
        raise SharingError(
            "the requesting agency must attest that the data will not be used for immigration "
            "enforcement or passed on (Gov. Code 7284.6); tick the attestation"
        )


def _channels(channels: tuple[str, ...]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(c.strip() for c in channels if c.strip()))
    if not chosen:
        raise SharingError("choose at least one way the data may go out (channel)")
    for channel in chosen:
        if channel not in CHANNELS:
            raise SharingError(f"unknown channel {channel!r}; choose from {', '.join(CHANNELS)}")
    if "replication" in chosen:
        raise SharingError("replication is hosting by the city, not sharing; it needs no request")
    return chosen


class SharingService:
    """Filing, reviewing and revoking sharing requests; every step audited."""

    def __init__(self, gate: PolicyGate) -> None:
        self.gate = gate
        self.store = gate.store
        self.records = gate.records
        self.clock = gate.clock

    # -- reading --------------------------------------------------------------------------

    async def get(self, record_id: str) -> SharingRecord | None:
        row = await self.records.get(record_id)
        return _record(row) if row else None

    async def all(self) -> list[SharingRecord]:
        return [_record(row) for row in await self.records.all()]

    # -- MFA re-entry ---------------------------------------------------------------------

    async def verify_code(self, user: User, code: str, action: str) -> None:
        """Accept a current TOTP code of ``user`` once (the approver re-enters MFA); audit a
        wrong one and raise :class:`SharingError`. Codes are never logged or audited."""
        now = self.clock.now()
        current = await self.store.get_user(user.username)
        if current is None:
            raise SharingError("this account no longer exists")
        if current.locked_until is not None and current.locked_until > now:
            raise SharingError(
                "too many wrong verification codes: this account is locked until "
                f"{current.locked_until.isoformat(timespec='minutes')}"
            )
        code = "".join(code.split())
        secret = await self.store.identity.mfa_secret(user.username)
        step = _matching_step(secret, code, now) if secret else None
        ok = step is not None and await self.store.identity.consume_step(user.username, step)
        if ok:
            if current.failed_logins:
                await self.store.update_login_state(
                    user.username, failed_logins=0, locked_until=None
                )
            return
        failures = current.failed_logins + 1
        lock = now + CODE_LOCKOUT if failures >= MAX_CODE_FAILURES else None
        await self.store.update_login_state(
            user.username, failed_logins=0 if lock else failures, locked_until=lock
        )
        await self.store.record_event(
            "share.mfa_failed", user.username,
            {"action": action, "organization": user.organization,
             "enrolled": secret is not None, "failures": failures},
        )
        if lock is not None:
            await self.store.record_event(
                "account.locked", user.username,
                {"until": lock.isoformat(), "known": True, "via": action},
            )
            raise SharingError(
                "too many wrong verification codes: this account is locked for "
                f"{int(CODE_LOCKOUT.total_seconds() // 60)} minutes"
            )
        raise SharingError(
            "the verification code is wrong or was already used; enter the current code "
            "from your authenticator"
        )

    # -- filing ---------------------------------------------------------------------------

    async def file(
        self, request: ShareRequest, channels: tuple[str, ...], user: User, *,
        attested: bool = False,
    ) -> tuple[SharingRecord, Decision]:
        """File a written request; the gate pre-checks it. A refused request is kept on file
        as ``denied`` (by ``policy-gate``) with the gate's reasons. ``attested``: the requester
        signed :data:`ATTESTATION`; without it nothing is filed."""
        if user.role not in FILER_ROLES:
            raise SharingError(f"the {user.role} role may not file sharing requests")
        _attested(attested)
        chosen = _channels(channels)
        request = replace(request, channel=chosen[0])  # type: ignore[arg-type]
        decision = await self.gate.check(request, user.username, via="request")
        payload = {
            "request": request.as_dict(),
            "channels": list(chosen),
            "precheck": decision.as_dict(),
            "note": "",
            "organization": user.organization,
            "attestation": ATTESTATION,
        }
        now = self.clock.now()
        if decision.allowed:
            record_id = await self.records.create("request", payload, user.username, now)
        else:
            payload["note"] = "refused by the policy gate: " + "; ".join(decision.reasons)
            record_id = await self.records.create(
                "request", payload, user.username, now, status="denied", decided_by="policy-gate"
            )
        await self.store.record_event("share.request_filed", user.username, {
            "request_id": record_id, "agency": request.agency, "ori": request.ori,
            "purpose": request.purpose, "case_number": request.case_number,
            "on_behalf_of": list(request.on_behalf_of), "channels": list(chosen),
            "precheck_allowed": decision.allowed, "matched": decision.matched, "attested": True,
            "organization": user.organization,
        })
        record = await self.get(record_id)
        assert record is not None
        return record, decision

    # -- review ---------------------------------------------------------------------------

    async def decide(
        self, record_id: str, decision: str, user: User, code: str, note: str = ""
    ) -> SharingRecord:
        """``approve`` or ``deny`` a pending request, after re-entering a current TOTP code.

        Approval re-runs the gate (the registry or the audit trail may have changed since the
        request was filed); if the gate refuses now, the request cannot be approved.
        """
        if decision not in ("approve", "deny"):
            raise SharingError(f"unknown decision {decision!r}")
        if user.role not in APPROVER_ROLES:
            raise SharingError(f"the {user.role} role may not {decision} sharing requests")
        record = await self.get(record_id)
        if record is None:
            raise SharingError("no such sharing request")
        if record.kind != "request" or record.status != "pending":
            raise SharingError(f"only a pending request can be decided; this one is "
                               f"{record.status}")
        if record.created_by == user.username:
            raise SharingError("a sharing request must be reviewed by someone other than its filer")
        await self.verify_code(user, code, f"sharing.{decision}")
        now = self.clock.now()
        expires: datetime | None = None
        gate_decision: Decision | None = None
        if decision == "approve":
            # The request is still pending here, so it is checked on its own (not as approved).
            gate_decision = await self.gate.check(
                record.request, user.username, via=f"review of {record.id}"
            )
            if not gate_decision.allowed:
                raise SharingError(
                    "the policy gate refuses this request now: " + "; ".join(gate_decision.reasons)
                )
            expires = now + timedelta(days=self.gate.config.sharing.approval_days)
        try:
            row = await self.records.decide(
                record_id, expect=("pending",),
                status="approved" if decision == "approve" else "denied",
                actor=user.username, now=now, expires_at=expires,
                update={"note": note.strip(),
                        "review": gate_decision.as_dict() if gate_decision else None},
            )
        except SharingRecordError as err:
            raise SharingError(str(err)) from err
        kind = "share.request_approved" if decision == "approve" else "share.request_denied"
        await self.store.record_event(kind, user.username, {
            "request_id": record_id, "agency": record.request.agency,
            "ori": record.request.ori, "purpose": record.request.purpose,
            "case_number": record.request.case_number,
            "expires_at": expires.isoformat() if expires else None, "note": note.strip(),
            "mfa": "totp", "organization": user.organization,
        })
        return _record(row)

    async def revoke(self, record_id: str, user: User, code: str, note: str = "") -> SharingRecord:
        """End an approved request or standing approval now (MFA re-entry as for approval)."""
        if user.role not in APPROVER_ROLES:
            raise SharingError(f"the {user.role} role may not revoke sharing approvals")
        await self.verify_code(user, code, "sharing.revoke")
        try:
            row = await self.records.decide(
                record_id, expect=("approved",), status="revoked", actor=user.username,
                now=self.clock.now(), expires_at=None, update={"revoke_note": note.strip()},
            )
        except SharingRecordError as err:
            raise SharingError(str(err)) from err
        await self.store.record_event("share.approval_revoked", user.username, {
            "request_id": record_id, "kind": row.kind, "note": note.strip(), "mfa": "totp",
            "organization": user.organization,
        })
        return _record(row)

    # -- standing approvals -------------------------------------------------------------------

    async def create_standing(
        self,
        request: ShareRequest,
        channels: tuple[str, ...],
        until: date,
        user: User,
        code: str,
        note: str = "",
        *,
        attested: bool = False,
    ) -> SharingRecord:
        """Approve a partner agency for a purpose and channels until ``until`` (inclusive).

        Made by the chief's designee after re-entering a TOTP code; the gate must allow the
        request as it stands. Exporters deliver under it through
        :meth:`PolicyGate.authorize_delivery`.
        """
        if user.role not in APPROVER_ROLES:
            raise SharingError(f"the {user.role} role may not make standing approvals")
        _attested(attested)
        chosen = _channels(channels)
        today = self.clock.now().date()
        longest = self.gate.config.sharing.standing_max_days
        if until < today:
            raise SharingError("the end date of a standing approval is in the past")
        if until > today + timedelta(days=longest):
            raise SharingError(f"a standing approval may run at most {longest} days")
        await self.verify_code(user, code, "sharing.standing")
        request = replace(request, channel=chosen[0])  # type: ignore[arg-type]
        decision = await self.gate.check(request, user.username, via="standing")
        if not decision.allowed:
            raise SharingError("the policy gate refuses this: " + "; ".join(decision.reasons))
        expires = datetime.combine(until, time(23, 59, 59), UTC)
        payload = {
            "request": request.as_dict(), "channels": list(chosen),
            "precheck": decision.as_dict(), "note": note.strip(),
            "organization": user.organization, "attestation": ATTESTATION,
        }
        record_id = await self.records.create(
            "standing", payload, user.username, self.clock.now(), status="approved",
            decided_by=user.username, expires_at=expires,
        )
        await self.store.record_event("share.standing_approved", user.username, {
            "request_id": record_id, "agency": request.agency, "ori": request.ori,
            "purpose": request.purpose, "case_number": request.case_number,
            "channels": list(chosen), "until": until.isoformat(), "mfa": "totp",
            "organization": user.organization,
        })
        record = await self.get(record_id)
        assert record is not None
        return record


def _matching_step(secret: str, code: str, moment: datetime) -> int | None:
    """The TOTP time step (now, or one either side) whose code is ``code``; the same rule the
    console's sign-in uses (appliance/_web/mfa.py)."""
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = int(moment.timestamp()) // _TOTP_STEP
    found = None
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step
    return found
