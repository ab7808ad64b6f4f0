"""Vehicle colour estimation on OpenALPR's US dev photos, against hand labels.

    python benchmarks/colour.py [--labels benchmarks/data/vehicle_colours.csv] [--data DIR]
                                [--json] [--verbose]

``appliance._recognition.colour.vehicle_colour`` is given each photo and its true plate box (so
the figure is the colour estimate's, not the detector's). The labels are one helper's judgement
from looking at the photos (see the CSV's header); photos labelled ``other`` (no single body
colour) are left out. It prints:

- accuracy over all labelled photos ("unknown" counts as wrong);
- coverage (share of photos given a colour rather than "unknown") and precision (share right
  among those);
- the same with silver and white, and silver and black, counted as one (the close calls);
- a confusion summary: label → what the estimate said, and the CPU time per estimate.

The dev photos are for measuring only: the thresholds in colour.py were not fitted to them.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import cv2
from _common import REPO_ROOT

from appliance._recognition.colour import COLOURS, UNKNOWN, vehicle_colour

DEFAULT_DATA = REPO_ROOT / ".." / "shared" / "datasets" / "openalpr-us-dev"
DEFAULT_LABELS = REPO_ROOT / "benchmarks" / "data" / "vehicle_colours.csv"
#: pairs a human and a camera confuse most: reported separately, never folded into accuracy
CLOSE_CALLS = ({"silver", "white"}, {"silver", "black"})


def read_labels(path: Path) -> dict[str, str]:
    """File → colour, in the CSV's order (dicts keep it: the halves below depend on it)."""
    rows = (line for line in path.read_text().splitlines() if not line.startswith("#"))
    return {row["file"]: row["colour"] for row in csv.DictReader(rows)}


def halves(labels: dict[str, str]) -> dict[str, dict[str, str]]:
    """Rows 0, 2, 4… of the CSV ("tune": the thresholds were chosen looking at these) and
    rows 1, 3, 5… ("test": never looked at while choosing them), then all."""
    rows = list(labels.items())
    return {
        "tune": dict(rows[0::2]),
        "test": dict(rows[1::2]),
        "all": labels,
    }


def plate_boxes(folder: Path) -> dict[str, tuple[int, int, int, int]]:
    boxes = {}
    for truth in sorted(folder.glob("*.txt")):
        name, x, y, w, h = truth.read_text().split()[:5]
        boxes[name] = (int(x), int(y), int(w), int(h))
    return boxes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--labels", type=Path, default=DEFAULT_LABELS)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="list every wrong estimate")
    args = parser.parse_args()

    every = read_labels(args.labels)
    boxes = plate_boxes(args.data)
    results = {}
    for half, labels in halves(every).items():
        results[half] = evaluate(
            {f: c for f, c in labels.items() if c in COLOURS}, boxes, args.data
        )
    if args.json:
        print(json.dumps({h: {k: v for k, v in r.items() if k != "wrong"}
                          for h, r in results.items()}, indent=2))
        return
    print(f"labels: {args.labels.name} (one helper's judgement; 'other' left out); "
          f"thresholds chosen on the tune half only")
    for half, result in results.items():
        total, right, answered = result["photos"], result["right"], result["answered"]
        print(f"{half:4}: accuracy {right}/{total} ({100 * right / total:.1f} %, unknown counted "
              f"wrong); coverage {100 * answered / total:.1f} %, precision "
              f"{100 * result['precision']:.1f} %; silver~white and silver~black counted right "
              f"{100 * result['accuracy_close_calls_merged']:.1f} %")
    result = results["all"]
    print(f"CPU per estimate: median {result['cpu_ms_median']:.2f} ms")
    print("confusion, all photos (label: estimates):")
    for label, row in sorted(result["confusion"].items(), key=lambda item: -sum(item[1].values())):
        said = ", ".join(f"{name} {n}" for name, n in Counter(row).most_common())
        print(f"  {label:7} ({sum(row.values()):2}): {said}")
    if args.verbose:
        for name, label, said, confidence in result["wrong"]:
            print(f"  {name}: labelled {label}, estimated {said} ({confidence:.2f})")


def evaluate(
    labels: dict[str, str], boxes: dict[str, tuple[int, int, int, int]], data: Path
) -> dict[str, Any]:
    confusion: defaultdict[str, Counter[str]] = defaultdict(Counter)
    wrong: list[tuple[str, str, str, float]] = []
    cpu: list[float] = []
    for name, label in labels.items():
        image = cv2.imread(str(data / name))
        if image is None:
            raise SystemExit(f"cannot read {data / name}")
        start = time.process_time()
        estimate = vehicle_colour(image, boxes[name])
        cpu.append(time.process_time() - start)
        confusion[label][estimate.name] += 1
        if estimate.name != label:
            wrong.append((name, label, estimate.name, estimate.confidence))
    total = len(labels)
    right = sum(confusion[c][c] for c in confusion)
    answered = total - sum(row[UNKNOWN] for row in confusion.values())
    lenient = right + sum(
        n
        for label, row in confusion.items()
        for said, n in row.items()
        if said != label and {label, said} in CLOSE_CALLS
    )
    return {
        "photos": total,
        "right": right,
        "answered": answered,
        "accuracy": right / total,
        "coverage": answered / total,
        "precision": right / answered if answered else 0.0,
        "accuracy_close_calls_merged": lenient / total,
        "cpu_ms_median": statistics.median(cpu) * 1000,
        "confusion": {label: dict(row) for label, row in sorted(confusion.items())},
        "wrong": wrong,
    }


if __name__ == "__main__":
    main()
