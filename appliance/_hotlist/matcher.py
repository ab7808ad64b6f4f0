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
reference, so matching takes no lock. A read costs one hash probe whatever the list size: on its
canonical form (each confusable character replaced by its class representative), under which
exact and confusion candidates are listed, and wildcard entries too, once per form their ``*``
can take (see ``_EXPANSION_BUDGET`` for the few that are not). Only those few candidates are
compared position by position.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import product, repeat
from operator import attrgetter, itemgetter
from typing import Any, Literal, TypedDict

import numpy as np

from ..base import HotlistEntry
from .plates import (
    CANONICAL_SYMBOLS,
    WILDCARD,
    ConfusionLimit,
    canonical,
    canonical_many,
    confusable,
    normalize_many,
    normalize_plate,
    normalize_state,
)

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


# Most keys hold one entry, so a slot is the entry itself until a second one shares the key:
# at a million entries every object per entry costs tens of megabytes. For the same reason an
# index of one list (build_list) holds its entries bare, and makes a hit's ListedEntry when it
# is hit; other indexes hold ListedEntry objects.
_Item = ListedEntry | HotlistEntry
_Slot = _Item | tuple[_Item, ...]
_Table = dict[Hashable, _Slot]
# Picks a wildcard pattern's fixed positions out of a canonical form (operator.itemgetter).
_Projector = Callable[[bytes], Hashable]

# Wildcard entries are listed in the main table under each form they can take (27 per "*"), so
# a read costs one lookup however many BOLO partials there are. Entries with more wildcards, or
# past the budget (about 80 MB of keys), are found instead by one lookup per distinct wildcard
# layout of the read's length, which the common path then pays for on every read.
_EXPAND_MAX_WILDCARDS = 2
_EXPANSION_BUDGET = 1_000_000
# Entries are keyed this many at a time (see _index): about a millisecond a step.
_SLICE = 16_384


class HotlistIndex:
    """An immutable index of listed entries; build with :meth:`build` or :meth:`build_list`."""

    def __init__(
        self,
        plain: _Table,
        wild: dict[int, tuple[tuple[_Projector, _Table], ...]],
        limit: ConfusionLimit,
        stats: IndexStats,
        list_name: str = "",
    ) -> None:
        self._plain = plain
        self._wild = wild
        self._limit = limit
        self._stats = stats
        self._list_name = list_name  # of the bare HotlistEntry items (build_list)

    @classmethod
    def build(
        cls, entries: Iterable[ListedEntry], *, max_confusions: ConfusionLimit | None = None
    ) -> HotlistIndex:
        """Index ``entries``; those with no usable plate are skipped and counted in stats."""
        started = time.perf_counter()
        listed = list(entries)
        plain, wild, wildcard_entries, skipped = _index(listed, _ENTRY)
        if skipped:
            left_out = set(skipped)
            listed = [item for i, item in enumerate(listed) if i not in left_out]
        per_list: Counter[str] = Counter()
        for start in range(0, len(listed), _SLICE):
            per_list.update(map(_LIST_NAME, listed[start : start + _SLICE]))
        return cls._built(
            plain, wild, wildcard_entries, len(skipped), per_list, max_confusions, started
        )

    @classmethod
    def build_list(
        cls,
        list_name: str,
        entries: Sequence[HotlistEntry],
        *,
        max_confusions: ConfusionLimit | None = None,
        entry_ids: Sequence[str] | None = None,
    ) -> HotlistIndex:
        """Index one whole list: the same index and hits as :meth:`build` of
        ``ListedEntry(list_name, entry, entry_id)`` for each entry (``entry_ids``, when given,
        holds one id an entry), but without those objects: a hit makes its own."""
        started = time.perf_counter()
        items: Sequence[_Item] = entries
        if entry_ids is not None:
            if len(entry_ids) != len(entries):
                raise ValueError(f"{len(entry_ids)} entry ids for {len(entries)} entries")
            # Ids are for lists of a few hundred (BOLOs): hold the ListedEntry objects.
            items = list(map(ListedEntry, repeat(list_name), entries, entry_ids))
        plain, wild, wildcard_entries, skipped = _index(items, None if items is entries else _ENTRY)
        kept = len(entries) - len(skipped)
        per_list = Counter({list_name: kept} if kept else {})
        return cls._built(
            plain,
            wild,
            wildcard_entries,
            len(skipped),
            per_list,
            max_confusions,
            started,
            list_name,
        )

    @classmethod
    def _built(
        cls,
        plain: _Table,
        wild: dict[int, tuple[tuple[_Projector, _Table], ...]],
        wildcard_entries: int,
        skipped: int,
        per_list: Counter[str],
        max_confusions: ConfusionLimit | None,
        started: float,
        list_name: str = "",
    ) -> HotlistIndex:
        stats = IndexStats(
            entries=sum(per_list.values()),
            per_list=dict(per_list),
            wildcard_entries=wildcard_entries,
            skipped=skipped,
            build_seconds=time.perf_counter() - started,
        )
        logger.info(
            "Hot-list index built: %d entries (%d with wildcards, %d skipped) in %.2f s",
            stats["entries"],
            wildcard_entries,
            skipped,
            stats["build_seconds"],
        )
        return cls(plain, wild, max_confusions or ConfusionLimit(), stats, list_name)

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
        slot = self._plain.get(key)
        if slot is not None:
            _verify(read, read_state, limit, slot, hits, self._list_name)
        # Few lengths have wildcard entries, so a plain read usually stops at this get().
        for project, table in self._wild.get(len(read), ()):
            slot = table.get(project(key))
            if slot is not None:
                _verify(read, read_state, limit, slot, hits, self._list_name)
        if len(hits) > 1:
            hits.sort(
                key=lambda h: (
                    _KIND_RANK[h.kind],
                    len(h.differences),
                    _STATE_RANK[h.state_matched],
                )
            )
        return hits


_ENTRY = attrgetter("entry")
_LIST_NAME = attrgetter("list_name")
_PLATE = attrgetter("plate")


def _index(
    items: Sequence[_Item], entry_of: Callable[[Any], HotlistEntry] | None
) -> tuple[_Table, dict[int, tuple[tuple[_Projector, _Table], ...]], int, list[int]]:
    """The tables for ``items`` (each an entry, or ``entry_of`` gives it): the main table, the
    wildcard layouts by length, how many have wildcards, and the positions of those skipped.

    Plain plates, nearly all of a list, are keyed a whole column at a time; then those with
    wildcards are added one by one, in list order. A slot thus holds its plain entries before
    its wildcard ones whatever their order in the list, which changes no result: a wildcard
    entry's hits are always of kind ``wildcard``, a plain entry's never, and hits are ranked by
    kind first.
    """
    keys: list[bytes] = []
    plain_items: list[_Item] | None = None  # None while every item so far is plain
    wildcard: list[tuple[str, _Item]] = []
    skipped: list[int] = []
    # A slice at a time: the normalized plates (new strings, often) are not all held at once,
    # and no single call holds the GIL, which matching needs, for long.
    for start in range(0, len(items), _SLICE):
        part = items[start : start + _SLICE]
        raw_plates = list(map(_PLATE, part if entry_of is None else map(entry_of, part)))
        plates = normalize_many(raw_plates, wildcards=True)
        if plain_items is None:
            if all(plates) and WILDCARD not in "".join(plates):
                keys += canonical_many(plates)
                continue
            plain_items = list(items[:start])
        plain_plates = []
        for i, plate in enumerate(plates, start):
            if not plate.strip(WILDCARD):
                # "" has nothing to match; "***" would hit every read of its length.
                skipped.append(i)
                logger.debug("Skipped hot-list entry %r: no fixed character", raw_plates[i - start])
            elif WILDCARD in plate:
                wildcard.append((plate, items[i]))
            else:
                plain_items.append(items[i])
                plain_plates.append(plate)
        keys += canonical_many(plain_plates)

    plain: _Table = {}
    _add_all(plain, keys, items if plain_items is None else plain_items)
    del keys, plain_items

    patterns: dict[tuple[int, tuple[int, ...]], tuple[_Projector, _Table]] = {}
    budget = _EXPANSION_BUDGET
    for plate, item in wildcard:
        stars = tuple(i for i, ch in enumerate(plate) if ch == WILDCARD)
        fills = len(CANONICAL_SYMBOLS) ** len(stars)
        if len(stars) <= _EXPAND_MAX_WILDCARDS and fills <= budget:
            # Listed under every canonical form it can take, so that the common path
            # finds wildcard entries with its one lookup (see _EXPANSION_BUDGET).
            budget -= fills
            for key in _fill(canonical(plate), stars):
                _add(plain, key, item)
            continue
        fixed = tuple(i for i in range(len(plate)) if i not in stars)
        pattern = (len(plate), fixed)
        if pattern not in patterns:
            patterns[pattern] = (itemgetter(*fixed), {})
        project, table = patterns[pattern]
        _add(table, project(canonical(plate)), item)

    wild: dict[int, list[tuple[_Projector, _Table]]] = {}
    for (length, _), group in patterns.items():
        wild.setdefault(length, []).append(group)
    by_length = {length: tuple(groups) for length, groups in wild.items()}
    return plain, by_length, len(wildcard), skipped


def _add_all(table: _Table, keys: list[bytes], items: Sequence[_Item]) -> None:
    """``_add`` each item under its key, in order, into an empty ``table``, a column at once."""
    for start in range(0, len(keys), _SLICE):
        table.update(zip(keys[start : start + _SLICE], items[start : start + _SLICE], strict=True))
    if len(table) == len(keys):
        return
    groups: dict[bytes, list[_Item]] = {}
    for i in _maybe_shared(keys):
        groups.setdefault(keys[i], []).append(items[i])
    for key, group in groups.items():
        if len(group) > 1:
            table[key] = tuple(group)


def _maybe_shared(keys: list[bytes]) -> list[int]:
    """The positions, in order, of the keys whose hash another key has too: of every key that is
    there more than once, and perhaps of a few more."""
    hashes = np.empty(len(keys), np.int64)
    for start in range(0, len(keys), _SLICE):
        part = keys[start : start + _SLICE]
        hashes[start : start + len(part)] = np.fromiter(map(hash, part), np.int64, len(part))
    ordered = np.sort(hashes)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]  # sorted, as found
    if not len(repeated):
        return []
    found = repeated[np.minimum(np.searchsorted(repeated, hashes), len(repeated) - 1)]
    at: list[int] = np.flatnonzero(found == hashes).tolist()
    return at


def _add(table: _Table, key: Hashable, listed: _Item) -> None:
    slot = table.get(key)
    if slot is None:
        table[key] = listed
    elif isinstance(slot, tuple):
        table[key] = (*slot, listed)
    else:
        table[key] = (slot, listed)


def _fill(key: bytes, stars: tuple[int, ...]) -> Iterator[bytes]:
    """``key`` with every combination of canonical symbols at the ``stars`` positions."""
    chars = bytearray(key)
    for symbols in product(CANONICAL_SYMBOLS, repeat=len(stars)):
        for position, symbol in zip(stars, symbols, strict=True):
            chars[position] = symbol
        yield bytes(chars)


def _verify(
    read: str, read_state: str | None, limit: int, slot: _Slot, hits: list[Hit], list_name: str
) -> None:
    """Append a hit for each candidate in ``slot`` that ``read`` really hits."""
    for item in slot if isinstance(slot, tuple) else (slot,):
        entry = item.entry if isinstance(item, ListedEntry) else item
        # Normalized again rather than stored: cheaper than a million stored copies.
        differences = _differences(read, normalize_plate(entry.plate, wildcards=True), limit)
        if differences is None:
            continue
        listed_state = normalize_state(entry.state)
        if read_state is None or listed_state is None:
            state_matched: bool | None = None
        elif read_state == listed_state:
            state_matched = True
        else:
            continue  # a CA plate is not the TX plate with the same characters
        kind: HitKind = "exact"
        if any(d.listed_char == WILDCARD for d in differences):
            kind = "wildcard"
        elif differences:
            kind = "confusion"
        listed = item if isinstance(item, ListedEntry) else ListedEntry(list_name, item)
        hits.append(Hit(listed, kind, differences, state_matched))


def _differences(read: str, listed: str, limit: int) -> tuple[Difference, ...] | None:
    """Where ``read`` differs from a listed plate of its length, or None if it is no hit.

    The candidates already share the read's canonical form, but each pair is checked against
    the confusion table anyway: a wrong candidate must never become a cross-class hit.
    """
    if read == listed:
        return ()
    found: list[tuple[int, str, str]] = []
    wildcards = 0
    for i, (r, e) in enumerate(zip(read, listed, strict=True)):
        if r == e:
            continue
        if e == WILDCARD:
            wildcards += 1
        elif not confusable(r, e):
            return None
        found.append((i + 1, r, e))
    if len(found) - wildcards > max(0, limit - wildcards):
        return None
    return tuple(Difference(*d) for d in found)
