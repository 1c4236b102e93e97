#!/usr/bin/env python3
"""Writes the recurrent-layer fixtures: small LSTM/GRU/RNN models with ONNX Runtime's outputs.

Each case is a folder under OUT (default tests/fixtures/recurrent):
    <case>/model.onnx
    <case>/input_<k>.npy    the graph's inputs, in graph order
    <case>/output_<k>.npy   ONNX Runtime's outputs, in graph order
`tests/tests/recurrent_models.rs` runs every case on Kiln's interpreter and JIT and compares.

Cases: PyTorch's bidirectional LSTM (two layers, batch_first) and GRU (PyTorch writes
linear_before_reset=1), exported by torch.onnx's TorchScript exporter with a dynamic sequence
axis; and hand-built ONNX nodes for what PyTorch never writes: layout=1, sequence_lens with
a reverse direction, peepholes, clip, input_forget, parametrized activations, GRU with
linear_before_reset=0, and RNN.

ONNX Runtime refuses layout=1; those cases are checked against the same node at layout 0
between Transposes. With --check KILN, nothing is written: `KILN run` (the JIT) runs every
stored case and is compared with the stored outputs.
"""
import argparse
import io
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def rng(seed):
    return np.random.default_rng(seed)


def uniform(r, shape, scale=0.5):
    return r.uniform(-scale, scale, size=shape).astype(np.float32)


def torch_cases():
    """(name, model bytes, inputs, reference model bytes) for PyTorch's own LSTM and GRU."""
    import torch

    torch.manual_seed(7)
    cases = []
    lstm = torch.nn.LSTM(8, 16, num_layers=2, bidirectional=True, batch_first=True).eval()
    gru = torch.nn.GRU(8, 12, bidirectional=True).eval()
    for name, module, x, dyn in [
        ("torch_lstm_bidirectional", lstm, torch.rand(3, 6, 8) * 2 - 1, {1: "seq"}),
        ("torch_gru_bidirectional", gru, torch.rand(5, 2, 8) * 2 - 1, {0: "seq"}),
    ]:
        f = io.BytesIO()
        outs = ["y", "h"] if isinstance(module, torch.nn.GRU) else ["y", "h", "c"]
        torch.onnx.export(
            module, (x,), f, dynamo=False, opset_version=OPSET, input_names=["x"], output_names=outs,
            dynamic_axes={"x": dyn},
        )
        cases.append((name, f.getvalue(), [x.numpy()], f.getvalue()))
    return cases


def node_model(name, op, attrs, inits, graph_inputs, feeds, n_outputs, node_inputs):
    """One recurrent node; `node_inputs` lists its input names ('' for absent ones). Returns the
    case and, for layout=1 (which ONNX Runtime refuses), the layout-0 model it is checked with:
    the same node between Transposes, its initial states transposed."""
    outs = ["Y", "Y_h", "Y_c"][:n_outputs]

    def build(nodes, inits):
        g = helper.make_graph(
            nodes, name, graph_inputs, [helper.make_empty_tensor_value_info(o) for o in outs],
            [numpy_helper.from_array(v, k) for k, v in inits.items()],
        )
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="make_recurrent_fixtures", ir_version=8)
        return m.SerializeToString()

    model = build([helper.make_node(op, node_inputs, outs, name=name, **attrs)], inits)
    if not attrs.get("layout"):
        return (name, model, feeds, model)
    seq_major = dict(attrs, layout=0)
    ref_inits = {k: (v.transpose(1, 0, 2) if k in ("h0", "c0") else v) for k, v in inits.items()}
    ins = ["X_t" if n == "X" else n for n in node_inputs]
    nodes = [helper.make_node("Transpose", ["X"], ["X_t"], perm=[1, 0, 2])]
    nodes.append(helper.make_node(op, ins, [o + "_t" for o in outs], name=name, **seq_major))
    for o in outs:
        perm = [2, 0, 1, 3] if o == "Y" else [1, 0, 2]
        nodes.append(helper.make_node("Transpose", [o + "_t"], [o], perm=perm))
    return (name, model, feeds, build(nodes, ref_inits))


def helper_cases():
    cases = []
    r = rng(11)
    # LSTM, layout 1 (batch-major), reverse, sequence_lens, peepholes, initial states, clip.
    b, s, i, h = 3, 5, 4, 6
    x = uniform(r, (b, s, i), 1.0)
    lens = np.array([5, 2, 4], dtype=np.int32)
    inits = {
        "W": uniform(r, (1, 4 * h, i)), "R": uniform(r, (1, 4 * h, h)), "B": uniform(r, (1, 8 * h)),
        "lens": lens, "h0": uniform(r, (b, 1, h)), "c0": uniform(r, (b, 1, h)), "P": uniform(r, (1, 3 * h)),
    }
    cases.append(node_model(
        "lstm_layout1_reverse_seqlens_peepholes", "LSTM",
        dict(hidden_size=h, direction="reverse", layout=1, clip=0.9),
        inits, [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["batch", "seq", i])], [x], 3,
        ["X", "W", "R", "B", "lens", "h0", "c0", "P"],
    ))
    # Bidirectional LSTM with input_forget and parametrized activations per direction.
    x = uniform(r, (4, 2, i), 1.0)
    inits = {"W": uniform(r, (2, 4 * h, i)), "R": uniform(r, (2, 4 * h, h)), "B": uniform(r, (2, 8 * h))}
    cases.append(node_model(
        "lstm_bidirectional_input_forget_activations", "LSTM",
        dict(hidden_size=h, direction="bidirectional", input_forget=1,
             activations=["HardSigmoid", "LeakyRelu", "ScaledTanh", "Sigmoid", "Softsign", "Tanh"],
             activation_alpha=[0.3, 0.2, 1.5], activation_beta=[0.4, 0.7]),
        inits, [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["seq", 2, i])], [x], 3,
        ["X", "W", "R", "B"],
    ))
    # GRU, linear_before_reset 0, bidirectional, sequence_lens, initial_h.
    x = uniform(r, (5, 3, i), 1.0)
    inits = {
        "W": uniform(r, (2, 3 * h, i)), "R": uniform(r, (2, 3 * h, h)), "B": uniform(r, (2, 6 * h)),
        "lens": np.array([3, 5, 1], dtype=np.int32), "h0": uniform(r, (2, 3, h)),
    }
    cases.append(node_model(
        "gru_bidirectional_seqlens", "GRU", dict(hidden_size=h, direction="bidirectional"),
        inits, [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["seq", 3, i])], [x], 2,
        ["X", "W", "R", "B", "lens", "h0"],
    ))
    # GRU, linear_before_reset 1, layout 1, Relu/Elu activations, clip.
    x = uniform(r, (2, 4, i), 1.0)
    inits = {"W": uniform(r, (1, 3 * h, i)), "R": uniform(r, (1, 3 * h, h)), "B": uniform(r, (1, 6 * h))}
    cases.append(node_model(
        "gru_layout1_linear_before_reset", "GRU",
        dict(hidden_size=h, linear_before_reset=1, layout=1, clip=1.5, activations=["Sigmoid", "Elu"],
             activation_alpha=[0.8]),
        inits, [helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, "seq", i])], [x], 2,
        ["X", "W", "R", "B"],
    ))
    # RNN, bidirectional, Relu forward and Tanh backward.
    x = uniform(r, (6, 2, i), 1.0)
    inits = {"W": uniform(r, (2, h, i)), "R": uniform(r, (2, h, h)), "B": uniform(r, (2, 2 * h))}
    cases.append(node_model(
        "rnn_bidirectional_relu", "RNN", dict(hidden_size=h, direction="bidirectional", activations=["Relu", "Tanh"]),
        inits, [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["seq", 2, i])], [x], 2,
        ["X", "W", "R", "B"],
    ))
    return cases


def ort_run(model_bytes, inputs):
    sess = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    feeds = {i.name: v for i, v in zip(sess.get_inputs(), inputs)}
    return sess.run(None, feeds)


def kiln_run(kiln, model_path, inputs, names):
    with tempfile.TemporaryDirectory() as d:
        args = [kiln, "run", model_path, "--backend", "jit", "--out", d]
        for n, v in zip(names, inputs):
            p = os.path.join(d, f"in_{n}.npy")
            np.save(p, v)
            args += ["--input", f"{n}={p}"]
        subprocess.run(args, check=True, capture_output=True)
        m = onnx.load(model_path)
        return [np.load(os.path.join(d, f"{o.name}.npy")) for o in m.graph.output]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="tests/fixtures/recurrent")
    ap.add_argument("--check", metavar="KILN", help="compare `KILN run` with the stored cases instead of writing")
    args = ap.parse_args()
    if args.check:
        worst = 0.0
        for case in sorted(os.listdir(args.out)):
            d = os.path.join(args.out, case)
            if not os.path.isdir(d):
                continue
            model = os.path.join(d, "model.onnx")
            names = [i.name for i in onnx.load(model).graph.input]
            inputs = [np.load(os.path.join(d, f"input_{k}.npy")) for k in range(len(names))]
            got = kiln_run(args.check, model, inputs, names)
            for k, a in enumerate(got):
                err = float(np.abs(a - np.load(os.path.join(d, f"output_{k}.npy"))).max())
                worst = max(worst, err)
                print(f"{case} output {k}: max abs diff {err:.2e}")
        return 0 if worst < 1e-4 else 1
    for name, model, inputs, ref in torch_cases() + helper_cases():
        d = os.path.join(args.out, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "model.onnx"), "wb") as f:
            f.write(model)
        for k, v in enumerate(inputs):
            np.save(os.path.join(d, f"input_{k}.npy"), v)
        for k, v in enumerate(ort_run(ref, inputs)):
            np.save(os.path.join(d, f"output_{k}.npy"), v.astype(np.float32))
        print(name, [v.shape for v in inputs])
    return 0


if __name__ == "__main__":
    sys.exit(main())
