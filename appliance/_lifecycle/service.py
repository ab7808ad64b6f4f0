"""The appliance's lifecycle task: close finished segments, expire holds, purge what is due."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import TYPE_CHECKING

from .holds import Holds
from .retention import PurgeProof, Purger
from .segments import finish_closing
from .settings import RetentionSettings

if TYPE_CHECKING:
    from .._metrics import Metrics
    from .._storage import Store
    from ..base import Clock

logger = logging.getLogger(__name__)

#: how often the schedule looks for due work (purges run the first tick of their day)
TICK_SECONDS = 600.0


class LifecycleService:
    def __init__(
        self,
        store: Store,
        settings: RetentionSettings,
        clock: Clock,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.settings = settings
        self.clock = clock
        self.purger = Purger(store, settings)
        self.holds = Holds(store)
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self, *, schedule: bool) -> None:
        if schedule:
            self._task = asyncio.create_task(self._loop(), name="lifecycle")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as err:
                # Logged once per failure kind; the next tick tries again.
                message = f"{type(err).__name__}: {err}"
                if message != self.last_error:
                    logger.error("Retention run failed: %s", message)
                self.last_error = message
                if self.metrics is not None:
                    self.metrics.retention_failing.set(1)
            await asyncio.sleep(TICK_SECONDS)

    async def tick(self, now: datetime | None = None, actor: str = "system") -> list[PurgeProof]:
        """One pass: close yesterday's segments, expire holds, purge every due class and day."""
        now = now or self.clock.now()
        today = now.date().isoformat()
        await self.store.write(lambda c: self.store.segments.close_before(c, today))
        await finish_closing(self.store)
        # Files of purged segments a crash left behind (they were unlinked after the commit).
        leftovers = await self.store.query(self.store.segments.leftovers)
        await asyncio.to_thread(self.store.segments.unlink, leftovers)
        await self.holds.expire(now)
        proofs = await self.purger.run(now, actor)
        if self.last_error is not None:
            logger.info("Retention runs again")
        self.last_error = None
        if self.metrics is not None:
            for proof in proofs:
                purged = proof.images if proof.klass == "image" else proof.rows
                self.metrics.retention_purged.labels(proof.klass).inc(purged)
            self.metrics.retention_last_run.set(now.timestamp())
            self.metrics.retention_failing.set(0)
        return proofs
