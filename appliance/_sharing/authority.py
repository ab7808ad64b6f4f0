"""What the outbox needs from the policy gate, and nothing more.

The gate (``appliance._policy.gate.PolicyGate``) decides; the outbox only asks it one question
before queueing and again before each delivery attempt: may data go to this exporter under this
approval, on this channel, now? The answer is an :class:`Authorization` (who receives it, for
what purpose, and which data the approval's scope allows) or :class:`DeliveryRefused`.
:class:`DeliveryAuthority` is that seam; :mod:`.gate_adapter` implements it over the real gate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from .._policy.gate import CHANNELS as GATE_CHANNELS
from ..base import Recipient

#: every field of a read the host may put in a payload; an approval's scope names a subset
READ_FIELDS = frozenset(
    {"read_id", "plate", "state", "camera", "seen_at", "confidence", "location", "crop", "vehicle"}
)
#: the channels (ways out) an approval may cover: the gate's own list
CHANNELS = frozenset(GATE_CHANNELS)


class DeliveryRefused(Exception):
    """The gate refused: no such approval, expired, revoked, denied recipient, out of scope."""

    def __init__(self, reason: str, matched: tuple[str, ...] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.matched = matched


@dataclass(frozen=True)
class Scope:
    """Which data an approval lets out: fields of a read, which reads, which streams."""

    fields: frozenset[str] = frozenset({"read_id", "plate", "state", "camera", "seen_at"})
    #: "hits" lets the host stream each hot-list hit, "reads" every read; empty: requests only
    streams: frozenset[str] = frozenset()
    #: only these reads (an evidence or case request); None: any read in the window
    read_ids: frozenset[str] | None = None
    #: only reads of these plates (as the approved request lists them); None: any plate
    plates: frozenset[str] | None = None
    start: datetime | None = None
    end: datetime | None = None

    def allows_read(self, read_id: str, seen_at: datetime, plate: str = "") -> bool:
        if self.read_ids is not None and read_id not in self.read_ids:
            return False
        if self.plates is not None and plate not in self.plates:
            return False
        if self.start is not None and seen_at < self.start:
            return False
        return self.end is None or seen_at < self.end


@dataclass(frozen=True)
class Authorization:
    """The gate's yes: an approved request or standing approval, as the outbox uses it."""

    approval_id: str
    channel: str
    recipient: Recipient
    purpose: str
    case_number: str
    #: the person and organization who asked for it (1798.90.52(a)(3) of the access record)
    requested_by: str
    scope: Scope = field(default_factory=Scope)
    expires_at: datetime | None = None


class DeliveryAuthority(Protocol):
    """The one question the outbox asks the policy gate."""

    async def authorize_delivery(
        self, approval_id: str, *, exporter: str, channel: str, actor: str
    ) -> Authorization:
        """The authorization for ``approval_id`` on ``channel`` to ``exporter``; raises
        :class:`DeliveryRefused`. Audited by the gate."""
        ...
