"""Synthetic DMV suspended/revoked registration files for demos and tests (fake data)."""

from __future__ import annotations

import logging
import random
from datetime import date, timedelta
from pathlib import Path

from .records import HEADER, TRAILER_PREFIX

logger = logging.getLogger(__name__)

_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"  # I, O and Q are not issued
_REASONS = {
    "SUSPENDED": ("NO PROOF OF INSURANCE", "INSURANCE CANCELLED", "DISHONORED PAYMENT"),
    "REVOKED": ("FRAUDULENT APPLICATION", "VEHICLE REPORTED DISMANTLED", "UNSAFE VEHICLE"),
}
_VEHICLES = (
    ("TOYT", "CAM"), ("TOYT", "COR"), ("HOND", "CIV"), ("HOND", "ACC"), ("FORD", "F15"),
    ("CHEV", "SIL"), ("NISS", "ALT"), ("TESL", "MD3"), ("HYUN", "ELA"), ("BMW", "328"),
)  # fmt: skip
_COLOURS = ("BLK", "WHI", "SIL", "GRY", "BLU", "RED", "GRN", "BGE")


def generate_dmv_file(count: int, seed: int = 0, *, as_of: date | None = None) -> bytes:
    """A DMV list of ``count`` distinct California plates (``7ABC123`` and ``1A23456`` shapes)
    as bytes; deterministic for the same arguments. Effective dates lie before ``as_of``."""
    if count < 0:
        raise ValueError("count must be >= 0")
    rng = random.Random(seed)
    as_of = as_of or date.today()
    plates: set[str] = set()
    lines = [HEADER]
    while len(plates) < count:
        if rng.random() < 0.9:
            letters = "".join(rng.choices(_LETTERS, k=3))
            plate = f"{rng.randrange(1, 10)}{letters}{rng.randrange(1000):03d}"
        else:
            plate = f"{rng.randrange(1, 10)}{rng.choice(_LETTERS)}{rng.randrange(100000):05d}"
        if plate in plates:
            continue
        plates.add(plate)
        status = "SUSPENDED" if rng.random() < 0.85 else "REVOKED"
        make, model = rng.choice(_VEHICLES)
        effective = as_of - timedelta(days=rng.randrange(1, 730))
        lines.append(
            f"{plate},CA,{status},{rng.choice(_REASONS[status])},{effective.isoformat()},"
            f"{rng.randrange(1998, as_of.year + 1)},{make},{model},{rng.choice(_COLOURS)}"
        )
    lines.append(f"{TRAILER_PREFIX}{count}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def write_dmv_file(path: str | Path, count: int, seed: int = 0) -> int:
    """Write a synthetic DMV list of ``count`` records to ``path``; return the bytes written."""
    data = generate_dmv_file(count, seed)
    Path(path).write_bytes(data)
    return len(data)
