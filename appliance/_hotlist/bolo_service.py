"""BOLO actions with their rules: who may enter, approve, edit or withdraw, and retro-hits.

The console and API call these; each action is audited, and each change of what is active
rebuilds the BOLO list at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from .._storage import Store, User
from ..base import Clock
from .alerts import ALERT_ROLES
from .bolo import APPROVER_ROLES, ENTRY_ROLES, MAX_DAYS, Bolo, BoloError, BoloInput
from .manager import BOLO_LIST, HotlistManager, MatchedHit
from .matcher import HotlistIndex, ListedEntry

logger = logging.getLogger(__name__)

#: Retro-hit searches look back at most this far (and never past what retention keeps).
RETRO_MAX_DAYS = 30


@dataclass
class BoloService:
    store: Store
    hotlists: HotlistManager
    clock: Clock

    def _check_expiry(self, data: BoloInput) -> None:
        today = self.clock.now().date()
        if data.expires < today:
            raise BoloError("the expiry date is in the past")
        if data.expires > today + timedelta(days=MAX_DAYS):
            raise BoloError(f"a BOLO may run at most {MAX_DAYS} days before it is entered again")

    async def create(self, data: BoloInput, user: User) -> str:
        if user.role not in ENTRY_ROLES:
            raise BoloError(f"the {user.role} role cannot enter BOLOs")
        self._check_expiry(data)
        bolo_id = await self.store.bolos.create(data, user.username, self.clock.now())
        await self.store.record_event(
            "bolo.created",
            user.username,
            {
                "bolo": bolo_id,
                "case_number": data.case_number,
                "category": data.category,
                "organization": user.organization,
            },
        )
        return bolo_id

    async def edit(self, bolo_id: str, data: BoloInput, user: User) -> None:
        if user.role not in ENTRY_ROLES:
            raise BoloError(f"the {user.role} role cannot edit BOLOs")
        self._check_expiry(data)
        await self.store.bolos.edit(bolo_id, data, user.username, self.clock.now())
        await self.store.record_event(
            "bolo.edited", user.username, {"bolo": bolo_id, "status": "pending"}
        )
        await self.hotlists.reload_bolos()  # an edited BOLO is inactive until approved again

    async def decide(self, bolo_id: str, decision: str, user: User) -> Bolo:
        if decision in ("approve", "reject") and user.role not in APPROVER_ROLES:
            raise BoloError("only a supervisor or administrator may approve or reject a BOLO")
        if decision == "withdraw" and user.role not in ENTRY_ROLES:
            raise BoloError(f"the {user.role} role cannot withdraw BOLOs")
        bolo = await self.store.bolos.decide(bolo_id, user.username, decision, self.clock.now())
        await self.store.record_event(
            f"bolo.{decision}", user.username, {"bolo": bolo_id, "status": bolo.status}
        )
        await self.hotlists.reload_bolos()
        return bolo

    async def retro_search(self, bolo_id: str, user: User, *, purpose: str, days: int) -> list[str]:
        """Match an active BOLO against past reads; each hit becomes an alert. Audited.

        Searching history is an inquiry like any other: it needs a stated purpose, and the
        window is bounded.
        """
        if user.role not in ALERT_ROLES:
            raise BoloError(f"the {user.role} role cannot search past reads")
        if len(purpose.strip()) < 10:
            raise BoloError("a retro-hit search needs a purpose (at least a short sentence)")
        if not 1 <= days <= RETRO_MAX_DAYS:
            raise BoloError(f"search 1 to {RETRO_MAX_DAYS} days back")
        bolo = await self.store.bolos.get(bolo_id)
        now = self.clock.now()
        if bolo is None or not bolo.is_active(now):
            raise BoloError("only an approved, unexpired BOLO can be searched for")
        index = HotlistIndex.build([ListedEntry(BOLO_LIST, bolo.entry(), bolo.id)])
        reads = await self.store.reads_between(now - timedelta(days=days), now)
        alerts: list[str] = []
        for read in reads:
            for hit in index.match(read.text, read.state):
                payload = {**MatchedHit(hit, stale=False).payload(), "retro": True}
                alerts.append(
                    await self.store.alerts.add(
                        read.id, read.first_seen, BOLO_LIST, bolo.data.covert, payload
                    )
                )
        await self.store.record_event(
            "bolo.retro_search",
            user.username,
            {
                "bolo": bolo_id,
                "purpose": purpose,
                "case_number": bolo.data.case_number,
                "days": days,
                "reads_searched": len(reads),
                "hits": len(alerts),
                "organization": user.organization,
            },
        )
        return alerts
