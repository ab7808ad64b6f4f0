"""Waiting for the store's checkpoint thread in tests."""

from __future__ import annotations

import asyncio
import time

from appliance._storage.checkpoints import Checkpointer

#: how long a test waits for the thread before it fails
TIMEOUT_S = 30.0


async def fresh_checkpoint(checkpointer: Checkpointer) -> None:
    """Ask the thread for a checkpoint, and return once one that began after the request has
    finished.

    Waits for the thread rather than sleeping a guessed time: on a loaded CI machine a fixed
    sleep let it fall 1,000 commits behind, and a test then measured the scheduler, not the
    checkpointer. And it waits for a checkpoint begun after the request, not for any next one:
    on a slow disk the thread's own checkpoint, begun while the test was still writing, used
    to satisfy the wait without having caught up, and the WAL then grew past a test's bound."""
    ticket = checkpointer.request()
    deadline = time.monotonic() + TIMEOUT_S
    while checkpointer.finished_through < ticket:
        assert time.monotonic() < deadline, (
            f"no checkpoint finished after the request (last error: {checkpointer.last_error})"
        )
        await asyncio.sleep(0.01)
