#!/usr/bin/env python3
"""Checks Kiln's ONNX export with ONNX Runtime: for every model, `kiln opt IN -o OUT` and then
ONNX Runtime on OUT must give what ONNX Runtime gives on IN.

Models: the nine light models (with the fixture spec's seeded weights and exposed logits; rel L2 <= 1e-4)
and every conformance case Kiln passes (ONNX's rtol/atol). A conformance case that ONNX Runtime itself
cannot run or gets wrong on IN says nothing about export and is reported as `ort-cannot`.
Exit status 1 if any exported model disagrees or cannot be loaded where the original could.

Usage: scripts/ort_roundtrip.py --kiln target/release/kiln [--conformance .cache/conformance/node]
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, str(Path(__file__).parent))
from make_light_fixtures import MODELS, ort_run, randomized  # noqa: E402


def kiln_opt(kiln: str, src: Path, dst: Path):
    r = subprocess.run([kiln, "opt", str(src), "-o", str(dst)], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"kiln opt failed: {r.stderr.strip()}")


def rel_l2(a, b) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def light(kiln: str, tmp: Path) -> list[str]:
    failures = []
    for path in sorted(MODELS.glob("*.onnx")):
        model, feeds, _, outputs, logits, _ = randomized(path)
        names = outputs + ([logits] if logits not in outputs else [])
        src, dst = tmp / f"{path.stem}.in.onnx", tmp / f"{path.stem}.out.onnx"
        src.write_bytes(model.SerializeToString())
        want = ort_run(src.read_bytes(), names, feeds)
        try:
            kiln_opt(kiln, src, dst)
            got = ort_run(dst.read_bytes(), names, feeds)
            errs = [rel_l2(g, w) for g, w in zip(got, want)]
            ok = all(e <= 1e-4 for e in errs)
            print(f"light {path.stem:14} {'ok' if ok else 'MISMATCH'}  worst rel L2 {max(errs):.2e}")
        except Exception as e:  # noqa: BLE001 — any failure is a finding to report
            ok = False
            print(f"light {path.stem:14} ERROR {e}")
        if not ok:
            failures.append(f"light/{path.stem}")
    return failures


def load_set(case: Path, prefix: str):
    out = []
    for ds in sorted(case.glob("test_data_set_*")):
        tensors, k = [], 0
        while (ds / f"{prefix}_{k}.pb").exists():
            t = onnx.TensorProto()
            t.ParseFromString((ds / f"{prefix}_{k}.pb").read_bytes())
            tensors.append(numpy_helper.to_array(t))
            k += 1
        out.append(tensors)
    return out


def close(got, want, rtol, atol) -> bool:
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return False
    if want.dtype.kind in "fc":
        return bool(np.allclose(got, want, rtol=rtol, atol=atol, equal_nan=True))
    return bool(np.array_equal(got, want))


def conformance(kiln: str, root: Path, tmp: Path) -> tuple[list[str], int, int]:
    report = subprocess.run([kiln, "conformance", str(root), "--json"], capture_output=True, text=True)
    cases = [c["name"] for c in json.loads(report.stdout)["cases"] if c["status"] == "passed"]
    failures, checked, ort_cannot = [], 0, 0
    for name in cases:
        case = root / name
        meta = json.loads((case / "meta.json").read_text())
        src = case / "model.onnx"
        m = onnx.load(str(src))
        in_names = [i.name for i in m.graph.input if i.name not in {t.name for t in m.graph.initializer}]
        out_names = [o.name for o in m.graph.output]
        sets = list(zip(load_set(case, "input"), load_set(case, "output")))
        try:
            ref = [ort_run(src.read_bytes(), out_names, dict(zip(in_names, ins))) for ins, _ in sets]
            if not all(close(g, w, meta["rtol"], meta["atol"]) for r, (_, outs) in zip(ref, sets) for g, w in zip(r, outs)):
                raise ValueError("ONNX Runtime disagrees with the expected outputs")
        except Exception:  # noqa: BLE001 — ORT cannot judge this case
            ort_cannot += 1
            continue
        checked += 1
        dst = tmp / f"{name}.onnx"
        try:
            kiln_opt(kiln, src, dst)
            for r, (ins, _) in zip(ref, sets):
                got = ort_run(dst.read_bytes(), out_names, dict(zip(in_names, ins)))
                if not all(close(g, w, meta["rtol"], meta["atol"]) for g, w in zip(got, r)):
                    raise ValueError("outputs differ from ONNX Runtime on the original")
        except Exception as e:  # noqa: BLE001
            failures.append(name)
            print(f"conformance {name}: {str(e).splitlines()[0][:200]}")
    return failures, checked, ort_cannot


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kiln", default="target/release/kiln")
    ap.add_argument("--conformance", default=".cache/conformance/node")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        failures = light(args.kiln, tmp)
        conf_failures, checked, ort_cannot = conformance(args.kiln, Path(args.conformance), tmp)
    failures += conf_failures
    print(f"export round trip through ONNX Runtime: 9 light models, {checked} conformance cases checked "
          f"({ort_cannot} passing cases ONNX Runtime cannot run or gets wrong itself)")
    print(f"{9 + checked - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
