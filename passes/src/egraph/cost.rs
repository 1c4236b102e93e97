//! The cost model and extraction. A node costs its FLOPs, plus the bytes it moves (inputs read,
//! outputs written) times [`BYTE_WEIGHT`], plus [`KERNEL_COST`] per kernel launched; reshapes and
//! other metadata ops are nearly free, constants cost a little per byte so smaller models win
//! ties. Extraction is greedy but DAG-aware: a class's cost sums the local costs of the distinct
//! classes its chosen sub-graph needs, so shared inputs count once (a plain tree cost would
//! count a shared prefix once per path and drown the differences that matter). Choices that
//! would make a cycle are filtered out. Everything iterates in id order: results are deterministic.

use super::analysis::{type_bytes, EGraph};
use super::lang::ENode;
use egg::{Id, Language};
use kiln_ir::{Op, TensorType};
use std::collections::HashMap;

/// Cost of moving one byte, in FLOP-equivalents.
pub const BYTE_WEIGHT: f64 = 2.0;
/// Fixed cost of launching one kernel, in FLOP-equivalents.
pub const KERNEL_COST: f64 = 4096.0;

/// Elements of a value; a symbolic dim counts as 64.
fn elems(t: &TensorType) -> f64 {
    t.shape.iter().map(|d| d.known().map_or(64.0, |n| n as f64)).product()
}

fn bytes(t: &TensorType) -> f64 {
    type_bytes(t).map_or_else(|| elems(t) * t.dtype.size_of() as f64, |b| b as f64)
}

/// Ops that only relabel a buffer (no kernel, no data movement).
pub fn is_metadata(op: &Op) -> bool {
    matches!(op, Op::Reshape { .. } | Op::Flatten { .. } | Op::Squeeze | Op::Unsqueeze | Op::Identity | Op::Dropout)
}

/// FLOPs of one op given its input and output types.
fn flops(op: &Op, ins: &[Option<&TensorType>], out: &TensorType) -> f64 {
    let dim =
        |t: Option<&TensorType>, i: usize| t.and_then(|t| t.shape.get(i)).and_then(|d| d.known()).unwrap_or(1) as f64;
    let input = |i: usize| ins.get(i).copied().flatten();
    match op {
        Op::Conv(_) => {
            let w = input(1);
            let taps: f64 = w.map_or(1.0, |w| w.shape[1..].iter().map(|d| d.known().unwrap_or(1) as f64).product());
            2.0 * elems(out) * taps
        }
        Op::ConvTranspose(_) => {
            let w = input(1);
            let taps: f64 = w.map_or(1.0, |w| w.shape[1..].iter().map(|d| d.known().unwrap_or(1) as f64).product());
            2.0 * input(0).map_or(1.0, elems) * taps
        }
        Op::Gemm(g) => 2.0 * elems(out) * dim(input(0), if g.trans_a { 0 } else { 1 }),
        Op::MatMul => {
            let a = input(0);
            let k = a.map_or(1.0, |a| dim(Some(a), a.rank().saturating_sub(1)));
            2.0 * elems(out) * k
        }
        Op::Reduce { .. } | Op::Pool(_) | Op::GlobalPool(_) => input(0).map_or(1.0, elems),
        Op::Recurrent(r) => {
            let (sa, ba) = r.seq_batch_axes();
            r.flops(dim(input(0), sa), dim(input(0), ba), dim(input(0), 2))
        }
        Op::Softmax { .. } | Op::LogSoftmax { .. } => 4.0 * elems(out),
        Op::LayerNorm { .. } | Op::BatchNorm { .. } | Op::InstanceNorm { .. } => 6.0 * elems(out),
        _ => elems(out),
    }
}

/// The local cost of one e-node of class `class` (all nodes of a class share its output types).
pub fn node_cost(eg: &EGraph, class: Id, node: &ENode) -> f64 {
    match node {
        ENode::Input(_) | ENode::Absent | ENode::Get(..) => 0.0,
        ENode::Const(c) => 1.0 + 1e-3 * bytes(&c.value.tensor_type()),
        ENode::Op(key, children) => {
            if is_metadata(key.op()) {
                return 1.0;
            }
            let ins: Vec<Option<&TensorType>> = children.iter().map(|&c| eg[c].data.ty()).collect();
            let in_bytes: f64 = ins.iter().flatten().map(|t| bytes(t)).sum();
            let outs = eg[class].data.types.as_deref().unwrap_or(&[]);
            let out_bytes: f64 = outs.iter().map(bytes).sum();
            let f = outs.first().map_or(0.0, |t| flops(key.op(), &ins, t));
            KERNEL_COST + f + BYTE_WEIGHT * (in_bytes + out_bytes)
        }
    }
}

/// Chosen e-node per class, for every class reachable from the roots.
pub struct Extraction {
    pub choice: HashMap<Id, ENode>,
    /// Cost of everything the roots need, each class counted once.
    pub cost: f64,
}

struct Best {
    node: usize,
    set: Vec<u64>,
    cost: f64,
}

fn has(set: &[u64], i: usize) -> bool {
    set[i / 64] >> (i % 64) & 1 == 1
}

/// Greedy DAG-aware extraction (see the module doc).
pub fn extract(eg: &EGraph, roots: &[Id]) -> Result<Extraction, String> {
    let mut ids: Vec<Id> = eg.classes().map(|c| c.id).collect();
    ids.sort();
    let index: HashMap<Id, usize> = ids.iter().enumerate().map(|(i, &id)| (id, i)).collect();
    let n = ids.len();
    let words = n.div_ceil(64).max(1);
    let local: Vec<Vec<f64>> =
        ids.iter().map(|&id| eg[id].nodes.iter().map(|nd| node_cost(eg, id, nd)).collect()).collect();
    let kids: Vec<Vec<Vec<usize>>> = ids
        .iter()
        .map(|&id| eg[id].nodes.iter().map(|nd| nd.children().iter().map(|&c| index[&eg.find(c)]).collect()).collect())
        .collect();
    let mut best: Vec<Option<Best>> = (0..n).map(|_| None).collect();
    for _pass in 0..32 {
        let mut changed = false;
        for i in 0..n {
            let mut pick: Option<Best> = None;
            for (ni, ch) in kids[i].iter().enumerate() {
                if ch.iter().any(|&c| best[c].is_none()) {
                    continue;
                }
                let mut set = vec![0u64; words];
                for &c in ch {
                    for (w, s) in set.iter_mut().zip(&best[c].as_ref().expect("checked").set) {
                        *w |= s;
                    }
                }
                if has(&set, i) {
                    continue;
                }
                set[i / 64] |= 1 << (i % 64);
                let mut cost = local[i][ni];
                for (wi, &w) in set.iter().enumerate() {
                    let mut w = w;
                    while w != 0 {
                        let j = wi * 64 + w.trailing_zeros() as usize;
                        w &= w - 1;
                        if j != i {
                            cost += best[j].as_ref().map_or(0.0, |b| local[j][b.node]);
                        }
                    }
                }
                if pick.as_ref().is_none_or(|p| cost < p.cost) {
                    pick = Some(Best { node: ni, set, cost });
                }
            }
            if let Some(p) = pick {
                let old = best[i].as_ref().map(|b| b.node);
                if old != Some(p.node) {
                    changed = true;
                }
                best[i] = Some(p);
            }
        }
        if !changed {
            break;
        }
    }
    let mut pick: Vec<Option<usize>> = best.iter().map(|b| b.as_ref().map(|b| b.node)).collect();
    let roots: Vec<usize> = roots.iter().map(|&r| index[&eg.find(r)]).collect();
    let dag = |pick: &[Option<usize>]| dag_cost(&kids, &local, pick, &roots);
    let mut cost = dag(&pick).ok_or("the roots have no acyclic choice")?;
    // Greedy choices ignore sharing across classes (folding a BN into a conv that something else
    // also reads duplicates the conv); a few rounds of single-class swaps on the whole DAG fix that.
    for _round in 0..3 {
        let mut improved = false;
        for i in 0..n {
            for (ni, ch) in kids[i].iter().enumerate() {
                if pick[i] == Some(ni) || ch.iter().any(|&c| pick[c].is_none()) {
                    continue;
                }
                let old = pick[i].replace(ni);
                match dag(&pick) {
                    Some(c) if c < cost => {
                        cost = c;
                        improved = true;
                    }
                    _ => pick[i] = old,
                }
            }
        }
        if !improved {
            break;
        }
    }
    let mut choice = HashMap::new();
    let mut stack: Vec<usize> = roots.clone();
    while let Some(i) = stack.pop() {
        if choice.contains_key(&ids[i]) {
            continue;
        }
        let node = eg[ids[i]].nodes[pick[i].expect("acyclic choice checked")].clone();
        stack.extend(&kids[i][pick[i].expect("checked")]);
        choice.insert(ids[i], node);
    }
    Ok(Extraction { choice, cost })
}

/// Total local cost of the classes the roots need under `pick`, each counted once; `None` when
/// a needed class has no choice or the choices form a cycle.
fn dag_cost(kids: &[Vec<Vec<usize>>], local: &[Vec<f64>], pick: &[Option<usize>], roots: &[usize]) -> Option<f64> {
    // 0 = unseen, 1 = on the current path, 2 = done.
    let mut state = vec![0u8; pick.len()];
    let mut total = 0.0;
    let mut stack: Vec<(usize, bool)> = roots.iter().map(|&r| (r, false)).collect();
    while let Some((i, leaving)) = stack.pop() {
        if leaving {
            state[i] = 2;
            continue;
        }
        match state[i] {
            2 => continue,
            1 => return None,
            _ => {}
        }
        let ni = pick[i]?;
        state[i] = 1;
        total += local[i][ni];
        stack.push((i, true));
        for &c in &kids[i][ni] {
            match state[c] {
                1 => return None,
                0 => stack.push((c, false)),
                _ => {}
            }
        }
    }
    Some(total)
}
