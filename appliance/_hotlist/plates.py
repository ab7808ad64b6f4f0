"""Plate text for hot-list matching: normalization, the OCR confusion table and its limit.

Reads and listed plates go through the same :func:`normalize_plate`, so a plate typed into a
list and a plate read off a car compare on the same terms. The confusion table is the one place
that says which characters an OCR mistakes for each other; the matcher only ever substitutes
within one of its classes.
"""

from __future__ import annotations

import re
import string
import unicodedata
from dataclasses import dataclass

WILDCARD = "*"

#: Characters a plate OCR confuses, one class per string; the first character of each class is
#: its representative in the "canonical" form. Kept to the pairs seen on US plates (stroke fonts,
#: dirt, bolts): widening a class widens every fuzzy hit, so a new class needs evidence.
CONFUSION_CLASSES: tuple[str, ...] = ("0ODQ", "1ILT", "2Z", "5S", "6G", "8B")

#: Non-Latin capitals that render like Latin ones (after NFKC and upper-casing). A read or an
#: imported list can carry them from a keyboard layout or a copy-paste; left alone, "АВС123" with
#: Cyrillic letters would never match "ABC123".
_LOOK_ALIKES = {
    # Cyrillic
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C",
    "Т": "T", "Х": "X", "У": "Y", "І": "I", "Ј": "J", "Ѕ": "S", "Ԛ": "Q", "Ԝ": "W",
    # Greek
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
    "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
}  # fmt: skip
_LOOK_ALIKE_TABLE = str.maketrans(_LOOK_ALIKES)
_CANONICAL_TABLE = bytes.maketrans(
    "".join(cls[1:] for cls in CONFUSION_CLASSES).encode(),
    "".join(cls[0] * (len(cls) - 1) for cls in CONFUSION_CLASSES).encode(),
)
_CLASS_OF = {ch: cls for cls in CONFUSION_CLASSES for ch in cls}

_NOT_PLATE_ASCII = re.compile(r"[^A-Z0-9]")
_NOT_ENTRY_ASCII = re.compile(r"[^A-Z0-9*]")
# The same, for plates joined by newlines (normalize_many, canonical_many).
_NOT_PLATES_ASCII = re.compile(r"[^A-Z0-9\n]")
_NOT_ENTRIES_ASCII = re.compile(r"[^A-Z0-9*\n]")


def normalize_plate(text: str, *, wildcards: bool = False) -> str:
    """Upper-case plate text without separators, with look-alike letters made ASCII.

    Spaces, dashes, dots and other punctuation are dropped. ``wildcards`` keeps ``*`` (listed
    plates); reads never carry one. Letters with no ASCII look-alike are kept, so they match only
    themselves rather than silently vanishing and making a shorter plate.
    """
    if text.isascii():
        # The common case by far; regexes and upper() stay in C.
        upper = text.upper()
        if upper.isalnum():
            return upper
        return (_NOT_ENTRY_ASCII if wildcards else _NOT_PLATE_ASCII).sub("", upper)
    folded = unicodedata.normalize("NFKC", text).upper().translate(_LOOK_ALIKE_TABLE)
    return "".join(ch for ch in folded if ch.isalnum() or (wildcards and ch == WILDCARD))


def normalize_many(texts: list[str], *, wildcards: bool = False) -> list[str]:
    """``[normalize_plate(text, wildcards=wildcards) for text in texts]``, faster.

    ASCII lists (the usual) are normalized as one newline-joined string, in C; others (or text
    holding a newline) one plate at a time.
    """
    try:
        joined = "\n".join(texts)
    except TypeError:  # not all text: fail as normalize_plate fails
        return [normalize_plate(text, wildcards=wildcards) for text in texts]
    if not texts or not joined.isascii() or joined.count("\n") != len(texts) - 1:
        return [normalize_plate(text, wildcards=wildcards) for text in texts]
    letters = joined.replace("\n", "")
    if letters.isalnum() and (letters.isupper() or letters.isdigit()):
        return list(texts)  # already normalized: the same strings
    upper = joined.upper()
    if not letters.isalnum():  # separators (or wildcards) to drop
        upper = (_NOT_ENTRIES_ASCII if wildcards else _NOT_PLATES_ASCII).sub("", upper)
    return upper.split("\n")


def canonical_many(plates: list[str]) -> list[bytes]:
    """``[canonical(plate) for plate in plates]`` for normalized plates, as one string, in C."""
    joined = "\n".join(plates)
    if not plates or joined.count("\n") != len(plates) - 1:  # not normalized: one at a time
        return [canonical(plate) for plate in plates]
    raw = joined.encode() if joined.isascii() else joined.encode("ascii", "replace")
    return raw.translate(_CANONICAL_TABLE).split(b"\n")


def canonical(plate: str) -> bytes:
    """``plate`` with each confusable character replaced by its class representative.

    Two ASCII plates have the same canonical form exactly when they differ only by substitutions
    within confusion classes. It is bytes, one per character, because bytes translate about five
    times faster than str and a million-entry build does it a million times; a character with no
    ASCII form becomes ``?``, so such keys only narrow the candidates, which the matcher then
    compares character by character.
    """
    raw = plate.encode() if plate.isascii() else plate.encode("ascii", "replace")
    return raw.translate(_CANONICAL_TABLE)


#: Every byte :func:`canonical` can give for a character of a normalized read ("?": not ASCII).
CANONICAL_SYMBOLS = bytes(sorted(set(canonical(string.ascii_uppercase + string.digits)))) + b"?"


def confusable(a: str, b: str) -> bool:
    """Whether an OCR may read character ``a`` for ``b`` (different characters, one class)."""
    cls = _CLASS_OF.get(a)
    return a != b and cls is not None and b in cls


def normalize_state(state: str | None) -> str | None:
    """``"ca "`` → ``"CA"``; blank means unknown."""
    if state is None:
        return None
    state = state.strip().upper()
    return state or None


@dataclass(frozen=True)
class ConfusionLimit:
    """The most confusion substitutions a read may have against a listed plate, by its length.

    Every substitution allowed multiplies the plates that hit a listed one, and each of those is
    an innocent driver who may be stopped. Short plates are few characters from many others, so
    they get the fewest: by default 1 substitution up to 5 characters, 2 for 6–7 (the common US
    lengths, where one dirty character and one bolt are both usual), 2 for 8 (US plates stop at
    8; going to 3 would let over a third of the plate be guessed). A wildcard in a listed plate
    counts against the same limit (see :mod:`appliance._hotlist.matcher`).
    """

    short: int = 1  # plates of up to 5 characters
    medium: int = 2  # 6 or 7 characters
    long: int = 2  # 8 or more

    def __post_init__(self) -> None:
        if min(self.short, self.medium, self.long) < 0:
            raise ValueError("confusion limits cannot be negative")

    @classmethod
    def exact_only(cls) -> ConfusionLimit:
        """No substitutions at all: only exact and wildcard hits."""
        return cls(0, 0, 0)

    def for_length(self, length: int) -> int:
        if length <= 5:
            return self.short
        if length <= 7:
            return self.medium
        return self.long
