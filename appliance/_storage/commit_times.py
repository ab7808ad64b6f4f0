"""How long the writer's recent ingest commits took.

The single writer runs ingest and background work (a retention purge) in turn. How long ingest
commits take right now is the best sign of whether the disk is keeping up: on the 2-core box an
ingest commit is ~0.5 ms when the disk is idle and 10-300 ms when an fsync waits behind other
writes (benchmarks/README.md, purge phase). Background work reads this to back off.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable

#: enough for a few seconds of ingest at a busy site's rate
KEPT = 1024


class CommitTimes:
    """A rolling record of (when, seconds) for the writer's ingest commits."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, kept: int = KEPT) -> None:
        self.clock = clock
        self._times: collections.deque[tuple[float, float]] = collections.deque(maxlen=kept)

    def add(self, seconds: float) -> None:
        self._times.append((self.clock(), seconds))

    def quantile(self, q: float, within: float | None = None) -> float | None:
        """The ``q`` quantile of the commits of the last ``within`` seconds (all kept commits
        when None); None when there were none."""
        since = None if within is None else self.clock() - within
        values = sorted(s for at, s in self._times if since is None or at >= since)
        if not values:
            return None
        return values[min(len(values) - 1, int(q * len(values)))]
