"""Network cameras on this machine: decode cost, dead-stream detection, recovery, frames lost.

    python benchmarks/cameras.py [--seconds N] [--rounds N] [--json]

1. CPU per frame to decode H.264 at 720p and 1080p through the host's capture helper
   (``appliance.capture.StreamCapture``), from a file and over RTSP from the test rig
   (gst-rtsp-server on loopback, TCP). Clips are made with ffmpeg (libx264 test pattern), plus
   the bundled demo clip of real cars. CPU is process time (all threads) per decoded frame.
2. Through the real appliance (camera supervisor, ONVIF camera against the test kit's ONVIF
   responder, RTSP rig): the RTSP server is killed, left down ``--down`` seconds and restarted,
   ``--rounds`` times. Reported: time from the kill until the host marks the camera offline,
   time from the restart until frames arrive again, and frames lost across the reconnect (the
   gap between the last frame before and the first after, at the stream's rate, minus what the
   server could not send while it was down). Then the server is frozen (SIGSTOP: a hung camera
   whose sockets stay open) until the host notices, and thawed: detection and recovery times.

Camera plugins that read other sources can add a row to ``decode_rows`` (USB, trailer).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from appliance import SystemClock  # noqa: E402
from appliance.capture import StreamCapture  # noqa: E402
from appliance.testing_rigs import (  # noqa: E402
    RtspServer,
    default_clip,
    make_h264_clip,
    rtsp_rig_missing,
)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    import cv2

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "opencv": cv2.__version__,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


async def decode_cost(source: str | Path, frames: int | None) -> dict[str, Any]:
    """Process CPU ms per decoded frame through StreamCapture (all frames of a file, or
    ``frames`` of a stream), after the first frame (opening is not per-frame cost)."""
    capture = StreamCapture(source, buffer=64)
    info = await capture.open()
    count = 0
    started_cpu = started_wall = 0.0
    try:
        async for _ in capture.frames():
            count += 1
            if count == 1:
                started_cpu, started_wall = time.process_time(), time.perf_counter()
            if frames is not None and count > frames:
                break
    finally:
        await capture.close()
    measured = max(1, count - 1)
    return {
        "size": f"{info.width}x{info.height}",
        "frames": measured,
        "cpu_ms_per_frame": round((time.process_time() - started_cpu) * 1000 / measured, 2),
        # for a stream this is the server's pace (plus its first burst), not decode speed
        "wall_fps": round(measured / max(1e-9, time.perf_counter() - started_wall), 1),
        "decode_errors": capture.decode_errors,
        "dropped": capture.dropped,
    }


async def decode_rows(work: Path, seconds: int) -> list[dict[str, Any]]:
    clips = {
        "720p test pattern": make_h264_clip(
            work / "720p.mp4", width=1280, height=720, fps=15, seconds=seconds
        ),
        "1080p test pattern": make_h264_clip(
            work / "1080p.mp4", width=1920, height=1080, fps=15, seconds=seconds
        ),
        "720p demo clip (real cars)": default_clip(work),
    }
    rows = []
    for name, clip in clips.items():
        rows.append({"source": f"file: {name}", **await decode_cost(clip, None)})
    if (reason := rtsp_rig_missing()) is not None:
        rows.append({"source": "rtsp", "skipped": reason})
        return rows
    for name, clip in clips.items():
        server = RtspServer(clip)
        server.start()
        try:
            rows.append({"source": f"rtsp: {name}", **await decode_cost(server.url, seconds * 10)})
        finally:
            server.stop()
    return rows


async def reconnect_rounds(work: Path, rounds: int, down: float) -> dict[str, Any]:
    if (reason := rtsp_rig_missing()) is not None:
        return {"skipped": reason}
    from alprbox_camera_onvif import plugin

    from appliance.testing import make_appliance
    from appliance.testing_onvif import OnvifDevice

    os.environ["BENCH_ONVIF_PASSWORD"] = "bench-password"
    server = RtspServer(default_clip(work))
    server.start()
    detect, recover, lost, gaps = [], [], [], []
    frozen_detect: list[float] = []
    frozen_recover: list[float] = []
    try:
        async with OnvifDevice(stream_uri=server.url, password="bench-password") as device:
            config = {
                "recognition": {"type": "fake"},
                "cameras": [
                    {
                        "type": "onvif",
                        "name": "bench",
                        "host": "127.0.0.1",
                        "port": device.port,
                        "password": "env:BENCH_ONVIF_PASSWORD",
                        "read_timeout": 2,
                        "open_timeout": 3,
                        "events": False,
                    }
                ],
            }
            async with make_appliance(
                work / "box", plugins=[plugin], config=config, clock=SystemClock()
            ) as box:
                status = box.cameras["bench"]
                await until(lambda: status.state == "running" and status.frames > 20)
                for _ in range(rounds):
                    await asyncio.sleep(2)
                    killed = time.perf_counter()
                    server.kill()
                    await until(lambda: status.state == "reconnecting")
                    detect.append(time.perf_counter() - killed)
                    # Frames already decoded before the kill may still trickle in: count from
                    # the moment the host gave up on the stream.
                    frames_before = status.frames
                    last_before = status.last_frame_at
                    await asyncio.sleep(max(0.0, down - (time.perf_counter() - killed)))
                    server.start()
                    restarted = time.perf_counter()
                    await until(lambda f=frames_before: status.frames > f)
                    recover.append(time.perf_counter() - restarted)
                    assert last_before is not None
                    gap = (datetime.now(UTC) - last_before).total_seconds()
                    gaps.append(gap)
                    # 10 fps demo clip: frames the host missed beyond those the server never
                    # sent while it was down.
                    lost.append(max(0.0, (gap - (restarted - killed)) * 10))
                    await until(lambda: status.state == "running")
                for _ in range(rounds):
                    # A hung camera: the process stops but its sockets stay open, so nothing
                    # tells the client; only read timeouts and the watchdog can notice.
                    await asyncio.sleep(2)
                    frozen = time.perf_counter()
                    server.freeze()
                    await until(lambda: status.state == "reconnecting")
                    frozen_detect.append(time.perf_counter() - frozen)
                    frames_before = status.frames
                    server.thaw()
                    thawed = time.perf_counter()
                    await until(lambda f=frames_before: status.frames > f)
                    frozen_recover.append(time.perf_counter() - thawed)
                    await until(lambda: status.state == "running")
    finally:
        server.stop()
    return {
        "rounds": rounds,
        "server_down_s": down,
        "detect_dead_s": summary(detect),
        "recover_after_restart_s": summary(recover),
        "gap_s": summary(gaps),
        "frames_lost_beyond_outage": summary(lost),
        "frozen_detect_s": summary(frozen_detect),
        "frozen_recover_after_thaw_s": summary(frozen_recover),
        "read_timeout_s": 2,
        "note": "recovery includes the supervisor's backoff (1 s doubling, jitter)",
    }


def summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "median": round(statistics.median(values), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
    }


async def until(condition: Any, limit: float = 120.0) -> None:
    async with asyncio.timeout(limit):
        while not condition():  # noqa: ASYNC110 - the host's status has no event to await
            await asyncio.sleep(0.02)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="alprbox-bench-cameras-") as tmp:
        work = Path(tmp)
        return {
            "machine": machine(),
            "decode": await decode_rows(work, args.seconds),
            "reconnect": await reconnect_rounds(work, args.rounds, args.down),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="length of the test clips")
    parser.add_argument("--rounds", type=int, default=3, help="kill/restart rounds")
    parser.add_argument("--down", type=float, default=3.0, help="seconds the server stays down")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    result = asyncio.run(main_async(args))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    m = result["machine"]
    print(f"machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, OpenCV {m['opencv']}")
    print(f"load average (1 min) at start: {m['load_average_1m']}")
    print("\ndecode through appliance.capture.StreamCapture (process CPU per frame):")
    for row in result["decode"]:
        if "skipped" in row:
            print(f"  {row['source']}: skipped ({row['skipped']})")
            continue
        print(
            f"  {row['source']:<34} {row['size']:>9}  {row['cpu_ms_per_frame']:6.2f} ms/frame  "
            f"{row['wall_fps']:7.1f} fps  ({row['frames']} frames, "
            f"{row['decode_errors']} decode errors, {row['dropped']} dropped)"
        )
    r = result["reconnect"]
    print("\nRTSP server killed and restarted under the running appliance (ONVIF camera):")
    if "skipped" in r:
        print(f"  skipped ({r['skipped']})")
        return
    print(f"  rounds: {r['rounds']}, server down {r['server_down_s']} s each")
    keys = (
        "detect_dead_s",
        "recover_after_restart_s",
        "gap_s",
        "frames_lost_beyond_outage",
        "frozen_detect_s",
        "frozen_recover_after_thaw_s",
    )
    for key in keys:
        s = r[key]
        print(f"  {key:<28} median {s['median']:>6}  min {s['min']:>6}  max {s['max']:>6}")
    print(f"  ({r['note']})")


if __name__ == "__main__":
    main()
