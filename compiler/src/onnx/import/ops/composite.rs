//! ONNX ops Kiln expresses as a few IR nodes instead of an op of its own: activations (PRelu,
//! Swish, Shrink), predicates (IsNaN, IsInf, BitwiseNot), normalizations (RMSNormalization,
//! LpNormalization, MeanVarianceNormalization, GroupNormalization, LayerNormalization's statistics outputs), EyeLike, Trilu, OneHot, the Hann/Hamming/Blackman windows, DepthToSpace and SpaceToDepth. Helper
//! nodes are named `<node>__<step>`; the last node keeps the node's name.

use super::Registry;
use crate::onnx::import::node::{Lowered, OpCx};
use crate::onnx::import::ImportError;
use kiln_ir::op::{normalize_axis, Binary, ReduceOp, Unary};
use kiln_ir::{DType, Op, Tensor, ValueRef};

pub(super) fn register(r: &mut Registry) {
    r.insert("PRelu", prelu);
    r.insert("Swish", swish);
    r.insert("Shrink", shrink);
    r.insert("IsNaN", is_nan);
    r.insert("IsInf", is_inf);
    r.insert("BitwiseNot", bitwise_not);
    r.insert("RMSNormalization", rms_norm);
    r.insert("LpNormalization", lp_norm);
    r.insert("MeanVarianceNormalization", mean_variance_norm);
    r.insert("GroupNormalization", group_norm);
    r.insert("EyeLike", eye_like);
    r.insert("Trilu", trilu);
    r.insert("OneHot", one_hot);
    for (name, _) in WINDOWS {
        r.insert(name, window);
    }
    r.insert("DepthToSpace", depth_to_space);
    r.insert("SpaceToDepth", space_to_depth);
}

/// `x < 0 ? x * slope : x`
fn prelu(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let (x, slope) = (cx.input(0)?, cx.input(1)?);
    let zero = cx.scalar_like("zero", 0, 0.0)?;
    let negative = cx.helper("negative", Op::Binary(Binary::Less), &[x, zero])?;
    let scaled = cx.helper("scaled", Op::Binary(Binary::Mul), &[x, slope])?;
    Ok(Lowered::new(Op::Where, vec![Some(negative), Some(scaled), Some(x)]))
}

/// `x * sigmoid(alpha * x)`
fn swish(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let x = cx.input(0)?;
    let alpha = cx.scalar_like("alpha", 0, cx.attrs.float_or("alpha", 1.0)? as f64)?;
    let scaled = cx.helper("scaled", Op::Binary(Binary::Mul), &[x, alpha])?;
    let gate = cx.helper("gate", Op::Unary(Unary::Sigmoid), &[scaled])?;
    Ok(Lowered::new(Op::Binary(Binary::Mul), vec![Some(x), Some(gate)]))
}

/// `x < -lambd ? x + bias : x > lambd ? x - bias : 0`
fn shrink(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let x = cx.input(0)?;
    let (lambd, bias) = (cx.attrs.float_or("lambd", 0.5)? as f64, cx.attrs.float_or("bias", 0.0)? as f64);
    let (low, high) = (cx.scalar_like("low", 0, -lambd)?, cx.scalar_like("high", 0, lambd)?);
    let (b, zero) = (cx.scalar_like("bias", 0, bias)?, cx.scalar_like("zero", 0, 0.0)?);
    let below = cx.helper("below", Op::Binary(Binary::Less), &[x, low])?;
    let above = cx.helper("above", Op::Binary(Binary::Greater), &[x, high])?;
    let raised = cx.helper("raised", Op::Binary(Binary::Add), &[x, b])?;
    let lowered = cx.helper("lowered", Op::Binary(Binary::Sub), &[x, b])?;
    let upper = cx.helper("upper", Op::Where, &[above, lowered, zero])?;
    Ok(Lowered::new(Op::Where, vec![Some(below), Some(raised), Some(upper)]))
}

/// `not (x == x)`
fn is_nan(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let x = cx.input(0)?;
    let equal = cx.helper("equal", Op::Binary(Binary::Equal), &[x, x])?;
    Ok(Lowered::new(Op::Unary(Unary::Not), vec![Some(equal)]))
}

/// `x == +inf` and/or `x == -inf`, as `detect_positive` / `detect_negative` ask.
fn is_inf(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let x = cx.input(0)?;
    let (pos, neg) = (cx.attrs.bool_or("detect_positive", true)?, cx.attrs.bool_or("detect_negative", true)?);
    // Comparing with NaN is false everywhere: what asking for neither sign must give.
    let target = |wanted: bool, inf: f64| if wanted { inf } else { f64::NAN };
    let (p, n) = (
        cx.scalar_like("pos_inf", 0, target(pos, f64::INFINITY))?,
        cx.scalar_like("neg_inf", 0, target(neg, f64::NEG_INFINITY))?,
    );
    let is_pos = cx.helper("is_pos", Op::Binary(Binary::Equal), &[x, p])?;
    let is_neg = cx.helper("is_neg", Op::Binary(Binary::Equal), &[x, n])?;
    Ok(Lowered::new(Op::Binary(Binary::Or), vec![Some(is_pos), Some(is_neg)]))
}

/// `x xor ~0`
fn bitwise_not(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let x = cx.input(0)?;
    let dtype = cx.input_type(0)?.dtype;
    if !dtype.is_int() {
        return Err(cx.error(format!("input has dtype {dtype}; BitwiseNot takes integers")));
    }
    let ones = cx.konst("ones", Tensor::scalar(-1i64).cast(dtype));
    Ok(Lowered::new(Op::Binary(Binary::BitwiseXor), vec![Some(x), Some(ones)]))
}

/// The axes `axis..rank` of input 0, as a constant input.
fn trailing_axes(cx: &mut OpCx, axis: i64) -> Result<ValueRef, ImportError> {
    let rank = cx.input_type(0)?.rank();
    let a =
        normalize_axis(axis, rank).ok_or_else(|| cx.error(format!("axis {axis} is out of range for rank {rank}")))?;
    Ok(cx.konst("axes", Tensor::vector((a as i64..rank as i64).collect())))
}

pub(super) fn reduce(op: ReduceOp) -> Op {
    Op::Reduce { op, keepdims: true, noop_with_empty_axes: false }
}

/// `x / sqrt(mean(x^2 over axis..) + epsilon) * scale`
fn rms_norm(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let (x, scale) = (cx.input(0)?, cx.input(1)?);
    let axes = trailing_axes(cx, cx.attrs.int_or("axis", -1)?)?;
    let eps = cx.scalar_like("epsilon", 0, cx.attrs.float_or("epsilon", 1e-5)? as f64)?;
    let squared = cx.helper("squared", Op::Binary(Binary::Mul), &[x, x])?;
    let mean = cx.helper("mean", reduce(ReduceOp::Mean), &[squared, axes])?;
    let shifted = cx.helper("shifted", Op::Binary(Binary::Add), &[mean, eps])?;
    let rms = cx.helper("rms", Op::Unary(Unary::Sqrt), &[shifted])?;
    let normed = cx.helper("normed", Op::Binary(Binary::Div), &[x, rms])?;
    Ok(Lowered::new(Op::Binary(Binary::Mul), vec![Some(normed), Some(scale)]))
}

/// `x / ||x||_p` along `axis` (p is 1 or 2); 0 where the norm is 0, as ONNX's reference does.
fn lp_norm(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let x = cx.input(0)?;
    let op = match cx.attrs.int_or("p", 2)? {
        1 => ReduceOp::L1,
        2 => ReduceOp::L2,
        p => return Err(cx.error(format!("p = {p} is not supported (1 or 2)"))),
    };
    let axes = cx.konst("axes", Tensor::vector(vec![cx.attrs.int_or("axis", -1)?]));
    let norm = cx.helper("norm", reduce(op), &[x, axes])?;
    let zero = cx.scalar_like("zero", 0, 0.0)?;
    let degenerate = cx.helper("degenerate", Op::Binary(Binary::Equal), &[norm, zero])?;
    let ratio = cx.helper("ratio", Op::Binary(Binary::Div), &[x, norm])?;
    Ok(Lowered::new(Op::Where, vec![Some(degenerate), Some(zero), Some(ratio)]))
}

/// `(x - mean) / (std + 1e-9)` over `axes` (default `[0, 2, 3]`), as ONNX's function body does.
fn mean_variance_norm(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let x = cx.input(0)?;
    let axes = cx.attrs.ints("axes")?.unwrap_or_else(|| vec![0, 2, 3]);
    let axes = cx.konst("axes", Tensor::vector(axes));
    let eps = cx.scalar_like("epsilon", 0, 1e-9)?;
    let mean = cx.helper("mean", reduce(ReduceOp::Mean), &[x, axes])?;
    let centered = cx.helper("centered", Op::Binary(Binary::Sub), &[x, mean])?;
    let squared = cx.helper("squared", Op::Binary(Binary::Mul), &[centered, centered])?;
    let variance = cx.helper("variance", reduce(ReduceOp::Mean), &[squared, axes])?;
    let std = cx.helper("std", Op::Unary(Unary::Sqrt), &[variance])?;
    let padded = cx.helper("padded", Op::Binary(Binary::Add), &[std, eps])?;
    Ok(Lowered::new(Op::Binary(Binary::Div), vec![Some(centered), Some(padded)]))
}

/// Normalizes each of `num_groups` channel groups over its channels and spatial positions, then
/// scales and shifts per channel (opset 21) or per group (opset 18).
fn group_norm(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let (x, scale, bias) = (cx.input(0)?, cx.input(1)?, cx.input(2)?);
    let rank = cx.input_type(0)?.rank();
    if rank < 2 {
        return Err(cx.error("needs an input of rank 2 or more"));
    }
    let groups = cx.attrs.int("num_groups")?.ok_or_else(|| cx.attrs.missing("num_groups"))?;
    let eps = cx.scalar_like("epsilon", 0, cx.attrs.float_or("epsilon", 1e-5)? as f64)?;
    let grouped_shape = cx.konst("grouped_shape", Tensor::vector(vec![0, groups, -1]));
    let grouped = cx.helper("grouped", Op::Reshape { allowzero: false }, &[x, grouped_shape])?;
    let axes = cx.konst("axes", Tensor::vector(vec![2i64]));
    let mean = cx.helper("mean", reduce(ReduceOp::Mean), &[grouped, axes])?;
    let centered = cx.helper("centered", Op::Binary(Binary::Sub), &[grouped, mean])?;
    let squared = cx.helper("squared", Op::Binary(Binary::Mul), &[centered, centered])?;
    let variance = cx.helper("variance", reduce(ReduceOp::Mean), &[squared, axes])?;
    let shifted = cx.helper("shifted", Op::Binary(Binary::Add), &[variance, eps])?;
    let std = cx.helper("std", Op::Unary(Unary::Sqrt), &[shifted])?;
    let normed = cx.helper("normed", Op::Binary(Binary::Div), &[centered, std])?;
    let shape = cx.helper("shape", Op::Shape { start: 0, end: None }, &[x])?;
    if cx.opset < 21 {
        // Per-group scale and bias, applied in the grouped layout.
        let (s, b) = affine_params(cx, scale, bias, 1)?;
        let scaled = cx.helper("scaled", Op::Binary(Binary::Mul), &[normed, s])?;
        let shifted = cx.helper("shifted_back", Op::Binary(Binary::Add), &[scaled, b])?;
        return Ok(Lowered::new(Op::Reshape { allowzero: false }, vec![Some(shifted), Some(shape)]));
    }
    let restored = cx.helper("restored", Op::Reshape { allowzero: false }, &[normed, shape])?;
    let (s, b) = affine_params(cx, scale, bias, rank - 2)?;
    let scaled = cx.helper("scaled", Op::Binary(Binary::Mul), &[restored, s])?;
    Ok(Lowered::new(Op::Binary(Binary::Add), vec![Some(scaled), Some(b)]))
}

/// Scale and bias reshaped to `[K, 1 × trailing]`, to broadcast over everything after their axis.
fn affine_params(
    cx: &mut OpCx,
    scale: ValueRef,
    bias: ValueRef,
    trailing: usize,
) -> Result<(ValueRef, ValueRef), ImportError> {
    let target: Vec<i64> = std::iter::once(-1).chain(std::iter::repeat_n(1, trailing)).collect();
    let target = cx.konst("affine_shape", Tensor::vector(target));
    let s = cx.helper("scale", Op::Reshape { allowzero: false }, &[scale, target])?;
    let b = cx.helper("bias", Op::Reshape { allowzero: false }, &[bias, target])?;
    Ok((s, b))
}

/// LayerNormalization's `Mean` and `InvStdDev` outputs, for whichever something reads:
/// `mean(x)` and `1 / sqrt(var(x) + epsilon)` over `axis..` with reduced dims kept, in the
/// `stash_type` precision (f32 by default).
pub(super) fn layer_norm_statistics(cx: &mut OpCx, axis: i64, epsilon: f32) -> Result<(), ImportError> {
    if !cx.output_used(1) && !cx.output_used(2) {
        return Ok(());
    }
    let x = cx.input(0)?;
    let dtype = cx.input_type(0)?.dtype;
    let stash = match cx.attrs.int_or("stash_type", 1)? {
        1 => DType::F32,
        code => i32::try_from(code).ok().and_then(DType::from_onnx_code).unwrap_or(dtype),
    };
    let axes = trailing_axes(cx, axis)?;
    let eps = cx.scalar_like("epsilon", 0, epsilon as f64)?;
    let mean = cx.helper("mean", reduce(ReduceOp::Mean), &[x, axes])?;
    let centered = cx.helper("centered", Op::Binary(Binary::Sub), &[x, mean])?;
    let squared = cx.helper("squared", Op::Binary(Binary::Mul), &[centered, centered])?;
    let variance = cx.helper("variance", reduce(ReduceOp::Mean), &[squared, axes])?;
    let shifted = cx.helper("shifted", Op::Binary(Binary::Add), &[variance, eps])?;
    let std = cx.helper("std", Op::Unary(Unary::Sqrt), &[shifted])?;
    let inv = cx.helper("inv_std", Op::Unary(Unary::Reciprocal), &[std])?;
    let to_stash = if stash == dtype { Op::Identity } else { Op::Cast { to: stash } };
    for (i, v) in [(1, mean), (2, inv)] {
        if cx.output_used(i) {
            cx.output_node(i, to_stash.clone(), &[v])?;
        }
    }
    Ok(())
}

/// Keeps `x[..., i, j]` where `j - i >= k` (upper) or `j - i <= k` (lower), zeroes the rest;
/// the matrix extents must be known, `k` (default 0) may be computed.
fn trilu(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let x = cx.input(0)?;
    let t = cx.input_type(0)?;
    let dims: Option<Vec<usize>> = t.shape.iter().rev().take(2).map(|d| d.known()).collect();
    let Some(&[cols, rows]) = dims.as_deref().filter(|_| t.rank() >= 2) else {
        return Err(cx.error(format!("needs an input of rank 2 or more with known matrix extents, got {t}")));
    };
    let row_ids = Tensor::from_vec(&[rows, 1], (0..rows as i64).collect()).map_err(|e| cx.error(e.to_string()))?;
    let (row_ids, col_ids) = (cx.konst("rows", row_ids), cx.konst("cols", Tensor::vector((0..cols as i64).collect())));
    let k = match cx.opt(1) {
        Some(k) => k,
        None => cx.konst("k", Tensor::scalar(0i64)),
    };
    let offset = cx.helper("offset", Op::Binary(Binary::Sub), &[col_ids, row_ids])?;
    let keep = if cx.attrs.bool_or("upper", true)? { Binary::GreaterOrEqual } else { Binary::LessOrEqual };
    let mask = cx.helper("mask", Op::Binary(keep), &[offset, k])?;
    let zero = cx.scalar_like("zero", 0, 0.0)?;
    Ok(Lowered::new(Op::Where, vec![Some(mask), Some(x), Some(zero)]))
}

/// `values[1]` where `indices` (negative ones counting from `depth`) equals the position along
/// the new axis, `values[0]` elsewhere.
fn one_hot(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let (indices, depth, values) = (cx.input(0)?, cx.input(1)?, cx.input(2)?);
    let rank = cx.input_type(0)?.rank() + 1;
    let axis = cx.attrs.int_or("axis", -1)?;
    let a =
        normalize_axis(axis, rank).ok_or_else(|| cx.error(format!("axis {axis} is out of range for rank {rank}")))?;
    let (zero, one) = (cx.konst("zero", Tensor::scalar(0i64)), cx.konst("one", Tensor::scalar(1i64)));
    let (depth, positions) = match cx.b.graph.const_value(depth).map(Tensor::to_i64_vec).as_deref() {
        // A constant depth gives the output a known extent.
        Some(&[d]) if d > 0 => {
            let mut shape = vec![1; rank];
            shape[a] = usize::try_from(d).map_err(|_| cx.error(format!("depth {d} is too large")))?;
            kiln_ir::tensor::check_alloc(DType::I64, &shape).map_err(|e| cx.error(e.to_string()))?;
            let positions = Tensor::from_vec(&shape, (0..d).collect()).map_err(|e| cx.error(e.to_string()))?;
            (cx.konst("depth", Tensor::scalar(d)), cx.konst("positions", positions))
        }
        _ => {
            let depth = cx.helper("depth", Op::Cast { to: DType::I64 }, &[depth])?;
            let scalar_shape = cx.konst("scalar_shape", Tensor::vector(Vec::<i64>::new()));
            let depth = cx.helper("depth_scalar", Op::Reshape { allowzero: false }, &[depth, scalar_shape])?;
            let mut positions = cx.helper("positions", Op::Range, &[zero, depth, one])?;
            if a + 1 < rank {
                // Put the positions on axis `a`: [depth, 1, ..., 1].
                let target: Vec<i64> = std::iter::once(-1).chain(std::iter::repeat_n(1, rank - 1 - a)).collect();
                let target = cx.konst("positions_shape", Tensor::vector(target));
                positions = cx.helper("positions_on_axis", Op::Reshape { allowzero: false }, &[positions, target])?;
            }
            (depth, positions)
        }
    };
    let index = cx.helper("index", Op::Cast { to: DType::I64 }, &[indices])?;
    let negative = cx.helper("negative", Op::Binary(Binary::Less), &[index, zero])?;
    let wrapped = cx.helper("wrapped", Op::Binary(Binary::Add), &[index, depth])?;
    let fixed = cx.helper("fixed", Op::Where, &[negative, wrapped, index])?;
    let axes = cx.konst("axes", Tensor::vector(vec![a as i64]));
    let column = cx.helper("column", Op::Unsqueeze, &[fixed, axes])?;
    let hot = cx.helper("hot", Op::Binary(Binary::Equal), &[column, positions])?;
    let off = cx.helper("off", Op::Gather { axis: 0 }, &[values, zero])?;
    let on = cx.helper("on", Op::Gather { axis: 0 }, &[values, one])?;
    Ok(Lowered::new(Op::Where, vec![Some(hot), Some(on), Some(off)]))
}

/// Window functions `c0 - c1 cos(a) + c2 cos(2a)` with `a = 2 pi n / N`, by ONNX op type.
const WINDOWS: [(&str, [f64; 3]); 3] = [
    ("HannWindow", [0.5, 0.5, 0.0]),
    ("HammingWindow", [25.0 / 46.0, 21.0 / 46.0, 0.0]),
    ("BlackmanWindow", [0.42, 0.5, 0.08]),
];

/// `size` points of a window; `N` is `size` (periodic, the default) or `size - 1` (symmetric).
fn window(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let [c0, c1, c2] = WINDOWS.iter().find(|(n, _)| *n == cx.node.op_type).expect("registered from the table").1;
    let size = cx.input(0)?;
    let code = cx.attrs.int_or("output_datatype", 1)?;
    let out = i32::try_from(code)
        .ok()
        .and_then(DType::from_onnx_code)
        .ok_or_else(|| cx.error(format!("output_datatype {code} is not supported")))?;
    let f = |cx: &mut OpCx, what: &str, v: f64| cx.konst(what, Tensor::scalar(v as f32));
    let size = cx.helper("size", Op::Cast { to: DType::I64 }, &[size])?;
    let (zero, one) = (cx.konst("zero", Tensor::scalar(0i64)), cx.konst("one", Tensor::scalar(1i64)));
    let n = cx.helper("n", Op::Range, &[zero, size, one])?;
    let n = cx.helper("n_f32", Op::Cast { to: DType::F32 }, &[n])?;
    let mut period = cx.helper("period", Op::Cast { to: DType::F32 }, &[size])?;
    if !cx.attrs.bool_or("periodic", true)? {
        let one_f = f(cx, "one_f32", 1.0);
        period = cx.helper("period_symmetric", Op::Binary(Binary::Sub), &[period, one_f])?;
    }
    let tau = f(cx, "tau", std::f64::consts::TAU);
    let turns = cx.helper("turns", Op::Binary(Binary::Mul), &[n, tau])?;
    let angle = cx.helper("angle", Op::Binary(Binary::Div), &[turns, period])?;
    let cos = cx.helper("cos", Op::Unary(Unary::Cos), &[angle])?;
    let (c0, c1) = (f(cx, "c0", c0), f(cx, "c1", c1));
    let weighted = cx.helper("weighted", Op::Binary(Binary::Mul), &[cos, c1])?;
    let mut w = cx.helper("w", Op::Binary(Binary::Sub), &[c0, weighted])?;
    if c2 != 0.0 {
        let two = f(cx, "two", 2.0);
        let double = cx.helper("double_angle", Op::Binary(Binary::Mul), &[angle, two])?;
        let cos2 = cx.helper("cos2", Op::Unary(Unary::Cos), &[double])?;
        let c2 = f(cx, "c2", c2);
        let weighted2 = cx.helper("weighted2", Op::Binary(Binary::Mul), &[cos2, c2])?;
        w = cx.helper("w2", Op::Binary(Binary::Add), &[w, weighted2])?;
    }
    Ok(Lowered::new(Op::Cast { to: out }, vec![Some(w)]))
}

/// A constant: ones on diagonal `k` of a matrix shaped like the (known) 2-D input.
fn eye_like(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let t = cx.input_type(0)?;
    let [rows, cols] = t
        .concrete_shape()
        .and_then(|s| <[usize; 2]>::try_from(s).ok())
        .ok_or_else(|| cx.error(format!("needs a 2-D input of known shape, got {t}")))?;
    let dtype = match cx.attrs.int("dtype")? {
        None => t.dtype,
        Some(code) => i32::try_from(code)
            .ok()
            .and_then(DType::from_onnx_code)
            .ok_or_else(|| cx.error(format!("dtype {code} is not supported")))?,
    };
    kiln_ir::tensor::check_alloc(dtype, &[rows, cols]).map_err(|e| cx.error(e.to_string()))?;
    let k = cx.attrs.int_or("k", 0)?;
    let v: Vec<f64> =
        (0..rows * cols).map(|i| f64::from(u8::from((i % cols) as i64 - (i / cols) as i64 == k))).collect();
    let eye = Tensor::from_vec(&[rows, cols], v).map_err(|e| cx.error(e.to_string()))?.cast(dtype);
    Ok(Lowered::new(Op::Constant(eye), vec![]))
}

/// The known `[C, H, W]` of a rank-4 input and the positive `blocksize`.
fn block_geometry(cx: &OpCx) -> Result<([i64; 3], i64), ImportError> {
    let t = cx.input_type(0)?;
    let dims: Option<Vec<i64>> = t.shape.iter().skip(1).map(|d| d.known().map(|v| v as i64)).collect();
    let chw = dims
        .filter(|_| t.rank() == 4)
        .and_then(|d| <[i64; 3]>::try_from(d).ok())
        .ok_or_else(|| cx.error(format!("needs a rank-4 input with known C, H and W, got {t}")))?;
    let b = cx.attrs.int("blocksize")?.ok_or_else(|| cx.attrs.missing("blocksize"))?;
    if b <= 0 {
        return Err(cx.error(format!("blocksize {b} must be positive")));
    }
    Ok((chw, b))
}

/// Reshape to `inner`, transpose by `perm`, reshape to `outer` (0 keeps the batch dim).
fn shuffle(cx: &mut OpCx, inner: Vec<i64>, perm: Vec<usize>, outer: Vec<i64>) -> Result<Lowered, ImportError> {
    let x = cx.input(0)?;
    let inner = cx.konst("inner_shape", Tensor::vector(inner));
    let split = cx.helper("split", Op::Reshape { allowzero: false }, &[x, inner])?;
    let moved = cx.helper("moved", Op::Transpose { perm: Some(perm) }, &[split])?;
    let outer: ValueRef = cx.konst("shape", Tensor::vector(outer));
    Ok(Lowered::new(Op::Reshape { allowzero: false }, vec![Some(moved), Some(outer)]))
}

/// `a * b`, refusing overflow (dims and blocksize come from the file).
fn mul(cx: &OpCx, a: i64, b: i64) -> Result<i64, ImportError> {
    a.checked_mul(b).ok_or_else(|| cx.error(format!("{a} x {b} overflows")))
}

/// DCR (default) or CRD ordering of the moved channels.
fn depth_to_space(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let ([c, h, w], b) = block_geometry(cx)?;
    let bb = mul(cx, b, b)?;
    if c == 0 || c % bb != 0 {
        return Err(cx.error(format!("{c} channels do not divide into blocks of {b}x{b}")));
    }
    let c2 = c / bb;
    let (inner, perm) = match cx.attrs.string_or("mode", "DCR")?.as_str() {
        "DCR" => (vec![0, b, b, c2, h, w], vec![0, 3, 4, 1, 5, 2]),
        "CRD" => (vec![0, c2, b, b, h, w], vec![0, 1, 4, 2, 5, 3]),
        other => return Err(cx.error(format!("unknown mode '{other}'"))),
    };
    let outer = vec![0, c2, mul(cx, h, b)?, mul(cx, w, b)?];
    shuffle(cx, inner, perm, outer)
}

/// DCR (default) or, from opset 28, CRD ordering of the gathered channels.
fn space_to_depth(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let ([c, h, w], b) = block_geometry(cx)?;
    if c == 0 || h == 0 || w == 0 || h % b != 0 || w % b != 0 {
        return Err(cx.error(format!("input {c}x{h}x{w} does not divide into blocks of {b}")));
    }
    let perm = match cx.attrs.string_or("mode", "DCR")?.as_str() {
        "DCR" => vec![0, 3, 5, 1, 2, 4],
        "CRD" => vec![0, 1, 3, 5, 2, 4],
        other => return Err(cx.error(format!("unknown mode '{other}'"))),
    };
    let outer = vec![0, mul(cx, c, mul(cx, b, b)?)?, h / b, w / b];
    shuffle(cx, vec![0, c, h / b, b, w / b, b], perm, outer)
}
