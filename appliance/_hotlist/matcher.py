"""The hot-list index: which listed entries a plate read hits, and why.

A read hits an entry when, after :func:`~appliance._hotlist.plates.normalize_plate`, both have
the same length and differ only

- nowhere (``exact``),
- at positions where both characters are in one OCR confusion class (``confusion``), at most
  :class:`~appliance._hotlist.plates.ConfusionLimit` of them, or
- at the entry's ``*`` positions, plus confusion substitutions elsewhere (``wildcard``). Each
  ``*`` spends one of the limit's substitutions, since an unknown character widens the hit at
  least as much as a confusable one; matching every fixed character exactly always hits.

When the read's and the entry's states are both known they must agree; when either is unknown
the hit stands with ``state_matched=None`` and its explanation asks for the state to be checked.

The index is built once and never changes: the host builds a new one on refresh and swaps the
reference, so matching takes no lock. Lookups are hash probes, whatever the list size: one on
the read's canonical form (each confusable character replaced by its class representative)
finds exact and confusion candidates together, and one per wildcard pattern of the read's length
(wildcard entries grouped by where their ``*`` are) finds wildcard candidates; only those few
candidates are compared position by position.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Literal, TypedDict

from ..base import HotlistEntry
from .plates import WILDCARD, ConfusionLimit, canonical, normalize_plate, normalize_state

logger = logging.getLogger(__name__)

HitKind = Literal["exact", "confusion", "wildcard"]
_KIND_RANK = {"exact": 0, "confusion": 1, "wildcard": 2}
_STATE_RANK = {True: 0, None: 1, False: 2}


@dataclass(frozen=True, slots=True)
class ListedEntry:
    """One entry as the index holds it: the list it came from and its host-assigned id."""

    list_name: str
    entry: HotlistEntry
    entry_id: str = ""


@dataclass(frozen=True, slots=True)
class Difference:
    """One position where a read differs from the listed plate (1-based ``position``)."""

    position: int
    read_char: str
    listed_char: str  # "*" where the listed plate has a wildcard


@dataclass(frozen=True, slots=True)
class Hit:
    """A read hitting one listed entry, with what an officer must check before acting."""

    listed: ListedEntry
    kind: HitKind
    differences: tuple[Difference, ...]
    state_matched: bool | None  # None when the read's or the entry's state is unknown

    def explain(self) -> str:
        """One line for the console and the audit trail.

        For example ``"confusion match on list ncic (Stolen Vehicle, V123): B↔8 at position 3;
        state CA matched"``; a pair reads *read*↔*listed*.
        """
        entry = self.listed.entry
        details = [entry.category, entry.reference]
        if self.listed.entry_id and self.listed.entry_id != entry.reference:
            details.append(f"id {self.listed.entry_id}")
        shown = ", ".join(d for d in details if d)
        text = f"{self.kind} match on list {self.listed.list_name}"
        if shown:
            text += f" ({shown})"
        if self.differences:
            text += ": " + ", ".join(_describe(d) for d in self.differences)
        return f"{text}; {self._state_text()}"

    def _state_text(self) -> str:
        listed = normalize_state(self.listed.entry.state)
        if self.state_matched:
            return f"state {listed} matched"
        if listed is None:
            return "state unknown (listed without a state): verify the state before acting"
        return f"state unknown (read without a state, listed {listed}): verify before acting"


def _describe(difference: Difference) -> str:
    if difference.listed_char == WILDCARD:
        return f"wildcard * at position {difference.position} (read {difference.read_char})"
    return f"{difference.read_char}↔{difference.listed_char} at position {difference.position}"


class IndexStats(TypedDict):
    entries: int
    per_list: dict[str, int]
    wildcard_entries: int
    skipped: int  # entries with no usable plate (empty, or wildcards only)
    build_seconds: float


# (normalized listed plate, entry); tuples keep a million of them small.
_Row = tuple[str, ListedEntry]
_Table = dict[str, tuple[_Row, ...]]
# Projects a read's canonical form onto one wildcard pattern's fixed positions.
_Projector = Callable[[str], Any]


class HotlistIndex:
    """An immutable index of listed entries; build with :meth:`build`."""

    def __init__(
        self,
        plain: _Table,
        wild: dict[int, tuple[tuple[_Projector, _Table], ...]],
        limit: ConfusionLimit,
        stats: IndexStats,
    ) -> None:
        self._plain = plain
        self._wild = wild
        self._limit = limit
        self._stats = stats

    @classmethod
    def build(
        cls, entries: Iterable[ListedEntry], *, max_confusions: ConfusionLimit | None = None
    ) -> HotlistIndex:
        """Index ``entries``; those with no usable plate are skipped and counted in stats."""
        started = time.perf_counter()
        plain: _Table = {}
        patterns: dict[tuple[int, tuple[int, ...]], _Table] = {}
        per_list: Counter[str] = Counter()
        wildcard_entries = skipped = 0
        for listed in entries:
            plate = normalize_plate(listed.entry.plate, wildcards=True)
            if WILDCARD in plate:
                fixed = tuple(i for i, ch in enumerate(plate) if ch != WILDCARD)
                if not fixed:
                    # "***" would hit every read of its length: never a useful entry.
                    skipped += 1
                    logger.debug("Skipped hot-list entry %r: wildcards only", listed.entry.plate)
                    continue
                table = patterns.setdefault((len(plate), fixed), {})
                key = "".join(canonical(plate[i]) for i in fixed)
                wildcard_entries += 1
            elif plate:
                table, key = plain, canonical(plate)
            else:
                skipped += 1
                logger.debug("Skipped hot-list entry %r: no plate text", listed.entry.plate)
                continue
            rows = table.get(key)
            row = (plate, listed)
            table[key] = (row,) if rows is None else (*rows, row)
            per_list[listed.list_name] += 1

        wild: dict[int, list[tuple[_Projector, _Table]]] = {}
        for (length, fixed), table in patterns.items():
            wild.setdefault(length, []).append((itemgetter(*fixed), table))
        stats = IndexStats(
            entries=sum(per_list.values()),
            per_list=dict(per_list),
            wildcard_entries=wildcard_entries,
            skipped=skipped,
            build_seconds=time.perf_counter() - started,
        )
        logger.debug(
            "Hot-list index built: %d entries (%d with wildcards, %d skipped) in %.2f s",
            stats["entries"],
            wildcard_entries,
            skipped,
            stats["build_seconds"],
        )
        return cls(
            plain,
            {length: tuple(groups) for length, groups in wild.items()},
            max_confusions or ConfusionLimit(),
            stats,
        )

    def __len__(self) -> int:
        return self._stats["entries"]

    @property
    def stats(self) -> IndexStats:
        """Entries per list, wildcard entries, skipped entries and build time (a copy)."""
        return IndexStats(**{**self._stats, "per_list": dict(self._stats["per_list"])})

    def match(self, plate: str, state: str | None = None) -> list[Hit]:
        """Every entry ``plate`` hits, best first.

        Exact before confusion before wildcard, then fewer differences, then a matched state
        before an unknown one; ties keep list order.
        """
        read = normalize_plate(plate)
        if not read:
            return []
        key = canonical(read)
        read_state = normalize_state(state)
        limit = self._limit.for_length(len(read))
        hits: list[Hit] = []
        rows = self._plain.get(key)
        if rows is not None:
            self._verify(read, read_state, limit, rows, hits)
        # Few lengths have wildcard entries, so a plain read usually stops at this get().
        for project, table in self._wild.get(len(read), ()):
            rows = table.get("".join(project(key)))
            if rows is not None:
                self._verify(read, read_state, limit, rows, hits)
        if len(hits) > 1:
            hits.sort(
                key=lambda h: (
                    _KIND_RANK[h.kind],
                    len(h.differences),
                    _STATE_RANK[h.state_matched],
                )
            )
        return hits

    @staticmethod
    def _verify(
        read: str,
        read_state: str | None,
        limit: int,
        rows: tuple[_Row, ...],
        hits: list[Hit],
    ) -> None:
        """Append the rows ``read`` really hits; candidates share its canonical form only."""
        for listed_plate, listed in rows:
            if listed_plate == read:
                differences: tuple[Difference, ...] = ()
                kind: HitKind = "exact"
            else:
                # Same canonical form and length, so every differing fixed position is a
                # substitution within one confusion class.
                diffs = [
                    (i, r, e)
                    for i, (r, e) in enumerate(zip(read, listed_plate, strict=True))
                    if r != e
                ]
                wildcards = sum(1 for d in diffs if d[2] == WILDCARD)
                if len(diffs) - wildcards > max(0, limit - wildcards):
                    continue
                differences = tuple(Difference(i + 1, r, e) for i, r, e in diffs)
                kind = "wildcard" if wildcards else "confusion"
            listed_state = normalize_state(listed.entry.state)
            if read_state is None or listed_state is None:
                state_matched: bool | None = None
            elif read_state == listed_state:
                state_matched = True
            else:
                continue  # a CA plate is not the TX plate with the same characters
            hits.append(Hit(listed, kind, differences, state_matched))
