"""The replay camera: conformance with the host's suite, plus what bad sources do."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from alprbox_camera_replay import DEMO_CLIP, ReplayCamera, ReplaySettings, plugin

from appliance import PluginConfigError, PluginContext
from appliance.testing import CameraConformance, FakeClock


def write_video(path: Path, frames: int = 12, size: tuple[int, int] = (160, 120)) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, size)
    for i in range(frames):
        image = np.zeros((size[1], size[0], 3), np.uint8)
        image[40:60, i * 8 : i * 8 + 30] = (0, 200, 255)
        writer.write(image)
    writer.release()
    return path


def write_images(folder: Path, count: int = 3) -> Path:
    folder.mkdir()
    for i in range(count):
        image = np.full((90, 120, 3), 30 * i, np.uint8)
        cv2.imwrite(str(folder / f"img{i:02d}.jpg"), image)
    return folder


def make_camera(tmp_path: Path, **settings: Any) -> ReplayCamera:
    context = PluginContext(logging.getLogger("test"), tmp_path, FakeClock())
    return ReplayCamera(ReplaySettings(type="replay", name="r", **settings), context)


async def collect(camera: ReplayCamera, limit: int = 1000) -> list[Any]:
    await camera.open()
    frames = []
    async for frame in camera.frames():
        frames.append(frame)
        if len(frames) >= limit:
            break
    await camera.close()
    return frames


class TestReplayVideo(CameraConformance):
    @pytest.fixture
    def camera_plugin(self) -> Any:
        return plugin

    @pytest.fixture
    def camera_settings(self, tmp_path: Path) -> dict[str, Any]:
        return {"type": "replay", "name": "video", "source": str(write_video(tmp_path / "c.mp4"))}


class TestReplayImages(CameraConformance):
    @pytest.fixture
    def camera_plugin(self) -> Any:
        return plugin

    @pytest.fixture
    def camera_settings(self, tmp_path: Path) -> dict[str, Any]:
        return {"type": "replay", "name": "images", "source": str(write_images(tmp_path / "i"))}


async def test_plays_once_at_the_file_rate_without_loop(tmp_path: Path) -> None:
    camera = make_camera(tmp_path, source=str(write_video(tmp_path / "c.mp4")), loop=False)
    clock = camera.context.clock
    start = clock.monotonic()
    frames = await collect(camera)
    assert len(frames) == 12
    # 12 frames at the file's 10 fps take 1.2 s of (fake) time.
    assert clock.monotonic() - start == pytest.approx(1.2, abs=0.01)


async def test_loops(tmp_path: Path) -> None:
    camera = make_camera(tmp_path, source=str(write_video(tmp_path / "c.mp4")), realtime=False)
    assert len(await collect(camera, limit=30)) == 30


async def test_image_folder_shows_each_image_for_image_seconds(tmp_path: Path) -> None:
    camera = make_camera(
        tmp_path, source=str(write_images(tmp_path / "i")), fps=5, image_seconds=1, loop=False
    )
    frames = await collect(camera)
    assert len(frames) == 15
    assert int(frames[0].image.mean()) == 0 and int(frames[-1].image.mean()) == 60


async def test_unreadable_image_is_skipped_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = write_images(tmp_path / "i")
    (folder / "img00.jpg").write_bytes(b"not a jpeg")
    (folder / "img01.jpg").write_bytes(b"\xff\xd8 truncated")
    camera = make_camera(tmp_path, source=str(folder), fps=2, image_seconds=1, loop=False)
    frames = await collect(camera)
    assert len(frames) == 2 and camera.bad_frames == 2
    assert sum("unreadable" in r.getMessage() for r in caplog.records) == 1


async def test_missing_source_names_the_path(tmp_path: Path) -> None:
    camera = make_camera(tmp_path, source=str(tmp_path / "nope.mp4"))
    with pytest.raises(PluginConfigError, match=r"nope\.mp4 does not exist"):
        await camera.open()


async def test_not_a_video_is_a_config_error(tmp_path: Path) -> None:
    bogus = tmp_path / "clip.mp4"
    bogus.write_bytes(b"garbage" * 100)
    camera = make_camera(tmp_path, source=str(bogus))
    await camera.open()
    with pytest.raises(PluginConfigError, match="not a readable video"):
        await asyncio.wait_for(collect(camera), 10)


def test_demo_clip_is_bundled() -> None:
    capture = cv2.VideoCapture(str(DEMO_CLIP))
    assert capture.isOpened(), f"{DEMO_CLIP} missing or unreadable"
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) > 100
    capture.release()


async def test_stop_during_a_decode_waits_for_it_and_releases_the_source(tmp_path: Path) -> None:
    """A stop that lands while a worker thread is decoding must end the camera cleanly.

    Closing the frame generator while the thread is inside it raised "generator already
    executing", which the host took for a plugin bug and restarted the camera it was stopping.
    """
    import threading

    camera = make_camera(tmp_path, source=str(write_images(tmp_path / "i")), realtime=False)
    inside, release, released = threading.Event(), threading.Event(), []

    def slow_frames() -> Any:
        try:
            inside.set()
            release.wait(10)
            yield np.zeros((8, 8, 3), np.uint8)
        finally:
            released.append(True)

    camera._playlist = lambda: (10.0, slow_frames())  # type: ignore[method-assign]
    await camera.open()

    async def read_one() -> None:
        async for _ in camera.frames():
            break

    task = asyncio.create_task(read_one())
    await asyncio.to_thread(inside.wait, 10)
    task.cancel()
    await asyncio.sleep(0.05)
    release.set()  # the decode finishes after the stop was asked for
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 10)
    assert released == [True]  # the source was closed, not leaked
