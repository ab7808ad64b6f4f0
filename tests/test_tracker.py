"""The tracker: association across frames, voting, timeouts, crops."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import cv2
import numpy as np

from appliance._pipeline.tracker import PlateTracker
from appliance.models import Frame, PlateCandidate, PlateDetection

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
IMAGE = np.full((720, 1280, 3), 90, dtype=np.uint8)


def frame(seconds: float, image: np.ndarray = IMAGE) -> Frame:
    return Frame(image=image, timestamp=T0 + timedelta(seconds=seconds), camera="gate")


def det(
    text: str, box: tuple[int, int, int, int] = (600, 400, 120, 60), conf: float = 0.9
) -> PlateDetection:
    per_char = conf ** (1 / len(text)) if text else 0.0
    return PlateDetection(
        box=box,
        detector_confidence=0.8,
        text=text,
        confidence=conf,
        candidates=(PlateCandidate(text, conf),) if text else (),
        char_confidences=(per_char,) * len(text),
    )


def tracker(timeout: float = 1.5, min_confidence: float = 0.3) -> PlateTracker:
    return PlateTracker("gate", track_timeout=timeout, min_confidence=min_confidence)


def test_voting_fixes_a_confusion_in_one_frame() -> None:
    t = tracker()
    texts = ["7ABC123", "7ABC123", "7A8C123", "7ABC123", "7ABC123"]
    for i, text in enumerate(texts):
        # the plate approaches: the box drifts and grows
        assert t.update(frame(i * 0.25), [det(text, (600 - 10 * i, 400, 120 + 5 * i, 60))]) == []
    assert t.active
    (read,) = t.flush()
    assert read.text == "7ABC123"
    assert read.frames == 5
    assert read.first_seen == T0 and read.last_seen == T0 + timedelta(seconds=1)
    assert read.candidates[0] == PlateCandidate(read.text, read.confidence)
    assert "7A8C123" in [c.text for c in read.candidates]
    # four frames agree, one does not: more than one frame's 0.9 alone, short of certainty
    assert 0.9 < read.confidence < 0.99
    assert not t.active


def test_voting_ignores_a_frame_with_a_dropped_character() -> None:
    t = tracker()
    for i, text in enumerate(["ABC1234", "ABC234", "ABC1234"]):
        t.update(frame(i * 0.25), [det(text)])
    (read,) = t.flush()
    assert read.text == "ABC1234"


def test_candidates_help_vote_the_length() -> None:
    right, doubled = "6ZWF846", "6ZWF84646"
    t = tracker(min_confidence=0.0)
    for i in range(3):
        t.update(frame(i * 0.25), [det(right, conf=0.6)])
    for i in range(3, 7):
        # first reading doubled "46" a little more confidently, but the right one is a candidate
        d = replace(
            det(doubled, conf=0.5),
            candidates=(PlateCandidate(doubled, 0.5), PlateCandidate(right, 0.2)),
        )
        t.update(frame(i * 0.25), [d])
    (read,) = t.flush()
    assert read.text == right
    assert read.candidates[1].text == doubled


def test_character_confidence_outweighs_a_majority_of_unsure_frames() -> None:
    sure = (0.95,) * 7
    unsure = (0.95, 0.95, 0.95, 0.95, 0.2, 0.95, 0.95)  # the OCR doubted its "Z"
    t = tracker(min_confidence=0.0)
    t.update(frame(0.0), [replace(det("ABC1234"), char_confidences=sure)])
    t.update(frame(0.25), [replace(det("ABC1Z34"), char_confidences=unsure)])
    t.update(frame(0.5), [replace(det("ABC1Z34"), char_confidences=unsure)])
    (read,) = t.flush()
    assert read.text == "ABC1234"


def test_agreeing_frames_do_not_lower_confidence_and_disagreeing_ones_do() -> None:
    def voted(*confs_and_texts: tuple[float, str]) -> float:
        t = tracker(min_confidence=0.0)
        for i, (conf, text) in enumerate(confs_and_texts):
            t.update(frame(i * 0.25), [det(text, conf=conf)])
        (read,) = t.flush()
        assert read.text == "ABC123"
        return read.confidence

    single = voted((0.8, "ABC123"))
    assert abs(single - 0.8) < 1e-6
    assert voted((0.8, "ABC123"), (0.2, "ABC123")) >= single - 1e-6
    assert voted((0.8, "ABC123"), (0.6, "ABC128")) < single


def test_a_track_closes_after_the_timeout() -> None:
    t = tracker(timeout=1.5)
    t.update(frame(0.0), [det("XYZ789")])
    assert t.update(frame(1.0), []) == []
    assert t.update(frame(1.5), []) == []  # exactly the timeout: still open
    (read,) = t.update(frame(1.6), [])
    assert read.text == "XYZ789" and read.camera == "gate"
    assert not t.active
    assert t.flush() == []


def test_expire_closes_on_the_wall_clock_when_frames_stop() -> None:
    t = tracker(timeout=1.5)
    t.update(frame(0.0), [det("XYZ789")])
    assert t.expire(T0 + timedelta(seconds=1)) == []
    assert [r.text for r in t.expire(T0 + timedelta(seconds=2))] == ["XYZ789"]


def test_a_detection_after_the_timeout_starts_a_new_read() -> None:
    t = tracker(timeout=1.0)
    t.update(frame(0.0), [det("XYZ789")])
    closed = t.update(frame(3.0), [det("XYZ789")])
    assert [r.frames for r in closed] == [1]
    assert [r.first_seen for r in t.flush()] == [T0 + timedelta(seconds=3)]


def test_two_plates_at_once_make_two_reads() -> None:
    t = tracker()
    left, right = (100, 400, 120, 60), (900, 380, 130, 65)
    for i in range(4):
        # the detector's order flips between frames; association must not
        dets = [det("LEFT11", left), det("RIGHT22", right)]
        t.update(frame(i * 0.25), dets if i % 2 else dets[::-1])
    reads = t.flush()
    assert sorted(r.text for r in reads) == ["LEFT11", "RIGHT22"]
    assert all(r.frames == 4 for r in reads)


def test_the_next_car_in_the_same_spot_is_another_read() -> None:
    t = tracker()
    t.update(frame(0.0), [det("EMR7094")])
    t.update(frame(0.25), [det("EMR7094")])
    t.update(frame(0.5), [det("4PCI264")])  # same box, a different plate
    assert sorted(r.text for r in t.flush()) == ["4PCI264", "EMR7094"]


def test_a_moving_plate_stays_one_track() -> None:
    t = tracker()
    for i in range(6):
        # 200 px per detector run: no box overlap, but same text nearby
        t.update(frame(i * 0.25), [det("MOVE123", (100 + 200 * i, 400, 120, 60))])
    assert [r.frames for r in t.flush()] == [6]


def test_flush_emits_pending_tracks() -> None:
    t = tracker()
    t.update(frame(0.0), [det("AAA111", (100, 100, 100, 50)), det("BBB222", (700, 100, 100, 50))])
    assert sorted(r.text for r in t.flush()) == ["AAA111", "BBB222"]


def test_low_confidence_reads_are_dropped() -> None:
    t = tracker(min_confidence=0.5)
    t.update(frame(0.0), [det("LOW123", (100, 100, 100, 50), conf=0.2)])
    t.update(frame(0.0), [det("HIGH12", (700, 100, 100, 50), conf=0.8)])
    assert [r.text for r in t.flush()] == ["HIGH12"]


def test_unread_plates_make_no_read() -> None:
    t = tracker(min_confidence=0.0)
    t.update(frame(0.0), [det("")])
    assert t.active
    assert t.flush() == []


def test_crop_is_a_jpeg_of_the_plate_region_with_a_margin() -> None:
    image = np.full((720, 1280, 3), (200, 60, 0), dtype=np.uint8)  # blue-ish car
    box = (500, 300, 200, 80)
    image[300:380, 500:700] = (255, 255, 255)  # white plate
    image[330:350, 560:640] = (0, 0, 255)  # a red mark in its middle
    t = tracker()
    t.update(frame(0.0, image), [det("CROP12", box)])
    # a later frame without the plate must not change the stored crop
    t.update(frame(0.25, IMAGE), [det("CROP1Z", box, conf=0.1)])
    (read,) = t.flush()
    assert read.crop_jpeg[:2] == b"\xff\xd8"
    crop = cv2.imdecode(np.frombuffer(read.crop_jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert crop is not None
    height, width = crop.shape[:2]
    assert (width, height) == (260, 104)  # 15 % margin each side
    assert read.box == box
    centre = crop[height // 2, width // 2].astype(int)
    assert centre[2] > 200 and centre[0] < 60  # the red mark, so the right region
    corner = crop[2, 2].astype(int)
    assert corner[0] > 150 and corner[2] < 60  # margin shows the car around the plate


def test_crop_at_the_frame_edge_is_clipped() -> None:
    t = tracker()
    t.update(frame(0.0), [det("EDGE12", (1200, 680, 80, 40))])
    (read,) = t.flush()
    crop = cv2.imdecode(np.frombuffer(read.crop_jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert crop.shape[:2] == (46, 92)


def test_vehicle_image_shows_the_car_around_the_plate_from_the_best_frame() -> None:
    image = np.full((720, 1280, 3), (200, 60, 0), dtype=np.uint8)  # a blue car
    box = (600, 500, 100, 40)
    image[500:540, 600:700] = (255, 255, 255)
    t = tracker()
    t.update(frame(0.0, IMAGE), [det("CAR123", box, conf=0.3)])
    t.update(frame(0.25, image), [det("CAR123", box, conf=0.9)])  # the best frame
    t.update(frame(0.5, IMAGE), [det("CAR123", box, conf=0.5)])
    (read,) = t.flush()
    vehicle = cv2.imdecode(np.frombuffer(read.vehicle_jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert vehicle is not None
    height, width = vehicle.shape[:2]
    # three plate widths each side, two and a half above, one below the plate
    assert (width, height) == (600, 390)
    assert vehicle[10, 10, 0] > 150, "the car's colour comes from the most confident frame"
