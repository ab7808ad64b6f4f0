"""The recognition worker and a camera's motion hint (issue 8), frame by frame: the detector is
skipped only while the camera says nothing moves *and* no vehicle is being tracked; a hint that
raises is a plugin bug, logged once, after which the pixel gate decides."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from appliance import PlateRead
from appliance._config import PipelineSettings
from appliance._metrics import Metrics
from appliance._pipeline.frame_queue import FrameQueue
from appliance._pipeline.gate import FrameGate
from appliance._pipeline.recognition_worker import MotionHint, RecognitionWorker
from appliance._pipeline.tracker import PlateTracker
from appliance.base import PluginContext
from appliance.models import Frame
from appliance.testing import FakeClock, FakeRecognizer, FakeRecognizerSettings

T0 = FakeClock().now()
STEP = timedelta(seconds=0.1)


def frame(i: int, *, plate: bool) -> Frame:
    """A 10 fps frame; the fake recognizer finds its plate in any frame that is not black."""
    image = np.zeros((120, 160, 3), np.uint8)
    if plate:
        image[40:60, 20 + i : 80 + i] = 255
    return Frame(image=image, timestamp=T0 + i * STEP, camera="cam", sequence=i + 1)


async def run_worker(
    frames: list[Frame], hint: MotionHint | None, tmp_path: Path, metrics: Metrics | None = None
) -> tuple[Metrics, list[PlateRead]]:
    queue = FrameQueue(len(frames))
    for item in frames:
        queue.put(item)
    queue.close()
    metrics = metrics or Metrics()
    reads: list[PlateRead] = []

    async def sink(read: PlateRead) -> None:
        reads.append(read)

    context = PluginContext(logging.getLogger("test"), tmp_path, FakeClock())
    recognizer = FakeRecognizer(FakeRecognizerSettings(plate="ABC123"), context)
    with ThreadPoolExecutor(1) as executor:
        await RecognitionWorker(
            "cam", queue,
            # Every frame may reach the detector as far as rate and recheck go: the hint decides.
            FrameGate(PipelineSettings(max_detect_fps=60, recheck_seconds=0)),
            PlateTracker("cam", track_timeout=1.5, min_confidence=0.3),
            recognizer, executor, sink, metrics, FakeClock(),
            motion_hint=hint,
        ).run()
    return metrics, reads


def count(metrics: Metrics, name: str) -> float:
    return metrics.registry.get_sample_value(name, {"camera": "cam"}) or 0.0


class Script:
    """Answers the hint once per frame, in order, and notes the detector runs seen so far."""

    def __init__(self, hints: list[bool | None], runs: Callable[[], float]) -> None:
        self.hints = hints
        self.runs = runs
        self.seen: list[float] = []

    def __call__(self) -> bool | None:
        self.seen.append(self.runs())
        return self.hints[len(self.seen) - 1]


async def test_a_tracked_vehicle_is_followed_whatever_the_camera_says(tmp_path: Path) -> None:
    frames = (
        [frame(i, plate=True) for i in range(0, 5)]  # camera: nothing moves
        + [frame(i, plate=True) for i in range(5, 10)]  # camera: motion, a plate appears
        + [frame(i, plate=True) for i in range(10, 15)]  # camera: motion over; plate still there
        + [frame(i, plate=False) for i in range(15, 40)]  # the car has gone
    )
    hints: list[bool | None] = [False] * 5 + [True] * 5 + [False] * 30
    metrics = Metrics()
    script = Script(hints, lambda: count(metrics, "alprbox_detector_runs_total"))
    _, reads = await run_worker(frames, script, tmp_path, metrics)

    assert script.seen[5] == 0, "the detector ran while the camera said nothing moves"
    assert script.seen[10] == 5, "motion: every frame went to the detector"
    assert script.seen[15] == 10, "a tracked plate is followed after the camera's motion ends"
    # Once the track has closed (1.5 s unseen), the camera's "nothing moves" counts again.
    assert [r.text for r in reads] == ["ABC123"]
    skipped = count(metrics, "alprbox_frames_event_skipped_total")
    assert skipped >= 5 + 5, skipped
    assert count(metrics, "alprbox_detector_runs_total") + skipped == len(frames)


async def test_a_hint_that_raises_is_logged_once_and_the_pixels_decide(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    calls = 0

    def broken() -> bool | None:
        nonlocal calls
        calls += 1
        raise RuntimeError("vendor bug")

    metrics, reads = await run_worker([frame(i, plate=True) for i in range(10)], broken, tmp_path)
    assert calls == 1, "a broken hint is not asked again"
    errors = [r for r in caplog.records if "motion_hint() raised" in r.getMessage()]
    assert len(errors) == 1
    assert count(metrics, "alprbox_detector_runs_total") > 0
    assert count(metrics, "alprbox_frames_event_skipped_total") == 0
    assert [r.text for r in reads] == ["ABC123"]


async def test_no_hint_means_the_pixel_gate(tmp_path: Path) -> None:
    metrics, _ = await run_worker([frame(i, plate=True) for i in range(10)], None, tmp_path)
    assert count(metrics, "alprbox_frames_event_skipped_total") == 0
    assert count(metrics, "alprbox_detector_runs_total") > 0
