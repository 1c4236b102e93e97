"""Builds the ONNX Runtime reference fixtures for the nine ONNX "light" models.

The light models compute every weight as ConstantOfShape(0.02), so their outputs are uniform and
prove nothing. This script gives each model seeded random weights (the spec in
tests/fixtures/light/README.md, which the Rust test re-creates bit for bit), exposes the
pre-softmax logits, runs ONNX Runtime on CPU and writes tests/fixtures/light/<name>/: meta.json
plus one .npy per output.

    python3 scripts/make_light_fixtures.py            # models/light/*.onnx -> fixtures
    python3 scripts/make_light_fixtures.py --copy     # first (re)copy the models from the onnx package
"""

import argparse
import json
import math
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper, shape_inference

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kiln_random import seeded  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models" / "light"
FIXTURES = ROOT / "tests" / "fixtures" / "light"

# Ops a weight passes through unchanged (data input, slot 0) on the way to the op that uses it.
PASS_THROUGH = {"Unsqueeze", "Squeeze", "Reshape", "Flatten", "Identity"}


def copy_models():
    src = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
    MODELS.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.glob("light_*.onnx")):
        shutil.copyfile(f, MODELS / f.name.removeprefix("light_"))


def file_name(value_name: str) -> str:
    """`kiln run`'s rule: characters outside [A-Za-z0-9._-] become '_'."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", value_name) + ".npy"


def he_half_width(fan_in: int) -> float:
    """sqrt(6 / fan_in) computed in f64, then rounded to f32."""
    return float(np.float32(math.sqrt(6.0 / float(fan_in))))


def init_range(op_type: str, slot: int, shape, node) -> tuple[float, float]:
    """(center, half_width) for a weight whose role is input `slot` of `node`; `shape` is the
    weight's shape as that node sees it."""
    if op_type in ("Conv", "ConvTranspose") and slot == 1:
        return 0.0, he_half_width(int(np.prod(shape[1:])))
    if op_type == "Gemm" and slot == 1:
        trans_b = any(a.name == "transB" and a.i for a in node.attribute)
        return 0.0, he_half_width(shape[1] if trans_b else shape[0])
    if op_type == "MatMul" and slot == 1:
        return 0.0, he_half_width(shape[-2])
    if (op_type == "BatchNormalization" and slot in (1, 4)) or op_type == "Mul":
        return 1.0, float(np.float32(0.2))
    return 0.0, float(np.float32(0.1))


def weight_shapes(graph) -> dict:
    """Name -> shape of every weight: float initializers and float ConstantOfShape outputs."""
    inits = {i.name: i for i in graph.initializer}
    weights = {i.name: list(i.dims) for i in graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    for n in graph.node:
        if n.op_type != "ConstantOfShape":
            continue
        value = next((a.t for a in n.attribute if a.name == "value"), None)
        if value is not None and value.data_type != onnx.TensorProto.FLOAT:
            continue
        weights[n.output[0]] = numpy_helper.to_array(inits[n.input[0]]).tolist()
    return weights


def replace_constant_of_shape(model, weights):
    """Turns each float ConstantOfShape into a (zero, for now) initializer of the same name."""
    g = model.graph
    kept = [n for n in g.node if not (n.op_type == "ConstantOfShape" and n.output[0] in weights)]
    added = {n.output[0] for n in g.node} - {o for n in kept for o in n.output}
    del g.node[:]
    g.node.extend(kept)
    for name in sorted(added):
        g.initializer.append(numpy_helper.from_array(np.zeros(weights[name], np.float32), name))
        if model.ir_version < 4:  # old models list every initializer among the inputs
            g.input.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, weights[name]))


def roles(model, weights) -> dict:
    """Name -> (center, half_width) for every weight that something reads, by its first consumer."""
    inferred = shape_inference.infer_shapes(model, data_prop=True).graph
    shapes = {name: list(s) for name, s in weights.items()}
    for v in list(inferred.value_info) + list(inferred.output):
        shapes[v.name] = [d.dim_value for d in v.type.tensor_type.shape.dim]
    consumers = {}
    for n in model.graph.node:
        for slot, x in enumerate(n.input):
            consumers.setdefault(x, []).append((n, slot))
    out = {}
    for name in weights:
        value = name
        if value not in consumers:
            continue
        node, slot = consumers[value][0]
        while node.op_type in PASS_THROUGH and slot == 0:
            value = node.output[0]
            node, slot = consumers[value][0]
        out[name] = init_range(node.op_type, slot, shapes[value], node)
    return out


def logits_name(graph) -> str:
    out = graph.output[0].name
    producer = next(n for n in graph.node if out in n.output)
    return producer.input[0] if producer.op_type == "Softmax" else out


def to_json(meta: dict) -> str:
    """One top-level key per line, and one weight per line: small, diffable fixtures."""
    lines = []
    for key, value in meta.items():
        if key == "weights":
            body = ",\n".join(f"  {json.dumps(w)}: {json.dumps(r)}" for w, r in value.items())
            lines.append(f' "{key}": {{\n{body}\n }}')
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def randomized(path: Path):
    """The model with its weights randomized per the spec and its logits exposed, plus the seeded
    feeds, the original output names, the logits name and the weight ranges."""
    model = onnx.load(str(path))
    g = model.graph
    weights = weight_shapes(g)
    replace_constant_of_shape(model, weights)
    ranges = roles(model, weights)
    for init in g.initializer:
        if init.name in weights:
            center, half = ranges.get(init.name, (0.0, 0.1))
            init.CopyFrom(numpy_helper.from_array(seeded(np.float32, weights[init.name], init.name, center, half),
                                                  init.name))
    logits = logits_name(g)
    outputs = [o.name for o in g.output]
    if logits not in outputs:
        g.output.append(helper.make_tensor_value_info(logits, onnx.TensorProto.FLOAT, None))

    init_names = {i.name for i in g.initializer}
    inputs = []
    feeds = {}
    for i in g.input:
        if i.name in init_names:
            continue
        shape = [d.dim_value for d in i.type.tensor_type.shape.dim]
        feeds[i.name] = seeded(np.float32, shape, i.name, 0.0, 1.0)
        # `head` lets the Rust side check its seeded input before blaming a kernel.
        inputs.append({"name": i.name, "shape": shape, "dtype": "f32", "head": feeds[i.name].ravel()[:4].tolist()})
    return model, feeds, inputs, outputs, logits, ranges


def ort_run(model_bytes: bytes, names, feeds):
    """ONNX Runtime on CPU with graph optimizations off: the reference as written, not as ORT rewrites it."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3  # unused __SHAPE initializers are expected
    sess = ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])
    return sess.run(names, feeds)


def make_fixture(path: Path):
    name = path.stem
    model, feeds, inputs, outputs, logits, ranges = randomized(path)
    names = outputs + ([logits] if logits not in outputs else [])
    results = ort_run(model.SerializeToString(), names, feeds)

    out_dir = FIXTURES / name
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob("*.npy"):
        stale.unlink()
    for n, r in zip(names, results):
        np.save(out_dir / file_name(n), r)
    meta = {
        "model": f"models/light/{path.name}",
        "inputs": inputs,
        "outputs": [{"name": n, "file": file_name(n)} for n in outputs],
        "logits": {"name": logits, "file": file_name(logits)},
        "weights": {w: list(r) for w, r in sorted(ranges.items())},
    }
    (out_dir / "meta.json").write_text(to_json(meta))
    lg = results[names.index(logits)].ravel()
    print(f"{name:14} weights {len(ranges):4}  logits {logits!r:22} std {lg.std():.4g}  "
          f"argmax {int(lg.argmax())}  outputs {[r.shape for r in results]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copy", action="store_true", help="copy the light models out of the onnx package first")
    ap.add_argument("models", nargs="*", help="model names (default: all in models/light)")
    args = ap.parse_args()
    if args.copy:
        copy_models()
    paths = [MODELS / f"{m}.onnx" for m in args.models] or sorted(MODELS.glob("*.onnx"))
    print(f"onnx {onnx.__version__}, onnxruntime {ort.__version__}")
    for p in paths:
        make_fixture(p)


if __name__ == "__main__":
    main()
