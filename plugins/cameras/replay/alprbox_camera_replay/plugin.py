"""The replay camera: recorded footage played back as if it were live."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from pydantic import Field

from appliance import (
    Camera,
    CameraSettings,
    DeviceUnavailable,
    Frame,
    PluginConfigError,
    hookimpl,
)
from appliance.capture import StreamCapture

logger = logging.getLogger(__name__)

DEMO_CLIP = Path(__file__).parent / "clips" / "demo-clip.mp4"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
_STREAM_PREFIXES = ("rtsp://", "rtsps://", "http://", "https://")


class ReplaySettings(CameraSettings):
    type: Literal["replay"] = Field(title="Camera type", description="Replay recorded footage.")
    source: str = Field(
        title="Source",
        description="A video file, a folder of images, a stream URL, or 'demo' for the bundled "
        "demo clip.",
    )
    fps: float | None = Field(
        default=None,
        gt=0,
        le=120,
        title="Frames per second",
        description="Playback rate; default the file's own rate (images: 10).",
    )
    loop: bool = Field(default=True, title="Loop", description="Start again at the end.")
    realtime: bool = Field(
        default=True,
        title="Real time",
        description="Pace frames at the playback rate; off delivers them as fast as they decode.",
    )
    image_seconds: float = Field(
        default=2.0,
        gt=0,
        title="Seconds per image",
        description="How long each image of a folder is shown.",
    )


class ReplayCamera(Camera):
    settings_model = ReplaySettings
    may_end = True
    supports_snapshot = False

    settings: ReplaySettings

    def __init__(self, settings: CameraSettings, context: Any) -> None:
        super().__init__(settings, context)
        self._source = self._resolve(self.settings.source)
        self._bad_frames = 0

    @property
    def bad_frames(self) -> int:
        """Frames or images that could not be decoded and were skipped."""
        return self._bad_frames

    @staticmethod
    def _resolve(source: str) -> str | Path:
        if source == "demo":
            return DEMO_CLIP
        if source.startswith(_STREAM_PREFIXES):
            return source
        return Path(source).expanduser()

    async def open(self) -> None:
        source = self._source
        if isinstance(source, Path):
            if not source.exists():
                raise PluginConfigError(f"source {source} does not exist")
            if source.is_dir() and not _images_in(source):
                raise PluginConfigError(f"source folder {source} holds no images")

    async def probe(self) -> dict[str, str]:
        await self.open()
        if isinstance(self._source, Path) and self._source.is_dir():
            return {"kind": "image folder", "images": str(len(_images_in(self._source)))}
        if isinstance(self._source, str):
            stream = StreamCapture(self._source, name=self.name)
            try:
                info = await stream.open()
            finally:
                await stream.close()
            return {"kind": "stream", **info.as_dict()}
        capture = await asyncio.to_thread(_open_capture, self._source)
        try:
            return {
                "kind": "stream" if isinstance(self._source, str) else "video file",
                "width": str(int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))),
                "height": str(int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))),
                "fps": f"{capture.get(cv2.CAP_PROP_FPS):g}",
            }
        finally:
            capture.release()

    async def frames(self) -> AsyncIterator[Frame]:
        clock = self.context.clock
        if isinstance(self._source, str):
            # A live stream paces itself. The host's capture helper reads it over TCP with
            # timeouts in its own thread, and a stream that stops raises DeviceUnavailable, so
            # the host reconnects with backoff.
            stream = StreamCapture(self._source, name=self.name, clock=clock)
            await stream.open()
            try:
                async for frame in stream.frames():
                    yield frame
            finally:
                await stream.close()
            raise DeviceUnavailable(f"stream {stream.display_source} ended")
        while True:
            rate, images = await asyncio.to_thread(self._playlist)
            interval = 1.0 / rate
            due = clock.monotonic()
            delivered = 0
            reading: asyncio.Future[np.ndarray | None] | None = None
            try:
                while True:
                    reading = asyncio.ensure_future(asyncio.to_thread(next, images, None))
                    image = await asyncio.shield(reading)  # a stop must not orphan the thread
                    if image is None:
                        break
                    if self.settings.realtime:
                        due += interval
                        delay = due - clock.monotonic()
                        if delay > 0:
                            await clock.sleep(delay)
                        else:
                            due = clock.monotonic()  # behind: do not try to catch up in a burst
                    delivered += 1
                    yield Frame(image=image, timestamp=clock.now())
            finally:
                # A stop can land while a worker thread is inside the generator; closing it then
                # raises "generator already executing" and leaks the capture. The read finishes
                # within one frame's decode, so wait for it, then close.
                if reading is not None and not reading.done():
                    await asyncio.wait([reading])
                images.close()
            if delivered == 0:
                raise DeviceUnavailable(f"source {self._source} delivered no readable frame")
            if not self.settings.loop:
                return

    def _playlist(self) -> tuple[float, Iterator[np.ndarray]]:
        source = self._source
        if isinstance(source, Path) and source.is_dir():
            rate = self.settings.fps or 10.0
            repeat = max(1, round(self.settings.image_seconds * rate))
            return rate, self._folder_frames(_images_in(source), repeat)
        capture = _open_capture(source)
        rate = self.settings.fps or capture.get(cv2.CAP_PROP_FPS) or 10.0
        return float(rate), self._video_frames(capture)

    def _folder_frames(self, paths: list[Path], repeat: int) -> Iterator[np.ndarray]:
        for path in paths:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                self._skip(f"image {path.name} is unreadable")
                continue
            for _ in range(repeat):
                yield image

    def _video_frames(self, capture: cv2.VideoCapture) -> Iterator[np.ndarray]:
        try:
            while True:
                ok, image = capture.read()
                if not ok:
                    return
                if image is None or image.ndim != 3:
                    self._skip("a frame could not be decoded")
                    continue
                yield image
        finally:
            capture.release()

    def _skip(self, why: str) -> None:
        self._bad_frames += 1
        if self._bad_frames == 1:  # once, not once per frame: a bad file can have thousands
            logger.warning(
                "Camera '%s' (replay): %s; skipping it (further ones counted only)", self.name, why
            )


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _open_capture(source: str | Path) -> cv2.VideoCapture:
    capture = cv2.VideoCapture(str(source), cv2.CAP_FFMPEG)
    if not capture.isOpened():
        capture.release()
        if isinstance(source, Path):
            raise PluginConfigError(f"source {source} is not a readable video")
        raise DeviceUnavailable(f"stream {source} cannot be opened")
    return capture


@hookimpl
def appliance_camera_types() -> list[type[Camera]]:
    return [ReplayCamera]
