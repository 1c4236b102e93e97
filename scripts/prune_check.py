#!/usr/bin/env python3
"""Checks `kiln prune` end to end under ONNX Runtime.

1. models/prune/residual_zero.onnx at --ratio 0: every planted zero unit is removed and ONNX
   Runtime gives the reference output (relative L2 <= 1e-6).
2. Every light model and every reparam model at --ratio 0.3 (uniform) and at --ratio 0.5
   --allocation dp: ONNX Runtime loads and runs the pruned model, with the original's input
   and output names and shapes, and the FLOPs (as `kiln prune --json` counts them) drop by at
   least 95% of the ratio.

Prints one line per run and a summary; exits non-zero if any check fails.
Usage: scripts/prune_check.py [--kiln target/release/kiln] [--models a,b] [--configs 0.3,0.5dp]
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = {"0.3": ["--ratio", "0.3"], "0.5dp": ["--ratio", "0.5", "--allocation", "dp"]}


def session(path):
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def ports(s):
    return ([(i.name, i.shape) for i in s.get_inputs()], [(o.name, o.shape) for o in s.get_outputs()])


def feed(s, seed=0):
    rng = np.random.default_rng(seed)
    return {i.name: rng.uniform(-1, 1, [d if isinstance(d, int) else 1 for d in i.shape]).astype(np.float32)
            for i in s.get_inputs()}


def prune(kiln, model, out, args):
    start = time.time()
    p = subprocess.run([kiln, "prune", str(model), "-o", str(out), "--json", *args], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(p.stderr.strip())
    return json.loads(p.stdout), time.time() - start


def zero_fixture(kiln, tmp):
    model = ROOT / "models/prune/residual_zero.onnx"
    planted = json.loads((ROOT / "models/prune/residual_zero.json").read_text())["units"]
    report, secs = prune(kiln, model, tmp / "zero.onnx", ["--ratio", "0"])
    zero = sum(g["zero_removed"] for g in report["groups"])
    x = np.load(ROOT / "models/prune/residual_zero.input.npy")
    want = np.load(ROOT / "models/prune/residual_zero.output.npy")
    got = session(tmp / "zero.onnx").run(None, {"input": x})[0]
    err = float(np.linalg.norm(got - want) / np.linalg.norm(want))
    ok = zero == planted and err <= 1e-6
    print(f"{'ok  ' if ok else 'FAIL'} residual_zero ratio 0: {zero} of {planted} planted zero units removed, "
          f"params {report['params_before']} -> {report['params_after']}, ORT relative L2 {err:.2e}")
    return ok


def check(kiln, model, config, tmp):
    ratio = float(CONFIGS[config][1])
    out = tmp / f"{model.stem}.{config}.onnx"
    try:
        report, secs = prune(kiln, model, out, CONFIGS[config])
        orig, pruned = session(model), session(out)
        same_ports = ports(orig) == ports(pruned)
        inputs = feed(orig)
        want, got = orig.run(None, inputs), pruned.run(None, inputs)
        shapes = [a.shape for a in want] == [b.shape for b in got]
    except Exception as e:  # noqa: BLE001 - every failure is reported per model
        print(f"FAIL {model.stem:<18} {config:<6} {str(e).splitlines()[0] if str(e) else type(e).__name__}")
        return False, None
    drop = 1 - report["flops_after"] / report["flops_before"]
    ok = same_ports and shapes and drop >= 0.95 * ratio
    whole = sum(g["blocked_units"] for g in report["groups"])
    units = sum(g["units"] for g in report["groups"])
    print(f"{'ok  ' if ok else 'FAIL'} {model.stem:<18} {config:<6} FLOPs -{100 * drop:5.1f}%  params "
          f"-{100 * (1 - report['params_after'] / report['params_before']):5.1f}%  distortion "
          f"{report['distortion']['after']:.3f}  units {units} ({whole} left whole)  {secs:5.1f} s"
          f"{'' if same_ports else '  PORTS DIFFER'}")
    return ok, drop


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", default=str(ROOT / "target/release/kiln"))
    ap.add_argument("--models", default="")
    ap.add_argument("--configs", default="0.3,0.5dp")
    a = ap.parse_args()
    models = sorted((ROOT / "models/light").glob("*.onnx")) + sorted((ROOT / "models/reparam").glob("*.onnx"))
    if a.models:
        models = [m for m in models if m.stem in a.models.split(",")]
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        results = [zero_fixture(a.kiln, tmp)]
        for config in a.configs.split(","):
            for m in models:
                results.append(check(a.kiln, m, config, tmp)[0])
    print(f"{sum(results)} of {len(results)} checks pass")
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
