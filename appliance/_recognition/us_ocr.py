"""The project's own US plate OCR: a small CTC model with a state-of-issue head (us_ocr.onnx).

Trained by ``training/train_ocr.py`` (model card: ``models/us_ocr.md``). The ONNX graph takes
``N×3×H×W`` BGR float 0..255 and normalises inside; it returns per-column log-probabilities over
``blank + alphabet`` and logits over the states. The alphabet, the state codes and the input size
are read from the model's own metadata, so a retrained model with other settings drops in.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from .ocr import Reading

if TYPE_CHECKING:
    import numpy.typing as npt
    import onnxruntime as ort

    from appliance.models import Image

logger = logging.getLogger(__name__)

#: a character below this probability at a column is not worth extending a beam with
PRUNE = 1e-3
#: and at most this many characters per column (bounds the search on a flat, unsure output)
TOP_PER_COLUMN = 4


@dataclass(frozen=True, slots=True)
class CtcResult:
    """Readings of one crop (best first) and the state guess with its probability."""

    readings: list[Reading]
    state: str | None
    state_confidence: float


@dataclass(frozen=True, slots=True)
class _Beam:
    """A CTC prefix's log-probabilities ending in blank / in its last character, and the peak
    probability of each of its characters (the per-character confidence)."""

    blank: float
    char: float
    peaks: tuple[float, ...]

    @property
    def total(self) -> float:
        return _logaddexp(self.blank, self.char)


def _logaddexp(a: float, b: float) -> float:
    """``log(exp(a) + exp(b))`` on Python floats: numpy's ufunc call costs ~10× more per
    scalar, and the beam search makes ~2000 of these per crop."""
    if a < b:
        a, b = b, a
    if b == -math.inf:
        return a
    return a + math.log1p(math.exp(b - a))


def _extend(
    beams: dict[tuple[int, ...], _Beam],
    prefix: tuple[int, ...],
    peaks: tuple[float, ...],
    *,
    blank: float = -math.inf,
    char: float = -math.inf,
) -> None:
    """Add probability mass to ``prefix`` among the next column's beams."""
    old = beams.get(prefix)
    if old is None:
        beams[prefix] = _Beam(blank, char, peaks)
    else:
        merged = tuple(map(max, old.peaks, peaks))
        beams[prefix] = _Beam(_logaddexp(old.blank, blank), _logaddexp(old.char, char), merged)


class CtcPlateReader:
    """Reads one padded plate crop with the CTC model."""

    def __init__(self, session: ort.InferenceSession, *, beam_width: int) -> None:
        self.session = session
        self.beam_width = beam_width
        meta = session.get_modelmeta().custom_metadata_map
        try:
            self.alphabet: str = meta["alphabet"]
            self.states: list[str] = meta["states"].split(",")
            self.input_size = (int(meta["width"]), int(meta["height"]))
        except (KeyError, ValueError) as err:
            raise ValueError(f"us_ocr model lacks its metadata ({err})") from err
        self.input_name: str = session.get_inputs()[0].name

    def read(self, crop: Image) -> CtcResult:
        return self.read_views([crop])[0]

    def read_views(self, crops: list[Image]) -> list[CtcResult]:
        """Read several crops (e.g. views of one plate at other paddings) in one model call."""
        if not crops:
            return []
        width, height = self.input_size
        resized = []
        for crop in crops:
            interpolation = cv2.INTER_AREA if crop.shape[1] > width else cv2.INTER_LINEAR
            resized.append(cv2.resize(crop, (width, height), interpolation=interpolation))
        blob = np.ascontiguousarray(np.stack(resized).transpose(0, 3, 1, 2), dtype=np.float32)
        log_probs, state_logits = self.session.run(None, {self.input_name: blob})
        results = []
        for columns, logits in zip(log_probs, state_logits, strict=True):
            readings = self._beam_search(np.asarray(columns, dtype=np.float32))
            scores = np.asarray(logits, dtype=np.float64)
            probs = np.exp(scores - scores.max())
            probs /= probs.sum()
            best = int(probs.argmax())
            results.append(CtcResult(readings, self.states[best].upper(), float(probs[best])))
        return results

    def _beam_search(self, log_probs: npt.NDArray[np.float32]) -> list[Reading]:
        """CTC prefix beam search; returns up to ``beam_width`` readings, most probable first.

        Each prefix keeps two log-probabilities, ending in blank and ending in its last
        character, so repeated characters separated by a blank (``"11"``) stay distinct.
        """
        probs = np.exp(log_probs)
        beams: dict[tuple[int, ...], _Beam] = {(): _Beam(0.0, -math.inf, ())}
        for t in range(log_probs.shape[0]):
            row = log_probs[t]
            top = np.argsort(probs[t])[::-1][:TOP_PER_COLUMN].tolist()
            candidates = [c for c in top if c != 0 and probs[t, c] > PRUNE]
            following: dict[tuple[int, ...], _Beam] = {}
            for prefix, beam in beams.items():
                total = beam.total
                _extend(following, prefix, beam.peaks, blank=total + float(row[0]))
                for c in candidates:
                    lp, p = float(row[c]), float(probs[t, c])
                    if prefix and prefix[-1] == c:
                        # the same character again: only after a blank is it a new one
                        _extend(following, (*prefix, c), (*beam.peaks, p), char=beam.blank + lp)
                        bumped = (*beam.peaks[:-1], max(beam.peaks[-1], p))
                        _extend(following, prefix, bumped, char=beam.char + lp)
                    else:
                        _extend(following, (*prefix, c), (*beam.peaks, p), char=total + lp)
            ranked = sorted(following.items(), key=lambda kv: -kv[1].total)
            beams = dict(ranked[: self.beam_width * 2])
        readings = []
        for prefix, beam in beams.items():
            if prefix:
                text = "".join(self.alphabet[c - 1] for c in prefix)
                readings.append(Reading(text, beam.total, beam.peaks))
        readings.sort(key=lambda r: r.log_prob, reverse=True)
        return readings[: self.beam_width]
