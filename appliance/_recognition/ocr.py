"""Plate OCR: platerec's encoder/decoder ONNX models with our own beam search.

platerec's sequences are ``< [country] C H A R S >``. Left alone it guesses the country and, on
US plates, often picks Brazilian (seven characters), doubling a character of six-character US
plates; so we force the ``[us]`` token after ``<`` (NOTES.md). Its exported decoder attends
across the batch axis, so beams are decoded one call each, never batched.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt
    import onnxruntime as ort

    from appliance.models import Image

logger = logging.getLogger(__name__)

#: ImageNet normalisation the encoder was trained with (platerec.prepare_input)
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
START, END, COUNTRY_US = "<", ">", "[us]"
#: tokens the decoder may emit after the country; everything else is masked out
ALLOWED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ") | {END}
#: US plates carry at most 8 characters; a little slack for spaces
MAX_TOKENS = 10


@dataclass(frozen=True, slots=True)
class Reading:
    """One hypothesis for a crop: text (A-Z0-9 only), its log-probability and per-char probs."""

    text: str
    log_prob: float
    char_probs: tuple[float, ...]

    @property
    def probability(self) -> float:
        return math.exp(self.log_prob)


class PlateReader:
    """Reads the characters of one plate crop."""

    def __init__(
        self,
        encoder: ort.InferenceSession,
        decoder: ort.InferenceSession,
        tokenizer_json: str,
        *,
        beam_width: int,
    ) -> None:
        self.encoder = encoder
        self.decoder = decoder
        self.beam_width = beam_width
        tokens: list[str] = json.loads(tokenizer_json)["tokens"]
        self.tokens = tokens
        index = {token: i for i, token in enumerate(tokens)}
        missing = {START, END, COUNTRY_US} - index.keys()
        if missing:
            raise ValueError(f"OCR tokenizer lacks {sorted(missing)}")
        self.prefix = [index[START], index[COUNTRY_US]]
        self.end = index[END]
        self.mask = np.array([0.0 if t in ALLOWED else -np.inf for t in tokens], np.float32)
        spec = encoder.get_inputs()[0]
        self.input_size: tuple[int, int] = (spec.shape[-1], spec.shape[-2])
        self.encoder_dtype = np.float16 if "float16" in spec.type else np.float32

    def read(self, crop: Image) -> list[Reading]:
        """Return up to ``beam_width`` readings of a BGR plate crop, most probable first.

        Readings that decode to the same text after removing spaces are merged (probabilities
        added). An empty list means the model found no characters.
        """
        context = self.encoder.run(None, {"input": self._prepare(crop)})[0]
        readings: dict[str, Reading] = {}
        for tokens, log_prob, probs in self._beam_search(context):
            text, char_probs = self._text(tokens, probs)
            if not text:
                continue
            seen = readings.get(text)
            if seen is None:
                readings[text] = Reading(text, log_prob, char_probs)
            else:
                merged = float(np.logaddexp(seen.log_prob, log_prob))
                readings[text] = Reading(text, merged, seen.char_probs)
        return sorted(readings.values(), key=lambda r: r.log_prob, reverse=True)

    def _prepare(self, crop: Image) -> npt.NDArray[np.generic]:
        width, height = self.input_size
        shrinking = crop.shape[0] > height or crop.shape[1] > width
        # platerec resizes with PIL (antialiased); INTER_AREA/CUBIC are OpenCV's closest match.
        interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
        resized = cv2.resize(crop, (width, height), interpolation=interpolation)
        rgb = resized[:, :, ::-1].astype(np.float32) / 255.0
        normalised = ((rgb - MEAN) / STD).transpose(2, 0, 1)[None]
        return np.ascontiguousarray(normalised, dtype=self.encoder_dtype)

    def _next_log_probs(
        self, context: npt.NDArray[np.generic], tokens: list[int]
    ) -> npt.NDArray[np.float32]:
        ids = np.array([tokens], dtype=np.int64)
        logits = self.decoder.run(None, {"input": ids, "context": context})[0]
        last = np.asarray(logits[0, -1], dtype=np.float32)
        # Normalise over every token so probabilities mean what the model meant, then forbid
        # the ones a US plate cannot contain (start, padding, other countries).
        shifted = last - last.max()
        log_probs: npt.NDArray[np.float32] = shifted - np.log(np.exp(shifted).sum()) + self.mask
        return log_probs

    def _beam_search(
        self, context: npt.NDArray[np.generic]
    ) -> list[tuple[list[int], float, list[float]]]:
        """Plain beam search; returns finished (tokens, log-prob, per-token probs)."""
        beams: list[tuple[list[int], float, list[float]]] = [(self.prefix, 0.0, [])]
        finished: list[tuple[list[int], float, list[float]]] = []
        for _ in range(MAX_TOKENS + 1):
            expansions: list[tuple[list[int], float, list[float]]] = []
            for tokens, score, probs in beams:
                log_probs = self._next_log_probs(context, tokens)
                top = np.argsort(log_probs)[::-1][: self.beam_width]
                for token in top.tolist():
                    lp = float(log_probs[token])
                    if math.isinf(lp):
                        break
                    expansions.append(([*tokens, token], score + lp, [*probs, math.exp(lp)]))
            expansions.sort(key=lambda beam: beam[1], reverse=True)
            beams = []
            for beam in expansions[: self.beam_width]:
                (finished if beam[0][-1] == self.end else beams).append(beam)
            # Log-probabilities only fall as a beam grows, so live beams already below the
            # worst finished one we would keep can never overtake it.
            if len(finished) >= self.beam_width:
                floor = sorted((f[1] for f in finished), reverse=True)[self.beam_width - 1]
                beams = [b for b in beams if b[1] > floor]
            if not beams:
                break
        # Beams that ran out of length never closed: not a plate reading.
        return finished

    def _text(self, tokens: list[int], probs: list[float]) -> tuple[str, tuple[float, ...]]:
        """Characters between the country token and the end, spaces dropped, with their probs."""
        chars: list[str] = []
        char_probs: list[float] = []
        for token, prob in zip(tokens[len(self.prefix) : -1], probs[:-1], strict=True):
            char = self.tokens[token]
            if char.isalnum():
                chars.append(char)
                char_probs.append(prob)
        return "".join(chars), tuple(char_probs)
