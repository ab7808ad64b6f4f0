"""What a policy gate decision costs, with a long audit trail behind it.

    python benchmarks/policy_gate.py [--events N] [--decisions N] [--json]

Fills a fresh store's audit trail with N events, then times gate decisions (each evaluates the
request, checks the audit chain and appends its own audited event): the first one verifies the
whole chain; the next ones verify only what was appended since (incremental). Also times a full
verification alone and the denylist matching alone. Wall-clock figures depend on the machine
and its load; compare the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance._config import RootConfig
from appliance._crypto import FieldCipher, load_or_create_key
from appliance._policy import denylist
from appliance._policy.gate import PolicyGate, ShareRequest
from appliance._storage import Store
from appliance._storage.audit import verify_audit
from appliance.testing import FakeClock

SHARING = {"enabled": True, "agencies": [{
    "name": "Oakland Police Department", "ori": "CA0010900", "kind": "city police",
    "email_domains": ["oaklandca.gov"], "approved_by": "Lt. M. Ortiz",
    "approved_on": "2026-01-01", "expires": "2026-12-31",
}]}
LEGIT = ShareRequest(agency="Oakland Police Department", ori="CA0010900", person="Sgt. A",
                     email="a@oaklandca.gov", purpose="stolen vehicle", case_number="26-004417")
TRICKY = ("U.S. Imm1gration & Cust0ms Enf0rcement", "Alameda County Sheriff's Office",
          "I\u200bC\u200bE ERO liaison", "Governor's Office of Emergency Services")


async def run(events: int, decisions: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        store = await Store.open(data / "alprbox.db",
                                 FieldCipher(load_or_create_key(data / "master.key")))
        try:
            for i in range(events):
                await store.record_event("bench.filler", "bench", {"i": i})
            clock = FakeClock(datetime(2026, 5, 1, tzinfo=UTC))
            gate = PolicyGate(store, RootConfig.model_validate({"sharing": SHARING}), clock)
            start = time.perf_counter()
            first = await gate.check(LEGIT, "bench")
            first_s = time.perf_counter() - start
            assert first.allowed, first.reasons
            times = []
            for _ in range(decisions):
                start = time.perf_counter()
                decision = await gate.check(LEGIT, "bench")
                times.append(time.perf_counter() - start)
                assert decision.allowed
            start = time.perf_counter()
            report = await verify_audit(store)
            full_s = time.perf_counter() - start
            assert report.intact
            start = time.perf_counter()
            rounds = 2000
            for _ in range(rounds):
                for name in TRICKY:
                    denylist.match_text(name, "agency")
            match_us = (time.perf_counter() - start) / (rounds * len(TRICKY)) * 1e6
        finally:
            await store.close()
    return {
        "events": events,
        "first_decision_ms": first_s * 1000,
        "decision_p50_ms": statistics.median(times) * 1000,
        "decision_p99_ms": sorted(times)[int(len(times) * 0.99) - 1] * 1000,
        "full_verification_ms": full_s * 1000,
        "full_verifications": gate.chain.full_runs,
        "denylist_match_us": match_us,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--decisions", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(run(args.events, args.decisions))
    if args.json:
        print(json.dumps(result))
        return
    print(f"audit trail: {result['events']} events before the first decision")
    print(f"first decision (full chain verification): {result['first_decision_ms']:.1f} ms")
    print(f"later decisions (incremental): p50 {result['decision_p50_ms']:.2f} ms, "
          f"p99 {result['decision_p99_ms']:.2f} ms")
    print(f"one full verification alone: {result['full_verification_ms']:.1f} ms; full "
          f"verifications during the run: {result['full_verifications']}")
    print(f"denylist match of one agency name: {result['denylist_match_us']:.1f} us")


if __name__ == "__main__":
    main()
