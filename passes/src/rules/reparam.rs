//! Reparameterization: fold what training needed and inference does not into plain weights.
//!
//! - BatchNormalization, and per-channel Mul/Add/Sub/Div by constants, after a Conv, Gemm or
//!   MatMul with constant weights become that op with new weights and bias;
//! - a sum of branches that are linear in the same input — convolutions of any kernel size,
//!   dilation or group, the input itself (an identity kernel), average pooling, a 1×1 conv
//!   followed by a k×k conv, each optionally with its own BatchNorm — becomes one convolution
//!   (RepVGG, ACNet, MobileOne, DBB, UniRepLKNet);
//! - MatMul by a constant followed by MatMul by a constant becomes one MatMul when the cost
//!   model says so.
//!
//! New weights are computed in f64 from the constants' analysis data and cast back.

use super::guards::{absent, add_const, add_op, dims, find_op, same_known_type, ty, value};
use super::OpRule;
use crate::egraph::{EGraph, Rewrite};
use egg::Id;
use kiln_ir::op::{AutoPad, Binary, Conv, Gemm, PoolKind, Window};
use kiln_ir::{DType, Op, Tensor};

pub fn rules() -> Vec<Rewrite> {
    vec![
        // BN(Conv(x, w, b)) == Conv(x, w·s, b·s + t), with BN(y) = y·s + t per channel
        OpRule::rewrite("fold-bn-conv", is_bn, |eg, r, op, ins| fold_affine(eg, r, op, ins, Producer::Conv)),
        // Conv(x, w, b) ⊙ c == Conv(x, w ⊙ c, b ⊙ c) for per-channel constant c (⊙ ∈ {·, /, +, −})
        OpRule::rewrite("fold-affine-conv", is_affine, |eg, r, op, ins| fold_affine(eg, r, op, ins, Producer::Conv)),
        // BN(Gemm(a, b, c)) == Gemm(a, b·s, c·s + t) per output column
        OpRule::rewrite("fold-bn-gemm", is_bn, |eg, r, op, ins| fold_affine(eg, r, op, ins, Producer::Gemm)),
        // Gemm(a, b, c) ⊙ k == Gemm(a, b ⊙ k, c ⊙ k) per output column
        OpRule::rewrite("fold-affine-gemm", is_affine, |eg, r, op, ins| fold_affine(eg, r, op, ins, Producer::Gemm)),
        // BN(a @ W) == a @ (W·s) + t (2-D)
        OpRule::rewrite("fold-bn-matmul", is_bn, |eg, r, op, ins| fold_affine(eg, r, op, ins, Producer::MatMul)),
        // (a @ W) ⊙ c == a @ (W ⊙ c) (+ c) per last-axis column
        OpRule::rewrite("fold-affine-matmul", is_affine, |eg, r, op, ins| {
            fold_affine(eg, r, op, ins, Producer::MatMul)
        }),
        // L1(x) + L2(x) == Conv(x, W1 + W2, b1 + b2) for branches linear in x
        OpRule::rewrite("merge-conv-branches", |op| matches!(op, Op::Binary(Binary::Add)), merge_branches),
        // (x @ A) @ B == x @ (A @ B) for constant A, B
        OpRule::rewrite("merge-matmul-chain", |op| matches!(op, Op::MatMul), merge_matmul_chain),
    ]
}

fn is_bn(op: &Op) -> bool {
    matches!(op, Op::BatchNorm { .. })
}

fn is_affine(op: &Op) -> bool {
    matches!(op, Op::Binary(Binary::Mul | Binary::Add | Binary::Sub | Binary::Div))
}

/// The producer a per-channel affine map folds into.
#[derive(Clone, Copy, PartialEq)]
enum Producer {
    Conv,
    Gemm,
    MatMul,
}

/// Elements of a constant as f64.
fn floats(eg: &EGraph, id: Id) -> Option<Vec<f64>> {
    value(eg, id).filter(|t| t.dtype().is_float()).map(Tensor::to_f64_vec)
}

/// A constant as a per-channel vector of length `n` along `axis` of a rank-`rank` value: every
/// other dim (right-aligned) is 1.
fn channel_vec(eg: &EGraph, c: Id, rank: usize, axis: usize, n: usize) -> Option<Vec<f64>> {
    let t = value(eg, c)?;
    let shape = t.shape();
    if shape.len() > rank || !t.dtype().is_float() {
        return None;
    }
    let off = rank - shape.len();
    for (i, &d) in shape.iter().enumerate() {
        if i + off != axis && d != 1 {
            return None;
        }
    }
    let v = t.to_f64_vec();
    match v.len() {
        1 => Some(vec![v[0]; n]),
        l if l == n => Some(v),
        _ => None,
    }
}

/// `y·s + t` per channel: the root as an affine map of its non-constant input `y` along `axis`.
fn affine_of(eg: &EGraph, root: Id, op: &Op, ins: &[Id], axis: usize) -> Option<(Id, Vec<f64>, Vec<f64>)> {
    let rank = ty(eg, root)?.rank();
    let n = dims(eg, root)?.get(axis).copied()?;
    let (y, s, t) = match op {
        Op::BatchNorm { epsilon } => {
            if axis != 1 || ins.len() < 5 {
                return None;
            }
            let [scale, bias, mean, var] = [1, 2, 3, 4].map(|i| floats(eg, ins[i]).filter(|v| v.len() == n));
            let (scale, bias, mean, var) = (scale?, bias?, mean?, var?);
            let s: Vec<f64> = (0..n).map(|i| scale[i] / (var[i] + *epsilon as f64).sqrt()).collect();
            let t = (0..n).map(|i| bias[i] - mean[i] * s[i]).collect();
            (ins[0], s, t)
        }
        Op::Binary(b) => {
            let (y, c, const_first) = if value(eg, ins[1]).is_some() && value(eg, ins[0]).is_none() {
                (ins[0], ins[1], false)
            } else if value(eg, ins[0]).is_some() && value(eg, ins[1]).is_none() {
                (ins[1], ins[0], true)
            } else {
                return None;
            };
            let v = channel_vec(eg, c, rank, axis, n)?;
            match (b, const_first) {
                (Binary::Mul, _) => (y, v, vec![0.0; n]),
                (Binary::Add, _) => (y, vec![1.0; n], v),
                (Binary::Sub, false) => (y, vec![1.0; n], v.iter().map(|x| -x).collect()),
                (Binary::Div, false) => (y, v.iter().map(|x| 1.0 / x).collect(), vec![0.0; n]),
                _ => return None,
            }
        }
        _ => return None,
    };
    same_known_type(eg, root, y).then_some((y, s, t))
}

/// `w` with row i (along the first axis) scaled by `s[i]`; f32 stays in f32 (the weights of a
/// whole network pass through here).
fn scale_rows(w: &Tensor, s: &[f64]) -> Option<Tensor> {
    let per = w.len() / s.len().max(1);
    if w.dtype() == DType::F32 {
        let mut v = w.to_vec::<f32>();
        for (i, x) in v.iter_mut().enumerate() {
            *x = (*x as f64 * s[i / per]) as f32;
        }
        return Tensor::from_vec(w.shape(), v).ok();
    }
    let mut v = w.to_f64_vec();
    for (i, x) in v.iter_mut().enumerate() {
        *x *= s[i / per];
    }
    tensor(w.dtype(), w.shape(), v)
}

/// A float tensor from f64 values.
fn tensor(dtype: DType, shape: &[usize], v: Vec<f64>) -> Option<Tensor> {
    Some(Tensor::from_vec(shape, v).ok()?.cast(dtype))
}

fn fold_affine(eg: &mut EGraph, root: Id, op: &Op, ins: &[Id], producer: Producer) -> Option<Id> {
    let rank = ty(eg, root)?.rank();
    let axis = match producer {
        Producer::Conv | Producer::Gemm => 1,
        Producer::MatMul => rank.checked_sub(1)?,
    };
    let (y, s, t) = affine_of(eg, root, op, ins, axis)?;
    match producer {
        Producer::Conv => {
            let (conv, cins) = find_op(eg, y, |o| match o {
                Op::Conv(c) => Some(c.clone()),
                _ => None,
            })?;
            let w = value(eg, cins[1])?.clone();
            let m = w.shape()[0];
            if s.len() != m {
                return None;
            }
            let b = match cins.get(2) {
                Some(&b) if !absent(eg, b) => floats(eg, b)?,
                _ => vec![0.0; m],
            };
            let bv: Vec<f64> = (0..m).map(|i| b[i] * s[i] + t[i]).collect();
            let w2 = add_const(eg, scale_rows(&w, &s)?);
            let b2 = add_const(eg, tensor(w.dtype(), &[m], bv)?);
            Some(add_op(eg, Op::Conv(conv), vec![cins[0], w2, b2]))
        }
        Producer::Gemm => {
            let (g, gins) = find_op(eg, y, |o| match o {
                Op::Gemm(g) => Some(g.clone()),
                _ => None,
            })?;
            let b = value(eg, gins[1])?.clone();
            let n = s.len();
            let (rows, cols) = (b.shape()[0], b.shape()[1]);
            let mut bv = b.to_f64_vec();
            for r in 0..rows {
                for c in 0..cols {
                    let col = if g.trans_b { r } else { c };
                    bv[r * cols + c] *= g.alpha as f64 * s[col];
                }
            }
            let c = match gins.get(2) {
                Some(&c) if !absent(eg, c) => {
                    let cv = floats(eg, c)?;
                    let shape = value(eg, c)?.shape().to_vec();
                    let per_column = shape.iter().rev().skip(1).all(|&d| d == 1);
                    match cv.len() {
                        1 => vec![cv[0]; n],
                        l if l == n && per_column => cv,
                        _ => return None,
                    }
                }
                _ => vec![0.0; n],
            };
            let cv: Vec<f64> = (0..n).map(|i| g.beta as f64 * c[i] * s[i] + t[i]).collect();
            let b2 = add_const(eg, tensor(b.dtype(), b.shape(), bv)?);
            let c2 = add_const(eg, tensor(b.dtype(), &[n], cv)?);
            let gemm = Gemm { alpha: 1.0, beta: 1.0, ..g };
            Some(add_op(eg, Op::Gemm(gemm), vec![gins[0], b2, c2]))
        }
        Producer::MatMul => {
            let ((), mins) = find_op(eg, y, |o| matches!(o, Op::MatMul).then_some(()))?;
            let w = value(eg, mins[1])?.clone();
            if w.rank() != 2 || ty(eg, mins[0])?.rank() < 2 {
                return None;
            }
            let cols = w.shape()[1];
            let mut wv = w.to_f64_vec();
            for (i, x) in wv.iter_mut().enumerate() {
                *x *= s[i % cols];
            }
            let w2 = add_const(eg, tensor(w.dtype(), w.shape(), wv)?);
            let mm = add_op(eg, Op::MatMul, vec![mins[0], w2]);
            if t.iter().all(|&x| x == 0.0) {
                return Some(mm);
            }
            let t2 = add_const(eg, tensor(w.dtype(), &[cols], t)?);
            Some(add_op(eg, Op::Binary(Binary::Add), vec![mm, t2]))
        }
    }
}

/// A linear map of an input `x` as a convolution: weight `[m, c/group, k...]` (dilation 1),
/// bias, and geometry resolved against x's extents. `diagonal` maps (identity, average pooling,
/// per-channel scaling of those) read channel i only for output i, so they fit any group.
#[derive(Clone, Debug)]
struct Linear {
    w: Vec<f64>,
    bias: Vec<f64>,
    m: usize,
    cg: usize,
    kernel: Vec<usize>,
    group: usize,
    strides: Vec<usize>,
    pads_begin: Vec<usize>,
    pads_end: Vec<usize>,
    diagonal: bool,
}

impl Linear {
    fn taps(&self) -> usize {
        self.kernel.iter().product()
    }

    /// Identity on `c` channels with `spatial` dims: a diagonal 1×1 kernel.
    fn identity(c: usize, spatial: usize) -> Linear {
        let mut w = vec![0.0; c];
        w.iter_mut().for_each(|x| *x = 1.0);
        Linear {
            w,
            bias: vec![0.0; c],
            m: c,
            cg: 1,
            kernel: vec![1; spatial],
            group: c,
            strides: vec![1; spatial],
            pads_begin: vec![0; spatial],
            pads_end: vec![0; spatial],
            diagonal: true,
        }
    }

    /// Scales output channel i by s[i] and adds t[i].
    fn affine(mut self, s: &[f64], t: &[f64]) -> Option<Linear> {
        if s.len() != self.m {
            return None;
        }
        let per = self.cg * self.taps();
        for (i, x) in self.w.iter_mut().enumerate() {
            *x *= s[i / per];
        }
        for i in 0..self.m {
            self.bias[i] = self.bias[i] * s[i] + t[i];
        }
        Some(self)
    }

    /// A diagonal map as a group-`g` weight (needs m == c).
    fn regroup(&self, g: usize) -> Linear {
        let cg = self.m / g;
        let taps = self.taps();
        let mut w = vec![0.0; self.m * cg * taps];
        for ch in 0..self.m {
            for k in 0..taps {
                w[(ch * cg + ch % cg) * taps + k] = self.w[ch * taps + k];
            }
        }
        Linear { w, cg, group: g, diagonal: false, ..self.clone() }
    }

    /// Embeds the kernel in a larger one: `before` zeros before and extent `to` per axis.
    fn embed(&self, before: &[usize], to: &[usize]) -> Vec<f64> {
        let (taps, new_taps) = (self.taps(), to.iter().product::<usize>());
        let mut w = vec![0.0; self.m * self.cg * new_taps];
        for oc in 0..self.m * self.cg {
            for k in 0..taps {
                let (mut rem, mut idx, mut stride) = (k, 0, 1);
                let mut coords = vec![0; self.kernel.len()];
                for a in (0..self.kernel.len()).rev() {
                    coords[a] = rem % self.kernel[a];
                    rem /= self.kernel[a];
                }
                for a in (0..to.len()).rev() {
                    idx += (coords[a] + before[a]) * stride;
                    stride *= to[a];
                }
                w[oc * new_taps + idx] = self.w[oc * taps + k];
            }
        }
        w
    }
}

/// Resolves a conv's weight into a dilation-1 [`Linear`] over input extents `spatial`.
fn conv_linear(conv: &Conv, w: &Tensor, bias: Option<Vec<f64>>, spatial: &[usize]) -> Option<Linear> {
    let shape = w.shape();
    let (m, cg, kernel) = (shape[0], shape[1], shape[2..].to_vec());
    let geo = conv.window.resolve(spatial, &kernel, false).ok()?;
    let wv = w.to_f64_vec();
    let base = Linear {
        w: wv,
        bias: bias.unwrap_or_else(|| vec![0.0; m]),
        m,
        cg,
        kernel: kernel.clone(),
        group: conv.group.max(1),
        strides: geo.strides,
        pads_begin: geo.pads_begin,
        pads_end: geo.pads_end,
        diagonal: false,
    };
    if geo.dilations.iter().all(|&d| d == 1) {
        return Some(base);
    }
    // A dilated kernel is a larger kernel with zeros between its taps.
    let big: Vec<usize> = kernel.iter().zip(&geo.dilations).map(|(&k, &d)| (k - 1) * d + 1).collect();
    let (taps, big_taps) = (base.taps(), big.iter().product::<usize>());
    let mut w = vec![0.0; m * cg * big_taps];
    for oc in 0..m * cg {
        for k in 0..taps {
            let (mut rem, mut idx, mut stride) = (k, 0, 1);
            let mut coords = vec![0; kernel.len()];
            for a in (0..kernel.len()).rev() {
                coords[a] = rem % kernel[a];
                rem /= kernel[a];
            }
            for a in (0..kernel.len()).rev() {
                idx += coords[a] * geo.dilations[a] * stride;
                stride *= big[a];
            }
            w[oc * big_taps + idx] = base.w[oc * taps + k];
        }
    }
    Some(Linear { w, kernel: big, ..base })
}

/// The class `id` as a linear map of `x`, if it is one of the recognized forms.
fn linear(eg: &EGraph, id: Id, x: Id, depth: usize) -> Option<Linear> {
    let xt = dims(eg, x)?;
    if xt.len() < 3 {
        return None;
    }
    let (c, spatial) = (xt[1], &xt[2..]);
    if eg.find(id) == eg.find(x) {
        return Some(Linear::identity(c, spatial.len()));
    }
    if depth == 0 {
        return None;
    }
    for node in &eg[id].nodes {
        let Some(op) = node.ir_op() else { continue };
        let ins: Vec<Id> = egg::Language::children(node).iter().map(|&i| eg.find(i)).collect();
        let found = match op {
            Op::Conv(conv) => conv_branch(eg, conv, &ins, x, spatial, depth),
            Op::Pool(p) => pool_branch(eg, p, &ins, x, c, spatial),
            Op::BatchNorm { .. } | Op::Binary(_) => {
                affine_of(eg, id, op, &ins, 1).and_then(|(y, s, t)| linear(eg, y, x, depth - 1)?.affine(&s, &t))
            }
            _ => None,
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

fn conv_branch(eg: &EGraph, conv: &Conv, ins: &[Id], x: Id, spatial: &[usize], depth: usize) -> Option<Linear> {
    let w = value(eg, ins[1])?;
    let bias = match ins.get(2) {
        Some(&b) if !absent(eg, b) => Some(floats(eg, b)?),
        _ => None,
    };
    if ins[0] == eg.find(x) {
        return conv_linear(conv, w, bias, spatial);
    }
    // Conv_k×k(Conv_1×1(x)): one conv whose weight is their product (exact when the 1×1 has no
    // bias, since zero padding then commutes with it).
    let outer = conv_linear(conv, w, bias, spatial)?;
    if outer.group != 1 || depth < 2 {
        return None;
    }
    let (inner_conv, iins) = find_op(eg, ins[0], |o| match o {
        Op::Conv(c) => Some(c.clone()),
        _ => None,
    })?;
    let no_bias = iins.get(2).is_none_or(|&b| absent(eg, b) || super::guards::is_all(eg, b, 0.0));
    if iins[0] != eg.find(x) || !no_bias {
        return None;
    }
    let inner = conv_linear(&inner_conv, value(eg, iins[1])?, None, spatial)?;
    let pointwise = inner.taps() == 1
        && inner.group == 1
        && inner.strides.iter().all(|&s| s == 1)
        && inner.pads_begin.iter().chain(&inner.pads_end).all(|&p| p == 0);
    if !pointwise || inner.m != outer.cg {
        return None;
    }
    let (mid, c, taps) = (inner.m, inner.cg, outer.taps());
    let mut w = vec![0.0; outer.m * c * taps];
    for o in 0..outer.m {
        for j in 0..mid {
            for i in 0..c {
                let a = inner.w[j * c + i];
                for k in 0..taps {
                    w[(o * c + i) * taps + k] += outer.w[(o * mid + j) * taps + k] * a;
                }
            }
        }
    }
    Some(Linear { w, cg: c, ..outer })
}

fn pool_branch(eg: &EGraph, p: &kiln_ir::op::Pool, ins: &[Id], x: Id, c: usize, spatial: &[usize]) -> Option<Linear> {
    let PoolKind::Average { count_include_pad } = p.kind else { return None };
    if ins[0] != eg.find(x) || p.ceil_mode {
        return None;
    }
    let kernel = p.kernel().to_vec();
    let geo = p.window.resolve(spatial, &kernel, false).ok()?;
    let padded = geo.pads_begin.iter().chain(&geo.pads_end).any(|&q| q > 0);
    if (padded && !count_include_pad) || geo.dilations.iter().any(|&d| d != 1) {
        return None;
    }
    let taps: usize = kernel.iter().product();
    Some(Linear {
        w: vec![1.0 / taps as f64; c * taps],
        bias: vec![0.0; c],
        m: c,
        cg: 1,
        kernel,
        group: c,
        strides: geo.strides,
        pads_begin: geo.pads_begin,
        pads_end: geo.pads_end,
        diagonal: true,
    })
}

/// Whether `id` has one of the forms [`linear`] recognizes over `x` (a cheap structural check
/// before any weight is converted).
fn reaches(eg: &EGraph, id: Id, x: Id, depth: usize) -> bool {
    let x = eg.find(x);
    if eg.find(id) == x {
        return true;
    }
    depth > 0
        && eg[id].nodes.iter().any(|n| {
            let ch = egg::Language::children(n);
            match n.ir_op() {
                Some(Op::Conv(_)) => eg.find(ch[0]) == x || (depth > 1 && reaches(eg, ch[0], x, 1)),
                Some(Op::Pool(_)) => eg.find(ch[0]) == x,
                Some(Op::BatchNorm { .. }) => reaches(eg, ch[0], x, depth - 1),
                Some(Op::Binary(_)) => ch.iter().any(|&c| value(eg, c).is_none() && reaches(eg, c, x, depth - 1)),
                _ => false,
            }
        })
}

/// The sum of two linear maps of the same input, as one.
fn combine(a: Linear, b: Linear) -> Option<Linear> {
    if a.strides != b.strides || a.m != b.m || (a.diagonal && b.diagonal) {
        return None;
    }
    let (a, b) = match (a.diagonal, b.diagonal) {
        (true, false) => (a.regroup(b.group), b),
        (false, true) => {
            let g = a.group;
            (a, b.regroup(g))
        }
        _ => (a, b),
    };
    if a.group != b.group || a.cg != b.cg {
        return None;
    }
    let n = a.kernel.len();
    let mut before_a = vec![0; n];
    let mut before_b = vec![0; n];
    let (mut kernel, mut pads_begin, mut pads_end) = (vec![0; n], vec![0; n], vec![0; n]);
    for i in 0..n {
        let p = a.pads_begin[i].max(b.pads_begin[i]);
        before_a[i] = p - a.pads_begin[i];
        before_b[i] = p - b.pads_begin[i];
        kernel[i] = (a.kernel[i] + before_a[i]).max(b.kernel[i] + before_b[i]);
        pads_begin[i] = p;
        // Same output extent as a: n + p + end − K == n + pa + ea − ka.
        pads_end[i] = (a.pads_end[i] + kernel[i]).checked_sub(a.kernel[i] + before_a[i])?;
        let end_b = (b.pads_end[i] + kernel[i]).checked_sub(b.kernel[i] + before_b[i])?;
        // The two must agree on how many windows fit.
        if (pads_end[i] as i64 - end_b as i64).unsigned_abs() as usize >= a.strides[i] {
            return None;
        }
    }
    let wa = a.embed(&before_a, &kernel);
    let wb = b.embed(&before_b, &kernel);
    let w = wa.iter().zip(&wb).map(|(x, y)| x + y).collect();
    let bias = a.bias.iter().zip(&b.bias).map(|(x, y)| x + y).collect();
    Some(Linear { w, bias, kernel, pads_begin, pads_end, diagonal: false, ..a })
}

/// Candidate shared inputs: the data inputs of convolutions in either branch.
fn conv_inputs(eg: &EGraph, id: Id) -> Vec<Id> {
    let mut out = Vec::new();
    for node in &eg[id].nodes {
        if let Some(Op::Conv(_)) = node.ir_op() {
            out.push(eg.find(egg::Language::children(node)[0]));
        }
    }
    out
}

fn merge_branches(eg: &mut EGraph, root: Id, _: &Op, ins: &[Id]) -> Option<Id> {
    if !same_known_type(eg, root, ins[0]) || !same_known_type(eg, root, ins[1]) {
        return None;
    }
    let dtype = ty(eg, root)?.dtype;
    let mut xs = conv_inputs(eg, ins[0]);
    xs.extend(conv_inputs(eg, ins[1]));
    // A 1×1 → k×k branch reads x through its inner conv.
    for &c in &xs.clone() {
        xs.extend(conv_inputs(eg, c));
    }
    for x in xs {
        if !reaches(eg, ins[0], x, 2) || !reaches(eg, ins[1], x, 2) {
            continue;
        }
        let (Some(a), Some(b)) = (linear(eg, ins[0], x, 2), linear(eg, ins[1], x, 2)) else { continue };
        let Some(l) = combine(a, b) else { continue };
        let mut wshape = vec![l.m, l.cg];
        wshape.extend(&l.kernel);
        let w = add_const(eg, tensor(dtype, &wshape, l.w)?);
        let bias = add_const(eg, tensor(dtype, &[l.m], l.bias)?);
        let mut pads = l.pads_begin.clone();
        pads.extend(&l.pads_end);
        let window = Window {
            kernel_shape: Some(l.kernel.clone()),
            strides: l.strides.clone(),
            pads,
            dilations: vec![],
            auto_pad: AutoPad::NotSet,
        };
        let conv = add_op(eg, Op::Conv(Conv { window, group: l.group }), vec![x, w, bias]);
        if same_known_type(eg, conv, root) {
            return Some(conv);
        }
    }
    None
}

fn merge_matmul_chain(eg: &mut EGraph, _: Id, _: &Op, ins: &[Id]) -> Option<Id> {
    let b = value(eg, ins[1]).filter(|t| t.rank() == 2)?;
    let _ = b;
    let ((), inner) = find_op(eg, ins[0], |o| matches!(o, Op::MatMul).then_some(()))?;
    value(eg, inner[1]).filter(|t| t.rank() == 2)?;
    let ab = add_op(eg, Op::MatMul, vec![inner[1], ins[1]]);
    Some(add_op(eg, Op::MatMul, vec![inner[0], ab]))
}
