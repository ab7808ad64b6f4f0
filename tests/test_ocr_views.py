"""Reading several crops of one plate (views) and pooling their readings.

The fast tests need no model; the slow ones run the shipped us_ocr model on the photos in
tests/data (OpenALPR benchmarks, AGPL-3.0), never on the dev set the benchmark measures.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from appliance._recognition import plugin
from appliance._recognition.combine import confusion_key, pool_views
from appliance._recognition.detector import Box
from appliance._recognition.plugin import PlatedetRecognizer, PlatedetSettings
from appliance._recognition.us_ocr import CtcPlateReader
from appliance._recognition.views import padded_crops, padding_steps
from appliance.base import PluginContext, SystemClock

DATA = Path(__file__).parent / "data"
PHOTOS = ["car13", "car19", "wts-lg-000136"]


def truth(name: str) -> tuple[Box, str]:
    fields = (DATA / f"{name}.txt").read_text().split()
    x, y, w, h = (int(v) for v in fields[1:5])
    return Box(x, y, x + w, y + h, 1.0), fields[5]


# --- fast: no model ---------------------------------------------------------------------


def test_pool_views_averages_and_never_invents_a_string() -> None:
    views = [
        [("7ABC123", 0.6), ("7ABC128", 0.2)],
        [("7ABC123", 0.5), ("7A8C123", 0.3)],
        [],  # a view that read nothing dilutes every reading
    ]
    pooled = dict(pool_views(views))
    assert set(pooled) == {"7ABC123", "7ABC128", "7A8C123"}
    assert pooled["7ABC123"] == pytest.approx((0.6 + 0.5) / 3)
    assert pooled["7A8C123"] == pytest.approx(0.3 / 3)
    assert next(iter(pooled)) == "7ABC123"  # best first
    assert pool_views([[], []]) == []


def test_pool_views_does_not_boost_agreement_like_two_engines() -> None:
    # Views of one engine are not independent: three identical 0.4 reads stay 0.4.
    assert pool_views([[("ABC123", 0.4)]] * 3) == [("ABC123", pytest.approx(0.4))]


def test_padding_steps_run_from_tight_to_the_setting() -> None:
    assert padding_steps(0.06, 3) == pytest.approx([0.0, 0.03, 0.06])
    assert padding_steps(0.08, 1) == [0.08]


def test_padded_crops_grow_outward_and_stay_inside_the_frame() -> None:
    frame = np.zeros((100, 200, 3), np.uint8)
    crops = padded_crops(frame, Box(50, 40, 150, 80, 0.9), 0.1, 3)
    assert [c.shape[:2] for c in crops] == [(40, 100), (48, 110), (56, 120)]
    # at the frame's corner the padding is cut off, never wrapped around
    edge = padded_crops(frame, Box(0, 0, 60, 30, 0.9), 0.2, 2)
    assert [c.shape[:2] for c in edge] == [(30, 60), (42, 72)]


# --- slow: the shipped model --------------------------------------------------------------


@pytest.fixture(scope="module")
def ctc_reader() -> CtcPlateReader:
    import onnxruntime as ort

    session = ort.InferenceSession(str(plugin.US_OCR_MODEL), providers=["CPUExecutionProvider"])
    return CtcPlateReader(session, beam_width=4)


@pytest.mark.slow
def test_reading_views_in_one_batch_equals_reading_each(ctc_reader: CtcPlateReader) -> None:
    box, _ = truth("car13")
    crops = padded_crops(cv2.imread(str(DATA / "car13.jpg")), box, 0.06, 3)
    batched = ctc_reader.read_views(crops)
    for crop, result in zip(crops, batched, strict=True):
        alone = ctc_reader.read(crop)
        assert [r.text for r in result.readings] == [r.text for r in alone.readings]
        assert result.state == alone.state


@pytest.mark.slow
@pytest.mark.parametrize("name", PHOTOS)
def test_views_read_a_plate_whose_box_is_off_centre(ctc_reader: CtcPlateReader, name: str) -> None:
    """A detector box shifted by a fifth of the plate's height still reads, once pooled."""
    box, plate = truth(name)
    shift = 0.2 * (box.y2 - box.y1)
    moved = Box(box.x1, box.y1 + shift, box.x2, box.y2 + shift, 1.0)
    frame = cv2.imread(str(DATA / f"{name}.jpg"))
    crops = padded_crops(frame, moved, 0.06, 3)
    views = ctc_reader.read_views(crops)
    rankings = [[(r.text, float(np.exp(r.log_prob))) for r in v.readings] for v in views]
    pooled = pool_views(rankings)
    # the right plate up to the usual glyph confusions (0/D, 8/B …) among the first five
    assert confusion_key(plate) in [confusion_key(t) for t, _ in pooled[:5]]
    read_by_some_view = {t for ranking in rankings for t, _ in ranking}
    assert {t for t, _ in pooled} <= read_by_some_view


@pytest.fixture(scope="module")
def recognizer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatedetRecognizer]:
    context = PluginContext(
        logging.getLogger("test"), tmp_path_factory.mktemp("rec"), SystemClock()
    )
    r = PlatedetRecognizer(PlatedetSettings(ocr_engine="us_ocr"), context)
    r.load()
    yield r


@pytest.mark.slow
@pytest.mark.parametrize("name", PHOTOS)
def test_recognizer_only_reports_texts_some_view_read(
    recognizer: PlatedetRecognizer, name: str
) -> None:
    frame = cv2.imread(str(DATA / f"{name}.jpg"))
    assert recognizer.us_reader is not None and recognizer.detector is not None
    options = recognizer.options
    boxes = {(int(b.x1), int(b.y1)): b for b in recognizer.detector.detect(frame)}
    detections = recognizer.recognize(frame)
    assert detections
    for detection in detections:
        box = boxes[detection.box[:2]]
        crops = padded_crops(frame, box, options.crop_padding, options.crop_views)
        seen = {r.text for v in recognizer.us_reader.read_views(crops) for r in v.readings}
        assert {c.text for c in detection.candidates} <= seen
