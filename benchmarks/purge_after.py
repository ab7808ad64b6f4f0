"""Does something of a purge outlast its batches? Ingest p99 in 10 s buckets before, during and
after a purge that runs straight through (no windows), with what the store is doing.

    python benchmarks/purge_after.py [--purge-reads 100000] [--rate 400] [--before-s 120]
                                     [--after-s 180] [--control-s SECONDS] [--dir PATH]
                                     [--json]

Fills one day of ``--purge-reads`` reads (storage.py's purge part: 2 KB crops), flushes the disk,
ingests at ``--rate`` for ``--before-s``, purges the day (images, then reads) while ingest goes
on, then ingests for ``--after-s`` more. Each 10 s bucket prints ingest p99 / p99.9 / max, the
WAL file's size, the database's free pages (``PRAGMA freelist_count``: pages the purge freed that
ingest has not reused yet) and page count, the background checkpoints and writer tail passes in
the bucket, and the MB this process wrote. The summary gives p99 per phase and for the first and
last minute after the purge. Nothing is asserted.

Each write's start and end are set beside the writer's tail passes and the checkpoint thread's
checkpoints (``Checkpointer.tail_pass_spans`` / ``checkpoint_spans``): a bucket's
``p99_no_tail_ms`` leaves out the writes that waited beside a tail pass (``beside_tail`` is their
share), and ``slowest_beside`` says, of each bucket's and each phase's slowest 1 %, what share
ran beside a tail pass, else beside a purge batch (``Store.background_spans``), else beside a
checkpoint, else beside none of them. That tells the purge's own cost from the disk's.
``--control-s`` runs the same store and ingest with no purge, for as long as a purge ran: the
"purge" phase is then the control's (is a slow spell the purge's, or the disk's?).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import random
import shutil
import sqlite3
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import storage  # also puts the repository on sys.path
from storage import (
    DAY0,
    bytes_written,
    day_purger,
    day_store,
    paced_ingest,
    pct,
    purge_day,
)

from appliance._storage import Store

BUCKET_S = 10.0

#: what a write's time overlapped, the first that applies: a tail pass (the writer's own
#: checkpoint), a background write on the writer (a purge batch), one of the checkpoint
#: thread's checkpoints, none of them
CAUSES = ("tail_pass", "purge_batch", "checkpoint", "neither")


def overlaps(spans: list[tuple[float, float]], start: float, end: float) -> bool:
    """Whether [start, end] meets one of ``spans`` (sorted, not overlapping each other)."""
    i = bisect.bisect_left(spans, (end, end)) - 1
    return i >= 0 and spans[i][1] > start


def causes(writes: list[tuple[float, float]], store: Store) -> list[str]:
    """For each write (start, end), what it ran beside (CAUSES)."""
    spans = [
        sorted(store.checkpointer.tail_pass_spans),
        sorted(store.background_spans),
        sorted(store.checkpointer.checkpoint_spans),
    ]
    return [
        next((c for c, s in zip(CAUSES[:3], spans, strict=True) if overlaps(s, a, b)), "neither")
        for a, b in writes
    ]


def shares_beside(latencies: list[float], why: list[str], q: float = 0.99) -> dict[str, float]:
    """Of the writes at or above the ``q`` quantile (0: all of them), the share beside each of
    CAUSES."""
    cut = pct(latencies, q)
    slow = [c for x, c in zip(latencies, why, strict=True) if x >= cut]
    return {c: round(slow.count(c) / len(slow), 2) for c in CAUSES} if slow else {}


async def store_state(store: Store) -> dict[str, Any]:
    wal = Path(f"{store.path}-wal")

    def pages(c: sqlite3.Connection) -> tuple[int, int, int]:
        free = c.execute("PRAGMA freelist_count").fetchone()[0]
        count = c.execute("PRAGMA page_count").fetchone()[0]
        return free, count, wal.stat().st_size if wal.exists() else 0

    free, count, wal_bytes = await store.query(pages)
    return {
        "wal_mb": round(wal_bytes / 1e6, 1),
        "free_pages": free,
        "pages": count,
        "checkpoints": store.checkpointer.checkpoints,
        "tail_passes": store.checkpointer.tail_passes,
        "written": bytes_written() or 0,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="purge-after-", dir=args.dir))
    rng = random.Random(3)
    images = os.urandom(storage.CROP)
    today = DAY0 + timedelta(days=40)
    buckets: list[dict[str, Any]] = []
    phases: dict[str, list[float]] = {"before": [], "purge": [], "after": []}
    phase_causes: dict[str, list[str]] = {name: [] for name in phases}

    async def bucket(phase: str) -> list[float]:
        was = await store_state(store)
        writes: list[tuple[float, float]] = []
        latencies = await paced_ingest(
            store, args.rate, BUCKET_S, today, rng, images, spans=writes
        )
        now = await store_state(store)
        why = causes(writes, store)
        clear = [x for x, c in zip(latencies, why, strict=True) if c != "tail_pass"]
        tail_ms = [
            (b - a) * 1000 for a, b in store.checkpointer.tail_pass_spans if b > writes[0][0]
        ]
        buckets.append({
            "phase": phase,
            "p99_ms": round(pct(latencies, 0.99), 2),
            "p99_no_tail_ms": round(pct(clear, 0.99), 2),
            "beside_tail": round(1 - len(clear) / len(latencies), 3),
            "tail_pass_max_ms": round(max(tail_ms), 1) if tail_ms else 0.0,
            "slowest_beside": shares_beside(latencies, why),
            "p999_ms": round(pct(latencies, 0.999), 2),
            "max_ms": round(max(latencies), 1),
            "wal_mb": now["wal_mb"],
            "free_pages": now["free_pages"],
            "pages": now["pages"],
            "checkpoints": now["checkpoints"] - was["checkpoints"],
            "tail_passes": now["tail_passes"] - was["tail_passes"],
            "written_mb": round((now["written"] - was["written"]) / 1e6),
        })
        if not args.json:
            print(json.dumps(buckets[-1]), flush=True)
        phases[phase].extend(latencies)
        phase_causes[phase].extend(why)
        return latencies

    try:
        store, _ = await day_store(folder, args.purge_reads, rng)
        for _ in range(round(args.before_s / BUCKET_S)):
            await bucket("before")
        started = time.perf_counter()
        if args.control_s:
            # The control: the same store and ingest for as long, with no purge.
            while time.perf_counter() - started < args.control_s:
                await bucket("purge")
        else:
            task = asyncio.create_task(purge_day(day_purger(store), DAY0, today))
            while not task.done():
                await bucket("purge")
            task.result()
        purge_s = time.perf_counter() - started
        after: list[list[float]] = []
        for _ in range(round(args.after_s / BUCKET_S)):
            after.append(await bucket("after"))
        await store.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    per_minute = round(60 / BUCKET_S)
    first = [x for b in after[:per_minute] for x in b]
    last = [x for b in after[-per_minute:] for x in b]
    return {
        "day_reads": args.purge_reads,
        "ingest_rate_per_s": args.rate,
        "purge_s": round(purge_s, 1),
        "control": bool(args.control_s),
        "buckets": buckets,
        "p99_ms": {name: round(pct(values, 0.99), 2) for name, values in phases.items()},
        # the same without the writes that waited beside a tail pass
        "p99_no_tail_ms": {
            name: round(pct([x for x, c in zip(values, phase_causes[name], strict=True)
                             if c != "tail_pass"], 0.99), 2)
            for name, values in phases.items()
        },
        # of each phase's slowest 1 %, the share beside each of CAUSES; and of all its writes
        "slowest_beside": {
            name: shares_beside(values, phase_causes[name]) for name, values in phases.items()
        },
        "all_beside": {
            name: shares_beside(values, phase_causes[name], 0.0)
            for name, values in phases.items()
        },
        # the median write beside each of CAUSES
        "p50_beside_ms": {
            name: {
                c: round(pct([x for x, w in zip(values, phase_causes[name], strict=True)
                              if w == c], 0.5), 2)
                for c in CAUSES
            }
            for name, values in phases.items()
        },
        "after_first_minute_p99_ms": round(pct(first, 0.99), 2),
        "after_last_minute_p99_ms": round(pct(last, 0.99), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--purge-reads", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=400.0)
    parser.add_argument("--before-s", type=float, default=120.0)
    parser.add_argument("--after-s", type=float, default=180.0)
    parser.add_argument(
        "--control-s", type=float, default=0.0,
        help="no purge: ingest this long in its place (a control for a purge run's length)",
    )
    parser.add_argument("--dir", type=Path, help="where to write (default: a temporary dir)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = {"machine": storage.machine(args.dir or Path(tempfile.gettempdir()))}
    result["purge_after"] = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        summary = {k: v for k, v in result["purge_after"].items() if k != "buckets"}
        print(json.dumps({"machine": result["machine"], "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
