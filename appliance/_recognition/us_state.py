"""State of issue from a plate crop's design: a linear model over a small colour thumbnail.

US plates of one state share a design (background picture, colours, where the state name is
printed), and at 32×16 pixels in CIE Lab that design is most of what is left, while the
characters are not. A ridge-regression classifier on those pixels (``us_state.onnx``, trained by
``training/train_state.py``, model card ``models/us_state.md``) reads the state of the held-out
real crops far better than the OCR model's own state head, at ~0.1 ms a crop.

It knows designs, not states: a specialty or new-issue plate it has not seen is guessed as the
closest design it knows, which is why its confidence goes with it and officers verify the state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt
    import onnxruntime as ort

    from appliance.models import Image

#: thumbnail size (width, height) the model was trained on
THUMBNAIL = (32, 16)


def features(crop: Image) -> npt.NDArray[np.float32]:
    """A BGR crop → its unit-length, zero-mean Lab thumbnail (``32*16*3`` values)."""
    small = cv2.resize(crop, THUMBNAIL, interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(np.ascontiguousarray(small, dtype=np.uint8), cv2.COLOR_BGR2LAB)
    flat = lab.astype(np.float32).reshape(-1)
    flat -= flat.mean()
    norm = float(np.linalg.norm(flat))
    return flat / norm if norm > 0 else flat


class StateClassifier:
    """Runs ``us_state.onnx``: features in, one logit per state out (softmax inside)."""

    def __init__(self, session: ort.InferenceSession) -> None:
        self.session = session
        meta = session.get_modelmeta().custom_metadata_map
        try:
            self.states = meta["states"].split(",")
        except KeyError as err:
            raise ValueError("us_state model lacks its state list") from err
        self.input_name: str = session.get_inputs()[0].name

    def classify(self, crop: Image) -> tuple[str, float]:
        """The most likely state (upper case, e.g. ``"CA"``) and its probability."""
        probs = self.session.run(None, {self.input_name: features(crop)[None]})[0][0]
        best = int(np.argmax(probs))
        return self.states[best].upper(), float(probs[best])
