"""Where the USB camera's pictures come from: one small interface, three implementations.

* :class:`V4l2Source` — a real device through OpenCV's V4L2 backend, with the pixel format
  (MJPEG or YUYV), size and rate asked for before streaming starts;
* :class:`MjpegPipeSource` — a byte stream of concatenated JPEGs (what a UVC camera sends in
  MJPEG mode, and what ``ffmpeg -f mjpeg`` writes into a FIFO); tests and boxes whose camera is
  read by another process use it;
* :class:`ImageFolderSource` — a folder of stills, played in a loop.

All are blocking; the camera calls them through ``asyncio.to_thread``. ``read()`` returns one BGR
image, or raises :class:`appliance.DeviceUnavailable` when the device is gone.
"""

from __future__ import annotations

import os
import select
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from appliance import DeviceUnavailable, PluginConfigError

__all__ = ["FrameSource", "ImageFolderSource", "MjpegPipeSource", "V4l2Source"]

_SOI = b"\xff\xd8\xff"  # start of image and the marker after it: rare by chance in table data
_EOI = b"\xff\xd9"
_MAX_FRAME = 16 * 1024 * 1024  # bytes between markers: far above a 4K MJPEG frame
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}


class FrameSource(Protocol):
    def open(self) -> dict[str, str]:
        """Start streaming; return what the device reports (format, size, rate)."""
        ...

    def read(self) -> np.ndarray:
        """The next picture (BGR); DeviceUnavailable when the device is gone."""
        ...

    def release(self) -> None: ...


def _fourcc_text(value: float) -> str:
    code = int(value)
    text = "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4))
    return text if text.isprintable() else ""


class V4l2Source:
    """A V4L2 device through OpenCV. ``capture_factory`` is injectable for unit tests."""

    def __init__(
        self,
        node: Path,
        *,
        pixel_format: str,
        width: int | None,
        height: int | None,
        fps: float | None,
        capture_factory: Any = None,
    ) -> None:
        self.node = node
        self.pixel_format = pixel_format
        self.width, self.height, self.fps = width, height, fps
        self._factory = capture_factory or (lambda path: cv2.VideoCapture(path, cv2.CAP_V4L2))
        self._capture: Any = None

    def open(self) -> dict[str, str]:
        capture = self._factory(str(self.node))
        if not capture.isOpened():
            capture.release()
            raise DeviceUnavailable(f"{self.node} cannot be opened (busy or unplugged)")
        # V4L2 negotiates in this order: format first, then size, then rate; the driver
        # picks the nearest it supports, so the probe reports what was actually granted.
        if self.pixel_format != "auto":
            capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*self.pixel_format))
        if self.width and self.height:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        if self.fps:
            capture.set(cv2.CAP_PROP_FPS, self.fps)
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest picture, not a stale queue
        self._capture = capture
        return {
            "format": _fourcc_text(capture.get(cv2.CAP_PROP_FOURCC)),
            "width": str(int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))),
            "height": str(int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))),
            "fps": f"{capture.get(cv2.CAP_PROP_FPS):g}",
        }

    def read(self) -> np.ndarray:
        if self._capture is None:
            raise DeviceUnavailable(f"{self.node} is not open")
        ok, image = self._capture.read()
        if not ok or image is None:
            # A UVC camera pulled from its port fails its next dequeue (ENODEV).
            raise DeviceUnavailable(f"{self.node} stopped delivering frames")
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        return np.ascontiguousarray(image)

    def release(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


class MjpegPipeSource:
    """Concatenated JPEG pictures from a FIFO, a character device or a file.

    A FIFO is opened without blocking and waited on with ``poll``: with no writer yet the
    open still succeeds, and a writer that goes away (the camera process died, the cable was
    pulled) ends the stream with :class:`DeviceUnavailable` instead of hanging the thread.
    Entropy-coded JPEG data escapes every 0xFF byte, so the start and end markers split
    pictures reliably (ffmpeg's MJPEG carries no embedded thumbnails).
    """

    def __init__(self, path: Path, *, read_timeout: float = 5.0) -> None:
        self.path = path
        self.read_timeout = read_timeout
        self._fd: int | None = None
        self._buffer = bytearray()
        self.corrupt = 0

    def open(self) -> dict[str, str]:
        if not self.path.exists():
            raise DeviceUnavailable(f"{self.path} is not there (unplugged?)")
        try:
            self._fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as err:
            raise DeviceUnavailable(f"{self.path} cannot be opened: {err.strerror}") from err
        self._buffer.clear()
        return {"format": "MJPG", "source": "pipe"}

    def read(self) -> np.ndarray:
        while True:
            jpeg = self._next_jpeg()
            image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
            if image is not None:
                return image
            self.corrupt += 1  # a torn picture: skip it, the next one is moments away

    def _next_jpeg(self) -> bytes:
        while True:
            start = self._buffer.find(_SOI)
            if start > 0:
                del self._buffer[:start]
            elif start < 0:
                del self._buffer[: max(0, len(self._buffer) - len(_SOI) + 1)]
            if start >= 0:
                end = self._buffer.find(_EOI, 2)
                restart = self._buffer.find(_SOI, 2, end if end >= 0 else len(self._buffer))
                if restart > 0:
                    # A new picture starts before this one ended: its tail was lost (a
                    # dropped USB packet, a writer killed mid-frame). Skip the torn one.
                    del self._buffer[:restart]
                    self.corrupt += 1
                    continue
                if end >= 0:
                    jpeg = bytes(self._buffer[: end + 2])
                    del self._buffer[: end + 2]
                    return jpeg
                if len(self._buffer) > _MAX_FRAME:
                    self._buffer.clear()
                    self.corrupt += 1
            self._fill()

    def _fill(self) -> None:
        fd = self._fd
        if fd is None:
            raise DeviceUnavailable(f"{self.path} is not open")
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLPRI)
        if not poller.poll(self.read_timeout * 1000):
            raise DeviceUnavailable(f"no data from {self.path} for {self.read_timeout:g} s")
        try:
            data = os.read(fd, 1 << 16)
        except BlockingIOError:
            return
        except OSError as err:
            raise DeviceUnavailable(f"{self.path}: {err.strerror}") from err
        if not data:
            raise DeviceUnavailable(f"{self.path} closed (the camera went away)")
        self._buffer += data

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class ImageFolderSource:
    """Stills from a folder, in name order, over and over."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._paths: list[Path] = []
        self._next = 0

    def open(self) -> dict[str, str]:
        if not self.folder.is_dir():
            raise PluginConfigError(f"image folder {self.folder} does not exist")
        self._paths = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self._paths:
            raise PluginConfigError(f"image folder {self.folder} holds no images")
        self._next = 0
        return {"format": "images", "images": str(len(self._paths))}

    def read(self) -> np.ndarray:
        for _ in range(len(self._paths)):
            path = self._paths[self._next % len(self._paths)]
            self._next += 1
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is not None:
                return image
        raise DeviceUnavailable(f"no readable image in {self.folder}")

    def release(self) -> None:
        self._paths = []
