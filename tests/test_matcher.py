"""The hot-list matcher: exact, OCR-confusion and wildcard hits, states, normalization, order."""

from __future__ import annotations

import random

import pytest

from appliance._hotlist import matcher
from appliance._hotlist.matcher import Difference, Hit, HotlistIndex, ListedEntry
from appliance._hotlist.plates import (
    ConfusionLimit,
    canonical,
    canonical_many,
    normalize_many,
    normalize_plate,
)
from appliance.base import HotlistEntry

# Written out here rather than imported, so a change to the table has to change a test too.
CLASSES = ("0ODQ", "1ILT", "2Z", "5S", "6G", "8B")
PAIRS = [(a, b) for cls in CLASSES for a in cls for b in cls if a != b]
# Characters in no class: substituting one never makes a confusion.
PLAIN = "ACEFHJKMNPRUVWXY345779"


def listed(
    plate: str, list_name: str = "ncic", state: str | None = None, entry_id: str = "", **kw: str
) -> ListedEntry:
    return ListedEntry(list_name, HotlistEntry(plate=plate, state=state, **kw), entry_id)  # type: ignore[arg-type]


def index(*entries: ListedEntry, limit: ConfusionLimit | None = None) -> HotlistIndex:
    return HotlistIndex.build(entries, max_confusions=limit)


def test_exact_without_state_asks_to_verify_it() -> None:
    entry = listed("7ABC123", state="CA")
    (hit,) = index(entry).match("7ABC123")
    assert (hit.listed, hit.kind, hit.differences, hit.state_matched) == (entry, "exact", (), None)
    assert "verify" in hit.explain() and "listed CA" in hit.explain()


def test_exact_with_matching_state() -> None:
    (hit,) = index(listed("7ABC123", state="CA")).match("7ABC123", "ca ")
    assert hit.state_matched is True
    assert hit.explain().endswith("state CA matched")


def test_entry_without_state_hits_any_state_but_says_so() -> None:
    (hit,) = index(listed("7ABC123")).match("7ABC123", "TX")
    assert hit.state_matched is None
    assert "listed without a state" in hit.explain()


def test_state_mismatch_is_no_hit() -> None:
    idx = index(listed("7ABC123", state="CA"), listed("7ABC123", state="TX", entry_id="tx"))
    assert [h.listed.entry_id for h in idx.match("7ABC123", "TX")] == ["tx"]
    assert idx.match("7ABC123", "NV") == []
    assert index(listed("7A8C123", state="CA")).match("7ABC123", "TX") == []


@pytest.mark.parametrize(("read_char", "listed_char"), PAIRS)
def test_each_confusion_pair_hits(read_char: str, listed_char: str) -> None:
    (hit,) = index(listed(f"7A{listed_char}CKX9")).match(f"7A{read_char}CKX9")
    assert hit.kind == "confusion"
    assert hit.differences == (Difference(3, read_char, listed_char),)
    assert f"{read_char}↔{listed_char} at position 3" in hit.explain()


@pytest.mark.parametrize("length", range(2, 10))
def test_limit_is_enforced_per_length(length: int) -> None:
    limit = ConfusionLimit().for_length(length)
    idx = index(listed("B" * length))
    at_limit = "8" * limit + "B" * (length - limit)
    over = "8" * (limit + 1) + "B" * (length - limit - 1)
    assert [h.kind for h in idx.match(at_limit)] == (["confusion"] if limit else ["exact"])
    assert idx.match(over) == []


def test_default_limits_and_custom_limit() -> None:
    default = ConfusionLimit()
    assert [default.for_length(n) for n in (3, 5, 6, 7, 8)] == [1, 1, 2, 2, 2]
    assert index(listed("7ABC123"), limit=ConfusionLimit.exact_only()).match("7A8C123") == []
    assert len(index(listed("7ABC123"), limit=ConfusionLimit(medium=3)).match("7A8CIZ3")) == 1
    with pytest.raises(ValueError):
        ConfusionLimit(short=-1)


@pytest.mark.parametrize(("read_char", "listed_char"), [("B", "0"), ("8", "O"), ("S", "Z"),
                         ("5", "2"), ("1", "7"), ("G", "C"), ("Q", "8"), ("T", "Y")])  # fmt: skip
def test_cross_class_substitution_never_hits(read_char: str, listed_char: str) -> None:
    generous = ConfusionLimit(9, 9, 9)
    assert index(listed(f"7A{listed_char}CKX9"), limit=generous).match(f"7A{read_char}CKX9") == []
    # Not even alongside an allowed substitution.
    assert index(listed(f"7A{listed_char}BKX9"), limit=generous).match(f"7A{read_char}8KX9") == []


def test_wildcard_keeps_order_and_length() -> None:
    idx = index(listed("7AB*123", "bolo"))
    (hit,) = idx.match("7ABX123")
    assert hit.kind == "wildcard"
    assert hit.differences == (Difference(4, "X", "*"),)
    for miss in ("7AB123X", "X7AB123", "7ABX1234", "7AB123", "7ABXX123"):
        assert idx.match(miss) == [], miss


def test_wildcard_combines_with_confusion_within_limit() -> None:
    idx = index(listed("7AB*123", "bolo"), listed("7A**123", "bolo", entry_id="two"))
    # One wildcard and one substitution: two differences, the limit for 7 characters.
    hit, two = idx.match("7A8X123")
    assert (hit.listed.entry.plate, two.listed.entry_id) == ("7AB*123", "two")
    assert hit.differences == (Difference(3, "8", "B"), Difference(4, "X", "*"))
    assert "8↔B at position 3, wildcard * at position 4 (read X)" in hit.explain()
    # A second substitution would be three differences.
    assert idx.match("7A8X1Z3") == []
    # Two wildcards spend the whole limit: fixed characters must then be exact.
    assert [h.listed.entry_id for h in idx.match("7AXY123")] == ["two"]
    assert idx.match("7AXY1Z3") == []


def test_three_wildcards_take_the_layout_path_and_still_hit() -> None:
    idx = index(listed("7***123", "bolo"), listed("7AB*12*", "bolo", entry_id="two"))
    assert [h.listed.entry.plate for h in idx.match("7XYZ123")] == ["7***123"]
    assert [h.listed.entry_id for h in idx.match("7ABC12K")] == ["two"]
    assert idx.match("7XYZ12Z") == []  # fixed characters must be exact: the limit is spent


def test_wildcards_only_entry_is_skipped() -> None:
    idx = index(listed("***"), listed("--"), listed("7ABC123"))
    assert idx.match("ABC") == []
    assert (len(idx), idx.stats["skipped"]) == (1, 2)


def test_unicode_look_alikes_in_reads_and_entries() -> None:
    cyrillic = index(listed("7АВС123"))  # А, В, С are Cyrillic
    assert [h.kind for h in cyrillic.match("7ABC123")] == ["exact"]
    latin = index(listed("7ABC123"))
    assert [h.kind for h in latin.match("7ΑΒC123")] == ["exact"]  # Greek Α, Β
    assert [h.kind for h in latin.match("７ａｂｃ１２３")] == ["exact"]  # fullwidth
    assert [h.kind for h in latin.match("7авс123")] == ["exact"]  # lower-case Cyrillic
    assert latin.match("7ЖBC123") == []  # no look-alike: kept, so no hit
    # Letters with no ASCII form share a lookup key, but are never confused with each other.
    assert [h.kind for h in index(listed("7ЖBC123")).match("7ЖBC123")] == ["exact"]
    assert index(listed("7ЖBC123")).match("7ДBC123") == []


def test_spaces_dashes_dots_and_case() -> None:
    idx = index(listed("7 abc.123", state="ca"))
    (hit,) = idx.match(" 7abc-12 3 ", "CA")
    assert (hit.kind, hit.state_matched) == ("exact", True)
    assert idx.match("-- .") == []


def test_several_entries_on_several_lists_all_returned_best_first() -> None:
    idx = index(
        listed("7ABC12*", "bolo", entry_id="wild"),
        listed("7A8C123", "bolo", state="CA", entry_id="conf"),
        listed("7ABC123", "dmv", entry_id="dmv"),
        listed("7ABC123", "ncic", state="TX", entry_id="tx"),
        listed("7ABC123", "ncic", state="CA", entry_id="ncic"),
        listed("7A8CIZ3", "ncic", state="CA", entry_id="far"),
    )
    hits = idx.match("7ABC123", "CA")
    assert [(h.listed.entry_id, h.kind, h.state_matched) for h in hits] == [
        ("ncic", "exact", True),
        ("dmv", "exact", None),
        ("conf", "confusion", True),
        ("wild", "wildcard", None),
    ]


def test_explanations_name_list_record_positions_and_characters() -> None:
    entry = listed("7AB8K12", "ncic", state="CA", category="Stolen Vehicle", reference="V123456789")
    (hit,) = index(entry).match("7A8BK12", "CA")
    assert hit.explain() == (
        "confusion match on list ncic (Stolen Vehicle, V123456789): "
        "8↔B at position 3, B↔8 at position 4; state CA matched"
    )
    (exact,) = index(entry).match("7AB8K12", "CA")
    assert exact.explain().startswith("exact match on list ncic (Stolen Vehicle, V123456789);")
    (wild,) = index(listed("7AB81*", "bolo", entry_id="B-17")).match("7AB81K")
    assert "wildcard * at position 6 (read K)" in wild.explain()
    assert "id B-17" in wild.explain() and "state unknown" in wild.explain()


def test_covert_entries_match_like_others() -> None:
    entry = ListedEntry("ncic", HotlistEntry(plate="7ABC123", covert=True))
    assert [h.listed for h in index(entry).match("7ABC123")] == [entry]


def test_empty_index() -> None:
    idx = index()
    assert len(idx) == 0 and idx.match("7ABC123", "CA") == [] and idx.match("") == []
    assert idx.stats == {
        "entries": 0, "per_list": {}, "wildcard_entries": 0, "skipped": 0,
        "build_seconds": idx.stats["build_seconds"],
    }  # fmt: skip


def test_stats_count_lists_and_wildcards_and_are_a_copy() -> None:
    idx = index(listed("7ABC123"), listed("7AB*123", "bolo"), listed("8XYZ999"))
    stats = idx.stats
    assert (stats["entries"], stats["per_list"], stats["wildcard_entries"]) == (
        3,
        {"ncic": 2, "bolo": 1},
        1,
    )
    stats["per_list"]["ncic"] = 0
    assert idx.stats["per_list"]["ncic"] == 2 and len(idx) == 3


# --- properties, with random plates from a fixed seed ----------------------------------------

ALPHABET = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789IOQ"


def random_plate(rng: random.Random, alphabet: str = ALPHABET) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(5, 8)))


CLASS_OF = {ch: cls for cls in CLASSES for ch in cls}


def class_of(ch: str) -> str:
    return CLASS_OF.get(ch, ch)


def test_random_single_confusion_is_found_and_cross_class_is_not() -> None:
    rng = random.Random(20240501)
    plates = list({random_plate(rng) for _ in range(2000)})
    idx = index(*(listed(p, entry_id=p) for p in plates))
    tried = 0
    for plate in plates:
        positions = [i for i, ch in enumerate(plate) if len(class_of(ch)) > 1]
        if not positions:
            continue
        i = rng.choice(positions)
        swap = rng.choice(class_of(plate[i]).replace(plate[i], ""))
        read = plate[:i] + swap + plate[i + 1 :]
        hits = [h for h in idx.match(read) if h.listed.entry_id == plate]
        assert [h.differences for h in hits] == [(Difference(i + 1, swap, plate[i]),)]
        other = rng.choice([c for c in ALPHABET if c not in class_of(plate[i])])
        read = plate[:i] + other + plate[i + 1 :]
        assert all(h.listed.entry_id != plate for h in idx.match(read))
        tried += 1
    assert tried > 1000


def naive_match(
    entries: list[ListedEntry], read: str, state: str | None, limit: ConfusionLimit
) -> set[tuple[str, str, tuple[Difference, ...], bool | None]]:
    """The rules, written out as a linear scan: the index must agree with it."""
    found = set()
    for le in entries:
        plate = le.entry.plate
        differences, wild, ok = [], 0, True
        for pos, (r, e) in enumerate(zip(read, plate, strict=True), 1):
            if e == "*":
                wild += 1
            elif r != e and class_of(r) != class_of(e):
                ok = False
                break
            if r != e:
                differences.append(Difference(pos, r, e))
        if not ok or len(differences) - wild > max(0, limit.for_length(len(read)) - wild):
            continue
        if state and le.entry.state and state != le.entry.state:
            continue
        matched = None if not (state and le.entry.state) else True
        kind = "wildcard" if wild else ("confusion" if differences else "exact")
        found.add((le.entry_id, kind, tuple(differences), matched))
    return found


@pytest.mark.parametrize("expand", [True, False], ids=["expanded", "by-layout"])
def test_index_agrees_with_naive_reference(expand: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not expand:
        # Wildcard entries past the expansion budget take the other path; it must agree too.
        monkeypatch.setattr(matcher, "_EXPANSION_BUDGET", 0)
    rng = random.Random(7)
    # A small, confusable-heavy alphabet so that many reads have several candidates.
    alphabet = "0ODQ1IL8B25SZ6GAKX"
    states = ["CA", "TX", None]
    entries = []
    for n in range(1000):
        plate = random_plate(rng, alphabet)
        if entries and rng.random() < 0.2:
            # Near-duplicates of listed plates, so that reads have several candidates.
            plate = "".join(
                rng.choice(class_of(ch)) for ch in rng.choice(entries).entry.plate.replace("*", "A")
            )
        if rng.random() < 0.1:
            for _ in range(rng.choice((1, 1, 2, 3))):
                i = rng.randrange(len(plate))
                plate = plate[:i] + "*" + plate[i + 1 :]
        entries.append(listed(plate, rng.choice(["ncic", "dmv"]), rng.choice(states), str(n)))
    limit = ConfusionLimit()
    idx = HotlistIndex.build(entries)
    by_length: dict[int, list[ListedEntry]] = {}  # only to keep the linear scan quick
    for le in entries:
        by_length.setdefault(len(le.entry.plate), []).append(le)
    with_hits = 0
    for _ in range(2500):
        roll = rng.random()
        if roll < 0.6:
            read = list(rng.choice(entries).entry.plate.replace("*", rng.choice(alphabet)))
            for _ in range(rng.randint(0, 3)):
                i = rng.randrange(len(read))
                read[i] = rng.choice(class_of(read[i]) if rng.random() < 0.7 else alphabet)
            plate = "".join(read)
        else:
            plate = random_plate(rng, alphabet)
        state = rng.choice(states)
        hits = idx.match(plate, state)
        got = {(h.listed.entry_id, h.kind, h.differences, h.state_matched) for h in hits}
        assert got == naive_match(by_length.get(len(plate), []), plate, state, limit), plate
        assert len(got) == len(hits)
        assert hits == sorted(hits, key=rank)
        with_hits += bool(hits)
    assert with_hits > 500


def rank(hit: Hit) -> tuple[int, int, int]:
    state = {True: 0, None: 1}[hit.state_matched]
    return (["exact", "confusion", "wildcard"].index(hit.kind), len(hit.differences), state)


# --- build_list: one list, no ListedEntry per entry ------------------------------------------


def one_list_entries(rng: random.Random, count: int) -> list[HotlistEntry]:
    """Plates of every kind an index must cope with: separators, lower case, look-alike and
    non-Latin letters, wildcards, unusable ones, and repeats (also under other states)."""
    alphabet = "0ODQ1IL8B25SZ6GAKX"
    odd = ["7abc-123", "7ABC 123", "АВС123", "７ＡＢＣ１２３", "ÄBC123", "", "***", " - ",
           "7AB*123", "*ABC12*", "7*B*1*3", "7ab.c123"]  # fmt: skip
    entries: list[HotlistEntry] = []
    for n in range(count):
        roll = rng.random()
        if roll < 0.05:
            plate = rng.choice(odd)
        elif roll < 0.15 and entries:
            plate = rng.choice(entries).plate  # the same plate again
        else:
            plate = random_plate(rng, alphabet)
        entries.append(
            HotlistEntry(plate=plate, state=rng.choice(["CA", "TX", None]), reference=f"R{n}")
        )
    return entries


@pytest.mark.parametrize("expand", [True, False], ids=["expanded", "by-layout"])
@pytest.mark.parametrize("with_ids", [False, True])
def test_build_list_is_build_of_listed_entries(
    expand: bool, with_ids: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not expand:
        monkeypatch.setattr(matcher, "_EXPANSION_BUDGET", 0)
    rng = random.Random(11)
    entries = one_list_entries(rng, 3000)
    ids = [f"id{n}" for n in range(len(entries))] if with_ids else None
    by_build = HotlistIndex.build(
        [ListedEntry("dmv", e, ids[n] if ids else "") for n, e in enumerate(entries)]
    )
    by_list = HotlistIndex.build_list("dmv", entries, entry_ids=ids)
    want, got = by_build.stats, by_list.stats
    del want["build_seconds"], got["build_seconds"]
    assert got == want
    assert want["skipped"] > 0 and want["wildcard_entries"] > 0
    reads = [e.plate.replace("*", "A") for e in entries]
    reads += [random_plate(rng, "0ODQ1IL8B25SZ6GAKX") for _ in range(3000)]
    with_hits = 0
    for read in reads:
        for state in ("CA", None):
            hits = by_list.match(read, state)
            assert hits == by_build.match(read, state), read
            with_hits += bool(hits)
    assert with_hits > 3000


def test_build_list_hits_carry_the_list_and_are_made_when_hit() -> None:
    entry = HotlistEntry(plate="7ABC123", state="CA", reference="V1", category="Stolen")
    idx = HotlistIndex.build_list("ncic", [entry])
    (hit,) = idx.match("7A8C123", "CA")
    assert hit.listed == ListedEntry("ncic", entry, "")
    assert hit.listed.entry is entry
    assert hit.explain() == (
        "confusion match on list ncic (Stolen, V1): 8↔B at position 3; state CA matched"
    )
    assert idx.stats["per_list"] == {"ncic": 1} and len(idx) == 1
    empty = HotlistIndex.build_list("ncic", [HotlistEntry(plate="")])
    assert len(empty) == 0 and empty.stats["per_list"] == {} and empty.stats["skipped"] == 1
    with pytest.raises(ValueError):
        HotlistIndex.build_list("bolo", [entry], entry_ids=[])


@pytest.mark.parametrize("wildcards", [False, True])
def test_normalize_and_canonical_many_are_one_at_a_time(wildcards: bool) -> None:
    rng = random.Random(5)
    texts = [e.plate for e in one_list_entries(rng, 2000)] + ["a\nb", "7abc123"]
    samples = [texts, [t for t in texts if t.isascii()], [t.upper() for t in texts[:50]], []]
    samples += [["123", "4567"], ["7ABC123", "8XYZ", ""], ["7ABC123", "8xyz"], ["A-1", "*B"]]
    for sample in samples:
        plates = normalize_many(sample, wildcards=wildcards)
        assert plates == [normalize_plate(t, wildcards=wildcards) for t in sample]
        assert canonical_many(plates) == [canonical(p) for p in plates]
    assert canonical_many(["A\nB", "8"]) == [canonical("A\nB"), canonical("8")]


@pytest.mark.parametrize("suffix", [b"", b"LONGER"])
def test_a_column_of_keys_is_added_as_one_by_one(suffix: bytes) -> None:
    rng = random.Random(9)
    keys = [random_plate(rng, "AB8").encode() + suffix for _ in range(3000)]
    items = [HotlistEntry(plate=str(n)) for n in range(len(keys))]
    one_by_one: dict[object, object] = {}
    for key, item in zip(keys, items, strict=True):
        matcher._add(one_by_one, key, item)
    column: dict[object, object] = {}
    matcher._add_all(column, keys, items)
    assert column == one_by_one
    assert any(isinstance(slot, tuple) for slot in column.values())


def test_plates_keyed_a_slice_at_a_time_give_the_same_index(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    entries = one_list_entries(random.Random(12), 2000)
    whole = HotlistIndex.build_list("dmv", entries)
    monkeypatch.setattr(matcher, "_SLICE", 7)
    sliced = HotlistIndex.build_list("dmv", entries)
    assert sliced._plain == whole._plain  # the same slots, in the same order
    assert {k: [t for _, t in v] for k, v in sliced._wild.items()} == {
        k: [t for _, t in v] for k, v in whole._wild.items()
    }
    want, got = whole.stats, sliced.stats
    del want["build_seconds"], got["build_seconds"]
    assert got == want
