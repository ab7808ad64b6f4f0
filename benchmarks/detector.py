"""Plate detector cost vs recall on OpenALPR's US dev photos: detector configurations side by side.

    python benchmarks/detector.py [--configs platedet:640,bundled:640,bundled:512]
                                  [--engine combined] [--threads 2] [--data DIR] [--json]

Each configuration (``detector_model:detector_size``; the size applies to the bundled model,
platedet's own export is fixed at 640×640) runs the whole recognizer (the chosen OCR engine) on
every photo, in this one process, one after the other, so the CPU numbers compare under the
same load. Printed per configuration: detection recall (a returned plate overlapping the true
box with IoU > 0.3, as benchmarks/accuracy.py counts it), top-1 exact reads, and the median CPU
ms per photo in all and in the detector (process time: it counts onnxruntime's worker threads).
Also printed: the machine and its load average, because two cores are shared here.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
from _common import machine
from accuracy import DEFAULT_DATA, IOU_HIT, iou, load_truths

from appliance._recognition.plugin import PlatedetRecognizer, PlatedetSettings
from appliance.base import PluginContext, SystemClock

DEFAULT_CONFIGS = "platedet:640,bundled:640,bundled:512"


def load(model: str, size: int, args: argparse.Namespace) -> PlatedetRecognizer:
    settings = PlatedetSettings.model_validate(
        {
            "threads": args.threads,
            "ocr_threads": 1,
            "ocr_engine": args.engine,
            "detector_model": model,
            "detector_size": size,
        }
    )
    context = PluginContext(
        logging.getLogger("benchmark"), Path(tempfile.gettempdir()), SystemClock()
    )
    recognizer = PlatedetRecognizer(settings, context)
    # One stage at a time in one thread: process time is exact and counts ORT's workers.
    recognizer.cpu_clock = time.process_time
    recognizer.load()
    return recognizer


def run(model: str, size: int, args: argparse.Namespace, photos: list[Any]) -> dict[str, Any]:
    recognizer = load(model, size, args)
    recognizer.recognize(photos[0][1])  # first call allocates; not part of any photo's cost
    found = exact = 0
    total_ms: list[float] = []
    detect_ms: list[float] = []
    missed = []
    for name, image, gt_box, plate in photos:
        before = recognizer.stage_seconds()["detect"]
        start = time.process_time()
        detections = recognizer.recognize(image)
        total_ms.append((time.process_time() - start) * 1000)
        detect_ms.append((recognizer.stage_seconds()["detect"] - before) * 1000)
        hit = max(((iou(d.box, gt_box), d) for d in detections), key=lambda s: s[0], default=None)
        if hit is not None and hit[0] > IOU_HIT:
            found += 1
            exact += hit[1].text == plate
        else:
            missed.append(name)
    n = len(photos)
    return {
        "detector_model": model,
        "detector_size": 640 if model == "platedet" else size,
        "recall": found,
        "recall_pct": round(100 * found / n, 1),
        "top1_exact": exact,
        "top1_exact_pct": round(100 * exact / n, 1),
        "median_cpu_ms_per_photo": round(statistics.median(total_ms), 1),
        "median_detect_cpu_ms": round(statistics.median(detect_ms), 1),
        "missed": missed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of .jpg + .txt")
    parser.add_argument("--configs", default=DEFAULT_CONFIGS, help="model:size,... to compare")
    parser.add_argument("--engine", default="combined", help="OCR engine (ocr_engine setting)")
    parser.add_argument("--threads", type=int, default=2, help="detector threads")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    photos = []
    for name, box, plate in load_truths(args.data):
        image = cv2.imread(str(args.data / name))
        if image is None:
            raise SystemExit(f"cannot read {args.data / name}")
        photos.append((name, image, box, plate))
    if not photos:
        parser.error(f"no ground-truth .txt files in {args.data}")
    configs = []
    for item in args.configs.split(","):
        model, _, size = item.partition(":")
        if model not in ("bundled", "platedet") or not size.isdigit():
            parser.error(f"bad config {item!r}: want bundled:SIZE or platedet:640")
        configs.append((model, int(size)))
    load_before = os.getloadavg()
    results = [run(model, size, args, photos) for model, size in configs]
    report = {
        "machine": machine(args.threads, 1),
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "photos": len(photos),
        "ocr_engine": args.engine,
        "configs": results,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    m = report["machine"]
    print(
        f"machine: {m['cpu']}, {m['cores']} cores, onnxruntime {m['onnxruntime']}, "
        f"detector threads {m['detector_threads']}; load average (1 min) before/after "
        f"{report['load_average_before_after'][0]} / {report['load_average_before_after'][1]}"
    )
    print(f"photos: {len(photos)} ({args.data.resolve()}), OCR engine {args.engine}")
    print(
        f"{'detector':14s} {'recall':>12s} {'top-1':>12s} {'CPU ms/photo':>13s} {'detect ms':>10s}"
    )
    for r in results:
        label = f"{r['detector_model']}:{r['detector_size']}"
        print(
            f"{label:14s} {r['recall']:4d} {r['recall_pct']:5.1f}% "
            f"{r['top1_exact']:4d} {r['top1_exact_pct']:5.1f}% "
            f"{r['median_cpu_ms_per_photo']:13.1f} {r['median_detect_cpu_ms']:10.1f}"
        )


if __name__ == "__main__":
    main()
