"""What multi-frame voting adds: a clip in which each car is seen in several frames.

    python benchmarks/voting.py [--photos 40] [--frames 6] [--gap 7] [--data DIR]
                                [--threads 2] [--json] [--verbose]

OpenALPR's US dev photos are stills, so each one becomes an approach: the photo's area around the
plate (the car) is pasted onto one fixed 1280×720 road and grows from 0.6 to 1.0 of its size
over ``--frames`` frames (a car driving up to the camera), with small shifts (shake), motion
blur, sensor noise and JPEG re-compression at random strengths (seeded by the photo's name, so
every run makes the same clip). ``--gap`` frames of the empty road (fresh noise in each) precede
each car, longer than the tracker's timeout, so the previous car's track has closed. Frames are
0.25 s apart (4 fps, the default detector rate limit).

The clip goes through the host's own path: a drop-oldest FrameQueue, the FrameGate, the
RecognitionWorker on its inference thread, the real ``platedet`` recognizer with the default
``combined`` OCR and the PlateTracker, all with the default pipeline settings. It reports:

- per-frame top-1: frames whose detection on the car's plate (IoU > 0.3 with the true box,
  moved with the frame) reads the plate exactly; each frame on its own;
- best single frame: per car, the text of its most confident frame (what a tracker without a
  vote would store);
- voted top-1: per car, the stored read on its plate reads it exactly; once for the vote the
  tracker uses now and once for the baseline vote (the tracker's vote before this benchmark),
  the latter by replaying the very same detections, so the comparison costs no second OCR run;
- one read per car: cars whose plate became exactly one read (no split into several reads, no
  read spanning two cars, not dropped under the minimum confidence).

The dev photos are for measuring only: never train or tune thresholds photo by photo on them.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import statistics
import sys
import time
import zlib
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from _common import REPO_ROOT, load_recognizer, machine

from appliance._config import PipelineSettings
from appliance._metrics import Metrics
from appliance._pipeline import tracker as tracking
from appliance._pipeline.frame_queue import FrameQueue
from appliance._pipeline.gate import FrameGate
from appliance._pipeline.recognition_worker import RecognitionWorker
from appliance._pipeline.tracker import PlateTracker, Voter
from appliance._recognition.colour import COLOURS, vehicle_colour
from appliance.models import Frame, PlateCandidate, PlateDetection, PlateRead
from appliance.testing import FakeClock

DEFAULT_DATA = REPO_ROOT / ".." / "shared" / "datasets" / "openalpr-us-dev"
FRAME_SECONDS = 0.25
IOU_HIT = 0.3
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

Box = tuple[int, int, int, int]


@dataclass
class Car:
    photo: str
    plate: str
    #: frame sequence numbers of this car's frames, and its true box in each
    boxes: dict[int, Box] = field(default_factory=dict)
    start: datetime = T0
    end: datetime = T0


@dataclass
class Clip:
    cars: list[Car]
    #: every frame as the JPEG the "camera" sent (decoded when fed), with its timestamp
    frames: list[tuple[int, datetime, bytes]]


def load_truths(folder: Path) -> list[tuple[str, Box, str]]:
    rows = []
    for truth in sorted(folder.glob("*.txt")):
        name, x, y, w, h, plate = truth.read_text().split()[:6]
        rows.append((name, (int(x), int(y), int(w), int(h)), normalise(plate)))
    return rows


def normalise(plate: str) -> str:
    return "".join(c for c in plate.upper() if c.isalnum())


def pick(truths: list[Any], count: int) -> list[Any]:
    """``count`` photos spread evenly over the (name-sorted) set."""
    if count >= len(truths):
        return truths
    step = len(truths) / count
    return [truths[int(i * step)] for i in range(count)]


def approach_frames(
    photo: np.ndarray, box: Box, frames: int, rng: np.random.Generator, road: np.ndarray
) -> list[tuple[np.ndarray, Box]]:
    """``frames`` frames of the photo's car driving up the fixed ``road``, with the plate's box
    in each. The car is the photo's area around the plate (eight plate widths across), pasted
    onto the road and grown from 0.6 to 1.0 of its size towards the camera, so the background
    stays the camera's own between cars, as on a fixed camera."""
    height, width = road.shape[:2]
    # Fit the photo to the frame (never enlarged), centred: this is the car at its closest.
    fit = min(1.0, width / photo.shape[1], height / photo.shape[0])
    if fit < 1.0:
        photo = cv2.resize(photo, None, fx=fit, fy=fit, interpolation=cv2.INTER_AREA)
    x, y, w, h = (v * fit for v in box)
    off_x, off_y = (width - photo.shape[1]) / 2, (height - photo.shape[0]) / 2
    cx = x + w / 2
    x0, y0 = max(0, round(cx - 4 * w)), max(0, round(y - 3.5 * w))
    x1, y1 = min(photo.shape[1], round(cx + 4 * w)), min(photo.shape[0], round(y + h + 1.5 * w))
    car = photo[y0:y1, x0:x1]
    # Further away, the car sits nearer the road's vanishing point (upper middle).
    vanish_x, vanish_y = width / 2, height / 3
    out = []
    for scale in np.linspace(0.6, 1.0, frames):
        dx = rng.uniform(-0.015, 0.015) * width
        dy = rng.uniform(-0.015, 0.015) * height
        tx = scale * (x0 + off_x - vanish_x) + vanish_x + dx
        ty = scale * (y0 + off_y - vanish_y) + vanish_y + dy
        matrix = np.array([[scale, 0, tx], [0, scale, ty]], dtype=np.float64)
        frame = cv2.warpAffine(
            car, matrix, (width, height), dst=road.copy(), flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_TRANSPARENT,
        )
        frame = motion_blur(frame, rng)
        frame = add_noise(frame, rng.uniform(1.5, 4.0), rng)
        moved = (
            round((x - x0) * scale + tx),
            round((y - y0) * scale + ty),
            round(w * scale),
            round(h * scale),
        )
        out.append((frame, moved))
    return out


def make_road(width: int = 1280, height: int = 720) -> np.ndarray:
    """The camera's fixed view without a car: lighter far away, darker asphalt near, with a
    little texture (the same for every run)."""
    rng = np.random.default_rng(0)
    rows = np.linspace(150, 85, height, dtype=np.float32)[:, None, None]
    texture = cv2.GaussianBlur(rng.normal(0, 12, (height, width)).astype(np.float32), (0, 0), 4)
    tint = np.array([1.0, 1.0, 0.97], np.float32)  # BGR: a slightly warm grey
    road = (rows + texture[:, :, None]) * tint
    return np.clip(road, 0, 255).astype(np.uint8)


def motion_blur(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # ALPR cameras expose for 1/1000 s or less; a few pixels of smear at most.
    length = int(rng.integers(1, 6))
    if length < 2:
        return image
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0
    angle = rng.uniform(-30, 30) + (90 if rng.random() < 0.3 else 0)
    rotation = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), angle, 1.0)
    kernel = cv2.warpAffine(kernel, rotation, (length, length))
    return cv2.filter2D(image, -1, kernel / max(kernel.sum(), 1e-6))


def add_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian sensor noise (OpenCV's generator, seeded from ``rng``: numpy's is slow here)."""
    cv2.setRNGSeed(int(rng.integers(1 << 31)))
    noise = np.empty(image.shape, np.int16)
    cv2.randn(noise, 0, sigma)
    return cv2.add(image, noise, dtype=cv2.CV_8U)


def make_clip(data: Path, photos: list[Any], frames: int, gap: int) -> Clip:
    cars: list[Car] = []
    clip: list[tuple[int, datetime, bytes]] = []
    sequence = 0
    road = make_road()

    def emit(image: np.ndarray, quality: int) -> datetime:
        nonlocal sequence
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise SystemExit("JPEG encoding failed")
        when = T0 + timedelta(seconds=sequence * FRAME_SECONDS)
        clip.append((sequence, when, jpeg.tobytes()))
        sequence += 1
        return when

    for name, box, plate in photos:
        photo = cv2.imread(str(data / name))
        if photo is None:
            raise SystemExit(f"cannot read {data / name}")
        rng = np.random.default_rng(abs(hash_name(name)))
        # The empty road before the car arrives, each frame with fresh noise; longer than the
        # tracker's timeout, so the previous car's track has closed.
        for _ in range(gap):
            emit(add_noise(road, 2.0, rng), 80)
        car = Car(name, plate)
        for i, (image, moved) in enumerate(approach_frames(photo, box, frames, rng, road)):
            car.boxes[sequence] = moved
            when = emit(image, int(rng.integers(55, 90)))
            if i == 0:
                car.start = when
            car.end = when
        cars.append(car)
    return Clip(cars, clip)


def hash_name(name: str) -> int:
    # Python's hash() is salted per process; the clip must be the same on every run.
    return zlib.crc32(name.encode())


class RecordingRecognizer:
    """The real recognizer, remembering each frame's detections for the per-frame figures."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.sequence_of: dict[int, int] = {}
        self.detections: dict[int, list[PlateDetection]] = {}
        self.cpu: list[float] = []

    def recognize(self, image: np.ndarray) -> list[PlateDetection]:
        start = time.thread_time()
        found: list[PlateDetection] = self.inner.recognize(image)
        self.cpu.append(time.thread_time() - start)
        self.detections[self.sequence_of[id(image)]] = found
        return found


async def run_host_path(clip: Clip, recognizer: RecordingRecognizer) -> list[PlateRead]:
    """Feed the clip through queue → gate → worker → tracker as a camera would."""
    settings = PipelineSettings()
    queue = FrameQueue(maxsize=4)
    reads: list[PlateRead] = []

    async def sink(read: PlateRead) -> None:
        reads.append(read)

    executor = ThreadPoolExecutor(1, thread_name_prefix="inference")
    worker = RecognitionWorker(
        "bench",
        queue,
        FrameGate(settings),
        PlateTracker("bench", settings.track_timeout_seconds, settings.min_read_confidence),
        recognizer,  # type: ignore[arg-type]
        executor,
        sink,
        Metrics(),
        # Never advanced: the worker's idle expiry must follow the clip's time, not the wall's.
        FakeClock(T0),
    )
    task = asyncio.create_task(worker.run())
    live: list[np.ndarray] = []
    for sequence, when, jpeg in clip.frames:
        image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        live = [*live[-3:], image]  # keep ids unique while the worker may still hold a frame
        recognizer.sequence_of[id(image)] = sequence
        queue.put(Frame(image=image, timestamp=when, camera="bench", sequence=sequence))
        # A camera at 4 fps would wait for its next frame; here we wait until the worker has
        # taken this one, so the drop-oldest queue never drops (every run is the same clip).
        while len(queue):  # noqa: ASYNC110 - FrameQueue has no "taken" event; a benchmark may poll
            await asyncio.sleep(0.005)
        if sequence % 50 == 0:
            print(f"  … frame {sequence}/{len(clip.frames)}", file=sys.stderr, flush=True)
    queue.close()
    await task
    executor.shutdown()
    if queue.dropped:
        raise SystemExit(f"the queue dropped {queue.dropped} frames")
    return reads


def replay(
    clip: Clip,
    detections: dict[int, list[PlateDetection]],
    voter: Voter,
    min_confidence: float | None = None,
) -> list[PlateRead]:
    """The same detections through a tracker with another vote rule (what the worker does)."""
    settings = PipelineSettings()
    if min_confidence is None:
        min_confidence = settings.min_read_confidence
    tracker = PlateTracker("bench", settings.track_timeout_seconds, min_confidence, voter=voter)
    reads: list[PlateRead] = []
    for sequence, when, jpeg in clip.frames:
        reads += tracker.expire(when)
        if sequence in detections:
            image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
            frame = Frame(image=image, timestamp=when, camera="bench", sequence=sequence)
            reads += tracker.update(frame, detections[sequence])
    return reads + tracker.flush()


def iou(a: Box, b: Box) -> float:
    return tracking.iou(a, b)


def on_plate(detections: list[PlateDetection], truth: Box) -> PlateDetection | None:
    scored = [(iou(d.box, truth), d) for d in detections]
    best = max(scored, key=lambda s: s[0], default=None)
    return best[1] if best is not None and best[0] > IOU_HIT else None


def belongs(read: PlateRead, car: Car) -> bool:
    """A read is this car's plate when it starts in the car's frames and its box (from one of
    them) lies on the plate's true box in one of them."""
    return car.start <= read.first_seen <= car.end and any(
        iou(read.box, b) > IOU_HIT for b in car.boxes.values()
    )


def score(clip: Clip, reads: list[PlateRead]) -> dict[str, Any]:
    """Voted top-1 and one-read-per-car figures for one set of reads."""
    exact = single = split = merged = dropped = 0
    failures = []
    for car in clip.cars:
        mine = [r for r in reads if belongs(r, car)]
        if any(r.last_seen > car.end for r in mine):
            merged += 1
        if not mine:
            dropped += 1
        elif len(mine) > 1:
            split += 1
        else:
            single += 1
        stored = max(mine, key=lambda r: (r.frames, r.confidence), default=None)
        if stored is not None and stored.text == car.plate:
            exact += 1
        else:
            failures.append((car.photo, car.plate, [(r.text, r.frames) for r in mine]))
    other = sum(1 for r in reads if not any(belongs(r, c) for c in clip.cars))
    return {
        "exact": exact,
        "one_read": single,
        "split": split,
        "merged": merged,
        "no_read": dropped,
        "other_reads": other,
        # reads stored that name a plate exactly, of all reads stored (a wrong read can alert)
        "stored": len(reads),
        "failures": failures,
    }


def per_frame(clip: Clip, detections: dict[int, list[PlateDetection]]) -> dict[str, Any]:
    frames = exact = best_exact = admitted = unseen = 0
    for car in clip.cars:
        best: PlateDetection | None = None
        # Frames the gate passed to the detector (the recognizer saw them).
        seen = sum(1 for sequence in car.boxes if sequence in detections)
        admitted += seen
        unseen += seen == 0
        for sequence, truth in car.boxes.items():
            frames += 1
            found = on_plate(detections.get(sequence, []), truth)
            if found is None or not found.text:
                continue
            exact += found.text == car.plate
            if best is None or found.confidence > best.confidence:
                best = found
        best_exact += best is not None and best.text == car.plate
    return {
        "frames": frames,
        "exact": exact,
        "best_frame_exact": best_exact,
        "gate_admitted": admitted,
        "cars_gated_out": unseen,
    }


def baseline_vote(observations: list[Any]) -> tuple[str, float]:
    """The tracker's vote before this benchmark (commit 4d2eceb), kept to compare against.

    Length voted by every frame's candidates, then a per-position vote weighted by character
    confidence among the frames whose first reading has that length; other frames are ignored.
    """
    weight: defaultdict[int, float] = defaultdict(float)
    count: Counter[int] = Counter()
    for o in observations:
        count[len(o.text)] += 1
        for c in o.candidates or (PlateCandidate(o.text, o.confidence),):
            if c.text:
                weight[len(c.text)] += c.confidence
    length = max(count, key=lambda n: (weight[n], count[n]))
    same = [o for o in observations if len(o.text) == length]
    chars = []
    for i in range(length):
        support: defaultdict[str, float] = defaultdict(float)
        for o in same:
            per_char = (
                o.char_confidences[i]
                if len(o.char_confidences) == len(o.text)
                else o.confidence ** (1 / len(o.text))
            )
            support[o.text[i]] += per_char
        chars.append(max(support, key=lambda c: support[c]))
    text = "".join(chars)

    def agreement(o: Any) -> float:
        if len(o.text) != length:
            return 0.0
        return sum(a == b for a, b in zip(o.text, text, strict=True)) / length

    total = sum(o.confidence for o in observations)
    if total <= 0:
        return text, 0.0
    share = sum(o.confidence * agreement(o) for o in observations) / total
    strength = max(o.confidence * agreement(o) for o in observations)
    return text, min(1.0, share * strength)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=40, help="dev photos (cars) in the clip")
    parser.add_argument("--frames", type=int, default=6, help="frames per car")
    parser.add_argument("--gap", type=int, default=7, help="empty frames before each car")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ocr-threads", type=int, default=1)
    parser.add_argument("--beam", type=int, default=4)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="list the cars voting got wrong")
    args = parser.parse_args()

    wall0, cpu0 = time.monotonic(), time.process_time()
    photos = pick(load_truths(args.data), args.photos)
    clip = make_clip(args.data, photos, args.frames, args.gap)
    made = time.monotonic() - wall0
    recognizer = RecordingRecognizer(
        load_recognizer(args.threads, args.ocr_threads, args.beam, "combined")
    )
    start = time.monotonic()
    reads = asyncio.run(run_host_path(clip, recognizer))
    host_wall = time.monotonic() - start
    # The same detections through the tracker with each vote rule: no second OCR run.
    voters: dict[str, Voter] = {
        "no vote (top frame)": most_confident_frame,
        "baseline vote": baseline_vote,
        "vote now": tracking.vote,
    }
    replays = {label: replay(clip, recognizer.detections, v) for label, v in voters.items()}
    if [r.text for r in replays["vote now"]] != [r.text for r in reads]:
        raise SystemExit("replaying the recorded detections did not reproduce the host's reads")
    replays["vote now"] = reads  # the host path's own reads

    frames = per_frame(clip, recognizer.detections)
    scores = {label: score(clip, r) for label, r in replays.items()}
    # The vote's text alone, whatever its confidence (no read dropped under the minimum).
    texts = {
        label: score(clip, replay(clip, recognizer.detections, v, min_confidence=0.0))
        for label, v in voters.items()
    }
    colours = colour_score(clip, reads, recognizer.detections, read_colour_labels())
    cars = len(clip.cars)
    result = {
        "machine": machine(args.threads, args.ocr_threads),
        "cars": cars,
        "frames_per_car": args.frames,
        "clip_frames": len(clip.frames),
        "detector_runs": len(recognizer.cpu),
        "recognizer_cpu_ms_median": round(statistics.median(recognizer.cpu) * 1000, 1),
        "per_frame_top1": frames,
        "reads": {
            label: {k: v for k, v in s.items() if k != "failures"} for label, s in scores.items()
        },
        "voted_text_exact_any_confidence": {label: s["exact"] for label, s in texts.items()},
        "colour": colours,
        "seconds": {
            "make_clip": round(made, 1),
            "host_path_wall": round(host_wall, 1),
            "total_wall": round(time.monotonic() - wall0, 1),
            "total_cpu": round(time.process_time() - cpu0, 1),
        },
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    m = result["machine"]
    print(f"machine: {m['cpu']}, {m['cores']} cores, onnxruntime {m['onnxruntime']}, "
          f"detector {args.threads} threads / OCR {args.ocr_threads}")
    print(f"clip: {cars} cars × {args.frames} frames (+{args.gap} empty frames before each) = "
          f"{len(clip.frames)} frames; detector ran on {len(recognizer.cpu)}, "
          f"median {result['recognizer_cpu_ms_median']} ms CPU each")
    print(f"gate: passed {pct(frames['gate_admitted'], frames['frames'])} of the cars' frames "
          f"to the detector; cars with none passed: {frames['cars_gated_out']}")
    print(f"per-frame top-1 (each frame alone):    {pct(frames['exact'], frames['frames'])}")
    print(f"best single frame per car (its most confident frame on the plate):     "
          f"{pct(frames['best_frame_exact'], cars)}")
    print("stored reads through the tracker (voted top-1; one read per car: no split/merge/drop):")
    for label, s in scores.items():
        print(f"  {label + ':':21} top-1 {pct(s['exact'], cars)}; one read per car "
              f"{pct(s['one_read'], cars)} (split {s['split']}, merged {s['merged']}, "
              f"no read {s['no_read']}); reads off the true plate {s['other_reads']}; right "
              f"among all stored {pct(s['exact'], s['stored'])}")
    print("the vote's text whatever its confidence (none dropped under min_read_confidence):")
    for label, s in texts.items():
        print(f"  {label + ':':21} top-1 {pct(s['exact'], cars)}; one read per car "
              f"{pct(s['one_read'], cars)} (split {s['split']}, merged {s['merged']})")
    if colours["cars"]:
        print(f"vehicle colour vs helper's labels ({colours['cars']} cars labelled): each frame "
              f"alone {pct(colours['frames_right'], colours['frames'])}; voted, per stored read "
              f"{pct(colours['reads_right'], colours['reads'])} ({colours['reads_unknown']} "
              f"unknown)")
    sec = result["seconds"]
    print(f"time: clip made in {sec['make_clip']} s, host path {sec['host_path_wall']} s wall, "
          f"total {sec['total_wall']} s wall / {sec['total_cpu']} s CPU")
    if args.verbose:
        frames_of = {car.photo: car for car in clip.cars}
        for label, s in scores.items():
            for photo, plate, got in s["failures"]:
                car = frames_of[photo]
                seen = [
                    (d.text, round(d.confidence, 2)) if d else None
                    for d in (
                        on_plate(recognizer.detections.get(q, []), b) for q, b in car.boxes.items()
                    )
                ]
                print(f"  {label}: {photo} {plate}: reads {got}; frames {seen}")


def pct(n: int, d: int) -> str:
    return f"{n}/{d} ({100 * n / d:.1f} %)" if d else "0/0"


def most_confident_frame(observations: list[Any]) -> tuple[str, float]:
    """No vote: the track's most confident frame's reading, as a vote-less tracker stores."""
    best = max(observations, key=lambda o: o.confidence)
    return best.text, best.confidence


def read_colour_labels() -> dict[str, str]:
    path = REPO_ROOT / "benchmarks" / "data" / "vehicle_colours.csv"
    if not path.is_file():
        return {}
    rows = (line for line in path.read_text().splitlines() if not line.startswith("#"))
    return {r["file"]: r["colour"] for r in csv.DictReader(rows) if r["colour"] in COLOURS}


def colour_score(
    clip: Clip,
    reads: list[PlateRead],
    detections: dict[int, list[PlateDetection]],
    labels: dict[str, str],
) -> dict[str, int]:
    """Each labelled car's colour per frame (the detection on its plate) and as voted."""
    jpegs = {sequence: jpeg for sequence, _, jpeg in clip.frames}
    out = {"cars": 0, "frames": 0, "frames_right": 0, "reads": 0, "reads_right": 0}
    out["reads_unknown"] = 0
    for car in clip.cars:
        label = labels.get(car.photo)
        if label is None:
            continue
        out["cars"] += 1
        for sequence, truth in car.boxes.items():
            found = on_plate(detections.get(sequence, []), truth)
            if found is None:
                continue
            image = cv2.imdecode(np.frombuffer(jpegs[sequence], np.uint8), cv2.IMREAD_COLOR)
            out["frames"] += 1
            out["frames_right"] += vehicle_colour(image, found.box).name == label
        mine = [r for r in reads if belongs(r, car)]
        stored = max(mine, key=lambda r: (r.frames, r.confidence), default=None)
        if stored is not None:
            out["reads"] += 1
            out["reads_right"] += stored.vehicle_colour == label
            out["reads_unknown"] += stored.vehicle_colour == "unknown"
    return out


if __name__ == "__main__":
    main()
