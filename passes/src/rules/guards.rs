//! Guards and accessors rules share. Every guard reads only e-class analysis data (types and
//! constant values); structural lookups ([`find_op`]) read the e-nodes of one class.

use crate::egraph::{EGraph, ENode};
use egg::{Id, Subst, Var};
use kiln_ir::{Dim, Op, Tensor, TensorType};

/// The constant value of a class.
pub fn value(eg: &EGraph, id: Id) -> Option<&Tensor> {
    eg[id].data.value.as_ref()
}

/// The type of a single-valued class.
pub fn ty(eg: &EGraph, id: Id) -> Option<&TensorType> {
    eg[id].data.ty()
}

/// The class is an absent optional input.
pub fn absent(eg: &EGraph, id: Id) -> bool {
    eg[id].data.absent
}

/// Concrete extents of a class's value.
pub fn dims(eg: &EGraph, id: Id) -> Option<Vec<usize>> {
    ty(eg, id)?.concrete_shape()
}

/// The first op node of a class accepted by `pick`, with its input classes.
pub fn find_op<T>(eg: &EGraph, id: Id, pick: impl Fn(&Op) -> Option<T>) -> Option<(T, Vec<Id>)> {
    eg[id].nodes.iter().find_map(|n| match n {
        ENode::Op(k, ch) if k.outputs() == 1 => pick(k.op()).map(|t| (t, ch.iter().map(|&c| eg.find(c)).collect())),
        _ => None,
    })
}

/// A constant whose every element equals `v`.
pub fn is_all(eg: &EGraph, id: Id, v: f64) -> bool {
    value(eg, id).is_some_and(|t| !t.is_empty() && t.to_f64_vec().iter().all(|&x| x == v))
}

/// `small` broadcasts into `big` without enlarging it.
pub fn broadcasts_into(small: &[Dim], big: &[Dim]) -> bool {
    small.len() <= big.len()
        && small.iter().rev().zip(big.iter().rev()).all(|(s, b)| *s == Dim::Known(1) || (s == b && s.known().is_some()))
}

/// Two classes have the same, fully known, type.
pub fn same_known_type(eg: &EGraph, a: Id, b: Id) -> bool {
    match (ty(eg, a), ty(eg, b)) {
        (Some(x), Some(y)) => x == y && x.concrete_shape().is_some(),
        _ => false,
    }
}

/// Guard for `x op c → x`: `c` is a constant filled with `v`, of x's dtype, broadcasting into x,
/// and the result has x's type.
pub fn is_neutral(v: f64, c: &'static str, x: &'static str) -> impl Fn(&mut EGraph, Id, &Subst) -> bool {
    let (c, x): (Var, Var) = (c.parse().expect("a variable"), x.parse().expect("a variable"));
    move |eg, root, s| {
        let (cid, xid) = (s[c], s[x]);
        let (Some(ct), Some(xt), Some(rt)) = (ty(eg, cid), ty(eg, xid), ty(eg, root)) else { return false };
        is_all(eg, cid, v) && ct.dtype == xt.dtype && broadcasts_into(&ct.shape, &xt.shape) && rt == xt
    }
}

/// Guard: two pattern variables have the same known type.
pub fn same_type(a: &'static str, b: &'static str) -> impl Fn(&mut EGraph, Id, &Subst) -> bool {
    let (a, b): (Var, Var) = (a.parse().expect("a variable"), b.parse().expect("a variable"));
    move |eg, _, s| same_known_type(eg, s[a], s[b])
}

/// Adds a constant and returns its class.
pub fn add_const(eg: &mut EGraph, t: Tensor) -> Id {
    let c = eg.analysis.constant(t);
    eg.add(c)
}

/// Adds a single-output op node.
pub fn add_op(eg: &mut EGraph, op: Op, children: Vec<Id>) -> Id {
    eg.add(ENode::op(op, children))
}
