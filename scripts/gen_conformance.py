#!/usr/bin/env python3
"""Writes the ONNX node conformance suite (from the pip `onnx` package) as files Kiln's runner reads.

Layout, one folder per case under OUT (default .cache/conformance/node, which git ignores):
    <case>/model.onnx
    <case>/test_data_set_<i>/input_<k>.pb, output_<k>.pb   (TensorProto; sequences etc. as ONNX writes them)
    <case>/meta.json                                         {"rtol": ..., "atol": ...}
A stamp file records the onnx version so an up-to-date cache is reused.
"""
import argparse
import json
import os
import shutil
import sys
import warnings

import onnx
from onnx import numpy_helper
from onnx.backend.test.case.node import collect_testcases

EXPECTED_ONNX = "1.23"


def serialize(value, value_info) -> bytes:
    t = value_info.type
    if t.HasField("sequence_type"):
        return numpy_helper.from_list(value, value_info.name).SerializeToString()
    if t.HasField("map_type"):
        return numpy_helper.from_dict(value, value_info.name).SerializeToString()
    if t.HasField("optional_type"):
        return numpy_helper.from_optional(value, value_info.name).SerializeToString()
    if isinstance(value, onnx.TensorProto):
        return value.SerializeToString()
    return numpy_helper.from_array(value, value_info.name).SerializeToString()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=".cache/conformance/node")
    ap.add_argument("--force", action="store_true", help="regenerate even if the stamp matches")
    args = ap.parse_args()
    if not onnx.__version__.startswith(EXPECTED_ONNX):
        print(f"warning: onnx {onnx.__version__} installed; the floor was set with {EXPECTED_ONNX}.x", file=sys.stderr)
    stamp = os.path.join(args.out, ".stamp")
    if not args.force and os.path.exists(stamp) and open(stamp).read() == onnx.__version__:
        print(f"conformance data for onnx {onnx.__version__} already in {args.out}")
        return 0
    if os.path.exists(args.out):
        shutil.rmtree(args.out)
    os.makedirs(args.out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = collect_testcases(None)
    for case in cases:
        d = os.path.join(args.out, case.name)
        os.makedirs(d)
        with open(os.path.join(d, "model.onnx"), "wb") as f:
            f.write(case.model.SerializeToString())
        with open(os.path.join(d, "meta.json"), "w") as f:
            json.dump({"rtol": case.rtol, "atol": case.atol}, f)
        graph = case.model.graph
        for i, (inputs, outputs) in enumerate(case.data_sets):
            ds = os.path.join(d, f"test_data_set_{i}")
            os.makedirs(ds)
            for j, value in enumerate(inputs):
                with open(os.path.join(ds, f"input_{j}.pb"), "wb") as f:
                    f.write(serialize(value, graph.input[j]))
            for j, value in enumerate(outputs):
                with open(os.path.join(ds, f"output_{j}.pb"), "wb") as f:
                    f.write(serialize(value, graph.output[j]))
    with open(stamp, "w") as f:
        f.write(onnx.__version__)
    print(f"wrote {len(cases)} conformance cases to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
