"""The real crop set (openalpr-us-crops) and its fixed train / held-out split.

The split is a hash of the file name, so the training script, the benchmark and any later run
agree on it without a file listing it: one crop in ``HELD_OUT_MODULUS`` (163 of the 751) is
held out and never trained on.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

CROPS = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "openalpr-us-crops"
#: one crop in HELD_OUT_MODULUS is held out for validation
HELD_OUT_MODULUS = 5


def held_out(file_name: str) -> bool:
    """Whether a crop belongs to the held-out split: sha256(name)[:8] as an integer mod 5 == 0."""
    digest = hashlib.sha256(file_name.encode()).digest()
    return int.from_bytes(digest[:8], "big") % HELD_OUT_MODULUS == 0


def read_crops(folder: Path = CROPS) -> list[tuple[str, str, str]]:
    """``(file, state, plate)`` rows of the crop set's ground truth (state lower case)."""
    rows = []
    for line in (folder / "groundtruth.csv").read_text().splitlines():
        parts = line.strip().split(",")
        if len(parts) == 3 and parts[0].endswith(".png"):
            rows.append((parts[0], parts[1].lower(), parts[2].upper()))
    return rows
