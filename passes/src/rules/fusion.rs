//! Fusion by recognition: decomposed ONNX forms become single IR ops — Softmax, LayerNorm (and
//! its affine tail), GELU (Erf form and tanh approximation), HardSwish — and MatMul + Add becomes
//! Gemm. (Grouping elementwise chains and conv/gemm epilogues into kernels is the JIT's lowering.)

use super::guards::{absent, add_const, add_op, broadcasts_into, dims, find_op, same_known_type, ty, value};
use super::OpRule;
use crate::egraph::{EGraph, Rewrite};
use egg::Id;
use kiln_ir::op::{Binary, Gemm, ReduceOp, Unary};
use kiln_ir::{Op, Tensor};

pub fn rules() -> Vec<Rewrite> {
    vec![
        // a @ b + c == Gemm(a, b, c) for 2-D a, b
        OpRule::rewrite("matmul-add-to-gemm", |op| matches!(op, Op::Binary(Binary::Add)), matmul_add_gemm),
        // exp(x − max(x)) / Σ exp(x − max(x)) == Softmax(x)
        OpRule::rewrite("softmax", |op| matches!(op, Op::Binary(Binary::Div)), softmax),
        // (x − E[x]) / √(E[(x − E[x])²] + ε) == LayerNorm(x, 1)
        OpRule::rewrite("layernorm", |op| matches!(op, Op::Binary(Binary::Div)), layernorm),
        // LayerNorm(x, s, b) · g == LayerNorm(x, s·g, b·g)
        OpRule::rewrite("layernorm-scale", |op| matches!(op, Op::Binary(Binary::Mul)), layernorm_scale),
        // LayerNorm(x, s, b) + c == LayerNorm(x, s, b + c)
        OpRule::rewrite("layernorm-shift", |op| matches!(op, Op::Binary(Binary::Add)), layernorm_shift),
        // 0.5 · x · (1 + erf(x / √2)) == Gelu(x)
        OpRule::rewrite("gelu-erf", is_product, gelu_erf),
        // 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 x³))) == Gelu_tanh(x)
        OpRule::rewrite("gelu-tanh", is_product, gelu_tanh),
        // x · HardSigmoid_{1/6, 1/2}(x) == x · clip(x + 3, 0, 6) / 6 == HardSwish(x)
        OpRule::rewrite("hardswish", is_product, hardswish),
    ]
}

fn is_product(op: &Op) -> bool {
    matches!(op, Op::Binary(Binary::Mul | Binary::Div))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-4 * b.abs().max(1e-3)
}

/// The value of a one-element float constant.
fn scalar(eg: &EGraph, id: Id) -> Option<f64> {
    value(eg, id).filter(|t| t.len() == 1 && t.dtype().is_float()).map(|t| t.to_f64_vec()[0])
}

fn matmul_add_gemm(eg: &mut EGraph, root: Id, _: &Op, ins: &[Id]) -> Option<Id> {
    for (mm, c) in [(ins[0], ins[1]), (ins[1], ins[0])] {
        let Some(((), m)) = find_op(eg, mm, |o| matches!(o, Op::MatMul).then_some(())) else { continue };
        let two_d = [m[0], m[1]].iter().all(|&i| ty(eg, i).is_some_and(|t| t.rank() == 2));
        let fits = match (ty(eg, c), ty(eg, root)) {
            (Some(ct), Some(rt)) => broadcasts_into(&ct.shape, &rt.shape),
            _ => false,
        };
        if two_d && fits && same_known_type(eg, root, mm) {
            return Some(add_op(eg, Op::Gemm(Gemm::default()), vec![m[0], m[1], c]));
        }
    }
    None
}

/// The normalized axes of a keepdims reduction of `x`.
fn reduce_axes(eg: &EGraph, id: Id, which: ReduceOp) -> Option<(Id, Vec<usize>)> {
    let (keep, ins) = find_op(eg, id, |o| match o {
        Op::Reduce { op, keepdims, noop_with_empty_axes: false } if *op == which => Some(*keepdims),
        _ => None,
    })?;
    let rank = ty(eg, ins[0])?.rank();
    let axes = match ins.get(1) {
        Some(&a) if !absent(eg, a) => value(eg, a)?.to_i64_vec(),
        _ => (0..rank as i64).collect(),
    };
    let mut axes: Vec<usize> = axes.iter().map(|&a| kiln_ir::op::normalize_axis(a, rank)).collect::<Option<_>>()?;
    axes.sort_unstable();
    keep.then_some((ins[0], axes))
}

fn softmax(eg: &mut EGraph, root: Id, _: &Op, ins: &[Id]) -> Option<Id> {
    let (e, s) = (ins[0], ins[1]);
    let ((), z) = find_op(eg, e, |o| matches!(o, Op::Unary(Unary::Exp)).then_some(()))?;
    let (summed, axes) = reduce_axes(eg, s, ReduceOp::Sum)?;
    if summed != e || axes.len() != 1 {
        return None;
    }
    // exp(x − max x) or plain exp(x).
    let x = match find_op(eg, z[0], |o| matches!(o, Op::Binary(Binary::Sub)).then_some(())) {
        Some(((), d)) if reduce_axes(eg, d[1], ReduceOp::Max).is_some_and(|(x, a)| x == d[0] && a == axes) => d[0],
        _ => z[0],
    };
    if !same_known_type(eg, root, x) {
        return None;
    }
    Some(add_op(eg, Op::Softmax { axis: axes[0] as i64, legacy: false }, vec![x]))
}

fn layernorm(eg: &mut EGraph, root: Id, _: &Op, ins: &[Id]) -> Option<Id> {
    let (d, den) = (ins[0], ins[1]);
    let ((), sub) = find_op(eg, d, |o| matches!(o, Op::Binary(Binary::Sub)).then_some(()))?;
    let x = sub[0];
    let (mx, axes) = reduce_axes(eg, sub[1], ReduceOp::Mean)?;
    let rank = ty(eg, x)?.rank();
    let first = *axes.first()?;
    if mx != x || axes != (first..rank).collect::<Vec<_>>() {
        return None;
    }
    let ((), sq) = find_op(eg, den, |o| matches!(o, Op::Unary(Unary::Sqrt)).then_some(()))?;
    let ((), plus) = find_op(eg, sq[0], |o| matches!(o, Op::Binary(Binary::Add)).then_some(()))?;
    let (var, eps) = match (scalar(eg, plus[1]), scalar(eg, plus[0])) {
        (Some(e), _) => (plus[0], e),
        (None, Some(e)) => (plus[1], e),
        _ => return None,
    };
    let (v, vaxes) = reduce_axes(eg, var, ReduceOp::Mean)?;
    let squares_d = find_op(eg, v, |o| match o {
        Op::Binary(Binary::Pow) => Some(true),
        Op::Binary(Binary::Mul) => Some(false),
        _ => None,
    })
    .is_some_and(|(pow, a)| if pow { a[0] == d && scalar_any(eg, a[1]) == Some(2.0) } else { a[0] == d && a[1] == d });
    if !squares_d || vaxes != axes || !same_known_type(eg, root, x) {
        return None;
    }
    let xt = ty(eg, x)?.clone();
    let norm: Vec<usize> = xt.concrete_shape()?[first..].to_vec();
    let ones = Tensor::full(xt.dtype, &norm, 1.0).ok()?;
    let scale = add_const(eg, ones);
    let none = eg.add(crate::egraph::ENode::Absent);
    Some(add_op(eg, Op::LayerNorm { axis: first as i64, epsilon: eps as f32 }, vec![x, scale, none]))
}

/// A one-element constant of any numeric dtype.
fn scalar_any(eg: &EGraph, id: Id) -> Option<f64> {
    value(eg, id).filter(|t| t.len() == 1).map(|t| t.to_f64_vec()[0])
}

/// A LayerNorm in class `id` with single output: (axis, epsilon, x, scale, bias?).
type Ln = (i64, f32, Id, Id, Option<Id>);

fn find_ln(eg: &EGraph, id: Id) -> Option<Ln> {
    let ((axis, eps), ins) = find_op(eg, id, |o| match o {
        Op::LayerNorm { axis, epsilon } => Some((*axis, *epsilon)),
        _ => None,
    })?;
    let bias = ins.get(2).copied().filter(|&b| !absent(eg, b));
    Some((axis, eps, ins[0], ins[1], bias))
}

/// `c` as a tensor of the normalized shape of a LayerNorm over `x` from `axis` (c broadcasts
/// into it), computed by the analysis (Expand of a constant folds).
fn over_normalized(eg: &mut EGraph, x: Id, axis: i64, c: Id) -> Option<Id> {
    let xd = dims(eg, x)?;
    let a = kiln_ir::op::normalize_axis(axis, xd.len())?;
    let norm = kiln_ir::known_shape(&xd[a..]);
    let ct = ty(eg, c)?;
    if value(eg, c).is_none() || !broadcasts_into(&ct.shape, &norm) {
        return None;
    }
    let shape = add_const(eg, Tensor::vector(xd[a..].iter().map(|&d| d as i64).collect()));
    let e = add_op(eg, Op::Expand, vec![c, shape]);
    value(eg, e).is_some().then_some(e)
}

fn layernorm_scale(eg: &mut EGraph, root: Id, _: &Op, ins: &[Id]) -> Option<Id> {
    for (l, g) in [(ins[0], ins[1]), (ins[1], ins[0])] {
        let Some((axis, eps, x, s, b)) = find_ln(eg, l) else { continue };
        if !same_known_type(eg, root, l) {
            continue;
        }
        let Some(g) = over_normalized(eg, x, axis, g) else { continue };
        let s2 = add_op(eg, Op::Binary(Binary::Mul), vec![s, g]);
        let b2 = match b {
            Some(b) => add_op(eg, Op::Binary(Binary::Mul), vec![b, g]),
            None => eg.add(crate::egraph::ENode::Absent),
        };
        return Some(add_op(eg, Op::LayerNorm { axis, epsilon: eps }, vec![x, s2, b2]));
    }
    None
}

fn layernorm_shift(eg: &mut EGraph, root: Id, _: &Op, ins: &[Id]) -> Option<Id> {
    for (l, c) in [(ins[0], ins[1]), (ins[1], ins[0])] {
        let Some((axis, eps, x, s, b)) = find_ln(eg, l) else { continue };
        if !same_known_type(eg, root, l) {
            continue;
        }
        let Some(c) = over_normalized(eg, x, axis, c) else { continue };
        let b2 = match b {
            Some(b) => add_op(eg, Op::Binary(Binary::Add), vec![b, c]),
            None => c,
        };
        return Some(add_op(eg, Op::LayerNorm { axis, epsilon: eps }, vec![x, s, b2]));
    }
    None
}

/// A product flattened into non-constant factors and the product of its scalar constants
/// (Mul and division by a constant; `x³` as Pow(x, 3) counts as three factors).
fn factors(eg: &EGraph, id: Id, depth: usize, out: &mut Vec<Id>, k: &mut f64) {
    if let Some(c) = scalar(eg, id) {
        *k *= c;
        return;
    }
    if depth > 0 {
        if let Some((b, ins)) = find_op(eg, id, |o| match o {
            Op::Binary(b @ (Binary::Mul | Binary::Div | Binary::Pow)) => Some(*b),
            _ => None,
        }) {
            match b {
                Binary::Mul => {
                    factors(eg, ins[0], depth - 1, out, k);
                    factors(eg, ins[1], depth - 1, out, k);
                    return;
                }
                Binary::Div if scalar(eg, ins[1]).is_some() => {
                    factors(eg, ins[0], depth - 1, out, k);
                    *k /= scalar(eg, ins[1]).expect("checked");
                    return;
                }
                Binary::Pow if scalar_any(eg, ins[1]) == Some(3.0) => {
                    out.extend([ins[0]; 3]);
                    return;
                }
                _ => {}
            }
        }
    }
    out.push(id);
}

fn product(eg: &EGraph, id: Id) -> (Vec<Id>, f64) {
    let (mut out, mut k) = (Vec::new(), 1.0);
    factors(eg, id, 4, &mut out, &mut k);
    (out, k)
}

/// `1 + f(u)` (either order) with f picked by `unary`: returns u.
fn one_plus(eg: &EGraph, id: Id, unary: Unary) -> Option<Id> {
    let ((), a) = find_op(eg, id, |o| matches!(o, Op::Binary(Binary::Add)).then_some(()))?;
    let inner = if scalar(eg, a[1]).is_some_and(|c| close(c, 1.0)) {
        a[0]
    } else if scalar(eg, a[0]).is_some_and(|c| close(c, 1.0)) {
        a[1]
    } else {
        return None;
    };
    let ((), u) = find_op(eg, inner, |o| (*o == Op::Unary(unary)).then_some(()))?;
    Some(u[0])
}

/// Recognizes `k · x · (1 + f(u))` with k = 0.5: returns (x, u).
fn half_x_one_plus(eg: &EGraph, root: Id, unary: Unary) -> Option<(Id, Id)> {
    let (fs, k) = product(eg, root);
    if fs.len() != 2 || !close(k, 0.5) {
        return None;
    }
    for (x, p) in [(fs[0], fs[1]), (fs[1], fs[0])] {
        if let Some(u) = one_plus(eg, p, unary) {
            return Some((x, u));
        }
    }
    None
}

fn gelu_erf(eg: &mut EGraph, root: Id, _: &Op, _: &[Id]) -> Option<Id> {
    let (x, u) = half_x_one_plus(eg, root, Unary::Erf)?;
    let (fs, k) = product(eg, u);
    (fs == [x] && close(k, std::f64::consts::FRAC_1_SQRT_2) && same_known_type(eg, root, x))
        .then(|| add_op(eg, Op::Unary(Unary::Gelu { tanh_approx: false }), vec![x]))
}

fn gelu_tanh(eg: &mut EGraph, root: Id, _: &Op, _: &[Id]) -> Option<Id> {
    let (x, u) = half_x_one_plus(eg, root, Unary::Tanh)?;
    let (fs, k) = product(eg, u);
    if fs.len() != 1 || !close(k, (2.0 / std::f64::consts::PI).sqrt()) {
        return None;
    }
    // x + 0.044715 · x³ (either order)
    let ((), a) = find_op(eg, fs[0], |o| matches!(o, Op::Binary(Binary::Add)).then_some(()))?;
    let cubic = |t: Id| {
        let (f, c) = product(eg, t);
        f == [x, x, x] && close(c, 0.044715)
    };
    let ok = (a[0] == x && cubic(a[1])) || (a[1] == x && cubic(a[0]));
    (ok && same_known_type(eg, root, x)).then(|| add_op(eg, Op::Unary(Unary::Gelu { tanh_approx: true }), vec![x]))
}

fn hardswish(eg: &mut EGraph, root: Id, _: &Op, _: &[Id]) -> Option<Id> {
    let (fs, k) = product(eg, root);
    if fs.len() != 2 {
        return None;
    }
    for (x, h) in [(fs[0], fs[1]), (fs[1], fs[0])] {
        let hs = find_op(eg, h, |o| match o {
            Op::Unary(Unary::HardSigmoid { alpha, beta }) => Some((*alpha as f64, *beta as f64)),
            _ => None,
        });
        let ok = match hs {
            // x · hardsigmoid(x)
            Some(((a, b), ins)) => ins[0] == x && close(a * k, 1.0 / 6.0) && close(b * k, 0.5) && close(k, 1.0),
            // x · clip(x + 3, 0, 6) · k with k = 1/6
            None => close(k, 1.0 / 6.0) && relu6_of_x_plus_3(eg, h, x),
        };
        if ok && same_known_type(eg, root, x) {
            return Some(add_op(eg, Op::Unary(Unary::HardSwish), vec![x]));
        }
    }
    None
}

fn relu6_of_x_plus_3(eg: &EGraph, h: Id, x: Id) -> bool {
    let Some(((), c)) = find_op(eg, h, |o| matches!(o, Op::Clip).then_some(())) else { return false };
    let bounds = c.len() == 3 && scalar(eg, c[1]) == Some(0.0) && scalar(eg, c[2]) == Some(6.0);
    let plus3 = find_op(eg, c[0], |o| matches!(o, Op::Binary(Binary::Add)).then_some(())).is_some_and(|((), a)| {
        (a[0] == x && scalar(eg, a[1]) == Some(3.0)) || (a[1] == x && scalar(eg, a[0]) == Some(3.0))
    });
    bounds && plus3
}
