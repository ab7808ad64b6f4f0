"""Plate detector: platedet's YOLOv8-seg ONNX model run with our own pre/post-processing.

Only the box head is used; the segmentation prototypes are ignored because the OCR reads an
axis-aligned crop anyway. We do our own post-processing because platedet's feeds centre boxes to
OpenCV's NMS, which expects top-left boxes (NOTES.md), and crops a PIL image we don't need.
"""

from __future__ import annotations

import logging
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
#: rows of the head before the mask coefficients: cx, cy, w, h, then one score per class
BOX_ROWS = 4


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

    ``session`` is an onnxruntime session of a model with one ``1×3×H×W`` image input and the
    ``1×(4+classes+masks)×N`` head as first output (Ultralytics' export). ``mask_coefficients``
    is the number of segmentation coefficients trailing each column (32 for ``-seg`` models,
    0 for plain detectors).
    """

    def __init__(
        self,
        session: ort.InferenceSession,
        *,
        confidence: float,
        iou: float,
        max_detections: int,
        mask_coefficients: int = 32,
    ) -> None:
        self.session = session
        self.confidence = confidence
        self.iou = iou
        self.max_detections = max_detections
        self.mask_coefficients = mask_coefficients
        model_input = session.get_inputs()[0]
        self.input_name: str = model_input.name
        height, width = model_input.shape[-2:]
        if not isinstance(height, int) or not isinstance(width, int):
            raise ValueError("the detector model must have a fixed input size")
        self.input_size = (width, height)
        self.input_dtype = np.float16 if "float16" in model_input.type else np.float32

    def detect(self, image: Image) -> list[Box]:
        """Return the plates in a BGR ``H×W×3`` image, best first."""
        blob, scale, pad_x, pad_y = self._letterbox(image)
        head = self.session.run(None, {self.input_name: blob})[0]
        return self._decode(np.asarray(head[0], dtype=np.float32), image.shape, scale, pad_x, pad_y)

    def _letterbox(self, image: Image) -> tuple[npt.NDArray[np.generic], float, int, int]:
        """Scale to fit the model input keeping aspect ratio, pad the rest, to NCHW RGB 0..1."""
        in_w, in_h = self.input_size
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

    def _decode(
        self,
        head: npt.NDArray[np.float32],
        shape: tuple[int, ...],
        scale: float,
        pad_x: int,
        pad_y: int,
    ) -> list[Box]:
        end = head.shape[0] - self.mask_coefficients
        scores = head[BOX_ROWS:end].max(axis=0)
        keep = scores > self.confidence
        if not keep.any():
            return []
        cx, cy, w, h = head[:BOX_ROWS, keep]
        scores = scores[keep]
        # OpenCV's NMS takes (left, top, width, height).
        rects = np.stack([cx - w / 2, cy - h / 2, w, h], axis=1)
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
