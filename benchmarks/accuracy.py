"""Recognizer accuracy on OpenALPR's US dev photos (one plate per photo, ground truth beside it).

    python benchmarks/accuracy.py [--data DIR] [--threads N] [--json]

Prints top-1 exact reads, reads with the truth among the top-5 candidates, detection recall
(a detected box overlapping the true box with IoU > 0.3) and the median CPU ms per photo.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import cv2
from _common import REPO_ROOT, load_recognizer, machine

DEFAULT_DATA = REPO_ROOT / ".." / "shared" / "datasets" / "openalpr-us-dev"
IOU_HIT = 0.3


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    w = max(0, min(ax2, bx2) - max(a[0], b[0]))
    h = max(0, min(ay2, by2) - max(a[1], b[1]))
    inter = w * h
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of .jpg + .txt")
    parser.add_argument("--threads", type=int, default=2, help="detector threads")
    parser.add_argument("--ocr-threads", type=int, default=1)
    parser.add_argument("--beam", type=int, default=4, help="OCR beam width")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--verbose", action="store_true", help="print every photo's result")
    args = parser.parse_args()

    truths = sorted(args.data.glob("*.txt"))
    if not truths:
        parser.error(f"no ground-truth .txt files in {args.data}")
    recognizer = load_recognizer(args.threads, args.ocr_threads, args.beam)
    exact = top5 = found = 0
    cpu_ms: list[float] = []
    for truth in truths:
        name, x, y, w, h, plate = truth.read_text().split()[:6]
        gt_box = (int(x), int(y), int(w), int(h))
        image = cv2.imread(str(args.data / name))
        if image is None:
            raise SystemExit(f"cannot read {args.data / name}")
        start = time.process_time()
        detections = recognizer.recognize(image)
        cpu_ms.append((time.process_time() - start) * 1000)
        scored = [(iou(d.box, gt_box), d) for d in detections]
        hit = max(scored, key=lambda s: s[0], default=None)
        text = ""
        if hit is not None and hit[0] > IOU_HIT:
            found += 1
            detection = hit[1]
            text = detection.text
            exact += text == plate
            top5 += plate in [c.text for c in detection.candidates[:5]]
        if args.verbose:
            print(f"{name:45s} {plate:9s} {text or '-':9s} {'ok' if text == plate else ''}")

    n = len(truths)
    result = {
        "machine": machine(args.threads, args.ocr_threads),
        "data": str(args.data.resolve()),
        "photos": n,
        "top1_exact": exact,
        "top1_exact_pct": round(100 * exact / n, 1),
        "top5": top5,
        "top5_pct": round(100 * top5 / n, 1),
        "detection_recall_pct": round(100 * found / n, 1),
        "median_cpu_ms_per_photo": round(statistics.median(cpu_ms), 1),
        "stage_cpu_seconds": {k: round(v, 2) for k, v in recognizer.stage_seconds().items()},
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    m = result["machine"]
    print(
        f"machine: {m['cpu']}, {m['cores']} cores, onnxruntime {m['onnxruntime']}, "
        f"threads detector {m['detector_threads']} / OCR {m['ocr_threads']}"
    )
    print(f"photos: {n} ({result['data']})")
    print(f"top-1 exact: {exact}/{n} ({result['top1_exact_pct']} %)")
    print(f"top-5:       {top5}/{n} ({result['top5_pct']} %)")
    print(f"detection recall (IoU > {IOU_HIT}): {found}/{n} ({result['detection_recall_pct']} %)")
    print(f"median CPU per photo: {result['median_cpu_ms_per_photo']} ms")


if __name__ == "__main__":
    main()
