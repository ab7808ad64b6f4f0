"""What the exporter outbox costs, and that a dead destination does not slow plate reading.

    python benchmarks/outbox.py [--deliveries N] [--reads N] [--json]

1. Queue N deliveries (one read each, encrypted into the outbox, each an audited event), then
   deliver them (the gate asked again, the exporter called, the row marked, the delivery
   audited): deliveries per second both ways.
2. Store the same number of reads with no exporter busy, then again while an exporter's worker
   keeps timing out against a destination that never answers: the ingest time ratio should be
   near 1 (the worker only shares the event loop and the single writer).

Wall-clock figures depend on the machine and its load; compare the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance._sharing.authority import Authorization
from appliance._sharing.outbox import Outbox
from appliance.base import Delivery, Recipient
from appliance.models import PlateRead
from appliance.testing import RecordingExporter, make_appliance

AUTH = Authorization("bench", "export", Recipient("Oakland Police Department", "CA0010900"),
                     "stolen vehicle", "26-000001", "benchmark")
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Approves:
    async def authorize_delivery(self, approval_id: str, *, exporter: str, channel: str,
                                 actor: str) -> Authorization:
        return AUTH


class NeverAnswers(RecordingExporter):
    async def deliver(self, delivery: Delivery) -> None:
        await asyncio.Event().wait()


def read(i: int) -> PlateRead:
    at = T0 + timedelta(seconds=i)
    return PlateRead(camera="bench", text=f"{i:07d}", confidence=0.9, first_seen=at,
                     last_seen=at, box=(1, 2, 3, 4), crop_jpeg=b"\xff\xd8" + bytes(2000))


async def ingest(box: Any, start: int, count: int) -> list[float]:
    """Store reads one at a time, as the pipeline does; each latency until committed."""
    latencies = []
    for i in range(count):
        began = time.perf_counter()
        await box.store.add_read(read(start + i))
        latencies.append(time.perf_counter() - began)
    return latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)


async def run(deliveries: int, reads: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        config = {"exporters": [{"type": "recording", "name": "bench",
                                 "max_pending": deliveries + 1}]}
        async with make_appliance(Path(tmp) / "box", config=config) as box:
            assert box.sharing is not None
            outbox = box.sharing.outbox
            outbox.authority = Approves()
            began = time.perf_counter()
            for i in range(deliveries):
                await outbox.enqueue(AUTH, "bench", {"kind": "reads", "reads": [
                    {"read_id": f"r{i}", "plate": f"{i:07d}"}]}, actor="bench")
            queued = time.perf_counter() - began
            began = time.perf_counter()
            await outbox.deliver_due("bench")
            delivered = time.perf_counter() - began
            assert len(RecordingExporter.delivered["bench"]) == deliveries

            idle = await ingest(box, 0, reads)
            settings = box.config.exporters[0].model_copy(update={"timeout_seconds": 0.02})
            stuck = Outbox(box.store, box.clock, Approves(), {
                "bench": (NeverAnswers(settings, box.context("exporters", "bench")), settings)})
            for i in range(200):  # 200 attempts x 20 ms timeouts: failing throughout
                await stuck.enqueue(AUTH, "bench", {"kind": "note", "n": i}, actor="bench")
            await stuck.start()
            try:
                busy = await ingest(box, reads, reads)
            finally:
                await stuck.stop()
            failures = stuck.metrics.failures.labels("bench")._value.get()
    return {
        "deliveries": deliveries,
        "queued_per_s": round(deliveries / queued, 1),
        "delivered_per_s": round(deliveries / delivered, 1),
        "reads": reads,
        "ingest_idle_p50_ms": pct(idle, 0.5),
        "ingest_idle_p99_ms": pct(idle, 0.99),
        "ingest_failing_exporter_p50_ms": pct(busy, 0.5),
        "ingest_failing_exporter_p99_ms": pct(busy, 0.99),
        "ingest_total_ratio": round(sum(busy) / sum(idle), 2),
        "failed_attempts_during_ingest": int(failures),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deliveries", type=int, default=500)
    parser.add_argument("--reads", type=int, default=1000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(run(args.deliveries, args.reads))
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:34} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
