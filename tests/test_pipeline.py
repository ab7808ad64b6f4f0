"""Camera -> queue -> gate -> recognizer -> tracker -> store, and what happens when parts fail."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest

from appliance import Camera, CameraSettings, DeviceUnavailable, Frame, SystemClock, hookimpl
from appliance._pipeline.frame_queue import FrameQueue
from appliance.testing import FakeClock, FakeRecognizer


async def wait_for(predicate: Any, limit_s: float = 10.0) -> None:
    for _ in range(int(limit_s / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


def metric(box: Any, name: str, **labels: str) -> float:
    value = box.metrics.registry.get_sample_value(name, labels)
    return value or 0.0


async def test_a_vehicle_seen_in_many_frames_becomes_one_stored_read(appliance_host: Any) -> None:
    config = {
        "recognition": {"type": "fake", "plate": "7ABC123"},
        "cameras": [{"name": "gate", "type": "fake", "frames": 12}],
    }
    async with appliance_host(config=config) as box:
        listener = box.bus.subscribe()
        await box.wait_cameras_done()
        reads = await box.store.recent_reads()
        assert [r.text for r in reads] == ["7ABC123"]
        assert reads[0].frames >= 2 and reads[0].camera == "gate"
        assert (await box.store.get_crop(reads[0].id) or b"")[:2] == b"\xff\xd8"
        assert listener.get_nowait().id == reads[0].id
        assert metric(box, "alprbox_frames_total", camera="gate") == 12
        assert metric(box, "alprbox_reads_total", camera="gate") == 1
        assert box.cameras["gate"].state == "ended"


async def test_stop_mid_stream_stores_the_vehicle_in_view(tmp_path: Path) -> None:
    from appliance.testing import make_appliance

    config = {
        "recognition": {"type": "fake", "plate": "8DEF456"},
        "cameras": [{"name": "gate", "type": "fake", "frames": 100000, "fps": 25}],
    }
    # Real time: the camera paces itself as a live one would, so the worker keeps up.
    async with make_appliance(tmp_path / "box", config=config, clock=SystemClock()) as box:
        await wait_for(lambda: box.cameras["gate"].frames > 20)
        assert await box.store.count_reads() == 0  # the vehicle is still in view
    # Stopped: the open track was flushed and committed before the store closed.
    async with make_appliance(tmp_path / "box", config={}) as reopened:
        assert [r.text for r in await reopened.store.recent_reads()] == ["8DEF456"]


async def test_a_camera_bug_is_isolated(
    appliance_host: Any, caplog: pytest.LogCaptureFixture
) -> None:
    config = {
        "recognition": {"type": "fake", "plate": "5XYZ789"},
        "cameras": [
            {"name": "broken", "type": "fake", "frames": 50, "fail_after": 0},
            {"name": "good", "type": "fake", "frames": 8},
        ],
    }
    # Real time: with a shared fake clock the broken camera's backoff sleeps would move the
    # good camera's frame times apart too.
    async with appliance_host(config=config, clock=SystemClock()) as box:
        await wait_for(lambda: box.cameras["good"].state == "ended")
        await wait_for(lambda: metric(box, "alprbox_reads_total", camera="good") == 1)
        assert box.cameras["broken"].state == "failed"
        assert box.cameras["broken"].error == "RuntimeError: fake camera bug"
    tracebacks = [r for r in caplog.records if r.exc_info and "broken" in r.getMessage()]
    assert len(tracebacks) == 1


async def test_a_flapping_camera_logs_its_traceback_once(
    appliance_host: Any, caplog: pytest.LogCaptureFixture
) -> None:
    config = {"cameras": [{"name": "flaps", "type": "fake", "frames": 50, "fail_after": 2}]}
    async with appliance_host(config=config) as box:
        # Two frames, a crash, a restart: wait for ten such rounds.
        await wait_for(lambda: box.cameras["flaps"].frames >= 20)
    tracebacks = [r for r in caplog.records if r.exc_info and "flaps" in r.getMessage()]
    assert len(tracebacks) == 1


class FlakySettings(CameraSettings):
    type: Literal["flaky"] = "flaky"


class FlakyCamera(Camera):
    """Unreachable for its first two connection attempts, then delivers frames."""

    settings_model = FlakySettings
    attempts = 0

    async def open(self) -> None:
        FlakyCamera.attempts += 1
        if FlakyCamera.attempts <= 2:
            raise DeviceUnavailable("connection refused")

    async def frames(self) -> AsyncIterator[Frame]:
        clock = self.context.clock
        while True:
            await clock.sleep(0.1)
            yield Frame(np.zeros((48, 64, 3), np.uint8), clock.now())


class FlakyPlugin:
    __name__ = "flaky"

    @hookimpl
    def appliance_camera_types(self) -> list[type[Camera]]:
        return [FlakyCamera]


async def test_unreachable_camera_reconnects_and_logs_once_each_way(
    appliance_host: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    config = {"cameras": [{"name": "pole", "type": "flaky"}]}
    async with appliance_host(plugins=[FlakyPlugin()], config=config) as box:
        await wait_for(lambda: box.cameras["pole"].state == "running")
        assert box.cameras["pole"].frames > 0
    messages = [r.getMessage() for r in caplog.records if "'pole'" in r.getMessage()]
    assert sum("offline: unavailable: connection refused" in m for m in messages) == 1
    assert sum("recovered" in m for m in messages) == 1


class MessyStopSettings(CameraSettings):
    type: Literal["messy-stop"] = "messy-stop"


class MessyStopCamera(Camera):
    """Delivers frames; its cleanup raises when it is cancelled (as a plugin bug might)."""

    settings_model = MessyStopSettings
    starts = 0

    async def frames(self) -> AsyncIterator[Frame]:
        MessyStopCamera.starts += 1
        clock = self.context.clock
        try:
            while True:
                await clock.sleep(0.05)
                yield Frame(np.zeros((48, 64, 3), np.uint8), clock.now())
        finally:
            raise ValueError("cleanup went wrong")


class MessyStopPlugin:
    __name__ = "messy-stop"

    @hookimpl
    def appliance_camera_types(self) -> list[type[Camera]]:
        return [MessyStopCamera]


async def test_a_plugin_raising_while_stopped_does_not_keep_the_box_running(
    tmp_path: Path,
) -> None:
    from appliance.testing import make_appliance

    config = {"cameras": [{"name": "messy", "type": "messy-stop"}]}
    async with asyncio.timeout(30):  # the bug this guards against was a stop that never ended
        async with make_appliance(
            tmp_path / "box", plugins=[MessyStopPlugin()], config=config, clock=SystemClock()
        ) as box:
            await wait_for(lambda: box.cameras["messy"].frames >= 2)
            starts = MessyStopCamera.starts
    assert MessyStopCamera.starts == starts  # stopping did not restart the camera
    assert box.cameras["messy"].state == "stopped"


class StubbornSettings(CameraSettings):
    type: Literal["stubborn"] = "stubborn"


class StubbornCamera(Camera):
    """Swallows every cancellation until told to quit (a plugin bug the host must survive)."""

    settings_model = StubbornSettings
    quit = False

    async def frames(self) -> AsyncIterator[Frame]:
        while not StubbornCamera.quit:
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                continue
            yield Frame(np.zeros((48, 64, 3), np.uint8), self.context.clock.now())


class StubbornPlugin:
    __name__ = "stubborn"

    @hookimpl
    def appliance_camera_types(self) -> list[type[Camera]]:
        return [StubbornCamera]


async def test_a_camera_that_ignores_stop_is_left_behind_by_name(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from appliance import _appliance
    from appliance.testing import make_appliance

    monkeypatch.setattr(_appliance, "CAMERA_STOP_TIMEOUT_S", 0.5)
    config = {"cameras": [{"name": "stuck", "type": "stubborn"}]}
    try:
        async with asyncio.timeout(30):
            async with make_appliance(
                tmp_path / "box", plugins=[StubbornPlugin()], config=config, clock=SystemClock()
            ) as box:
                await wait_for(lambda: box.cameras["stuck"].frames >= 2)
        assert not box.started
        assert any(
            "Camera 'stuck' did not stop within 0.5 s" in r.getMessage() for r in caplog.records
        )
    finally:
        StubbornCamera.quit = True  # let the abandoned task end before the loop closes
        await asyncio.sleep(0.2)


class BrokenFrameRecognizer(FakeRecognizer):
    def recognize(self, image: Any) -> Any:
        if int(np.asarray(image)[0, 0, 0]) == 7:
            raise ValueError("corrupt frame")
        return super().recognize(image)


async def test_frame_queue_drops_oldest_and_never_blocks() -> None:
    queue = FrameQueue(2)
    frames = [Frame(np.zeros((2, 2, 3), np.uint8), datetime.now(UTC), sequence=i) for i in range(5)]
    for frame in frames:
        queue.put(frame)
    assert queue.dropped == 3
    got = [await queue.get(), await queue.get()]
    assert [f.sequence for f in got if f] == [3, 4]
    queue.close()
    assert await queue.get() is None


async def test_bad_frame_is_skipped_with_one_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from appliance._config import PipelineSettings
    from appliance._metrics import Metrics
    from appliance._pipeline.gate import FrameGate
    from appliance._pipeline.recognition_worker import RecognitionWorker
    from appliance._pipeline.tracker import PlateTracker
    from appliance.base import PluginContext
    from appliance.testing import FakeRecognizerSettings

    clock = FakeClock()
    recognizer = BrokenFrameRecognizer(
        FakeRecognizerSettings(plate="6GHI012"),
        PluginContext(logging.getLogger("t"), tmp_path, clock),
    )
    stored: list[Any] = []

    async def sink(read: Any) -> None:
        stored.append(read)

    queue = FrameQueue(100)
    metrics = Metrics()
    worker = RecognitionWorker(
        "gate",
        queue,
        FrameGate(PipelineSettings(gate_threshold=0, max_detect_fps=60)),
        PlateTracker("gate", 1.5, 0.3),
        recognizer,
        ThreadPoolExecutor(1),
        sink,
        metrics,
        clock,
    )
    for i in range(6):
        image = np.full((120, 160, 3), 200 if i % 2 else 7, np.uint8)  # every other frame "corrupt"
        image[50:70, 10 + i * 10 : 50 + i * 10] = 255
        clock.advance(0.1)
        queue.put(Frame(image, clock.now(), "gate", i + 1))
    queue.close()
    await worker.run()
    assert [r.text for r in stored] == ["6GHI012"]
    errors = [r for r in caplog.records if "could not process frame" in r.getMessage()]
    assert len(errors) == 1
    assert metrics.registry.get_sample_value("alprbox_frame_errors_total", {"camera": "gate"}) == 3
