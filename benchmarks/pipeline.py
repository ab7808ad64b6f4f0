"""The whole recognition pipeline on the bundled demo clip, on this machine.

    python benchmarks/pipeline.py [--clip PATH] [--threads N] [--json] [--verbose]

Runs decode → motion gate → detector → OCR → tracker exactly in the order the appliance's
recognition worker does, one frame at a time in one thread, and prints throughput, CPU cost per
stage, how many frames the gate let through, the reads and how many match the clip's ground
truth (``demo-clip.txt`` beside the clip).
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
from _common import REPO_ROOT, load_recognizer, machine

from appliance._config import PipelineSettings
from appliance._pipeline.gate import FrameGate
from appliance._pipeline.tracker import PlateTracker
from appliance.models import Frame, PlateRead

DEFAULT_CLIP = (
    REPO_ROOT
    / "plugins"
    / "cameras"
    / "replay"
    / "alprbox_camera_replay"
    / "clips"
    / "demo-clip.mp4"
)
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def ground_truth(clip: Path) -> list[str]:
    listing = clip.with_suffix(".txt")
    if not listing.is_file():
        return []
    rows = [line.split("\t") for line in listing.read_text().splitlines()]
    return [row[3] for row in rows if len(row) == 4 and not row[0].startswith("#")]


def exact_matches(reads: list[PlateRead], truth: list[str]) -> int:
    """Reads equal to a ground-truth plate, each plate counted once."""
    remaining = list(truth)
    hits = 0
    for read in reads:
        if read.text in remaining:
            remaining.remove(read.text)
            hits += 1
    return hits


def run(clip: Path, threads: int, ocr_threads: int, beam: int) -> dict[str, Any]:
    settings = PipelineSettings()
    recognizer = load_recognizer(threads, ocr_threads, beam)
    gate = FrameGate(settings)
    tracker = PlateTracker(
        "benchmark", settings.track_timeout_seconds, settings.min_read_confidence
    )
    capture = cv2.VideoCapture(str(clip))
    if not capture.isOpened():
        raise SystemExit(f"cannot open {clip}")
    fps = capture.get(cv2.CAP_PROP_FPS) or 10.0
    cpu = {"decode": 0.0, "gate": 0.0, "tracker": 0.0}
    reads: list[PlateRead] = []
    frames = 0
    wall = time.perf_counter()
    while True:
        start = time.process_time()
        ok, image = capture.read()
        cpu["decode"] += time.process_time() - start
        if not ok:
            break
        frame = Frame(image, T0 + timedelta(seconds=frames / fps), "benchmark", frames)
        frames += 1
        start = time.process_time()
        reads += tracker.expire(frame.timestamp)
        cpu["tracker"] += time.process_time() - start
        start = time.process_time()
        admitted = gate.admit(image, frame.timestamp.timestamp(), tracker.active)
        cpu["gate"] += time.process_time() - start
        if not admitted:
            continue
        detections = recognizer.recognize(image)
        start = time.process_time()
        reads += tracker.update(frame, detections)
        cpu["tracker"] += time.process_time() - start
    reads += tracker.flush()
    wall = time.perf_counter() - wall
    capture.release()
    if frames == 0:
        raise SystemExit(f"no frames decoded from {clip}")

    cpu |= recognizer.stage_seconds()
    runs = gate.admitted
    truth = ground_truth(clip)
    clip_minutes = frames / fps / 60
    return {
        "machine": machine(threads, ocr_threads),
        "clip": str(clip),
        "clip_frames": frames,
        "clip_seconds": round(frames / fps, 1),
        "wall_seconds": round(wall, 2),
        "frames_per_second": round(frames / wall, 1),
        "realtime_factor": round(frames / fps / wall, 2),
        "detector_runs": runs,
        "gate_ratio": round(runs / frames, 3),
        "cpu_ms_per_clip_frame": {k: round(v * 1000 / frames, 2) for k, v in cpu.items()},
        "cpu_ms_per_detector_run": {
            k: round(v * 1000 / runs, 1) if runs else 0.0
            for k, v in cpu.items()
            if k in ("detect", "ocr")
        },
        "cpu_ms_total_per_clip_frame": round(sum(cpu.values()) * 1000 / frames, 1),
        "reads": len(reads),
        "reads_per_minute": round(len(reads) / clip_minutes, 1),
        "ground_truth_plates": len(truth),
        "exact_matches": exact_matches(reads, truth),
        "read_texts": [r.text for r in reads],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    parser.add_argument("--threads", type=int, default=2, help="detector threads")
    parser.add_argument("--ocr-threads", type=int, default=1)
    parser.add_argument("--beam", type=int, default=4, help="OCR beam width")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--verbose", action="store_true", help="also list the reads")
    args = parser.parse_args()

    r = run(args.clip, args.threads, args.ocr_threads, args.beam)
    if not args.verbose:
        r.pop("read_texts")
    if args.json:
        print(json.dumps(r, indent=2))
        return
    m = r["machine"]
    per_frame, per_run = r["cpu_ms_per_clip_frame"], r["cpu_ms_per_detector_run"]
    print(
        f"machine: {m['cpu']}, {m['cores']} cores, onnxruntime {m['onnxruntime']}, "
        f"threads detector {m['detector_threads']} / OCR {m['ocr_threads']}"
    )
    print(f"clip: {r['clip']} ({r['clip_frames']} frames, {r['clip_seconds']} s)")
    print(
        f"throughput: {r['frames_per_second']} frames/s ({r['realtime_factor']}x real time, "
        f"{r['wall_seconds']} s wall)"
    )
    print(
        f"detector runs: {r['detector_runs']} of {r['clip_frames']} frames "
        f"(gate ratio {r['gate_ratio']})"
    )
    print(
        "CPU ms per clip frame: "
        + ", ".join(f"{k} {v}" for k, v in per_frame.items())
        + f" (total {r['cpu_ms_total_per_clip_frame']})"
    )
    print(f"CPU ms per detector run: detect {per_run['detect']}, OCR {per_run['ocr']}")
    print(
        f"reads: {r['reads']} ({r['reads_per_minute']} per minute of clip); exact matches "
        f"{r['exact_matches']} of {r['ground_truth_plates']} ground-truth plates"
    )
    if args.verbose:
        print("read texts: " + " ".join(r["read_texts"]))


if __name__ == "__main__":
    main()
