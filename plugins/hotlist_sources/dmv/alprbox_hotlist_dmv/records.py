"""The DMV suspended/revoked registrations file: CSV with a ``#END,<count>`` trailer."""

from __future__ import annotations

import csv
import functools
import logging
import re
import unicodedata
from datetime import date

from appliance import HotlistBatch, HotlistEntry, HotlistFormatError

logger = logging.getLogger(__name__)

HEADER_FIELDS = (
    "plate",
    "state",
    "status",
    "reason",
    "effective_date",
    "vehicle_year",
    "vehicle_make",
    "vehicle_model",
    "vehicle_colour",
)
HEADER = ",".join(HEADER_FIELDS)
TRAILER_PREFIX = "#END,"
MAX_LINE_BYTES = 4096
MAX_SKIPPED_MESSAGES = 100
CATEGORIES = {
    "SUSPENDED": "DMV suspended registration",
    "REVOKED": "DMV revoked registration",
}

_PLATE = re.compile(r"[A-Z0-9]{1,8}")
_STATE = re.compile(r"[A-Z]{2}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_QUOTE_MAX = 24
# Cyrillic and Greek capitals (after upper()) that render like Latin ones, and plate separators.
_CYRILLIC = dict(zip("АВЕЅІЈКМНОРСТУХ", "ABESIJKMHOPCTYX", strict=True))
_GREEK = dict(zip("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧ", "ABEZHIKMNOPTYX", strict=True))
_PLATE_TABLE = str.maketrans({**_CYRILLIC, **_GREEK, " ": None, "-": None, ".": None})


def normalize_plate(raw: str) -> str | None:
    """The plate as ``[A-Z0-9]{1,8}`` (NFKC, look-alikes folded, separators removed), or None."""
    text = raw if raw.isascii() else unicodedata.normalize("NFKC", raw)
    text = text.upper().translate(_PLATE_TABLE)
    return text if _PLATE.fullmatch(text) else None


def parse_dmv(data: bytes) -> HotlistBatch:
    """Parse a whole DMV file. Raise :class:`HotlistFormatError` naming the line if it cannot be
    trusted as a whole; skip (with a message naming the line) records that are bad on their own.
    """
    lines = _decode(data).split("\n")
    if lines[-1] == "":
        lines.pop()
    if not lines:
        raise HotlistFormatError("line 1: the file is empty, not a DMV registration list")
    _check_length(lines[0], 1)
    header = lines[0].removeprefix("\ufeff").rstrip("\r")
    if header != HEADER:
        raise HotlistFormatError(
            f"line 1: not a DMV registration list: expected the header {HEADER!r}, got "
            f"{_describe(header, ',')}"
        )
    entries: list[HotlistEntry] = []
    plate_lines: dict[tuple[str, str], int] = {}
    skipped: list[str] = []
    skipped_total = records = trailer_line = 0
    for index in range(1, len(lines)):
        lineno = index + 1
        _check_length(lines[index], lineno)
        line = lines[index].rstrip("\r")
        if trailer_line:
            if line.strip():
                raise HotlistFormatError(
                    f"line {lineno}: data after the #END trailer on line {trailer_line}"
                )
            continue
        if not line.strip():
            continue
        if line.startswith(TRAILER_PREFIX):
            _check_trailer(line, lineno, records)
            trailer_line = lineno
            continue
        records += 1
        try:
            entry = _entry(line)
            key = (entry.plate, entry.state or "")
            first = plate_lines.setdefault(key, lineno)
            if first != lineno:
                raise _Skip(f"plate already listed on line {first}")
        except _Skip as why:
            skipped_total += 1
            if len(skipped) < MAX_SKIPPED_MESSAGES:
                skipped.append(f"line {lineno}: {why}")
            continue
        entries.append(entry)

    if not trailer_line:
        raise HotlistFormatError(
            f"line {len(lines)}: truncated: the file ends without the #END,<record count> trailer"
        )
    if not entries:
        raise HotlistFormatError(
            f"line {trailer_line}: no usable records ({records} records, {skipped_total} skipped)"
        )
    if skipped_total > len(skipped):
        skipped.append(f"{skipped_total - len(skipped)} more records skipped (messages not kept)")
    logger.debug("DMV list: %d entries, %d skipped", len(entries), skipped_total)
    return HotlistBatch(entries=tuple(entries), skipped=tuple(skipped))


class _Skip(Exception):
    """One record is unusable; the message says why (never quoting the plate)."""


def _entry(line: str) -> HotlistEntry:
    try:
        fields = next(csv.reader((line,), strict=True))
    except csv.Error as err:
        raise _Skip(f"malformed CSV ({err})") from None
    if len(fields) != len(HEADER_FIELDS):
        raise _Skip(f"{len(fields)} fields, expected {len(HEADER_FIELDS)}")
    plate_raw, state, status, reason, effective, year, make, model, colour = [
        f.strip() for f in fields
    ]
    if not plate_raw:
        raise _Skip("plate is empty")
    plate = normalize_plate(plate_raw)
    if plate is None:
        raise _Skip("plate is not 1-8 letters and digits")
    state = state.upper()
    if not _STATE.fullmatch(state):
        raise _Skip("state is not a two-letter code")
    category = CATEGORIES.get(status.upper())
    if category is None:
        raise _Skip(f"status {_quote(status)} is neither SUSPENDED nor REVOKED")
    entered = _date(effective)
    if entered is None:
        raise _Skip("effective_date is not a valid YYYY-MM-DD date")
    return HotlistEntry(
        plate=plate,
        state=state,
        category=category,
        reason=_text(reason),
        entered=entered,
        vehicle_year=int(year) if year.isascii() and year.isdigit() and len(year) == 4 else None,
        vehicle_make=_code(make),
        vehicle_model=_code(model),
        vehicle_colour=_code(colour),
    )


@functools.lru_cache(maxsize=8192)
def _date(text: str) -> date | None:
    if not _DATE.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


@functools.lru_cache(maxsize=8192)
def _code(text: str) -> str | None:
    return _text(text).upper()[:24] or None


def _text(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else " " for c in text).strip()


def _describe(line: str, separator: str) -> str:
    """What a wrong first line looks like, without quoting what may be a record (a plate)."""
    if line.lstrip().startswith("<"):
        return f"an HTML or XML page starting {_quote(line.strip())}"
    return f"a line of {line.count(separator) + 1} {separator!r}-separated fields"


def _quote(text: str) -> str:
    return repr(text[:_QUOTE_MAX] + ("…" if len(text) > _QUOTE_MAX else ""))


def _decode(data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        lineno = data.count(b"\n", 0, err.start) + 1
        column = err.start - data.rfind(b"\n", 0, err.start)
        raise HotlistFormatError(
            f"line {lineno}: not valid UTF-8 at byte offset {err.start} (byte {column} of the line)"
        ) from None
    nul = text.find("\x00")
    if nul >= 0:
        lineno = text.count("\n", 0, nul) + 1
        raise HotlistFormatError(f"line {lineno}: binary data (a NUL byte), not a CSV file")
    return text


def _check_length(line: str, lineno: int) -> None:
    if len(line) * 4 <= MAX_LINE_BYTES:  # at most 4 bytes a character
        return
    size = len(line.encode("utf-8"))
    if size > MAX_LINE_BYTES:
        raise HotlistFormatError(
            f"line {lineno}: {size} bytes long, over the {MAX_LINE_BYTES}-byte limit of a record"
        )


def _check_trailer(line: str, lineno: int, records: int) -> None:
    count = line.removeprefix(TRAILER_PREFIX).strip()
    if not (count.isascii() and count.isdigit()):
        raise HotlistFormatError(f"line {lineno}: malformed trailer, expected #END,<record count>")
    if int(count) != records:
        raise HotlistFormatError(
            f"line {lineno}: the trailer says {int(count)} records but the file holds {records}: "
            "truncated or corrupted"
        )
