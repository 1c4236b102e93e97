//! Constant folding: a pure node whose inputs are all constants is evaluated once, at compile
//! time, and replaced by constants carrying its value names. Evaluation goes through an
//! [`Evaluator`] the driver supplies (passes never depend on a backend). Nested graphs are folded
//! too. Outputs larger than a size cap stay unfolded so folding never blows up memory.

use crate::pass::{Pass, PassError, PassStats};
use kiln_ir::{Graph, NodeId, Op, Tensor, TensorType, ValueRef};

/// Computes an op on concrete inputs (in practice: the reference interpreter's `eval_node`).
pub trait Evaluator {
    /// `inputs` by slot (`None` for absent optional inputs); returns `num_outputs` tensors.
    fn eval(&self, op: &Op, inputs: &[Option<Tensor>], num_outputs: usize) -> Result<Vec<Tensor>, String>;
}

/// Default cap on the bytes one folded node may produce: 1 GiB. Large enough for the biggest
/// `ConstantOfShape` weight generator of the ONNX light models (vgg19's 411 MB `fc6` weight).
pub const DEFAULT_MAX_FOLD_BYTES: u64 = 1 << 30;

/// Folds pure nodes with constant inputs into constants.
pub struct ConstantFold {
    evaluator: Box<dyn Evaluator>,
    max_bytes: u64,
}

/// What happened to one candidate node.
enum Outcome {
    NotConstant,
    Folded,
    TooLarge,
    EvalFailed,
}

impl ConstantFold {
    pub fn new(evaluator: Box<dyn Evaluator>) -> ConstantFold {
        ConstantFold { evaluator, max_bytes: DEFAULT_MAX_FOLD_BYTES }
    }

    /// Nodes whose outputs together exceed `bytes` are left alone.
    pub fn max_bytes(mut self, bytes: u64) -> ConstantFold {
        self.max_bytes = bytes;
        self
    }

    /// Folds `g` and its nested graphs; re-infers types where something changed (a folded shape
    /// input makes its readers' dims known).
    fn fold_graph(&self, g: &mut Graph, stats: &mut PassStats) -> Result<(), PassError> {
        let graph_error = |source| PassError::Graph { pass: "constant-fold".to_string(), source };
        let folded = |s: &PassStats| s.changes.get("folded").copied().unwrap_or(0);
        let before = folded(stats);
        for id in g.topo_order().map_err(graph_error)? {
            for sub in g.node_mut(id).op.subgraphs_mut() {
                self.fold_graph(sub, stats)?;
            }
            let kind = match self.try_fold(g, id) {
                Outcome::NotConstant => continue,
                Outcome::Folded => "folded",
                Outcome::TooLarge => "skipped_too_large",
                Outcome::EvalFailed => "skipped_eval_failed",
            };
            stats.record(kind, 1);
        }
        if folded(stats) > before {
            g.reinfer().map_err(graph_error)?;
        }
        Ok(())
    }

    fn try_fold(&self, g: &mut Graph, id: NodeId) -> Outcome {
        let node = g.node(id);
        if matches!(node.op, Op::Input | Op::Constant(_)) || !node.op.is_pure() {
            return Outcome::NotConstant;
        }
        let inputs: Option<Vec<Option<Tensor>>> = g
            .node_inputs(id)
            .into_iter()
            .map(|v| match v {
                None => Some(None),
                Some(v) => g.const_value(v).cloned().map(Some),
            })
            .collect();
        let Some(inputs) = inputs else { return Outcome::NotConstant };
        let declared: Vec<TensorType> = node.outputs.iter().map(|o| o.ty.clone()).collect();
        let declared_bytes = declared.iter().map(type_bytes).sum::<Option<u64>>();
        if declared_bytes.is_some_and(|b| b > self.max_bytes) {
            return Outcome::TooLarge;
        }
        let Ok(values) = self.evaluator.eval(&node.op, &inputs, declared.len()) else {
            return Outcome::EvalFailed;
        };
        if values.len() != declared.len() || !values.iter().zip(&declared).all(|(v, t)| fits(v, t)) {
            return Outcome::EvalFailed;
        }
        let actual: u64 = values.iter().map(|v| type_bytes(&v.tensor_type()).unwrap_or(u64::MAX)).sum();
        if actual > self.max_bytes {
            return Outcome::TooLarge;
        }
        let names: Vec<String> = node.outputs.iter().map(|o| o.name.clone()).collect();
        for (output, (name, value)) in names.into_iter().zip(values).enumerate() {
            let old = ValueRef { node: id, output };
            let c = g.add_const(name, value);
            g.replace_uses(old, c);
        }
        g.remove_node(id);
        Outcome::Folded
    }
}

impl Pass for ConstantFold {
    fn name(&self) -> &'static str {
        "constant-fold"
    }

    fn run(&self, g: &mut Graph) -> Result<PassStats, PassError> {
        let mut stats = PassStats::start(self.name(), g);
        self.fold_graph(g, &mut stats)?;
        Ok(stats.finish(g))
    }
}

/// Bytes a value of this type occupies, when every dim is known.
fn type_bytes(t: &TensorType) -> Option<u64> {
    t.concrete_shape()?.iter().try_fold(t.dtype.size_of() as u64, |acc, &d| acc.checked_mul(d as u64))
}

/// Whether an evaluated tensor agrees with the declared type (same dtype and rank, equal known dims).
fn fits(value: &Tensor, ty: &TensorType) -> bool {
    value.dtype() == ty.dtype
        && value.rank() == ty.rank()
        && value.shape().iter().zip(&ty.shape).all(|(&n, d)| d.known().is_none_or(|k| k == n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_ir::op::{Binary, Unary};
    use kiln_ir::{DType, Dim};

    /// Evaluates f32 Add/Mul of equal shapes and ConstantOfShape by hand; fails on anything else.
    struct Fake;

    impl Evaluator for Fake {
        fn eval(&self, op: &Op, inputs: &[Option<Tensor>], _: usize) -> Result<Vec<Tensor>, String> {
            let arg = |i: usize| inputs[i].as_ref().ok_or("missing input").map(|t| t.to_vec::<f32>());
            let out = match op {
                Op::Binary(b @ (Binary::Add | Binary::Mul)) => {
                    let (a, c) = (arg(0)?, arg(1)?);
                    let shape = inputs[0].as_ref().ok_or("missing input")?.shape().to_vec();
                    let v = a.iter().zip(&c).map(|(&x, &y)| if *b == Binary::Add { x + y } else { x * y }).collect();
                    Tensor::from_vec(&shape, v).map_err(|e| e.to_string())?
                }
                Op::ConstantOfShape { value } => {
                    let dims: Vec<usize> =
                        inputs[0].as_ref().ok_or("missing")?.to_i64_vec().iter().map(|&d| d as usize).collect();
                    Tensor::full(value.dtype(), &dims, value.to_f64_vec()[0]).map_err(|e| e.to_string())?
                }
                other => return Err(format!("{} not supported", other.onnx_name())),
            };
            Ok(vec![out])
        }
    }

    fn fold(g: &mut Graph) -> PassStats {
        let stats = ConstantFold::new(Box::new(Fake)).run(g).unwrap();
        g.verify().unwrap();
        stats
    }

    #[test]
    fn folds_chains_of_constants_keeping_names() {
        let mut g = Graph::new("t");
        let x = g.add_input("x", TensorType::new(DType::F32, [Dim::from("n"), Dim::from(2)]));
        let a = g.add_const("a", Tensor::vector(vec![1.0f32, 2.0]));
        let b = g.add_const("b", Tensor::vector(vec![3.0f32, 4.0]));
        let s = g.add("s", Op::Binary(Binary::Add), &[a, b]).unwrap();
        let p = g.add("p", Op::Binary(Binary::Mul), &[s, b]).unwrap();
        let y = g.add("y", Op::Binary(Binary::Add), &[x, p]).unwrap();
        g.set_outputs(vec![y]);
        let stats = fold(&mut g);
        assert_eq!(stats.changes.get("folded"), Some(&2));
        // (1 + 3) * 3 = 12, (2 + 4) * 4 = 24
        let p = g.find_value("p").unwrap();
        assert_eq!(g.const_value(p).unwrap().to_vec::<f32>(), vec![12.0, 24.0]);
        assert_eq!(g.node_inputs(y.node)[1], Some(p));
        assert!(g.const_value(y).is_none(), "a node reading a graph input is not constant");
    }

    #[test]
    fn folds_weight_generators_and_makes_readers_dims_known() {
        let mut g = Graph::new("t");
        let shape = g.add_const("w__SHAPE", Tensor::vector(vec![2i64, 3]));
        let w = g.add("w", Op::ConstantOfShape { value: Tensor::vector(vec![0.02f32]) }, &[shape]).unwrap();
        let y = g.add("y", Op::Unary(Unary::Relu), &[w]).unwrap();
        g.set_outputs(vec![y]);
        fold(&mut g);
        let w = g.find_value("w").unwrap();
        assert_eq!(g.const_value(w).unwrap().to_vec::<f32>(), vec![0.02f32; 6]);
        assert_eq!(g.value_type(y).to_string(), "f32[2,3]");
    }

    #[test]
    fn respects_the_size_cap_and_skips_what_cannot_be_evaluated() {
        let mut g = Graph::new("t");
        let shape = g.add_const("shape", Tensor::vector(vec![1000i64]));
        let big = g.add("big", Op::ConstantOfShape { value: Tensor::vector(vec![1.0f32]) }, &[shape]).unwrap();
        let c = g.add_const("c", Tensor::vector(vec![-1.0f32]));
        let r = g.add("r", Op::Unary(Unary::Relu), &[c]).unwrap();
        g.set_outputs(vec![big, r]);
        let stats = ConstantFold::new(Box::new(Fake)).max_bytes(3999).run(&mut g).unwrap();
        g.verify().unwrap();
        assert_eq!(stats.changes.get("skipped_too_large"), Some(&1));
        assert_eq!(stats.changes.get("skipped_eval_failed"), Some(&1));
        assert_eq!(stats.nodes_after, stats.nodes_before);
        let stats = ConstantFold::new(Box::new(Fake)).max_bytes(4000).run(&mut g).unwrap();
        assert_eq!(stats.changes.get("folded"), Some(&1));
    }

    #[test]
    fn folds_inside_nested_graphs() {
        let mut branch = Graph::new("then");
        let a = branch.add_const("ba", Tensor::scalar(2.0f32));
        let s = branch.add("bs", Op::Binary(Binary::Mul), &[a, a]).unwrap();
        branch.set_outputs(vec![s]);
        let mut other = Graph::new("else");
        let z = other.add_const("bz", Tensor::scalar(0.0f32));
        other.set_outputs(vec![z]);
        let mut g = Graph::new("t");
        let cond = g.add_input("cond", TensorType::scalar(DType::Bool));
        let op = Op::If { then_branch: Box::new(branch), else_branch: Box::new(other) };
        let y = g.add("y", op, &[cond]).unwrap();
        g.set_outputs(vec![y]);
        let stats = fold(&mut g);
        assert_eq!(stats.changes.get("folded"), Some(&1));
        let Op::If { then_branch, .. } = &g.node(y.node).op else { panic!("the If node stays") };
        let bs = then_branch.find_value("bs").unwrap();
        assert_eq!(then_branch.const_value(bs).unwrap().to_vec::<f32>(), vec![4.0]);
    }
}
