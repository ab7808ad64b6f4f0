"""Takes one camera's frames through the gate, the recognizer and the tracker.

Inference runs on the appliance's single inference thread (onnxruntime parallelises inside a
call; two calls at once would only fight for the same cores). The worker never blocks its
camera: it pulls from the camera's drop-oldest queue at its own pace.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor

from ..base import Clock, Recognizer
from .._metrics import Metrics
from ..models import PlateDetection, PlateRead
from .frame_queue import FrameQueue
from .gate import FrameGate
from .tracker import PlateTracker

logger = logging.getLogger(__name__)

ReadSink = Callable[[PlateRead], Awaitable[None]]

# How often open tracks are checked for expiry while no frame arrives (a stalled camera must
# not hold a vehicle's read back forever).
_IDLE_TICK = 1.0


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
    ) -> None:
        self.camera = camera
        self._queue = queue
        self._gate = gate
        self._tracker = tracker
        self._recognizer = recognizer
        self._executor = executor
        self._sink = sink
        self._metrics = metrics
        self._clock = clock
        self._failing = False

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
                if not self._gate.admit(frame.image, frame.timestamp.timestamp(),
                                        self._tracker.active):
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
                    if not self._failing:
                        logger.error(
                            "Camera '%s': recognizer could not process frame %d: %s: %s",
                            self.camera, frame.sequence, type(err).__name__, err,
                        )
                        self._failing = True
                    continue
                if self._failing:
                    logger.info("Camera '%s': recognizer processing frames again", self.camera)
                    self._failing = False
                self._metrics.recognize_seconds.labels(self.camera).observe(loop.time() - started)
                await self._emit(self._tracker.update(frame, detections))
        finally:
            # Shutdown or camera end: vehicles still in view become reads, nothing is lost.
            await self._emit(self._tracker.flush())

    async def _emit(self, reads: list[PlateRead]) -> None:
        for read in reads:
            await self._sink(read)
