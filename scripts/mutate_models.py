#!/usr/bin/env python3
"""Mutation sweep: hostile ONNX files through `kiln run`, looking for panics, signals, hangs and
memory blow-ups (issue 20).

From seed models (models/light, models/reparam and the conformance cases under
.cache/conformance/node, written by `python3 scripts/gen_conformance.py`) it writes N mutated
models: byte flips and truncation of the serialized file, and structure-aware edits through the
`onnx` package (graph input/output dims incl. 2^31, -5 and 0; attribute values incl. huge, negative,
inf and NaN; op types; opsets; initializer dims and integer values, i.e. the shapes, sizes, repeats
and trip counts fed to Reshape/ConstantOfShape/Expand/Tile/Range/Resize/Pad/Loop; removed and
extra inputs; dangling and cyclic edges). Each runs as

    target/release/kiln run MODEL   (under an address-space cap, RLIMIT_AS, and a wall-clock timeout)

and is classified: ok (exit 0), error (exit 1 with `error:`), panic (exit 101 or "panicked"),
signal (killed by a signal: SIGABRT for a failed allocation, SIGSEGV, SIGKILL at the timeout),
slow (ran longer than --slow seconds). Peak memory is each child's max RSS (wait4).

The sweep is deterministic for a given --seed and bounded: it stops after N models or --budget
seconds, whichever comes first. Models that misbehave are kept under --keep (default
.cache/mutants) with the command that reproduces them; a JSON summary goes to --report.

    python3 scripts/mutate_models.py -n 1000 --budget 1200
"""
import argparse
import json
import math
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import onnx
from onnx import TensorProto, helper

ROOT = Path(__file__).resolve().parent.parent

# Values that break naive size arithmetic.
HOSTILE_INTS = [0, -1, -5, 1, 2, 3, 7, 2**31, 2**31 - 1, -(2**31), 2**32, 2**40, 2**62, 2**63 - 1, -(2**63)]
HOSTILE_FLOATS = [0.0, -0.0, -1.0, 1e-30, 1e30, 3.4e38, float("inf"), float("-inf"), float("nan"), 2.0**31]
OP_TYPES = [
    "Relu", "Add", "MatMul", "Conv", "Reshape", "ConstantOfShape", "Expand", "Range", "Tile", "Resize",
    "Pad", "Shape", "Loop", "Scan", "If", "Slice", "Gather", "Concat", "Split", "Transpose", "Squeeze",
    "Unsqueeze", "Softmax", "Gemm", "MaxPool", "AveragePool", "ReduceSum", "TopK", "NonZero", "Where",
    "Cast", "Flatten", "CumSum", "ScatterND", "GatherND", "Einsum", "NotAnOp",
]


def seeds(conformance_dir: Path):
    light = sorted((ROOT / "models" / "light").glob("*.onnx"))
    reparam = sorted((ROOT / "models" / "reparam").glob("*.onnx"))
    conf = sorted(conformance_dir.glob("*/model.onnx"))
    return light + reparam, conf


# ---------------------------------------------------------------- structure-aware mutations


def all_graphs(g):
    """The graph and every nested graph (If/Loop/Scan bodies)."""
    yield g
    for n in g.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                yield from all_graphs(a.g)
            for sub in a.graphs:
                yield from all_graphs(sub)


def all_nodes(m):
    return [(g, n) for g in all_graphs(m.graph) for n in g.node]


def pick_int(rng):
    return rng.choice(HOSTILE_INTS) if rng.random() < 0.8 else rng.randint(-10, 4096)


def mut_dims(m, rng):
    """Edits a dim of a graph input or output (incl. 2^31 and -5), or makes it symbolic."""
    vis = list(m.graph.input) + list(m.graph.output) + list(m.graph.value_info)
    vis = [v for v in vis if v.type.HasField("tensor_type") and v.type.tensor_type.HasField("shape")]
    if not vis:
        return "dims: none"
    v = rng.choice(vis)
    dims = v.type.tensor_type.shape.dim
    if not dims or rng.random() < 0.15:
        d = dims.add()
        d.dim_value = rng.choice([2**31, 1, 3])
        return f"dims: {v.name} gains a dim"
    d = rng.choice(dims)
    r = rng.random()
    if r < 0.6:
        d.dim_value = rng.choice([2**31, 2**31 - 1, -5, 0, 2**40, 2**62, 65536, 1])
    elif r < 0.8:
        d.dim_param = rng.choice(["n", "", "batch", "2^31"])
    else:
        del dims[rng.randrange(len(dims))]
    return f"dims: {v.name}"


def mut_attr(m, rng):
    """Changes, removes or adds an attribute value."""
    nodes = all_nodes(m)
    if not nodes:
        return "attr: none"
    _, n = rng.choice(nodes)
    if not n.attribute or rng.random() < 0.15:
        name = rng.choice(["axis", "axes", "perm", "pads", "kernel_shape", "strides", "group", "mode", "to", "value"])
        n.attribute.append(helper.make_attribute(name, pick_int(rng)))
        return f"attr: {n.op_type} gains {name}"
    a = rng.choice(n.attribute)
    t = a.type
    if rng.random() < 0.1:
        n.attribute.remove(a)
        return f"attr: {n.op_type}.{a.name} removed"
    if t == onnx.AttributeProto.INT:
        a.i = pick_int(rng)
    elif t == onnx.AttributeProto.INTS:
        if a.ints and rng.random() < 0.7:
            a.ints[rng.randrange(len(a.ints))] = pick_int(rng)
        else:
            a.ints.append(pick_int(rng))
    elif t == onnx.AttributeProto.FLOAT:
        a.f = rng.choice(HOSTILE_FLOATS)
    elif t == onnx.AttributeProto.FLOATS:
        if a.floats:
            a.floats[rng.randrange(len(a.floats))] = rng.choice(HOSTILE_FLOATS)
    elif t == onnx.AttributeProto.STRING:
        a.s = rng.choice([b"", b"nonsense", b"constant", b"reflect", b"linear", b"cubic", b"\xff\xfe"])
    elif t == onnx.AttributeProto.TENSOR:
        mut_tensor(a.t, rng)
    elif t == onnx.AttributeProto.GRAPH:
        sub = a.g
        if sub.node:
            del sub.node[rng.randrange(len(sub.node))]
    else:
        a.type = rng.choice([1, 2, 3, 4, 5, 6, 7])
    return f"attr: {n.op_type}.{a.name}"


def mut_tensor(t, rng):
    """Edits a tensor's dims or integer values (the shapes, sizes and counts ops read)."""
    r = rng.random()
    if r < 0.35 and t.dims:
        t.dims[rng.randrange(len(t.dims))] = rng.choice([2**31, -5, 0, 2**40, 3])
    elif r < 0.75:
        if t.data_type in (TensorProto.INT64, TensorProto.INT32):
            arr = onnx.numpy_helper.to_array(t).copy()
            if arr.size:
                flat = arr.reshape(-1)
                bound = 2**31 - 1 if t.data_type == TensorProto.INT32 else 2**63 - 1
                v = max(-bound - 1, min(bound, pick_int(rng)))
                flat[rng.randrange(flat.size)] = v
                t.CopyFrom(onnx.numpy_helper.from_array(arr, t.name))
        elif t.data_type in (TensorProto.FLOAT, TensorProto.DOUBLE):
            arr = onnx.numpy_helper.to_array(t).copy()
            if arr.size:
                flat = arr.reshape(-1)
                flat[rng.randrange(flat.size)] = rng.choice(HOSTILE_FLOATS)
                t.CopyFrom(onnx.numpy_helper.from_array(arr, t.name))
    elif r < 0.9 and t.raw_data:
        cut = rng.randrange(len(t.raw_data) + 1)
        t.raw_data = t.raw_data[:cut]
    else:
        t.data_type = rng.choice([0, 1, 6, 7, 9, 11, 16, 99])
    return t.name


def mut_initializer(m, rng):
    tensors = [t for g in all_graphs(m.graph) for t in g.initializer]
    tensors += [a.t for _, n in all_nodes(m) if n.op_type == "Constant" for a in n.attribute if a.type == 4]
    if not tensors:
        return "initializer: none"
    return f"initializer: {mut_tensor(rng.choice(tensors), rng)}"


def mut_op_type(m, rng):
    nodes = all_nodes(m)
    if not nodes:
        return "op: none"
    _, n = rng.choice(nodes)
    old = n.op_type
    n.op_type = rng.choice(OP_TYPES)
    return f"op: {old} -> {n.op_type}"


def mut_opset(m, rng):
    for o in m.opset_import:
        if o.domain in ("", "ai.onnx"):
            o.version = rng.choice([1, 6, 7, 9, 11, 13, 17, 18, 21, 22, 99, 2**31])
            return f"opset: {o.version}"
    return "opset: none"


def mut_edges(m, rng):
    """Dangling and cyclic edges, dropped and extra inputs, deleted and duplicated nodes."""
    nodes = all_nodes(m)
    if not nodes:
        return "edges: none"
    g, n = rng.choice(nodes)
    r = rng.random()
    if r < 0.2 and n.input:
        n.input[rng.randrange(len(n.input))] = "dangling_value"
        return f"edges: {n.op_type} dangling"
    if r < 0.4 and n.input and n.output:
        n.input[rng.randrange(len(n.input))] = n.output[0]
        return f"edges: {n.op_type} reads its own output"
    if r < 0.55:
        later = [x for x in g.node if x.output]
        if n.input and later:
            n.input[rng.randrange(len(n.input))] = rng.choice(later).output[0]
            return f"edges: {n.op_type} rewired"
    if r < 0.7 and n.input:
        del n.input[rng.randrange(len(n.input))]
        return f"edges: {n.op_type} loses an input"
    if r < 0.8:
        n.input.append(rng.choice(["", n.input[0] if n.input else "x", "dangling_value"]))
        return f"edges: {n.op_type} gains an input"
    if r < 0.9:
        g.node.remove(n)
        return f"edges: {n.op_type} deleted"
    g.node.append(n)
    return f"edges: {n.op_type} duplicated"


STRUCTURED = [
    (mut_dims, 3),
    (mut_attr, 3),
    (mut_initializer, 3),
    (mut_op_type, 1),
    (mut_opset, 1),
    (mut_edges, 2),
]


def byte_flips(data: bytes, rng) -> bytes:
    b = bytearray(data)
    for _ in range(rng.choice([1, 2, 4, 16])):
        if b:
            i = rng.randrange(len(b))
            b[i] = rng.randrange(256) if rng.random() < 0.5 else b[i] ^ (1 << rng.randrange(8))
    return bytes(b)


def mutate(data: bytes, rng) -> tuple[bytes, str]:
    r = rng.random()
    if r < 0.12:
        return byte_flips(data, rng), "bytes: flips"
    if r < 0.18:
        return data[: rng.randrange(len(data) + 1)], "bytes: truncated"
    m = onnx.ModelProto()
    m.ParseFromString(data)
    kinds = [f for f, w in STRUCTURED for _ in range(w)]
    notes = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        notes.append(rng.choice(kinds)(m, rng))
    return m.SerializeToString(), "; ".join(notes)


# ---------------------------------------------------------------- running


def run_one(kiln: Path, model: Path, mem_bytes: int, timeout: float, extra: list[str]):
    """Runs kiln on one model; returns (returncode or -signal, seconds, max RSS bytes, stderr)."""

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (mem_bytes, mem_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    start = time.monotonic()
    p = subprocess.Popen(
        [str(kiln), "run", str(model), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=limit,
    )
    timer = threading.Timer(timeout, lambda: os.kill(p.pid, signal.SIGKILL))
    timer.start()
    stderr = b""
    try:
        # Read stderr to the end (bounded), then reap with wait4 for the child's own rusage.
        stderr = p.stderr.read(1 << 16)
        while p.stderr.read(1 << 16):
            pass
        _, status, usage = os.wait4(p.pid, 0)
    finally:
        timer.cancel()
        p.returncode = 0  # reaped above; keep Popen from waiting again
    secs = time.monotonic() - start
    code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    return code, secs, usage.ru_maxrss * 1024, stderr.decode("utf-8", "replace")


def classify(code: int, secs: float, stderr: str, slow: float) -> str:
    if code == 101 or "panicked" in stderr:
        return "panic"
    if code < 0:
        return "signal"
    if secs > slow:
        return "slow"
    if code == 0:
        return "ok"
    if code == 1 and stderr.startswith("error:"):
        return "error"
    return "other"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=1000, help="number of mutated models (default 1000)")
    ap.add_argument("--seed", type=int, default=20)
    ap.add_argument("--budget", type=float, default=1800, help="stop after this many seconds (default 1800)")
    ap.add_argument("--timeout", type=float, default=20, help="per-run wall-clock kill (default 20 s)")
    ap.add_argument("--slow", type=float, default=10, help="a run longer than this is reported (default 10 s)")
    ap.add_argument("--mem", type=float, default=2.0, help="address-space cap per run, GiB (default 2)")
    ap.add_argument("--kiln", default=str(ROOT / "target" / "release" / "kiln"))
    ap.add_argument("--conformance", default=str(ROOT / ".cache" / "conformance" / "node"))
    ap.add_argument("--keep", default=str(ROOT / ".cache" / "mutants"), help="where misbehaving models are kept")
    ap.add_argument("--report", default=None, help="write the JSON summary here")
    ap.add_argument("--light-share", type=float, default=0.1, help="share of seeds from models/ (default 0.1)")
    ap.add_argument("--kiln-arg", action="append", default=[], help="extra argument for `kiln run`")
    args = ap.parse_args()

    kiln = Path(args.kiln)
    if not kiln.exists():
        print(f"{kiln} does not exist; run `cargo build --release -p kiln` first", file=sys.stderr)
        return 2
    models, conf = seeds(Path(args.conformance))
    if not conf:
        print("no conformance cases; run `python3 scripts/gen_conformance.py` first (using models/ only)", file=sys.stderr)
    if not models and not conf:
        return 2
    rng = random.Random(args.seed)
    keep = Path(args.keep)
    keep.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="kiln-mutants-"))
    mem = int(args.mem * (1 << 30))
    counts: dict[str, int] = {}
    bad = []
    rss = []
    slowest = (0.0, "")
    start = time.monotonic()
    done = 0
    cache: dict[Path, bytes] = {}
    try:
        for i in range(args.n):
            if time.monotonic() - start > args.budget:
                print(f"budget of {args.budget:.0f} s spent after {i} models", file=sys.stderr)
                break
            pool = models if (models and (not conf or rng.random() < args.light_share)) else conf
            seed_path = rng.choice(pool)
            data = cache.setdefault(seed_path, seed_path.read_bytes())
            try:
                mutated, note = mutate(data, rng)
            except Exception as e:  # the onnx package itself refused the edit: count it, keep going
                mutated, note = byte_flips(data, rng), f"bytes: flips (structured edit failed: {type(e).__name__})"
            model = work / f"m{i}.onnx"
            model.write_bytes(mutated)
            code, secs, peak, stderr = run_one(kiln, model, mem, args.timeout, args.kiln_arg)
            kind = classify(code, secs, stderr, args.slow)
            counts[kind] = counts.get(kind, 0) + 1
            rss.append(peak)
            done += 1
            if secs > slowest[0]:
                slowest = (secs, f"m{i} from {seed_path.relative_to(ROOT)} ({note})")
            if kind in ("panic", "signal", "slow", "other"):
                kept = keep / f"m{i}.onnx"
                shutil.copy(model, kept)
                tail = stderr.strip().splitlines()[-3:]
                bad.append({
                    "model": str(kept), "seed": str(seed_path.relative_to(ROOT)), "mutation": note, "kind": kind,
                    "code": code, "seconds": round(secs, 2), "peak_mib": round(peak / 2**20, 1), "stderr": tail,
                })
                print(f"{kind:6} m{i} code {code} {secs:.1f}s {peak / 2**20:.0f} MiB  {seed_path.name}: {note}")
                for line in tail:
                    print(f"         {line[:200]}")
            model.unlink()
            if done % 100 == 0:
                print(f"{done} models, {time.monotonic() - start:.0f} s: {counts}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rss.sort()
    summary = {
        "models": done,
        "seconds": round(time.monotonic() - start, 1),
        "counts": counts,
        "peak_rss_mib": {
            "max": round(rss[-1] / 2**20, 1) if rss else 0,
            "p99": round(rss[int(0.99 * (len(rss) - 1))] / 2**20, 1) if rss else 0,
            "median": round(rss[len(rss) // 2] / 2**20, 1) if rss else 0,
        },
        "slowest": {"seconds": round(slowest[0], 2), "model": slowest[1]},
        "address_space_cap_gib": args.mem,
        "bad": bad,
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "bad"}, indent=2))
    if args.report:
        Path(args.report).write_text(json.dumps(summary, indent=2))
    return 1 if any(counts.get(k) for k in ("panic", "signal", "slow", "other")) else 0


if __name__ == "__main__":
    sys.exit(main())
