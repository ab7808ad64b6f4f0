"""Exact plate search through ``plate_keys`` (migration 0010).

The table holds ``(day, plate_index, read_id)`` for every read, led by the day, so a retention
purge deletes a day's entries in their own order, a few pages at a time (an index led by the
keyed hash had each day's entries on every one of its pages: _lifecycle/retention.py). A lookup
therefore asks each stored day in turn. The days are found by skipping through the primary key,
one seek per day, newest first, and only within the window asked for; nothing is scanned.
"""

from __future__ import annotations

from datetime import UTC, datetime

#: ``WITH`` clause naming ``plate_reads(id)``: the ids of the reads of one plate index stored on
#: days ``first``..``last``. Its arguments, in order: last day, first day, plate index.
PLATE_READS = (
    "WITH RECURSIVE days(day) AS ("
    "SELECT max(day) FROM plate_keys WHERE day <= ?"
    " UNION ALL "
    "SELECT (SELECT max(day) FROM plate_keys WHERE day < days.day) FROM days WHERE days.day > ?"
    "), plate_reads(id) AS ("
    "SELECT k.read_id FROM days JOIN plate_keys k ON k.day = days.day AND k.plate_index = ?"
    ")"
)
#: bounds that take in every day
FIRST_DAY, LAST_DAY = "0000-00-00", "9999-99-99"


def plate_reads_args(
    index: bytes, start: datetime | None = None, end: datetime | None = None
) -> tuple[str, str, bytes]:
    """The arguments of :data:`PLATE_READS` for reads seen in [start, end) (UTC days; the
    caller still filters on ``seen_at`` for the exact bounds)."""
    first = start.astimezone(UTC).date().isoformat() if start is not None else FIRST_DAY
    last = end.astimezone(UTC).date().isoformat() if end is not None else LAST_DAY
    return last, first, index


INSERT_PLATE_KEY = "INSERT INTO plate_keys (day, plate_index, read_id) VALUES (?, ?, ?)"
