"""A bounded queue between a camera and its recognizer that drops the oldest frame.

A camera must never block on a slow recognizer: a full queue makes room by discarding the
oldest frame (the newest is always the most useful), and counts what it dropped.
"""

from __future__ import annotations

import asyncio
from collections import deque

from ..models import Frame


class FrameQueue:
    def __init__(self, maxsize: int) -> None:
        self._frames: deque[Frame] = deque(maxlen=maxsize)
        self._ready = asyncio.Event()
        self._closed = False
        self.dropped = 0

    def put(self, frame: Frame) -> None:
        """Add a frame without ever waiting; drops the oldest when full."""
        if len(self._frames) == self._frames.maxlen:
            self.dropped += 1
        self._frames.append(frame)
        self._ready.set()

    def close(self) -> None:
        """No more frames will come; ``get`` returns None once the queue is drained."""
        self._closed = True
        self._ready.set()

    async def get(self) -> Frame | None:
        while not self._frames:
            if self._closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        return self._frames.popleft()

    def __len__(self) -> int:
        return len(self._frames)
