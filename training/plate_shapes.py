"""Count the character shapes of the real crop set's plates per state, for the format prior.

    python training/plate_shapes.py [--out appliance/_recognition/models/us_plate_shapes.json]

``appliance/_recognition/us_plates.py`` conditions its US format prior on the state the
recognizer guessed (e.g. California's ``9AAA999``), smoothed towards the all-states prior.
The counts come from ``openalpr-us-crops`` (751 plates, ~15 a state), the same source as the
all-states table in ``us_plates.SHAPE_COUNTS``; ``openalpr-us-dev`` is never read here.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crops import CROPS, read_crops

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "appliance" / "_recognition" / "models" / "us_plate_shapes.json"


def shape(text: str) -> str:
    """``"7ABC123"`` → ``"9AAA999"`` (as ``us_plates.shape``)."""
    return "".join("9" if char.isdigit() else "A" for char in text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crops", type=Path, default=CROPS)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for _name, state, plate in read_crops(args.crops):
        counts[state.upper()][shape(plate)] += 1
    table = {state: dict(sorted(c.items())) for state, c in sorted(counts.items())}
    args.out.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    print(f"{sum(map(len, table.values()))} state/shape counts of {len(table)} states → {args.out}")


if __name__ == "__main__":
    main()
