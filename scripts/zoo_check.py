#!/usr/bin/env python3
"""Checks Kiln on the model zoo (.cache/zoo, made by scripts/zoo.py) against ONNX Runtime.

For every model: `kiln run MODEL --input ... --out DIR` with `--backend jit` and with `--backend
interp`; every output must be within relative L2 1e-4 of ONNX Runtime's reference output. Then
`kiln bench MODEL --profile --json --runs 3 --no-interp` gives the share of the JIT's time spent in
steps that call the interpreter, and which ops those steps run. Prints one markdown table.

A failure on a (model, backend) in EXPECTED_FAILURES is reported and tolerated; any other failure
makes the exit status 1, and so does an expected failure that now passes (remove it from the
list: the list only shrinks).

Usage: scripts/zoo_check.py [--small] [--models a,b] [--kiln target/release/kiln] [--no-bench] [--json FILE]
"""
import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / ".cache" / "zoo" / "manifest.json"
KILN = ROOT / "target" / "release" / "kiln"
TOLERANCE = 1e-4
BACKENDS = ("jit", "interp")

# "model/backend" -> why it fails today. Each entry is a known defect with its cause; fix the cause
# and delete the entry (zoo_check then insists on it).
EXPECTED_FAILURES: dict[str, str] = {}


def rel_l2(got, want) -> float:
    got, want = np.asarray(got, np.float64).ravel(), np.asarray(want, np.float64).ravel()
    return float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-30))


def message(text: str) -> str:
    """A command's error output on one line."""
    return " ".join(ln.strip() for ln in text.strip().splitlines() if ln.strip())[:600] or "no message"


def input_args(entry):
    return [a for i in entry["inputs"] for a in ("--input", f"{i['name']}={ROOT / i['file']}")]


def run_backend(kiln: Path, entry, backend: str, out: Path, timeout: float):
    """Runs one backend and compares its outputs; returns (ok, worst rel L2 or None, error)."""
    cmd = [str(kiln), "run", str(ROOT / entry["file"]), *input_args(entry), "--backend", backend,
           "--out", str(out)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, None, f"timed out after {timeout:.0f} s"
    if p.returncode != 0:
        return False, None, message(p.stderr or p.stdout)
    worst, errors = 0.0, []
    for o in entry["outputs"]:
        want = np.load(ROOT / o["file"])
        # `kiln run --out` writes DIR/<name>.npy with characters outside [A-Za-z0-9._-] as `_`.
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in o["name"])
        got_path = out / f"{safe}.npy"
        if not got_path.exists():
            errors.append(f"output '{o['name']}' not written")
            continue
        got = np.load(got_path)
        if got.shape != want.shape:
            errors.append(f"output '{o['name']}' has shape {list(got.shape)}, ONNX Runtime's {list(want.shape)}")
            continue
        err = rel_l2(got, want)
        worst = max(worst, err) if not math.isnan(err) else math.inf
        if not err <= TOLERANCE:
            errors.append(f"output '{o['name']}' rel L2 {err:.2e} > {TOLERANCE:g}")
    return not errors, worst, "; ".join(errors)


def interp_share(kiln: Path, entry, timeout: float):
    """From `kiln bench --profile --json`: (share of time in interpreter steps, those steps (ops,
    nodes, share), error)."""
    cmd = [str(kiln), "bench", str(ROOT / entry["file"]), *input_args(entry), "--profile", "--json",
           "--runs", "3", "--warmup", "1", "--no-interp"]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, [], f"bench timed out after {timeout:.0f} s"
    if p.returncode != 0:
        return None, [], message(p.stderr)
    steps = [{k: s[k] for k in ("ops", "nodes", "share")} for s in json.loads(p.stdout)["profile"]
             if s["engine"] == "interpreter"]
    return sum(s["share"] for s in steps), steps, None


def check(kiln: Path, entry, bench: bool, timeout: float):
    """One model's row: both backends against the reference, whether it loads, and (with `bench`)
    the interpreter's share of the JIT's time; `errors` holds each failure's message."""
    row = {"name": entry["name"], "gflop": entry.get("flops", 0) / 1e9, "errors": {}}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kiln-zoo-") as tmp:
        for backend in BACKENDS:
            ok, err, why = run_backend(kiln, entry, backend, Path(tmp) / backend, timeout)
            row[backend], row[f"{backend}_l2"] = ok, err
            if not ok:
                row["errors"][backend] = why
    row["loads"] = loads(kiln, entry, timeout, row["errors"])
    row["share"], row["fallback_steps"] = None, []
    if bench and row["loads"]:
        row["share"], row["fallback_steps"], why = interp_share(kiln, entry, timeout)
        if why:
            row["errors"]["bench"] = why
    row["seconds"] = time.perf_counter() - start
    return row


def loads(kiln: Path, entry, timeout: float, errors) -> bool:
    """Whether `kiln inspect` imports the model and infers its types (its error goes to `errors`)."""
    try:
        p = subprocess.run([str(kiln), "inspect", str(ROOT / entry["file"]), "--json"], capture_output=True,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        errors["load"] = f"kiln inspect timed out after {timeout:.0f} s"
        return False
    if p.returncode != 0:
        errors["load"] = message(p.stderr)
    return p.returncode == 0


def verdicts(rows):
    """Each failure, split into unexpected ones (CI fails), expected ones and stale entries."""
    unexpected, expected, stale = [], [], []
    for r in rows:
        for backend in BACKENDS:
            key = f"{r['name']}/{backend}"
            if not r[backend] and key in EXPECTED_FAILURES:
                expected.append(f"{key}: {r['errors'][backend]} (known: {EXPECTED_FAILURES[key]})")
            elif not r[backend]:
                unexpected.append(f"{key}: {r['errors'][backend]}")
            elif key in EXPECTED_FAILURES:
                stale.append(f"{key} now passes: remove it from EXPECTED_FAILURES in scripts/zoo_check.py")
    return unexpected, expected, stale


def render(rows) -> str:
    yes = lambda b: "yes" if b else "**no**"  # noqa: E731
    l2 = lambda x: "-" if x is None else f"{x:.1e}"  # noqa: E731
    lines = ["| model | GFLOP | loads | JIT | interp | rel L2 JIT | rel L2 interp | interp share | ops on the interpreter | s |",
             "|---|---:|---|---|---|---:|---:|---:|---|---:|"]
    for r in rows:
        share = "-" if r["share"] is None else f"{100 * r['share']:.1f} %"
        lines.append(f"| {r['name']} | {r['gflop']:.2f} | {yes(r['loads'])} | {yes(r['jit'])} | {yes(r['interp'])} | "
                     f"{l2(r['jit_l2'])} | {l2(r['interp_l2'])} | {share} | {', '.join(sorted({op for s in r['fallback_steps'] for op in s['ops']})) or '-'} | "
                     f"{r['seconds']:.1f} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="only the models tagged `small` (CI's subset)")
    ap.add_argument("--models", help="comma-separated model names (default: every model in the manifest)")
    ap.add_argument("--kiln", type=Path, default=KILN, help="the kiln binary (default target/release/kiln)")
    ap.add_argument("--manifest", type=Path, default=MANIFEST, help="scripts/zoo.py's manifest")
    ap.add_argument("--no-bench", action="store_true", help="skip the interpreter-share profile")
    ap.add_argument("--timeout", type=float, default=600, help="seconds allowed to one kiln command")
    ap.add_argument("--json", type=Path, help="also write every row (errors included) to this JSON file")
    args = ap.parse_args()
    if not args.manifest.exists():
        sys.exit(f"{args.manifest} not found: run scripts/zoo.py first")
    if not args.kiln.exists():
        sys.exit(f"{args.kiln} not found: cargo build --release -p kiln")
    manifest = json.loads(args.manifest.read_text())
    names = args.models.split(",") if args.models else list(manifest)
    missing = [n for n in names if n not in manifest]
    if missing:
        sys.exit(f"not in {args.manifest}: {', '.join(missing)} (export them with scripts/zoo.py --models ...)")
    entries = [manifest[n] for n in names if not args.small or "small" in manifest[n]["tags"]]
    rows = []
    for entry in entries:
        row = check(args.kiln, entry, not args.no_bench, args.timeout)
        status = " ".join(f"{b}={'ok' if row[b] else 'FAIL'}" for b in BACKENDS)
        print(f"{entry['name']:24} {status}  {row['seconds']:.1f} s", file=sys.stderr, flush=True)
        rows.append(row)
    print(render(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    unexpected, expected, stale = verdicts(rows)
    bench_errors = [f"{r['name']}/bench: {r['errors']['bench']}" for r in rows if "bench" in r["errors"]]
    for title, items in (("Unexpected failures", unexpected), ("Expected failures", expected),
                         ("Stale expected failures", stale), ("Profile errors", bench_errors)):
        if items:
            print(f"\n{title}:\n" + "\n".join(f"- {i}" for i in items))
    passed = sum(r[b] for r in rows for b in BACKENDS)
    print(f"\nzoo: {passed} checks passed, {len(unexpected)} unexpected failures, {len(expected)} expected failures, "
          f"{len(stale)} stale expected failures")
    sys.exit(1 if unexpected or stale else 0)


if __name__ == "__main__":
    main()
