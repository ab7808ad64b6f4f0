"""What a camera with no vehicle in view costs: an empty 1080p 15 fps street through the host path.

    python benchmarks/idle_gate.py [--seconds 60] [--fps 15] [--no-car] [--json]

It renders a synthetic empty street (1920×1080: buildings, road, a tree waving in the wind and
its shadow moving on the pavement, sensor noise, a slow illumination drift like passing cloud)
and encodes it as H.264 with ffmpeg (libx264, main profile, 4 Mbit/s, a key frame every 2 s),
into a temporary folder it deletes afterwards. After the empty street, unless ``--no-car``, a
car (a real photo from tests/data, plate readable) drives through for 3 s, to show the gate
still lets a vehicle in.

Then it plays the clip in real time through what the box runs for a camera: a capture thread
decodes it with OpenCV/FFmpeg (as the replay/RTSP cameras do) and hands each frame to the
camera's drop-oldest :class:`FrameQueue`; the real :class:`RecognitionWorker` takes it through
the real :class:`FrameGate`, the real recognizer (default settings, loaded as the box loads it)
and the tracker. CPU is process CPU time (every thread, onnxruntime's included), not wall time:

- **decode**: the capture thread's own CPU time (FFmpeg is opened with one decoder thread,
  ``CAP_PROP_N_THREADS=1``, so its time is all there). Any reader of the stream pays it.
- **gate + recognition**: the rest of the process, i.e. what the box adds to the decode.

Both are reported over the empty-street part only (after a 2 s warm-up: the gate admits the
very first frame, and the first detector call allocates), as % of one core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from _common import REPO_ROOT, cpu_model

from appliance._config import PipelineSettings
from appliance._metrics import Metrics
from appliance._pipeline.frame_queue import FrameQueue
from appliance._pipeline.gate import FrameGate
from appliance._pipeline.recognition_worker import RecognitionWorker
from appliance._pipeline.tracker import PlateTracker
from appliance._recognition.plugin import PlatedetRecognizer, PlatedetSettings
from appliance.base import PluginContext, SystemClock
from appliance.models import Frame, PlateRead

WIDTH, HEIGHT = 1920, 1080
WARMUP_SECONDS = 2.0
CAR_SECONDS = 3.0
CAR_PHOTO = REPO_ROOT / "tests" / "data" / "car13.jpg"
#: the part of car13.jpg with the car's rear and its plate (x1, y1, x2, y2)
CAR_REGION = (420, 230, 1220, 820)
T0 = datetime(2024, 6, 1, 12, tzinfo=UTC)


class StreetScene:
    """Renders frame ``i`` of the empty street (and, when asked, a car driving through)."""

    def __init__(self, fps: float, seed: int = 3) -> None:
        self.fps = fps
        rng = np.random.default_rng(seed)
        self.base = self._background(rng)
        # The tree: a leaf texture larger than its crown, shifted by the wind each frame.
        self.crown = (1320, 90, 1760, 560)  # x1, y1, x2, y2
        cw, ch = self.crown[2] - self.crown[0], self.crown[3] - self.crown[1]
        leaves = rng.integers(0, 255, (ch // 6 + 8, cw // 6 + 8), dtype=np.uint8)
        leaves = cv2.resize(leaves, (cw + 48, ch + 48), interpolation=cv2.INTER_CUBIC)
        green = np.stack([leaves // 5 + 20, leaves // 2 + 60, leaves // 6 + 25], axis=2)
        self.leaves = green.astype(np.uint8)
        mask = np.zeros((ch, cw), np.uint8)
        cv2.ellipse(mask, (cw // 2, ch // 2), (cw // 2, ch // 2), 0, 0, 360, 255, -1)
        self.crown_mask = mask.astype(bool)
        # Sensor noise: a bank of frames (σ ≈ 3 grey levels) split into + and − parts.
        self.noise = []
        for _ in range(6):
            n = rng.normal(0, 3, (HEIGHT, WIDTH, 1)).astype(np.int16)
            n = np.repeat(n, 3, axis=2)
            self.noise.append(
                (np.clip(n, 0, 255).astype(np.uint8), np.clip(-n, 0, 255).astype(np.uint8))
            )
        car = cv2.imread(str(CAR_PHOTO))
        if car is None:
            raise SystemExit(f"cannot read {CAR_PHOTO}")
        x1, y1, x2, y2 = CAR_REGION
        self.car = np.ascontiguousarray(car[y1:y2, x1:x2])

    @staticmethod
    def _background(rng: np.random.Generator) -> np.ndarray:
        img = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
        sky = np.linspace(235, 170, 380, dtype=np.float32)[:, None]
        img[:380] = np.stack([sky + 10, sky - 5, sky - 40], axis=2).astype(np.uint8)
        for x in range(0, WIDTH, 240):  # buildings with windows
            top = int(rng.integers(120, 300))
            colour = rng.integers(90, 200, 3)
            img[top:560, x : x + 230] = colour
            for wy in range(top + 20, 540, 45):
                for wx in range(x + 15, x + 215, 40):
                    img[wy : wy + 25, wx : wx + 22] = rng.integers(30, 90)
        img[560:640] = (150, 155, 160)  # pavement
        road = rng.normal(95, 6, (440, WIDTH)).astype(np.uint8)
        img[640:] = road[:, :, None]
        for x in range(0, WIDTH, 200):  # lane dashes
            img[850:866, x : x + 110] = (230, 230, 230)
        return img

    def wind(self, t: float) -> tuple[int, int]:
        return (
            round(9 * np.sin(2 * np.pi * t / 1.3) + 4 * np.sin(2 * np.pi * t / 0.55)),
            round(3 * np.sin(2 * np.pi * t / 0.9)),
        )

    def frame(self, i: int, car_start: float | None) -> np.ndarray:
        t = i / self.fps
        img = self.base.copy()
        dx, dy = self.wind(t)
        # The crown sways as a whole and its leaves shift inside it.
        x1, y1, x2, y2 = self.crown
        window = self.leaves[24 + dy : 24 + dy + (y2 - y1), 24 - dx : 24 - dx + (x2 - x1)]
        crown = img[y1 + dy : y2 + dy, x1 + dx : x2 + dx]
        crown[self.crown_mask] = window[self.crown_mask]
        img[560:700, 1520:1560] = (60, 55, 50)  # trunk
        # The crown's shadow on the pavement and road moves with the wind.
        shadow = np.zeros((200, 700), np.uint8)
        cv2.ellipse(shadow, (350 + 3 * dx, 100 + dy), (260, 55), 0, 0, 360, 255, -1)
        region = img[600:800, 1200:1900]
        darker = (region * 0.7).astype(np.uint8)
        np.copyto(region, darker, where=shadow[:, :, None].astype(bool))
        if car_start is not None and t >= car_start:
            self._paste_car(img, (t - car_start) / CAR_SECONDS)
        # Slow illumination drift (a passing cloud: ±6 % over ~45 s), then sensor noise.
        gain = 1 + 0.06 * np.sin(2 * np.pi * t / 45)
        img = cv2.convertScaleAbs(img, alpha=gain)
        plus, minus = self.noise[i % len(self.noise)]
        return cv2.subtract(cv2.add(img, plus), minus)

    def _paste_car(self, img: np.ndarray, progress: float) -> None:
        """The car drives from the right edge to the left across the road."""
        h, w = self.car.shape[:2]
        x = round(WIDTH - progress * (WIDTH + w))
        y = HEIGHT - h - 20
        left, right = max(0, x), min(WIDTH, x + w)
        if right > left:
            img[y : y + h, left:right] = self.car[:, left - x : right - x]


def render(path: Path, seconds: float, fps: float, car: bool) -> int:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        try:
            import imageio_ffmpeg

            ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
        except ImportError as err:
            raise SystemExit("needs ffmpeg (apt-get install ffmpeg) to encode the clip") from err
    scene = StreetScene(fps)
    car_start = seconds if car else None
    frames = round((seconds + (CAR_SECONDS + 1 if car else 0)) * fps)
    encoder = subprocess.Popen(
        [ffmpeg, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "bgr24",
         "-s", f"{WIDTH}x{HEIGHT}", "-r", str(fps), "-i", "-", "-c:v", "libx264",
         "-preset", "veryfast", "-profile:v", "main", "-pix_fmt", "yuv420p", "-b:v", "4M",
         "-g", str(round(2 * fps)), str(path)],
        stdin=subprocess.PIPE,
    )  # fmt: skip
    assert encoder.stdin is not None
    for i in range(frames):
        encoder.stdin.write(scene.frame(i, car_start).tobytes())
    encoder.stdin.close()
    if encoder.wait() != 0:
        raise SystemExit("ffmpeg could not encode the clip")
    return frames


class Capture(threading.Thread):
    """Decodes the clip in real time in its own thread and hands frames to the loop."""

    def __init__(self, clip: Path, fps: float, loop: asyncio.AbstractEventLoop, queue: FrameQueue,
                 marks: dict[str, float], runs: Callable[[], float]) -> None:  # fmt: skip
        super().__init__(name="capture", daemon=True)
        self.clip, self.fps, self.loop, self.queue = clip, fps, loop, queue
        self.marks = marks  # name → clip time at which to take a snapshot
        self.runs = runs  # detector runs so far
        #: name → (process CPU, this thread's CPU, detector runs)
        self.snapshots: dict[str, tuple[float, float, float]] = {}
        self.frames = 0

    def run(self) -> None:
        # One decoder thread: FFmpeg then decodes inside read(), so this thread's CPU time is
        # the whole decode (with its default threads, most of it lands in FFmpeg's workers).
        capture = cv2.VideoCapture(str(self.clip), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])
        if not capture.isOpened():
            raise SystemExit(f"cannot open {self.clip}")
        started = time.monotonic()
        try:
            while True:
                t = self.frames / self.fps
                for name, at in self.marks.items():
                    if name not in self.snapshots and t >= at:
                        self.snapshots[name] = self._snapshot()
                delay = started + t - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                ok, image = capture.read()
                if not ok:
                    break
                frame = Frame(image, T0 + timedelta(seconds=t), "street", self.frames)
                self.loop.call_soon_threadsafe(self.queue.put, frame)
                self.frames += 1
        finally:
            self.snapshots["end"] = self._snapshot()
            capture.release()
            self.loop.call_soon_threadsafe(self.queue.close)

    def _snapshot(self) -> tuple[float, float, float]:
        return time.process_time(), time.thread_time(), self.runs()


async def play(clip: Path, fps: float, idle_seconds: float, threads: int) -> dict[str, Any]:
    settings = PipelineSettings()
    recognizer = PlatedetRecognizer(
        PlatedetSettings(threads=threads),
        PluginContext(logging.getLogger("benchmark"), Path(tempfile.gettempdir()), SystemClock()),
    )
    recognizer.load()
    metrics = Metrics()
    queue = FrameQueue(4)
    reads: list[PlateRead] = []

    async def sink(read: PlateRead) -> None:
        reads.append(read)

    gate = FrameGate(settings)
    worker = RecognitionWorker(
        "street", queue, gate,
        PlateTracker("street", settings.track_timeout_seconds, settings.min_read_confidence),
        recognizer, ThreadPoolExecutor(1, thread_name_prefix="inference"), sink, metrics,
        SystemClock(),
    )  # fmt: skip

    def runs() -> float:
        value = metrics.registry.get_sample_value(
            "alprbox_detector_runs_total", {"camera": "street"}
        )
        return value or 0.0

    marks = {"warm": WARMUP_SECONDS, "idle_end": idle_seconds}
    capture = Capture(clip, fps, asyncio.get_running_loop(), queue, marks, runs)
    wall = time.monotonic()
    capture.start()
    await worker.run()
    wall = time.monotonic() - wall
    (p0, c0, r0), (p1, c1, r1) = capture.snapshots["warm"], capture.snapshots["idle_end"]
    end_runs = runs()
    idle = idle_seconds - WARMUP_SECONDS
    decode, total = c1 - c0, p1 - p0
    report: dict[str, Any] = {
        "frames": capture.frames,
        "wall_seconds": round(wall, 1),
        "frames_per_second": round(capture.frames / wall, 1),
        "dropped_frames": queue.dropped,
        "idle_seconds_measured": idle,
        "idle_decode_pct_of_core": round(100 * decode / idle, 2),
        "idle_gate_recognition_pct_of_core": round(100 * (total - decode) / idle, 2),
        "idle_decode_ms_per_frame": round(1000 * decode / (idle * fps), 2),
        "idle_gate_recognition_ms_per_frame": round(1000 * (total - decode) / (idle * fps), 3),
        "idle_detector_runs": round(r1 - r0),
        "gate_admitted": gate.admitted,
        "gate_skipped": gate.skipped,
    }
    if "end" in capture.snapshots and capture.frames / fps > idle_seconds + 1:
        report["car_detector_runs"] = round(end_runs - r1)
        report["car_reads"] = [
            r.text for r in reads if r.last_seen >= T0 + timedelta(seconds=idle_seconds)
        ]
    return report


def gate_only_throughput(fps: float) -> float:
    """Frames per second the gate alone handles on still 1080p frames (no decode, no model)."""
    gate = FrameGate(PipelineSettings())
    frame = StreetScene(fps).frame(0, None)
    gate.admit(frame, 0.0, tracking=False)
    n = 3000
    start = time.process_time()
    for i in range(1, n + 1):
        gate.admit(frame, i / fps, tracking=False)
    return n / max(1e-9, time.process_time() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="empty-street seconds")
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--threads", type=int, default=2, help="detector threads")
    parser.add_argument("--no-car", action="store_true", help="no car at the end")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.seconds <= WARMUP_SECONDS + 1:
        parser.error(f"--seconds must be more than {WARMUP_SECONDS + 1}")
    logging.basicConfig(level=logging.WARNING)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="idle-gate-") as tmp:
        clip = Path(tmp) / "street.mp4"
        rendered = render(clip, args.seconds, args.fps, not args.no_car)
        report = asyncio.run(play(clip, args.fps, args.seconds, args.threads))
    report = {
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count()},
        "load_average_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "clip": f"{WIDTH}x{HEIGHT} H.264 at {args.fps:g} fps, {rendered} frames",
        "gate_only_frames_per_second": round(gate_only_throughput(args.fps)),
        **report,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    r = report
    print(
        f"machine: {r['machine']['cpu']}, {r['machine']['cores']} cores; load average (1 min) "
        f"before/after {r['load_average_before_after'][0]} / {r['load_average_before_after'][1]}"
    )
    print(
        f"clip: {r['clip']}; played in real time: {r['frames']} frames in {r['wall_seconds']} s "
        f"({r['frames_per_second']} frames/s), {r['dropped_frames']} dropped"
    )
    print(f"empty street ({r['idle_seconds_measured']:g} s after warm-up), % of one core:")
    print(
        f"  decode 1080p H.264 (capture thread)   {r['idle_decode_pct_of_core']:6.2f} %  "
        f"({r['idle_decode_ms_per_frame']} ms/frame)"
    )
    print(
        f"  gate + recognition (rest of process)  {r['idle_gate_recognition_pct_of_core']:6.2f} %  "
        f"({r['idle_gate_recognition_ms_per_frame']} ms/frame; "
        f"{r['idle_detector_runs']} detector runs)"
    )
    print(f"gate alone on 1080p frames: {r['gate_only_frames_per_second']} frames/s of CPU")
    if "car_reads" in r:
        print(
            f"car driving through: {r['car_detector_runs']} detector runs, reads {r['car_reads']}"
        )
    print(f"gate totals: {r['gate_admitted']} admitted, {r['gate_skipped']} skipped")


if __name__ == "__main__":
    main()
