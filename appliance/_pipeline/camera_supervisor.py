"""Runs one camera plugin: open, pull frames into its queue, reconnect with backoff, keep status.

A camera's failures stay with that camera. The supervisor logs once when a camera goes down and
once when it recovers, never once per retry, and the console reads its :class:`CameraStatus`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from .._metrics import Metrics
from ..base import Camera, Clock
from ..errors import AuthFailed, DeviceUnavailable, PluginConfigError
from .frame_queue import FrameQueue

logger = logging.getLogger(__name__)

State = Literal["starting", "running", "reconnecting", "failed", "ended", "stopped"]


@dataclass
class CameraStatus:
    name: str
    type: str
    state: State = "starting"
    error: str | None = None
    last_frame_at: datetime | None = None
    frames: int = 0
    dropped: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "type": self.type,
            "state": self.state,
            "error": self.error,
            "last_frame_at": self.last_frame_at.isoformat() if self.last_frame_at else None,
            "frames": self.frames,
            "dropped": self.dropped,
        }


class CameraSupervisor:
    def __init__(
        self,
        camera: Camera,
        queue: FrameQueue,
        status: CameraStatus,
        metrics: Metrics,
        clock: Clock,
        *,
        frame_timeout: float = 15.0,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
    ) -> None:
        self.camera = camera
        self.queue = queue
        self.status = status
        self._metrics = metrics
        self._clock = clock
        self._frame_timeout = frame_timeout
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._got_frames = False
        self._last_bug: str | None = None
        self._label = f"Camera '{camera.name}' ({type(camera).__name__})"
        # Computed when /metrics is scraped, so a camera that stopped shows its age growing
        # (an alert rule needs no clock arithmetic on the last-frame timestamp).
        metrics.camera_frame_age.labels(camera.name).set_function(self._frame_age)

    def _frame_age(self) -> float:
        last = self.status.last_frame_at
        if last is None:
            return float("nan")
        return max(0.0, (self._clock.now() - last).total_seconds())

    async def run(self) -> None:
        backoff = self._backoff_initial
        try:
            while True:
                try:
                    await self._stream()
                    if self.camera.may_end:
                        self._set("ended", None)
                        logger.info("%s: stream ended", self._label)
                        return
                    raise DeviceUnavailable("stream ended")
                except DeviceUnavailable as err:
                    self._down("reconnecting", f"unavailable: {err}")
                except AuthFailed as err:
                    self._down("failed", f"credentials refused: {err}")
                except PluginConfigError as err:
                    self._down("failed", f"configuration error: {err}")
                    return
                except Exception as err:
                    if _stopping():
                        # The box asked this camera to stop and the plugin's cleanup raised on
                        # the way out: stopping wins, or the host would restart the camera and
                        # wait on it forever.
                        logger.warning("%s raised while stopping: %s", self._label, err)
                        raise asyncio.CancelledError from err
                    # A bug in the plugin: its traceback is logged once per distinct error, even
                    # when the camera flaps between working and failing; the box keeps running.
                    signature = f"{type(err).__name__}: {err}"
                    if signature != self._last_bug:
                        logger.exception("%s failed with an unexpected error", self._label)
                        self._last_bug = signature
                    self._set("failed", signature)
                    self._metrics.camera_up.labels(self.camera.name).set(0)
                finally:
                    await self._close_quietly()
                if self._got_frames:  # it worked for a while: start backing off afresh
                    backoff = self._backoff_initial
                delay = backoff * random.uniform(0.8, 1.2)  # jitter: many boxes, one outage
                backoff = min(backoff * 2, self._backoff_max)
                await self._clock.sleep(delay)
        except asyncio.CancelledError:
            self._set("stopped", None)
            raise
        finally:
            self.queue.close()
            self._metrics.camera_up.labels(self.camera.name).set(0)

    async def _stream(self) -> None:
        self._got_frames = False
        await self.camera.open()
        loop = asyncio.get_running_loop()
        frames = self.camera.frames()
        sequence = 0
        try:
            # The watchdog is wall-clock time on purpose: a frozen device is frozen in real time,
            # whatever clock the plugin stamps frames with.
            async with asyncio.timeout(self._frame_timeout) as watchdog:
                async for frame in frames:
                    watchdog.reschedule(loop.time() + self._frame_timeout)
                    sequence += 1
                    if frame.camera != self.camera.name or frame.sequence == 0:
                        frame = dataclasses.replace(
                            frame, camera=self.camera.name, sequence=sequence
                        )
                    self._on_frame(frame.timestamp)
                    self.queue.put(frame)
        except TimeoutError:
            raise DeviceUnavailable(f"no frame for {self._frame_timeout:g} s") from None
        finally:
            aclose = getattr(frames, "aclose", None)
            if aclose is not None:
                await aclose()

    def _on_frame(self, timestamp: datetime) -> None:
        self._got_frames = True
        if self.status.state != "running":
            if self.status.state in ("reconnecting", "failed"):
                logger.info("%s recovered: frames are arriving again", self._label)
            self._set("running", None)
            self._metrics.camera_up.labels(self.camera.name).set(1)
        self.status.frames += 1
        self.status.last_frame_at = timestamp
        self.status.dropped = self.queue.dropped
        self._metrics.frames.labels(self.camera.name).inc()
        self._metrics.camera_last_frame.labels(self.camera.name).set(timestamp.timestamp())

    def _down(self, state: State, error: str) -> None:
        if self.status.state != state or self.status.error != error:
            logger.warning(
                "%s %s: %s", self._label, "offline" if state == "reconnecting" else "failed", error
            )
        self._set(state, error)
        self._metrics.camera_up.labels(self.camera.name).set(0)

    def _set(self, state: State, error: str | None) -> None:
        self.status.state = state
        self.status.error = error

    async def _close_quietly(self) -> None:
        try:
            await self.camera.close()
        except Exception:
            logger.warning("%s: close() raised", self._label, exc_info=True)


def _stopping() -> bool:
    """Whether the running task has been asked to cancel (its cancel may have been swallowed)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
