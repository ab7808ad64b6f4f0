"""Train the state-of-issue classifier (ridge regression on Lab thumbnails) and export it to ONNX.

    python training/train_state.py --out appliance/_recognition/models/us_state.onnx

Data: the training split of ``openalpr-us-crops`` (training/crops.py), each crop also seen
``--augment`` times through the synthetic generator's degradation at half strength (scene,
perspective, a detector-like crop box, blur, noise, JPEG, colour cast), so the model copes with
the padded crops the recognizer hands it. Synthetic plates are not used: their designs are
invented, and the model learns designs. The ridge penalty and the softmax temperature are chosen
by 5-fold cross-validation inside the training split; the held-out split is only evaluated.
Needs numpy, OpenCV and onnx (the ``train`` extra); no torch. Runs in about a minute.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import synth_plates  # noqa: E402
from crops import CROPS, held_out, read_crops  # noqa: E402

from appliance._recognition.us_state import features  # noqa: E402

PENALTIES = (0.03, 0.1, 0.3, 1.0)
TEMPERATURES = (5.0, 10.0, 20.0, 40.0, 80.0)


def fit(
    x: np.ndarray, y: np.ndarray, classes: int, penalty: float
) -> tuple[np.ndarray, np.ndarray]:
    """Ridge regression onto one-hot targets; returns weights and bias."""
    mean = x.mean(axis=0)
    target = np.eye(classes, dtype=np.float64)[y]
    centred = x - mean
    gram = centred.T @ centred + penalty * np.eye(x.shape[1])
    weights = np.linalg.solve(gram, centred.T @ (target - target.mean(axis=0)))
    bias = target.mean(axis=0) - mean @ weights
    return weights.astype(np.float32), bias.astype(np.float32)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def fold(name: str) -> int:
    return hashlib.sha256(b"fold:" + name.encode()).digest()[0] % 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="ONNX file to write")
    parser.add_argument("--crops", type=Path, default=CROPS)
    parser.add_argument("--augment", type=int, default=8, help="degraded copies per crop")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    rows = read_crops(args.crops)
    states = sorted(synth_plates.STATES)
    train: list[tuple[str, np.ndarray, int]] = []
    valid: list[tuple[np.ndarray, int]] = []
    valid_degraded: list[tuple[np.ndarray, int]] = []
    for name, state, _plate in rows:
        image = cv2.imread(str(args.crops / name), cv2.IMREAD_COLOR)
        if image is None or state not in states:
            continue
        image = cv2.resize(image, (320, 160), interpolation=cv2.INTER_AREA)
        label = states.index(state)
        if held_out(name):
            valid.append((features(image), label))
            spoiled = synth_plates.degrade(rng, image, 320, 160, 0.5)
            valid_degraded.append((features(spoiled), label))
            continue
        train.append((name, features(image), label))
        for _ in range(args.augment):
            spoiled = synth_plates.degrade(rng, image, 320, 160, 0.5)
            train.append((name, features(spoiled), label))
    x = np.stack([t[1] for t in train]).astype(np.float64)
    y = np.array([t[2] for t in train])
    folds = np.array([fold(t[0]) for t in train])
    # Cross-validate penalty and temperature by log-loss inside the training split.
    best: tuple[float, float, float] | None = None
    for penalty in PENALTIES:
        scores = np.zeros((len(y), len(states)))
        for k in range(5):
            w, b = fit(x[folds != k], y[folds != k], len(states), penalty)
            scores[folds == k] = x[folds == k] @ w + b
        for temperature in TEMPERATURES:
            probs = softmax(scores * temperature)
            loss = float(-np.log(probs[np.arange(len(y)), y] + 1e-9).mean())
            accuracy = float((scores.argmax(axis=1) == y).mean())
            print(f"penalty {penalty} temperature {temperature}: cv log-loss {loss:.3f}, "
                  f"cv accuracy {accuracy:.3f}")  # fmt: skip
            if best is None or loss < best[0]:
                best = (loss, penalty, temperature)
    assert best is not None
    _, penalty, temperature = best
    w, b = fit(x, y, len(states), penalty)
    metrics = {"penalty": penalty, "temperature": temperature, "train_samples": len(y)}
    for label, data in (("heldout", valid), ("heldout_degraded", valid_degraded)):
        vx = np.stack([d[0] for d in data])
        vy = np.array([d[1] for d in data])
        probs = softmax((vx @ w + b) * temperature)
        metrics[f"{label}_accuracy"] = round(float((probs.argmax(axis=1) == vy).mean()), 4)
        metrics[f"{label}_crops"] = len(vy)
    print(json.dumps(metrics))
    export(args.out, w * temperature, b * temperature, states, metrics)
    print(f"wrote {args.out}")


def export(
    path: Path, weights: np.ndarray, bias: np.ndarray, states: list[str], meta: dict[str, object]
) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["features", "weights"], ["scaled"]),
            helper.make_node("Add", ["scaled", "bias"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ],
        "us_state",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["n", weights.shape[0]])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["n", len(states)])],
        [
            numpy_helper.from_array(weights.astype(np.float32), "weights"),
            numpy_helper.from_array(bias.astype(np.float32), "bias"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    info = {"states": ",".join(states), "thumbnail": "32x16 Lab", **meta}
    for key, value in info.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


if __name__ == "__main__":
    main()
