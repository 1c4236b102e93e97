//! The e-graph language: one e-node per IR op application. Ops keep their typed IR form
//! ([`OpKey`]) and are compared by a canonical key, so every IR op is expressible without a
//! second op enum; constants carry their tensor; graph inputs and absent optional inputs are
//! leaves; a multi-output op is one tuple-valued e-node read through [`ENode::Get`].

use egg::{FromOp, Id, Language};
use kiln_ir::op::{Binary, Unary, Variadic};
use kiln_ir::{Op, Tensor};
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// An IR op as an e-graph operator. Equality, order and hashing use a canonical text key (the
/// op's debug form with its output count), or a serial number for ops owning nested graphs
/// (those are never merged with one another).
#[derive(Clone)]
pub struct OpKey(Arc<KeyInner>);

struct KeyInner {
    key: String,
    op: Op,
    outputs: usize,
}

impl OpKey {
    /// A single-output op.
    pub fn new(op: Op) -> OpKey {
        OpKey::with_outputs(op, 1)
    }

    /// An op producing `outputs` values (read through [`ENode::Get`] when more than one).
    pub fn with_outputs(op: Op, outputs: usize) -> OpKey {
        let key = format!("{op:?}/{outputs}");
        OpKey(Arc::new(KeyInner { key, op, outputs }))
    }

    /// An op that is only ever equal to itself (ops with nested graphs: their debug form would be
    /// the whole body).
    pub fn unique(op: Op, outputs: usize, serial: usize) -> OpKey {
        let key = format!("{}#{serial}/{outputs}", op.onnx_name());
        OpKey(Arc::new(KeyInner { key, op, outputs }))
    }

    pub fn op(&self) -> &Op {
        &self.0.op
    }

    pub fn outputs(&self) -> usize {
        self.0.outputs
    }

    fn key(&self) -> &str {
        &self.0.key
    }
}

impl PartialEq for OpKey {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.key() == other.key()
    }
}
impl Eq for OpKey {}
impl PartialOrd for OpKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for OpKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(other.key())
    }
}
impl Hash for OpKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state)
    }
}
impl fmt::Debug for OpKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// A constant tensor. Two constants are the same e-node only when they have the same serial
/// (the analysis numbers constants; equal values with different serials stay apart).
#[derive(Clone)]
pub struct Constant {
    pub serial: u32,
    pub value: Tensor,
}

impl PartialEq for Constant {
    fn eq(&self, other: &Self) -> bool {
        self.serial == other.serial
    }
}
impl Eq for Constant {}
impl PartialOrd for Constant {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Constant {
    fn cmp(&self, other: &Self) -> Ordering {
        self.serial.cmp(&other.serial)
    }
}
impl Hash for Constant {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.serial.hash(state)
    }
}
impl fmt::Debug for Constant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}:{:?}", self.serial, self.value)
    }
}

/// One e-node.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ENode {
    /// Graph input number k.
    Input(u32),
    /// A constant tensor.
    Const(Constant),
    /// An absent optional input (keeps input slots positional).
    Absent,
    /// An op applied to its inputs, by slot.
    Op(OpKey, Box<[Id]>),
    /// Output k of a multi-output op.
    Get(u32, [Id; 1]),
}

/// What pattern matching compares: the operator and its attributes, not the children.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Discriminant {
    Input(u32),
    Const(u32),
    Absent,
    Op(OpKey),
    Get(u32),
}

impl ENode {
    /// A single-output op node.
    pub fn op(op: Op, children: Vec<Id>) -> ENode {
        ENode::Op(OpKey::new(op), children.into_boxed_slice())
    }

    /// The IR op, for op nodes.
    pub fn ir_op(&self) -> Option<&Op> {
        match self {
            ENode::Op(k, _) => Some(k.op()),
            _ => None,
        }
    }
}

impl Language for ENode {
    type Discriminant = Discriminant;

    fn discriminant(&self) -> Discriminant {
        match self {
            ENode::Input(k) => Discriminant::Input(*k),
            ENode::Const(c) => Discriminant::Const(c.serial),
            ENode::Absent => Discriminant::Absent,
            ENode::Op(k, _) => Discriminant::Op(k.clone()),
            ENode::Get(k, _) => Discriminant::Get(*k),
        }
    }

    fn matches(&self, other: &Self) -> bool {
        match (self, other) {
            (ENode::Op(a, x), ENode::Op(b, y)) => x.len() == y.len() && a == b,
            (ENode::Get(a, _), ENode::Get(b, _)) => a == b,
            (ENode::Input(a), ENode::Input(b)) => a == b,
            (ENode::Const(a), ENode::Const(b)) => a == b,
            (ENode::Absent, ENode::Absent) => true,
            _ => false,
        }
    }

    fn children(&self) -> &[Id] {
        match self {
            ENode::Op(_, c) => c,
            ENode::Get(_, c) => c,
            _ => &[],
        }
    }

    fn children_mut(&mut self) -> &mut [Id] {
        match self {
            ENode::Op(_, c) => c,
            ENode::Get(_, c) => c,
            _ => &mut [],
        }
    }
}

impl fmt::Display for ENode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ENode::Input(k) => write!(f, "input{k}"),
            ENode::Const(c) => write!(f, "const{}", c.serial),
            ENode::Absent => f.write_str("Absent"),
            ENode::Op(k, _) => f.write_str(k.op().onnx_name()),
            ENode::Get(k, _) => write!(f, "get{k}"),
        }
    }
}

/// Ops that patterns may name by their ONNX name (those without attributes).
fn plain_op(name: &str) -> Option<Op> {
    use Binary as B;
    use Unary as U;
    let op = match name {
        "Add" => Op::Binary(B::Add),
        "Sub" => Op::Binary(B::Sub),
        "Mul" => Op::Binary(B::Mul),
        "Div" => Op::Binary(B::Div),
        "Pow" => Op::Binary(B::Pow),
        "Max" => Op::Binary(B::Max),
        "Min" => Op::Binary(B::Min),
        "Relu" => Op::Unary(U::Relu),
        "Sigmoid" => Op::Unary(U::Sigmoid),
        "Tanh" => Op::Unary(U::Tanh),
        "Erf" => Op::Unary(U::Erf),
        "Exp" => Op::Unary(U::Exp),
        "Log" => Op::Unary(U::Log),
        "Sqrt" => Op::Unary(U::Sqrt),
        "Neg" => Op::Unary(U::Neg),
        "Abs" => Op::Unary(U::Abs),
        "Reciprocal" => Op::Unary(U::Reciprocal),
        "HardSwish" => Op::Unary(U::HardSwish),
        "GeluErf" => Op::Unary(U::Gelu { tanh_approx: false }),
        "GeluTanh" => Op::Unary(U::Gelu { tanh_approx: true }),
        "Sum" => Op::Variadic(Variadic::Sum),
        "MatMul" => Op::MatMul,
        "Identity" => Op::Identity,
        "Dropout" => Op::Dropout,
        "Where" => Op::Where,
        "Clip" => Op::Clip,
        _ => return None,
    };
    Some(op)
}

impl FromOp for ENode {
    type Error = String;

    fn from_op(op: &str, children: Vec<Id>) -> Result<Self, Self::Error> {
        match (op, children.len()) {
            ("Absent", 0) => Ok(ENode::Absent),
            _ => plain_op(op).map(|o| ENode::op(o, children)).ok_or_else(|| format!("'{op}' is not a plain op")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_compare_by_attributes() {
        let a = ENode::op(Op::Softmax { axis: 1, legacy: false }, vec![Id::from(0)]);
        let b = ENode::op(Op::Softmax { axis: 1, legacy: false }, vec![Id::from(1)]);
        let c = ENode::op(Op::Softmax { axis: 2, legacy: false }, vec![Id::from(0)]);
        assert!(a.matches(&b) && !a.matches(&c));
        assert_ne!(a, b);
        assert_eq!(ENode::from_op("Mul", vec![Id::from(0), Id::from(1)]).unwrap().to_string(), "Mul");
        assert!(ENode::from_op("Conv", vec![]).is_err());
    }
}
