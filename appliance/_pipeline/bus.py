"""Fan-out of stored reads to live listeners (console feeds) without ever blocking the pipeline."""

from __future__ import annotations

import asyncio
import logging

from ..models import PlateRead

logger = logging.getLogger(__name__)


class ReadBus:
    def __init__(self, per_listener: int = 100) -> None:
        self._listeners: set[asyncio.Queue[PlateRead]] = set()
        self._per_listener = per_listener

    def subscribe(self) -> asyncio.Queue[PlateRead]:
        queue: asyncio.Queue[PlateRead] = asyncio.Queue(self._per_listener)
        self._listeners.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[PlateRead]) -> None:
        self._listeners.discard(queue)

    def publish(self, read: PlateRead) -> None:
        for queue in self._listeners:
            if queue.full():
                # A stalled browser tab loses its oldest live item, not the pipeline its pace.
                queue.get_nowait()
            queue.put_nowait(read)

    @property
    def listeners(self) -> int:
        return len(self._listeners)
