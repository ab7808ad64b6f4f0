"""Whether the box can reach its uplink (the city's replica store, a partner's endpoint).

A trailer on cellular loses its uplink for hours. Nothing waits for it: every read is committed
to the local store first, and what leaves the box (litestream replication, the exporters'
outbox) catches up from there when the link returns (store-and-forward). This monitor only
says which state the link is in, for the console and /healthz, by opening a TCP connection to
the configured host and port now and then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..base import Clock

__all__ = ["UplinkMonitor", "UplinkSettings"]

logger = logging.getLogger(__name__)


class UplinkSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(description="Host the box sends to (the replica store's endpoint).")
    port: int = Field(ge=1, le=65535, description="Its TCP port.")
    interval_seconds: float = Field(default=30.0, gt=0, description="Seconds between checks.")
    timeout_seconds: float = Field(default=5.0, gt=0, description="Connect timeout.")


class UplinkMonitor:
    def __init__(self, settings: UplinkSettings, clock: Clock) -> None:
        self.settings = settings
        self._clock = clock
        self.reachable: bool | None = None  # None until the first check
        self.since: datetime | None = None
        self.error: str | None = None
        self.checks = 0

    async def check(self) -> bool:
        s = self.settings
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(s.host, s.port), s.timeout_seconds
            )
        except (OSError, TimeoutError) as err:
            self._set(False, f"{type(err).__name__}: {err}" if str(err) else type(err).__name__)
        else:
            writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()
            self._set(True, None)
        self.checks += 1
        return bool(self.reachable)

    def _set(self, reachable: bool, error: str | None) -> None:
        if reachable != self.reachable:
            where = f"{self.settings.host}:{self.settings.port}"
            if reachable:
                logger.info("Uplink %s reachable; stored data is being forwarded", where)
            else:
                logger.warning(
                    "Uplink %s unreachable (%s); reads are stored locally and forwarded later",
                    where,
                    error,
                )
            self.since = self._clock.now()
        self.reachable = reachable
        self.error = error

    async def run(self) -> None:
        while True:
            await self.check()
            # Wall-clock: a link is down in real time, whatever clock stamps the reads.
            await asyncio.sleep(self.settings.interval_seconds)

    def status(self) -> dict[str, Any]:
        state = {None: "unknown", True: "reachable", False: "unreachable"}[self.reachable]
        return {
            "target": f"{self.settings.host}:{self.settings.port}",
            "state": state,
            "since": self.since.isoformat() if self.since else None,
            "error": self.error,
        }
