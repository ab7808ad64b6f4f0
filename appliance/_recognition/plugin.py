"""The ``platedet`` recognizer: platedet finds plates, platerec reads them, US formats re-rank.

Both models ship inside their PyPI wheels (``pip install alprbox[models]``); nothing is
downloaded at run time. See NOTES.md "Recognition models you can actually get" for the measured
accuracy and costs behind the defaults here.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import cv2
import numpy as np
from pydantic import Field

from appliance.base import PluginContext, Recognizer
from appliance.errors import PluginConfigError
from appliance.hookspecs import hookimpl
from appliance.models import PlateCandidate, PlateDetection
from appliance.settings import RecognizerSettings

from . import us_plates
from .combine import combine, pool_views
from .detector import Box, PlateDetector
from .ocr import PlateReader, Reading
from .us_ocr import CtcPlateReader
from .us_state import StateClassifier
from .views import padded_crops

if TYPE_CHECKING:
    from collections.abc import Iterator

    import onnxruntime as ort

    from appliance.models import Image

logger = logging.getLogger(__name__)

#: the project's own OCR, trained by training/train_ocr.py (model card beside it)
US_OCR_MODEL = Path(__file__).resolve().parent / "models" / "us_ocr.onnx"
#: the state-of-issue classifier, trained by training/train_state.py (model card beside it)
US_STATE_MODEL = Path(__file__).resolve().parent / "models" / "us_state.onnx"
#: platedet's detector converted for the CPU by training/convert_detector.py (model card beside it)
DETECTOR_MODEL = Path(__file__).resolve().parent / "models" / "detector.onnx"


class PlatedetSettings(RecognizerSettings):
    """Settings of the bundled recognizer."""

    type: Literal["platedet"] = Field(
        default="platedet", title="Recognizer type", description="The bundled recognizer."
    )
    detector_confidence: float = Field(
        default=0.1,
        gt=0,
        lt=1,
        title="Detector confidence",
        description=(
            "Lowest plate-detector score kept. The model's own 0.6 misses many US plates; "
            "at 0.1 it finds about 96 % of them, and the OCR and tracker weed out the rest."
        ),
    )
    detector_iou: float = Field(
        default=0.45,
        gt=0,
        le=1,
        title="Detector overlap",
        description="Boxes overlapping more than this (IoU) are treated as the same plate.",
    )
    detector_model: Literal["bundled", "platedet"] = Field(
        default="bundled",
        title="Detector model",
        description=(
            "'bundled': platedet's weights converted for the CPU (models/detector.md: float32, "
            "no mask branch, each frame at its own aspect ratio). 'platedet': the wheel's "
            "original FP16 640×640 export, about 4× the CPU; kept for comparison."
        ),
    )
    detector_size: int = Field(
        # 512: the smallest of 640/576/512/480/448/416/384/320 that kept detection recall on
        # the dev photos (105/109, as at 640); 448 found 103 (models/detector.md).
        default=512,
        ge=128,
        le=1280,
        multiple_of=32,
        title="Detector input size",
        description=(
            "Longer side, in pixels, the bundled detector sees of each frame (a multiple of 32). "
            "Smaller is cheaper and misses more small plates; OCR always reads the full frame."
        ),
    )
    detector_retry: Literal["stills", "always", "never"] = Field(
        default="stills",
        title="Detector retry",
        description=(
            "When the detector finds no plate at its input size in a frame larger than that, "
            "look once more at the retry size: for single photos (alprbox recognize), for "
            "camera frames too, or never. In a stream the plate is usually read a few frames "
            "later, closer; the retry on every empty moving frame doubled the recognition CPU "
            "of the demo clip and read nothing more."
        ),
    )
    detector_retry_size: int = Field(
        # 1280: of the 4 dev photos without a plate found at 512 (or 640, 960, any threshold
        # down to 0.15), a pass at 1280 found 2, and both read right (issue 3, session 5).
        default=1280,
        ge=128,
        le=1920,
        multiple_of=32,
        title="Detector retry size",
        description=(
            "Longer side, in pixels, of the detector's second look (a multiple of 32; about "
            "6x the CPU of a 512 pass)."
        ),
    )
    max_plates: int = Field(
        default=6,
        ge=1,
        le=32,
        title="Plates per frame",
        description="Most plates read per frame, highest detector score first (bounds OCR time).",
    )
    min_plate_height: int = Field(
        default=8,
        ge=1,
        title="Smallest plate (pixels)",
        description="Plates shorter than this in the frame are too small to read and skipped.",
    )
    ocr_beam_width: int = Field(
        default=4,
        ge=1,
        le=16,
        title="OCR beam width",
        description="Readings kept while decoding; 1 is fastest, 4 reads more plates exactly.",
    )
    ocr_candidates: int = Field(
        default=5,
        ge=1,
        le=16,
        title="OCR candidates",
        description="Alternative readings kept per plate (for hot-list fuzzy matching).",
    )
    ocr_threads: int = Field(
        default=1,
        ge=1,
        le=64,
        title="OCR threads",
        description="Threads of the small OCR models; they run fastest on one.",
    )
    us_formats: bool = Field(
        default=True,
        title="Prefer US formats",
        description="Re-rank the OCR's own readings by how common their US plate format is.",
    )
    ocr_engine: Literal["platerec", "us_ocr", "combined"] = Field(
        # us_ocr: once it reads 3 views per plate with a per-state format prior, adding
        # platerec no longer helps and costs ~50 ms of CPU per plate. Dev photos, top-1 exact
        # (benchmarks/accuracy.py, 512 px CPU detector): us_ocr 78.9 %, combined 76.1 %,
        # platerec 33.9 % with the session-4 model (75.2 / 73.4 / 33.9 % with the one before);
        # with the detector's retry for stills (session 5): 80.7 / 78.0 / 35.8 %.
        default="us_ocr",
        title="OCR engine",
        description=(
            "Which OCR reads the plates: 'platerec' (the encoder/decoder shipped in the platerec "
            "wheel), 'us_ocr' (the project's own CTC model, which also reads the state), or "
            "'combined' (both, merged; agreement raises confidence). Compare them with "
            "benchmarks/accuracy.py."
        ),
    )
    state_of_issue: bool = Field(
        default=True,
        title="Read the state",
        description=(
            "Guess each plate's state of issue from its design (us_state model, ~0.1 ms a plate) "
            "and report it with its confidence. Officers verify it before acting."
        ),
    )
    crop_padding: float = Field(
        # 0.06 with 3 views: us_ocr alone 70.6 % exact on the dev photos, vs 60.6 % for one
        # crop at 0.08 (benchmarks/accuracy.py; a whole-configuration choice made on that set).
        default=0.06,
        ge=0,
        le=0.5,
        title="Crop padding (us_ocr)",
        description=(
            "Share of the detector box's width (and twice that of its height) added on each side "
            "of the loosest crop the us_ocr model reads; the other views are tighter."
        ),
    )
    crop_views: int = Field(
        default=3,
        ge=1,
        le=8,
        title="Crops per plate (us_ocr)",
        description=(
            "How many crops of each plate, padded from none to 'Crop padding', the us_ocr model "
            "reads; their readings are pooled. Each view costs ~2-4 ms of CPU."
        ),
    )


class PlatedetRecognizer(Recognizer):
    """Detect with platedet's YOLOv8s-seg, read with platerec's encoder/decoder.

    :meth:`recognize` returns one detection per plate found (at most ``max_plates``), highest
    detector score first. ``confidence`` is the reading's posterior probability; a plate the OCR
    could not read at all comes back with ``text == ""``, no candidates and confidence 0, so
    the tracker still sees it. Plates shorter than ``min_plate_height`` are left out.
    """

    settings_model = PlatedetSettings
    #: the CPU clock behind :meth:`stage_seconds`. Thread time, because the host runs several
    #: cameras' work in other threads; a single-threaded benchmark may swap in process time,
    #: which also counts onnxruntime's own worker threads.
    cpu_clock: Callable[[], float] = staticmethod(time.thread_time)

    def __init__(self, settings: RecognizerSettings, context: PluginContext) -> None:
        if not isinstance(settings, PlatedetSettings):
            raise TypeError(f"PlatedetRecognizer needs PlatedetSettings, got {type(settings)}")
        super().__init__(settings, context)
        self.options = settings
        self.detector: PlateDetector | None = None
        #: the same model at ``detector_retry_size``, for frames the first pass found nothing in
        self.retry_detector: PlateDetector | None = None
        self.reader: PlateReader | None = None
        self.us_reader: CtcPlateReader | None = None
        self.state_classifier: StateClassifier | None = None
        self._stages = {"detect": 0.0, "ocr": 0.0}
        self._lock = threading.Lock()

    def load(self) -> None:
        settings = self.options
        if settings.detector_model == "bundled":
            det_model = _bundled(DETECTOR_MODEL)
        else:
            det_model = _artifacts("platedet") / "platedet.onnx"
        detector = _session(det_model, settings.provider, settings.threads)
        try:
            if settings.ocr_engine in ("platerec", "combined"):
                ocr_models = _artifacts("platerec")
                encoder = _session(
                    ocr_models / "encoder.onnx", settings.provider, settings.ocr_threads
                )
                decoder = _session(
                    ocr_models / "decoder.onnx", settings.provider, settings.ocr_threads
                )
                tokenizer = (ocr_models / "tokenizer.json").read_text()
                self.reader = PlateReader(
                    encoder, decoder, tokenizer, beam_width=settings.ocr_beam_width
                )
            if settings.ocr_engine in ("us_ocr", "combined"):
                model = _bundled(US_OCR_MODEL)
                session = _session(model, settings.provider, settings.ocr_threads)
                self.us_reader = CtcPlateReader(session, beam_width=max(4, settings.ocr_beam_width))
            if settings.state_of_issue:
                self.state_classifier = StateClassifier(
                    _session(_bundled(US_STATE_MODEL), settings.provider, 1)
                )
            def detector_at(side: int) -> PlateDetector:
                return PlateDetector(
                    detector,
                    confidence=settings.detector_confidence,
                    iou=settings.detector_iou,
                    max_detections=settings.max_plates,
                    input_side=side,
                )

            self.detector = detector_at(settings.detector_size)
            # (a model with a fixed input size would only repeat the first pass)
            dynamic = self.detector.fixed_size is None
            larger = settings.detector_retry_size > settings.detector_size
            if dynamic and larger and settings.detector_retry != "never":
                self.retry_detector = detector_at(settings.detector_retry_size)
        except (OSError, ValueError, KeyError) as err:
            raise PluginConfigError(f"recognizer 'platedet': unusable model files: {err}") from err
        logger.info(
            "Recognizer 'platedet' loaded (OCR %s, provider %s, %d detector / %d OCR threads)",
            settings.ocr_engine,
            settings.provider,
            settings.threads,
            settings.ocr_threads,
        )

    def recognize(self, image: Image) -> list[PlateDetection]:
        return self._recognize(image, retry=self.options.detector_retry == "always")

    def recognize_still(self, image: Image) -> list[PlateDetection]:
        return self._recognize(image, retry=True)

    def _recognize(self, image: Image, *, retry: bool) -> list[PlateDetection]:
        if self.detector is None or (self.reader is None and self.us_reader is None):
            raise RuntimeError("PlatedetRecognizer.recognize() called before load()")
        frame = _as_bgr(image)
        with self._stage("detect"):
            boxes = self.detector.detect(frame)
            # A plate too small for the detector's usual input (a distant car): one more look
            # with more of the frame's pixels, only when there is more to see.
            more_to_see = max(frame.shape[:2]) > self.options.detector_size
            if retry and not boxes and self.retry_detector is not None and more_to_see:
                boxes = self.retry_detector.detect(frame)
        detections = []
        with self._stage("ocr"):
            for box in boxes:
                detection = self._read(frame, box)
                if detection is not None:
                    detections.append(detection)
        for d in detections:
            # Never the plate text, at any level: logs reach the disk in clear.
            logger.debug("plate read (%.2f, %s chars) at %s", d.confidence, len(d.text), d.box)
        return detections

    def stage_seconds(self) -> dict[str, float]:
        with self._lock:
            return dict(self._stages)

    def _read(self, frame: Image, box: Box) -> PlateDetection | None:
        height, width = frame.shape[:2]
        x1, y1 = int(box.x1), int(box.y1)
        x2, y2 = min(width, round(box.x2)), min(height, round(box.y2))
        if y2 - y1 < self.options.min_plate_height or x2 <= x1:
            return None
        state, state_confidence = None, 0.0
        views = []
        if self.us_reader is not None:
            # Our model was trained on jittered crop boxes: read a few paddings of the box, from
            # the full-resolution frame (never the detector's downscaled input), and pool them.
            crops = padded_crops(frame, box, self.options.crop_padding, self.options.crop_views)
            views = self.us_reader.read_views(crops)
            for result in views:
                if result.state_confidence > state_confidence:
                    state, state_confidence = result.state, result.state_confidence
        if self.state_classifier is not None:
            # Two opinions when us_ocr is loaded: the design classifier (best on clean crops)
            # and the OCR's state head (best on degraded ones); the more confident one wins,
            # which beat either alone on the held-out crops (93 % clean, 80 % degraded).
            guess, confidence = self.state_classifier.classify(frame[y1:y2, x1:x2])
            if confidence > state_confidence:
                state, state_confidence = guess, confidence
        # The state's own plate formats re-rank the readings (us_plates.log_prior).
        rankings: list[list[tuple[str, float]]] = []
        if self.reader is not None:
            # platerec was trained on platedet's tight boxes: crop exactly, from the full frame.
            rankings.append(self._rank(self.reader.read(frame[y1:y2, x1:x2]), state))
        if views:
            rankings.append(pool_views([self._rank(r.readings, state) for r in views]))
        ranked = combine(rankings, state=state)[: self.options.ocr_candidates]
        text, confidence = ranked[0] if ranked else ("", 0.0)
        return PlateDetection(
            box=(x1, y1, x2 - x1, y2 - y1),
            detector_confidence=box.confidence,
            text=text,
            confidence=confidence,
            candidates=tuple(PlateCandidate(t, p) for t, p in ranked),
            char_confidences=_char_marginals(text, ranked),
            state=state,
            state_confidence=state_confidence,
        )

    def _rank(self, readings: list[Reading], state: str | None = None) -> list[tuple[str, float]]:
        """Readings with their posterior probability, best first.

        The beam's probability mass is shared out again in proportion to model probability
        times the US-format prior. It tracks accuracy well: on the crop benchmark reads given
        0.7–0.9 were right 97 % of the time (dev photos 87 %), reads given 0.1–0.3 26 % (17 %).
        """
        if not readings:
            return []
        scores = np.array([r.log_prob for r in readings])
        if self.options.us_formats:
            scores += np.array([us_plates.log_prior(r.text, state) for r in readings])
        mass = float(np.exp([r.log_prob for r in readings]).sum())
        shares = np.exp(scores - scores.max())
        posterior = mass * shares / shares.sum()
        order = np.argsort(-posterior, kind="stable")
        return [(readings[i].text, float(posterior[i])) for i in order]

    @contextmanager
    def _stage(self, name: str) -> Iterator[None]:
        start = self.cpu_clock()
        try:
            yield
        finally:
            spent = self.cpu_clock() - start
            with self._lock:
                self._stages[name] += spent


@hookimpl
def appliance_recognizer_types() -> list[type[Recognizer]]:
    return [PlatedetRecognizer]


def _char_marginals(text: str, ranked: list[tuple[str, float]]) -> tuple[float, ...]:
    """Per character of ``text``: the posterior mass of readings that agree on it there.

    Readings of another length count as disagreeing. Unlike the decoder's step probabilities,
    these stay meaningful after re-ranking (the decoder's own first choice at a position may
    be the character the prior overruled).
    """
    return tuple(
        sum(p for t, p in ranked if len(t) == len(text) and t[i] == char)
        for i, char in enumerate(text)
    )


def _artifacts(package: str) -> Path:
    """The model folder inside a weights-carrying wheel, found without importing the package.

    Importing platedet/platerec would pull in their own stale dependencies (Pillow, an old
    OpenCV); the install step adds them --no-deps and we only need their files.
    """
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise PluginConfigError(
            f"recognizer 'platedet' needs the Python package '{package}', which carries its "
            "model; install it with: pip install --no-deps 'alprbox[models]' (./dev does)"
        )
    return Path(locations[0]) / "artifacts"


def _bundled(model: Path) -> Path:
    """A model file that ships inside this package; a clear config error when it is missing."""
    if not model.is_file():
        raise PluginConfigError(
            f"recognizer 'platedet': {model} is missing from this install (reinstall alprbox)"
        )
    return model


def _session(model: Path, provider: str, threads: int) -> ort.InferenceSession:
    import onnxruntime as ort

    if provider not in ort.get_available_providers():
        raise PluginConfigError(
            f"recognizer 'platedet': inference provider {provider!r} is not available here "
            f"(available: {', '.join(ort.get_available_providers())})"
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Idle workers would otherwise spin for a while after each call, burning the core the
    # video decoder needs on a two-core box.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # CPU stays as the fallback for any operator the accelerator's provider lacks.
    providers = list(dict.fromkeys([provider, "CPUExecutionProvider"]))
    try:
        return ort.InferenceSession(str(model), sess_options=options, providers=providers)
    except Exception as err:  # onnxruntime's load errors share no base class below Exception
        raise PluginConfigError(f"recognizer 'platedet': cannot load {model.name}: {err}") from err


def _as_bgr(image: Image) -> Image:
    """Accept what cameras plausibly hand over (BGR, BGRA, grayscale); refuse anything else."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ValueError("recognize() needs a uint8 numpy image")
    if image.size == 0:
        raise ValueError(f"recognize() got an empty image of shape {image.shape}")
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    if image.ndim == 2:
        converted = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.ndim == 3 and image.shape[2] == 4:
        converted = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    else:
        raise ValueError(f"recognize() needs an H×W×3 BGR image, got shape {image.shape}")
    return np.asarray(converted, dtype=np.uint8)
