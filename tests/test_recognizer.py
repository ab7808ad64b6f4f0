"""The bundled platedet/platerec recognizer.

The tests marked slow run the real models (loaded once for the module, ~1 s; each photo
~0.3 s on two cores). The photos in tests/data come from OpenALPR's benchmarks (AGPL-3.0).
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
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
from appliance._recognition.combine import combine, confusion_key
from appliance._recognition.plugin import PlatedetRecognizer, PlatedetSettings
from appliance._recognition.us_ocr import CtcPlateReader
from appliance._recognition.us_state import StateClassifier
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
    # the bundled detector needs no platedet package (tests/test_detector.py); the original does
    r = PlatedetRecognizer(PlatedetSettings(detector_model="platedet"), context(tmp_path))
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


# --- the project's own OCR (us_ocr), merging and bad input --------------------------------


def test_ocr_engine_setting_defaults_to_the_trained_model_and_is_checked() -> None:
    assert PlatedetSettings().ocr_engine == "us_ocr"
    assert PlatedetSettings(ocr_engine="platerec").ocr_engine == "platerec"
    with pytest.raises(ValidationError, match="ocr_engine"):
        PlatedetSettings.model_validate({"ocr_engine": "tesseract"})


@pytest.mark.parametrize("model", [plugin.US_OCR_MODEL, plugin.US_STATE_MODEL])
def test_the_trained_models_ship_with_their_cards(model: Path) -> None:
    assert model.is_file()
    assert model.stat().st_size < 10_000_000
    card = model.with_suffix(".md").read_text()
    for needed in ("Training", "held-out", "Licence"):
        assert needed in card


CROPS = Path(__file__).parent.parent.parent / "shared" / "datasets" / "openalpr-us-crops"


@pytest.mark.skipif(not CROPS.is_dir(), reason="needs ../shared/datasets/openalpr-us-crops")
def test_state_classifier_reads_most_held_out_crops() -> None:
    """The issue's target: state accuracy >= 70 % on crops never trained on."""
    import onnxruntime as ort

    sys.path.insert(0, str(Path(__file__).parent.parent / "training"))
    from crops import held_out, read_crops

    session = ort.InferenceSession(str(plugin.US_STATE_MODEL), providers=["CPUExecutionProvider"])
    classifier = StateClassifier(session)
    rows = [row for row in read_crops(CROPS) if held_out(row[0])]
    right = 0
    for name, state, _plate in rows:
        guess, confidence = classifier.classify(cv2.imread(str(CROPS / name)))
        assert 0 < confidence <= 1
        right += guess == state.upper()
    assert len(rows) == 163
    assert right / len(rows) >= 0.70


def test_combine_agreement_raises_confidence_above_either_engine() -> None:
    merged = combine([[("7ABC123", 0.6), ("7ABC128", 0.3)], [("7ABC123", 0.7)]])
    assert merged[0][0] == "7ABC123"
    assert merged[0][1] > 0.7  # both read it: more sure than either alone


def test_combine_confusion_pairs_let_the_us_format_pick_the_glyph() -> None:
    # One engine reads a letter O where California's 9AAA999 wants a digit; the other reads
    # the digit. They agree up to the 0/O confusion, and the format picks the member.
    merged = combine([[("6NZTO67", 0.55)], [("6NZT067", 0.45)]])
    assert merged[0][0] == "6NZT067"
    assert confusion_key("6NZTO67") == confusion_key("6NZT067")


def test_combine_never_invents_a_string_no_engine_read() -> None:
    rankings = [[("8ABS12", 0.5), ("BAB512", 0.2)], [("8A8S12", 0.6)]]
    texts = {t for t, _ in combine(rankings)}
    assert texts == {"8ABS12", "BAB512", "8A8S12"}
    assert combine([[], []]) == []


@pytest.fixture(scope="module")
def ctc_reader() -> CtcPlateReader:
    import onnxruntime as ort

    session = ort.InferenceSession(str(plugin.US_OCR_MODEL), providers=["CPUExecutionProvider"])
    return CtcPlateReader(session, beam_width=4)


def columns(reader: CtcPlateReader, path: str) -> np.ndarray:
    """Log-probabilities that spell ``path`` column by column ('-' is the blank), 0.9 sure."""
    classes = len(reader.alphabet) + 1
    out = np.full((len(path), classes), np.log(0.1 / (classes - 1)), np.float32)
    for t, char in enumerate(path):
        out[t, 0 if char == "-" else reader.alphabet.index(char) + 1] = np.log(0.9)
    return out


def test_ctc_search_collapses_repeats_but_keeps_blank_separated_doubles(
    ctc_reader: CtcPlateReader,
) -> None:
    best = ctc_reader._beam_search(columns(ctc_reader, "--7-AA-B--11-1--"))[0]
    assert best.text == "7AB11"
    assert len(best.char_probs) == 5 and min(best.char_probs) > 0.8


def test_ctc_reader_gives_a_state_from_the_model(ctc_reader: CtcPlateReader) -> None:
    result = ctc_reader.read(np.full((40, 90, 3), 200, np.uint8))
    assert result.state is not None and result.state.lower() in ctc_reader.states
    assert 0 < result.state_confidence <= 1


@pytest.fixture(scope="module")
def combined(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatedetRecognizer]:
    settings = PlatedetSettings(ocr_engine="combined")
    r = PlatedetRecognizer(settings, context(tmp_path_factory.mktemp("rec")))
    r.load()
    yield r


@pytest.mark.slow
def test_combined_engine_reads_the_easy_plate_and_its_state(combined: PlatedetRecognizer) -> None:
    box, plate = truth(EASY)
    detections = combined.recognize(cv2.imread(str(DATA / f"{EASY}.jpg")))
    best = max(detections, key=lambda d: iou(d.box, box))
    assert best.text == plate
    assert best.state == "OH"  # an Ohio plate
    assert 0 < best.state_confidence <= 1


@pytest.mark.slow
def test_sixteen_bit_frames_get_a_clear_error(combined: PlatedetRecognizer) -> None:
    with pytest.raises(ValueError, match="uint8"):
        combined.recognize(np.zeros((480, 640, 3), np.uint16))


@pytest.mark.slow
def test_cli_bad_images_each_get_an_answer_and_the_run_goes_on(tmp_path: Path) -> None:
    """Corrupt, 1×1, 12000×9000, grayscale and 16-bit files in one ``alprbox recognize`` run."""
    photo = DATA / f"{EASY}.jpg"
    colour = cv2.imread(str(photo))
    files = {
        "corrupt": tmp_path / "corrupt.jpg",
        "tiny": tmp_path / "tiny.png",
        "huge": tmp_path / "huge.jpg",
        "gray": tmp_path / "gray.png",
        "deep": tmp_path / "deep.png",
    }
    files["corrupt"].write_bytes(photo.read_bytes()[:600] + bytes(range(256)) * 8)  # bad data
    cv2.imwrite(str(files["tiny"]), np.zeros((1, 1, 3), np.uint8))
    cv2.imwrite(str(files["huge"]), np.full((9000, 12000, 3), 90, np.uint8))
    cv2.imwrite(str(files["gray"]), cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(files["deep"]), colour.astype(np.uint16) * 257)
    paths = [*files.values(), photo]
    result = subprocess.run(
        [sys.executable, "-m", "appliance", "recognize", *map(str, paths), "--json",
         "--setting", "ocr_engine=combined"],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    answers = {Path(line["image"]).stem: line for line in lines}
    assert list(answers) == ["corrupt", "tiny", "huge", "gray", "deep", EASY], result.stderr
    _, plate = truth(EASY)
    for name in ("gray", "deep", EASY):  # readable after conversion to 8-bit BGR
        assert [p["text"] for p in answers[name]["plates"]] == [plate], name
        assert answers[name]["plates"][0]["state"]
    assert answers["tiny"]["plates"] == [] and answers["huge"]["plates"] == []
    assert answers["corrupt"] == {"image": str(files["corrupt"]), "error": "not a readable image"}
    assert result.returncode == 1  # one image could not be read
