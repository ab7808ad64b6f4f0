"""The hot-list matcher at list scale, on this machine.

    python benchmarks/hotlist.py [--entries 1000000] [--reads 100000] [--naive-reads 20] [--json]

Generates a seeded list of realistic US plates in memory (and, when the NCIC plugin is
installed, a synthetic NCIC extract of the same size), then measures: load time (parse + build,
or build alone), index memory, per-read latency for exact hits, confusion hits, wildcard hits
and misses, reads per second while another thread rebuilds and swaps the index (checking that
no read is missed or double-matched across the swap), and a naive linear scan on a sample of
the same reads for the speed-up. Nothing here is asserted: the numbers are for the README.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import statistics
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
# Run from a checkout without installing the package (not via _common: that loads the models).
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from appliance._hotlist.manager import collector_paused, diff_keys  # noqa: E402
from appliance._hotlist.matcher import HotlistIndex, ListedEntry  # noqa: E402
from appliance._hotlist.plates import (  # noqa: E402
    CONFUSION_CLASSES,
    ConfusionLimit,
    normalize_plate,
    normalize_state,
)
from appliance.base import HotlistEntry  # noqa: E402

# (state, share, templates): L letter, D digit, anything else literal (as printed on the plate).
SHAPES = (
    ("CA", 50, ("DLLLDDD", "DLLLDDD", "DLDDDDD")),
    ("TX", 10, ("LLL-DDDD",)),
    ("NY", 8, ("LLL DDDD",)),
    ("FL", 6, ("LLL LDD", "DDD LLL")),
    ("AZ", 5, ("LLLDDDD",)),
    ("NV", 5, ("DLLDDD",)),
    ("IL", 5, ("LL DDDDD",)),
    ("WA", 5, ("LLLDDDD",)),
    ("UT", 3, ("LDDDLL",)),
    (None, 3, ("LLLDDD", "DDDLLL")),  # state not recorded
)
LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"  # I, O and Q are not issued
DIGITS = "0123456789"
CLASS_OF = {ch: cls for cls in CONFUSION_CLASSES for ch in cls}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class PlateMaker:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.states = [s[0] for s in SHAPES]
        self.weights = [s[1] for s in SHAPES]
        self.templates = {s[0]: s[2] for s in SHAPES}

    def plate(self) -> tuple[str, str | None]:
        rng = self.rng
        state = rng.choices(self.states, self.weights)[0]
        template = rng.choice(self.templates[state])
        text = "".join(
            rng.choice(LETTERS) if t == "L" else rng.choice(DIGITS) if t == "D" else t
            for t in template
        )
        return text, state


def make_entries(count: int, wildcards: int, seed: int) -> list[ListedEntry]:
    """About 55 % NCIC, 45 % DMV, and ``wildcards`` BOLO partial plates."""
    maker = PlateMaker(seed)
    rng = maker.rng
    entries = []
    for n in range(count - wildcards):
        plate, state = maker.plate()
        list_name = "ncic" if rng.random() < 0.55 else "dmv"
        entry = HotlistEntry(plate=plate, state=state, category="Stolen Vehicle", reference=f"R{n}")
        entries.append(ListedEntry(list_name, entry, f"{list_name}-{n}"))
    for n in range(wildcards):
        chars = list(maker.plate()[0])
        for _ in range(rng.choice((1, 1, 2))):
            spots = [i for i, ch in enumerate(chars) if ch.isalnum()]
            chars[rng.choice(spots)] = "*"
        entry = HotlistEntry(plate="".join(chars), state=None, category="BOLO")
        entries.append(ListedEntry("bolo", entry, f"bolo-{n}"))
    return entries


def confusion_variant(rng: random.Random, plate: str) -> str | None:
    """``plate`` with one character swapped for another of its confusion class."""
    spots = [i for i, ch in enumerate(plate) if ch in CLASS_OF]
    if not spots:
        return None
    i = rng.choice(spots)
    other = rng.choice(CLASS_OF[plate[i]].replace(plate[i], ""))
    return plate[:i] + other + plate[i + 1 :]


def make_reads(
    entries: list[ListedEntry], count: int, seed: int
) -> list[tuple[str, str, str | None]]:
    """(category, read text, read state): 30 % listed, 30 % confusion variants, 2 % wildcard
    fills, the rest fresh plates (almost all misses)."""
    rng = random.Random(seed + 1)
    maker = PlateMaker(seed + 2)
    plain = [e for e in entries if "*" not in e.entry.plate]
    wild = [e for e in entries if "*" in e.entry.plate]
    reads: list[tuple[str, str, str | None]] = []
    while len(reads) < count:
        roll = rng.random()
        if roll < 0.30:
            e = rng.choice(plain).entry
            reads.append(("exact", e.plate, e.state if rng.random() < 0.9 else None))
        elif roll < 0.60:
            e = rng.choice(plain).entry
            variant = confusion_variant(rng, e.plate)
            if variant is not None:
                reads.append(("confusion", variant, e.state))
        elif roll < 0.62 and wild:
            plate = rng.choice(wild).entry.plate
            filled = "".join(rng.choice(LETTERS) if ch == "*" else ch for ch in plate)
            reads.append(("wildcard", filled, rng.choice(("CA", None))))
        else:
            reads.append(("miss", *maker.plate()))
    rng.shuffle(reads)
    return reads


def percentiles(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000

    return {"n": len(ordered), "p50_us": at(0.50), "p99_us": at(0.99), "max_us": at(1.0)}


def measure_latency(
    index: HotlistIndex, reads: list[tuple[str, str, str | None]]
) -> dict[str, Any]:
    clock = time.perf_counter_ns
    by_category: dict[str, list[int]] = {}
    hits: dict[str, int] = {}
    for category, plate, state in reads:
        started = clock()
        found = index.match(plate, state)
        elapsed = clock() - started
        by_category.setdefault(category, []).append(elapsed)
        hits[category] = hits.get(category, 0) + bool(found)
    result = {c: {**percentiles(s), "with_hits": hits[c]} for c, s in by_category.items()}
    result["all"] = percentiles([t for s in by_category.values() for t in s])
    return result


def measure_memory(entries: list[ListedEntry]) -> dict[str, float]:
    """What the index keeps beyond the entries (tracemalloc, in a build of its own: it slows
    allocation several times over), and what an entry itself costs, from a sample."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    index = HotlistIndex.build(entries)
    retained, peak = tracemalloc.get_traced_memory()
    sample_before = tracemalloc.get_traced_memory()[0]
    sample = make_entries(10_000, 0, seed=99)
    per_entry = (tracemalloc.get_traced_memory()[0] - sample_before) / len(sample)
    tracemalloc.stop()
    del index, sample
    return {
        "index_mb": (retained - before) / 1e6,
        "build_peak_mb": (peak - before) / 1e6,
        "entry_bytes": per_entry,
    }


def naive_match(
    rows: list[tuple[str, str | None, ListedEntry]],
    plate: str,
    state: str | None,
    limit: ConfusionLimit,
) -> set[str]:
    """The same rules as a linear scan with per-position comparison: the obvious baseline."""
    read = normalize_plate(plate)
    read_state = normalize_state(state)
    allowed = limit.for_length(len(read))
    found = set()
    for listed_plate, listed_state, listed in rows:
        if len(listed_plate) != len(read):
            continue
        subs = wild = 0
        for r, e in zip(read, listed_plate, strict=True):
            if e == "*":
                wild += 1
            elif r != e:
                if CLASS_OF.get(r, r) != CLASS_OF.get(e, e):
                    break
                subs += 1
        else:
            if subs > max(0, allowed - wild):
                continue
            if read_state and listed_state and read_state != listed_state:
                continue
            found.add(listed.entry_id)
    return found


def measure_naive(
    index: HotlistIndex,
    entries: list[ListedEntry],
    reads: list[tuple[str, str, str | None]],
    sample: int,
) -> dict[str, Any]:
    rows = [
        (normalize_plate(e.entry.plate, wildcards=True), normalize_state(e.entry.state), e)
        for e in entries
    ]
    picked = reads[:sample]
    limit = ConfusionLimit()
    started = time.perf_counter()
    expected = [naive_match(rows, plate, state, limit) for _, plate, state in picked]
    naive_s = (time.perf_counter() - started) / len(picked)
    repeat = 200
    started = time.perf_counter()
    for _ in range(repeat):
        got = [index.match(plate, state) for _, plate, state in picked]
    index_s = (time.perf_counter() - started) / (repeat * len(picked))
    agree = sum({h.listed.entry_id for h in g} == e for g, e in zip(got, expected, strict=True))
    return {
        "reads": len(picked),
        "naive_ms_per_read": naive_s * 1e3,
        "index_us_per_read": index_s * 1e6,
        "speedup": naive_s / index_s,
        "agree": agree,
    }


def measure_swap(
    entries: list[ListedEntry], swaps: int, idle_seconds: float, seed: int
) -> dict[str, Any]:
    """Reads keep matching while another thread rebuilds and swaps; none may miss or double.

    Sentinel plates (8 characters: the generator makes none that long) are listed once in both
    the old and the new list, as new objects in the new one, as after a real refresh.
    """
    rng = random.Random(seed + 3)
    sentinels = [f"SWAP{n:04d}" for n in range(1000)]

    def with_sentinels(base: list[ListedEntry]) -> list[ListedEntry]:
        marks = [ListedEntry("ncic", HotlistEntry(plate=p, state="CA"), p) for p in sentinels]
        return base + marks

    old = with_sentinels(entries)
    # The refreshed list: 1 % of entries replaced by fresh plates.
    fresh = iter(make_entries(len(entries) // 100, 0, seed + 4))
    new = with_sentinels([next(fresh, e) if rng.random() < 0.01 else e for e in entries])
    current = [HotlistIndex.build(old)]
    stop = threading.Event()
    counts = {"reads": 0, "missed": 0, "doubled": 0, "wrong": 0}

    def reader() -> None:
        n = 0
        while not stop.is_set():
            plate = sentinels[n % len(sentinels)]
            hits = current[0].match(plate, "CA")  # one load of the reference per read
            if not hits:
                counts["missed"] += 1
            elif len(hits) > 1:
                counts["doubled"] += 1
            elif hits[0].listed.entry_id != plate:
                counts["wrong"] += 1
            n += 1
            counts["reads"] = n

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    time.sleep(idle_seconds)
    idle_rate = counts["reads"] / idle_seconds
    before, started = counts["reads"], time.perf_counter()
    build_s = []
    for n in range(swaps):
        t0 = time.perf_counter()
        built = HotlistIndex.build(new if n % 2 == 0 else old)
        build_s.append(time.perf_counter() - t0)
        current[0] = built  # the swap: one reference assignment, no lock
        del built
    busy = time.perf_counter() - started
    busy_rate = (counts["reads"] - before) / busy
    stop.set()
    thread.join()
    return {
        "swaps": swaps,
        "reads": counts["reads"],
        "reads_per_s_idle": idle_rate,
        "reads_per_s_while_rebuilding": busy_rate,
        "rebuild_s_under_load": statistics.mean(build_s),
        "missed": counts["missed"],
        "doubled": counts["doubled"],
        "wrong": counts["wrong"],
    }


def measure_ncic_load(count: int, seed: int) -> dict[str, Any] | None:
    """Parse a synthetic NCIC extract with the plugin's parser, then build the list's index as
    the host's refresh does: the end-to-end load. Then the rest of the host's refresh that
    depends on the list's size, not the disk: the hashes it diffs the next refresh against, and
    its one full collection (after which it freezes the entries, out of the collector's way)."""
    try:
        from alprbox_hotlist_ncic import parse_extract
        from alprbox_hotlist_ncic.generator import generate_lines
    except ImportError:
        return None
    data = "".join(generate_lines(count, seed)).encode()
    gc.collect()
    started = time.perf_counter()
    batch = parse_extract(data)
    parsed = time.perf_counter()
    with collector_paused():  # as the host builds: the collector waits for its collection
        index = HotlistIndex.build_list("ncic", batch.entries)  # no ListedEntry per entry
        built = time.perf_counter()
        diff_keys(batch.entries)
        hashed = time.perf_counter()
        gc.collect()
        collected = time.perf_counter()
    return {
        "extract_mb": len(data) / 1e6,
        "entries": len(index),
        "parse_s": parsed - started,
        "build_s": built - parsed,
        "load_s": built - started,
        "diff_keys_s": hashed - built,
        "collect_s": collected - hashed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--wildcards", type=int, default=1_000, help="BOLO partial plates")
    parser.add_argument("--reads", type=int, default=100_000)
    parser.add_argument("--naive-reads", type=int, default=20)
    parser.add_argument("--swaps", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    report: dict[str, Any] = {
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
        }
    }
    say = (lambda *a: None) if args.json else print
    say(f"machine: {report['machine']}")

    ncic = measure_ncic_load(args.entries, args.seed)
    report["ncic_load"] = ncic
    if ncic is None:
        say("NCIC plugin not importable: load time below is the build alone")
    else:
        say(
            f"NCIC extract ({ncic['extract_mb']:.0f} MB, {ncic['entries']} entries kept): "
            f"parse {ncic['parse_s']:.2f} s + build {ncic['build_s']:.2f} s = load "
            f"{ncic['load_s']:.2f} s; then the host's diff hashes {ncic['diff_keys_s']:.2f} s "
            f"and full collection {ncic['collect_s']:.2f} s"
        )
    gc.collect()

    started = time.perf_counter()
    entries = make_entries(args.entries, args.wildcards, args.seed)
    say(f"generated {len(entries)} entries in {time.perf_counter() - started:.1f} s (not timed)")
    started = time.perf_counter()
    index = HotlistIndex.build(entries)
    report["build_s"] = time.perf_counter() - started
    report["stats"] = index.stats
    say(f"build: {report['build_s']:.2f} s, {index.stats['per_list']}")

    report["memory"] = memory = measure_memory(entries)
    say(
        f"index memory: {memory['index_mb']:.0f} MB retained, {memory['build_peak_mb']:.0f} MB "
        f"peak while building (the entries themselves: ~{memory['entry_bytes']:.0f} B each)"
    )

    reads = make_reads(entries, args.reads, args.seed)
    report["latency"] = latency = measure_latency(index, reads)
    for category, row in latency.items():
        hits = f", {row['with_hits']} with hits" if "with_hits" in row else ""
        say(
            f"latency {category:9s}: p50 {row['p50_us']:6.1f} µs, p99 {row['p99_us']:6.1f} µs, "
            f"max {row['max_us']:8.1f} µs over {row['n']} reads{hits}"
        )

    report["naive"] = naive = measure_naive(index, entries, reads, args.naive_reads)
    say(
        f"naive linear scan: {naive['naive_ms_per_read']:.0f} ms/read vs index "
        f"{naive['index_us_per_read']:.1f} µs/read on the same {naive['reads']} reads: "
        f"{naive['speedup']:,.0f}x faster ({naive['agree']}/{naive['reads']} agree)"
    )

    del index
    gc.collect()
    report["swap"] = swap = measure_swap(entries, args.swaps, 2.0, args.seed)
    say(
        f"during {swap['swaps']} rebuild+swaps ({swap['rebuild_s_under_load']:.2f} s each under "
        f"load): {swap['reads_per_s_while_rebuilding']:,.0f} reads/s vs "
        f"{swap['reads_per_s_idle']:,.0f} idle; {swap['reads']} sentinel reads, "
        f"missed {swap['missed']}, doubled {swap['doubled']}, wrong {swap['wrong']}"
    )
    if args.json:
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
