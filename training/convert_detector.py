"""Derive the box's plate detector from platedet's ONNX model (reproduces models/detector.onnx).

    python training/convert_detector.py [--source platedet.onnx] [--out PATH] [--weights fp16|fp32]

platedet ships an Ultralytics YOLOv8s-seg export: FP16, a fixed 640×640 input, the box decode
(anchor grid, DFL) baked into the graph for exactly 8400 anchors, and a segmentation branch we
never use. On a CPU that costs: onnxruntime has few FP16 kernels (the graph runs through Cast
nodes and slow paths), the square input spends ~44 % of a 16:9 frame's compute on padding, and
the mask prototypes and coefficients are computed for nothing. This script:

1. keeps only what the box head needs: the graph ends at the raw per-anchor head (64 DFL bins
   for the four box sides, then one logit per class: ``1×(64+classes)×anchors``); the proto
   branch, the mask-coefficient convolutions and the in-graph decode are dropped.
   ``appliance/_recognition/detector.py`` decodes the few anchors above the score threshold in
   NumPy (same maths as Ultralytics' ``make_anchors`` + DFL);
2. makes the input size dynamic (``1×3×height×width``, multiples of 32): every remaining op is
   convolutional or reshapes with -1, so the detector letterboxes each frame to its own aspect
   ratio (1280×720 → 640×384 instead of 640×640) and can run at a smaller side;
3. computes in float32. With ``--weights fp16`` (the default, half the file) the weights stay
   stored as FP16 behind Cast nodes, which onnxruntime constant-folds to FP32 when it loads the
   session, so the graph runs in FP32 either way; ``--weights fp32`` stores them as FP32.

Nothing is retrained: the weights are platedet's, bit for bit (FP16 → FP32 is exact).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "appliance" / "_recognition" / "models" / "detector.onnx"
#: the raw head: per anchor, 4×16 DFL bins then the class logits, before any decode
RAW_HEAD = "/model.22/Concat_4_output_0"
#: what our graph calls its one output
HEAD_NAME = "head"


def platedet_model() -> Path:
    spec = importlib.util.find_spec("platedet")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("install platedet first: pip install --no-deps platedet==0.0.2")
    return Path(next(iter(spec.submodule_search_locations))) / "artifacts" / "platedet.onnx"


def convert(source: Path, weights: str) -> onnx.ModelProto:
    model = onnx.load(str(source))
    graph = model.graph
    producers = {out: node for node in graph.node for out in node.output}
    if RAW_HEAD not in producers:
        raise SystemExit(f"{source} has no {RAW_HEAD}: not the YOLOv8 export this script knows")

    # 1. Keep only the nodes the raw head depends on.
    needed: set[str] = set()
    stack = [RAW_HEAD]
    while stack:
        name = stack.pop()
        node = producers.get(name)
        if node is None or id(node) in needed:
            continue
        needed.add(id(node))
        stack.extend(i for i in node.input if i)
    nodes = [n for n in graph.node if id(n) in needed]
    used_inputs = {i for n in nodes for i in n.input}
    initializers = [t for t in graph.initializer if t.name in used_inputs]

    # 3. FP32 compute: FP16 weights become FP32 (or stay stored FP16 behind a Cast that
    # onnxruntime folds at load time); casts to FP16 become casts to FP32 (no-ops ORT drops).
    new_inits: list[onnx.TensorProto] = []
    casts: list[onnx.NodeProto] = []
    for tensor in initializers:
        if tensor.data_type != TensorProto.FLOAT16:
            new_inits.append(tensor)
            continue
        array = numpy_helper.to_array(tensor)
        if weights == "fp32" or (array.ndim <= 1 and array.size <= 4):
            new_inits.append(numpy_helper.from_array(array.astype(np.float32), tensor.name))
        else:
            stored = f"{tensor.name}_fp16"
            new_inits.append(numpy_helper.from_array(array, stored))
            casts.append(helper.make_node("Cast", [stored], [tensor.name], to=TensorProto.FLOAT))
    for node in nodes:
        if node.op_type == "Cast":
            for attribute in node.attribute:
                if attribute.name == "to" and attribute.i == TensorProto.FLOAT16:
                    attribute.i = TensorProto.FLOAT
        for attribute in node.attribute:
            if attribute.name == "value" and attribute.t.data_type == TensorProto.FLOAT16:
                array = numpy_helper.to_array(attribute.t).astype(np.float32)
                attribute.t.CopyFrom(numpy_helper.from_array(array))

    # 2. Dynamic input; one output, the raw head.
    classes = len(_names(model))
    image = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, "height", "width"])
    head = helper.make_tensor_value_info(HEAD_NAME, TensorProto.FLOAT, [1, 64 + classes, "anchors"])
    rename = helper.make_node("Identity", [RAW_HEAD], [HEAD_NAME])
    new_graph = helper.make_graph(
        casts + nodes + [rename], "platedet_boxes", [image], [head], new_inits
    )
    out = helper.make_model(new_graph, opset_imports=list(model.opset_import))
    out.ir_version = model.ir_version
    out.producer_name = "alprbox training/convert_detector.py"
    metadata = {p.key: p.value for p in model.metadata_props}
    metadata.update(
        {
            "head": "yolov8-raw",  # detector.py: DFL bins + class logits, decoded in NumPy
            "dfl_bins": "16",
            "strides": "8,16,32",
            "source": "platedet 0.0.2 artifacts/platedet.onnx",
            "source_sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
            "imgsz": "dynamic (multiples of 32)",
        }
    )
    helper.set_model_props(out, metadata)
    onnx.checker.check_model(out, full_check=True)
    return out


def _names(model: onnx.ModelProto) -> list[str]:
    import ast

    for prop in model.metadata_props:
        if prop.key == "names":
            return list(ast.literal_eval(prop.value).values())
    raise SystemExit("the source model names no classes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=None, help="platedet.onnx (default: wheel)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--weights", choices=("fp16", "fp32"), default="fp16")
    args = parser.parse_args()
    source = args.source or platedet_model()
    model = convert(source, args.weights)
    onnx.save(model, str(args.out))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB) from {source}")


if __name__ == "__main__":
    main()
