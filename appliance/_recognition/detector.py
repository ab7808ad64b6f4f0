"""Plate detector: a YOLOv8 plate model (platedet's weights) run with our own pre/post-processing.

Two head layouts are understood:

- ``yolov8-raw`` (the box's own ``models/detector.onnx``, made by training/convert_detector.py):
  float32, a dynamic ``1×3×H×W`` input, and the raw head ``1×(64+classes)×anchors`` (16 DFL bins
  per box side, then one logit per class). Each frame is letterboxed to its own aspect ratio with
  its longer side at ``input_side`` (both sides rounded up to multiples of 32), so a 16:9 frame
  costs 640×384 instead of 640×640, and only the anchors above the score threshold are decoded.
- Ultralytics' own export (platedet's ``platedet.onnx``, kept for comparison): a fixed square
  input and the decoded head ``1×(4+classes+masks)×anchors`` (centre boxes, scores, mask
  coefficients). The segmentation prototypes are ignored: the OCR reads an axis-aligned crop.

We do our own post-processing because platedet's feeds centre boxes to OpenCV's NMS, which
expects top-left boxes (NOTES.md), and crops a PIL image we don't need.
"""

from __future__ import annotations

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

#: YOLO's letterbox fill colour; the model was trained with it
PAD_VALUE = 114
#: rows of the decoded head before the class scores: cx, cy, w, h
BOX_ROWS = 4
#: the raw head's layout (models/detector.onnx metadata)
RAW_HEAD = "yolov8-raw"


@dataclass(frozen=True, slots=True)
class Box:
    """A detected plate in full-frame pixels (floats; callers round when they crop)."""

    x1: float
    y1: float
    x2: float
    y2: float
    confidence: float


class PlateDetector:
    """Runs a YOLOv8(-seg) plate model on one BGR frame.

    ``session``: an onnxruntime session of either head layout (module docstring).
    ``mask_coefficients``: segmentation coefficients trailing each column of a decoded head (32
    for Ultralytics ``-seg`` exports, 0 for plain detectors; unused for the raw head).
    ``input_side``: the longer side of the model input for a dynamic-size model (a multiple of
    32); a model with a fixed input size uses its own.
    """

    def __init__(
        self,
        session: ort.InferenceSession,
        *,
        confidence: float,
        iou: float,
        max_detections: int,
        mask_coefficients: int = 32,
        input_side: int = 640,
    ) -> None:
        self.session = session
        self.confidence = confidence
        self.iou = iou
        self.max_detections = max_detections
        self.mask_coefficients = mask_coefficients
        model_input = session.get_inputs()[0]
        self.input_name: str = model_input.name
        self.input_dtype = np.float16 if "float16" in model_input.type else np.float32
        metadata = session.get_modelmeta().custom_metadata_map
        self.raw_head = metadata.get("head") == RAW_HEAD
        height, width = model_input.shape[-2:]
        self.fixed_size: tuple[int, int] | None = None
        if isinstance(height, int) and isinstance(width, int):
            self.fixed_size = (width, height)
        elif not self.raw_head:
            raise ValueError("a detector model with a decoded head must have a fixed input size")
        self.strides = tuple(int(s) for s in metadata.get("strides", "8,16,32").split(","))
        self.dfl_bins = int(metadata.get("dfl_bins", "16"))
        if input_side <= 0 or input_side % max(self.strides) != 0:
            raise ValueError(f"input_side must be a positive multiple of {max(self.strides)}")
        self.input_side = input_side
        # 1/(1+e^-x) > c  <=>  x > log(c/(1-c)): threshold raw logits without a sigmoid each
        self._logit_threshold = math.log(confidence / (1 - confidence))
        self._anchor_cache: dict[tuple[int, int], tuple[npt.NDArray[np.float32], ...]] = {}

    def input_shape(self, frame_shape: tuple[int, ...]) -> tuple[int, int]:
        """The (width, height) the model runs at for a frame of this shape."""
        if self.fixed_size is not None:
            return self.fixed_size
        height, width = frame_shape[:2]
        scale = self.input_side / max(height, width)
        step = max(self.strides)
        return (
            max(step, math.ceil(width * scale / step) * step),
            max(step, math.ceil(height * scale / step) * step),
        )

    def detect(self, image: Image) -> list[Box]:
        """Return the plates in a BGR ``H×W×3`` image, best first."""
        blob, scale, pad_x, pad_y = self._letterbox(image)
        head = np.asarray(self.session.run(None, {self.input_name: blob})[0][0], dtype=np.float32)
        if self.raw_head:
            rects, scores = self._decode_raw(head, blob.shape[2], blob.shape[3])
        else:
            rects, scores = self._decode_boxes(head)
        return self._nms(rects, scores, image.shape, scale, pad_x, pad_y)

    def _letterbox(self, image: Image) -> tuple[npt.NDArray[np.generic], float, int, int]:
        """Scale to fit the model input keeping aspect ratio, pad the rest, to NCHW RGB 0..1."""
        in_w, in_h = self.input_shape(image.shape)
        height, width = image.shape[:2]
        scale = min(in_w / width, in_h / height)
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        # INTER_AREA when shrinking (the usual case: 1080p into 640) avoids aliasing thin
        # characters away; it costs ~1 ms more than bilinear on 1080p.
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        resized = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
        pad_x, pad_y = (in_w - new_w) // 2, (in_h - new_h) // 2
        canvas = np.full((in_h, in_w, 3), PAD_VALUE, dtype=np.uint8)
        canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
        # The model wants RGB; OpenCV frames are BGR (NOTES.md pitfall).
        rgb = canvas[:, :, ::-1].transpose(2, 0, 1)
        blob = np.ascontiguousarray(rgb[None], dtype=np.float32) / np.float32(255)
        return blob.astype(self.input_dtype), scale, pad_x, pad_y

    def _decode_boxes(
        self, head: npt.NDArray[np.float32]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Ultralytics' decoded head → (left, top, width, height) rects and scores above the bar."""
        end = head.shape[0] - self.mask_coefficients
        scores = head[BOX_ROWS:end].max(axis=0)
        keep = scores > self.confidence
        cx, cy, w, h = head[:BOX_ROWS, keep]
        return np.stack([cx - w / 2, cy - h / 2, w, h], axis=1), scores[keep]

    def _decode_raw(
        self, head: npt.NDArray[np.float32], in_h: int, in_w: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """The raw head → rects and scores, decoding only anchors whose best logit passes.

        Same maths as Ultralytics' ``make_anchors`` + DFL: each side's distance from the anchor
        centre is the expectation of a softmax over ``dfl_bins`` bins, in units of the stride.
        """
        bins = 4 * self.dfl_bins
        logits = head[bins:].max(axis=0)
        keep = np.flatnonzero(logits > self._logit_threshold)
        centres, strides = self._anchors(in_h, in_w)
        if centres.shape[0] != head.shape[1]:
            raise ValueError(f"the detector returned {head.shape[1]} anchors, not {len(centres)}")
        dfl = head[:bins, keep].T.reshape(-1, 4, self.dfl_bins)
        dfl = np.exp(dfl - dfl.max(axis=2, keepdims=True))
        distances = (dfl / dfl.sum(axis=2, keepdims=True)) @ np.arange(
            self.dfl_bins, dtype=np.float32
        )
        stride = strides[keep, None]
        top_left = (centres[keep] - distances[:, :2]) * stride
        bottom_right = (centres[keep] + distances[:, 2:]) * stride
        rects = np.concatenate([top_left, bottom_right - top_left], axis=1)
        scores = 1 / (1 + np.exp(-logits[keep]))
        return rects.astype(np.float32), scores.astype(np.float32)

    def _anchors(
        self, in_h: int, in_w: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Anchor centres (in grid cells) and strides, level by level, row-major (cached)."""
        cached = self._anchor_cache.get((in_h, in_w))
        if cached is None:
            centres, strides = [], []
            for stride in self.strides:
                ys, xs = np.meshgrid(
                    np.arange(in_h // stride, dtype=np.float32) + 0.5,
                    np.arange(in_w // stride, dtype=np.float32) + 0.5,
                    indexing="ij",
                )
                centres.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
                strides.append(np.full(xs.size, stride, dtype=np.float32))
            cached = (np.concatenate(centres), np.concatenate(strides))
            self._anchor_cache[(in_h, in_w)] = cached
        return cached[0], cached[1]

    def _nms(
        self,
        rects: npt.NDArray[np.float32],
        scores: npt.NDArray[np.float32],
        shape: tuple[int, ...],
        scale: float,
        pad_x: int,
        pad_y: int,
    ) -> list[Box]:
        if len(scores) == 0:
            return []
        # OpenCV's NMS takes (left, top, width, height).
        picked = cv2.dnn.NMSBoxes(rects.tolist(), scores.tolist(), self.confidence, self.iou)
        order = np.asarray(picked, dtype=np.int64).reshape(-1)[: self.max_detections]
        height, width = shape[:2]
        boxes = []
        for i in order:
            left, top, bw, bh = rects[i]
            x1 = float(np.clip((left - pad_x) / scale, 0, width))
            y1 = float(np.clip((top - pad_y) / scale, 0, height))
            x2 = float(np.clip((left + bw - pad_x) / scale, 0, width))
            y2 = float(np.clip((top + bh - pad_y) / scale, 0, height))
            if x2 - x1 >= 1 and y2 - y1 >= 1:
                boxes.append(Box(x1, y1, x2, y2, float(scores[i])))
        return boxes
