"""Takes one camera's frames through the gate, the recognizer and the tracker.

Inference runs on the appliance's single inference thread (onnxruntime parallelises inside a
call; two calls at once would only fight for the same cores). The worker never blocks its
camera: it pulls from the camera's drop-oldest queue at its own pace.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor

from .._metrics import Metrics
from ..base import Clock, Recognizer
from ..models import PlateDetection, PlateRead
from .frame_queue import FrameQueue
from .gate import FrameGate
from .tracker import PlateTracker

logger = logging.getLogger(__name__)

ReadSink = Callable[[PlateRead], Awaitable[None]]
#: the camera's own word on whether anything moves (:meth:`appliance.base.Camera.motion_hint`)
MotionHint = Callable[[], bool | None]

# How often open tracks are checked for expiry while no frame arrives (a stalled camera must
# not hold a vehicle's read back forever).
_IDLE_TICK = 1.0
_ERROR_LOG_INTERVAL = 600.0


class RecognitionWorker:
    def __init__(
        self,
        camera: str,
        queue: FrameQueue,
        gate: FrameGate,
        tracker: PlateTracker,
        recognizer: Recognizer,
        executor: Executor,
        sink: ReadSink,
        metrics: Metrics,
        clock: Clock,
        motion_hint: MotionHint | None = None,
    ) -> None:
        self.camera = camera
        self._motion_hint = motion_hint
        self._hint_failed = False
        self._queue = queue
        self._gate = gate
        self._tracker = tracker
        self._recognizer = recognizer
        self._executor = executor
        self._sink = sink
        self._metrics = metrics
        self._clock = clock
        self._logged_errors: dict[str, float] = {}

    async def run(self) -> None:
        """Process frames until the queue is closed and drained, then flush open tracks."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    frame = await asyncio.wait_for(self._queue.get(), _IDLE_TICK)
                except TimeoutError:
                    await self._emit(self._tracker.expire(self._clock.now()))
                    continue
                if frame is None:
                    break
                await self._emit(self._tracker.expire(frame.timestamp))
                hint = self._hint()
                if hint is False and not self._tracker.active:
                    # The camera says nothing moves and no vehicle is in view: not even the
                    # thumbnail is worth computing. A tracked vehicle is followed regardless.
                    self._metrics.frames_event_skipped.labels(self.camera).inc()
                    continue
                if not self._gate.admit(
                    frame.image, frame.timestamp.timestamp(), self._tracker.active, hint is True
                ):
                    self._metrics.frames_gated.labels(self.camera).inc()
                    continue
                self._metrics.detector_runs.labels(self.camera).inc()
                started = loop.time()
                try:
                    detections: list[PlateDetection] = await loop.run_in_executor(
                        self._executor, self._recognizer.recognize, frame.image
                    )
                except Exception as err:
                    self._metrics.frame_errors.labels(self.camera).inc()
                    self._log_frame_error(frame.sequence, err)
                    continue
                self._metrics.recognize_seconds.labels(self.camera).observe(loop.time() - started)
                if not detections:
                    self._gate.found_nothing()
                await self._emit(self._tracker.update(frame, detections))
        finally:
            # Shutdown or camera end: vehicles still in view become reads, nothing is lost.
            await self._emit(self._tracker.flush())

    def _hint(self) -> bool | None:
        """The camera's motion hint; None (look at the pixels) without one or if it raises."""
        if self._motion_hint is None or self._hint_failed:
            return None
        try:
            hint = self._motion_hint()
        except Exception:
            # A plugin bug must not stop plate reading: log it once, gate on pixels from now on.
            logger.exception(
                "Camera '%s': motion_hint() raised; gating on pixel change instead", self.camera
            )
            self._hint_failed = True
            return None
        return hint if isinstance(hint, bool) else None

    def _log_frame_error(self, sequence: int, err: Exception) -> None:
        # A corrupt stream can fail on every other frame: say so once per kind of error every
        # few minutes (the metric counts each one), not once per frame.
        signature = f"{type(err).__name__}: {err}"
        now = time.monotonic()
        last = self._logged_errors.get(signature)
        if last is not None and now - last < _ERROR_LOG_INTERVAL:
            return
        self._logged_errors[signature] = now
        logger.error(
            "Camera '%s': recognizer could not process frame %d: %s (frames like it are skipped "
            "and counted in alprbox_frame_errors_total)",
            self.camera,
            sequence,
            signature,
        )

    async def _emit(self, reads: list[PlateRead]) -> None:
        for read in reads:
            await self._sink(read)
