"""Recognizer accuracy on OpenALPR's US dev photos, old OCR vs new, in one run.

    python benchmarks/accuracy.py [--engines platerec,us_ocr,combined] [--data DIR]
                                  [--threads N] [--json] [--verbose]

For each OCR engine (the ``ocr_engine`` setting) it prints top-1 exact reads, reads with the
truth among the top-5 candidates, the character error rate of the top-1 reads (a missed plate
counts every character wrong), detection recall (a detected box overlapping the true box with
IoU > 0.3) and the median CPU ms per photo. It also reports the state accuracy (us_state model)
on the held-out split of ``openalpr-us-crops`` (never trained on; see training/crops.py) and, for
engines that load it, the us_ocr model's exact reads of those crops. When OpenALPR's ``alpr``
binary is on PATH it runs on the same photos in the same run for a side-by-side line; otherwise
the benchmark says it was skipped.

``--verbose`` also prints each photo's read and, per engine, why the top-1 reads were wrong in
aggregate categories (:func:`error_categories`: detection miss, truth among the candidates,
missing/extra characters, confusion-pair-only substitutions, loose/tight boxes, the commonest
substituted pairs) and how often ``combined`` lost a plate one engine alone read right.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cv2
from _common import REPO_ROOT, load_recognizer, machine

sys.path.insert(0, str(REPO_ROOT / "training"))
from crops import CROPS, held_out, read_crops

DEFAULT_DATA = REPO_ROOT / ".." / "shared" / "datasets" / "openalpr-us-dev"
IOU_HIT = 0.3
ENGINES = ("platerec", "us_ocr", "combined")


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    w = max(0, min(ax2, bx2) - max(a[0], b[0]))
    h = max(0, min(ay2, by2) - max(a[1], b[1]))
    inter = w * h
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union else 0.0


def edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ca != cb))
    return row[-1]


def normalise(plate: str) -> str:
    return "".join(c for c in plate.upper() if c.isalnum())


def load_truths(folder: Path) -> list[tuple[str, tuple[int, int, int, int], str]]:
    rows = []
    for truth in sorted(folder.glob("*.txt")):
        name, x, y, w, h, plate = truth.read_text().split()[:6]
        rows.append((name, (int(x), int(y), int(w), int(h)), normalise(plate)))
    return rows


def run_engine(engine: str, args: argparse.Namespace, truths: list[Any]) -> dict[str, Any]:
    recognizer = load_recognizer(args.threads, args.ocr_threads, args.beam, engine)
    exact = top5 = found = errors = chars = 0
    cpu_ms: list[float] = []
    photos: list[dict[str, Any]] = []
    for name, gt_box, plate in truths:
        image = cv2.imread(str(args.data / name))
        if image is None:
            raise SystemExit(f"cannot read {args.data / name}")
        start = time.process_time()
        detections = recognizer.recognize_still(image)  # photos, as `alprbox recognize` reads them
        cpu_ms.append((time.process_time() - start) * 1000)
        hit = max(((iou(d.box, gt_box), d) for d in detections), key=lambda s: s[0], default=None)
        text, candidates, box = "", [], None
        if hit is not None and hit[0] > IOU_HIT:
            found += 1
            text, box = hit[1].text, hit[1].box
            candidates = [c.text for c in hit[1].candidates]
            top5 += plate in candidates[:5]
        photos.append({"name": name, "truth": plate, "text": text, "candidates": candidates,
                       "box": box, "true_box": gt_box})  # fmt: skip
        exact += text == plate
        errors += edit_distance(text, plate)
        chars += len(plate)
        if args.verbose:
            print(
                f"  {engine:9s} {name:45s} {plate:9s} {text or '-':9s} "
                f"{'ok' if text == plate else ''}"
            )
    n = len(truths)
    result: dict[str, Any] = {
        "top1_exact": exact,
        "top1_exact_pct": round(100 * exact / n, 1),
        "top5": top5,
        "top5_pct": round(100 * top5 / n, 1),
        "cer_pct": round(100 * errors / max(1, chars), 1),
        "detection_recall_pct": round(100 * found / n, 1),
        "median_cpu_ms_per_photo": round(statistics.median(cpu_ms), 1),
        "stage_cpu_seconds": {k: round(v, 2) for k, v in recognizer.stage_seconds().items()},
        # mean, not median: the recognizer only keeps per-stage totals
        "ocr_cpu_ms_per_photo": round(1000 * recognizer.stage_seconds()["ocr"] / n, 1),
    }
    if recognizer.us_reader is not None or recognizer.state_classifier is not None:
        result["held_out_crops"] = held_out_crops(recognizer)
    result["errors"] = error_categories(photos)
    result["photos"] = photos  # per-photo rows, for the cross-engine comparison; not printed
    return result


#: characters an OCR swaps for each other (the confusion pairs of issue 3)
CONFUSABLE = [set("0ODQ"), set("1ILT"), set("2Z"), set("5S"), set("6G"), set("8B")]


def error_categories(photos: list[dict[str, Any]]) -> dict[str, Any]:
    """Why the top-1 reads were wrong, counted in categories (never per photo).

    - ``detection_miss``: no detected box overlaps the true plate;
    - ``right_in_candidates``: the truth is among the candidates but not first (re-ranking);
    - ``missing_chars`` / ``extra_chars``: shorter / longer than the truth;
    - ``confusion_only``: same length, every wrong character within a confusion pair;
    - ``other_substitutions``: same length, some other wrong character;
    and, for each wrong read, the detector box against the true box: ``box_loose`` (> 25 %
    larger in area), ``box_tight`` (< 85 % of the true box's area), and the substituted
    character pairs (``truth>read``) summed over the same-length misreads.
    """
    counts: dict[str, int] = {
        "detection_miss": 0, "right_in_candidates": 0, "missing_chars": 0, "extra_chars": 0,
        "confusion_only": 0, "other_substitutions": 0, "box_loose": 0, "box_tight": 0,
    }  # fmt: skip
    pairs: dict[str, int] = {}
    for photo in photos:
        truth, text = photo["truth"], photo["text"]
        if text == truth:
            continue
        if photo["box"] is None:
            counts["detection_miss"] += 1
            continue
        (_, _, w, h), (_, _, true_w, true_h) = photo["box"], photo["true_box"]
        area = w * h / max(1, true_w * true_h)
        counts["box_loose"] += area > 1.25
        counts["box_tight"] += area < 0.85
        if truth in photo["candidates"]:
            counts["right_in_candidates"] += 1
        if len(text) < len(truth):
            counts["missing_chars"] += 1
        elif len(text) > len(truth):
            counts["extra_chars"] += 1
        else:
            wrong = [(t, r) for t, r in zip(truth, text, strict=True) if t != r]
            for t, r in wrong:
                pairs[f"{t}>{r}"] = pairs.get(f"{t}>{r}", 0) + 1
            confusable = all(any({t, r} <= group for group in CONFUSABLE) for t, r in wrong)
            counts["confusion_only" if confusable else "other_substitutions"] += 1
    top_pairs = dict(sorted(pairs.items(), key=lambda kv: -kv[1])[:12])
    return {**counts, "substitutions": top_pairs}


def merge_losses(results: dict[str, dict[str, Any]]) -> dict[str, int] | None:
    """Photos ``combined`` read wrong although one of the single engines read them right."""
    if "combined" not in results:
        return None
    singles = [e for e in ("platerec", "us_ocr") if e in results]
    if not singles:
        return None
    losses = {e: 0 for e in singles}
    wins = 0
    for i, photo in enumerate(results["combined"]["photos"]):
        right = {e: results[e]["photos"][i]["text"] == photo["truth"] for e in singles}
        if photo["text"] != photo["truth"]:
            for e in singles:
                losses[e] += right[e]
        else:
            wins += not any(right.values())
    return {**{f"wrong_where_{e}_alone_was_right": n for e, n in losses.items()},
            "right_where_no_single_engine_was": wins}  # fmt: skip


def held_out_crops(recognizer: Any) -> dict[str, Any]:
    """On the held-out real crops: the state's accuracy, and us_ocr's exact reads if loaded."""
    exact = state_ok = n = 0
    for name, state, plate in read_crops(CROPS):
        if not held_out(name):
            continue
        image = cv2.imread(str(CROPS / name), cv2.IMREAD_COLOR)
        if image is None:
            continue
        n += 1
        guess, confidence = None, 0.0
        if recognizer.us_reader is not None:
            result = recognizer.us_reader.read(image)
            exact += bool(result.readings) and result.readings[0].text == plate
            guess, confidence = result.state, result.state_confidence
        if recognizer.state_classifier is not None:
            # the recognizer's rule: the more confident of the two state opinions
            other, other_confidence = recognizer.state_classifier.classify(image)
            if other_confidence > confidence:
                guess = other
        state_ok += (guess or "").lower() == state
    report: dict[str, Any] = {
        "crops": n,
        "state_accuracy_pct": round(100 * state_ok / max(1, n), 1),
    }
    if recognizer.us_reader is not None:
        report["us_ocr_exact_pct"] = round(100 * exact / max(1, n), 1)
    return report


def run_openalpr(args: argparse.Namespace, truths: list[Any]) -> dict[str, Any] | None:
    """OpenALPR's own ``alpr`` on the same photos, if installed: top-1, top-5, CPU per photo."""
    binary = shutil.which("alpr")
    if binary is None:
        return None
    exact = top5 = 0
    cpu_ms: list[float] = []
    for name, _box, plate in truths:
        started = time.process_time()
        before = _children_cpu()
        out = subprocess.run(
            [binary, "-c", "us", "-j", "-n", "10", str(args.data / name)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        cpu_ms.append((_children_cpu() - before + time.process_time() - started) * 1000)
        try:
            results = json.loads(out.stdout or "{}").get("results", [])
        except json.JSONDecodeError:
            results = []
        if results:
            exact += normalise(results[0]["plate"]) == plate
            top5 += plate in [normalise(c["plate"]) for c in results[0].get("candidates", [])[:5]]
    n = len(truths)
    return {
        "top1_exact_pct": round(100 * exact / n, 1),
        "top5_pct": round(100 * top5 / n, 1),
        "median_cpu_ms_per_photo": round(statistics.median(cpu_ms), 1),
    }


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of .jpg + .txt")
    parser.add_argument("--engines", default=",".join(ENGINES), help="OCR engines to compare")
    parser.add_argument("--threads", type=int, default=2, help="detector threads")
    parser.add_argument("--ocr-threads", type=int, default=1)
    parser.add_argument("--beam", type=int, default=4, help="OCR beam width")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--verbose", action="store_true", help="print every photo's result")
    args = parser.parse_args()

    truths = load_truths(args.data)
    if not truths:
        parser.error(f"no ground-truth .txt files in {args.data}")
    engines = [e for e in args.engines.split(",") if e]
    unknown = set(engines) - set(ENGINES)
    if unknown:
        parser.error(f"unknown engines {sorted(unknown)}; known: {', '.join(ENGINES)}")
    results = {engine: run_engine(engine, args, truths) for engine in engines}
    merge = merge_losses(results)
    for r in results.values():
        r.pop("photos")
    openalpr = run_openalpr(args, truths)
    report = {
        "machine": machine(args.threads, args.ocr_threads),
        "data": str(args.data.resolve()),
        "photos": len(truths),
        "engines": results,
        "merge": merge,
        "openalpr": openalpr if openalpr is not None else "skipped: alpr is not on PATH",
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    m = report["machine"]
    print(
        f"machine: {m['cpu']}, {m['cores']} cores, onnxruntime {m['onnxruntime']}, "
        f"threads detector {m['detector_threads']} / OCR {m['ocr_threads']}"
    )
    print(f"photos: {len(truths)} ({report['data']})")
    header = (
        f"{'engine':10s} {'top-1':>7s} {'top-5':>7s} {'CER':>7s} {'recall':>7s} {'CPU ms':>8s}"
        f" {'OCR ms':>7s}"
    )
    print(header)
    for engine, r in results.items():
        print(
            f"{engine:10s} {r['top1_exact_pct']:6.1f}% {r['top5_pct']:6.1f}% {r['cer_pct']:6.1f}% "
            f"{r['detection_recall_pct']:6.1f}% {r['median_cpu_ms_per_photo']:8.1f}"
            f" {r['ocr_cpu_ms_per_photo']:7.1f}"
        )
    for engine, r in results.items():
        crops = r.get("held_out_crops")
        if crops:
            ocr = crops.get("us_ocr_exact_pct")
            print(
                f"{engine}: held-out real crops ({crops['crops']}): state "
                f"{crops['state_accuracy_pct']} %"
                + (f", us_ocr alone exact {ocr} %" if ocr is not None else "")
            )
    if args.verbose:
        for engine, r in results.items():
            print(f"{engine}: why top-1 was wrong: {json.dumps(r['errors'])}")
        if merge is not None:
            print(f"merge: {json.dumps(merge)}")
    if openalpr is None:
        print("OpenALPR: skipped (alpr is not on PATH)")
    else:
        print(
            f"{'openalpr':10s} {openalpr['top1_exact_pct']:6.1f}% {openalpr['top5_pct']:6.1f}% "
            f"{'':>7s} {'':>7s} {openalpr['median_cpu_ms_per_photo']:8.1f}"
        )


if __name__ == "__main__":
    main()
