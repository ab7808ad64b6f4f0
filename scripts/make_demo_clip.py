"""Build the bundled demo clip (the replay plugin's clips/demo-clip.mp4) from real US car photos.

    python scripts/make_demo_clip.py [--data DIR] [--out DIR]

Each photo is shown for a couple of seconds with a slow zoom towards its plate, like a car
rolling up to a gate camera, letterboxed into 1280×720; empty black road separates the cars, long
enough for the tracker to close each car's read (track timeout 1.5 s) and for the motion gate to
skip. The photos come from OpenALPR's benchmarks (AGPL-3.0, see DEMO-CLIP-NOTICE.txt); they are
ones the bundled recognizer reads, of varied cars, states and lighting.

Writes demo-clip.mp4 (H.264, yuv420p, 10 fps), demo-clip.txt (sources, ground truth, times)
and DEMO-CLIP-LICENSE.
"""

from __future__ import annotations

import argparse
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO_ROOT / ".." / "shared" / "datasets" / "openalpr-us-dev"
DEFAULT_OUT = REPO_ROOT / "plugins" / "cameras" / "replay" / "alprbox_camera_replay" / "clips"

WIDTH, HEIGHT, FPS = 1280, 720, 10
CAR_SECONDS = 2.2
GAP_SECONDS = 1.6
#: the view closes in by this factor over a car's time, and its centre moves this far towards
#: the plate: the plate grows and slides across the frame like an approaching car's
ZOOM = 1.35
PAN = 0.5

SOURCES = [
    "car13.jpg",
    "us1.jpg",
    "car19.jpg",
    "us8.jpg",
    "0b86cecf-67d1-4fc0-87c9-b36b0ee228bb.jpg",
    "car12.jpg",
    "wts-lg-000136.jpg",
    "car9-7.jpg",
    "us10.jpg",
    "wts-lg-000191.jpg",
]


@dataclass(frozen=True)
class Photo:
    name: str
    plate: str
    box: tuple[int, int, int, int]
    image: np.ndarray


def load(data: Path, name: str) -> Photo:
    fields = (data / name).with_suffix(".txt").read_text().split()
    image = cv2.imread(str(data / name))
    if image is None:
        raise SystemExit(f"cannot read {data / name}")
    x, y, w, h = (int(v) for v in fields[1:5])
    return Photo(name, fields[5], (x, y, w, h), image)


def frames_of(photo: Photo) -> list[np.ndarray]:
    """The photo seen through a camera that slowly zooms towards the plate."""
    height, width = photo.image.shape[:2]
    fit = min(WIDTH / width, HEIGHT / height)
    x, y, w, h = photo.box
    start = np.array([width / 2, height / 2])
    target = start + PAN * (np.array([x + w / 2, y + h / 2]) - start)
    count = round(CAR_SECONDS * FPS)
    out = []
    for i in range(count):
        t = i / (count - 1)
        ease = t * t * (3 - 2 * t)
        scale = fit * (1 + (ZOOM - 1) * ease)
        centre = start + (target - start) * ease
        # output = scale * (source - centre) + frame centre; outside the photo stays black,
        # which letterboxes portrait and 4:3 photos into the 16:9 frame
        matrix = np.array(
            [[scale, 0, WIDTH / 2 - scale * centre[0]], [0, scale, HEIGHT / 2 - scale * centre[1]]]
        )
        out.append(
            cv2.warpAffine(
                photo.image, matrix, (WIDTH, HEIGHT), flags=cv2.INTER_AREA, borderValue=(0, 0, 0)
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    photos = [load(args.data, name) for name in SOURCES]
    black = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    gap = round(GAP_SECONDS * FPS)
    clip = args.out / "demo-clip.mp4"
    writer = imageio_ffmpeg.write_frames(
        str(clip),
        (WIDTH, HEIGHT),
        pix_fmt_in="bgr24",
        pix_fmt_out="yuv420p",
        fps=FPS,
        codec="libx264",
        quality=None,
        # crf 26 keeps plate characters readable in ~3 MB; a keyframe every 2 s lets a looping
        # replay or an RTSP client start quickly; faststart for streaming over HTTP
        output_params=["-crf", "26", "-preset", "slow", "-g", "20", "-movflags", "+faststart"],
        macro_block_size=16,
        ffmpeg_log_level="error",
    )
    writer.send(None)
    lines = [
        "# demo-clip.mp4: 1280x720, 10 fps, H.264. One car per row: when it is on screen",
        "# (seconds from the start), the source photo in OpenALPR's US benchmark (dev set), and",
        "# the plate per that benchmark's ground truth.",
        "# start_s\tend_s\tsource\tplate",
    ]
    frame_no = 0
    for photo in photos:
        for _ in range(gap):
            writer.send(black)
        frame_no += gap
        frames = frames_of(photo)
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
        start, frame_no = frame_no, frame_no + len(frames)
        lines.append(f"{start / FPS:.1f}\t{frame_no / FPS:.1f}\t{photo.name}\t{photo.plate}")
    for _ in range(gap):
        writer.send(black)
    writer.close()
    (args.out / "demo-clip.txt").write_text("\n".join(lines) + "\n")
    shutil.copyfile(args.data / "LICENSE", args.out / "DEMO-CLIP-LICENSE")
    print(f"wrote {clip} ({clip.stat().st_size / 1e6:.2f} MB, {(frame_no + gap) / FPS:.1f} s)")


if __name__ == "__main__":
    main()
