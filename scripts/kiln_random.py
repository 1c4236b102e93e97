"""Numpy port of Kiln's seeded generator (`kiln_ir::SeededRng`, `Tensor::seeded`).

Bit-exact with `ir/src/tensor.rs`: SplitMix64 seeded by FNV-1a64(name) ^ 0x4B494C4E; a float draw
is u = (next >> 40) / 2**24 in f32, and a float tensor is center + half_width * (2u - 1) in f32.
Run it directly to print the reference values the Rust tests assert.
"""

import numpy as np

GLOBAL_SEED = 0x4B494C4E
_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_GOLDEN = 0x9E3779B97F4A7C15
_MASK = (1 << 64) - 1


def seed_for_name(name: str) -> int:
    """FNV-1a64 of the name's UTF-8 bytes, xor the global seed."""
    h = _FNV_OFFSET
    for b in name.encode("utf-8"):
        h = ((h ^ b) * _FNV_PRIME) & _MASK
    return h ^ GLOBAL_SEED


def next_u64s(name: str, n: int) -> np.ndarray:
    """The first `n` outputs of `SeededRng::for_name(name).next_u64()`, as uint64."""
    with np.errstate(over="ignore"):
        steps = np.arange(1, n + 1, dtype=np.uint64)
        z = np.uint64(seed_for_name(name)) + steps * np.uint64(_GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def seeded(dtype, shape, name: str, center: float, half_width: float) -> np.ndarray:
    """`Tensor::seeded(dtype, shape, name, center, half_width)`; float dtypes only (weights, inputs)."""
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ValueError(f"seeded: only float dtypes are ported, got {dtype}")
    n = int(np.prod(shape, dtype=np.int64))
    u = (next_u64s(name, n) >> np.uint64(40)).astype(np.float32) / np.float32(1 << 24)
    signed = np.float32(2.0) * u - np.float32(1.0)
    v = np.float32(center) + np.float32(half_width) * signed
    return v.astype(dtype).reshape(shape)


if __name__ == "__main__":
    for name in ["x", "data_0"]:
        print(name, [f"0x{v:016x}" for v in next_u64s(name, 3).tolist()])
    t = seeded(np.float32, [4], "conv1_w_0", 0.0, float(np.float32(0.5)))
    print("seeded(f32, [4], conv1_w_0, 0, 0.5)", t.tolist(), "bits", [f"0x{b:08x}" for b in t.view(np.uint32)])
