"""The USB camera: device listing from a fake sysfs tree, V4L2 mode negotiation, the read loop fed
by a real ffmpeg through a FIFO (as a UVC camera sends MJPEG), conformance with the host's suite,
and unplug/replug recovery through the real appliance."""

from __future__ import annotations

import asyncio
import glob
import logging
import os
import shutil
import signal
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from alprbox_camera_usb import (
    MjpegPipeSource,
    UsbCamera,
    UsbSettings,
    V4l2Source,
    find_device,
    list_devices,
    plugin,
)

from appliance import DeviceUnavailable, PluginContext, SystemClock
from appliance.testing import CameraConformance, FakeClock, make_appliance

BY_ID = "usb-Acme_PlateCam_1080_0001-video-index0"
FFMPEG = shutil.which("ffmpeg")
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg is not installed")


class FakeSysfs:
    """/sys/class/video4linux, /dev/v4l/by-id and /dev as udev leaves them for one UVC camera."""

    def __init__(self, root: Path) -> None:
        self.sysfs = root / "sys" / "class" / "video4linux"
        self.by_id = root / "dev" / "v4l" / "by-id"
        self.dev = root / "dev"
        self.sysfs.mkdir(parents=True)
        self.by_id.mkdir(parents=True)

    def plug(self, number: int, *, fifo: bool = True, content: bytes | None = None) -> Path:
        for index, node in enumerate((number, number + 1)):  # UVC: capture + metadata nodes
            entry = self.sysfs / f"video{node}"
            entry.mkdir()
            (entry / "name").write_text("Acme PlateCam 1080\n")
            (entry / "index").write_text(f"{index}\n")
            link = self.by_id / BY_ID.replace("index0", f"index{index}")
            link.symlink_to(f"../../video{node}")
        path = self.dev / f"video{number}"
        if content is not None:
            path.write_bytes(content)
        elif fifo:
            os.mkfifo(path)
        (self.dev / f"video{number + 1}").write_bytes(b"")
        return path

    def unplug(self) -> None:
        for entry in self.sysfs.iterdir():
            shutil.rmtree(entry)
        for link in self.by_id.iterdir():
            link.unlink()
        for node in self.dev.glob("video*"):
            node.unlink()

    def settings(self, **extra: Any) -> dict[str, Any]:
        return {
            "type": "usb",
            "name": "door",
            "device": BY_ID,
            "capture": "mjpeg-pipe",
            "sysfs_root": str(self.sysfs),
            "by_id_dir": str(self.by_id),
            "dev_dir": str(self.dev),
            **extra,
        }


@pytest.fixture
def tree(tmp_path: Path) -> FakeSysfs:
    return FakeSysfs(tmp_path / "root")


def mjpeg_bytes(frames: int = 30, size: tuple[int, int] = (320, 240)) -> bytes:
    """Concatenated JPEGs, as a UVC camera in MJPEG mode delivers them."""
    out = b""
    for i in range(frames):
        image = np.full((size[1], size[0], 3), 40, np.uint8)
        image[60:120, (i * 9) % (size[0] - 80) :][:, :80] = (20, 200, 240)
        ok, jpeg = cv2.imencode(".jpg", image)
        assert ok
        out += jpeg.tobytes()
    return out


class Feeder:
    """A real ffmpeg writing MJPEG into the camera's FIFO at a real rate, like a UVC camera."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, fifo: Path, size: str = "640x360", rate: int = 15) -> subprocess.Popen[bytes]:
        assert FFMPEG is not None
        process = subprocess.Popen(
            [FFMPEG, "-nostdin", "-loglevel", "error", "-re", "-f", "lavfi",
             "-i", f"testsrc2=size={size}:rate={rate}", "-c:v", "mjpeg", "-q:v", "5",
             "-f", "mjpeg", "-y", str(fifo)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
            process.wait()


@pytest.fixture
def feeder() -> Iterator[Feeder]:
    f = Feeder()
    try:
        yield f
    finally:
        f.stop_all()


def make_camera(settings: dict[str, Any], tmp_path: Path) -> UsbCamera:
    context = PluginContext(logging.getLogger("test"), tmp_path, FakeClock())
    return UsbCamera(UsbSettings.model_validate(settings), context)


async def until(condition: Callable[[], bool | Awaitable[bool]], limit: float = 30.0) -> None:
    for _ in range(int(limit / 0.05)):
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


# -- device listing ----------------------------------------------------------------------------


def test_lists_capture_nodes_with_their_stable_names(tree: FakeSysfs) -> None:
    tree.plug(2)
    devices = list_devices(tree.sysfs, tree.by_id, tree.dev)
    assert [(d.node.name, d.index, d.by_id) for d in devices] == [
        ("video2", 0, (BY_ID,)),
        ("video3", 1, (BY_ID.replace("index0", "index1"),)),
    ]
    assert devices[0].name == "Acme PlateCam 1080"


@pytest.mark.parametrize("wanted", [BY_ID, "/dev/video2", "video2", "Acme PlateCam 1080", "auto"])
def test_finds_the_capture_node_by_any_of_its_names(tree: FakeSysfs, wanted: str) -> None:
    tree.plug(2)
    device = find_device(wanted.replace("/dev", str(tree.dev)), tree.sysfs, tree.by_id, tree.dev)
    assert device is not None and device.node == tree.dev / "video2"


def test_an_unplugged_camera_is_not_found_and_says_what_is_there(
    tree: FakeSysfs, tmp_path: Path
) -> None:
    assert find_device(BY_ID, tree.sysfs, tree.by_id, tree.dev) is None
    camera = make_camera(tree.settings(), tmp_path)
    with pytest.raises(DeviceUnavailable, match="not plugged in"):
        camera.make_source()


# -- V4L2 mode negotiation (OpenCV's capture stands in: no /dev/video here) -----------------------


class FakeV4l2Capture:
    """What cv2.VideoCapture(CAP_V4L2) does with set(): the driver grants the nearest mode."""

    def __init__(self, path: str, modes: list[tuple[str, int, int]], fail_after: int = 99) -> None:
        self.path = path
        self.calls: list[tuple[int, float]] = []
        self.props: dict[int, float] = {}
        self.modes = modes
        self.reads = 0
        self.fail_after = fail_after

    def isOpened(self) -> bool:  # OpenCV's name
        return True

    def set(self, prop: int, value: float) -> bool:
        self.calls.append((prop, value))
        self.props[prop] = value
        return True

    def get(self, prop: int) -> float:
        if prop == cv2.CAP_PROP_FRAME_WIDTH:  # nearest supported width to the one asked
            want = self.props.get(prop, 640)
            return float(min(self.modes, key=lambda m: abs(m[1] - want))[1])
        if prop == cv2.CAP_PROP_FRAME_HEIGHT:
            want = self.props.get(cv2.CAP_PROP_FRAME_WIDTH, 640)
            return float(min(self.modes, key=lambda m: abs(m[1] - want))[2])
        return self.props.get(prop, 0.0)

    def read(self) -> tuple[bool, Any]:
        self.reads += 1
        if self.reads > self.fail_after:
            return False, None  # ENODEV after the cable is pulled
        return True, np.zeros((720, 1280, 3), np.uint8)

    def release(self) -> None:
        pass


def test_v4l2_asks_format_then_size_then_rate_and_reports_what_was_granted() -> None:
    made: list[FakeV4l2Capture] = []

    def factory(path: str) -> FakeV4l2Capture:
        made.append(FakeV4l2Capture(path, [("MJPG", 1280, 720), ("MJPG", 1920, 1080)]))
        return made[-1]

    source = V4l2Source(Path("/dev/video0"), pixel_format="MJPG", width=1900, height=1080,
                        fps=30, capture_factory=factory)
    info = source.open()
    props = [p for p, _ in made[0].calls]
    assert props[:4] == [cv2.CAP_PROP_FOURCC, cv2.CAP_PROP_FRAME_WIDTH,
                         cv2.CAP_PROP_FRAME_HEIGHT, cv2.CAP_PROP_FPS]
    assert made[0].calls[0][1] == cv2.VideoWriter_fourcc(*"MJPG")
    assert info == {"format": "MJPG", "width": "1920", "height": "1080", "fps": "30"}


def test_v4l2_read_failure_is_device_unavailable() -> None:
    def factory(path: str) -> FakeV4l2Capture:
        return FakeV4l2Capture(path, [("YUYV", 1280, 720)], fail_after=1)

    source = V4l2Source(Path("/dev/video0"), pixel_format="YUYV", width=None, height=None,
                        fps=None, capture_factory=factory)
    source.open()
    assert source.read().shape == (720, 1280, 3)
    with pytest.raises(DeviceUnavailable, match="stopped delivering"):
        source.read()


# -- the MJPEG read loop -------------------------------------------------------------------------


def test_torn_pictures_are_skipped_and_counted(tmp_path: Path) -> None:
    good = mjpeg_bytes(3)
    second = good.find(b"\xff\xd8", 2)
    torn = good[: second - 200] + good[second:]  # the first picture loses its tail
    path = tmp_path / "stream.mjpg"
    path.write_bytes(b"noise" + torn)
    source = MjpegPipeSource(path, read_timeout=1)
    source.open()
    images = []
    with pytest.raises(DeviceUnavailable):
        while True:
            images.append(source.read())
    assert len(images) == 2 and source.corrupt == 1  # the torn one; the next two intact
    source.release()


@needs_ffmpeg
async def test_frames_from_an_ffmpeg_fed_fifo(tree: FakeSysfs, feeder: Feeder,
                                              tmp_path: Path) -> None:
    fifo = tree.plug(0)
    camera = make_camera(tree.settings(), tmp_path)
    await camera.open()
    feeder.start(fifo, size="1280x720")
    frames = []
    try:
        async for frame in camera.frames():
            frames.append(frame)
            if len(frames) == 5:
                break
    finally:
        await camera.close()
    assert all(f.image.shape == (720, 1280, 3) and f.image.dtype == np.uint8 for f in frames)
    assert camera.info["device"] == BY_ID


# -- the host's conformance suite ------------------------------------------------------------------


class TestUsbMjpegStream(CameraConformance):
    """A recorded MJPEG stream as the device node (the host reopens it after it ends)."""

    @pytest.fixture
    def camera_plugin(self) -> Any:
        return plugin

    @pytest.fixture
    def camera_settings(self, tmp_path: Path) -> dict[str, Any]:
        tree = FakeSysfs(tmp_path / "conformance")
        tree.plug(0, content=mjpeg_bytes(40))
        return tree.settings()


class TestUsbImages(CameraConformance):
    @pytest.fixture
    def camera_plugin(self) -> Any:
        return plugin

    @pytest.fixture
    def camera_settings(self, tmp_path: Path) -> dict[str, Any]:
        folder = tmp_path / "stills"
        folder.mkdir()
        for i in range(3):
            cv2.imwrite(str(folder / f"{i}.jpg"), np.full((120, 160, 3), 60 * i + 30, np.uint8))
        return {"type": "usb", "name": "stills", "capture": "images", "device": str(folder),
                "fps": 10}


# -- unplug and replug through the real appliance -------------------------------------------------


@needs_ffmpeg
async def test_unplug_and_replug_recovers_and_reads_resume(
    tree: FakeSysfs, feeder: Feeder, tmp_path: Path
) -> None:
    config = {
        "recognition": {"type": "fake", "plate": "7ABC123"},
        "cameras": [tree.settings()],
    }
    fifo = tree.plug(0)
    async with make_appliance(tmp_path / "box", plugins=[plugin], config=config,
                              clock=SystemClock()) as box:
        status = box.cameras["door"]
        feeder.start(fifo)
        await until(lambda: status.state == "running" and status.frames >= 10)

        # Pulled out: ffmpeg (the camera) dies, udev removes its node and names.
        feeder.stop_all()
        tree.unplug()
        await until(lambda: status.state == "reconnecting")
        assert "unavailable" in (status.error or "")
        frames_before = status.frames
        # The vehicle in view when the camera went away is still stored.
        await until(lambda: _count(box, 1))

        # Plugged into another port: a new /dev/videoN, the same by-id name.
        fifo = tree.plug(4)
        feeder.start(fifo)
        await until(lambda: status.state == "running" and status.frames >= frames_before + 10)
        assert status.error is None
    async with make_appliance(tmp_path / "box", plugins=[plugin], config={}) as box:
        reads = await box.store.recent_reads()
    # One vehicle before the unplug, one after the replug (flushed at shutdown).
    assert len(reads) >= 2 and {r.text for r in reads} == {"7ABC123"}
    assert all(r.camera == "door" for r in reads)


async def _count(box: Any, at_least: int) -> bool:
    return bool(await box.store.count_reads() >= at_least)


# -- a real camera, where there is one ------------------------------------------------------------


@pytest.mark.hardware
@pytest.mark.skipif(not glob.glob("/dev/video*"), reason="no /dev/video* device here")
async def test_a_real_usb_camera_delivers_frames(tmp_path: Path) -> None:
    camera = make_camera({"type": "usb", "name": "real", "device": "auto"}, tmp_path)
    info = await camera.probe()
    assert info["node"].startswith("/dev/video")
    await camera.open()
    try:
        frames = []
        async for frame in camera.frames():
            frames.append(frame)
            if len(frames) == 3:
                break
    finally:
        await camera.close()
    assert all(np.asarray(f.image).ndim == 3 for f in frames)
