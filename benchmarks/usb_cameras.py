"""USB camera read loop: CPU per frame for MJPEG at 720p and 1080p, fed by ffmpeg through a FIFO.

A UVC camera in MJPEG mode hands the host one JPEG per frame; the host's cost is finding the
frame in the byte stream and decoding it. Here ffmpeg plays the camera: it encodes a moving test
pattern to MJPEG (quality like a webcam's, ``-q:v 5``) into a FIFO at the given rate, and the
USB plugin's own ``MjpegPipeSource`` reads and decodes it. ffmpeg runs in its own process, so
this process's CPU time is the host's cost alone.

    python benchmarks/usb_cameras.py [--frames N] [--replugs N] [--outage S] [--json]

Prints, per resolution: frames read, CPU ms per frame (parse + decode, process CPU time), wall
frames per second and torn frames skipped; and the same through the camera's async read loop
(``UsbCamera.frames()``, a worker thread per read) to show its overhead.

Then unplug and replug, under the host's camera supervisor (its real backoff): the time from the
camera dying (ffmpeg killed, its node and by-id link removed) to the camera marked offline, and
from the camera back (on another /dev/videoN) to its first frame in the host.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
for path in (REPO_ROOT, REPO_ROOT / "plugins" / "cameras" / "usb"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from alprbox_camera_usb.plugin import UsbCamera, UsbSettings  # noqa: E402
from alprbox_camera_usb.sources import MjpegPipeSource  # noqa: E402

from appliance._metrics import Metrics  # noqa: E402
from appliance._pipeline.camera_supervisor import CameraStatus, CameraSupervisor  # noqa: E402
from appliance._pipeline.frame_queue import FrameQueue  # noqa: E402
from appliance.base import PluginContext, SystemClock  # noqa: E402

SIZES = {"720p": "1280x720", "1080p": "1920x1080"}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def start_camera(fifo: Path, size: str, frames: int) -> subprocess.Popen[bytes]:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        sys.exit("ffmpeg is not installed (apt-get install ffmpeg)")
    # No -re: the camera writes as fast as the reader takes (the FIFO blocks it), so the
    # reader's CPU is measured flat out; -frames bounds the run.
    return subprocess.Popen(
        [ffmpeg, "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
         f"testsrc2=size={size}:rate=30", "-frames:v", str(frames), "-c:v", "mjpeg",
         "-q:v", "5", "-f", "mjpeg", "-y", str(fifo)],
        stdout=subprocess.DEVNULL,
    )


def measure_source(fifo: Path, size: str, frames: int) -> dict[str, Any]:
    source = MjpegPipeSource(fifo, read_timeout=30)
    source.open()
    camera = start_camera(fifo, size, frames + 1)
    read = 0
    first_cpu = first_wall = 0.0
    try:
        source.read()  # the first frame waits for ffmpeg to start: not counted
        first_cpu, first_wall = time.process_time(), time.perf_counter()
        while read < frames:
            source.read()
            read += 1
        cpu, wall = time.process_time() - first_cpu, time.perf_counter() - first_wall
    finally:
        source.release()
        camera.kill()
        camera.wait()
    return {
        "frames": read,
        "cpu_ms_per_frame": round(cpu * 1000 / read, 2),
        "wall_fps": round(read / wall, 1),
        "torn_frames_skipped": source.corrupt,
    }


async def measure_camera(root: Path, size: str, frames: int) -> dict[str, Any]:
    """The same through UsbCamera.frames(): device lookup in a fake sysfs, a thread per read."""
    sysfs = root / "sys"
    (sysfs / "video0").mkdir(parents=True)
    (sysfs / "video0" / "name").write_text("ffmpeg MJPEG\n")
    (sysfs / "video0" / "index").write_text("0\n")
    node = root / "dev" / "video0"
    node.parent.mkdir()
    os.mkfifo(node)
    settings = UsbSettings.model_validate({
        "type": "usb", "name": "bench", "device": "video0", "capture": "mjpeg-pipe",
        "sysfs_root": str(sysfs), "by_id_dir": str(root / "none"), "dev_dir": str(node.parent),
        "read_timeout_seconds": 30,
    })
    camera = UsbCamera(settings, PluginContext(logging.getLogger("bench"), root, SystemClock()))
    await camera.open()
    process = start_camera(node, size, frames + 1)
    read = 0
    try:
        stream = camera.frames()
        await anext(stream)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        async for _ in stream:
            read += 1
            if read >= frames:
                break
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        await stream.aclose()
    finally:
        await camera.close()
        process.kill()
        process.wait()
    return {"frames": read, "cpu_ms_per_frame": round(cpu * 1000 / read, 2),
            "wall_fps": round(read / wall, 1)}


def _plug(root: Path, number: int) -> Path:
    entry = root / "sys" / f"video{number}"
    entry.mkdir(parents=True)
    (entry / "name").write_text("ffmpeg MJPEG\n")
    (entry / "index").write_text("0\n")
    by_id = root / "by-id"
    by_id.mkdir(exist_ok=True)
    (by_id / "usb-bench-video-index0").symlink_to(f"../dev/video{number}")
    node = root / "dev" / f"video{number}"
    node.parent.mkdir(exist_ok=True)
    os.mkfifo(node)
    return node


def _unplug(root: Path) -> None:
    shutil.rmtree(root / "sys")
    shutil.rmtree(root / "by-id")
    shutil.rmtree(root / "dev")


def _live_camera(node: Path) -> subprocess.Popen[bytes]:
    ffmpeg = shutil.which("ffmpeg") or "ffmpeg"
    return subprocess.Popen(
        [ffmpeg, "-nostdin", "-loglevel", "quiet", "-re", "-f", "lavfi", "-i",
         "testsrc2=size=1280x720:rate=15", "-c:v", "mjpeg", "-q:v", "5", "-f", "mjpeg", "-y",
         str(node)],
        stdout=subprocess.DEVNULL,
    )


async def _wait(check: Any, limit: float = 120.0) -> float:
    start = time.perf_counter()
    while not check():
        if time.perf_counter() - start > limit:
            raise TimeoutError("no change within the limit")
        await asyncio.sleep(0.005)
    return time.perf_counter() - start


async def measure_replug(root: Path, rounds: int, outage: float) -> list[dict[str, float]]:
    """Unplug/replug under the real supervisor (backoff 1 s doubling, jitter 20 %)."""
    settings = UsbSettings.model_validate({
        "type": "usb", "name": "bench", "device": "usb-bench-video-index0",
        "capture": "mjpeg-pipe", "sysfs_root": str(root / "sys"),
        "by_id_dir": str(root / "by-id"), "dev_dir": str(root / "dev"),
    })
    camera = UsbCamera(settings, PluginContext(logging.getLogger("bench"), root, SystemClock()))
    status = CameraStatus("bench", "usb")
    queue = FrameQueue(4)
    supervisor = CameraSupervisor(camera, queue, status, Metrics(), SystemClock())
    process = _live_camera(_plug(root, 0))
    task = asyncio.create_task(supervisor.run())
    results = []
    try:
        await _wait(lambda: status.state == "running" and status.frames > 15)
        for n in range(rounds):
            process.kill()
            process.wait()
            _unplug(root)
            detect = await _wait(lambda: status.state == "reconnecting")
            await asyncio.sleep(outage)
            before = status.frames
            process = _live_camera(_plug(root, 2 * (n + 1)))
            recover = await _wait(lambda b=before: status.frames > b)
            await _wait(lambda b=before: status.frames > b + 15)
            results.append({"detect_s": round(detect, 3), "recover_s": round(recover, 2)})
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        process.kill()
        process.wait()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--replugs", type=int, default=3)
    parser.add_argument("--outage", type=float, default=2.0, help="seconds unplugged")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(),
                    "python": platform.python_version()},
        "usb_mjpeg_fifo": {},
    }
    for label, size in SIZES.items():
        with tempfile.TemporaryDirectory(prefix="usb-bench-") as tmp:
            fifo = Path(tmp) / "video0"
            os.mkfifo(fifo)
            source = measure_source(fifo, size, args.frames)
            loop = asyncio.run(measure_camera(Path(tmp) / "cam", size, args.frames))
        results["usb_mjpeg_fifo"][label] = {"source": source, "camera_loop": loop}
    with tempfile.TemporaryDirectory(prefix="usb-replug-") as tmp:
        results["replug"] = asyncio.run(measure_replug(Path(tmp), args.replugs, args.outage))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    m = results["machine"]
    print(f"machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}")
    print("USB camera, MJPEG through an ffmpeg-fed FIFO (CPU ms per frame = parse + decode):")
    for label, r in results["usb_mjpeg_fifo"].items():
        s, c = r["source"], r["camera_loop"]
        print(f"  {label:>5}: source {s['cpu_ms_per_frame']:6.2f} ms CPU/frame "
              f"({s['wall_fps']:.0f} fps flat out, {s['torn_frames_skipped']} torn), "
              f"camera loop {c['cpu_ms_per_frame']:6.2f} ms CPU/frame ({c['wall_fps']:.0f} fps)")
    print(f"Unplug/replug at 720p15 under the host's supervisor, {args.outage:g} s unplugged:")
    for i, r in enumerate(results["replug"], 1):
        print(f"  #{i}: offline after {r['detect_s'] * 1000:.0f} ms; first frame "
              f"{r['recover_s']:.2f} s after the camera was back")


if __name__ == "__main__":
    main()
