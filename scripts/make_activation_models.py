#!/usr/bin/env python3
"""Writes one-node-ish ONNX models for measuring activations with `kiln bench` (into
.cache/activations/, outside git): elementwise activations over 1M-element f32 tensors in the
forms exporters write them (SiLU as Sigmoid·x, erf-GELU decomposed into Div/Erf/Add/Mul/Mul,
HardSwish as the ONNX op), and a 3×3 convolution alone and followed by each activation, to see
what an epilogue costs on top of the convolution.

Usage: scripts/make_activation_models.py [--out .cache/activations]
"""
import argparse
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(17)


def activation(x, kind, nodes, inits):
    """Appends `kind` applied to value `x`; returns the output name."""
    def const(name, v):
        inits.append(numpy_helper.from_array(np.asarray(v, np.float32), name))
        return name

    if kind == "silu":
        nodes.append(helper.make_node("Sigmoid", [x], ["sig"]))
        nodes.append(helper.make_node("Mul", [x, "sig"], ["y"]))
    elif kind == "gelu":
        nodes += [
            helper.make_node("Div", [x, const("sqrt2", 2 ** 0.5)], ["g1"]),
            helper.make_node("Erf", ["g1"], ["g2"]),
            helper.make_node("Add", ["g2", const("one", 1.0)], ["g3"]),
            helper.make_node("Mul", [x, "g3"], ["g4"]),
            helper.make_node("Mul", ["g4", const("half", 0.5)], ["y"]),
        ]
    elif kind == "hardswish":
        nodes.append(helper.make_node("HardSwish", [x], ["y"]))
    elif kind == "none":
        nodes.append(helper.make_node("Identity", [x], ["y"]))
    else:
        raise ValueError(kind)
    return "y"


def model(name, shape, kind, conv_channels=None):
    nodes, inits = [], []
    x = "x"
    if conv_channels:
        c = conv_channels
        w = rng.normal(0, (2.0 / (9 * c)) ** 0.5, (c, c, 3, 3)).astype(np.float32)
        b = rng.normal(0, 0.1, c).astype(np.float32)
        inits += [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")]
        nodes.append(helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]))
        x = "c"
    activation(x, kind, nodes, inits)
    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(m)
    return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=".cache/activations")
    out = Path(ap.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    for kind in ["silu", "gelu", "hardswish"]:
        onnx.save(model(kind, [1, 16, 256, 256], kind), out / f"{kind}_1m.onnx")
    for kind in ["none", "silu", "gelu", "hardswish"]:
        onnx.save(model(f"conv_{kind}", [1, 64, 56, 56], kind, conv_channels=64), out / f"conv_{kind}.onnx")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
