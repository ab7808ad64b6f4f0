"""The USB camera: a UVC camera by its stable by-id name, MJPEG or YUYV, recovering from replug.

Unplugging raises :class:`appliance.DeviceUnavailable` (the device vanishes from sysfs, or its
next read fails); the host then closes the camera and reopens it with backoff, and the camera
looks the by-id name up afresh on every open, so the same camera is found again whatever
``/dev/videoN`` number it gets when it comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from appliance import Camera, CameraSettings, DeviceUnavailable, Frame, hookimpl

from .devices import BY_ID_DIR, DEV_DIR, SYSFS_ROOT, find_device, list_devices
from .sources import FrameSource, ImageFolderSource, MjpegPipeSource, V4l2Source

logger = logging.getLogger(__name__)


class UsbSettings(CameraSettings):
    type: Literal["usb"] = Field(title="Camera type", description="A USB (UVC/V4L2) camera.")
    device: str = Field(
        default="auto",
        title="Device",
        description="The camera's /dev/v4l/by-id name (stable across replugs and reboots), a "
        "/dev/videoN path, the driver's name for it, or 'auto' for the first camera.",
    )
    capture: Literal["v4l2", "mjpeg-pipe", "images"] = Field(
        default="v4l2",
        title="Capture",
        description="v4l2: read the device through OpenCV; mjpeg-pipe: the node is a FIFO or "
        "file of concatenated JPEGs (an ffmpeg-fed pipe); images: 'device' is a folder of "
        "stills.",
    )
    pixel_format: Literal["MJPG", "YUYV", "auto"] = Field(
        default="MJPG",
        title="Pixel format",
        description="MJPG carries 1080p at 30 fps over USB 2; YUYV is uncompressed (about 5 fps "
        "at 1080p) but costs no decode.",
    )
    width: int | None = Field(default=1280, ge=16, le=7680, description="Frame width asked for.")
    height: int | None = Field(default=720, ge=16, le=4320, description="Frame height asked for.")
    fps: float | None = Field(default=15.0, gt=0, le=120, description="Frame rate asked for.")
    read_timeout_seconds: float = Field(
        default=5.0, gt=0, le=60, description="No picture for this long: the camera is gone."
    )
    sysfs_root: Path = Field(default=SYSFS_ROOT, description="Where V4L2 devices are listed.")
    by_id_dir: Path = Field(default=BY_ID_DIR, description="udev's stable camera names.")
    dev_dir: Path = Field(default=DEV_DIR, description="Where device nodes live.")


class UsbCamera(Camera):
    settings_model = UsbSettings
    supports_snapshot = True
    settings: UsbSettings

    def __init__(self, settings: CameraSettings, context: Any) -> None:
        super().__init__(settings, context)
        self._source: FrameSource | None = None
        self._reading: asyncio.Future[np.ndarray] | None = None
        self.info: dict[str, str] = {}

    # -- device selection ------------------------------------------------------------------------

    def make_source(self) -> tuple[FrameSource, dict[str, str]]:
        """Find the device now and build its source (blocking: sysfs reads)."""
        s = self.settings
        if s.capture == "images":
            return ImageFolderSource(Path(s.device)), {"device": s.device}
        device = find_device(s.device, s.sysfs_root, s.by_id_dir, s.dev_dir)
        if device is None:
            present = [d.label for d in list_devices(s.sysfs_root, s.by_id_dir, s.dev_dir)]
            raise DeviceUnavailable(
                f"camera {s.device!r} is not plugged in (present: {', '.join(present) or 'none'})"
            )
        about = {"device": device.label, "node": str(device.node), "name": device.name}
        if s.capture == "mjpeg-pipe":
            return MjpegPipeSource(device.node, read_timeout=s.read_timeout_seconds), about
        source = V4l2Source(
            device.node, pixel_format=s.pixel_format, width=s.width, height=s.height, fps=s.fps
        )
        return source, about

    def _open_blocking(self) -> tuple[FrameSource, dict[str, str]]:
        source, about = self.make_source()
        info = source.open()
        self._check_granted(info)
        return source, {**about, **info}

    def _check_granted(self, info: dict[str, str]) -> None:
        s = self.settings
        asked = {"format": s.pixel_format if s.pixel_format != "auto" else None,
                 "width": str(s.width) if s.width else None,
                 "height": str(s.height) if s.height else None}
        differs = {k: info[k] for k, v in asked.items() if v and k in info and info[k] != v}
        if differs:  # the driver picks the nearest mode it has; say so once per open
            logger.info("Camera '%s' (usb): device chose %s instead of what was asked",
                        self.name, differs)

    # -- the Camera contract ---------------------------------------------------------------------

    async def open(self) -> None:
        await self.close()
        self._source, self.info = await asyncio.to_thread(self._open_blocking)

    async def probe(self) -> dict[str, str]:
        source, info = await asyncio.to_thread(self._open_blocking)
        try:
            image = await asyncio.to_thread(source.read)
            info = {**info, "frame": f"{image.shape[1]}x{image.shape[0]}"}
        finally:
            await asyncio.to_thread(source.release)
        return info

    async def frames(self) -> AsyncIterator[Frame]:
        clock = self.context.clock
        pace = 1.0 / self.settings.fps if self.settings.capture == "images" and self.settings.fps \
            else 0.0
        while True:
            image = await self._read()
            if pace:
                await clock.sleep(pace)  # stills have no rate of their own
            yield Frame(image=image, timestamp=clock.now())

    async def snapshot(self) -> Frame:
        if self._source is None:
            await self.open()
        return Frame(image=await self._read(), timestamp=self.context.clock.now())

    async def _read(self) -> np.ndarray:
        source = self._source
        if source is None:
            raise DeviceUnavailable("camera is not open")
        loop = asyncio.get_running_loop()
        reading = loop.run_in_executor(None, source.read)
        self._reading = reading
        # If the host cancels us mid-read the thread finishes on its own; close() waits for it
        # before releasing the device, so a read never runs on a closed descriptor.
        reading.add_done_callback(_consume)
        return await asyncio.shield(reading)

    async def close(self) -> None:
        reading, self._reading = self._reading, None
        if reading is not None and not reading.done():
            await asyncio.wait([reading], timeout=self.settings.read_timeout_seconds + 1)
        source, self._source = self._source, None
        if source is not None:
            await asyncio.to_thread(source.release)


def _consume(future: Any) -> None:
    with contextlib.suppress(BaseException):
        future.exception()  # retrieved: a read that failed after a cancel is not a leak


@hookimpl
def appliance_camera_types() -> list[type[Camera]]:
    return [UsbCamera]
