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

    def subscribe(self, *, lossless: bool = False) -> asyncio.Queue[T]:
        """A queue of what is published from now on. A live view (the default) keeps the last
        ``per_listener`` items; a ``lossless`` listener (the exporters' hit stream, where a
        dropped item is a hit never shared) keeps everything until it reads it."""
        queue: asyncio.Queue[T] = asyncio.Queue(0 if lossless else self._per_listener)
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

