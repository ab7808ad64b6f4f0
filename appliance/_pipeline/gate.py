"""Decides which frames are worth the detector's ~0.1–0.5 s of CPU.

The detector is far too slow for every frame on a small box (NOTES.md), and most frames of a
gate camera show an empty road. The gate compares a tiny grayscale thumbnail of each frame with
the thumbnail of the last frame it admitted: enough pixels changed means something moved in.
Comparing with the last *admitted* frame, not the previous one, means slow changes (a car
creeping up) add up until they are noticed instead of slipping through a frame at a time.

An empty street is not still, and every false admission costs a detector run (~0.1 s of CPU;
at four a second that is 40 % of a core for nothing). Two things keep it quiet:

- a change of the whole picture's light (a cloud, the camera's auto-exposure) is not motion:
  the frame is divided by the median pixel's brightness ratio to the reference first;
- each thumbnail pixel learns how much it wobbles on its own while nothing is tracked (a tree
  waving, its shadow, a flag: a running variance), and must change by that much more to count.
  The learning is slow (tens of seconds) so a passing vehicle barely moves it, and it pauses
  while a plate is tracked; road pixels keep their low bar, so a vehicle is still admitted by
  the road it covers.
"""

from __future__ import annotations

import logging
import math
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
#: what averaged sensor noise and compression shimmer move it, well below a car against the road
#: (light changes are divided out first).
PIXEL_DELTA = 18
#: sample every n-th pixel (about this many across) before averaging, so the cost does not grow
#: with the frame size: a full INTER_AREA pass over 1080p costs ~2 ms, sampling ~0.03 ms. Each
#: thumbnail pixel still averages ~9 samples, enough to smooth sensor noise.
SAMPLE_WIDTH = 192
#: light changes the gate divides out: a thumbnail pixel counts as lit from this grey level,
#: and only whole-picture brightness ratios in this range are taken for light (clouds, the
#: camera's exposure steps); anything else is left for the pixel comparison to judge.
LIT_LEVEL = 16
MIN_GAIN, MAX_GAIN = 0.5, 2.0
#: time constant (s) of each pixel's learned wobble: a tree waving all along is learned in
#: ~10 s; a car crossing a pixel for a second moves it by a fifteenth of its deviation².
WOBBLE_SECONDS = 15.0
#: a pixel must change by PIXEL_DELTA plus this many of its own standard deviations
WOBBLE_SPREAD = 3.0


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
        # Per thumbnail pixel, in the reference's light: running mean and variance of idle frames.
        self._mean: npt.NDArray[np.float32] | None = None
        self._variance: npt.NDArray[np.float32] | None = None
        self._last_learned = float("-inf")
        # The last admitted untracked frame (in the new reference's light), until the detector
        # says whether it held a plate.
        self._unconfirmed: tuple[npt.NDArray[np.uint8], float] | None = None

    def admit(self, image: Image, now: float, tracking: bool, motion: bool = False) -> bool:
        """Whether this frame goes to the detector. ``now`` is in seconds, any monotonic base.

        ``motion``: the camera's own events say something moves, so the pixel comparison is
        skipped (its analytics see more than a 64-pixel thumbnail); the rate limit still holds.
        """
        if now < self._last_admit:
            # The camera's clock jumped back (NTP fix, reboot): start timing afresh rather than
            # skipping every frame until the clock catches up.
            self._last_admit = float("-inf")
            self._last_learned = now
        # Compare frame times with a little slack: 10 fps frames stamped 0.1 s apart must pass a
        # 0.2 s interval on the second frame, not the third, despite rounding.
        since = now - self._last_admit + 1e-6
        if since < self.min_interval:
            self.skipped += 1
            return False
        thumb = thumbnail(image)
        reference = self._reference
        if reference is None or reference.shape != thumb.shape:
            # The model starts from the first frame the detector finds empty, not from this
            # one: a camera may well come up with a car in view.
            self._mean = self._variance = None
            self._unconfirmed = None if tracking else (thumb, now)
            return self._accept(thumb, now)
        before = reference.astype(np.float32)
        gain = light_change(thumb, before)
        level: npt.NDArray[np.float32] = np.multiply(thumb, 1 / gain, dtype=np.float32)
        self._unconfirmed = None
        if (tracking and since >= self.recheck) or motion:
            return self._accept(thumb, now)
        bar = PIXEL_DELTA + WOBBLE_SPREAD * np.sqrt(self._variance_or_zero())
        changed = np.count_nonzero(np.abs(level - before) > bar)
        if changed > self.threshold * thumb.size:
            if not tracking:
                # Learned only if the detector then finds no plate in it (found_nothing): a
                # frame with a vehicle must never teach the gate that vehicles are background,
                # or a busy road soon stops being seen at all.
                self._unconfirmed = (thumb, now)
            return self._accept(thumb, now)
        self.skipped += 1
        return False

    def found_nothing(self) -> None:
        """The detector saw no plate in the frame just admitted: what moved there was
        background (a tree, a shadow), and may teach each pixel how much it wobbles."""
        if self._unconfirmed is not None:
            self._learn(*self._unconfirmed)
            self._unconfirmed = None

    def nuisance_share(self) -> float:
        """Share of the picture wobbling enough that its bar is at least doubled (trees...)."""
        variance = self._variance_or_zero()
        wobbly = WOBBLE_SPREAD * np.sqrt(variance) >= PIXEL_DELTA
        return float(np.count_nonzero(wobbly)) / max(1, variance.size)

    def _variance_or_zero(self) -> npt.NDArray[np.float32]:
        return self._variance if self._variance is not None else np.zeros(1, np.float32)

    def _learn(self, thumb: npt.NDArray[np.uint8], now: float) -> None:
        """Fold an idle frame into each pixel's running mean and variance (time-weighted)."""
        if self._mean is None or self._variance is None or self._mean.shape != thumb.shape:
            self._mean = thumb.astype(np.float32)
            self._variance = np.zeros(thumb.shape, np.float32)
            self._last_learned = now
            return
        # In the model's own light, measured against the model itself: a light ratio carried
        # from reference to reference breaks as soon as one frame's ratio is misjudged (a car
        # filling the picture), and would then shift every pixel at once.
        level = np.multiply(thumb, 1 / light_change(thumb, self._mean), dtype=np.float32)
        elapsed = min(max(0.0, now - self._last_learned), WOBBLE_SECONDS)
        self._last_learned = now
        weight = np.float32(1 - math.exp(-elapsed / WOBBLE_SECONDS))
        deviation = level - self._mean
        # Huber-like: a change beyond a pixel's current bar counts only as big as the bar, so a
        # new object (a car creeping in, then parking) raises its pixels' bar slowly and stays
        # visible, while a tree's back-and-forth is learned within tens of seconds.
        bar = PIXEL_DELTA + WOBBLE_SPREAD * np.sqrt(self._variance)
        capped = np.clip(deviation, -bar, bar)
        self._mean += weight * capped
        self._variance += weight * (capped * capped - self._variance)

    def _accept(self, thumb: npt.NDArray[np.uint8], now: float) -> bool:
        self._reference = thumb
        self._last_admit = now
        self.admitted += 1
        return True


def light_change(thumb: npt.NDArray[np.uint8], before: npt.NDArray[np.float32]) -> float:
    """How much brighter the whole picture got since ``before``; 1.0 when it is not that.

    The median pixel is background: its change of brightness is the light changing (a cloud,
    auto-exposure; multiplicative in gamma-encoded values too), not motion. Only pixels that
    were lit count (a ratio to near-black says nothing), and a ratio no cloud or exposure step
    makes (a vehicle filling most of the picture, a cut to another scene) is no light change.
    """
    lit = before >= LIT_LEVEL
    if np.count_nonzero(lit) < before.size // 4:
        return 1.0
    gain = float(np.median(thumb[lit] / before[lit]))
    return gain if MIN_GAIN <= gain <= MAX_GAIN else 1.0


def thumbnail(image: Image) -> npt.NDArray[np.uint8]:
    """A small grayscale version of a BGR (or grayscale) frame."""
    height, width = image.shape[:2]
    step = max(1, width // SAMPLE_WIDTH)
    # Green stands in for gray: it carries most of the luminance and needs no colour conversion.
    sampled = image[::step, ::step, 1] if image.ndim == 3 else image[::step, ::step]
    size = (THUMB_WIDTH, max(1, round(THUMB_WIDTH * height / width)))
    small = cv2.resize(np.ascontiguousarray(sampled), size, interpolation=cv2.INTER_AREA)
    return np.asarray(small, dtype=np.uint8)
