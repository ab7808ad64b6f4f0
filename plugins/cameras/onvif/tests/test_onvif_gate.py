"""The camera's own motion events gate recognition (issue 8), through the real appliance: the
ONVIF responder's pull-point events, the RTSP rig's video, the fake recognizer counting calls."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from alprbox_camera_onvif import plugin

from appliance._appliance import Appliance
from appliance.base import SystemClock
from appliance.testing import make_appliance
from appliance.testing_onvif import OnvifDevice
from appliance.testing_rigs import RtspServer

PASSWORD = "onvif-Pa55"


@pytest.fixture
def password_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("ONVIF_GATE_PASSWORD", PASSWORD)
    return "env:ONVIF_GATE_PASSWORD"


@pytest.fixture
async def quiet_device(rtsp_server: RtspServer) -> AsyncIterator[OnvifDevice]:
    """A camera with a motion rule that tells each new subscriber "nothing moves"."""
    async with OnvifDevice(
        stream_uri=rtsp_server.url, password=PASSWORD, initial_motion=False
    ) as device:
        yield device


def box_config(device: OnvifDevice, password: str, **pipeline: Any) -> dict[str, Any]:
    camera = {
        "type": "onvif", "name": "gate", "host": "127.0.0.1", "port": device.port,
        "username": "admin", "password": password, "request_timeout": 10,
    }
    return {
        "recognition": {"type": "fake", "plate": "ABC123"},
        "cameras": [camera],
        "pipeline": pipeline,
    }


def sample(box: Appliance, metric: str) -> float:
    value = box.metrics.registry.get_sample_value(metric, {"camera": "gate"})
    return value or 0.0


def detector_runs(box: Appliance) -> float:
    return sample(box, "alprbox_detector_runs_total")


def event_skipped(box: Appliance) -> float:
    return sample(box, "alprbox_frames_event_skipped_total")


def frames(box: Appliance) -> int:
    return box.cameras["gate"].frames


async def until(condition: Callable[[], bool], limit: float = 60.0) -> None:
    async with asyncio.timeout(limit):
        while not condition():  # noqa: ASYNC110 - metrics have no event to await
            await asyncio.sleep(0.05)


async def test_detector_waits_for_the_cameras_motion_event(
    quiet_device: OnvifDevice, password_env: str, tmp_path: Path
) -> None:
    async with make_appliance(
        tmp_path / "box", plugins=[plugin], config=box_config(quiet_device, password_env),
        clock=SystemClock(),
    ) as box:
        # The camera said "no motion" at subscription: frames arrive but skip the detector.
        await until(lambda: event_skipped(box) >= 5)
        # (Frames before the camera's first word went through the pixel gate; a skip means no
        # vehicle was being tracked any more.)
        runs, seen = detector_runs(box), frames(box)
        reads = sample(box, "alprbox_reads_total")
        await until(lambda: frames(box) >= seen + 30)
        assert detector_runs(box) == runs, "the detector ran while the camera saw no motion"
        assert event_skipped(box) >= 30
        assert sample(box, "alprbox_reads_total") == reads

        quiet_device.emit_motion(True)  # a car drives in
        await until(lambda: detector_runs(box) >= runs + 3)
        # The saving is visible to whoever scrapes /metrics.
        text = box.metrics.render().decode()
        assert 'alprbox_frames_event_skipped_total{camera="gate"}' in text


async def test_lost_events_fall_back_to_the_pixel_gate_until_resubscribed(
    quiet_device: OnvifDevice, password_env: str, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    async with make_appliance(
        tmp_path / "box", plugins=[plugin], config=box_config(quiet_device, password_env),
        clock=SystemClock(),
    ) as box:
        await until(lambda: event_skipped(box) >= 5)
        runs = detector_runs(box)
        gated = sample(box, "alprbox_frames_gated_total")
        quiet_device.drop_subscriptions()  # the camera's event service restarts
        # Without events the box looks at the pixels again: the demo clip's cars move, so the
        # detector runs, and the pixel gate (not the events) decides about each frame.
        await until(lambda: detector_runs(box) >= runs + 3)
        skipped = event_skipped(box)
        seen = frames(box)
        await until(lambda: frames(box) >= seen + 20)
        assert event_skipped(box) == skipped, "a lost subscription still skipped frames"
        assert sample(box, "alprbox_frames_gated_total") > gated
        assert box.cameras["gate"].state == "running", "losing events never stops the video"
        # The plugin subscribes again (after ~10 s of backoff) and the camera's word counts again.
        await until(lambda: event_skipped(box) > skipped)
        assert quiet_device.subscriptions == 1
    events_lines = [r.getMessage() for r in caplog.records if "events" in r.getMessage()
                    and "Camera 'gate'" in r.getMessage()]
    assert len([m for m in events_lines if "events stopped" in m]) == 1, events_lines
    assert len([m for m in events_lines if "events are back" in m]) == 1, events_lines


async def test_camera_events_can_be_turned_off(
    quiet_device: OnvifDevice, password_env: str, tmp_path: Path
) -> None:
    config = box_config(quiet_device, password_env, camera_events=False)
    async with make_appliance(
        tmp_path / "box", plugins=[plugin], config=config, clock=SystemClock()
    ) as box:
        await until(lambda: frames(box) >= 40)
        await until(lambda: detector_runs(box) >= 3)
        assert event_skipped(box) == 0
        assert quiet_device.subscriptions == 1, "the camera is still subscribed, just not obeyed"
