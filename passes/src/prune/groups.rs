//! Dependency groups (DepGraph / OTO zero-invariant groups): which parameter slices must be
//! removed together. Every output channel of a Conv, Gemm or MatMul with constant weights is a
//! fresh *channel*; values carry a [`ChannelMap`] saying which channel each index of their channel
//! axis holds. Ops that keep channels apart carry the map (elementwise ops, BatchNorm, pooling,
//! Pad, Resize, Transpose), move it (Concat, Split, Flatten, channel-preserving Reshape) or couple
//! channels (a residual Add unites the channels it adds, a grouped Conv unites each group's input
//! and output channels). Coupled channels form one removable *unit* (a union-find class); units
//! from coupled layers form one [`Group`], the unit of allocation.
//!
//! Whatever cannot be proven is blocked, with the reason: a channel reaching a graph output, a
//! Reshape mixing the channel axis, an operand the analysis does not track, an unknown op.

use kiln_ir::op::{normalize_axis, pad_amounts, Binary, PadMode, Unary};
use kiln_ir::{Graph, NodeId, Op, ValueRef};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// One channel: an output channel of some layer, before coupling.
pub type Chan = u32;

/// Which channel each index along `axis` of a value holds (`None`: not prunable, e.g. a graph
/// input's channel concatenated in).
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelMap {
    pub axis: usize,
    pub entries: Vec<Option<Chan>>,
}

/// What a parameter slice is to its channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Weights producing the channel (a Conv's output filter).
    OutWeight,
    /// Added to the channel (bias, BatchNorm shift): zero in a zero group.
    OutShift,
    /// BatchNorm scale: zero in a zero group; the `bn` criterion.
    BnScale,
    /// Weights reading the channel (the next layer's input slice).
    InWeight,
    /// Statistics and multipliers (BatchNorm mean/variance, a per-channel Mul or Div).
    Stat,
}

/// A constant input of `node` to slice along `axis`, index for index with the map of `by`.
#[derive(Clone, Debug, PartialEq)]
pub struct Slice {
    pub node: NodeId,
    pub input: usize,
    pub axis: usize,
    pub by: ValueRef,
    pub role: Role,
}

/// An attribute or shape input that follows the number of kept channels.
#[derive(Clone, Debug, PartialEq)]
pub enum Fixup {
    /// A grouped Conv's group count: kept output channels of `by` over `per_group`.
    Groups { node: NodeId, by: ValueRef, per_group: usize },
    /// Entry `index` of a Reshape's constant shape: kept channels of `by` times `factor`.
    ReshapeDim { node: NodeId, index: usize, by: ValueRef, factor: usize },
    /// A Split's constant sizes: kept channels of `by` within each original segment.
    SplitSizes { node: NodeId, by: ValueRef, sizes: Vec<usize> },
}

/// One removable unit: coupled channels (a union-find class).
#[derive(Clone, Debug, PartialEq)]
pub struct Unit {
    /// The class representative.
    pub root: Chan,
    /// Whether a channel of zeros stays zero on every path (no Sigmoid, Exp, nonzero pad).
    pub zero_invariant: bool,
}

/// Coupled layers and their units: what an allocation prunes by one ratio.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    /// Layers producing its channels (node names) and their outputs.
    pub sources: Vec<String>,
    pub outputs: Vec<ValueRef>,
    /// Every node with a parameter slice or attribute in the group, with the slice's role.
    pub members: Vec<String>,
    /// Prunable units.
    pub units: Vec<Unit>,
    /// Units that may not be removed, and why (each reason once).
    pub blocked_units: usize,
    pub blocked: Vec<String>,
}

/// The result of the analysis on one graph.
#[derive(Clone, Debug, Default)]
pub struct Analysis {
    pub maps: HashMap<ValueRef, ChannelMap>,
    pub slices: Vec<Slice>,
    pub fixups: Vec<Fixup>,
    /// For each node whose cost pruning changes, the values whose kept share scales it.
    pub scales: HashMap<NodeId, Vec<ValueRef>>,
    pub groups: Vec<Group>,
    /// Each channel's unit root.
    pub root: Vec<Chan>,
}

impl Analysis {
    /// Indices along the map axis of `v` that survive removing the units in `removed`.
    pub fn kept(&self, v: ValueRef, removed: &impl Fn(Chan) -> bool) -> Vec<usize> {
        let map = &self.maps[&v];
        (0..map.entries.len()).filter(|&i| map.entries[i].is_none_or(|c| !removed(self.root[c as usize]))).collect()
    }
}

/// Finds the dependency groups of `g`, whose weights must be constants (fold first).
pub fn analyze(g: &Graph) -> Result<Analysis, kiln_ir::GraphError> {
    let mut b = Builder {
        g,
        a: Analysis::default(),
        class: Vec::new(),
        cluster: Vec::new(),
        blocked: Vec::new(),
        nonzero: Vec::new(),
        sources: Vec::new(),
        members: Vec::new(),
    };
    for id in g.topo_order()? {
        b.visit(id);
    }
    for (i, &v) in g.outputs().iter().enumerate() {
        b.block(v, &format!("reaches graph output {i} ('{}')", g.value_name(v)));
    }
    Ok(b.finish())
}

struct Builder<'g> {
    g: &'g Graph,
    a: Analysis,
    /// Union-find over channels: coupled channels (units).
    class: Vec<Chan>,
    /// Union-find over channels: coupled layers (groups).
    cluster: Vec<Chan>,
    blocked: Vec<(Chan, String)>,
    nonzero: Vec<Chan>,
    sources: Vec<(Chan, String, ValueRef)>,
    members: Vec<(Chan, String)>,
}

impl std::ops::Deref for Builder<'_> {
    type Target = Graph;
    fn deref(&self) -> &Graph {
        self.g
    }
}

fn find(uf: &mut [Chan], mut x: Chan) -> Chan {
    while uf[x as usize] != x {
        uf[x as usize] = uf[uf[x as usize] as usize];
        x = uf[x as usize];
    }
    x
}

fn union(uf: &mut [Chan], a: Chan, b: Chan) {
    let (ra, rb) = (find(uf, a), find(uf, b));
    if ra != rb {
        uf[ra.max(rb) as usize] = ra.min(rb);
    }
}

impl<'g> Builder<'g> {
    fn graph(&self) -> &'g Graph {
        self.g
    }

    fn map(&self, v: Option<ValueRef>) -> Option<&ChannelMap> {
        v.and_then(|v| self.a.maps.get(&v))
    }

    fn fresh(&mut self, n: usize, source: NodeId) -> Vec<Option<Chan>> {
        let first = self.class.len() as Chan;
        let ids: Vec<Chan> = (first..first + n as Chan).collect();
        self.class.extend(&ids);
        self.cluster.extend(std::iter::repeat_n(first, n));
        self.sources.push((first, self.node(source).name.clone(), ValueRef::first(source)));
        ids.into_iter().map(Some).collect()
    }

    fn unite(&mut self, a: Chan, b: Chan) {
        union(&mut self.class, a, b);
        union(&mut self.cluster, a, b);
    }

    fn block(&mut self, v: ValueRef, why: &str) {
        if let Some(m) = self.a.maps.get(&v) {
            let chans: Vec<Chan> = m.entries.iter().flatten().copied().collect();
            self.blocked.extend(chans.into_iter().map(|c| (c, why.to_string())));
        }
    }

    fn block_all(&mut self, id: NodeId, why: &str) {
        for v in self.node_inputs(id).into_iter().flatten() {
            self.block(v, why);
        }
    }

    fn set(&mut self, v: ValueRef, map: ChannelMap) {
        self.a.maps.insert(v, map);
    }

    fn slice(&mut self, node: NodeId, input: usize, axis: usize, by: ValueRef, role: Role) {
        if let Some(c) = self.a.maps[&by].entries.iter().flatten().next() {
            let name = format!("{} ({:?} of input {input})", self.node(node).name, role);
            self.members.push((*c, name));
        }
        self.a.slices.push(Slice { node, input, axis, by, role });
    }

    fn scale(&mut self, node: NodeId, by: ValueRef) {
        self.a.scales.entry(node).or_default().push(by);
    }

    /// The node keeps channels where they are: output 0 gets input `slot`'s map.
    fn carry(&mut self, id: NodeId, slot: usize, zero_preserving: bool) {
        let ins = self.node_inputs(id);
        let Some(x) = ins.get(slot).copied().flatten() else { return };
        let Some(map) = self.a.maps.get(&x).cloned() else { return };
        for (i, v) in ins.iter().enumerate() {
            if i != slot && v.is_some_and(|v| self.a.maps.contains_key(&v)) {
                let why =
                    format!("is read as input {i} of '{}' ({})", self.node(id).name, self.node(id).op.onnx_name());
                self.block(v.expect("checked"), &why);
            }
        }
        if !zero_preserving {
            self.nonzero.extend(map.entries.iter().flatten());
        }
        let out = ValueRef::first(id);
        self.set(out, map);
        self.scale(id, out);
    }

    fn unknown(&mut self, id: NodeId) {
        let why = format!(
            "reaches '{}' ({}), which the analysis does not know",
            self.node(id).name,
            self.node(id).op.onnx_name()
        );
        self.block_all(id, &why);
    }

    fn visit(&mut self, id: NodeId) {
        let g = self.graph();
        let node = g.node(id);
        let ins = g.node_inputs(id);
        let tracked = ins.iter().flatten().any(|v| self.a.maps.contains_key(v));
        match &node.op {
            Op::Conv(c) => self.conv(id, c.group),
            Op::Gemm(gm) => self.linear(id, if gm.trans_a { 0 } else { 1 }, !gm.trans_b),
            Op::MatMul => {
                let rank = g.value_type(ins[0].expect("MatMul has A")).rank();
                self.linear(id, rank.saturating_sub(1), true)
            }
            _ if !tracked => {}
            Op::Unary(u) => self.carry(id, 0, preserves_zero(u)),
            Op::Binary(b) => self.binary(id, *b),
            Op::Variadic(_) => self.elementwise(id, true),
            Op::Clip => {
                let bound =
                    |i: usize| ins.get(i).copied().flatten().and_then(|v| g.const_value(v)).map(|t| t.to_f64_vec());
                let lo_ok = bound(1).is_none_or(|v| v.iter().all(|&x| x <= 0.0));
                let hi_ok = bound(2).is_none_or(|v| v.iter().all(|&x| x >= 0.0));
                self.carry(id, 0, lo_ok && hi_ok)
            }
            Op::Cast { .. } | Op::Identity | Op::Dropout => self.carry(id, 0, true),
            Op::BatchNorm { .. } => self.norm(id, &[Role::BnScale, Role::OutShift, Role::Stat, Role::Stat]),
            Op::InstanceNorm { .. } => self.norm(id, &[Role::Stat, Role::OutShift]),
            Op::LayerNorm { axis, .. } => {
                let x = ins[0].expect("LayerNorm has x");
                let rank = g.value_type(x).rank();
                match (self.map(Some(x)).map(|m| m.axis), normalize_axis(*axis, rank)) {
                    (Some(m), Some(a)) if m < a && node.outputs.len() == 1 => self.carry(id, 0, false),
                    _ => self.block_all(id, &format!("LayerNorm '{}' normalizes across the channel axis", node.name)),
                }
            }
            Op::Pool(_) | Op::GlobalPool(_) => self.spatial(id, true),
            Op::Resize(_) => {
                let x = ins[0].expect("Resize has x");
                let same = self.map(Some(x)).is_some_and(|m| {
                    g.value_type(x).shape.get(m.axis) == g.value_type(ValueRef::first(id)).shape.get(m.axis)
                });
                if same {
                    self.carry(id, 0, true)
                } else {
                    self.block_all(id, &format!("Resize '{}' scales the channel axis", node.name))
                }
            }
            Op::Pad { mode } => self.pad(id, *mode),
            Op::Transpose { perm } => {
                let x = ins[0].expect("Transpose has x");
                let rank = g.value_type(x).rank();
                let perm = perm.clone().unwrap_or_else(|| (0..rank).rev().collect());
                if let Some(mut map) = self.map(Some(x)).cloned() {
                    map.axis = perm.iter().position(|&p| p == map.axis).expect("perm is a permutation");
                    self.set(ValueRef::first(id), map);
                }
            }
            Op::Concat { axis } => self.concat(id, *axis),
            Op::Split { axis } => self.split(id, *axis),
            Op::Flatten { .. } => self.regroup(id, ins[0].expect("Flatten has x"), None),
            Op::Reshape { .. } => self.reshape(id),
            Op::Input
            | Op::Constant(_)
            | Op::CastLike
            | Op::Where
            | Op::ConvTranspose(_)
            | Op::Lrn(_)
            | Op::Softmax { .. }
            | Op::LogSoftmax { .. }
            | Op::Hardmax { .. }
            | Op::Reduce { .. }
            | Op::ArgMax { .. }
            | Op::ArgMin { .. }
            | Op::Slice
            | Op::Gather { .. }
            | Op::GatherElements { .. }
            | Op::GatherNd { .. }
            | Op::Squeeze
            | Op::Unsqueeze
            | Op::Expand
            | Op::Tile
            | Op::Shape { .. }
            | Op::Size
            | Op::ConstantOfShape { .. }
            | Op::Range
            | Op::If { .. }
            | Op::Loop(_)
            | Op::Recurrent(_)
            | Op::Scan(_)
            | Op::CumSum { .. }
            | Op::CumProd { .. }
            | Op::Compress { .. }
            | Op::TopK { .. }
            | Op::ScatterElements { .. }
            | Op::ScatterNd { .. }
            | Op::NonZero => self.unknown(id),
        }
    }

    /// Conv with constant weights: a consumer of its input's channels (group 1) and a source of
    /// new ones; a grouped Conv unites each group's input and output channels instead.
    fn conv(&mut self, id: NodeId, group: usize) {
        let g = self.graph();
        let ins = g.node_inputs(id);
        let (x, w) = (ins[0].expect("Conv has x"), ins[1].expect("Conv has w"));
        let Some(wt) = g.const_value(w) else {
            return self.block_all(id, &format!("Conv '{}' has run-time weights", g.node(id).name));
        };
        let c_out = wt.shape()[0];
        let xmap = self.map(Some(x)).cloned();
        if xmap.as_ref().is_some_and(|m| m.axis != 1) {
            return self.block_all(id, &format!("reaches Conv '{}' on a non-channel axis", g.node(id).name));
        }
        let name = g.node(id).name.clone();
        let out = ValueRef::first(id);
        let entries = self.fresh(c_out, id);
        self.set(out, ChannelMap { axis: 1, entries: entries.clone() });
        if group > 1 {
            let Some(xmap) = xmap else {
                return self.block(out, &format!("grouped Conv '{name}' reads channels the analysis does not track"));
            };
            let (per_in, per_out) = (xmap.entries.len() / group, c_out / group);
            for k in 0..group {
                let anchor = entries[k * per_out].expect("fresh");
                for e in &entries[k * per_out..(k + 1) * per_out] {
                    self.unite(anchor, e.expect("fresh"));
                }
                for e in &xmap.entries[k * per_in..(k + 1) * per_in] {
                    match e {
                        Some(c) => self.unite(anchor, *c),
                        None => {
                            self.blocked.push((anchor, format!("grouped Conv '{name}' has an untracked input channel")))
                        }
                    }
                }
            }
            self.a.fixups.push(Fixup::Groups { node: id, by: out, per_group: per_out });
        } else if xmap.is_some() {
            self.slice(id, 1, 1, x, Role::InWeight);
            self.scale(id, x);
        }
        self.slice(id, 1, 0, out, Role::OutWeight);
        if ins.get(2).copied().flatten().is_some_and(|b| g.const_value(b).is_some()) {
            self.slice(id, 2, 0, out, Role::OutShift);
        }
        self.scale(id, out);
    }

    /// Gemm or MatMul with a constant 2-D B: reads A's channels along `a_axis` (B's rows if
    /// `b_rows_in`, else its columns) and produces new ones along the last axis.
    fn linear(&mut self, id: NodeId, a_axis: usize, b_rows_in: bool) {
        let g = self.graph();
        let ins = g.node_inputs(id);
        let (a, b) = (ins[0].expect("A"), ins[1].expect("B"));
        let name = g.node(id).name.clone();
        let Some(bt) = g.const_value(b).filter(|t| t.rank() == 2) else {
            return self.block_all(id, &format!("'{name}' multiplies by a run-time or batched operand"));
        };
        let (in_axis, out_axis) = if b_rows_in { (0, 1) } else { (1, 0) };
        if let Some(m) = self.map(Some(a)) {
            if m.axis != a_axis {
                return self.block_all(id, &format!("reaches '{name}' on a non-contracted axis"));
            }
            self.slice(id, 1, in_axis, a, Role::InWeight);
            self.scale(id, a);
        }
        let out = ValueRef::first(id);
        let rank = g.value_type(out).rank();
        let entries = self.fresh(bt.shape()[out_axis], id);
        self.set(out, ChannelMap { axis: rank - 1, entries });
        self.slice(id, 1, out_axis, out, Role::OutWeight);
        if let Some(c) = ins.get(2).copied().flatten() {
            let n = bt.shape()[out_axis];
            match g.const_value(c) {
                Some(t) if t.rank() >= 1 && t.shape()[t.rank() - 1] == n => {
                    self.slice(id, 2, t.rank() - 1, out, Role::OutShift)
                }
                Some(t) if t.rank() == 0 || t.shape()[t.rank() - 1] == 1 => {}
                _ => self.block(out, &format!("'{name}' adds a bias the analysis cannot slice")),
            }
        }
        self.scale(id, out);
    }

    /// BatchNorm / InstanceNorm: per-channel parameters on axis 1, sliced with their roles.
    fn norm(&mut self, id: NodeId, roles: &[Role]) {
        let g = self.graph();
        let ins = g.node_inputs(id);
        let x = ins[0].expect("norm has x");
        let ok = self.map(Some(x)).is_some_and(|m| m.axis == 1)
            && ins[1..].iter().flatten().all(|v| g.const_value(*v).is_some())
            && g.node(id).outputs.len() == 1;
        if !ok {
            return self.block_all(id, &format!("'{}' has run-time statistics or a non-channel axis", g.node(id).name));
        }
        self.carry(id, 0, true);
        for (i, role) in roles.iter().enumerate() {
            if ins.get(i + 1).copied().flatten().is_some() {
                self.slice(id, i + 1, 0, ValueRef::first(id), *role);
            }
        }
    }

    /// Pools keep channel axis 1 apart.
    fn spatial(&mut self, id: NodeId, zero_preserving: bool) {
        let x = self.node_inputs(id)[0].expect("has x");
        if self.map(Some(x)).is_some_and(|m| m.axis == 1) && self.node(id).outputs.len() == 1 {
            self.carry(id, 0, zero_preserving)
        } else {
            self.block_all(id, &format!("'{}' pools over the channel axis", self.node(id).name))
        }
    }

    fn pad(&mut self, id: NodeId, mode: PadMode) {
        let g = self.graph();
        let ins = g.node_inputs(id);
        let x = ins[0].expect("Pad has x");
        let rank = g.value_type(x).rank();
        let constant = |i: usize| ins.get(i).copied().flatten().and_then(|v| g.const_value(v)).map(|t| t.to_i64_vec());
        let axes = constant(3);
        let amounts = constant(1).and_then(|p| pad_amounts(rank, &p, axes.as_deref()).ok());
        let axis = self.map(Some(x)).map(|m| m.axis);
        match (amounts, axis) {
            (Some(p), Some(a)) if p[a] == (0, 0) => {
                let fill = ins.get(2).copied().flatten().and_then(|v| g.const_value(v)).map(|t| t.to_f64_vec());
                let zero = !matches!(mode, PadMode::Constant) || fill.is_none_or(|f| f.iter().all(|&v| v == 0.0));
                self.carry(id, 0, zero)
            }
            _ => self.block_all(id, &format!("Pad '{}' pads the channel axis or has run-time pads", g.node(id).name)),
        }
    }

    /// Broadcasting binary ops: two tracked operands unite index for index; a constant operand
    /// with the full channel extent is sliced.
    fn binary(&mut self, id: NodeId, op: Binary) {
        let g = self.graph();
        let ins = g.node_inputs(id);
        let (a, b) = (ins[0].expect("lhs"), ins[1].expect("rhs"));
        let (ta, tb) = (self.a.maps.contains_key(&a), self.a.maps.contains_key(&b));
        let name = g.node(id).name.clone();
        let role = match op {
            Binary::Add | Binary::Sub => Role::OutShift,
            Binary::Mul => Role::Stat,
            Binary::Div if ta && !tb => Role::Stat,
            _ => return self.block_all(id, &format!("'{name}' ({}) is not linear in the channel", op.onnx_name())),
        };
        if ta && tb {
            return self.elementwise(id, true);
        }
        let (x, other, other_slot) = if ta { (a, b, 1) } else { (b, a, 0) };
        let out = ValueRef::first(id);
        let r = g.value_type(out).rank();
        let map = self.a.maps[&x].clone();
        let out_axis = map.axis + r - g.value_type(x).rank();
        let oty = g.value_type(other);
        let o_axis = (out_axis + oty.rank()).checked_sub(r);
        let extent = o_axis.and_then(|k| oty.shape[k].known());
        let n = map.entries.len();
        if extent.is_some_and(|e| e == n && n > 1) && g.const_value(other).is_none() {
            return self.block(x, &format!("'{name}' combines the channels with an untracked operand"));
        }
        self.set(out, ChannelMap { axis: out_axis, entries: map.entries });
        self.scale(id, out);
        if let (Some(k), Some(e)) = (o_axis, extent) {
            if e == n && n > 1 {
                self.slice(id, other_slot, k, out, role);
            }
        }
    }

    /// Ops combining several operands index for index (Add of two tracked values, Sum, Max,
    /// Min, Mean): their channels are united; an untracked operand with the full channel extent
    /// blocks them (its channels cannot be removed).
    fn elementwise(&mut self, id: NodeId, zero_preserving: bool) {
        let g = self.graph();
        let ins: Vec<ValueRef> = g.node_inputs(id).into_iter().flatten().collect();
        let out = ValueRef::first(id);
        let r = g.value_type(out).rank();
        let name = g.node(id).name.clone();
        let aligned = |v: &ValueRef, m: &ChannelMap| m.axis + r - g.value_type(*v).rank();
        let tracked: Vec<(ValueRef, ChannelMap)> =
            ins.iter().filter_map(|v| self.a.maps.get(v).map(|m| (*v, m.clone()))).collect();
        let (v0, first) = tracked[0].clone();
        let axis = aligned(&v0, &first);
        if tracked.iter().any(|(v, m)| aligned(v, m) != axis || m.entries.len() != first.entries.len()) {
            return self.block_all(id, &format!("'{name}' combines channels on different axes"));
        }
        for v in ins.iter().filter(|v| !self.a.maps.contains_key(*v)) {
            let ty = g.value_type(*v);
            let extent = (axis + ty.rank()).checked_sub(r).and_then(|k| ty.shape[k].known());
            if extent != Some(1) {
                return self.block_all(id, &format!("'{name}' combines the channels with an untracked operand"));
            }
        }
        for (_, m) in &tracked[1..] {
            for (p, q) in first.entries.iter().zip(&m.entries) {
                match (p, q) {
                    (Some(p), Some(q)) => self.unite(*p, *q),
                    (Some(c), None) | (None, Some(c)) => {
                        self.blocked.push((*c, format!("'{name}' adds an untracked channel to it")))
                    }
                    (None, None) => {}
                }
            }
        }
        if !zero_preserving {
            self.nonzero.extend(first.entries.iter().flatten());
        }
        self.set(out, ChannelMap { axis, entries: first.entries });
        self.scale(id, out);
    }

    fn concat(&mut self, id: NodeId, axis: i64) {
        let g = self.graph();
        let ins: Vec<ValueRef> = g.node_inputs(id).into_iter().flatten().collect();
        let rank = g.value_type(ins[0]).rank();
        let Some(axis) = normalize_axis(axis, rank) else { return self.unknown(id) };
        let along = ins.iter().filter_map(|v| self.a.maps.get(v)).all(|m| m.axis == axis);
        if !along {
            return self.elementwise(id, true);
        }
        let mut entries = Vec::new();
        for &v in &ins {
            match self.a.maps.get(&v) {
                Some(m) => entries.extend(m.entries.iter().copied()),
                None => match g.value_type(v).shape[axis].known() {
                    Some(n) => entries.extend(std::iter::repeat_n(None, n)),
                    None => return self.unknown(id),
                },
            }
        }
        self.set(ValueRef::first(id), ChannelMap { axis, entries });
    }

    fn split(&mut self, id: NodeId, axis: i64) {
        let g = self.graph();
        let ins = g.node_inputs(id);
        let x = ins[0].expect("Split has x");
        let map = self.a.maps[&x].clone();
        let Some(axis) = normalize_axis(axis, g.value_type(x).rank()) else { return self.unknown(id) };
        let n_out = g.node(id).outputs.len();
        if axis != map.axis {
            for o in 0..n_out {
                self.set(ValueRef { node: id, output: o }, map.clone());
            }
            return;
        }
        let sizes: Option<Vec<usize>> = g.node(id).outputs.iter().map(|o| o.ty.shape[axis].known()).collect();
        let has_sizes = ins.get(1).copied().flatten().is_some_and(|v| g.const_value(v).is_some());
        let Some(sizes) = sizes.filter(|_| has_sizes) else {
            return self.block(x, &format!("Split '{}' has no constant sizes to rewrite", g.node(id).name));
        };
        let mut start = 0;
        for (o, &n) in sizes.iter().enumerate() {
            let entries = map.entries[start..start + n].to_vec();
            self.set(ValueRef { node: id, output: o }, ChannelMap { axis, entries });
            start += n;
        }
        self.a.fixups.push(Fixup::SplitSizes { node: id, by: x, sizes });
    }

    /// A Reshape with a constant shape: the channel map follows if the result regroups the
    /// channel axis alone or with the dims right after it (see [`Builder::regroup`]).
    fn reshape(&mut self, id: NodeId) {
        let g = self.graph();
        let ins = g.node_inputs(id);
        let x = ins[0].expect("Reshape has x");
        match ins[1].and_then(|v| g.const_value(v)) {
            Some(t) => self.regroup(id, x, Some(t.to_i64_vec())),
            None => self.block(x, &format!("Reshape '{}' has a run-time shape", g.node(id).name)),
        }
    }

    /// A row-major regrouping of `x` (Flatten, or Reshape with constant `shape`): the channel
    /// map follows if some output axis starts where the channel axis starts and holds exactly
    /// the channel axis times the next few input dims (each channel becomes a block of
    /// features); otherwise the channels are mixed and blocked.
    fn regroup(&mut self, id: NodeId, x: ValueRef, shape: Option<Vec<i64>>) {
        let g = self.graph();
        let name = g.node(id).name.clone();
        let map = self.a.maps[&x].clone();
        let mixes = format!("'{name}' mixes the channel axis with others");
        let (Some(dims), Some(out)) =
            (g.value_type(x).concrete_shape(), g.value_type(ValueRef::first(id)).concrete_shape())
        else {
            return self.block(x, &format!("'{name}' regroups symbolic dims"));
        };
        let c = dims[map.axis];
        let before: usize = dims[..map.axis].iter().product();
        let mut prefix = 1usize;
        let mut found = None;
        for (j, &d) in out.iter().enumerate() {
            if prefix == before && d > 0 && d % c == 0 {
                found = Some(j);
                break;
            }
            prefix *= d;
        }
        let Some(j) = found else { return self.block(x, &mixes) };
        let inner = out[j] / c;
        let mut run = 1usize;
        let spans = inner == 1
            || dims[map.axis + 1..].iter().any(|&d| {
                run *= d;
                run == inner
            });
        if !spans {
            return self.block(x, &mixes);
        }
        if let Some(shape) = shape {
            if shape.get(j).is_some_and(|&s| s == 0) && j != map.axis {
                return self.block(x, &format!("'{name}' copies a dim the channels move across"));
            }
            self.a.fixups.push(Fixup::ReshapeDim { node: id, index: j, by: x, factor: inner });
        }
        let entries = map.entries.iter().flat_map(|&e| std::iter::repeat_n(e, inner)).collect();
        self.set(ValueRef::first(id), ChannelMap { axis: j, entries });
    }

    fn finish(mut self) -> Analysis {
        let n = self.class.len();
        let root: Vec<Chan> = (0..n as Chan).map(|c| find(&mut self.class, c)).collect();
        let cluster: Vec<Chan> = (0..n as Chan).map(|c| find(&mut self.cluster, c)).collect();
        let mut blocked: BTreeMap<Chan, BTreeSet<String>> = BTreeMap::new();
        for (c, why) in &self.blocked {
            blocked.entry(root[*c as usize]).or_default().insert(why.clone());
        }
        let nonzero: BTreeSet<Chan> = self.nonzero.iter().map(|&c| root[c as usize]).collect();
        let mut groups: BTreeMap<Chan, Group> = BTreeMap::new();
        let empty = || Group {
            sources: vec![],
            outputs: vec![],
            members: vec![],
            units: vec![],
            blocked_units: 0,
            blocked: vec![],
        };
        for c in 0..n as Chan {
            if root[c as usize] != c {
                continue;
            }
            let grp = groups.entry(cluster[c as usize]).or_insert_with(empty);
            match blocked.get(&c) {
                Some(why) => {
                    grp.blocked_units += 1;
                    for w in why {
                        if !grp.blocked.contains(w) {
                            grp.blocked.push(w.clone());
                        }
                    }
                }
                None => grp.units.push(Unit { root: c, zero_invariant: !nonzero.contains(&c) }),
            }
        }
        for (c, s, v) in &self.sources {
            let grp = groups.get_mut(&cluster[*c as usize]).expect("every source has a group");
            grp.sources.push(s.clone());
            grp.outputs.push(*v);
        }
        for (c, m) in &self.members {
            let grp = groups.get_mut(&cluster[*c as usize]).expect("every member has a group");
            if !grp.members.contains(m) {
                grp.members.push(m.clone());
            }
        }
        self.a.groups = groups.into_values().collect();
        self.a.root = root;
        self.a
    }
}

/// Whether `f(0) == 0`, so a zero channel stays zero through the map.
fn preserves_zero(u: &Unary) -> bool {
    use Unary::*;
    match u {
        Relu
        | Tanh
        | Erf
        | Sqrt
        | Neg
        | Abs
        | Floor
        | Ceil
        | Round
        | Sign
        | Sin
        | Tan
        | Asin
        | Atan
        | Sinh
        | Asinh
        | Atanh
        | Softsign
        | HardSwish
        | Mish
        | LeakyRelu { .. }
        | Elu { .. }
        | Selu { .. }
        | Celu { .. }
        | ThresholdedRelu { .. }
        | Gelu { .. } => true,
        Sigmoid | Exp | Log | Reciprocal | Cos | Acos | Cosh | Acosh | Softplus | Not | HardSigmoid { .. } => false,
    }
}
