//! Simplification: algebraic identities, no-op data movement, Dropout/Identity at inference,
//! collapsed chains of reshapes, transposes and casts. (Constant folding is the analysis's job,
//! and common subexpressions merge by hash-consing.)

use super::guards::{add_op, find_op, is_neutral, same_known_type, ty, value};
use super::OpRule;
use crate::egraph::{EGraph, Rewrite};
use egg::{rewrite, Id};
use kiln_ir::op::{Binary, Variadic};
use kiln_ir::{DType, Op};

pub fn rules() -> Vec<Rewrite> {
    vec![
        // x * 1 == x
        rewrite!("mul-one"; "(Mul ?x ?c)" => "?x" if is_neutral(1.0, "?c", "?x")),
        // 1 * x == x
        rewrite!("one-mul"; "(Mul ?c ?x)" => "?x" if is_neutral(1.0, "?c", "?x")),
        // x + 0 == x
        rewrite!("add-zero"; "(Add ?x ?c)" => "?x" if is_neutral(0.0, "?c", "?x")),
        // 0 + x == x
        rewrite!("zero-add"; "(Add ?c ?x)" => "?x" if is_neutral(0.0, "?c", "?x")),
        // x - 0 == x
        rewrite!("sub-zero"; "(Sub ?x ?c)" => "?x" if is_neutral(0.0, "?c", "?x")),
        // x / 1 == x
        rewrite!("div-one"; "(Div ?x ?c)" => "?x" if is_neutral(1.0, "?c", "?x")),
        // Identity(x) == x
        rewrite!("identity"; "(Identity ?x)" => "?x"),
        // -(-x) == x
        rewrite!("neg-neg"; "(Neg (Neg ?x))" => "?x"),
        // relu(relu(x)) == relu(x)
        rewrite!("relu-relu"; "(Relu (Relu ?x))" => "(Relu ?x)"),
        // Dropout(x) == x at inference
        OpRule::rewrite("dropout", |op| matches!(op, Op::Dropout), |_, _, _, ins| Some(ins[0])),
        // Sum(x) == x; Sum(a, b, c) == (a + b) + c
        OpRule::rewrite("sum-to-add", |op| matches!(op, Op::Variadic(Variadic::Sum)), sum_to_add),
        // Concat(x) == x
        OpRule::rewrite(
            "concat-one",
            |op| matches!(op, Op::Concat { .. }),
            |eg, root, _, ins| (ins.len() == 1 && same_known_type(eg, root, ins[0])).then_some(ins[0]),
        ),
        // Reshape/Flatten/Squeeze/Unsqueeze/Expand/Pad/Slice/Cast to x's own type == x
        OpRule::rewrite("no-op-movement", is_shape_op, no_op_movement),
        // Reshape(Reshape(x, s1), s2) == Reshape(x, s2)
        OpRule::rewrite("reshape-reshape", |op| matches!(op, Op::Reshape { .. }), reshape_reshape),
        // Transpose(Transpose(x, p), q) == Transpose(x, p∘q)
        OpRule::rewrite("transpose-transpose", |op| matches!(op, Op::Transpose { .. }), transpose_transpose),
        // Cast(Cast(x, a), b) == Cast(x, b) when x → a is exact
        OpRule::rewrite("cast-cast", |op| matches!(op, Op::Cast { .. }), cast_cast),
    ]
}

fn sum_to_add(eg: &mut EGraph, root: Id, _: &Op, ins: &[Id]) -> Option<Id> {
    if ins.len() == 1 {
        return same_known_type(eg, root, ins[0]).then_some(ins[0]);
    }
    let mut acc = ins[0];
    for &x in &ins[1..] {
        acc = add_op(eg, Op::Binary(Binary::Add), vec![acc, x]);
    }
    Some(acc)
}

fn is_shape_op(op: &Op) -> bool {
    matches!(
        op,
        Op::Reshape { .. }
            | Op::Flatten { .. }
            | Op::Squeeze
            | Op::Unsqueeze
            | Op::Expand
            | Op::Pad { .. }
            | Op::Slice
            | Op::Cast { .. }
            | Op::Transpose { .. }
    )
}

/// Pads all zero; slices with unit steps; transposes by the identity permutation.
fn keeps_elements_in_place(eg: &EGraph, op: &Op, ins: &[Id]) -> bool {
    let all = |i: usize, v: i64| {
        ins.get(i).and_then(|&c| value(eg, c)).is_some_and(|t| t.to_i64_vec().iter().all(|&x| x == v))
    };
    match op {
        Op::Pad { .. } => all(1, 0),
        Op::Slice => ins.len() < 5 || super::guards::absent(eg, ins[4]) || all(4, 1),
        Op::Transpose { perm } => {
            let rank = ty(eg, ins[0]).map_or(0, |t| t.rank());
            perm.as_ref().map_or(rank <= 1, |p| p.iter().enumerate().all(|(i, &a)| i == a))
        }
        _ => true,
    }
}

fn no_op_movement(eg: &mut EGraph, root: Id, op: &Op, ins: &[Id]) -> Option<Id> {
    (same_known_type(eg, root, ins[0]) && keeps_elements_in_place(eg, op, ins)).then_some(ins[0])
}

fn reshape_reshape(eg: &mut EGraph, _: Id, op: &Op, ins: &[Id]) -> Option<Id> {
    let Op::Reshape { allowzero } = op else { return None };
    let shape = value(eg, ins[1])?;
    if !allowzero && shape.to_i64_vec().contains(&0) {
        return None;
    }
    let (_, inner) = find_op(eg, ins[0], |o| matches!(o, Op::Reshape { .. }).then_some(()))?;
    Some(add_op(eg, op.clone(), vec![inner[0], ins[1]]))
}

fn transpose_transpose(eg: &mut EGraph, _: Id, op: &Op, ins: &[Id]) -> Option<Id> {
    let Op::Transpose { perm: Some(q) } = op else { return None };
    let (p, inner) = find_op(eg, ins[0], |o| match o {
        Op::Transpose { perm: Some(p) } => Some(p.clone()),
        _ => None,
    })?;
    // out[i] = mid[q[i]] = x[p[q[i]]]
    let perm: Vec<usize> = q.iter().map(|&i| p.get(i).copied()).collect::<Option<_>>()?;
    if perm.iter().enumerate().all(|(i, &a)| i == a) {
        return Some(inner[0]);
    }
    Some(add_op(eg, Op::Transpose { perm: Some(perm) }, vec![inner[0]]))
}

/// Every value of `from` is exactly representable in `to`.
fn exact_cast(from: DType, to: DType) -> bool {
    use DType::*;
    let int_bits = |d: DType| match d {
        I8 | U8 => Some(8),
        I16 | U16 => Some(16),
        I32 | U32 => Some(32),
        I64 | U64 => Some(64),
        _ => None,
    };
    match (from, to) {
        _ if from == to => true,
        (Bool, _) => true,
        (F16, F32 | F64) | (F32, F64) => true,
        (f, F32) => int_bits(f).is_some_and(|b| b <= 16),
        (f, F64) => int_bits(f).is_some_and(|b| b <= 32),
        (I8, I16 | I32 | I64) | (I16, I32 | I64) | (I32, I64) => true,
        (U8, U16 | U32 | U64 | I16 | I32 | I64) | (U16, U32 | U64 | I32 | I64) | (U32, U64 | I64) => true,
        _ => false,
    }
}

fn cast_cast(eg: &mut EGraph, _: Id, op: &Op, ins: &[Id]) -> Option<Id> {
    let (mid, inner) = find_op(eg, ins[0], |o| match o {
        Op::Cast { to } => Some(*to),
        _ => None,
    })?;
    let from = ty(eg, inner[0])?.dtype;
    exact_cast(from, mid).then(|| add_op(eg, op.clone(), vec![inner[0]]))
}
