"""The tracker's multi-frame vote: text, state and vehicle colour of one read per vehicle."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from appliance._pipeline.tracker import PlateTracker
from appliance.models import Frame, PlateCandidate, PlateDetection, PlateRead

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
GREY = np.full((720, 1280, 3), 90, dtype=np.uint8)
#: for the many-track property test: the plate box lies outside it (no crop, no colour work)
TINY = np.full((8, 8, 3), 90, dtype=np.uint8)
BOX = (600, 400, 120, 60)


def det(text: str, conf: float = 0.9, **kw: object) -> PlateDetection:
    per_char = conf ** (1 / len(text)) if text else 0.0
    return PlateDetection(
        box=BOX,
        detector_confidence=0.8,
        text=text,
        confidence=conf,
        candidates=(PlateCandidate(text, conf),) if text else (),
        char_confidences=(per_char,) * len(text),
        **kw,  # type: ignore[arg-type]
    )


def voted(*detections: PlateDetection, image: np.ndarray = GREY) -> PlateRead:
    (read,) = reads(*detections, image=image)
    return read


def reads(*detections: PlateDetection, image: np.ndarray = GREY) -> list[PlateRead]:
    tracker = PlateTracker("gate", track_timeout=1.5, min_confidence=0.0)
    for i, d in enumerate(detections):
        frame = Frame(image=image, timestamp=T0 + timedelta(seconds=0.25 * i), camera="gate")
        assert tracker.update(frame, [d]) == []
    return tracker.flush()


def test_three_noisy_frames_vote_the_plate() -> None:
    read = voted(det("7ABC123"), det("7A8C123"), det("7ABC1Z3"))
    assert read.text == "7ABC123"
    assert read.frames == 3


def test_errors_in_different_places_vote_a_plate_no_single_frame_read() -> None:
    read = voted(det("7A8C123"), det("7ABC1Z3"), det("ZABC123", conf=0.6))
    assert read.text == "7ABC123"


def test_a_frame_missing_a_character_does_not_shorten_the_read() -> None:
    # The short frame is the most confident single frame, and its length would win a vote of
    # lengths (0.9 against 0.4 + 0.4); aligned, it still agrees on six characters.
    read = voted(det("7ABC123", conf=0.4), det("7ABC23", conf=0.9), det("7ABC128", conf=0.4))
    assert read.text == "7ABC123"


def test_a_frame_with_an_extra_character_does_not_lengthen_the_read() -> None:
    read = voted(det("7ABC123", conf=0.5), det("7ABCC123", conf=0.8), det("7ABC123", conf=0.4))
    assert read.text == "7ABC123"


def test_one_confident_wrong_frame_does_not_outvote_agreeing_ones() -> None:
    read = voted(det("6ZWF846", conf=0.6), det("6ZWF846", conf=0.55), det("6ZWE846", conf=0.95))
    assert read.text == "6ZWF846"


def test_a_plate_outside_the_us_formats_is_kept_as_read() -> None:
    # Vanity plates fit no format: the prior must not rewrite what every frame read.
    read = voted(det("FZRULZ"), det("FZRULZ", conf=0.7), det("FZRULZ", conf=0.8))
    assert read.text == "FZRULZ"


def test_a_read_never_contains_a_character_no_frame_supported() -> None:
    rng = random.Random(3)
    alphabet = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"
    for _ in range(200):
        truth = "".join(rng.choice(alphabet) for _ in range(rng.choice((5, 6, 7))))
        frames = []
        for _ in range(rng.randint(1, 6)):
            text = list(truth)
            for _ in range(rng.randint(0, 2)):
                i = rng.randrange(len(text))
                edit = rng.choice(("swap", "drop", "double"))
                if edit == "swap":
                    text[i] = rng.choice(alphabet)
                elif edit == "drop" and len(text) > 3:
                    del text[i]
                else:
                    text.insert(i, text[i])
            frames.append(det("".join(text), conf=rng.uniform(0.05, 0.99)))
        # (Frames too unlike each other become separate reads: each is checked.)
        for read in reads(*frames, image=TINY):
            # Position by position would be stricter still; every character must at least
            # have been read by some frame.
            seen = set("".join(f.text for f in frames))
            assert set(read.text) <= seen, (read.text, [f.text for f in frames])
            assert read.text, [f.text for f in frames]
            assert 0.0 <= read.confidence <= 1.0


def test_the_state_is_voted_onto_the_read() -> None:
    read = voted(
        det("7ABC123", state="CA", state_confidence=0.9),
        det("7ABC123", state="NV", state_confidence=0.6),
        det("7ABC123", state="CA", state_confidence=0.7),
        det("7ABC123"),  # a frame where the state could not be read
    )
    assert read.state == "CA"
    assert read.state_confidence == pytest.approx((0.9 + 0.7) / 4)


def test_no_state_read_in_any_frame_leaves_it_unknown() -> None:
    read = voted(det("7ABC123"), det("7ABC123"))
    assert read.state is None and read.state_confidence == 0.0


def test_the_vehicle_colour_is_voted_onto_the_read() -> None:
    red_car = np.empty((720, 1280, 3), np.uint8)
    red_car[:] = (35, 30, 190)
    x, y, w, h = BOX
    red_car[y : y + h, x : x + w] = (225, 228, 230)  # a white plate
    read = voted(det("7ABC123"), det("7ABC123"), image=red_car)
    assert read.vehicle_colour == "red"
    assert 0.4 <= read.vehicle_colour_confidence <= 1.0


def test_frames_of_an_infrared_camera_give_an_unknown_colour() -> None:
    read = voted(det("7ABC123"), replace(det("7ABC123"), confidence=0.5))
    assert read.vehicle_colour == "unknown"


def test_frames_that_agree_raise_the_confidence_but_not_as_if_independent() -> None:
    single = voted(det("CJ1P5G", conf=0.2)).confidence
    five = voted(*(det("CJ1P5G", conf=0.2) for _ in range(5))).confidence
    assert single == pytest.approx(0.2)
    # independent frames would make 1 - 0.8**5 = 0.67; the same car's frames count for less
    assert 0.3 < five < 0.6
    # one disagreeing frame among them lowers it again
    mixed = voted(*(det("CJ1P5G", conf=0.2) for _ in range(4)), det("CJ1P8G", conf=0.2))
    assert mixed.text == "CJ1P5G" and mixed.confidence < five
