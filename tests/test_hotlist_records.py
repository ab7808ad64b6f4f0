"""Hot-list entries to and from dicts: the bulk loader of a saved list is the one-by-one one."""

from __future__ import annotations

import random
from datetime import date
from typing import Any

import pytest

from appliance._hotlist.records import entries_from_dicts, entry_from_dict, entry_to_dict
from appliance.base import HotlistEntry


def some_entries(count: int) -> list[HotlistEntry]:
    rng = random.Random(3)
    entries = []
    for n in range(count):
        entries.append(
            HotlistEntry(
                plate=f"{n:07d}",
                state=rng.choice(["CA", "TX", None]),
                plate_type=rng.choice(["PC", None]),
                category=rng.choice(["NCIC Vehicle File", ""]),
                reason=rng.choice(["STOLEN", ""]),
                reference=f"V{n:09d}",
                agency=rng.choice(["CA0010000", ""]),
                entered=rng.choice([date(2025, 3, 1), date(2024, 2, 29), None]),
                expires=rng.choice([date(2026, 1, 1), None]),
                vehicle_year=rng.choice([2019, None]),
                vehicle_make=rng.choice(["TOYT", None]),
                vehicle_model=rng.choice(["CAM", None]),
                vehicle_colour=rng.choice(["BLK", None]),
                covert=rng.random() < 0.1,
            )
        )
    return entries


def test_bulk_load_gives_the_same_entries() -> None:
    entries = some_entries(2000)
    rows = [entry_to_dict(e) for e in entries]
    rows[5]["unknown"] = "ignored"  # as entry_from_dict ignores it
    loaded = entries_from_dicts(rows)
    assert loaded == [entry_from_dict(row) for row in rows] == entries
    assert all(type(e) is HotlistEntry for e in loaded)
    assert entries_from_dicts([]) == []


@pytest.mark.parametrize(
    "bad",
    [
        {"state": "CA"},  # no plate
        {"plate": "7ABC123", "entered": "2025-02-30"},
        {"plate": "7ABC123", "entered": None},
        {"plate": "7ABC123", "expires": ["2025-01-01"]},
        ["plate", "7ABC123"],
    ],
)
def test_bulk_load_raises_what_one_by_one_raises(bad: Any) -> None:
    rows = [entry_to_dict(e) for e in some_entries(10)] + [bad]
    with pytest.raises(Exception) as one_by_one:
        [entry_from_dict(row) for row in rows]
    with pytest.raises(Exception) as bulk:
        entries_from_dicts(rows)
    assert type(bulk.value) is type(one_by_one.value)
    assert str(bulk.value) == str(one_by_one.value)
