"""The NCIC plate-reader extract format: the file-code table, plate normalization and the parser.

The format (documented in the README) is pipe-delimited UTF-8 text: a header line of NCIC field
codes, one record per line, and an ``END|<record count>`` trailer so a truncated download is
detected instead of silently shrinking the list.
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType

from appliance import HotlistBatch, HotlistEntry, HotlistFormatError

logger = logging.getLogger(__name__)

HEADER_FIELDS = (
    "FIL",  # NCIC file code (FILE_CODES)
    "NIC",  # NCIC number: one letter and nine digits
    "ORI",  # originating (entering) agency identifier
    "LIC",  # license plate number
    "LIS",  # license plate state
    "LIT",  # license plate type
    "LIY",  # license plate year of expiration
    "VYR",  # vehicle year
    "VMA",  # vehicle make code
    "VMO",  # vehicle model code
    "VCO",  # vehicle colour code
    "DTE",  # date of entry, YYYYMMDD
    "MIS",  # miscellaneous: the reason, caution and case number
)
HEADER = "|".join(HEADER_FIELDS)
TRAILER_PREFIX = "END|"
MAX_LINE_BYTES = 4096
MAX_SKIPPED_MESSAGES = 100

IMMIGRATION_VIOLATOR_REASON = (
    "NCIC Immigration Violator File: not imported (Cal. Gov. Code 7284.6(a)(1); Vallejo 426.6)"
)


@dataclass(frozen=True)
class NcicFile:
    """One NCIC file that can appear in the extract."""

    code: str
    #: the full name, used as the entry's category
    name: str
    #: first letter of the NIC in generated extracts (this format's convention)
    nic_prefix: str
    #: why records of this file are never imported; ``None`` for files that are imported
    excluded_by: str | None = None
    #: hits are shown only to privileged roles: these files' instructions say not to alert the
    #: subject (Threat Screening Center) or concern protectees (Protective Interest)
    covert: bool = False


#: Every file code of the extract. Records of an ``excluded_by`` file are dropped and counted;
#: there is deliberately no setting that changes this table.
FILE_CODES: Mapping[str, NcicFile] = MappingProxyType(
    {
        f.code: f
        for f in (
            NcicFile("VEH", "NCIC Vehicle File", "V"),
            NcicFile("LIC", "NCIC License Plate File", "L"),
            NcicFile("WAN", "NCIC Wanted Person File", "W"),
            NcicFile("POF", "NCIC Protection Order File", "H"),
            NcicFile("ERP", "NCIC Extreme Risk Protection Order File", "E"),
            NcicFile("MPF", "NCIC Missing Person File", "M"),
            NcicFile("GNG", "NCIC Gang File", "G"),
            NcicFile("TSC", "NCIC Threat Screening Center File", "T", covert=True),
            NcicFile("SRF", "NCIC Supervised Release File", "S"),
            NcicFile("SOR", "NCIC National Sex Offender Registry File", "X"),
            NcicFile("IVF", "NCIC Immigration Violator File", "I", IMMIGRATION_VIOLATOR_REASON),
            NcicFile("PIF", "NCIC Protective Interest File", "P", covert=True),
            NcicFile("VPF", "NCIC Violent Person File", "R"),
        )
    }
)

_NIC = re.compile(r"[A-Z][0-9]{9}")
_ORI = re.compile(r"[A-Z]{2}[A-Z0-9]{7}")
_STATE = re.compile(r"[A-Z]{2}")
_DATE = re.compile(r"[0-9]{8}")
_PLATE = re.compile(r"[A-Z0-9]{1,8}")
_QUOTE_MAX = 24

# Look-alike letters that fool a naive match: Cyrillic and Greek capitals (after upper()) that
# render like Latin ones, plus the separators plates are printed with.
_CYRILLIC = dict(zip("АВЕЅІЈКМНОРСТУХ", "ABESIJKMHOPCTYX", strict=True))
_GREEK = dict(zip("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧ", "ABEZHIKMNOPTYX", strict=True))
_PLATE_TABLE = str.maketrans({**_CYRILLIC, **_GREEK, " ": None, "-": None, ".": None})


def normalize_plate(raw: str) -> str | None:
    """Return the plate as ``[A-Z0-9]{1,8}``, or ``None`` if it cannot be one.

    Uppercases, removes spaces, dashes and dots, folds fullwidth and other compatibility forms
    (NFKC) and Cyrillic/Greek look-alikes to ASCII.
    """
    text = raw if raw.isascii() else unicodedata.normalize("NFKC", raw)
    text = text.upper().translate(_PLATE_TABLE)
    return text if _PLATE.fullmatch(text) else None


def parse_extract(data: bytes) -> HotlistBatch:
    """Parse a whole extract. Raise :class:`HotlistFormatError` naming the line if it cannot be
    trusted as a whole; skip (with a message naming the line) records that are bad on their own.
    """
    lines = _decode(data).split("\n")
    if lines[-1] == "":
        lines.pop()
    if not lines:
        raise HotlistFormatError("line 1: the file is empty, not an NCIC extract")
    _check_length(lines[0], 1)
    header = lines[0].removeprefix("\ufeff").rstrip("\r")
    if header != HEADER:
        raise HotlistFormatError(
            f"line 1: not an NCIC extract: expected the header {HEADER!r}, got "
            f"{_describe(header, '|')}"
        )

    entries: list[HotlistEntry] = []
    nic_lines: dict[str, int] = {}
    dropped: dict[str, int] = {}
    skipped = _Skipped()
    records = 0
    trailer_line = 0
    for index in range(1, len(lines)):
        lineno = index + 1
        line = lines[index]
        _check_length(line, lineno)
        line = line.rstrip("\r")
        if trailer_line:
            if line.strip():
                raise HotlistFormatError(
                    f"line {lineno}: data after the END trailer on line {trailer_line}"
                )
            continue
        if not line.strip():
            continue
        if line.startswith(TRAILER_PREFIX):
            _check_trailer(line, lineno, records)
            trailer_line = lineno
            continue
        records += 1
        fields = line.split("|")
        if len(fields) != len(HEADER_FIELDS):
            skipped.add(f"line {lineno}: {len(fields)} fields, expected {len(HEADER_FIELDS)}")
            continue
        ncic_file = FILE_CODES.get(fields[0].strip().upper())
        if ncic_file is None:
            skipped.add(f"line {lineno}: unknown file code {_quote(fields[0])}")
            continue
        if ncic_file.excluded_by is not None:
            # Dropped before anything else is looked at: no part of the record is kept.
            dropped[ncic_file.excluded_by] = dropped.get(ncic_file.excluded_by, 0) + 1
            continue
        try:
            entry = _entry(ncic_file, fields)
        except _Skip as why:
            skipped.add(f"line {lineno}: {why}")
            continue
        first = nic_lines.setdefault(entry.reference, lineno)
        if first != lineno:
            skipped.add(f"line {lineno}: duplicate NIC, already listed on line {first}")
            continue
        entries.append(entry)

    if not trailer_line:
        raise HotlistFormatError(
            f"line {len(lines)}: truncated: the file ends without the END|<record count> trailer"
        )
    if not entries:
        raise HotlistFormatError(
            f"line {trailer_line}: no usable records ({records} records: "
            f"{sum(dropped.values())} dropped by law or policy, {skipped.total} skipped)"
        )
    logger.debug(
        "NCIC extract: %d entries, dropped %s, %d skipped", len(entries), dropped, skipped.total
    )
    return HotlistBatch(entries=tuple(entries), dropped=dropped, skipped=skipped.messages())


class _Skip(Exception):
    """One record is unusable; the message says why (never quoting the plate)."""


def _entry(ncic_file: NcicFile, fields: list[str]) -> HotlistEntry:
    _fil, nic, ori, lic, lis, lit, _liy, vyr, vma, vmo, vco, dte, mis = [f.strip() for f in fields]
    nic = nic.upper()
    if not _NIC.fullmatch(nic):
        raise _Skip("NIC is missing or not a letter and nine digits")
    ori = ori.upper()
    if not _ORI.fullmatch(ori):
        raise _Skip("ORI is missing or not nine letters and digits")
    if not lic:
        raise _Skip("plate (LIC) is empty")
    plate = normalize_plate(lic)
    if plate is None:
        raise _Skip("plate (LIC) is not 1-8 letters and digits")
    state = lis.upper() or None
    if state is not None and not _STATE.fullmatch(state):
        raise _Skip("plate state (LIS) is not a two-letter code")
    entered = _date(dte)
    if entered is None:
        raise _Skip("date of entry (DTE) is not a valid YYYYMMDD date")
    return HotlistEntry(
        plate=plate,
        state=state,
        plate_type=_code(lit),
        category=ncic_file.name,
        reason=_text(mis),
        reference=nic,
        agency=ori,
        entered=entered,
        vehicle_year=int(vyr) if vyr.isascii() and vyr.isdigit() and len(vyr) == 4 else None,
        vehicle_make=_code(vma),
        vehicle_model=_code(vmo),
        vehicle_colour=_code(vco),
        covert=ncic_file.covert,
    )


@functools.lru_cache(maxsize=8192)  # a few thousand distinct dates in a million records
def _date(text: str) -> date | None:
    if not _DATE.fullmatch(text):
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


@functools.lru_cache(maxsize=8192)  # makes, models, colours and plate types repeat a lot
def _code(text: str) -> str | None:
    """A descriptive code (plate type, make, model, colour): kept as listed, blank if odd."""
    text = _text(text).upper()
    return text[:16] or None


def _text(text: str) -> str:
    """Free text with control characters blanked (they have no business in a console)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else " " for c in text).strip()


def _describe(line: str, separator: str) -> str:
    """What a wrong first line looks like, without quoting what may be a record (a plate)."""
    if line.lstrip().startswith("<"):
        return f"an HTML or XML page starting {_quote(line.strip())}"
    return f"a line of {line.count(separator) + 1} {separator!r}-separated fields"


def _quote(text: str) -> str:
    """A short, safe quotation for an error message: never a whole (possibly huge) line."""
    return repr(text[:_QUOTE_MAX] + ("…" if len(text) > _QUOTE_MAX else ""))


def _decode(data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        lineno = data.count(b"\n", 0, err.start) + 1
        line_start = data.rfind(b"\n", 0, err.start) + 1
        raise HotlistFormatError(
            f"line {lineno}: not valid UTF-8 at byte offset "
            f"{err.start} (byte {err.start - line_start + 1} of the line)"
        ) from None
    nul = text.find("\x00")
    if nul >= 0:
        lineno = text.count("\n", 0, nul) + 1
        raise HotlistFormatError(f"line {lineno}: binary data (a NUL byte), not a text extract")
    return text


_QUICK_LINE_CHARS = MAX_LINE_BYTES // 4  # at most 4 bytes a character in UTF-8


def _check_length(line: str, lineno: int) -> None:
    if len(line) <= _QUICK_LINE_CHARS:
        return
    size = len(line.encode("utf-8"))
    if size > MAX_LINE_BYTES:
        raise HotlistFormatError(
            f"line {lineno}: {size} bytes long, over the {MAX_LINE_BYTES}-byte limit of a record"
        )


def _check_trailer(line: str, lineno: int, records: int) -> None:
    count = line.removeprefix(TRAILER_PREFIX).strip()
    if not (count.isascii() and count.isdigit()):
        raise HotlistFormatError(f"line {lineno}: malformed trailer, expected END|<record count>")
    if int(count) != records:
        raise HotlistFormatError(
            f"line {lineno}: the trailer says {int(count)} records but the file holds {records}: "
            "truncated or corrupted"
        )


class _Skipped:
    """Messages about skipped records: the first few kept, the rest only counted."""

    def __init__(self) -> None:
        self._messages: list[str] = []
        self.total = 0

    def add(self, message: str) -> None:
        self.total += 1
        if len(self._messages) < MAX_SKIPPED_MESSAGES:
            self._messages.append(message)

    def messages(self) -> tuple[str, ...]:
        rest = self.total - len(self._messages)
        if rest:
            return (*self._messages, f"{rest} more records skipped (messages not kept)")
        return tuple(self._messages)
