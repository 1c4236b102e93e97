//! The memory check before a run: the peak bytes of live values, from the inferred types alone,
//! against what the machine has (`MemAvailable` in `/proc/meminfo`, else a fixed cap) and the
//! `max_total_bytes` limit; and the cap on inputs Kiln generates itself. A dim
//! typo like `--dim batch=100000000` is refused with the value that would need too much, before
//! anything is allocated.

use crate::KilnError;
use kiln_ir::{Graph, Limits, Op, TensorType, ValueRef};
use std::collections::HashMap;

/// The cap used when `/proc/meminfo` cannot be read: 8 GiB.
pub const FALLBACK_LIMIT: u64 = 8 << 30;

/// The largest input `kiln run` and `kiln bench` generate themselves: 256 MiB. A model that
/// declares a dim of 2^31 would otherwise get an 8 GiB input made up for it.
pub const DEFAULT_GENERATED_INPUT_BYTES: u64 = 256 << 20;

/// How much memory a run may use, and where that number came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    pub bytes: u64,
    pub source: &'static str,
    /// The largest input tensor generated for an input not given.
    pub generated_input_bytes: u64,
}

impl Limit {
    /// `MemAvailable` from `/proc/meminfo` (or [`FALLBACK_LIMIT`]), no more than the current
    /// limits' `max_total_bytes`.
    pub fn from_system() -> Limit {
        Limit::from_limits(&kiln_ir::limits::current())
    }

    /// The smaller of what the machine has available and `limits.max_total_bytes`.
    pub fn from_limits(limits: &Limits) -> Limit {
        let available = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| mem_available(&text))
            .map(|bytes| (bytes, "MemAvailable in /proc/meminfo"))
            .unwrap_or((FALLBACK_LIMIT, "Kiln's fixed cap; /proc/meminfo is unreadable"));
        let (bytes, source) = if limits.max_total_bytes < available.0 {
            (limits.max_total_bytes, "the max_total_bytes limit, set with --max-total-bytes")
        } else {
            available
        };
        Limit { bytes, source, generated_input_bytes: DEFAULT_GENERATED_INPUT_BYTES }
    }

    /// The same, generating inputs of up to `bytes`.
    pub fn generating_up_to(self, bytes: u64) -> Limit {
        Limit { generated_input_bytes: bytes, ..self }
    }
}

fn mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// What a run would hold in memory, by the inferred types.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Estimate {
    /// Every value's bytes added up (what a runner that never frees would hold).
    pub total_bytes: u64,
    /// The most bytes live at once in topological order (inputs and constants stay live).
    pub peak_bytes: u64,
    /// The largest value live at the peak.
    pub largest: Option<(String, TensorType, u64)>,
}

/// Bytes a value of this type occupies; `None` while a dim is symbolic (data-dependent shapes),
/// saturating at `u64::MAX` for absurd shapes.
pub fn value_bytes(ty: &TensorType) -> Option<u64> {
    let dims = ty.concrete_shape()?;
    Some(dims.iter().fold(ty.dtype.size_of() as u64, |acc, &d| acc.saturating_mul(d as u64)))
}

/// Walks the graph in topological order, adding each node's outputs when it runs and dropping
/// intermediates after their last reader. Values of unknown size count as zero.
pub fn estimate(g: &Graph) -> Result<Estimate, KilnError> {
    let order = g.topo_order()?;
    let position: HashMap<_, _> = order.iter().enumerate().map(|(i, &id)| (id, i)).collect();
    let end = order.len();
    let mut last_use: HashMap<ValueRef, usize> = HashMap::new();
    for &id in &order {
        for v in g.node_inputs(id).into_iter().flatten() {
            let at = last_use.entry(v).or_insert(0);
            *at = (*at).max(position[&id]);
        }
    }
    for &o in g.outputs() {
        last_use.insert(o, end);
    }
    let mut frees: HashMap<usize, Vec<ValueRef>> = HashMap::new();
    let mut live: Vec<ValueRef> = Vec::new();
    let (mut total, mut now, mut peak) = (0u64, 0u64, 0u64);
    let mut largest = None;
    let size = |v: ValueRef| value_bytes(g.value_type(v)).unwrap_or(0);
    for (i, &id) in order.iter().enumerate() {
        let node = g.node(id);
        let pinned = matches!(node.op, Op::Input | Op::Constant(_));
        for output in 0..node.outputs.len() {
            let v = ValueRef { node: id, output };
            total = total.saturating_add(size(v));
            now = now.saturating_add(size(v));
            live.push(v);
            if !pinned {
                frees.entry(last_use.get(&v).copied().unwrap_or(i)).or_default().push(v);
            }
        }
        if now > peak {
            peak = now;
            largest = live.iter().copied().max_by_key(|&v| size(v));
        }
        for v in frees.remove(&i).unwrap_or_default() {
            now = now.saturating_sub(size(v));
            live.retain(|&l| l != v);
        }
    }
    let largest = largest.map(|v| (g.value_name(v).to_string(), g.value_type(v).clone(), size(v)));
    Ok(Estimate { total_bytes: total, peak_bytes: peak, largest })
}

/// Refuses a run whose peak exceeds `limit`, naming the largest value at the peak.
pub fn check(g: &Graph, limit: Limit) -> Result<Estimate, KilnError> {
    let e = estimate(g)?;
    if let (true, Some((value, ty, value_bytes))) = (e.peak_bytes > limit.bytes, e.largest.clone()) {
        return Err(KilnError::TooMuchMemory {
            need: e.peak_bytes,
            limit: limit.bytes,
            limit_source: limit.source,
            value,
            ty,
            value_bytes,
        });
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_ir::op::Unary;
    use kiln_ir::{DType, Tensor};

    /// x: f32[n] -> a = Relu(x) -> b = Relu(a) -> out; plus a 4-byte constant.
    fn chain(n: usize) -> Graph {
        let mut g = Graph::new("chain");
        let x = g.add_input("x", TensorType::known(DType::F32, &[n]));
        g.add_const("c", Tensor::scalar(1.0f32));
        let a = g.add("a", Op::Unary(Unary::Relu), &[x]).unwrap();
        let b = g.add("b", Op::Unary(Unary::Relu), &[a]).unwrap();
        g.set_outputs(vec![b]);
        g
    }

    #[test]
    fn peak_counts_values_live_together() {
        let e = estimate(&chain(100)).unwrap();
        // x, c, a, b: 400 + 4 + 400 + 400 bytes in all; a dies once b exists, but both are live
        // while b is computed.
        assert_eq!(e.total_bytes, 1204);
        assert_eq!(e.peak_bytes, 1204);
        assert_eq!(e.largest.map(|(_, _, b)| b), Some(400));
    }

    #[test]
    fn too_large_runs_are_refused_by_name() {
        let limit = Limit { bytes: 1000, source: "test", generated_input_bytes: 1000 };
        assert!(check(&chain(10), limit).is_ok());
        let err = check(&chain(1000), limit).unwrap_err().to_string();
        assert!(err.contains("f32[1000]") && err.contains("3.9 KiB"), "{err}");
    }

    #[test]
    fn meminfo_is_parsed() {
        let text = "MemTotal:       16000000 kB\nMemAvailable:    2000 kB\n";
        assert_eq!(mem_available(text), Some(2_048_000));
        assert_eq!(mem_available("garbage"), None);
        assert!(Limit::from_system().bytes > 0);
    }
}
