"""Decides which frames are worth the detector's ~0.3–0.5 s of CPU.

The detector is far too slow for every frame on a small box (NOTES.md), and most frames of a
gate camera show an empty road. The gate compares a tiny grayscale thumbnail of each frame with
the thumbnail of the last frame it admitted: enough pixels changed means something moved in.
Comparing with the last *admitted* frame, not the previous one, means slow changes (a car
creeping up) add up until they are noticed instead of slipping through a frame at a time.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

    from .._config import PipelineSettings
    from ..models import Image

logger = logging.getLogger(__name__)

#: thumbnail width; height follows the frame's aspect ratio (64×36 for 16:9)
THUMB_WIDTH = 64
#: a thumbnail pixel "changed" when its gray level moved more than this (0..255): well above
#: what averaged sensor noise, compression shimmer and auto-exposure nudges move it, well below
#: a car against the road.
PIXEL_DELTA = 18
#: sample every n-th pixel (about this many across) before averaging, so the cost does not grow
#: with the frame size: a full INTER_AREA pass over 1080p costs ~2 ms, sampling ~0.03 ms. Each
#: thumbnail pixel still averages ~9 samples, enough to smooth sensor noise.
SAMPLE_WIDTH = 192


class FrameGate:
    """Admits a frame to the detector when enough of the picture changed.

    Never more often than ``settings.max_detect_fps``; while a plate is tracked, at least every
    ``settings.recheck_seconds`` even if nothing changed (so a stopped car is still confirmed
    and the tracker's timeout is fed). ``admitted`` and ``skipped`` count frames for metrics.
    """

    def __init__(self, settings: PipelineSettings) -> None:
        self.threshold = settings.gate_threshold
        self.min_interval = 1.0 / settings.max_detect_fps
        self.recheck = settings.recheck_seconds
        self.admitted = 0
        self.skipped = 0
        self._reference: npt.NDArray[np.uint8] | None = None
        self._last_admit = float("-inf")

    def admit(self, image: Image, now: float, tracking: bool, motion: bool = False) -> bool:
        """Whether this frame goes to the detector. ``now`` is in seconds, any monotonic base.

        ``motion``: the camera's own events say something moves, so the pixel comparison is
        skipped (its analytics see more than a 64-pixel thumbnail); the rate limit still holds.
        """
        if now < self._last_admit:
            # The camera's clock jumped back (NTP fix, reboot): start timing afresh rather than
            # skipping every frame until the clock catches up.
            self._last_admit = float("-inf")
        # Compare frame times with a little slack: 10 fps frames stamped 0.1 s apart must pass a
        # 0.2 s interval on the second frame, not the third, despite rounding.
        since = now - self._last_admit + 1e-6
        if since < self.min_interval:
            self.skipped += 1
            return False
        thumb = thumbnail(image)
        reference = self._reference
        due = (tracking and since >= self.recheck) or motion
        if reference is None or reference.shape != thumb.shape or due:
            return self._accept(thumb, now)
        changed = np.count_nonzero(cv2.absdiff(thumb, reference) > PIXEL_DELTA)
        if changed > self.threshold * thumb.size:
            return self._accept(thumb, now)
        self.skipped += 1
        return False

    def _accept(self, thumb: npt.NDArray[np.uint8], now: float) -> bool:
        self._reference = thumb
        self._last_admit = now
        self.admitted += 1
        return True


def thumbnail(image: Image) -> npt.NDArray[np.uint8]:
    """A small grayscale version of a BGR (or grayscale) frame."""
    height, width = image.shape[:2]
    step = max(1, width // SAMPLE_WIDTH)
    # Green stands in for gray: it carries most of the luminance and needs no colour conversion.
    sampled = image[::step, ::step, 1] if image.ndim == 3 else image[::step, ::step]
    size = (THUMB_WIDTH, max(1, round(THUMB_WIDTH * height / width)))
    small = cv2.resize(np.ascontiguousarray(sampled), size, interpolation=cv2.INTER_AREA)
    return np.asarray(small, dtype=np.uint8)
