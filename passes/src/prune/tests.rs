//! Pruning rules on small graphs. The oracle is the reference interpreter: a pruned graph must
//! compute what the original computes with the removed channels' producing parameters zeroed
//! (for zero units that is the original itself).

use super::groups::Role;
use super::*;
use kiln_backends::interp::run_graph;
use kiln_ir::op::{Binary, Conv, Gemm, Unary, Window};
use kiln_ir::{DType, Op, Tensor, TensorType, ValueRef};
use ndarray::Axis;

struct Builder {
    g: Graph,
    n: usize,
}

impl Builder {
    fn new(channels: usize) -> (Builder, ValueRef) {
        let mut g = Graph::new("t");
        let x = g.add_input("x", TensorType::known(DType::F32, &[1, channels, 8, 8]));
        (Builder { g, n: 0 }, x)
    }

    fn name(&mut self, op: &str) -> String {
        self.n += 1;
        format!("{op}{}", self.n)
    }

    fn conv(&mut self, x: ValueRef, c_out: usize, group: usize) -> ValueRef {
        let c_in = self.g.value_type(x).shape[1].known().unwrap();
        let name = self.name("conv");
        let w = Tensor::seeded(DType::F32, &[c_out, c_in / group, 3, 3], &name, 0.0, 0.5).unwrap();
        let w = self.g.add_const(format!("{name}.w"), w);
        let b = self.g.add_const(
            format!("{name}.b"),
            Tensor::seeded(DType::F32, &[c_out], &format!("{name}.b"), 0.1, 0.1).unwrap(),
        );
        let conv = Conv { window: Window { pads: vec![1; 4], ..Default::default() }, group };
        self.g.add(&name, Op::Conv(conv), &[x, w, b]).unwrap()
    }

    fn bn(&mut self, x: ValueRef) -> ValueRef {
        let c = self.g.value_type(x).shape[1].known().unwrap();
        let name = self.name("bn");
        let mut ins = vec![x];
        for (p, center) in [("scale", 1.0), ("shift", 0.0), ("mean", 0.0), ("var", 1.0)] {
            let t = Tensor::seeded(DType::F32, &[c], &format!("{name}.{p}"), center, 0.2).unwrap();
            ins.push(self.g.add_const(format!("{name}.{p}"), t));
        }
        self.g.add(&name, Op::BatchNorm { epsilon: 1e-5 }, &ins).unwrap()
    }

    fn op(&mut self, op: Op, ins: &[ValueRef]) -> ValueRef {
        let name = self.name(op.onnx_name());
        self.g.add(&name, op, ins).unwrap()
    }

    fn relu(&mut self, x: ValueRef) -> ValueRef {
        self.op(Op::Unary(Unary::Relu), &[x])
    }

    fn finish(mut self, out: ValueRef) -> Graph {
        self.g.set_outputs(vec![out]);
        self.g.verify().unwrap();
        self.g
    }
}

fn input(g: &Graph) -> Vec<Tensor> {
    g.input_values()
        .iter()
        .map(|&v| Tensor::seeded(DType::F32, &g.value_type(v).concrete_shape().unwrap(), "x", 0.0, 1.0).unwrap())
        .collect()
}

fn run(g: &Graph) -> Vec<f32> {
    run_graph(g, &input(g), &[]).unwrap().0[0].to_vec::<f32>()
}

fn rel_l2(a: &[f32], b: &[f32]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum();
    let den: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum();
    (num / den.max(1e-30)).sqrt()
}

/// The original with the producing parameters of removed channels set to zero.
fn masked(g: &Graph, a: &Analysis, removal: &Removal) -> Graph {
    let mut m = g.clone();
    for s in a.slices.iter().filter(|s| matches!(s.role, Role::OutWeight | Role::OutShift | Role::BnScale)) {
        let v = m.node_inputs(s.node)[s.input].unwrap();
        let mut arr = m.const_value(v).unwrap().to_vec::<f32>();
        let shape = m.const_value(v).unwrap().shape().to_vec();
        let mut nd = ndarray::ArrayD::from_shape_vec(shape.clone(), std::mem::take(&mut arr)).unwrap();
        for (i, e) in a.maps[&s.by].entries.iter().enumerate() {
            if e.is_some_and(|c| removal.contains(a.root[c as usize])) {
                nd.index_axis_mut(Axis(s.axis), i).fill(0.0);
            }
        }
        m.set_constant(v.node, Tensor::from_array(nd));
    }
    m
}

/// Removes `picks` (indices into each group's units), checks the pruned graph against the
/// masked original, and returns it.
fn prune_and_check(g: &Graph, picks: &[(usize, &[usize])]) -> (Graph, Analysis) {
    let a = analyze(g).unwrap();
    let roots: Vec<Chan> = picks.iter().flat_map(|(gi, us)| us.iter().map(|&u| a.groups[*gi].units[u].root)).collect();
    let removal = Removal::new(&a, roots);
    let mut pruned = g.clone();
    apply::apply(&mut pruned, &a, &removal).unwrap();
    pruned.verify().unwrap();
    let want = run(&masked(g, &a, &removal));
    let got = run(&pruned);
    assert_eq!(want.len(), got.len());
    assert!(rel_l2(&want, &got) < 1e-5, "pruned differs from masked original: {}", rel_l2(&want, &got));
    (pruned, a)
}

fn weight_shape(g: &Graph, node: &str) -> Vec<usize> {
    let id = g.node_ids().into_iter().find(|&id| g.node(id).name == node).unwrap();
    g.value_type(g.node_inputs(id)[1].unwrap()).concrete_shape().unwrap()
}

#[test]
fn concat_maps_offsets_into_its_inputs() {
    let (mut b, x) = Builder::new(3);
    let c1 = b.conv(x, 4, 1);
    let r1 = b.relu(c1);
    let c2 = b.conv(x, 6, 1);
    let r2 = b.relu(c2);
    let cat = b.op(Op::Concat { axis: 1 }, &[r1, x, r2]);
    let c3 = b.conv(cat, 5, 1);
    let g = b.finish(c3);
    let a = analyze(&g).unwrap();
    let sizes: Vec<(usize, usize)> = a.groups.iter().map(|grp| (grp.units.len(), grp.blocked_units)).collect();
    assert_eq!(sizes, [(4, 0), (6, 0), (0, 5)], "{:?}", a.groups);
    assert!(a.groups[2].blocked[0].contains("graph output"), "{:?}", a.groups[2].blocked);
    assert_eq!(a.maps[&cat].entries.iter().filter(|e| e.is_none()).count(), 3, "the input's channels are not prunable");
    let (pruned, _) = prune_and_check(&g, &[(0, &[1]), (1, &[0, 5])]);
    assert_eq!(weight_shape(&pruned, "conv6"), [5, 10, 3, 3], "13 input channels less 3");
    assert_eq!(weight_shape(&pruned, "conv1"), [3, 3, 3, 3]);
}

#[test]
fn grouped_conv_couples_whole_groups() {
    let (mut b, x) = Builder::new(3);
    let c1 = b.conv(x, 8, 1);
    let r1 = b.relu(c1);
    let c2 = b.conv(r1, 8, 4);
    let r2 = b.relu(c2);
    let c3 = b.conv(r2, 4, 1);
    let g = b.finish(c3);
    let a = analyze(&g).unwrap();
    assert_eq!(a.groups[0].units.len(), 4, "one unit per group of 2 input and 2 output channels");
    assert_eq!(a.groups[0].sources, ["conv1", "conv3"]);
    let (pruned, _) = prune_and_check(&g, &[(0, &[1, 3])]);
    assert_eq!(weight_shape(&pruned, "conv3"), [4, 2, 3, 3]);
    let id = pruned.node_ids().into_iter().find(|&id| pruned.node(id).name == "conv3").unwrap();
    assert!(matches!(&pruned.node(id).op, Op::Conv(c) if c.group == 2));
}

#[test]
fn depthwise_conv_carries_channels() {
    let (mut b, x) = Builder::new(3);
    let c1 = b.conv(x, 6, 1);
    let r1 = b.relu(c1);
    let dw = b.conv(r1, 6, 6);
    let n = b.bn(dw);
    let r2 = b.relu(n);
    let c3 = b.conv(r2, 4, 1);
    let g = b.finish(c3);
    let a = analyze(&g).unwrap();
    assert_eq!(a.groups[0].units.len(), 6);
    let (pruned, _) = prune_and_check(&g, &[(0, &[0, 2, 5])]);
    assert_eq!(weight_shape(&pruned, "conv3"), [3, 1, 3, 3]);
    assert_eq!(weight_shape(&pruned, "conv6"), [4, 3, 3, 3]);
}

#[test]
fn residual_add_unites_its_operands() {
    let (mut b, x) = Builder::new(3);
    let c1 = b.conv(x, 4, 1);
    let n1 = b.bn(c1);
    let r1 = b.relu(n1);
    let c2 = b.conv(r1, 3, 1);
    let r2 = b.relu(c2);
    let c3 = b.conv(r2, 4, 1);
    let n3 = b.bn(c3);
    let sum = b.op(Op::Binary(Binary::Add), &[n3, r1]);
    let r3 = b.relu(sum);
    let pool = b.op(Op::GlobalPool(kiln_ir::op::PoolKind::Average { count_include_pad: false }), &[r3]);
    let c4 = b.conv(pool, 2, 1);
    let g = b.finish(c4);
    let a = analyze(&g).unwrap();
    let stream = a.groups.iter().find(|grp| grp.sources.contains(&"conv1".to_string())).unwrap();
    assert_eq!(stream.sources, ["conv1", "conv6"], "the residual joins both producers");
    assert_eq!(stream.units.len(), 4);
    let gi = a.groups.iter().position(|grp| grp.sources == ["conv1", "conv6"]).unwrap();
    let bottleneck = a.groups.iter().position(|grp| grp.sources == ["conv4"]).unwrap();
    prune_and_check(&g, &[(gi, &[2]), (bottleneck, &[0])]);
}

#[test]
fn flatten_before_gemm_maps_channels_to_feature_blocks() {
    let (mut b, x) = Builder::new(3);
    let c1 = b.conv(x, 4, 1);
    let r1 = b.relu(c1);
    let flat = b.op(Op::Flatten { axis: 1 }, &[r1]);
    let w = b.g.add_const("fc.w", Tensor::seeded(DType::F32, &[256, 10], "fc.w", 0.0, 0.1).unwrap());
    let gemm = Gemm { alpha: 1.0, beta: 1.0, trans_a: false, trans_b: false };
    let fc = b.op(Op::Gemm(gemm), &[flat, w]);
    let g = b.finish(fc);
    let (pruned, _) = prune_and_check(&g, &[(0, &[3])]);
    assert_eq!(weight_shape(&pruned, "Gemm4"), [192, 10], "one channel is a block of 64 features");
}

#[test]
fn mixing_reshapes_and_unknown_ops_are_left_whole_with_reasons() {
    let (mut b, x) = Builder::new(3);
    let c1 = b.conv(x, 4, 1);
    let shape = b.g.add_const("shape", Tensor::vector(vec![1i64, 8, 4, 8]));
    let r = b.op(Op::Reshape { allowzero: false }, &[c1, shape]);
    let c2 = b.conv(x, 4, 1);
    let lrn = b.op(Op::Lrn(kiln_ir::op::Lrn { size: 3, alpha: 1e-4, beta: 0.75, bias: 1.0 }), &[c2]);
    let mut g = b.finish(r);
    g.add_output(lrn);
    let a = analyze(&g).unwrap();
    assert!(a.groups.iter().all(|grp| grp.units.is_empty()));
    assert!(a.groups[0].blocked.iter().any(|w| w.contains("mixes the channel axis")), "{:?}", a.groups[0].blocked);
    assert!(a.groups[1].blocked.iter().any(|w| w.contains("does not know")), "{:?}", a.groups[1].blocked);
}

#[test]
fn sigmoid_breaks_zero_invariance() {
    let (mut b, x) = Builder::new(3);
    let c1 = b.conv(x, 4, 1);
    let s = b.op(Op::Unary(Unary::Sigmoid), &[c1]);
    let c2 = b.conv(s, 2, 1);
    let g = b.finish(c2);
    let a = analyze(&g).unwrap();
    assert!(a.groups[0].units.iter().all(|u| !u.zero_invariant));
}

/// Zeroes channel `i` of every parameter producing it.
fn plant_zero(g: &mut Graph, a: &Analysis, root: Chan) {
    let removal = Removal::new(a, [root]);
    *g = masked(g, a, &removal);
}

#[test]
fn zero_groups_are_removed_losslessly() {
    let (mut b, x) = Builder::new(3);
    let c1 = b.conv(x, 6, 1);
    let n1 = b.bn(c1);
    let r1 = b.relu(n1);
    let c2 = b.conv(r1, 5, 1);
    let r2 = b.relu(c2);
    let c3 = b.conv(r2, 6, 1);
    let n3 = b.bn(c3);
    let sum = b.op(Op::Binary(Binary::Add), &[n3, r1]);
    let r3 = b.relu(sum);
    let c4 = b.conv(r3, 2, 1);
    let mut g = b.finish(c4);
    let a = analyze(&g).unwrap();
    let stream = a.groups.iter().find(|grp| grp.sources.len() == 2).unwrap().units[4].root;
    let inner = a.groups.iter().find(|grp| grp.sources == ["conv4"]).unwrap().units[1].root;
    plant_zero(&mut g, &a, stream);
    plant_zero(&mut g, &a, inner);
    let before = run(&g);
    let stats = ZeroGroups.run(&mut g).unwrap();
    g.verify().unwrap();
    assert_eq!(stats.changes.get("removed_units"), Some(&2));
    assert_eq!(weight_shape(&g, "conv1"), [5, 3, 3, 3]);
    assert_eq!(weight_shape(&g, "conv4"), [4, 5, 3, 3]);
    assert!(rel_l2(&before, &run(&g)) <= 1e-6);
}

#[test]
fn budgets_are_met_on_the_cost_model() {
    let (mut b, x) = Builder::new(3);
    let c1 = b.conv(x, 16, 1);
    let r1 = b.relu(c1);
    let c2 = b.conv(r1, 16, 1);
    let r2 = b.relu(c2);
    let c3 = b.conv(r2, 4, 1);
    let g = b.finish(c3);
    // FLOPs model for the test: 2·MACs of each Conv, read from its weight and output.
    let flops = |g: &Graph, id: NodeId| -> Option<u64> {
        match &g.node(id).op {
            Op::Conv(_) => {
                let w = g.value_type(g.node_inputs(id)[1]?).numel()? as u64;
                let out = g.node(id).outputs[0].ty.concrete_shape()?;
                Some(2 * w * (out[2] * out[3]) as u64)
            }
            _ => Some(0),
        }
    };
    for allocation in [Allocation::Uniform, Allocation::Global, Allocation::Lamp] {
        let options = Options { ratio: 0.4, allocation, ..Default::default() };
        let p = Planner::new(&g, &options, &flops, 0).unwrap();
        let (removal, _) = p.allocate(None).unwrap();
        let mut pruned = g.clone();
        p.apply(&mut pruned, &removal).unwrap();
        let after: u64 = pruned.node_ids().into_iter().map(|id| flops(&pruned, id).unwrap()).sum();
        let before = p.cost.flops_before;
        assert!(after as f64 <= before as f64 * 0.6, "{allocation:?}: {after} of {before}");
        assert!(after as f64 >= before as f64 * 0.5, "{allocation:?} overshoots: {after} of {before}");
        assert_eq!(p.cost.estimate(&p.analysis, &removal).0, after, "the estimate is exact");
    }
}
