#!/usr/bin/env python3
"""Writes small RepVGG- and MobileOne-style models to models/reparam/, each in training form
(parallel branches, each with its own BatchNormalization, in inference mode) and in the form a
person reparameterizes by hand (one convolution per block, computed here with numpy).

Usage: scripts/make_reparam_models.py [--out models/reparam]
"""
import argparse
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

C, H, W = 16, 32, 32
EPS = 1e-5
rng = np.random.default_rng(5)


def bn_params(c):
    return (rng.uniform(0.5, 1.5, c).astype(np.float32), rng.uniform(-0.5, 0.5, c).astype(np.float32),
            rng.uniform(-0.5, 0.5, c).astype(np.float32), rng.uniform(0.5, 1.5, c).astype(np.float32))


class Builder:
    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def name(self, base):
        self.n += 1
        return f"{base}{self.n}"

    def const(self, base, a):
        n = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(a, np.float32), n))
        return n

    def conv(self, x, w, b=None, group=1):
        k = w.shape[2]
        ins = [x, self.const("w", w)] + ([self.const("b", b)] if b is not None else [])
        y = self.name("conv")
        self.nodes.append(helper.make_node("Conv", ins, [y], kernel_shape=[k, k], pads=[k // 2] * 4, group=group))
        return y

    def bn(self, x, p):
        y = self.name("bn")
        ins = [x] + [self.const(s, a) for s, a in zip(["scale", "bias", "mean", "var"], p)]
        self.nodes.append(helper.make_node("BatchNormalization", ins, [y], epsilon=EPS))
        return y

    def op(self, kind, ins):
        y = self.name(kind.lower())
        self.nodes.append(helper.make_node(kind, ins, [y]))
        return y

    def model(self, name, x, y):
        graph = helper.make_graph(self.nodes, name, [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, C, H, W])],
                                  [helper.make_tensor_value_info(y, TensorProto.FLOAT, [1, C, H, W])], self.inits)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="kiln-reparam", ir_version=8)


def fold(w, p):
    """A conv weight [m, c, k, k] (bias 0) followed by BN, as one weight and bias."""
    scale, bias, mean, var = p
    s = scale / np.sqrt(var + EPS)
    return w * s[:, None, None, None], bias - mean * s


def centered(w, k):
    """A kernel embedded at the center of a k×k one."""
    out = np.zeros(w.shape[:2] + (k, k), np.float32)
    o = (k - w.shape[2]) // 2
    out[:, :, o:o + w.shape[2], o:o + w.shape[3]] = w
    return out


def identity(c, cg):
    w = np.zeros((c, cg, 1, 1), np.float32)
    for i in range(c):
        w[i, i % cg, 0, 0] = 1.0
    return w


def block(train, deploy, xt, xd, branches, group, k):
    """branches: list of (weight or None for identity, bn params). Sums the branches in training form,
    merges them into one conv by hand in deployed form; ReLU after both."""
    cg = C // group
    outs, wsum, bsum = [], np.zeros((C, cg, k, k), np.float32), np.zeros(C, np.float32)
    for w, p in branches:
        y = xt if w is None else train.conv(xt, w, group=group)
        outs.append(train.bn(y, p))
        fw, fb = fold(identity(C, cg) if w is None else w, p)
        wsum += centered(fw, k)
        bsum += fb
    acc = outs[0]
    for o in outs[1:]:
        acc = train.op("Add", [acc, o])
    return train.op("Relu", [acc]), deploy.op("Relu", [deploy.conv(xd, wsum, bsum, group=group)])


def weight(m, cg, k):
    return rng.normal(0, 0.3, (m, cg, k, k)).astype(np.float32)


def repvgg(blocks=4):
    train, deploy = Builder(), Builder()
    xt = xd = "x"
    for _ in range(blocks):
        branches = [(weight(C, C, 3), bn_params(C)), (weight(C, C, 1), bn_params(C)), (None, bn_params(C))]
        xt, xd = block(train, deploy, xt, xd, branches, 1, 3)
    return train.model("repvgg", "x", xt), deploy.model("repvgg_deploy", "x", xd)


def mobileone(blocks=2, k_branches=3):
    train, deploy = Builder(), Builder()
    xt = xd = "x"
    for _ in range(blocks):
        dw = [(weight(C, 1, 3), bn_params(C)) for _ in range(k_branches)]
        dw += [(weight(C, 1, 1), bn_params(C)), (None, bn_params(C))]
        xt, xd = block(train, deploy, xt, xd, dw, C, 3)
        pw = [(weight(C, C, 1), bn_params(C)) for _ in range(k_branches)] + [(None, bn_params(C))]
        xt, xd = block(train, deploy, xt, xd, pw, 1, 1)
    return train.model("mobileone", "x", xt), deploy.model("mobileone_deploy", "x", xd)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).parent.parent / "models" / "reparam"))
    out = Path(ap.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    for name, (train, deploy) in [("repvgg", repvgg()), ("mobileone", mobileone())]:
        for suffix, m in [("train", train), ("deploy", deploy)]:
            onnx.checker.check_model(m)
            onnx.save(m, out / f"{name}_{suffix}.onnx")
            print(f"wrote {out / f'{name}_{suffix}.onnx'} ({len(m.graph.node)} nodes)")


if __name__ == "__main__":
    main()
