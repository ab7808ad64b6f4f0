"""The ONVIF camera against the test kit's ONVIF responder (real SOAP, parsed by the real client
with its own WSDLs) and the RTSP rig (a real gst-rtsp-server on loopback)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alprbox_camera_onvif import (
    MediaProfile,
    OnvifCamera,
    OnvifSettings,
    choose_profile,
    discover,
    plugin,
)

from appliance import AuthFailed, DeviceUnavailable, PluginConfigError, PluginContext
from appliance.testing import CameraConformance, FakeClock, make_appliance
from appliance.testing_discovery import DiscoveryResponder
from appliance.testing_onvif import OnvifDevice, OnvifProfile
from appliance.testing_rigs import RtspServer, free_port

PASSWORD = "onvif-Pa55"


@pytest.fixture
def password_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("ONVIF_TEST_PASSWORD", PASSWORD)
    return "env:ONVIF_TEST_PASSWORD"


@pytest.fixture
async def device(rtsp_server: RtspServer) -> AsyncIterator[OnvifDevice]:
    async with OnvifDevice(stream_uri=rtsp_server.url, password=PASSWORD) as responder:
        yield responder


def settings_for(device: OnvifDevice, password: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "onvif",
        "name": "gate",
        "host": "127.0.0.1",
        "port": device.port,
        "username": "admin",
        "password": password,
        "request_timeout": 5,
        **extra,
    }


def make_camera(tmp_path: Path, settings: dict[str, Any]) -> OnvifCamera:
    context = PluginContext(logging.getLogger("test"), tmp_path, FakeClock())
    return OnvifCamera(OnvifSettings.model_validate(settings), context)


class TestOnvifConformance(CameraConformance):
    frame_timeout = 20.0

    @pytest.fixture
    def camera_plugin(self) -> Any:
        return plugin

    @pytest.fixture
    def camera_settings(self, device: OnvifDevice, password_env: str) -> dict[str, Any]:
        return settings_for(device, password_env)


async def test_probe_names_device_profile_stream_and_events(
    device: OnvifDevice, password_env: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    info = await make_camera(tmp_path, settings_for(device, password_env)).probe()
    assert info["manufacturer"] == "alprbox test kit" and info["model"] == "Responder 1"
    assert info["profile"] == "main (H264 1280x720)"
    assert info["stream_size"] == "1280x720" and info["codec"] == "h264"
    assert info["events"] == "pull-point"
    assert info["stream"].startswith("rtsp://***@127.0.0.1:")
    assert PASSWORD not in str(info) and PASSWORD not in caplog.text
    # Only the clock is asked without credentials; everything else passed the digest check.
    assert device.calls[0] == "GetSystemDateAndTime" and device.auth_failures == 0


async def test_profile_is_chosen_by_resolution(
    device: OnvifDevice, password_env: str, tmp_path: Path
) -> None:
    camera = make_camera(tmp_path, settings_for(device, password_env, resolution="640x400"))
    await camera.open()
    try:
        assert camera.profile is not None and camera.profile.token == "sub"
        frame = await asyncio.wait_for(anext(aiter(camera.frames())), 20)
    finally:
        await camera.close()
    assert frame.image.shape[2] == 3
    assert "GetStreamUri" in device.calls


def test_choose_profile_rules() -> None:
    profiles = [
        MediaProfile("a", "a", "H264", 1920, 1080),
        MediaProfile("b", "b", "H264", 1280, 720),
        MediaProfile("c", "c", "JPEG", 640, 480),
    ]
    assert choose_profile(profiles).token == "a"
    assert choose_profile(profiles, (1280, 720)).token == "b"
    assert choose_profile(profiles, (640, 480)).token == "b"  # JPEG is never streamed
    assert choose_profile(profiles, token="a").token == "a"
    with pytest.raises(PluginConfigError, match=r"not H\.264"):
        choose_profile(profiles, token="c")
    with pytest.raises(PluginConfigError, match=r"no media profile 'x' \(the camera offers: a"):
        choose_profile(profiles, token="x")


async def test_snapshot_over_http_digest(
    device: OnvifDevice, password_env: str, tmp_path: Path
) -> None:
    camera = make_camera(tmp_path, settings_for(device, password_env))
    await camera.open()
    try:
        frame = await camera.snapshot()
    finally:
        await camera.close()
    assert frame.image.shape == (360, 640, 3)
    assert "snapshot.jpg" in device.calls


async def test_motion_events_reach_listeners(
    device: OnvifDevice, password_env: str, tmp_path: Path
) -> None:
    camera = make_camera(tmp_path, settings_for(device, password_env))
    await camera.open()
    try:
        assert camera.has_events and camera.event_active("motion") is None
        listener = aiter(camera.events())
        pending = asyncio.ensure_future(anext(listener))
        await asyncio.sleep(0)  # the listener is registered before the camera speaks
        device.emit_motion(True)
        event = await asyncio.wait_for(pending, 10)
        assert (event.kind, event.active) == ("motion", True)
        assert event.time.utcoffset() == timedelta(0)
        assert camera.event_active("motion") is True
        device.emit_motion(False)
        event = await asyncio.wait_for(anext(listener), 10)
        assert event.active is False and camera.event_active("motion") is False
        await listener.aclose()
    finally:
        await camera.close()
    assert device.subscriptions == 0, "close() unsubscribes"


async def test_clock_an_hour_off_is_compensated(
    rtsp_server: RtspServer, password_env: str, tmp_path: Path
) -> None:
    async with OnvifDevice(
        stream_uri=rtsp_server.url, password=PASSWORD, clock_skew=timedelta(hours=1)
    ) as skewed:
        # Without compensation the device refuses the digest: its clock says we are an hour old.
        from onvif import ONVIFCamera
        from zeep.exceptions import Fault

        raw = ONVIFCamera("127.0.0.1", skewed.port, "admin", PASSWORD, no_cache=True)
        try:
            with pytest.raises(Fault, match="not Authorized"):
                await (await raw.create_devicemgmt_service()).GetDeviceInformation()
        finally:
            await raw.close()
        info = await make_camera(tmp_path, settings_for(skewed, password_env)).probe()
    assert 3590 <= int(info["clock_offset_s"]) <= 3610
    assert info["model"] == "Responder 1"


async def test_wrong_password_says_so(
    device: OnvifDevice, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ONVIF_WRONG", "not-the-Pa55word")
    camera = make_camera(tmp_path, settings_for(device, "env:ONVIF_WRONG"))
    with pytest.raises(AuthFailed, match="refused user 'admin'") as raised:
        await camera.probe()
    assert "Pa55" not in str(raised.value)
    assert device.auth_failures >= 1


async def test_unreachable_and_missing_secret_say_so(tmp_path: Path) -> None:
    settings = {"type": "onvif", "name": "gate", "host": "127.0.0.1", "port": free_port()}
    with pytest.raises(DeviceUnavailable, match=r"127\.0\.0\.1:\d+ is unreachable"):
        await make_camera(tmp_path, settings).probe()
    missing = {**settings, "password": "env:ONVIF_NO_SUCH_VARIABLE"}
    with pytest.raises(PluginConfigError, match="ONVIF_NO_SUCH_VARIABLE"):
        await make_camera(tmp_path, missing).probe()


async def test_no_h264_profile_says_what_the_camera_offers(
    rtsp_server: RtspServer, password_env: str, tmp_path: Path
) -> None:
    jpeg_only = (OnvifProfile("mjpeg", 1280, 720, encoding="JPEG"),)
    async with OnvifDevice(
        stream_uri=rtsp_server.url, password=PASSWORD, profiles=jpeg_only
    ) as device:
        with pytest.raises(PluginConfigError, match=r"no H\.264 media profile.*mjpeg \(JPEG"):
            await make_camera(tmp_path, settings_for(device, password_env)).probe()


async def test_camera_without_events_still_streams(
    rtsp_server: RtspServer, password_env: str, tmp_path: Path
) -> None:
    async with OnvifDevice(stream_uri=rtsp_server.url, password=PASSWORD, events=False) as device:
        camera = make_camera(tmp_path, settings_for(device, password_env))
        assert (await camera.probe())["events"] == "none"
        await camera.open()
        try:
            assert not camera.has_events and camera.event_active() is None
            await asyncio.wait_for(anext(aiter(camera.frames())), 20)
        finally:
            await camera.close()


async def test_host_reconnects_with_backoff_after_the_stream_dies(
    device: OnvifDevice, rtsp_server: RtspServer, password_env: str, tmp_path: Path
) -> None:
    clock = FakeClock()
    config = {
        "recognition": {"type": "fake", "plate": "ABC123"},
        "cameras": [settings_for(device, password_env, read_timeout=2, open_timeout=3)],
    }
    async with make_appliance(
        tmp_path / "box", plugins=[plugin], config=config, clock=clock
    ) as box:
        status = box.cameras["gate"]
        await _until(lambda: status.state == "running" and status.frames >= 5)
        rtsp_server.kill()  # the camera's encoder crashes; ONVIF still answers
        await _until(lambda: status.state == "reconnecting")
        assert "unavailable" in (status.error or "")
        before = status.frames
        slept_from = clock.monotonic()
        await _until(lambda: clock.monotonic() - slept_from >= 3)  # a few backoff rounds
        rtsp_server.start()  # back on the same port
        await _until(lambda: status.state == "running" and status.frames >= before + 5)
    # The retries waited (on the host's clock) instead of spinning.
    assert clock.monotonic() - slept_from >= 3


async def _until(condition: Any, limit: float = 60.0) -> None:
    async with asyncio.timeout(limit):
        while not condition():  # noqa: ASYNC110 - the host's status has no event to await
            await asyncio.sleep(0.05)


async def test_unicast_discovery_finds_the_device(
    device: OnvifDevice, password_env: str, tmp_path: Path
) -> None:
    async with DiscoveryResponder([device.device_service]) as responder:
        found = await discover(1.0, address=("127.0.0.1", responder.port))
    assert len(found) == 1 and responder.probes == 1
    camera_found = found[0]
    assert (camera_found.host, camera_found.port) == ("127.0.0.1", device.port)
    assert camera_found.name == "test" and "dn:NetworkVideoTransmitter" in camera_found.types
    settings = settings_for(device, password_env, host=camera_found.host, port=camera_found.port)
    assert (await make_camera(tmp_path, settings).probe())["model"] == "Responder 1"


async def test_stream_uri_gets_the_credentials_for_rtsp_digest(
    rtsp_server_factory: Any, password_env: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    protected = rtsp_server_factory(user="admin", password=PASSWORD)
    async with OnvifDevice(stream_uri=protected.url, password=PASSWORD) as device:
        camera = make_camera(tmp_path, settings_for(device, password_env))
        await camera.open()
        try:
            frame = await asyncio.wait_for(anext(aiter(camera.frames())), 20)
        finally:
            await camera.close()
    assert frame.image.ndim == 3
    assert PASSWORD not in caplog.text


async def test_probe_says_when_onvif_works_but_the_stream_does_not(
    rtsp_server_factory: Any, password_env: str, tmp_path: Path
) -> None:
    other = rtsp_server_factory(user="admin", password="a-different-rtsp-password")
    async with OnvifDevice(stream_uri=other.url, password=PASSWORD) as device:
        camera = make_camera(tmp_path, settings_for(device, password_env, open_timeout=5))
        with pytest.raises(DeviceUnavailable, match="ONVIF works but the RTSP stream") as raised:
            await camera.probe()
    assert PASSWORD not in str(raised.value)


async def test_vehicle_events_are_told_apart_from_motion(
    device: OnvifDevice, password_env: str, tmp_path: Path
) -> None:
    camera = make_camera(tmp_path, settings_for(device, password_env))
    await camera.open()
    try:
        listener = aiter(camera.events())
        pending = asyncio.ensure_future(anext(listener))
        await asyncio.sleep(0)
        device.emit_motion(True, topic="tns1:RuleEngine/MyRuleDetector/VehicleDetect")
        event = await asyncio.wait_for(pending, 10)
        await listener.aclose()
    finally:
        await camera.close()
    assert (event.kind, event.active) == ("vehicle", True)
    assert camera.event_active("vehicle") is None, "closed: no events, so no state"
