"""The alert lifecycle: an alert is not probable cause until people have verified it.

The tiers follow Alameda 462.2 (Alert → Tentative Hit → Live Query Transaction → Confirmed Hit)
and Vallejo 426.4(e)/(f): the operator first compares the captured image with the hot-list entry
(characters, state, vehicle), then validates it with a live query, then the entering agency
confirms it, and every stop is cleared with a disposition. An alert can be rejected at any step
with a reason. Each transition records who, when and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from ..base import HotlistEntry
from ..models import PlateRead


class AlertState(StrEnum):
    ALERT = "alert"
    TENTATIVE = "tentative"
    VALIDATED = "validated"
    CONFIRMED = "confirmed"
    CLOSED = "closed"
    REJECTED = "rejected"


#: What each state is called in the seed policies (Alameda 462.2), for the console.
STATE_LABELS: dict[AlertState, str] = {
    AlertState.ALERT: "Alert (not verified)",
    AlertState.TENTATIVE: "Tentative hit (visually verified)",
    AlertState.VALIDATED: "Live query transaction (validated)",
    AlertState.CONFIRMED: "Confirmed hit (entering agency confirmed)",
    AlertState.CLOSED: "Closed with disposition",
    AlertState.REJECTED: "Rejected",
}

_FORWARD: dict[AlertState, AlertState] = {
    AlertState.ALERT: AlertState.TENTATIVE,
    AlertState.TENTATIVE: AlertState.VALIDATED,
    AlertState.VALIDATED: AlertState.CONFIRMED,
    AlertState.CONFIRMED: AlertState.CLOSED,
}
FINAL_STATES = frozenset({AlertState.CLOSED, AlertState.REJECTED})

DISPOSITIONS = (
    "arrest",
    "citation",
    "vehicle recovered",
    "person located",
    "field interview",
    "no action",
)
REJECT_REASONS = (
    "misread (characters do not match)",
    "state mismatch",
    "vehicle mismatch (make, model or colour)",
    "record cleared or no longer valid",
    "vehicle not located",
    "duplicate alert",
)

#: Roles allowed to act on alerts; covert alerts only the privileged ones.
ALERT_ROLES = frozenset({"administrator", "supervisor", "operator"})
COVERT_ROLES = frozenset({"administrator", "supervisor"})


class AlertTransitionError(ValueError):
    """A transition that the lifecycle does not allow, with the reason in the message."""


def next_state(state: AlertState) -> AlertState | None:
    return _FORWARD.get(state)


def check_transition(
    current: AlertState,
    target: AlertState,
    *,
    reason: str = "",
    disposition: str = "",
    verified_characters: bool = False,
    verified_state: bool = False,
    verified_vehicle: bool = False,
) -> None:
    """Raise :class:`AlertTransitionError` unless ``current`` → ``target`` is allowed as given."""
    if current in FINAL_STATES:
        raise AlertTransitionError(f"the alert is already {current.value}")
    if target is AlertState.REJECTED:
        if reason not in REJECT_REASONS:
            raise AlertTransitionError("a rejection needs one of the listed reasons")
        return
    if _FORWARD.get(current) is not target:
        expected = _FORWARD[current].value
        raise AlertTransitionError(
            f"an alert in state {current.value} can only move to {expected} (or be rejected)"
        )
    if target is AlertState.TENTATIVE and not (
        verified_characters and verified_state and verified_vehicle
    ):
        raise AlertTransitionError(
            "visual verification means comparing the characters, the state and the vehicle "
            "with the hot-list entry: confirm all three"
        )
    if target is AlertState.CLOSED and disposition not in DISPOSITIONS:
        raise AlertTransitionError("closing an alert needs one of the listed dispositions")


@dataclass(frozen=True)
class AlertEvent:
    at: datetime
    actor: str
    from_state: AlertState
    to_state: AlertState
    detail: dict[str, Any]


@dataclass(frozen=True)
class Alert:
    """A stored hit and where it stands. ``entry`` is the hot-list record it matched."""

    id: str
    read_id: str
    created_at: datetime
    updated_at: datetime
    list_name: str
    state: AlertState
    covert: bool
    entry: HotlistEntry
    kind: str
    explanation: str
    differences: tuple[tuple[int, str, str], ...]
    state_matched: bool | None
    stale: bool
    read: PlateRead | None = None
    events: tuple[AlertEvent, ...] = field(default=())

    @property
    def label(self) -> str:
        return STATE_LABELS[self.state]
