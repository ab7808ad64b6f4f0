"""Follows plates across frames and turns each vehicle into one voted :class:`PlateRead`.

Single-frame OCR is noisy (a 0/O or 8/B swap in one frame out of five is normal); voting over a
track's frames fixes most of it and gives one read per vehicle instead of one per frame.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import TYPE_CHECKING

import cv2

from .._recognition.colour import ColourEstimate, vehicle_colour, vote_colours
from ..models import Location, PlateCandidate, PlateRead

if TYPE_CHECKING:
    from datetime import datetime

    from ..models import Frame, Image, PlateDetection

logger = logging.getLogger(__name__)

Box = tuple[int, int, int, int]
NO_COLOUR = ColourEstimate("unknown", 0.0)

#: crop margin around the plate box, as a fraction of its width/height, so the stored crop
#: shows the plate's edges and a little of the car for a human to check
CROP_MARGIN = 0.15
JPEG_QUALITY = 90
VEHICLE_MAX_WIDTH = 640
VEHICLE_QUALITY = 80
#: observations kept per track for voting (the most confident ones): a car parked in view
#: for an hour must not grow a track without bound
MAX_OBSERVATIONS = 50
#: association: a detection joins a track if the boxes overlap at least this much (and the
#: texts are not wholly different: the next car stopping in the same spot is another track)...
MIN_IOU = 0.1
MIN_OVERLAP_SIMILARITY = 0.3
#: ...or its centre is within this many plate widths of the track's last centre (the car moved
#: between detector runs) and the texts are at least this similar
MAX_JUMP_WIDTHS = 3.0
MIN_TEXT_SIMILARITY = 0.5
#: how much a second agreeing frame counts, as an exponent on its miss probability (1 would
#: treat frames of one car as independent evidence, 0 would ignore every frame but the best)
AGREEMENT_DAMPING = 0.5


@dataclass(slots=True)
class _Observation:
    text: str
    confidence: float
    char_confidences: tuple[float, ...]
    candidates: tuple[PlateCandidate, ...]
    box: Box
    crop_jpeg: bytes
    state: str | None = None
    state_confidence: float = 0.0
    colour: ColourEstimate = NO_COLOUR


#: turns a track's observations into its read's text and confidence
Voter = Callable[[list[_Observation]], tuple[str, float]]


@dataclass(slots=True, eq=False)  # tracks are compared by identity
class _Track:
    first_seen: datetime
    last_seen: datetime
    box: Box
    text: str
    frames: int = 0
    observations: list[_Observation] = field(default_factory=list)
    #: the vehicle around the plate, from the most confident frame so far: the operator
    #: compares make, model and colour with the hot-list entry
    vehicle_jpeg: bytes = b""
    vehicle_confidence: float = -1.0
    #: where the camera was at the track's latest frame that carried a position (mobile boxes)
    location: Location | None = None

    def add(self, observation: _Observation, when: datetime) -> None:
        self.last_seen = when
        self.box = observation.box
        if observation.text:
            self.text = observation.text
        self.frames += 1
        self.observations.append(observation)
        if len(self.observations) > MAX_OBSERVATIONS:
            weakest = min(self.observations, key=lambda o: o.confidence)
            self.observations.remove(weakest)


class PlateTracker:
    """Associates one camera's detections into tracks and closes them into reads.

    Call :meth:`update` with every frame the detector ran on (an empty list when it found
    nothing), :meth:`expire` when frames stop coming, :meth:`flush` at shutdown. Each returns
    the reads of the tracks it closed; reads below ``min_confidence`` are dropped.
    """

    def __init__(
        self,
        camera: str,
        track_timeout: float,
        min_confidence: float,
        voter: Voter | None = None,
    ) -> None:
        self.camera = camera
        self.track_timeout = track_timeout
        self.min_confidence = min_confidence
        # Swappable so benchmarks/voting.py can compare vote rules on the same frames.
        self._voter: Voter = voter or vote
        self._tracks: list[_Track] = []

    @property
    def active(self) -> bool:
        """Whether a plate is being followed (the gate then rechecks regularly)."""
        return bool(self._tracks)

    def update(self, frame: Frame, detections: list[PlateDetection]) -> list[PlateRead]:
        """Add one frame's detections; return reads of tracks that timed out by its time."""
        closed = self.expire(frame.timestamp)
        for track, detection in self._associate(detections):
            observation = _observe(frame.image, detection)
            if track is None:
                track = _Track(frame.timestamp, frame.timestamp, detection.box, detection.text)
                self._tracks.append(track)
            track.add(observation, frame.timestamp)
            if frame.location is not None:
                # The camera's frames carry its GPS fix (issue 8): the read keeps the newest.
                track.location = frame.location
            if detection.confidence > track.vehicle_confidence:
                # Encoded only when a frame beats the track's best so far: a few times per car.
                track.vehicle_jpeg = vehicle_jpeg(frame.image, detection.box)
                track.vehicle_confidence = detection.confidence
        return closed

    def expire(self, now: datetime) -> list[PlateRead]:
        """Close the tracks unseen for longer than the timeout at ``now``."""
        stale = [
            t for t in self._tracks if (now - t.last_seen).total_seconds() > self.track_timeout
        ]
        if not stale:
            return []
        self._tracks = [t for t in self._tracks if t not in stale]
        return self._close(stale)

    def flush(self) -> list[PlateRead]:
        """Close every open track (shutdown, end of a replayed clip)."""
        tracks, self._tracks = self._tracks, []
        return self._close(tracks)

    def _associate(
        self, detections: list[PlateDetection]
    ) -> list[tuple[_Track | None, PlateDetection]]:
        """Greedy best-first matching; each track and detection is used at most once."""
        scored = []
        for i, detection in enumerate(detections):
            for j, track in enumerate(self._tracks):
                score = _match_score(track, detection)
                if score > 0:
                    scored.append((score, i, j))
        scored.sort(reverse=True)
        pairs: dict[int, _Track | None] = {}
        used: set[int] = set()
        for _, i, j in scored:
            if i not in pairs and j not in used:
                pairs[i] = self._tracks[j]
                used.add(j)
        return [(pairs.get(i), d) for i, d in enumerate(detections)]

    def _close(self, tracks: list[_Track]) -> list[PlateRead]:
        reads = []
        for track in tracks:
            read = self._vote(track)
            if read is None:
                continue
            if read.confidence < self.min_confidence:
                logger.debug(
                    "Camera '%s': dropped read %r (confidence %.2f)",
                    self.camera,
                    read.text,
                    read.confidence,
                )
                continue
            logger.debug(
                "Camera '%s': read %r (confidence %.2f, %d frames)",
                self.camera,
                read.text,
                read.confidence,
                read.frames,
            )
            reads.append(read)
        return reads

    def _vote(self, track: _Track) -> PlateRead | None:
        observations = [o for o in track.observations if o.text]
        if not observations:
            return None
        text, confidence = self._voter(observations)
        # The crop shown with the read: the most confident frame that read the voted text, or
        # the most confident frame at all when no single frame read it.
        agreeing = [o for o in observations if o.text == text] or observations
        best = max(agreeing, key=lambda o: o.confidence)
        state, state_confidence = vote_state(track.observations)
        # Every frame of the track votes the colour, read or not: the paint is there either way.
        colour = vote_colours(o.colour for o in track.observations)
        return PlateRead(
            camera=self.camera,
            text=text,
            confidence=confidence,
            first_seen=track.first_seen,
            last_seen=track.last_seen,
            box=best.box,
            candidates=_candidates(text, confidence, observations),
            frames=track.frames,
            crop_jpeg=best.crop_jpeg,
            vehicle_jpeg=track.vehicle_jpeg,
            location=track.location,
            state=state,
            state_confidence=state_confidence,
            vehicle_colour=colour.name,
            vehicle_colour_confidence=colour.confidence,
        )


def vote(observations: list[_Observation]) -> tuple[str, float]:
    """Character-level vote over every frame, weighted by per-character confidence.

    A backbone of the most likely length is voted first (summed confidence of every frame's
    candidates per length, then each position among the frames of that length). Every frame's
    reading is then aligned to it (edit distance), so a frame that dropped or doubled a
    character still votes on all the others instead of being ignored; each position takes the
    character with the most summed per-character confidence. A position is dropped, or a
    character inserted, only when the frames that say so outweigh those that do not (each
    frame's say being its mean per-character confidence), so one confident frame that missed
    a character cannot shorten the read. Every character of the result was read by a frame.

    The read's confidence is the confidence-weighted share of characters that agree with the
    voted text, times the frames' combined confidence in it (a damped noisy-OR of each frame's
    confidence times its agreement, at least the best single frame's). A single frame keeps
    its own confidence; agreeing frames raise it a little; disagreeing frames lower it.
    """
    backbone = _backbone(observations)
    columns: list[defaultdict[str, float]] = [defaultdict(float) for _ in backbone]
    absent = [0.0] * len(backbone)  # frames that read nothing at this position
    # slot k: between backbone positions k-1 and k; frames that read an extra character there
    inserted: list[defaultdict[str, float]] = [defaultdict(float) for _ in range(len(backbone) + 1)]
    inserting = [0.0] * (len(backbone) + 1)  # the say of the frames inserting at a slot
    say = 0.0
    for o in observations:
        weights = [_char_confidence(o, j) for j in range(len(o.text))]
        mean = sum(weights) / len(weights)
        say += mean
        # A frame whose own candidates doubt its length (the right length among them) backs
        # its dropped or extra characters only as far as it believes its own length.
        belief = _length_belief(o, len(backbone))
        slots: set[int] = set()
        for i, j, slot in _align(backbone, o.text):
            if i is not None and j is not None:
                columns[i][o.text[j]] += weights[j]
            elif i is not None:
                absent[i] += mean * belief
            elif j is not None:
                inserted[slot][o.text[j]] += weights[j] * belief
                slots.add(slot)
        for slot in slots:
            inserting[slot] += mean * belief
    chars: list[str] = []
    for k in range(len(backbone) + 1):
        extra = inserted[k]
        if extra:
            char = max(extra, key=lambda c: extra[c])
            if extra[char] > say - inserting[k]:
                chars.append(char)
        if k == len(backbone):
            break
        column = columns[k]
        if column and sum(column.values()) >= absent[k]:
            chars.append(max(column, key=lambda c: column[c]))
    text = "".join(chars) or backbone
    return text, _read_confidence(text, observations)


def _backbone(observations: list[_Observation]) -> str:
    """The per-position vote among the frames whose reading has the most likely length."""
    weight: defaultdict[int, float] = defaultdict(float)
    count: Counter[int] = Counter()
    for o in observations:
        count[len(o.text)] += 1
        # Each frame's whole candidate list votes on the length: a frame that doubled a
        # character in its first reading usually still gives the right length some weight.
        for c in o.candidates or (PlateCandidate(o.text, o.confidence),):
            if c.text:
                weight[len(c.text)] += c.confidence
    length = max(count, key=lambda n: (weight[n], count[n]))
    same = [o for o in observations if len(o.text) == length]
    chars = []
    for i in range(length):
        support: defaultdict[str, float] = defaultdict(float)
        for o in same:
            support[o.text[i]] += _char_confidence(o, i)
        chars.append(max(support, key=lambda c: support[c]))
    return "".join(chars)


def _length_belief(o: _Observation, length: int) -> float:
    """How much a frame's candidates favour its own reading's length over ``length``."""
    if len(o.text) == length:
        return 1.0
    readings = o.candidates or (PlateCandidate(o.text, o.confidence),)
    own = sum(c.confidence for c in readings if len(c.text) == len(o.text))
    other = sum(c.confidence for c in readings if len(c.text) == length)
    return own / (own + other) if own + other > 0 else 1.0


def _align(a: str, b: str) -> list[tuple[int | None, int | None, int]]:
    """Edit-distance alignment of ``b`` to ``a``: ``(i, j, slot)`` steps, ``i``/``j`` None for a
    character only the other string has; ``slot`` is where in ``a`` a step falls (0..len(a))."""
    rows, cols = len(a) + 1, len(b) + 1
    cost = [[0] * cols for _ in range(rows)]
    for i in range(rows):
        cost[i][0] = i
    for j in range(cols):
        cost[0][j] = j
    for i in range(1, rows):
        for j in range(1, cols):
            cost[i][j] = min(
                cost[i - 1][j - 1] + (a[i - 1] != b[j - 1]),
                cost[i - 1][j] + 1,
                cost[i][j - 1] + 1,
            )
    steps: list[tuple[int | None, int | None, int]] = []
    i, j = len(a), len(b)
    while i or j:
        # Prefer a match or substitution, so equal-length readings align position by position.
        if i and j and cost[i][j] == cost[i - 1][j - 1] + (a[i - 1] != b[j - 1]):
            steps.append((i - 1, j - 1, i - 1))
            i, j = i - 1, j - 1
        elif i and cost[i][j] == cost[i - 1][j] + 1:
            steps.append((i - 1, None, i - 1))
            i -= 1
        else:
            steps.append((None, j - 1, i))
            j -= 1
    return steps[::-1]


def _read_confidence(text: str, observations: list[_Observation]) -> float:
    def agreement(o: _Observation) -> float:
        if not o.text:
            return 0.0
        matches = sum(
            1 for i, j, _ in _align(text, o.text) if i is not None and j is not None
            and text[i] == o.text[j]
        )
        return matches / max(len(text), len(o.text))

    total = sum(o.confidence for o in observations)
    if total <= 0:
        return 0.0
    backing = [o.confidence * agreement(o) for o in observations]
    share = sum(backing) / total
    # Frames that agree are separate looks at the plate (other pixels, other noise), though
    # not independent ones (same plate, same lighting, same OCR): they combine as a damped
    # noisy-OR, never below the best single frame. Five frames agreeing at 0.2 make ~0.43.
    missed = 1.0
    for b in backing:
        missed *= (1.0 - min(b, 1.0)) ** AGREEMENT_DAMPING
    strength = max(max(backing), 1.0 - missed)
    return min(1.0, share * strength)


def vote_state(observations: list[_Observation]) -> tuple[str | None, float]:
    """The state of issue most confidently read over the track's frames, and its summed
    confidence shared over every frame (frames that saw another state or none lower it)."""
    support: defaultdict[str, float] = defaultdict(float)
    for o in observations:
        if o.state:
            support[o.state] += o.state_confidence
    if not support or not observations:
        return None, 0.0
    state = max(support, key=lambda s: support[s])
    return state, min(1.0, support[state] / len(observations))


def _char_confidence(o: _Observation, i: int) -> float:
    if len(o.char_confidences) == len(o.text):
        return o.char_confidences[i]
    # No per-character scores: spread the text's confidence evenly, so that the product over
    # characters gives back the whole text's confidence.
    return float(o.confidence ** (1 / len(o.text)))


def _candidates(
    text: str, confidence: float, observations: list[_Observation], limit: int = 5
) -> tuple[PlateCandidate, ...]:
    """The voted text first, then other readings seen, by mean confidence over the frames."""
    weights: defaultdict[str, float] = defaultdict(float)
    for o in observations:
        readings = o.candidates or (PlateCandidate(o.text, o.confidence),)
        for c in readings:
            weights[c.text] += c.confidence / len(observations)
    ranked = sorted(weights.items(), key=lambda item: item[1], reverse=True)
    others = [PlateCandidate(t, min(1.0, w)) for t, w in ranked if t and t != text]
    return (PlateCandidate(text, confidence), *others[: limit - 1])


def _match_score(track: _Track, detection: PlateDetection) -> float:
    """How well a detection continues a track: 0 for no, up to 3 for the same box and text."""
    overlap = iou(track.box, detection.box)
    similarity = text_similarity(track.text, detection.text)
    if overlap >= MIN_IOU:
        return 1.0 + overlap + similarity if similarity >= MIN_OVERLAP_SIMILARITY else 0.0
    distance = _centre_distance(track.box, detection.box)
    width = max(track.box[2], detection.box[2], 1)
    if distance <= MAX_JUMP_WIDTHS * width and similarity >= MIN_TEXT_SIMILARITY:
        return similarity * (1 - distance / (MAX_JUMP_WIDTHS * width + 1))
    return 0.0


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two ``(x, y, w, h)`` boxes."""
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def text_similarity(a: str, b: str) -> float:
    """0..1; unknown (empty) text is neutral, 0.5."""
    if not a or not b:
        return 0.5
    return SequenceMatcher(None, a, b).ratio()


def _centre_distance(a: Box, b: Box) -> float:
    dx = (a[0] + a[2] / 2) - (b[0] + b[2] / 2)
    dy = (a[1] + a[3] / 2) - (b[1] + b[3] / 2)
    return float((dx * dx + dy * dy) ** 0.5)


def _observe(image: Image, detection: PlateDetection) -> _Observation:
    return _Observation(
        text=detection.text,
        confidence=detection.confidence,
        char_confidences=detection.char_confidences,
        candidates=detection.candidates,
        box=detection.box,
        crop_jpeg=crop_jpeg(image, detection.box),
        state=detection.state,
        state_confidence=detection.state_confidence,
        colour=vehicle_colour(image, detection.box),
    )


def vehicle_jpeg(image: Image, box: Box) -> bytes:
    """The vehicle around a plate: about three plate widths to each side, two and a half above
    and one below (a car's rear or front), at most ``VEHICLE_MAX_WIDTH`` pixels wide."""
    height, width = image.shape[:2]
    x, y, w, h = box
    cx = x + w / 2
    x1, x2 = max(0, round(cx - 3 * w)), min(width, round(cx + 3 * w))
    y1, y2 = max(0, round(y - 2.5 * w)), min(height, round(y + h + w))
    if x2 <= x1 or y2 <= y1:
        return b""
    region = image[y1:y2, x1:x2]
    if region.shape[1] > VEHICLE_MAX_WIDTH:
        scale = VEHICLE_MAX_WIDTH / region.shape[1]
        smaller = cv2.resize(region, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        ok, encoded = cv2.imencode(".jpg", smaller, [cv2.IMWRITE_JPEG_QUALITY, VEHICLE_QUALITY])
    else:
        ok, encoded = cv2.imencode(".jpg", region, [cv2.IMWRITE_JPEG_QUALITY, VEHICLE_QUALITY])
    return encoded.tobytes() if ok else b""


def crop_jpeg(image: Image, box: Box, margin: float = CROP_MARGIN) -> bytes:
    """JPEG bytes of ``box`` (plus a margin) cut from ``image``; b"" if nothing is left."""
    height, width = image.shape[:2]
    x, y, w, h = box
    mx, my = round(w * margin), round(h * margin)
    x1, y1 = max(0, x - mx), max(0, y - my)
    x2, y2 = min(width, x + w + mx), min(height, y + h + my)
    if x2 <= x1 or y2 <= y1:
        return b""
    ok, encoded = cv2.imencode(
        ".jpg", image[y1:y2, x1:x2], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    )
    return encoded.tobytes() if ok else b""
