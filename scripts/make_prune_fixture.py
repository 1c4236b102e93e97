#!/usr/bin/env python3
"""Writes models/prune/residual_zero.onnx: a small residual CNN (a stem and two bottleneck
blocks, BatchNorm after every Conv, then global pooling and a Gemm) with planted zero groups —
channels whose every producing parameter (Conv filter and bias, BatchNorm scale and shift) is
exactly zero: two in the residual stream (zero in the stem and in both blocks' last Conv) and
one inside each bottleneck. Beside it, residual_zero.input.npy and residual_zero.output.npy:
ONNX Runtime's output on a seeded input, the reference `kiln prune` must keep.

Usage: scripts/make_prune_fixture.py [--out models/prune]
"""
import argparse
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(19)
STREAM, MID = 16, 8
STREAM_ZERO = [3, 11]
MID_ZERO = {"block1": 2, "block2": 5}


class Builder:
    def __init__(self):
        self.nodes, self.inits = [], []

    def const(self, name, a):
        self.inits.append(numpy_helper.from_array(np.asarray(a, np.float32), name))
        return name

    def conv_bn(self, name, x, c_in, c_out, k, zero=(), relu=True):
        w = rng.normal(0, (2.0 / (c_in * k * k)) ** 0.5, (c_out, c_in, k, k)).astype(np.float32)
        b = rng.uniform(-0.1, 0.1, c_out).astype(np.float32)
        scale = rng.uniform(0.5, 1.5, c_out).astype(np.float32)
        shift = rng.uniform(-0.2, 0.2, c_out).astype(np.float32)
        mean = rng.uniform(-0.2, 0.2, c_out).astype(np.float32)
        var = rng.uniform(0.5, 1.5, c_out).astype(np.float32)
        for c in zero:
            w[c], b[c], scale[c], shift[c] = 0, 0, 0, 0
        pads = [k // 2] * 4
        self.nodes.append(helper.make_node("Conv", [x, self.const(f"{name}.w", w), self.const(f"{name}.b", b)],
                                           [f"{name}.conv"], name=name, pads=pads))
        ins = [f"{name}.conv"] + [self.const(f"{name}.bn.{p}", a) for p, a in
                                  [("scale", scale), ("shift", shift), ("mean", mean), ("var", var)]]
        self.nodes.append(helper.make_node("BatchNormalization", ins, [f"{name}.bn"], name=f"{name}.bn"))
        if not relu:
            return f"{name}.bn"
        self.nodes.append(helper.make_node("Relu", [f"{name}.bn"], [f"{name}.relu"], name=f"{name}.relu"))
        return f"{name}.relu"


def build():
    b = Builder()
    x = b.conv_bn("stem", "input", 3, STREAM, 3, zero=STREAM_ZERO)
    for block in ["block1", "block2"]:
        mid_zero = [MID_ZERO[block]]
        y = b.conv_bn(f"{block}.a", x, STREAM, MID, 1, zero=mid_zero if block == "block2" else ())
        y = b.conv_bn(f"{block}.b", y, MID, MID, 3, zero=mid_zero if block == "block1" else ())
        y = b.conv_bn(f"{block}.c", y, MID, STREAM, 1, zero=STREAM_ZERO, relu=False)
        b.nodes.append(helper.make_node("Add", [y, x], [f"{block}.sum"], name=f"{block}.add"))
        b.nodes.append(helper.make_node("Relu", [f"{block}.sum"], [f"{block}.out"], name=f"{block}.out"))
        x = f"{block}.out"
    b.nodes.append(helper.make_node("GlobalAveragePool", [x], ["pooled"], name="pool"))
    b.nodes.append(helper.make_node("Flatten", ["pooled"], ["flat"], name="flatten", axis=1))
    fc = rng.normal(0, 0.3, (10, STREAM)).astype(np.float32)
    b.nodes.append(helper.make_node("Gemm", ["flat", b.const("fc.w", fc), b.const("fc.b", np.zeros(10))],
                                    ["logits"], name="fc", transB=1))
    graph = helper.make_graph(b.nodes, "residual_zero",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 16, 16])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])], b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="make_prune_fixture")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="models/prune")
    out = Path(ap.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    model = build()
    path = out / "residual_zero.onnx"
    onnx.save(model, path)
    x = np.random.default_rng(7).uniform(-1, 1, (1, 3, 16, 16)).astype(np.float32)
    y = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    np.save(out / "residual_zero.input.npy", x)
    np.save(out / "residual_zero.output.npy", y)
    planted = {"stream": STREAM_ZERO, "bottleneck": MID_ZERO, "units": len(STREAM_ZERO) + len(MID_ZERO)}
    (out / "residual_zero.json").write_text(json.dumps(planted, indent=1) + "\n")
    print(f"wrote {path} and its reference output {y.ravel()[:3]}...")


if __name__ == "__main__":
    main()
