"""The vehicle's colour, estimated from the paint beside and above its plate.

No wheel we can install ships a vehicle or colour model (NOTES.md), so this is plain geometry
and HSV: the plate box says where the car's rear (or front) is and how big, which locates
paint that is neither plate, lights nor windows on most cars; each pixel there is named by its
hue, saturation and brightness, and the most common name wins. It feeds the anti-switching
checks (a plate seen on a car of another colour than its registration), so it says "unknown"
rather than guess: at night an infrared camera sees no colour at all.

Brightness is judged against the plate's own white background when the plate has one: the
camera's exposure makes a silver car look white in the sun and grey in the shade, but it moves
the plate's white the same way.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

    from ..models import Image

Box = tuple[int, int, int, int]

UNKNOWN = "unknown"
#: the names the estimator gives (and "unknown"); what a DMV record's colour is compared with
COLOURS = ("white", "silver", "black", "red", "blue", "green", "yellow", "brown", "orange")

#: below this share of the body pixels, the winning colour is not trusted
MIN_CONFIDENCE = 0.4
#: fewer usable body pixels than this (a plate at the frame's edge): unknown
MIN_PIXELS = 60
#: the body area is resampled to at most this many pixels across (cost stays ~1 ms)
SAMPLE_WIDTH = 96
#: mean saturation below this over the whole area means a monochrome (infrared) picture
MONOCHROME_SATURATION = 3.0
#: a pixel is coloured (not white, grey or black) at this chroma (0..255) or more
MIN_CHROMA = 28.0
#: a colour wins over the greys when at least this share of pixels is coloured: painted colour
#: is diluted by reflections of the sky (greys) and by shadow (black), while grey, white and
#: black cars show few coloured pixels...
CHROMATIC_SHARE = 0.35
#: ...except blue, the sky in dark paint, which needs more
BLUE_SHARE = 0.5
#: the median brightness (0..255, after exposure correction) splitting black/silver and
#: silver/white
BLACK_BELOW = 95
WHITE_ABOVE = 205
#: the plate's white is expected at this brightness; the exposure correction is bounded
PLATE_WHITE = 210.0
MAX_EXPOSURE_GAIN = 1.6
MIN_EXPOSURE_GAIN = 0.75


@dataclass(frozen=True, slots=True)
class ColourEstimate:
    """A colour name from :data:`COLOURS` or ``"unknown"``, and a score 0..1 of how clearly
    the paint showed it (the share of coloured paint, or how far the grey level sat from the
    black/silver/white boundaries). It orders estimates; it is not a calibrated probability."""

    name: str
    confidence: float


def body_regions(shape: tuple[int, ...], box: Box) -> list[tuple[int, int, int, int]]:
    """``(x1, y1, x2, y2)`` areas of paint around a plate, clipped to the frame.

    Above the plate: the trunk lid or tailgate (front: the bumper's top), as wide as two plates
    and up to about 0.8 plate widths high, under the rear window of most cars. Below it: the
    bumper cover, half a plate width down. Not beside it: on most sedans the tail lights sit
    level with the plate, and red lights must not make every car red. A gap of a fifth of the
    plate's height is left around the plate for its frame and mount.
    """
    height, width = shape[:2]
    x, y, w, h = box
    gap_y = max(2, round(0.2 * h))
    cx = x + w / 2
    candidates = [
        (round(cx - w), round(y - 0.8 * w), round(cx + w), y - gap_y),
        (round(cx - w), y + h + gap_y, round(cx + w), round(y + h + gap_y + 0.4 * w)),
    ]
    regions = []
    for x1, y1, x2, y2 in candidates:
        x1, y1 = max(0, x1), max(0, y1)
        x2, y2 = min(width, x2), min(height, y2)
        if x2 - x1 >= 2 and y2 - y1 >= 2:
            regions.append((x1, y1, x2, y2))
    return regions


def vehicle_colour(image: Image, box: Box) -> ColourEstimate:
    """Estimate the colour of the vehicle whose plate is at ``box`` (``x, y, w, h``) in a BGR
    ``image``. Pure: no state, no I/O; a few milliseconds on a 1080p frame."""
    if image.ndim != 3 or image.shape[2] != 3 or box[2] <= 0 or box[3] <= 0:
        return ColourEstimate(UNKNOWN, 0.0)
    balance = _plate_white_balance(image, box)
    parts = [
        _pixels(image[y1:y2, x1:x2], balance) for x1, y1, x2, y2 in body_regions(image.shape, box)
    ]
    if not parts:
        return ColourEstimate(UNKNOWN, 0.0)
    body = np.concatenate(parts)
    if len(body) < MIN_PIXELS:
        return ColourEstimate(UNKNOWN, 0.0)
    if float(body[:, 1].mean()) < MONOCHROME_SATURATION:
        # Infrared or a grayscale stream: no hue anywhere, so no colour can be told.
        return ColourEstimate(UNKNOWN, 0.0)
    return decide(body)


def decide(hsv: npt.NDArray[np.uint8]) -> ColourEstimate:
    """The colour of body pixels (rows of OpenCV H 0–180, S, V, after white balance)."""
    hue = hsv[:, 0].astype(np.int16)
    val = hsv[:, 2].astype(np.float32)
    # Chroma (saturation times brightness) rather than saturation: dark paint has a high
    # saturation from a few levels of camera noise or a bluish sky reflection, but no chroma.
    chroma = hsv[:, 1].astype(np.float32) * val / 255.0
    chromatic = chroma >= MIN_CHROMA
    share = float(chromatic.mean())
    if share >= CHROMATIC_SHARE:
        names = _hue_names(hue[chromatic], val[chromatic], chroma[chromatic])
        counts = Counter(names.tolist())
        name, n = counts.most_common(1)[0]
        agreeing = n / len(names)
        # Blue is what black and grey paint reflect of the sky: it needs more of the paint.
        if name != "blue" or share >= BLUE_SHARE:
            return _sure(name, min(1.0, share / CHROMATIC_SHARE * 0.5) * agreeing + 0.5 * agreeing)
    level = float(np.median(val))
    if level < BLACK_BELOW:
        return _sure("black", 0.5 + (BLACK_BELOW - level) / 80)
    if level >= WHITE_ABOVE:
        return _sure("white", 0.5 + (level - WHITE_ABOVE) / 80)
    margin = min(level - BLACK_BELOW, WHITE_ABOVE - level)
    return _sure("silver", 0.5 + margin / 80)


def _hue_names(
    hue: npt.NDArray[np.int16], val: npt.NDArray[np.float32], chroma: npt.NDArray[np.float32]
) -> npt.NDArray[np.str_]:
    names = np.full(len(hue), "red", dtype="<U6")  # red and maroon/purple: the DMV's red
    warm = (hue >= 7) & (hue < 34)
    dull = (val < 150) | (chroma < 70)
    names[warm & (hue < 19)] = "orange"
    names[warm & (hue >= 19)] = "yellow"
    names[warm & dull] = "brown"  # dull warm hues are brown, beige or tan
    names[(hue >= 34) & (hue < 85)] = "green"
    names[(hue >= 85) & (hue < 135)] = "blue"
    return names


def vote_colours(estimates: Iterable[ColourEstimate]) -> ColourEstimate:
    """A track's colour: confidence summed per colour over its frames.

    The confidence is the winner's summed confidence over all frames, so frames that said
    another colour or "unknown" lower it; below :data:`MIN_CONFIDENCE` the track's colour is
    unknown.
    """
    support: defaultdict[str, float] = defaultdict(float)
    frames = 0
    for estimate in estimates:
        frames += 1
        if estimate.name != UNKNOWN:
            support[estimate.name] += estimate.confidence
    if not support:
        return ColourEstimate(UNKNOWN, 0.0)
    name = max(support, key=lambda n: support[n])
    return _sure(name, support[name] / frames)


def colour_fields(image: npt.NDArray[Any], box: Box) -> dict[str, str | float]:
    """``vehicle_colour`` and ``vehicle_colour_confidence`` of one plate in one decoded
    (uint8 BGR) image, as ``alprbox recognize --json`` reports them; the tracker votes the
    same estimate over a track's frames."""
    estimate = vehicle_colour(np.asarray(image, dtype=np.uint8), box)
    return {
        "vehicle_colour": estimate.name,
        "vehicle_colour_confidence": round(estimate.confidence, 4),
    }


def describe_colour(name: str | None, confidence: float) -> str:
    """How a read's colour is shown to an operator: an estimate, never a fact."""
    if name is None:
        return "not estimated"
    if name == UNKNOWN:
        return "unknown"
    # A score, not a probability: about 6 in 10 estimates matched a human's label on the dev
    # photos (benchmarks/colour.py), whatever the score. The operator checks the image.
    return f"{name} (estimated from the image, score {confidence:.2f}; check the image)"


def _sure(name: str, confidence: float) -> ColourEstimate:
    confidence = float(min(1.0, max(0.0, confidence)))
    if confidence < MIN_CONFIDENCE:
        return ColourEstimate(UNKNOWN, confidence)
    return ColourEstimate(name, confidence)


def _pixels(region: Image, balance: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
    """A region's pixels as rows of HSV after white balance, resampled so a big plate costs
    no more than a small one."""
    if region.size == 0:
        return np.empty((0, 3), np.uint8)
    h, w = region.shape[:2]
    if w > SAMPLE_WIDTH:
        size = (SAMPLE_WIDTH, max(1, round(h * SAMPLE_WIDTH / w)))
        region = np.asarray(cv2.resize(region, size, interpolation=cv2.INTER_AREA), np.uint8)
    balanced = np.clip(region.astype(np.float32) * balance, 0, 255).astype(np.uint8)
    hsv = cv2.cvtColor(balanced, cv2.COLOR_BGR2HSV)
    return np.asarray(hsv.reshape(-1, 3), dtype=np.uint8)


def _plate_white_balance(image: Image, box: Box) -> npt.NDArray[np.float32]:
    """Per-channel (B, G, R) gains that put the plate's white background at PLATE_WHITE.

    The camera's exposure makes a silver car white in the sun and grey in the shade, and its
    white balance tints everything; both move the plate's white the same way. No correction
    (gains of 1) when the plate shows no near-neutral light background (a dark or coloured
    plate), and bounded gains otherwise.
    """
    x, y, w, h = box
    plate = image[max(0, y) : y + h, max(0, x) : x + w]
    neutral = np.ones(3, np.float32)
    if plate.size < 60:
        return neutral
    pixels = plate.reshape(-1, 3).astype(np.float32)
    spread = pixels.max(axis=1) - pixels.min(axis=1)
    light = pixels[(spread < 0.25 * np.maximum(pixels.max(axis=1), 1)) & (pixels.max(axis=1) > 60)]
    if len(light) < 0.3 * len(pixels):
        return neutral
    white = np.percentile(light, 75, axis=0).astype(np.float32)
    gains = PLATE_WHITE / np.maximum(white, 1.0)
    return np.asarray(np.clip(gains, MIN_EXPOSURE_GAIN, MAX_EXPOSURE_GAIN), dtype=np.float32)
