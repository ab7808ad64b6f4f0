"""The motion gate in front of the detector."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from appliance._config import PipelineSettings
from appliance._pipeline.gate import FrameGate

FPS = 10.0


def scene(height: int = 720, width: int = 1280, seed: int = 1) -> np.ndarray:
    """A textured still road scene."""
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 200, size=(height // 40, width // 40, 3), dtype=np.uint8)
    return np.ascontiguousarray(np.kron(base, np.ones((40, 40, 1), dtype=np.uint8)))


def with_car(image: np.ndarray, x: int, y: int = 300, size: int = 200) -> np.ndarray:
    out = image.copy()
    out[y : y + size, x : x + size * 2] = (20, 20, 230)
    return out


def gate(**overrides: float) -> FrameGate:
    return FrameGate(PipelineSettings(**overrides))


def test_first_frame_is_admitted_then_still_frames_are_skipped() -> None:
    g = gate()
    still = scene()
    results = [g.admit(still, i / FPS, tracking=False) for i in range(30)]
    assert results[0] is True
    assert not any(results[1:])
    assert (g.admitted, g.skipped) == (1, 29)


def test_a_vehicle_entering_is_admitted() -> None:
    g = gate()
    road = scene()
    assert g.admit(road, 0.0, tracking=False)
    assert not g.admit(road, 1.0, tracking=False)
    assert g.admit(with_car(road, 100), 2.0, tracking=False)


def test_a_change_below_the_threshold_is_skipped() -> None:
    road = scene()
    g = gate(gate_threshold=0.05)
    assert g.admit(road, 0.0, tracking=False)
    small = road.copy()
    small[100:140, 100:180] = 255  # ~0.3 % of the frame
    assert not g.admit(small, 1.0, tracking=False)
    assert gate(gate_threshold=0.001).admit(small, 0.0, False)  # sanity: it is a change


def test_sensor_noise_is_not_motion() -> None:
    g = gate()
    road = scene()
    rng = np.random.default_rng(7)
    assert g.admit(road, 0.0, tracking=False)
    for i in range(1, 20):
        noise = rng.normal(0, 4, road.shape)
        noisy = np.clip(road + noise, 0, 255).astype(np.uint8)
        assert not g.admit(noisy, i / FPS, tracking=False)


def test_slow_change_accumulates_against_the_last_admitted_frame() -> None:
    g = gate()
    road = scene()
    assert g.admit(road, 0.0, tracking=False)
    admitted = [
        g.admit(with_car(road, 1280 - 4 * i, size=60), i / FPS, False) for i in range(1, 40)
    ]
    # Each step moves the car 4 px (too little for one frame pair), yet it is noticed.
    assert any(admitted)


def test_never_more_often_than_max_detect_fps() -> None:
    g = gate(max_detect_fps=4.0)
    road = scene()
    admitted = [g.admit(with_car(road, 40 * (i % 20)), i / FPS, tracking=True) for i in range(100)]
    # 10 s of constant motion at 10 fps: at most 4 per second (+1 for the first frame).
    assert 30 <= sum(admitted) <= 41
    times = [i / FPS for i, a in enumerate(admitted) if a]
    assert min(b - a for a, b in itertools.pairwise(times)) >= 0.25 - 1e-9


def test_tracking_rechecks_a_still_scene_every_recheck_seconds() -> None:
    g = gate(recheck_seconds=0.5)
    still = scene()
    idle = [g.admit(still, i / FPS, tracking=False) for i in range(20)]
    assert sum(idle) == 1
    tracked = [g.admit(still, 2.0 + i / FPS, tracking=True) for i in range(20)]
    assert sum(tracked) == 4  # 2.0, 2.5, 3.0, 3.5


def test_resolution_change_and_clock_jump_do_not_wedge_the_gate() -> None:
    g = gate()
    assert g.admit(scene(), 100.0, tracking=False)
    assert g.admit(scene(360, 640), 101.0, tracking=False)
    assert g.admit(scene(360, 640, seed=2), 5.0, tracking=False)  # clock went back


def test_grayscale_frames_work() -> None:
    g = gate()
    gray = scene()[:, :, 0].copy()
    assert g.admit(gray, 0.0, tracking=False)
    assert not g.admit(gray, 1.0, tracking=False)


@pytest.mark.parametrize(("height", "width"), [(1080, 1920), (720, 1280)])
def test_gate_is_cheap(height: int, width: int) -> None:
    g = gate(max_detect_fps=60)
    a, b = scene(height, width), with_car(scene(height, width), 400)
    start = time.thread_time()
    for i in range(200):
        g.admit(a if i % 2 else b, float(i), tracking=False)
    per_frame_ms = (time.thread_time() - start) / 200 * 1000
    # every frame was compared (none rate-limited); after a few seconds of the same patch
    # flipping back and forth the gate calls it nuisance, so not all are admitted
    assert g.admitted + g.skipped == 200
    assert g.admitted >= 5
    # ~0.03 ms here; generous so a busy CI box does not flake, strict enough to catch a
    # full-resolution colour conversion (~2 ms on 1080p).
    assert per_frame_ms < 1.0


# --- an empty street is not still: trees, shadows, light ------------------------------------

STREET_FPS = 15.0


def waving_tree(road: np.ndarray, t: float, seed: int = 5) -> np.ndarray:
    """The road with a leafy patch in its top-right corner swaying ±2 blocks in the wind."""
    out = road.copy()
    leaves = scene(320, 480, seed=seed)
    shift = round(80 * np.sin(2 * np.pi * t / 1.3))
    out[:240, 880:1280] = np.roll(leaves, shift, axis=1)[:240, 40:440]
    return out


def test_a_waving_tree_is_learned_as_nuisance_and_stops_costing_detector_runs() -> None:
    g = gate()
    road = scene()
    times = [i / STREET_FPS for i in range(int(60 * STREET_FPS))]
    # the detector runs on what the gate admits and finds no plate in a tree
    admitted = [worker_step(g, waving_tree(road, t), t, False, plate=False) for t in times]
    first, last = admitted[: int(5 * STREET_FPS)], admitted[int(30 * STREET_FPS) :]
    assert sum(first) >= 10  # at first the tree does look like motion...
    assert sum(last) <= 1  # ...but once learned, 30 s of waving cost no detector runs
    assert 0.02 < g.nuisance_share() < 0.2  # only the tree's corner is ignored


def test_a_vehicle_entering_is_admitted_while_the_tree_waves() -> None:
    g = gate()
    road = scene()
    for i in range(int(40 * STREET_FPS)):
        worker_step(g, waving_tree(road, i / STREET_FPS), i / STREET_FPS, False, plate=False)
    quiet = [
        worker_step(g, waving_tree(road, 40 + i / 15), 40 + i / 15, False, plate=False)
        for i in range(15)
    ]
    assert not any(quiet)
    # a car drives in along the road (well below the tree), 30 px a frame
    t0 = 41.0
    arrived = [
        g.admit(with_car(waving_tree(road, t0 + i / 15), 1280 - 30 * i, y=450, size=120),
                t0 + i / 15, tracking=False)
        for i in range(1, 15)
    ]  # fmt: skip
    assert any(arrived[:5])  # noticed within a third of a second of entering


def test_a_change_of_light_over_the_whole_picture_is_not_motion() -> None:
    g = gate()
    road = scene()
    rng = np.random.default_rng(3)
    assert g.admit(road, 0.0, tracking=False)
    for i, gain in enumerate(np.linspace(1.0, 0.75, 60), start=1):  # a cloud, over 4 s
        noise = rng.normal(0, 3, road.shape)
        frame = np.clip(road * gain + noise, 0, 255).astype(np.uint8)
        assert not g.admit(frame, i / STREET_FPS, tracking=False)
    brighter = np.clip(road * 1.3, 0, 255).astype(np.uint8)  # auto-exposure opens up
    assert not g.admit(brighter, 5.0, tracking=False)


def test_a_vehicle_filling_most_of_the_picture_is_still_admitted() -> None:
    g = gate()
    road = scene()
    assert g.admit(road, 0.0, tracking=False)
    truck = road.copy()
    truck[100:720, 0:1100] = (30, 30, 30)  # ~75 % of the frame changes
    assert g.admit(truck, 1.0, tracking=False)


def test_nothing_is_learned_while_a_vehicle_is_tracked() -> None:
    g = gate(recheck_seconds=60)
    road = scene()
    assert g.admit(road, 0.0, tracking=False)
    for i in range(1, int(40 * STREET_FPS)):  # a car shuffling back and forth, tracked
        g.admit(with_car(road, 400 + 40 * (i % 2)), i / STREET_FPS, tracking=True)
    assert g.nuisance_share() == 0.0


def test_a_vehicle_filling_a_dark_picture_is_admitted_not_taken_for_light() -> None:
    g = gate()
    night = np.full((720, 1280, 3), 8, np.uint8)
    assert g.admit(night, 0.0, tracking=False)
    assert not g.admit(night, 1.0, tracking=False)
    headlit = night.copy()
    headlit[100:720, 0:1100] = scene()[100:720, 0:1100]  # ~75 % of the picture lights up
    assert g.admit(headlit, 2.0, tracking=False)
    # ...and the next car covering most of the last one is admitted too
    other = headlit.copy()
    other[50:720, 100:1280] = scene(seed=9)[50:720, 100:1280]
    assert g.admit(other, 3.0, tracking=False)


def worker_step(g: FrameGate, frame: np.ndarray, t: float, tracking: bool, plate: bool) -> bool:
    """What the recognition worker does: admit, run the detector, tell the gate if it was empty."""
    admitted = g.admit(frame, t, tracking)
    if admitted and not plate:
        g.found_nothing()
    return admitted


def test_a_busy_road_does_not_teach_the_gate_to_ignore_cars() -> None:
    """Car after car at the same spot is traffic, not a waving tree: every one is admitted.

    A gate that learned each pixel's wobble from every untracked frame learned the cars too, and
    after a few dozen stopped admitting some of them at all (a missed vehicle is a missed hit).
    """
    g = gate()
    road = scene()
    rng = np.random.default_rng(3)
    t, tracked_until, missed = 0.0, -1.0, []
    for car in range(120):
        for _ in range(7):  # the empty road between cars
            worker_step(g, road, t, t < tracked_until, plate=False)
            t += 0.25
        x, y = int(rng.integers(300, 700)), int(rng.integers(250, 400))
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        seen = False
        for i in range(6):  # the car approaches: it grows frame by frame
            frame = road.copy()
            size = 120 + 16 * i
            frame[y : y + size, x : x + 2 * size] = colour
            if worker_step(g, frame, t, t < tracked_until, plate=True):
                seen = True
                tracked_until = t + 1.5  # the tracker follows it until its timeout
            t += 0.25
        if not seen:
            missed.append(car)
    assert missed == []


def test_frames_holding_a_plate_teach_the_gate_nothing() -> None:
    """Traffic past the same spot, untracked between frames: the cars are not background."""
    g = gate()
    road = scene()
    t = 0.0
    for i in range(400):
        car = i % 4 == 0
        frame = with_car(road, 300 + 10 * (i % 7)) if car else road
        worker_step(g, frame, t, tracking=False, plate=car)
        t += 0.25
    assert g.nuisance_share() == 0.0
    assert g.admit(with_car(road, 500), t + 1, tracking=False)


def test_a_vehicle_filling_the_picture_does_not_shift_the_whole_model() -> None:
    """A car close to the lens changes the picture's median brightness; the gate must not take
    that for light and relearn every pixel (after which nothing short of a flood is motion)."""
    g = gate()
    road = scene()
    t = 0.0
    for _ in range(8):
        worker_step(g, road, t, False, plate=False)
        t += 0.5
    for _ in range(20):
        close = road.copy()
        close[60:660, 100:1180] = (12, 12, 12)  # a dark car a metre from the lens
        worker_step(g, close, t, False, plate=True)
        t += 0.5
        for _ in range(3):  # it drives off: the detector finds nothing on the empty road
            worker_step(g, road, t, False, plate=False)
            t += 0.5
    assert g.nuisance_share() < 0.01
