"""Waiting for the store's checkpoint thread in tests."""

from __future__ import annotations

import asyncio
import time

from appliance._storage.checkpoints import Checkpointer

#: how long a test waits for the thread before it fails
TIMEOUT_S = 30.0


async def checkpoint_after(checkpointer: Checkpointer, seen: int) -> None:
    """Return once the thread has finished a checkpoint beyond the ``seen``-th.

    Waits for the thread rather than sleeping a guessed time: on a loaded CI machine a fixed
    sleep let it fall 1,000 commits behind, and a test then measured the scheduler, not the
    checkpointer."""
    deadline = time.monotonic() + TIMEOUT_S
    while checkpointer.checkpoints <= seen:
        assert time.monotonic() < deadline, "the checkpoint thread never ran"
        await asyncio.sleep(0.01)
