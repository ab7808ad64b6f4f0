"""Frozen values that cross the plugin boundary.

Everything a plugin receives or returns is one of these. They are plain dataclasses so a vendor
can build them in tests without the host; numpy arrays are the only non-trivial members.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Image = npt.NDArray[np.uint8]
else:
    Image = object


@dataclass(frozen=True, slots=True)
class Location:
    """Where the box was (WGS 84), from its GPS, and how good the fix was.

    A position is sensitive: the host keeps it inside the encrypted read and never logs it.
    ``fix_time`` is the receiver's UTC time of the fix (not when it was read); ``hdop`` the
    horizontal dilution of precision (lower is better, None when the receiver did not say);
    ``quality`` the NMEA GGA fix quality (1 GPS, 2 DGPS, 4/5 RTK; 0 is never stamped).
    """

    lat: float
    lon: float
    fix_time: datetime
    hdop: float | None = None
    quality: int = 1
    satellites: int | None = None
    altitude_m: float | None = None


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded picture from a camera.

    ``image`` is an H×W×3 ``uint8`` array in OpenCV's BGR order. ``timestamp`` is when the
    camera (or the host clock, if the camera has none) says the picture was taken; it is
    timezone-aware UTC.
    """

    image: Image
    timestamp: datetime
    camera: str = ""
    sequence: int = 0
    #: where the camera was when the picture was taken (a trailer or patrol car with a GPS);
    #: the tracker stamps the read it becomes with it
    location: Location | None = None


@dataclass(frozen=True, slots=True)
class PlateCandidate:
    """One possible reading of a plate and how sure the recognizer is (0..1)."""

    text: str
    confidence: float


@dataclass(frozen=True, slots=True)
class PlateDetection:
    """A plate found in one frame.

    ``box`` is ``(x, y, w, h)`` in pixels of the full-resolution frame. ``candidates`` are ordered
    best first and ``candidates[0]`` is the same reading as ``text``/``confidence``.
    ``char_confidences`` holds one value per character of ``text`` when the OCR gives them, and
    lets the tracker vote character by character.
    """

    box: tuple[int, int, int, int]
    detector_confidence: float
    text: str
    confidence: float
    candidates: tuple[PlateCandidate, ...] = ()
    char_confidences: tuple[float, ...] = ()
    state: str | None = None
    state_confidence: float = 0.0


def time_ordered_id() -> str:
    """A UUIDv7 (RFC 9562) as 32 hex digits: 48 bits of Unix time in milliseconds, then 74
    random bits.

    Read ids key the reads table's primary-key index and the images, holds and alerts that
    point at a read. With random (v4) ids a day's reads are spread over every page of those
    indexes, so purging one day in small transactions rewrote each page again and again:
    644 MB of WAL, all checkpointed and shipped by litestream, for a 50,000-read day in a 45 MB
    database (issue 5). Ids that sort by time keep a day's reads on neighbouring pages: 267 MB
    (benchmarks/storage.py --only wal).
    """
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")  # 80 bits; 74 are used
    value = (ms & (2**48 - 1)) << 80
    value |= 0x7 << 76  # version
    value |= ((rand >> 62) & 0xFFF) << 64  # rand_a, 12 bits
    value |= 0b10 << 62  # variant
    value |= rand & (2**62 - 1)  # rand_b, 62 bits
    return uuid.UUID(int=value).hex


@dataclass(frozen=True, slots=True)
class PlateRead:
    """One vehicle's plate, voted across the frames it was seen in.

    This is what is stored, matched, shown and exported. ``crop_jpeg`` is the best crop of the
    plate, JPEG-encoded, and ``vehicle_jpeg`` the vehicle around it; both are sensitive and never
    written to disk in clear.
    """

    camera: str
    text: str
    confidence: float
    first_seen: datetime
    last_seen: datetime
    box: tuple[int, int, int, int]
    candidates: tuple[PlateCandidate, ...] = ()
    frames: int = 1
    crop_jpeg: bytes = b""
    state: str | None = None
    state_confidence: float = 0.0
    #: the vehicle around the plate (JPEG), for comparing make, model and colour; sensitive
    vehicle_jpeg: bytes = b""
    #: time-ordered (:func:`time_ordered_id`), so a day's reads sit together in every index
    #: keyed by read id
    id: str = field(default_factory=time_ordered_id)
    #: where the camera was (mobile boxes with a GPS); None when it has no GPS or no fresh fix.
    #: Sensitive: stored only inside the encrypted read, never logged
    location: Location | None = None
    #: the vehicle's colour estimated from the paint around the plate, voted over the track's
    #: frames: white, silver, black, red, blue, green, yellow, brown, orange, or "unknown";
    #: None when not estimated. For comparing with the registration (plate switching)
    vehicle_colour: str | None = None
    vehicle_colour_confidence: float = 0.0
