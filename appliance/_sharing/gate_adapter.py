"""The outbox's question, answered by the real policy gate and the sharing requests on file.

:meth:`PolicyGate.authorize_delivery` decides (approval exists, approved, unexpired, covers the
channel, and the stored request passes the registry, denylist, purpose and audit-chain checks
again, audited as ``share.decision``); the approved request on file then says who receives the
data, for what purpose and case, and what it covers. What a channel may carry is fixed here:
partner agencies never receive bulk reads, so no approval ever streams every read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..base import Recipient
from .authority import Authorization, DeliveryRefused, Scope

if TYPE_CHECKING:
    from .._policy.gate import PolicyGate

#: the fields of a read each channel may carry
CHANNEL_FIELDS: dict[str, frozenset[str]] = {
    "webhook": frozenset({"read_id", "plate", "state", "camera", "seen_at", "confidence"}),
    "export": frozenset({"read_id", "plate", "state", "camera", "seen_at", "confidence",
                         "crop", "vehicle"}),
    "evidence": frozenset({"read_id", "plate", "state", "camera", "seen_at", "confidence",
                           "location", "crop", "vehicle"}),
    # a partner query answers hit/no-hit for the partner's own plates: no read fields
    "partner_query": frozenset(),
}
#: standing approvals may stream hot-list hits on these channels; never every read
STREAMING_CHANNELS = frozenset({"webhook", "export"})


class GateAuthority:
    """:class:`~.authority.DeliveryAuthority` over :class:`PolicyGate`."""

    def __init__(self, gate: PolicyGate) -> None:
        self.gate = gate

    async def authorize_delivery(
        self, approval_id: str, *, exporter: str, channel: str, actor: str
    ) -> Authorization:
        from .._policy.gate import share_request_from_dict

        decision = await self.gate.authorize_delivery(
            approval_id, channel, f"{actor} (exporter {exporter})"  # type: ignore[arg-type]
        )
        if not decision.allowed:
            raise DeliveryRefused("; ".join(decision.reasons), tuple(decision.matched))
        record = await self.gate.records.get(approval_id)
        if record is None:  # the gate just found it; a race with nothing to share
            raise DeliveryRefused(f"approval {approval_id} vanished")
        request = share_request_from_dict(record.payload["request"])
        first: Any = request.recipients[0] if request.recipients else None
        recipient = Recipient(
            agency=(first.name if first is not None and first.name else request.agency),
            ori=(first.ori if first is not None and first.ori else request.ori) or "",
            organization=request.agency,
            person=request.person,
        )
        scope = request.scope
        return Authorization(
            approval_id=approval_id,
            channel=channel,
            recipient=recipient,
            purpose=request.purpose,
            case_number=request.case_number,
            requested_by=f"{request.person} ({request.agency})",
            scope=Scope(
                fields=CHANNEL_FIELDS.get(channel, frozenset()),
                streams=(frozenset({"hits"})
                         if record.kind == "standing" and channel in STREAMING_CHANNELS
                         else frozenset()),
                plates=frozenset(scope.plates) if scope.plates else None,
                start=scope.start,
                end=scope.end,
            ),
            expires_at=record.expires_at,
        )
