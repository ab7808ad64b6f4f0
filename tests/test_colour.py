"""Vehicle colour from the paint around the plate (appliance/_recognition/colour.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from appliance._recognition.colour import (
    COLOURS,
    UNKNOWN,
    ColourEstimate,
    body_regions,
    vehicle_colour,
    vote_colours,
)

PLATE = (560, 420, 160, 80)  # x, y, w, h in a 1280×720 frame


def car(paint_bgr: tuple[int, int, int], *, lights: bool = False) -> np.ndarray:
    """A car's rear filling the frame: paint, a rear window, a white plate with dark text."""
    rng = np.random.default_rng(7)
    image = np.empty((720, 1280, 3), np.uint8)
    image[:] = paint_bgr
    noise = rng.integers(-6, 7, image.shape)
    image = np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    image[60:260, 300:980] = (40, 38, 36)  # rear window, dark glass
    x, y, w, h = PLATE
    image[y : y + h, x : x + w] = (225, 228, 230)  # the plate's white background
    image[y + 20 : y + 60, x + 15 : x + w - 15 : 2] = (30, 30, 30)  # characters
    if lights:
        # Tail lights level with the plate, either side, as on most sedans.
        image[y - 20 : y + h + 10, x - 220 : x - 60] = (20, 20, 230)
        image[y - 20 : y + h + 10, x + w + 60 : x + w + 220] = (20, 20, 230)
    return image


@pytest.mark.parametrize(
    ("paint", "expected"),
    [
        ((35, 30, 190), "red"),
        ((170, 80, 20), "blue"),
        ((235, 235, 235), "white"),
        ((25, 25, 25), "black"),
        ((150, 150, 148), "silver"),
        ((40, 140, 40), "green"),
        ((20, 200, 230), "yellow"),
    ],
)
def test_names_the_paint_around_the_plate(paint: tuple[int, int, int], expected: str) -> None:
    estimate = vehicle_colour(car(paint), PLATE)
    assert estimate.name == expected
    assert 0.4 <= estimate.confidence <= 1.0


def test_tail_lights_beside_the_plate_do_not_make_a_silver_car_red() -> None:
    assert vehicle_colour(car((150, 150, 148), lights=True), PLATE).name == "silver"


def test_the_plate_itself_is_not_the_paint() -> None:
    # A black car with a big white plate: the plate's white must not count.
    for x1, y1, x2, y2 in body_regions((720, 1280, 3), PLATE):
        x, y, w, h = PLATE
        assert x2 <= x or x1 >= x + w or y2 <= y or y1 >= y + h
    assert vehicle_colour(car((25, 25, 25)), PLATE).name == "black"


def test_exposure_is_judged_against_the_plates_white() -> None:
    # The same silver car under-exposed by half: paint and plate both darker, still silver,
    # not black.
    dark = (car((150, 150, 148)).astype(np.float32) * 0.55).astype(np.uint8)
    assert vehicle_colour(dark, PLATE).name == "silver"


def test_an_infrared_frame_has_no_colour() -> None:
    gray = car((150, 150, 148))
    gray[:] = gray.mean(axis=2, keepdims=True).astype(np.uint8)
    assert vehicle_colour(gray, PLATE) == ColourEstimate(UNKNOWN, 0.0)


@pytest.mark.parametrize(
    "box", [(0, 0, 40, 20), (1270, 710, 10, 10), (-50, -50, 10, 10), (600, 300, 0, 0)]
)
def test_plates_at_the_edge_or_degenerate_give_unknown_not_an_error(
    box: tuple[int, int, int, int],
) -> None:
    estimate = vehicle_colour(car((35, 30, 190)), box)
    assert estimate.name in (*COLOURS, UNKNOWN)
    if box[2] <= 0:
        assert estimate.name == UNKNOWN


def test_a_grayscale_array_is_unknown() -> None:
    assert vehicle_colour(np.zeros((720, 1280), np.uint8), PLATE).name == UNKNOWN


def test_the_track_votes_by_summed_confidence() -> None:
    frames = [
        ColourEstimate("red", 0.9),
        ColourEstimate("red", 0.8),
        ColourEstimate("silver", 0.95),
        ColourEstimate(UNKNOWN, 0.0),
    ]
    voted = vote_colours(frames)
    assert voted.name == "red"
    assert voted.confidence == pytest.approx((0.9 + 0.8) / 4)


def test_a_track_of_disagreeing_frames_is_unknown() -> None:
    frames = [ColourEstimate(c, 0.6) for c in ("red", "blue", "silver", "white")]
    assert vote_colours(frames).name == UNKNOWN
    assert vote_colours([]) == ColourEstimate(UNKNOWN, 0.0)


@pytest.mark.slow
def test_recognize_json_reports_the_colour_of_each_plate() -> None:
    # A blue Subaru from OpenALPR's benchmark photos (tests/data/README.md).
    photo = Path(__file__).parent / "data" / "car13.jpg"
    result = subprocess.run(
        [sys.executable, "-m", "appliance", "recognize", str(photo), "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    plate = json.loads(line)["plates"][0]
    assert plate["vehicle_colour"] == "blue"
    assert 0.4 <= plate["vehicle_colour_confidence"] <= 1.0
