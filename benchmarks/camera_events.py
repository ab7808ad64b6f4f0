"""What a camera's own motion events save: detector runs per 100 frames, by gate.

    python benchmarks/camera_events.py [--frames N] [--json]

Through the real appliance: the ONVIF camera against the test kit's ONVIF responder, video from
the RTSP rig looping the bundled clip of real cars (cars move in most of it, so the pixel gate
admits often). The recognizer is the test kit's fake (it costs nothing), so what is reported is
how often the detector would have run; multiply by the detector's cost on the box (platedet
~310 ms on 2 cores, NOTES.md) for the CPU. Three runs of ``--frames`` frames each:

- ``events: quiet`` — the camera announces "no motion" and says nothing more (an empty road);
- ``pixel gate`` — the same camera with ``pipeline.camera_events: false``;
- ``events: motion`` — the camera says motion all along (a busy road): the detector runs at
  ``max_detect_fps`` whatever the pixels do.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from appliance import SystemClock  # noqa: E402
from appliance.testing_rigs import RtspServer, default_clip, rtsp_rig_missing  # noqa: E402

PASSWORD = "bench-password"
MODES = {
    "events: quiet": (False, True),
    "pixel gate": (False, False),
    "events: motion": (True, True),
}


async def run_mode(
    work: Path, server: RtspServer, frames: int, initial: bool, use_events: bool
) -> dict[str, Any]:
    from alprbox_camera_onvif import plugin

    from appliance.testing import make_appliance
    from appliance.testing_onvif import OnvifDevice

    async with OnvifDevice(
        stream_uri=server.url, password=PASSWORD, initial_motion=initial
    ) as device:
        config = {
            "recognition": {"type": "fake", "plate": "ABC123"},
            "cameras": [{
                "type": "onvif", "name": "bench", "host": "127.0.0.1", "port": device.port,
                "password": "env:BENCH_ONVIF_PASSWORD",
            }],
            "pipeline": {"camera_events": use_events},
        }
        async with make_appliance(
            work / f"box-{initial}-{use_events}", plugins=[plugin], config=config,
            clock=SystemClock(),
        ) as box:
            status = box.cameras["bench"]

            def value(metric: str) -> float:
                got = box.metrics.registry.get_sample_value(metric, {"camera": "bench"})
                return got or 0.0

            # Start counting once the camera's first word has arrived (or after a few frames).
            await until(lambda: status.frames >= 10)
            start = {
                "frames": status.frames,
                "runs": value("alprbox_detector_runs_total"),
                "skipped": value("alprbox_frames_event_skipped_total"),
                "gated": value("alprbox_frames_gated_total"),
            }
            cpu = time.process_time()
            await until(lambda: status.frames >= start["frames"] + frames, limit=600)
            cpu = time.process_time() - cpu
            counted = status.frames - start["frames"]
            runs = value("alprbox_detector_runs_total") - start["runs"]
            return {
                "frames": counted,
                "detector_runs": int(runs),
                "detector_runs_per_100_frames": round(100 * runs / counted, 1),
                "event_skipped": int(value("alprbox_frames_event_skipped_total")
                                     - start["skipped"]),
                "pixel_gated": int(value("alprbox_frames_gated_total") - start["gated"]),
                "process_cpu_ms_per_frame": round(1000 * cpu / counted, 2),
            }


async def until(condition: Any, limit: float = 120.0) -> None:
    async with asyncio.timeout(limit):
        while not condition():  # noqa: ASYNC110 - the host's status has no event to await
            await asyncio.sleep(0.02)


async def main_async(frames: int) -> dict[str, Any]:
    if (reason := rtsp_rig_missing()) is not None:
        return {"skipped": reason}
    os.environ["BENCH_ONVIF_PASSWORD"] = PASSWORD
    with tempfile.TemporaryDirectory(prefix="alprbox-bench-events-") as tmp:
        work = Path(tmp)
        server = RtspServer(default_clip(work))
        server.start()
        try:
            return {
                mode: await run_mode(work, server, frames, initial, use_events)
                for mode, (initial, use_events) in MODES.items()
            }
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200, help="frames counted per mode")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    result = asyncio.run(main_async(args.frames))
    if args.json or "skipped" in result:
        print(json.dumps(result, indent=2))
        return
    print(f"{'gate':16} {'frames':>7} {'detector runs':>14} {'per 100':>8} {'event-skipped':>14} "
          f"{'pixel-gated':>12} {'CPU ms/frame':>13}")
    for mode, row in result.items():
        print(f"{mode:16} {row['frames']:>7} {row['detector_runs']:>14} "
              f"{row['detector_runs_per_100_frames']:>8} {row['event_skipped']:>14} "
              f"{row['pixel_gated']:>12} {row['process_cpu_ms_per_frame']:>13}")


if __name__ == "__main__":
    main()
