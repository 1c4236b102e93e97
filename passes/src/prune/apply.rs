//! Removing units from the graph: every recorded parameter slice is cut to the kept channels (a
//! new constant per edited input, so shared constants stay intact), grouped Convs get their new
//! group count, Reshape shapes and Split sizes follow, and types are re-inferred. Also the cost
//! of a removal before it is made: FLOPs and parameters scale with the kept share of each
//! channel axis a node reads or writes.

use super::groups::{Analysis, Chan, Fixup};
use kiln_ir::{map_array, Graph, GraphError, NodeId, Op, Tensor, ValueRef};
use ndarray::Axis;
use std::collections::{HashMap, HashSet};

/// Why a removal cannot be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApplyError {
    #[error("removing these units would leave '{0}' with no channels")]
    Empty(String),
    #[error(transparent)]
    Graph(#[from] GraphError),
}

/// Which unit roots are removed, as a dense mask over channels.
#[derive(Clone, Debug, PartialEq)]
pub struct Removal {
    mask: Vec<bool>,
}

impl Removal {
    pub fn new(a: &Analysis, roots: impl IntoIterator<Item = Chan>) -> Removal {
        let mut mask = vec![false; a.root.len()];
        for r in roots {
            mask[r as usize] = true;
        }
        Removal { mask }
    }

    pub fn contains(&self, root: Chan) -> bool {
        self.mask[root as usize]
    }

    pub fn insert(&mut self, root: Chan) {
        self.mask[root as usize] = true;
    }

    pub fn roots(&self) -> impl Iterator<Item = Chan> + '_ {
        self.mask.iter().enumerate().filter(|(_, &m)| m).map(|(c, _)| c as Chan)
    }

    /// The share of `v`'s channel axis kept.
    pub fn kept_share(&self, a: &Analysis, v: ValueRef) -> f64 {
        let e = &a.maps[&v].entries;
        let kept = e.iter().filter(|c| c.is_none_or(|c| !self.mask[a.root[c as usize] as usize])).count();
        kept as f64 / e.len().max(1) as f64
    }
}

/// FLOPs and parameters of the graph as a function of a [`Removal`], from each node's FLOPs
/// before pruning (the caller's FLOPs model) and each constant's size.
#[derive(Clone, Debug)]
pub struct CostModel {
    nodes: Vec<(u64, Vec<ValueRef>)>,
    params: Vec<(u64, Vec<ValueRef>)>,
    pub flops_before: u64,
}

impl CostModel {
    /// `node_flops` is the FLOPs model (`None` while a dim is symbolic, which is an error here).
    pub fn new(
        g: &Graph,
        a: &Analysis,
        node_flops: &dyn Fn(&Graph, NodeId) -> Option<u64>,
    ) -> Result<CostModel, String> {
        let mut nodes = Vec::new();
        let mut flops_before = 0u64;
        for id in g.node_ids() {
            let f = node_flops(g, id).ok_or_else(|| {
                format!("the FLOPs of '{}' are unknown while a dim is symbolic; bind it with --dim", g.node(id).name)
            })?;
            flops_before = flops_before.saturating_add(f);
            nodes.push((f, a.scales.get(&id).cloned().unwrap_or_default()));
        }
        let mut by_input: HashMap<(NodeId, usize), (u64, Vec<ValueRef>)> = HashMap::new();
        for s in &a.slices {
            let Some(t) = g.node_inputs(s.node)[s.input].and_then(|v| g.const_value(v)) else { continue };
            let e = by_input.entry((s.node, s.input)).or_insert((t.len() as u64, Vec::new()));
            e.1.push(s.by);
        }
        Ok(CostModel { nodes, params: by_input.into_values().collect(), flops_before })
    }

    /// Estimated FLOPs after `removal`, and parameters removed by it.
    pub fn estimate(&self, a: &Analysis, removal: &Removal) -> (u64, u64) {
        let mut share: HashMap<ValueRef, f64> = HashMap::new();
        let mut get = |v: ValueRef| *share.entry(v).or_insert_with(|| removal.kept_share(a, v));
        let flops =
            self.nodes.iter().map(|(f, vs)| (*f as f64 * vs.iter().map(|&v| get(v)).product::<f64>()) as u64).sum();
        let removed = self
            .params
            .iter()
            .map(|(n, vs)| (*n as f64 * (1.0 - vs.iter().map(|&v| get(v)).product::<f64>())) as u64)
            .sum();
        (flops, removed)
    }
}

/// Removes the units of `removal` from `g` and re-infers its types.
pub fn apply(g: &mut Graph, a: &Analysis, removal: &Removal) -> Result<(), ApplyError> {
    let mut kept: HashMap<ValueRef, Vec<usize>> = HashMap::new();
    let rm = |c: Chan| removal.contains(c);
    for &v in a.maps.keys() {
        let k = a.kept(v, &rm);
        if k.is_empty() {
            return Err(ApplyError::Empty(g.value_name(v).to_string()));
        }
        kept.insert(v, k);
    }
    let mut names: HashSet<String> =
        g.node_ids().iter().flat_map(|&id| g.node(id).outputs.iter().map(|o| o.name.clone())).collect();
    let mut replace = |g: &mut Graph, node: NodeId, input: usize, t: Tensor| {
        let old = g.node_inputs(node)[input].map(|v| g.value_name(v).to_string()).unwrap_or_default();
        let mut n = 0;
        let name = loop {
            let candidate = format!("{old}.pruned{n}");
            if names.insert(candidate.clone()) {
                break candidate;
            }
            n += 1;
        };
        let c = g.add_const(name, t);
        g.set_input(node, input, c);
    };
    for s in &a.slices {
        let idx = &kept[&s.by];
        let Some(t) = g.node_inputs(s.node)[s.input].and_then(|v| g.const_value(v)) else { continue };
        if t.shape().get(s.axis) != Some(&a.maps[&s.by].entries.len()) || idx.len() == t.shape()[s.axis] {
            continue;
        }
        let cut = map_array!(t, arr => arr.select(Axis(s.axis), idx).into_shared());
        replace(g, s.node, s.input, cut);
    }
    for f in &a.fixups {
        match f {
            Fixup::Groups { node, by, per_group } => {
                if let Op::Conv(c) = &mut g.node_mut(*node).op {
                    c.group = kept[by].len() / per_group;
                }
            }
            Fixup::ReshapeDim { node, index, by, factor } => {
                let Some(mut shape) = g.node_inputs(*node)[1].and_then(|v| g.const_value(v)).map(|t| t.to_i64_vec())
                else {
                    continue;
                };
                if shape[*index] > 0 {
                    shape[*index] = (kept[by].len() * factor) as i64;
                    replace(g, *node, 1, Tensor::vector(shape));
                }
            }
            Fixup::SplitSizes { node, by, sizes } => {
                let k = &kept[by];
                let mut start = 0;
                let mut new = Vec::with_capacity(sizes.len());
                for &n in sizes {
                    let count = k.iter().filter(|&&i| i >= start && i < start + n).count();
                    if count == 0 {
                        return Err(ApplyError::Empty(g.node(*node).name.clone()));
                    }
                    new.push(count as i64);
                    start += n;
                }
                replace(g, *node, 1, Tensor::vector(new));
            }
        }
    }
    g.reinfer()?;
    g.remove_dead();
    Ok(())
}
