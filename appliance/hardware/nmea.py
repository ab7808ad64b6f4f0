"""NMEA 0183 sentences from a GPS receiver: checksum, GGA and RMC, nothing else.

A receiver on a trailer talks through a long cable next to a power relay: lines arrive torn,
doubled or with flipped bits. A sentence is used only when its checksum (the XOR of every byte
between ``$`` and ``*``) matches; anything else is counted by the caller and dropped. Parsing is
a few lines per sentence, so no library is needed (pynmea2 would parse the same two fields and
still leave checksum policy and fix quality to us).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time

__all__ = [
    "GgaFix",
    "NmeaError",
    "RmcFix",
    "checksum",
    "parse_sentence",
]

#: GGA fix quality values (NMEA 0183 4.x): 0 invalid, 1 GPS, 2 DGPS, 3 PPS, 4 RTK fixed,
#: 5 RTK float, 6 dead reckoning, 7 manual, 8 simulation. Only real satellite fixes stamp reads.
USABLE_QUALITIES = frozenset({1, 2, 3, 4, 5})


class NmeaError(ValueError):
    """A line that is not a valid NMEA sentence (torn, bad checksum, malformed field)."""


@dataclass(frozen=True, slots=True)
class GgaFix:
    """Global positioning system fix data: position, quality, satellites, HDOP, altitude."""

    time_of_day: time | None
    lat: float | None
    lon: float | None
    quality: int
    satellites: int | None
    hdop: float | None
    altitude_m: float | None


@dataclass(frozen=True, slots=True)
class RmcFix:
    """Recommended minimum data: position, validity (A/V) and the date GGA lacks."""

    timestamp: datetime | None
    valid: bool
    lat: float | None
    lon: float | None
    speed_knots: float | None


def checksum(body: str) -> int:
    """XOR of the characters between ``$`` and ``*``."""
    value = 0
    for char in body.encode("ascii"):
        value ^= char
    return value


def parse_sentence(line: str | bytes) -> GgaFix | RmcFix | None:
    """Parse one line; None for a valid sentence of another type (GSV, VTG ...).

    Raises :class:`NmeaError` for anything that is not a valid sentence: a missing ``$`` or
    ``*hh``, a checksum that does not match, non-ASCII bytes, or malformed GGA/RMC fields.
    """
    if isinstance(line, bytes):
        try:
            line = line.decode("ascii")
        except UnicodeDecodeError:
            raise NmeaError("not ASCII") from None
    line = line.strip()
    if not line.startswith("$") or len(line) > 100:  # 82 by the standard; some send longer
        raise NmeaError("no '$' start or too long")
    body, star, given = line[1:].rpartition("*")
    if not star or len(given) != 2:
        raise NmeaError("no checksum")
    try:
        expected = int(given, 16)
    except ValueError:
        raise NmeaError("checksum is not hex") from None
    if not body.isascii() or checksum(body) != expected:
        raise NmeaError("checksum mismatch")
    fields = body.split(",")
    kind = fields[0][-3:] if len(fields[0]) == 5 else ""  # talker (GP, GN, GL ...) + type
    try:
        if kind == "GGA":
            return _gga(fields)
        if kind == "RMC":
            return _rmc(fields)
    except (IndexError, ValueError) as err:
        raise NmeaError(f"malformed {kind}: {err}") from None
    return None


def _gga(f: list[str]) -> GgaFix:
    if len(f) < 10:
        raise ValueError("too few fields")
    return GgaFix(
        time_of_day=_time(f[1]),
        lat=_coordinate(f[2], f[3], 2, "NS"),
        lon=_coordinate(f[4], f[5], 3, "EW"),
        quality=int(f[6] or 0),
        satellites=int(f[7]) if f[7] else None,
        hdop=float(f[8]) if f[8] else None,
        altitude_m=float(f[9]) if f[9] else None,
    )


def _rmc(f: list[str]) -> RmcFix:
    if len(f) < 10:
        raise ValueError("too few fields")
    time_of_day = _time(f[1])
    day = _date(f[9])
    stamp = (
        datetime.combine(day, time_of_day, UTC) if day is not None and time_of_day else None
    )
    if f[2] not in ("A", "V"):
        raise ValueError(f"status {f[2]!r}")
    return RmcFix(
        timestamp=stamp,
        valid=f[2] == "A",
        lat=_coordinate(f[3], f[4], 2, "NS"),
        lon=_coordinate(f[5], f[6], 3, "EW"),
        speed_knots=float(f[7]) if f[7] else None,
    )


def _time(text: str) -> time | None:
    if not text:
        return None
    whole, _, fraction = text.partition(".")
    if len(whole) != 6 or not whole.isdigit():
        raise ValueError(f"time {text!r}")
    micro = round(float(f"0.{fraction}") * 1_000_000) if fraction else 0
    return time(int(whole[:2]), int(whole[2:4]), int(whole[4:6]), min(micro, 999_999))


def _date(text: str) -> date | None:
    if not text:
        return None
    if len(text) != 6 or not text.isdigit():
        raise ValueError(f"date {text!r}")
    # Two-digit years: receivers report 20yy (GPS week rollover quirks aside).
    return date(2000 + int(text[4:6]), int(text[2:4]), int(text[:2]))


def _coordinate(value: str, hemisphere: str, degree_digits: int, allowed: str) -> float | None:
    """``ddmm.mmmm`` / ``dddmm.mmmm`` plus a hemisphere letter, to signed decimal degrees."""
    if not value and not hemisphere:
        return None
    if hemisphere not in allowed or len(hemisphere) != 1:
        raise ValueError(f"hemisphere {hemisphere!r}")
    degrees = int(value[:degree_digits])
    minutes = float(value[degree_digits:])
    if not 0 <= minutes < 60:
        raise ValueError(f"minutes {minutes}")
    result = degrees + minutes / 60.0
    if result > (90 if allowed == "NS" else 180):
        raise ValueError(f"coordinate {result} out of range")
    return -result if hemisphere in "SW" else result
