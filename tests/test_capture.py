"""The host's capture helper against a real RTSP server on loopback and real files."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from appliance import DeviceUnavailable, PluginConfigError
from appliance.capture import StreamCapture, is_stream_url, mask_credentials
from appliance.testing import CameraConformance, FakeClock, make_appliance
from appliance.testing_rigs import RtspServer, free_port, make_h264_clip


def test_credentials_are_masked() -> None:
    assert (
        mask_credentials("rtsp://admin:s3cret@10.0.0.5:554/live") == "rtsp://***@10.0.0.5:554/live"
    )
    assert mask_credentials("rtsp://admin@cam/live") == "rtsp://***@cam/live"
    assert mask_credentials("rtsp://cam:554/live?x=1") == "rtsp://cam:554/live?x=1"
    assert "p@ss" not in mask_credentials("rtsp://u:p%40ss@cam/live")
    assert is_stream_url("rtsp://cam/x") and is_stream_url("HTTP://cam/x.mjpg")
    assert not is_stream_url("/videos/rtsp.mp4") and not is_stream_url(Path("a.mp4"))


async def test_reads_bgr_frames_from_rtsp_with_utc_times(rtsp_server: RtspServer) -> None:
    capture = StreamCapture(rtsp_server.url, name="t")
    info = await capture.open()
    try:
        frames = []
        async for frame in capture.frames():
            frames.append(frame)
            if len(frames) == 5:
                break
    finally:
        await capture.close()
    assert (info.width, info.height, info.codec) == (1280, 720, "h264")
    for frame in frames:
        assert frame.image.shape == (720, 1280, 3) and frame.image.dtype.name == "uint8"
        assert frame.timestamp.utcoffset() == timedelta(0)
    assert frames[0].timestamp <= frames[-1].timestamp
    assert capture.decode_errors == 0 and capture.frames_read >= 5


async def test_digest_credentials_work_and_are_never_logged(
    rtsp_server_factory: Callable[..., RtspServer], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = rtsp_server_factory(user="viewer", password="pa55-word")
    good = StreamCapture(server.url_with_credentials())
    await good.open()
    try:
        frame = await asyncio.wait_for(good.read(), 20)
    finally:
        await good.close()
    assert frame.image.ndim == 3
    bad = StreamCapture(server.url_with_credentials(password="wrong-pa55"), open_timeout=5)
    with pytest.raises(DeviceUnavailable) as raised:
        await bad.open()
    await bad.close()
    text = str(raised.value) + caplog.text + repr(bad.display_source)
    assert "127.0.0.1" in str(raised.value)
    assert "pa55" not in text and "viewer" not in text


async def test_killed_server_ends_the_stream_with_device_unavailable(
    rtsp_server: RtspServer,
) -> None:
    capture = StreamCapture(rtsp_server.url, read_timeout=2)
    await capture.open()
    try:
        await asyncio.wait_for(capture.read(), 20)
        rtsp_server.kill()
        with pytest.raises(DeviceUnavailable, match="stopped sending frames"):
            async for _ in capture.frames():
                pass
    finally:
        await capture.close()


async def test_frozen_server_never_blocks_the_loop(rtsp_server: RtspServer) -> None:
    capture = StreamCapture(rtsp_server.url, read_timeout=2)
    await capture.open()
    try:
        await asyncio.wait_for(capture.read(), 20)
        rtsp_server.freeze()
        # The read waits in the worker thread; the loop stays free, so the timeout fires (after
        # the few frames that were already on their way).
        with pytest.raises(TimeoutError):
            for _ in range(50):
                await asyncio.wait_for(capture.read(), 1.0)
    finally:
        await capture.close(wait=0)
        rtsp_server.thaw()


async def test_slow_consumer_of_a_live_stream_gets_the_newest_frames(
    rtsp_server: RtspServer,
) -> None:
    capture = StreamCapture(rtsp_server.url, buffer=2)
    await capture.open()
    try:
        first = await asyncio.wait_for(capture.read(), 20)
        await asyncio.sleep(1.5)  # a busy consumer; the 10 fps stream goes on meanwhile
        late = await capture.read()
    finally:
        await capture.close()
    # Only `buffer` frames waited (one more may be on its way from the worker thread): the rest
    # were dropped and counted, none queued up as lag.
    assert capture.dropped >= 5
    assert capture.frames_read - capture.dropped - 2 <= 2 + 1
    assert (late.timestamp - first.timestamp).total_seconds() >= 1.0


async def test_file_is_read_completely_then_ends(tmp_path: Path) -> None:
    clip = make_h264_clip(tmp_path / "c.mp4", width=320, height=240, fps=10, seconds=3)
    capture = StreamCapture(clip)
    info = await capture.open()
    frames = [frame async for frame in capture.frames()]
    await capture.close()
    await capture.close()  # safe twice
    assert (info.width, info.height) == (320, 240)
    assert len(frames) == 30 and capture.dropped == 0 and capture.decode_errors == 0


async def test_missing_file_and_unreachable_stream_say_what_failed(tmp_path: Path) -> None:
    with pytest.raises(PluginConfigError, match=r"nope\.mp4 does not exist"):
        await StreamCapture(tmp_path / "nope.mp4").open()
    not_video = tmp_path / "x.mp4"
    not_video.write_bytes(b"garbage" * 100)
    with pytest.raises(PluginConfigError, match="not a readable video"):
        await StreamCapture(not_video).open()
    url = f"rtsp://user:topsecret@127.0.0.1:{free_port()}/stream"
    with pytest.raises(DeviceUnavailable, match="cannot be opened") as raised:
        await StreamCapture(url, open_timeout=3).open()
    assert "topsecret" not in str(raised.value)


class TestReplayReadsTheRig(CameraConformance):
    """The replay camera given the rig's URL: the same suite, over a real RTSP stream."""

    frame_timeout = 20.0

    @pytest.fixture
    def camera_plugin(self) -> Any:
        from alprbox_camera_replay import plugin

        return plugin

    @pytest.fixture
    def camera_settings(self, rtsp_server: RtspServer) -> dict[str, Any]:
        return {"type": "replay", "name": "rig", "source": rtsp_server.url, "realtime": False}


async def test_host_recovers_a_replayed_stream_after_the_server_restarts(
    rtsp_server: RtspServer, tmp_path: Path
) -> None:
    from alprbox_camera_replay import plugin

    clock = FakeClock()
    config = {
        "recognition": {"type": "fake", "plate": "ABC123"},
        "cameras": [{"type": "replay", "name": "rig", "source": rtsp_server.url}],
    }
    async with make_appliance(
        tmp_path / "box", plugins=[plugin], config=config, clock=clock
    ) as box:
        status = box.cameras["rig"]
        await _until(lambda: status.state == "running" and status.frames >= 5)
        rtsp_server.kill()
        await _until(lambda: status.state == "reconnecting")
        before, slept_from = status.frames, clock.monotonic()
        await _until(lambda: clock.monotonic() - slept_from >= 3)  # retries back off meanwhile
        rtsp_server.start()
        await _until(lambda: status.state == "running" and status.frames >= before + 5)
    assert status.error is None


async def _until(condition: Any, limit: float = 60.0) -> None:
    async with asyncio.timeout(limit):
        while not condition():  # noqa: ASYNC110 - the host's status has no event to await
            await asyncio.sleep(0.05)


async def test_reads_mjpeg_over_http() -> None:
    """An MJPEG camera's multipart/x-mixed-replace stream, served on loopback."""
    import cv2
    import numpy as np
    from aiohttp import web

    async def mjpeg(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "multipart/x-mixed-replace; boundary=frame"}
        )
        await response.prepare(request)
        for i in range(1000):
            _, jpeg = cv2.imencode(".jpg", np.full((240, 320, 3), i % 255, np.uint8))
            data = jpeg.tobytes()
            head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n\r\n"
            try:
                await response.write(head.encode() + data + b"\r\n")
            except ConnectionResetError:
                break
            await asyncio.sleep(0.05)
        return response

    app = web.Application()
    app.router.add_get("/video.mjpg", mjpeg)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        capture = StreamCapture(f"http://viewer:mjpeg-secret@127.0.0.1:{port}/video.mjpg")
        info = await capture.open()
        try:
            frames = [await asyncio.wait_for(capture.read(), 10) for _ in range(3)]
        finally:
            await capture.close()
    finally:
        await runner.cleanup()
    assert (info.width, info.height) == (320, 240)
    assert all(f.image.shape == (240, 320, 3) for f in frames)
    assert "mjpeg-secret" not in capture.display_source
