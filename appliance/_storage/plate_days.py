"""Exact plate search over the ``(day, plate_index)`` index.

The index is led by the day so a purge of one day touches only that day's pages (migration
0010, issue 5). A search for one plate therefore names the days it looks in: the stored days in
its window, found by one index seek each (a skip-scan written out as a recursive query, not a
scan of every read), then one seek per day for the plate.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

#: the first and last possible ``day`` values (``YYYY-MM-DD`` sorts as text)
FIRST_DAY = "0000-00-00"
LAST_DAY = "9999-99-99"


def stored_days(
    conn: sqlite3.Connection, first: str = FIRST_DAY, last: str = LAST_DAY
) -> list[str]:
    """The days from ``first`` to ``last`` (inclusive) that hold at least one read."""
    rows = conn.execute(
        "WITH RECURSIVE d(day) AS ("
        " SELECT (SELECT min(day) FROM reads WHERE day >= ?1)"
        " UNION ALL"
        " SELECT (SELECT min(day) FROM reads WHERE day > d.day) FROM d"
        " WHERE d.day IS NOT NULL AND d.day < ?2"
        ") SELECT day FROM d WHERE day IS NOT NULL AND day <= ?2",
        (first, last),
    ).fetchall()
    return [r[0] for r in rows]


def has_day_plate_index(conn: sqlite3.Connection) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'reads_day_plate'"
    ).fetchone()
    return row is not None


def window_days(start: datetime | None, end: datetime | None) -> tuple[str, str]:
    """The first and last UTC day a [start, end) window of capture times can touch."""
    first = start.astimezone(UTC).date().isoformat() if start is not None else FIRST_DAY
    last = (
        (end.astimezone(UTC) - timedelta(microseconds=1)).date().isoformat()
        if end is not None
        else LAST_DAY
    )
    return first, last


def plate_clause(
    conn: sqlite3.Connection,
    index: bytes,
    start: datetime | None = None,
    end: datetime | None = None,
) -> tuple[str, list[object]]:
    """SQL (for a WHERE on ``reads``) and its arguments: rows of this plate index on the stored
    days a [start, end) window can touch. Add the exact ``seen_at`` bounds beside it."""
    if not has_day_plate_index(conn):
        # A copy restored from a box older than migration 0010 has only the plate-led index;
        # without the day-led one, finding the stored days would scan every read.
        return "plate_index = ?", [index]
    days = stored_days(conn, *window_days(start, end))
    marks = ",".join("?" * len(days))
    return f"day IN ({marks}) AND plate_index = ?", [*days, index]

