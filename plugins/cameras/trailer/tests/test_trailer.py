"""The trailer camera: conformance, GPS positions on reads (and their absence when the GPS is
lost), the IR lamp by night and day on a fake clock with gpiozero's mock pins, the uplink state,
and recovery from an RTSP server that dies and comes back.

The live stream is a real ffmpeg pushing H.264 over UDP on loopback (paced in real time, read
through the host's capture helper), or the host's RTSP rig where it is installed."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from functools import reduce
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml
from alprbox_camera_trailer import TrailerCamera, TrailerSettings, plugin
from gpiozero.pins.mock import MockPin

from appliance import PlateRead, PluginContext, SystemClock
from appliance.hardware import BoxHardware, DeviceSettings
from appliance.testing import CameraConformance, FakeClock, make_appliance
from appliance.testing_rigs import make_h264_clip

FFMPEG = shutil.which("ffmpeg")
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg is not installed")
FIRMWARE = Path(__file__).resolve().parents[4] / "firmware_configs"
PINS = yaml.safe_load((FIRMWARE / "trailer-solar" / "profile.yaml").read_text())["gpio"]
LAT, LON = 37.869722, -122.311083  # 3752.1833 N, 12218.6650 W


# -- helpers ---------------------------------------------------------------------------------------


async def until(condition: Callable[[], bool | Awaitable[bool]], limit: float = 30.0) -> None:
    for _ in range(int(limit / 0.05)):
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


def write_clip(path: Path, value: int, frames: int = 30) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (160, 120))
    for i in range(frames):
        image = np.full((120, 160, 3), value, np.uint8)
        image[50:70, (i * 4) % 120 :][:, :40] = min(255, value + 40)
        writer.write(image)
    writer.release()
    return path


class SwitchPin(MockPin):  # type: ignore[misc]
    """A mock input held low by a shut enclosure switch (the pull-up cannot raise it)."""

    def _set_pull(self, value: str) -> None:
        super()._set_pull(value)
        self.drive_low()


def udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def udp_stream() -> Iterator[str]:
    """A live H.264 stream in MPEG-TS over UDP on loopback, like a camera's multicast feed."""
    if FFMPEG is None:
        pytest.skip("ffmpeg is not installed")
    port = udp_port()
    process = subprocess.Popen(
        [FFMPEG, "-nostdin", "-loglevel", "quiet", "-re", "-f", "lavfi",
         "-i", "testsrc2=size=320x240:rate=10", "-c:v", "libx264", "-preset", "ultrafast",
         "-tune", "zerolatency", "-g", "5", "-f", "mpegts", f"udp://127.0.0.1:{port}?pkt_size=1316"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"udp://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()


def nmea(body: str) -> bytes:
    checksum = reduce(lambda a, c: a ^ ord(c), body, 0)
    return f"${body}*{checksum:02X}\r\n".encode()


class GpsFeeder:
    """A GPS receiver on the far side of a real pty pair, sending its fix every 50 ms."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        self.device = os.ttyname(self.slave)
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        while True:
            os.write(self.master, nmea("GNRMC,180000.00,A,3752.1833,N,12218.6650,W,0.0,,281126,,,A")
                     + nmea("GNGGA,180000.00,3752.1833,N,12218.6650,W,1,08,0.95,4.0,M,-32.1,M,,"))
            await asyncio.sleep(0.05)

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.run())

    def pull_cable(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.master >= 0:
            os.close(self.master)
            self.master = -1

    def close(self) -> None:
        self.pull_cable()
        os.close(self.slave)


def trailer_config(url: str, **devices: Any) -> dict[str, Any]:
    return {
        "hardware": "trailer-solar",
        "recognition": {"type": "fake", "plate": "7ABC123"},
        "devices": {"gps": "none", **devices},
        "cameras": [{"type": "trailer", "name": "trailer", "url": url,
                     "read_timeout_seconds": 3, "open_timeout_seconds": 5}],
    }


# -- conformance -----------------------------------------------------------------------------------


class TestTrailerConformance(CameraConformance):
    @pytest.fixture
    def camera_plugin(self) -> Any:
        return plugin

    @pytest.fixture
    def camera_settings(self, tmp_path: Path) -> dict[str, Any]:
        clip = write_clip(tmp_path / "c.mp4", 90)
        return {"type": "trailer", "name": "trailer", "url": str(clip)}


def test_credentials_come_from_a_secret_and_never_show(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    monkeypatch.setenv("TRAILER_CAM_PW", "s3cr:t@x")
    settings = TrailerSettings.model_validate({
        "type": "trailer", "name": "t", "url": "rtsp://10.0.0.5:554/live",
        "username": "admin", "password": "env:TRAILER_CAM_PW"})
    camera = TrailerCamera(settings, PluginContext(logging.getLogger("t"), tmp_path, FakeClock()))
    assert camera._source() == "rtsp://admin:s3cr%3At%40x@10.0.0.5:554/live"
    assert "s3cr" not in settings.model_dump_json()
    with pytest.raises(ValueError):
        TrailerSettings.model_validate({"type": "trailer", "name": "t", "url": "rtsp://x/",
                                        "password": "literal-password"})


# -- GPS positions on reads ------------------------------------------------------------------------


async def test_reads_carry_the_gps_fix_and_none_after_the_gps_is_lost(
    mock_pins: Any, udp_stream: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    mock_pins.pin(PINS["tamper_switch"], pin_class=SwitchPin)
    gps = GpsFeeder()
    clock = FakeClock(datetime(2026, 11, 28, 18, 0, tzinfo=UTC))
    config = trailer_config(udp_stream, gps=gps.device, gps_max_fix_age_seconds=30)
    reads: list[PlateRead] = []
    try:
        gps.start()
        async with make_appliance(tmp_path / "box", plugins=[plugin], config=config,
                                  clock=clock) as box:
            queue = box.bus.subscribe()
            hardware = box.hardware
            assert hardware is not None and hardware.gps is not None
            trailer = hardware.status  # the trailer camera reports its part of the box status

            def camera_status() -> dict[str, Any]:
                result: dict[str, Any] = trailer()["camera trailer"]
                return result

            await until(lambda: hardware.gps.current() is not None)
            await until(lambda: camera_status()["frames_with_position"] >= 3)
            assert "alprbox_gps_fix 1.0" in box.metrics.render().decode()

            # A car passes with the fix in hand (the clock moves on: the first track closes).
            clock.advance(2)
            await until(lambda: queue.qsize() >= 1)
            located_before = camera_status()["frames_with_position"]
            await until(lambda: camera_status()["frames_with_position"] >= located_before + 3)

            # The GPS cable is pulled: frames carry no position from now on.
            gps.pull_cable()
            await until(lambda: hardware.gps.state() == "unavailable")
            await until(lambda: camera_status()["frames_without_position"] >= 3)
            clock.advance(2)
            await until(lambda: queue.qsize() >= 2)
            status = hardware.status()
            assert status["gps"]["state"] == "unavailable"
            assert "gps unavailable" in hardware.degraded()
            assert camera_status()["gps"] == "unavailable"
            metrics = box.metrics.render().decode()
            assert "alprbox_gps_fix 0.0" in metrics and "37.8" not in metrics
        while not queue.empty():
            reads.append(queue.get_nowait())
        async with make_appliance(tmp_path / "box", plugins=[plugin],
                                  config={"cameras": []}) as box:
            stored = {r.id: r for r in await box.store.recent_reads()}
    finally:
        gps.close()
    # Read 1 may predate the fix; read 2 was seen with it; read 3 after the GPS was lost.
    assert len(reads) == 3 and set(stored) == {r.id for r in reads}
    located = reads[1].location
    assert located is not None
    assert (located.lat, located.lon) == (pytest.approx(LAT, abs=1e-6),
                                          pytest.approx(LON, abs=1e-6))
    assert located.hdop == 0.95 and located.satellites == 8
    assert located.fix_time == datetime(2026, 11, 28, 18, 0, tzinfo=UTC)
    assert reads[2].location is None
    # The position is kept with the read, inside its encrypted payload, and nowhere in clear.
    assert stored[reads[1].id].location == located
    assert stored[reads[2].id].location is None
    for path in (tmp_path / "box").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"37.8697" not in data and b"3752.18" not in data, path
    assert not any("37.86" in r.getMessage() or "3752.18" in r.getMessage()
                   for r in caplog.records), "a position reached the log"


# -- the IR lamp -----------------------------------------------------------------------------------


async def lamp_camera(tmp_path: Path, clock: FakeClock, url: Path,
                      **settings: Any) -> tuple[TrailerCamera, BoxHardware]:
    async def audit(kind: str, detail: dict[str, Any]) -> None:
        pass

    hardware = BoxHardware(PINS, {}, DeviceSettings(gps="none"), clock, audit)
    await hardware.start()
    context = PluginContext(logging.getLogger("t"), tmp_path, clock, hardware=hardware)
    lights = {"night": "19:00-07:00", "min_switch_seconds": 60, **settings.pop("lights", {})}
    camera = TrailerCamera(
        TrailerSettings.model_validate({"type": "trailer", "name": "t", "url": str(url),
                                        "light_check_seconds": 1, "lights": lights, **settings}),
        context,
    )
    return camera, hardware


async def pull_frames(camera: TrailerCamera, count: int, clock: FakeClock) -> None:
    await camera.open()
    try:
        n = 0
        async for _ in camera.frames():
            clock.advance(0.5)
            n += 1
            if n >= count:
                break
    finally:
        await camera.close()


async def test_lamp_on_in_the_dark_night_and_off_in_daylight(mock_pins: Any,
                                                             tmp_path: Path) -> None:
    mock_pins.pin(PINS["tamper_switch"], pin_class=SwitchPin)
    lamp, relay = mock_pins.pin(PINS["illuminator"]), mock_pins.pin(PINS["relay"])
    clock = FakeClock(datetime(2026, 6, 1, 22, 0, tzinfo=UTC))
    dark, bright = write_clip(tmp_path / "dark.mp4", 8), write_clip(tmp_path / "day.mp4", 200)
    camera, hardware = await lamp_camera(tmp_path, clock, dark)
    try:
        await pull_frames(camera, 5, clock)
        assert lamp.state is True and relay.state is True
        assert hardware.status()["illuminator"] == "on"
        assert camera.status()["lights"]["reason"] == "dark"

        clock.advance(14 * 3600)  # noon next day, bright frames
        camera.settings = camera.settings.model_copy(update={"url": str(bright)})
        await pull_frames(camera, 5, clock)
        assert lamp.state is False and relay.state is False
        assert camera.status()["lights"]["reason"] == "daylight"
        assert hardware.status()["camera t"]["lights"]["switches"] == 2
    finally:
        await hardware.stop()


async def test_without_frames_the_lamp_follows_the_night_schedule(mock_pins: Any,
                                                                  tmp_path: Path) -> None:
    mock_pins.pin(PINS["tamper_switch"], pin_class=SwitchPin)
    clock = FakeClock(datetime(2026, 6, 1, 21, 30, tzinfo=UTC))
    camera, hardware = await lamp_camera(tmp_path, clock, tmp_path / "missing.mp4")
    try:
        with pytest.raises(Exception, match="does not exist"):
            await camera.open()  # the camera is down, but it is night: the lamp is on
        assert mock_pins.pin(PINS["illuminator"]).state is True
        assert camera.status()["lights"]["reason"] == "night schedule"
    finally:
        await hardware.stop()
    assert mock_pins.pin(PINS["illuminator"]).state is False  # shut down: lamp off


async def test_a_light_sensor_beats_frame_brightness(mock_pins: Any, tmp_path: Path) -> None:
    # The lamp lights up the scene it films; a sensor facing the sky does not see it.
    mock_pins.pin(PINS["tamper_switch"], pin_class=SwitchPin)
    sensor = tmp_path / "in_illuminance_raw"
    sensor.write_text("3\n")  # 3 lux: night
    clock = FakeClock(datetime(2026, 6, 1, 12, 0, tzinfo=UTC))
    camera, hardware = await lamp_camera(
        tmp_path, clock, write_clip(tmp_path / "lit.mp4", 200),
        light_sensor={"path": str(sensor)}, lights={"dark_below": 10, "bright_above": 400},
    )
    try:
        await pull_frames(camera, 3, clock)
        assert mock_pins.pin(PINS["illuminator"]).state is True
    finally:
        await hardware.stop()


# -- store-and-forward: the uplink goes down, reads are still stored -------------------------------


async def test_uplink_down_reads_still_stored_and_state_shown(
    mock_pins: Any, udp_stream: str, tmp_path: Path
) -> None:
    mock_pins.pin(PINS["tamper_switch"], pin_class=SwitchPin)
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = trailer_config(udp_stream, uplink={"host": "127.0.0.1", "port": port,
                                                "interval_seconds": 0.1, "timeout_seconds": 1})
    async with make_appliance(tmp_path / "box", plugins=[plugin], config=config,
                              clock=SystemClock()) as box:
        hardware = box.hardware
        assert hardware is not None
        await until(lambda: hardware.status().get("uplink", {}).get("state") == "reachable")
        server.close()
        await server.wait_closed()  # the cellular link drops
        await until(lambda: hardware.status()["uplink"]["state"] == "unreachable")
        assert "uplink unreachable" in hardware.degraded()
        await until(lambda: box.cameras["trailer"].frames >= 5)
    async with make_appliance(tmp_path / "box", plugins=[plugin], config={}) as box:
        assert await box.store.count_reads() >= 1  # committed locally, to be forwarded later


# -- a real RTSP server that dies and comes back ---------------------------------------------------


async def test_rtsp_server_killed_and_restarted_reads_resume(
    rtsp_server_factory: Any, tmp_path: Path
) -> None:
    # A test pattern that moves in every frame, so the motion gate passes it to the recognizer.
    rtsp_server = rtsp_server_factory(
        clip=make_h264_clip(tmp_path / "pattern.mp4", width=640, height=360, seconds=10)
    )
    config = {
        "recognition": {"type": "fake", "plate": "7ABC123"},
        "pipeline": {"track_timeout_seconds": 0.5},
        "cameras": [{"type": "trailer", "name": "trailer", "url": rtsp_server.url,
                     "read_timeout_seconds": 2, "open_timeout_seconds": 3}],
    }
    async with make_appliance(tmp_path / "box", plugins=[plugin], config=config,
                              clock=SystemClock()) as box:
        status = box.cameras["trailer"]
        await until(lambda: status.state == "running" and status.frames >= 5)
        rtsp_server.kill()
        await until(lambda: status.state == "reconnecting")
        before = status.frames
        rtsp_server.start()
        await until(lambda: status.state == "running" and status.frames >= before + 5, 60)
        # Seconds of video after the restart, so a vehicle is in view when the box stops.
        await until(lambda: status.frames >= before + 40, 60)

        async def stored() -> bool:
            return bool(await box.store.count_reads() >= 1)

        await until(stored)  # the vehicle in view when the server died (its track closed)
    async with make_appliance(tmp_path / "box", plugins=[plugin], config={}) as box:
        assert await box.store.count_reads() >= 2  # one before the outage, one after
