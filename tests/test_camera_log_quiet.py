"""A camera that is down says so once, and once when it is back: neither OpenCV nor FFmpeg
print a line per reconnect attempt (issue 8: "one log line on failure and one on recovery";
OpenALPR #870's reconnect loop filled disks with exactly such lines)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from appliance.testing import FakeClock, make_appliance
from appliance.testing_rigs import RtspServer


async def until(condition: Callable[[], bool], limit: float = 60.0) -> None:
    async with asyncio.timeout(limit):
        while not condition():  # noqa: ASYNC110 - the host's status has no event to await
            await asyncio.sleep(0.05)


async def test_dead_stream_retries_do_not_flood_the_log(
    rtsp_server: RtspServer,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from alprbox_camera_replay import plugin

    monkeypatch.delenv("OPENCV_LOG_LEVEL", raising=False)
    monkeypatch.delenv("OPENCV_FFMPEG_LOGLEVEL", raising=False)
    caplog.set_level(logging.INFO)
    rtsp_server.kill()  # the camera is down before the box starts
    clock = FakeClock()
    config = {
        "recognition": {"type": "fake", "plate": "ABC123"},
        "cameras": [{"type": "replay", "name": "rig", "source": rtsp_server.url}],
    }
    capfd.readouterr()
    async with make_appliance(
        tmp_path / "box", plugins=[plugin], config=config, clock=clock
    ) as box:
        status = box.cameras["rig"]
        await until(lambda: status.state == "reconnecting")
        # Backoff 1, 2, 4, 8, 16 s (±20 %) on the fake clock: at least five failed opens.
        await until(lambda: clock.monotonic() >= 25)
        down = capfd.readouterr()
        rtsp_server.start()
        await until(lambda: status.state == "running" and status.frames >= 3)

    assert "[ WARN" not in down.err, down.err  # OpenCV: "backend ... can't be used ..."
    assert " @ 0x" not in down.err, down.err  # FFmpeg: "[tcp @ 0x...] Connection ... refused"
    assert down.out == ""
    camera_lines = [r for r in caplog.records if "Camera 'rig'" in r.getMessage()]
    offline = [r for r in camera_lines if "offline" in r.getMessage()]
    recovered = [r for r in camera_lines if "recovered" in r.getMessage()]
    assert len(offline) == 1 and offline[0].levelno == logging.WARNING, camera_lines
    assert len(recovered) == 1, camera_lines
