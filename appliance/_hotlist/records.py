"""Hot-list entries to and from plain dicts (for encrypted JSON in the store and snapshots)."""

from __future__ import annotations

from dataclasses import fields
from datetime import date
from typing import Any

from ..base import HotlistEntry

_DATE_FIELDS = frozenset({"entered", "expires"})
_FIELDS = tuple(f.name for f in fields(HotlistEntry))


def entry_to_dict(entry: HotlistEntry) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _FIELDS:
        value = getattr(entry, name)
        if value is None or value == "" or value is False:
            continue  # compact: a million entries are mostly empty optional fields
        out[name] = value.isoformat() if name in _DATE_FIELDS else value
    return out


def entry_from_dict(data: dict[str, Any]) -> HotlistEntry:
    values = {k: v for k, v in data.items() if k in _FIELDS}
    for name in _DATE_FIELDS & values.keys():
        values[name] = date.fromisoformat(values[name])
    return HotlistEntry(**values)
