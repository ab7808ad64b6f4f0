"""Fan-out of stored reads and alerts to live listeners (console feeds), never blocking the
pipeline."""

from __future__ import annotations

import asyncio
import logging
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Bus(Generic[T]):
    def __init__(self, per_listener: int = 100) -> None:
        self._listeners: set[asyncio.Queue[T]] = set()
        self._per_listener = per_listener

    def subscribe(self) -> asyncio.Queue[T]:
        queue: asyncio.Queue[T] = asyncio.Queue(self._per_listener)
        self._listeners.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[T]) -> None:
        self._listeners.discard(queue)

    def publish(self, item: T) -> None:
        for queue in self._listeners:
            if queue.full():
                # A stalled browser tab loses its oldest live item, not the pipeline its pace.
                queue.get_nowait()
            queue.put_nowait(item)

    @property
    def listeners(self) -> int:
        return len(self._listeners)

