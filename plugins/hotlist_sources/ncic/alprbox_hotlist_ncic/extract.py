"""The NCIC plate-reader extract format: the file-code table, plate normalization and the parser.

The format (documented in the README) is pipe-delimited UTF-8 text: a header line of NCIC field
codes, one record per line, and an ``END|<record count>`` trailer so a truncated download is
detected instead of silently shrinking the list.
"""

from __future__ import annotations

import functools
import gc
import heapq
import logging
import re
import unicodedata
from array import array
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from itertools import compress, islice, repeat
from operator import itemgetter, not_
from types import MappingProxyType
from typing import Any, cast

import numpy as np
import numpy.typing as npt

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
    # A million new entries would set off dozens of full collections, each walking every
    # object made so far, to find nothing: parsing makes no reference cycles. So the collector
    # is paused, and the young generations are collected after each chunk instead, which looks
    # at each entry once, while it is still in the CPU's caches.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _parse(data, fast=True, collect=enabled)
    finally:
        if enabled:
            gc.enable()


def _parse(data: bytes, *, fast: bool, collect: bool = False) -> HotlistBatch:
    """:func:`parse_extract`; ``fast=False`` reads every line the careful way, one at a time
    (the reference the fast path is tested against); ``collect``: collect the young
    generations after each chunk."""
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

    line_count = len(lines)
    parser = _Parser(fast=fast)
    for first in range(1, line_count, _CHUNK_LINES):
        parser.chunk(lines[first : first + _CHUNK_LINES], first + 1)
        if collect:
            gc.collect(1)
    del lines
    parser.drop_repeated_nics()
    entries, dropped, skipped = parser.entries, parser.dropped, parser.skipped
    records, trailer_line = parser.records, parser.trailer_line

    if not trailer_line:
        raise HotlistFormatError(
            f"line {line_count}: truncated: the file ends without the END|<record count> trailer"
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


class _Parser:
    """One parse's state, fed the lines after the header a chunk at a time.

    The fast way, each chunk is first read column by column (:meth:`_Columns.read`); the records
    that reading accepts are kept in bulk, and every other line (blank lines, the trailer,
    records with an odd or bad field) goes through :meth:`careful`, the field-by-field path that
    words every error and skip message, in line order. Repeated NICs are then found all at once
    (:meth:`drop_repeated_nics`). The careful way, every line goes through :meth:`careful` and
    each NIC is checked as its line is read. Both give the same batch.
    """

    def __init__(self, *, fast: bool) -> None:
        self.entries: list[HotlistEntry] = []
        self.dropped: dict[str, int] = {}
        self.skipped = _Skipped()
        self.records = 0
        self.trailer_line = 0
        self._columns = _Columns() if fast else None
        self._nic_lines: dict[str, int] = {}  # careful: each NIC seen, with its first line
        self._nics: list[str] = []  # fast: each entry's NIC and line, checked at the end
        self._lines = array("q")

    def chunk(self, lines: list[str], first_lineno: int) -> None:
        """Parse consecutive ``lines``, the first of them numbered ``first_lineno``."""
        if self._columns is None or self.trailer_line:
            for offset, line in enumerate(lines):
                self.careful(line, first_lineno + offset)
            return
        read = None
        if max(map(len, lines)) <= _QUICK_LINE_CHARS:  # so _check_length has nothing to say
            read = self._columns.read(lines)
        is_row: list[bool] | None = None
        if read is None:
            # Some line is not 13 fields (a blank line, the trailer) or is long: read the rest.
            is_row = [
                line.count("|") == _FIELD_COUNT - 1 and len(line) <= _QUICK_LINE_CHARS
                for line in lines
            ]
            read = self._columns.read(list(compress(lines, is_row)))
            assert read is not None  # every row is 13 fields
        kinds, files, entries, nics = read

        if is_row is None and _CAREFUL not in kinds:
            # Every line a record the columns accepted: keep them in bulk.
            self.records += len(lines)
            linenos: Iterable[int] = range(first_lineno, first_lineno + len(lines))
            if _DROP in kinds:
                for ncic_file in compress(files, kinds):  # kinds here: 0 keep or 1 drop
                    self._drop(ncic_file)
                linenos = compress(linenos, map(not_, kinds))
            self.entries += entries
            self._nics += nics
            self._lines.extend(linenos)
            return

        # Line by line, in order, with what the columns worked out for each row.
        kept = iter(entries)
        results = iter(
            [
                next(kept) if kind == _KEEP else files[i] if kind == _DROP else None
                for i, kind in enumerate(kinds)
            ]
        )
        for offset, line in enumerate(lines):
            lineno = first_lineno + offset
            result = next(results) if is_row is None or is_row[offset] else None
            if result is None or self.trailer_line:
                self.careful(line, lineno)
            elif isinstance(result, NcicFile):
                self.records += 1
                self._drop(result)
            else:
                self.records += 1
                self._keep(result, lineno)

    def careful(self, line: str, lineno: int) -> None:
        """One line, field by field: the path that says what is wrong with a line."""
        _check_length(line, lineno)
        line = line.rstrip("\r")
        if self.trailer_line:
            if line.strip():
                raise HotlistFormatError(
                    f"line {lineno}: data after the END trailer on line {self.trailer_line}"
                )
            return
        if not line.strip():
            return
        if line.startswith(TRAILER_PREFIX):
            _check_trailer(line, lineno, self.records)
            self.trailer_line = lineno
            return
        self.records += 1
        fields = line.split("|")
        if len(fields) != len(HEADER_FIELDS):
            self.skipped.add(
                lineno, f"line {lineno}: {len(fields)} fields, expected {len(HEADER_FIELDS)}"
            )
            return
        ncic_file = FILE_CODES.get(fields[0].strip().upper())
        if ncic_file is None:
            self.skipped.add(lineno, f"line {lineno}: unknown file code {_quote(fields[0])}")
            return
        if ncic_file.excluded_by is not None:
            # Dropped before anything else is looked at: no part of the record is kept.
            self._drop(ncic_file)
            return
        try:
            entry = _entry(ncic_file, fields)
        except _Skip as why:
            self.skipped.add(lineno, f"line {lineno}: {why}")
            return
        self._keep(entry, lineno)

    def _drop(self, ncic_file: NcicFile) -> None:
        reason = cast(str, ncic_file.excluded_by)
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    def _keep(self, entry: HotlistEntry, lineno: int) -> None:
        if self._columns is not None:
            self.entries.append(entry)
            self._nics.append(entry.reference)
            self._lines.append(lineno)
            return
        first = self._nic_lines.setdefault(entry.reference, lineno)
        if first != lineno:
            self.skipped.add(lineno, _repeated_nic(lineno, first))
            return
        self.entries.append(entry)

    def drop_repeated_nics(self) -> None:
        """The fast way: keep only the first entry of each NIC, as the careful way does."""
        count = len(self.entries)
        if self._columns is None or count < 2:
            return
        # Every NIC is a capital and nine digits (both ways check), so a number of its own.
        codes: npt.NDArray[Any] | None = None
        joined = "".join(self._nics)
        if joined.isascii() and len(joined) == 10 * count:
            chars = np.frombuffer(joined.encode(), np.uint8).reshape(count, 10)
            if ((chars[:, 1:] >= 48) & (chars[:, 1:] <= 57)).all():
                codes = chars[:, 0].astype(np.int64)
                for k in range(1, 10):
                    codes = codes * 10 + (chars[:, k] - 48)
        if codes is None:  # cannot happen; if it did, compare the NICs as strings
            codes = np.array(self._nics)
        ordered = np.sort(codes)
        if not (ordered[1:] == ordered[:-1]).any():
            return
        order = np.argsort(codes, kind="stable")  # stable: each run starts with its first line
        ordered = codes[order]
        repeats = ordered[1:] == ordered[:-1]
        positions = np.arange(count)
        run_start = np.maximum.accumulate(np.where(np.r_[True, ~repeats], positions, 0))
        later = order[1:][repeats]
        first = order[run_start[1:][repeats]]
        lines = np.frombuffer(self._lines, np.int64)
        pairs = sorted(zip(lines[later].tolist(), lines[first].tolist(), strict=True))
        self.skipped.merge(
            [(lineno, _repeated_nic(lineno, f)) for lineno, f in pairs[:MAX_SKIPPED_MESSAGES]],
            len(pairs),
        )
        keep = np.ones(count, bool)
        keep[later] = False
        self.entries = list(compress(self.entries, keep.tolist()))


def _repeated_nic(lineno: int, first: int) -> str:
    return f"line {lineno}: duplicate NIC, already listed on line {first}"


# -- reading a chunk column by column --------------------------------------------------------
#
# Every field is worked out exactly as _entry() works it out from the same text: for the whole
# column at once (joined and checked by one regex, or upper-cased and translated), or through a
# dictionary from the field's text to its value, filled by the careful conversion the first time
# the text is seen (states, dates and codes repeat a lot, and so are shared). A field the
# careful path would refuse, or that the column-wise check does not vouch for, sends its record
# down the careful path, which then words the message.

_CHUNK_LINES = 2048  # small enough for a chunk's fields to stay in the CPU's caches
_FIELD_COUNT = len(HEADER_FIELDS)
# What a row is: kept as an entry, dropped by law or policy, or left to the careful path.
_KEEP, _DROP, _CAREFUL = 0, 1, 2
_MISALIGNED = -1  # a row's first field does not start one
_BAD: Any = object()  # a field value the careful path refuses
_UNKNOWN_FILE = NcicFile("", "", "")  # an unknown file code's, in an entry made and dropped
_NIC_COLUMN = re.compile(r"[A-Z][0-9]{9}(?:\n[A-Z][0-9]{9})*")
_ORI_COLUMN = re.compile(r"[A-Z]{2}[A-Z0-9]{7}(?:\n[A-Z]{2}[A-Z0-9]{7})*")
_PLATE_COLUMN = re.compile(r"[A-Z0-9]{1,8}(?:\n[A-Z0-9]{1,8})*")


def _file_value(text: str) -> NcicFile:
    return FILE_CODES.get(text.strip().upper(), _UNKNOWN_FILE)


def _file_kind(text: str) -> int:
    if not text.startswith("\n"):
        return _MISALIGNED  # see _Columns.read
    ncic_file = FILE_CODES.get(text.strip().upper())
    if ncic_file is None:
        return _CAREFUL  # which words the "unknown file code" message
    return _KEEP if ncic_file.excluded_by is None else _DROP


def _state_value(text: str) -> Any:
    state = text.strip().upper() or None
    return _BAD if state is not None and not _STATE.fullmatch(state) else state


def _code_value(text: str) -> str | None:
    return _code(text.strip())


def _year_value(text: str) -> int | None:
    year = text.strip()
    return int(year) if year.isascii() and year.isdigit() and len(year) == 4 else None


def _date_value(text: str) -> Any:
    entered = _date(text.strip())
    return _BAD if entered is None else entered


class _Values(dict[str, Any]):
    """A field's text → its value as the careful path works it out (``_BAD``: refused)."""

    def __init__(self, convert: Callable[[str], Any]) -> None:
        super().__init__()
        self.convert = convert
        self.bad: set[str] = set()

    def __missing__(self, text: str) -> Any:
        value = self[text] = self.convert(text)
        if value is _BAD:
            self.bad.add(text)
        return value

    def column(self, texts: list[str], careful: set[int] | None = None) -> list[Any]:
        """The value of each text; the rows of refused ones are added to ``careful``."""
        column = list(map(self.__getitem__, texts))
        if careful is not None and self.bad and not self.bad.isdisjoint(texts):
            careful.update(i for i, text in enumerate(texts) if text in self.bad)
        return column


class _Columns:
    """Reads chunks of rows column by column; remembers the values that repeat."""

    def __init__(self) -> None:
        self.kinds = _Values(_file_kind)
        self.files = _Values(_file_value)
        self.states = _Values(_state_value)
        self.codes = _Values(_code_value)
        self.years = _Values(_year_value)
        self.dates = _Values(_date_value)

    def read(
        self, rows: list[str]
    ) -> tuple[list[int], list[NcicFile], list[HotlistEntry], list[str]] | None:
        """Each row's kind and file, and the entries of the rows kept with their NICs; None if
        some row is not 13 fields."""
        if not rows:
            return [], [], [], []
        # A "\n" starts each row, so it starts the row's first field (strip() takes it off):
        # the fields line up with the rows exactly when there are 13 a row and every 13th
        # starts with a "\n", there being one a row.
        fields = ("\n" + "|\n".join(rows)).split("|")
        step = _FIELD_COUNT
        if len(fields) != step * len(rows):
            return None
        texts = fields[0::step]
        kinds: list[int] = self.kinds.column(texts)
        if _MISALIGNED in kinds:
            return None
        files: list[NcicFile] = self.files.column(texts)
        careful: set[int] = set()  # rows with a field only the careful path may judge
        nics = fields[1::step]
        if not _NIC_COLUMN.fullmatch("\n".join(nics)):
            careful.update(i for i, nic in enumerate(nics) if not _NIC.fullmatch(nic))
        oris = fields[2::step]  # too many distinct ones for a dictionary to pay
        if not _ORI_COLUMN.fullmatch("\n".join(oris)):
            careful.update(i for i, ori in enumerate(oris) if not _ORI.fullmatch(ori))
        codes = self.codes.column
        entries = list(
            map(
                _new_entry,
                files,
                nics,
                oris,
                _plates(fields[3::step], careful),
                self.states.column(fields[4::step], careful),
                codes(fields[5::step]),
                self.years.column(fields[7::step]),
                codes(fields[8::step]),
                codes(fields[9::step]),
                codes(fields[10::step]),
                self.dates.column(fields[11::step], careful),
                _reasons(fields[12::step]),
            )
        )
        del fields
        for i in careful:
            if kinds[i] == _KEEP:  # a dropped record is dropped whatever its fields hold
                kinds[i] = _CAREFUL
        if _DROP in kinds or _CAREFUL in kinds:
            keep = list(map(not_, kinds))
            entries = list(compress(entries, keep))
            nics = list(compress(nics, keep))
        if _FAST_ENTRIES:
            # Nothing else holds them yet: from here on they are HotlistEntry objects.
            any(map(setattr, entries, repeat("__class__"), repeat(HotlistEntry)))
        return kinds, files, entries, nics


def _plates(texts: list[str], careful: set[int]) -> list[str]:
    """``normalize_plate(text.strip())`` of plain ASCII plates; the rest go to ``careful``."""
    joined = "\n".join(texts)
    if joined.isascii():
        # ASCII letters, digits, spaces, dashes and dots: upper-casing and deleting separators
        # is all normalize_plate would do (strip() only removes spaces, which go anyway).
        normal = joined.upper().translate(_PLATE_TABLE)
        plates = normal.split("\n")
        if not _PLATE_COLUMN.fullmatch(normal):
            careful.update(i for i, plate in enumerate(plates) if not _PLATE.fullmatch(plate))
        return plates
    plates = []
    for i, text in enumerate(texts):
        plate = text.upper().translate(_PLATE_TABLE)
        if not (text.isascii() and _PLATE.fullmatch(plate)):
            careful.add(i)  # look-alike letters, fullwidth forms: NFKC is for the careful path
        plates.append(plate)
    return plates


def _reasons(texts: list[str]) -> list[str]:
    """``_text(text.strip())`` of each (strip() also takes a CRLF line's "\\r")."""
    stripped = list(map(str.strip, texts))
    if "|".join(stripped).isprintable():
        return stripped
    return list(map(_text, stripped))


class _NewEntry:
    """A :class:`HotlistEntry` being made: the same slots, not frozen.

    The frozen dataclass's ``__init__`` sets each of its 14 fields through
    ``object.__setattr__``, about 2 µs an entry here; setting these slots directly costs a
    fifth of that. :meth:`_Columns.read` then assigns ``__class__`` (which Python allows
    between classes of the same slots), and the object is a HotlistEntry like any other.
    """

    __slots__ = HotlistEntry.__slots__

    def __init__(
        self,
        ncic_file: NcicFile,
        nic: str,
        ori: str,
        plate: str,
        state: str | None,
        plate_type: str | None,
        year: int | None,
        make: str | None,
        model: str | None,
        colour: str | None,
        entered: date,
        reason: str,
    ) -> None:
        self.plate = plate
        self.state = state
        self.plate_type = plate_type
        self.category = ncic_file.name
        self.reason = reason
        self.reference = nic
        self.agency = ori
        self.entered = entered
        self.expires = None
        self.vehicle_year = year
        self.vehicle_make = make
        self.vehicle_model = model
        self.vehicle_colour = colour
        self.covert = ncic_file.covert


def _new_entry_slowly(
    ncic_file: NcicFile,
    nic: str,
    ori: str,
    plate: str,
    state: str | None,
    plate_type: str | None,
    year: int | None,
    make: str | None,
    model: str | None,
    colour: str | None,
    entered: date,
    reason: str,
) -> HotlistEntry:
    return HotlistEntry(
        plate=plate,
        state=state,
        plate_type=plate_type,
        category=ncic_file.name,
        reason=reason,
        reference=nic,
        agency=ori,
        entered=entered,
        vehicle_year=year,
        vehicle_make=make,
        vehicle_model=model,
        vehicle_colour=colour,
        covert=ncic_file.covert,
    )


def _new_entries_work() -> bool:
    """Whether a _NewEntry becomes a HotlistEntry equal to the one made the ordinary way (not
    if HotlistEntry gained a field: then entries are made the ordinary way)."""
    args = (FILE_CODES["TSC"], "T000000001", "CA0010000", "7ABC123", "CA", "PC", 2019,
            "TOYT", "CAM", "BLK", date(2025, 3, 1), "R")  # fmt: skip
    made: Any = _NewEntry(*args)
    try:
        made.__class__ = HotlistEntry
        return type(made) is HotlistEntry and bool(made == _new_entry_slowly(*args))
    except (TypeError, AttributeError):
        return False


_FAST_ENTRIES = _new_entries_work()
_new_entry: Callable[..., Any] = _NewEntry if _FAST_ENTRIES else _new_entry_slowly


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
    """Messages about skipped records, in line order: the first few kept, the rest counted."""

    def __init__(self) -> None:
        self._messages: list[tuple[int, str]] = []
        self.total = 0

    def add(self, lineno: int, message: str) -> None:
        self.total += 1
        if len(self._messages) < MAX_SKIPPED_MESSAGES:
            self._messages.append((lineno, message))

    def merge(self, first: list[tuple[int, str]], total: int) -> None:
        """Add ``total`` messages found apart, of which ``first`` are the first few in order."""
        merged = heapq.merge(self._messages, first, key=itemgetter(0))
        self._messages = list(islice(merged, MAX_SKIPPED_MESSAGES))
        self.total += total

    def messages(self) -> tuple[str, ...]:
        rest = self.total - len(self._messages)
        kept = (message for _, message in self._messages)
        if rest:
            return (*kept, f"{rest} more records skipped (messages not kept)")
        return tuple(kept)
