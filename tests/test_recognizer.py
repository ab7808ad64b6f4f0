"""The bundled platedet/platerec recognizer.

The tests marked slow run the real models (loaded once for the module, ~1 s; each photo
~0.3 s on two cores). The photos in tests/data come from OpenALPR's benchmarks (AGPL-3.0).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pluggy
import pytest
from pydantic import ValidationError

from appliance import hookspecs
from appliance._recognition import plugin
from appliance._recognition.plugin import PlatedetRecognizer, PlatedetSettings
from appliance.base import PluginContext, SystemClock
from appliance.errors import PluginConfigError

DATA = Path(__file__).parent / "data"
PHOTOS = ["car13", "car19", "wts-lg-000136"]
EASY = "car13"  # a clear, square-on plate every setting should read exactly


def context(tmp_path: Path) -> PluginContext:
    return PluginContext(logging.getLogger("test"), tmp_path, SystemClock())


def truth(name: str) -> tuple[tuple[int, int, int, int], str]:
    fields = (DATA / f"{name}.txt").read_text().split()
    x, y, w, h = (int(v) for v in fields[1:5])
    return (x, y, w, h), fields[5]


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    inter = max(0, w) * max(0, h)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


@pytest.fixture(scope="module")
def recognizer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatedetRecognizer]:
    r = PlatedetRecognizer(PlatedetSettings(), context(tmp_path_factory.mktemp("rec")))
    r.load()
    yield r


# --- fast: no model ---------------------------------------------------------------------


def test_registers_through_the_hook() -> None:
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    manager.register(plugin)
    manager.check_pending()
    assert manager.hook.appliance_recognizer_types() == [[PlatedetRecognizer]]
    assert PlatedetRecognizer.settings_model is PlatedetSettings


def test_settings_defaults_and_documentation() -> None:
    settings = PlatedetSettings()
    assert settings.type == "platedet"
    assert settings.detector_confidence == 0.1
    assert settings.provider == "CPUExecutionProvider"
    for name, field in PlatedetSettings.model_fields.items():
        assert field.title and field.description, name
    with pytest.raises(ValidationError, match="detector_confidnce"):
        PlatedetSettings.model_validate({"type": "platedet", "detector_confidnce": 0.2})
    with pytest.raises(ValidationError):
        PlatedetSettings.model_validate({"type": "other"})


def test_missing_model_package_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "platedet", None)  # makes the import fail
    r = PlatedetRecognizer(PlatedetSettings(), context(tmp_path))
    with pytest.raises(PluginConfigError, match=r"platedet.*pip install"):
        r.load()


def test_unavailable_provider_is_a_config_error(tmp_path: Path) -> None:
    r = PlatedetRecognizer(PlatedetSettings(provider="NoSuchExecutionProvider"), context(tmp_path))
    with pytest.raises(PluginConfigError, match="NoSuchExecutionProvider"):
        r.load()


def test_recognize_before_load_says_so(tmp_path: Path) -> None:
    r = PlatedetRecognizer(PlatedetSettings(), context(tmp_path))
    with pytest.raises(RuntimeError, match="load"):
        r.recognize(np.zeros((10, 10, 3), np.uint8))


# --- slow: the real models --------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", PHOTOS)
def test_finds_the_plate_in_real_photos(recognizer: PlatedetRecognizer, name: str) -> None:
    box, plate = truth(name)
    image = cv2.imread(str(DATA / f"{name}.jpg"))
    detections = recognizer.recognize(image)
    best = max(detections, key=lambda d: iou(d.box, box))
    assert iou(best.box, box) > 0.5
    assert re.fullmatch(r"[A-Z0-9]+", best.text)
    assert 0 < best.confidence <= 1
    assert best.candidates[0].text == best.text
    assert best.candidates[0].confidence == best.confidence
    assert len(best.char_confidences) == len(best.text)
    if name == EASY:
        assert best.text == plate


@pytest.mark.slow
def test_grayscale_frames_are_read(recognizer: PlatedetRecognizer) -> None:
    box, plate = truth(EASY)
    gray = cv2.imread(str(DATA / f"{EASY}.jpg"), cv2.IMREAD_GRAYSCALE)
    assert gray.ndim == 2
    (detection,) = recognizer.recognize(gray)
    assert iou(detection.box, box) > 0.5 and detection.text == plate


@pytest.mark.slow
def test_blank_and_tiny_images_give_no_plates(recognizer: PlatedetRecognizer) -> None:
    assert recognizer.recognize(np.full((720, 1280, 3), 127, np.uint8)) == []
    assert recognizer.recognize(np.zeros((1, 1, 3), np.uint8)) == []


@pytest.mark.slow
@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((0, 0, 3), np.uint8),
        np.zeros((10, 10, 2), np.uint8),
        np.zeros((10, 10, 3), np.float32),
        "not an image",
    ],
    ids=["empty", "two-channel", "float", "str"],
)
def test_unusable_images_raise_a_clear_error(recognizer: PlatedetRecognizer, bad: object) -> None:
    with pytest.raises(ValueError, match="recognize"):
        recognizer.recognize(bad)  # type: ignore[arg-type]


@pytest.mark.slow
def test_stage_seconds_accumulate(recognizer: PlatedetRecognizer) -> None:
    before = recognizer.stage_seconds()
    recognizer.recognize(cv2.imread(str(DATA / f"{EASY}.jpg")))
    after = recognizer.stage_seconds()
    assert set(after) == {"detect", "ocr"}
    assert after["detect"] > before["detect"] and after["ocr"] > before["ocr"]
