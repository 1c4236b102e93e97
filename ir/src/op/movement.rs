//! Data-movement and shape ops: concat/split/slice/gather, reshape family, transpose, expand/tile,
//! shape queries, pad, resize, where. Rules read constant shape inputs when they are known and
//! name data-dependent dims otherwise.

use super::infer::{broadcast_all, InferCtx, InferError};
use crate::{DType, Dim, Tensor, TensorType};

/// Output = first input's type, after a dtype check.
pub(crate) fn infer_same_as_first(cx: &InferCtx, ok: impl Fn(DType) -> bool) -> Result<Vec<TensorType>, InferError> {
    Ok(vec![cx.expect_dtype(0, ok)?.clone()])
}

pub(crate) fn infer_where(cx: &InferCtx) -> Result<Vec<TensorType>, InferError> {
    let c = cx.expect_dtype(0, |d| d == DType::Bool)?;
    let (x, y) = (cx.input(1)?, cx.input(2)?);
    if x.dtype != y.dtype {
        return Err(cx.error(format!("branches have different dtypes: {} vs {}", x.dtype, y.dtype)));
    }
    let shape = broadcast_all(cx, &[&c.shape, &x.shape, &y.shape])?;
    Ok(vec![TensorType { dtype: x.dtype, shape }])
}

pub(crate) fn infer_concat(cx: &InferCtx, axis: i64) -> Result<Vec<TensorType>, InferError> {
    let ins = cx.required_inputs()?;
    let first = ins.first().ok_or_else(|| cx.error("needs at least one input".into()))?;
    let axis = cx.axis(axis, first.rank())?;
    let mut total = Some(0usize);
    let mut shape = first.shape.clone();
    for t in &ins {
        if t.dtype != first.dtype || t.rank() != first.rank() {
            return Err(cx.error(format!("inputs {first} and {t} cannot be concatenated")));
        }
        for (i, (a, b)) in first.shape.iter().zip(&t.shape).enumerate() {
            if i != axis && a.known().is_some() && b.known().is_some() && a != b {
                return Err(cx.error(format!("inputs {first} and {t} differ outside axis {axis}")));
            }
            if i != axis && a.known().is_none() {
                shape[i] = b.clone();
            }
        }
        total = total.zip(t.shape[axis].known()).and_then(|(s, d)| s.checked_add(d));
    }
    shape[axis] = total.map_or_else(|| cx.fresh("concat"), Dim::Known);
    Ok(vec![TensorType { dtype: first.dtype, shape }])
}

/// Sizes of the pieces `Split` produces for an axis of extent `extent`.
pub fn split_sizes(extent: usize, sizes: Option<&[i64]>, outputs: usize) -> Result<Vec<usize>, String> {
    match sizes {
        Some(s) => {
            if s.iter().any(|&v| v < 0) || s.iter().sum::<i64>() as usize != extent || s.len() != outputs {
                Err(format!("split sizes {s:?} do not divide extent {extent} into {outputs} outputs"))
            } else {
                Ok(s.iter().map(|&v| v as usize).collect())
            }
        }
        None if outputs == 0 => Err("Split needs at least one output".into()),
        None => {
            // Opset 18: the last chunk may be smaller.
            let chunk = extent.div_ceil(outputs);
            Ok((0..outputs).map(|i| chunk.min(extent.saturating_sub(i * chunk))).collect())
        }
    }
}

pub(crate) fn infer_split(cx: &InferCtx, axis: i64) -> Result<Vec<TensorType>, InferError> {
    let x = cx.input(0)?;
    let axis = cx.axis(axis, x.rank())?;
    let sizes = cx.const_i64(1);
    let sizes_known = cx.opt_input(1).is_none() || sizes.is_some();
    let (Some(extent), true) = (x.shape[axis].known(), sizes_known) else {
        // Piece extents known only at run time.
        return Ok((0..cx.num_outputs)
            .map(|i| {
                let mut shape = x.shape.clone();
                shape[axis] = cx.fresh(format!("split{i}"));
                TensorType { dtype: x.dtype, shape }
            })
            .collect());
    };
    let pieces = split_sizes(extent, sizes.as_deref(), cx.num_outputs).map_err(|m| cx.error(m))?;
    Ok(pieces
        .into_iter()
        .map(|p| {
            let mut shape = x.shape.clone();
            shape[axis] = Dim::Known(p);
            TensorType { dtype: x.dtype, shape }
        })
        .collect())
}

/// A resolved slice along one axis: start index, step, element count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SliceAxis {
    pub start: i64,
    pub step: i64,
    pub len: usize,
}

/// Clamps ONNX slice parameters against an extent, following the operator spec exactly.
pub fn resolve_slice(extent: usize, start: i64, end: i64, step: i64) -> Result<SliceAxis, String> {
    if step == 0 {
        return Err("slice step must not be 0".into());
    }
    let d = extent as i64;
    let norm = |v: i64| if v < 0 { v.saturating_add(d) } else { v };
    let (s, e) = (norm(start), norm(end));
    if d == 0 {
        return Ok(SliceAxis { start: 0, step, len: 0 });
    }
    let (s, e) = if step > 0 { (s.clamp(0, d), e.clamp(0, d)) } else { (s.clamp(0, d - 1), e.clamp(-1, d - 1)) };
    let len = if step > 0 {
        if e > s {
            (e - s + step - 1) / step
        } else {
            0
        }
    } else if s > e {
        (s - e + (-step) - 1) / (-step)
    } else {
        0
    };
    Ok(SliceAxis { start: s, step, len: len as usize })
}

/// Per-axis slices for a tensor of `shape`, from the Slice op's inputs.
pub fn slice_plan(
    shape: &[usize],
    starts: &[i64],
    ends: &[i64],
    axes: Option<&[i64]>,
    steps: Option<&[i64]>,
) -> Result<Vec<SliceAxis>, String> {
    let rank = shape.len();
    let mut plan: Vec<SliceAxis> = shape.iter().map(|&d| SliceAxis { start: 0, step: 1, len: d }).collect();
    if starts.len() != ends.len() {
        return Err("starts and ends differ in length".into());
    }
    let default_axes: Vec<i64> = (0..starts.len() as i64).collect();
    let axes = axes.unwrap_or(&default_axes);
    if axes.len() != starts.len() || steps.is_some_and(|s| s.len() != starts.len()) {
        return Err("axes and steps must match starts in length".into());
    }
    let mut seen = vec![false; rank];
    for (i, &a) in axes.iter().enumerate() {
        let ax = super::normalize_axis(a, rank).ok_or_else(|| format!("slice axis {a} out of range"))?;
        if std::mem::replace(&mut seen[ax], true) {
            return Err(format!("slice axis {a} repeated"));
        }
        let step = steps.map_or(1, |s| s[i]);
        plan[ax] = resolve_slice(shape[ax], starts[i], ends[i], step)?;
    }
    Ok(plan)
}

pub(crate) fn infer_slice(cx: &InferCtx) -> Result<Vec<TensorType>, InferError> {
    let x = cx.input(0)?;
    let (starts, ends) = (cx.const_i64(1), cx.const_i64(2));
    let axes_known = cx.opt_input(3).is_none() || cx.const_input(3).is_some();
    let steps_known = cx.opt_input(4).is_none() || cx.const_input(4).is_some();
    let (Some(starts), Some(ends), true, true) = (starts, ends, axes_known, steps_known) else {
        let shape = (0..x.rank()).map(|i| cx.fresh(format!("slice{i}"))).collect();
        return Ok(vec![TensorType { dtype: x.dtype, shape }]);
    };
    let axes = cx.const_i64(3);
    let steps = cx.const_i64(4);
    let rank = x.rank();
    let default_axes: Vec<i64> = (0..starts.len() as i64).collect();
    let axes_v = axes.as_deref().unwrap_or(&default_axes);
    let mut shape = x.shape.clone();
    for (i, &a) in axes_v.iter().enumerate() {
        let ax = cx.axis(a, rank)?;
        let (s, e) = (
            *starts.get(i).ok_or_else(|| cx.error("starts too short".into()))?,
            *ends.get(i).ok_or_else(|| cx.error("ends too short".into()))?,
        );
        let step =
            steps.as_ref().map_or(Some(1), |v| v.get(i).copied()).ok_or_else(|| cx.error("steps too short".into()))?;
        shape[ax] = match x.shape[ax].known() {
            Some(d) => Dim::Known(resolve_slice(d, s, e, step).map_err(|m| cx.error(m))?.len),
            None => cx.fresh(format!("slice{ax}")),
        };
    }
    Ok(vec![TensorType { dtype: x.dtype, shape }])
}

pub(crate) fn infer_gather(cx: &InferCtx, axis: i64) -> Result<Vec<TensorType>, InferError> {
    let x = cx.input(0)?;
    let idx = cx.expect_dtype(1, |d| matches!(d, DType::I32 | DType::I64))?;
    let axis = cx.axis(axis, x.rank())?;
    let mut shape = x.shape[..axis].to_vec();
    shape.extend(idx.shape.iter().cloned());
    shape.extend(x.shape[axis + 1..].iter().cloned());
    Ok(vec![TensorType { dtype: x.dtype, shape }])
}

pub(crate) fn infer_gather_nd(cx: &InferCtx, batch_dims: i64) -> Result<Vec<TensorType>, InferError> {
    let x = cx.input(0)?;
    let idx = cx.expect_dtype(1, |d| d == DType::I64)?;
    let b = batch_dims.max(0) as usize;
    let Some(last) = idx.shape.last().and_then(Dim::known) else {
        return Err(cx.error("the last dim of indices must be known".into()));
    };
    if b + last > x.rank() || idx.rank() <= b {
        return Err(cx.error(format!("indices {idx} do not fit data {x} with batch_dims {b}")));
    }
    let mut shape = idx.shape[..idx.rank() - 1].to_vec();
    shape.extend(x.shape[b + last..].iter().cloned());
    Ok(vec![TensorType { dtype: x.dtype, shape }])
}

/// Resolves a Reshape target (with 0 = copy and -1 = infer) against a concrete input shape.
pub fn reshape_target(input: &[usize], target: &[i64], allowzero: bool) -> Result<Vec<usize>, String> {
    let checked_product = |dims: &[usize]| dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let total = checked_product(input).ok_or_else(|| format!("input shape {input:?} overflows"))?;
    let mut out = Vec::with_capacity(target.len());
    let mut infer_at = None;
    for (i, &t) in target.iter().enumerate() {
        match t {
            -1 if infer_at.is_none() => {
                infer_at = Some(i);
                out.push(1);
            }
            0 if !allowzero => out.push(
                *input.get(i).ok_or_else(|| format!("shape entry {i} is 0 but the input has rank {}", input.len()))?,
            ),
            t if t >= 0 => out.push(t as usize),
            _ => return Err(format!("invalid reshape target {target:?}")),
        }
    }
    let known = checked_product(&out).ok_or_else(|| format!("reshape target {target:?} overflows"))?;
    if let Some(i) = infer_at {
        if known == 0 || !total.is_multiple_of(known) {
            return Err(format!("cannot reshape {input:?} ({total} elements) to {target:?}"));
        }
        out[i] = total / known;
    } else if known != total {
        return Err(format!("cannot reshape {input:?} ({total} elements) to {target:?}"));
    }
    Ok(out)
}

pub(crate) fn infer_reshape(cx: &InferCtx, allowzero: bool) -> Result<Vec<TensorType>, InferError> {
    let x = cx.input(0)?;
    cx.expect_dtype(1, |d| d == DType::I64)?;
    let Some(target) = cx.const_i64(1) else {
        let n = cx.runtime_len(1, "shape input")?;
        let shape = cx.fresh_shape(n, "reshape");
        return Ok(vec![TensorType { dtype: x.dtype, shape }]);
    };
    let shape = match x.concrete_shape() {
        Some(dims) => {
            reshape_target(&dims, &target, allowzero).map_err(|m| cx.error(m))?.into_iter().map(Dim::Known).collect()
        }
        None => target
            .iter()
            .enumerate()
            .map(|(i, &t)| match t {
                0 if !allowzero => x.shape.get(i).cloned().unwrap_or_else(|| cx.fresh(format!("reshape{i}"))),
                t if t > 0 => Dim::Known(t as usize),
                _ => cx.fresh(format!("reshape{i}")),
            })
            .collect(),
    };
    Ok(vec![TensorType { dtype: x.dtype, shape }])
}

pub(crate) fn infer_flatten(cx: &InferCtx, axis: i64) -> Result<Vec<TensorType>, InferError> {
    let x = cx.input(0)?;
    let r = x.rank() as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if !(0..=r).contains(&a) {
        return Err(cx.error(format!("axis {axis} out of range for rank {r}")));
    }
    let prod = |ds: &[Dim], what: &str| -> Dim {
        crate::concrete(ds).map_or_else(|| cx.fresh(what), |v| Dim::Known(v.iter().product()))
    };
    let a = a as usize;
    Ok(vec![TensorType { dtype: x.dtype, shape: vec![prod(&x.shape[..a], "outer"), prod(&x.shape[a..], "inner")] }])
}

pub(crate) fn infer_transpose(cx: &InferCtx, perm: Option<&[usize]>) -> Result<Vec<TensorType>, InferError> {
    let x = cx.input(0)?;
    let default: Vec<usize> = (0..x.rank()).rev().collect();
    let perm = perm.unwrap_or(&default);
    let mut sorted = perm.to_vec();
    sorted.sort_unstable();
    if sorted != (0..x.rank()).collect::<Vec<_>>() {
        return Err(cx.error(format!("perm {perm:?} is not a permutation of rank {}", x.rank())));
    }
    Ok(vec![TensorType { dtype: x.dtype, shape: perm.iter().map(|&p| x.shape[p].clone()).collect() }])
}

pub(crate) fn infer_squeeze(cx: &InferCtx) -> Result<Vec<TensorType>, InferError> {
    let x = cx.input(0)?;
    let axes: Vec<usize> = match (cx.opt_input(1), cx.const_i64(1)) {
        (None, _) => {
            if x.shape.iter().any(|d| d.known().is_none()) {
                return Err(cx.error("squeeze without axes needs every dim known".into()));
            }
            (0..x.rank()).filter(|&i| x.shape[i] == Dim::Known(1)).collect()
        }
        (Some(_), Some(a)) => a.iter().map(|&a| cx.axis(a, x.rank())).collect::<Result<_, _>>()?,
        (Some(_), None) => {
            let n = cx.runtime_len(1, "squeeze axes")?;
            let rank = x.rank().checked_sub(n).ok_or_else(|| cx.error(format!("{n} axes for {x}")))?;
            return Ok(vec![TensorType { dtype: x.dtype, shape: cx.fresh_shape(rank, "squeezed") }]);
        }
    };
    for &a in &axes {
        if x.shape[a].known().is_some_and(|d| d != 1) {
            return Err(cx.error(format!("cannot squeeze axis {a} of {x}: extent is not 1")));
        }
    }
    let shape = (0..x.rank()).filter(|i| !axes.contains(i)).map(|i| x.shape[i].clone()).collect();
    Ok(vec![TensorType { dtype: x.dtype, shape }])
}

/// Positions of the new unit axes of Unsqueeze, sorted, for an input of `rank`.
pub fn unsqueeze_axes(axes: &[i64], rank: usize) -> Result<Vec<usize>, String> {
    let out_rank = rank + axes.len();
    let mut v = axes
        .iter()
        .map(|&a| super::normalize_axis(a, out_rank).ok_or_else(|| format!("unsqueeze axis {a} out of range")))
        .collect::<Result<Vec<_>, _>>()?;
    v.sort_unstable();
    if v.windows(2).any(|w| w[0] == w[1]) {
        return Err(format!("unsqueeze axes {axes:?} repeat"));
    }
    Ok(v)
}

pub(crate) fn infer_unsqueeze(cx: &InferCtx) -> Result<Vec<TensorType>, InferError> {
    let x = cx.input(0)?;
    let Some(axes) = cx.const_i64(1) else {
        let n = cx.runtime_len(1, "unsqueeze axes")?;
        return Ok(vec![TensorType { dtype: x.dtype, shape: cx.fresh_shape(x.rank() + n, "unsqueezed") }]);
    };
    let axes = unsqueeze_axes(&axes, x.rank()).map_err(|m| cx.error(m))?;
    let mut rest = x.shape.iter();
    let shape = (0..x.rank() + axes.len())
        .map(|i| if axes.contains(&i) { Dim::Known(1) } else { rest.next().cloned().unwrap_or(Dim::Known(1)) })
        .collect();
    Ok(vec![TensorType { dtype: x.dtype, shape }])
}

pub(crate) fn infer_expand(cx: &InferCtx) -> Result<Vec<TensorType>, InferError> {
    let x = cx.input(0)?;
    cx.expect_dtype(1, |d| d == DType::I64)?;
    let target: Vec<Dim> = match cx.const_i64(1) {
        Some(v) => v.iter().map(|&d| Dim::Known(d.max(0) as usize)).collect(),
        None => {
            let n = cx.runtime_len(1, "shape input")?;
            cx.fresh_shape(n, "expand")
        }
    };
    Ok(vec![TensorType { dtype: x.dtype, shape: broadcast_all(cx, &[&x.shape, &target])? }])
}

pub(crate) fn infer_tile(cx: &InferCtx) -> Result<Vec<TensorType>, InferError> {
    let x = cx.input(0)?;
    let shape = match cx.const_i64(1) {
        Some(r) if r.len() == x.rank() => x
            .shape
            .iter()
            .zip(&r)
            .enumerate()
            .map(|(i, (d, &k))| match d.known() {
                None => Ok(cx.fresh(format!("tile{i}"))),
                Some(d) => d
                    .checked_mul(k.max(0) as usize)
                    .map(Dim::Known)
                    .ok_or_else(|| cx.error(format!("repeats {r:?} overflow axis {i} of {x}"))),
            })
            .collect::<Result<_, _>>()?,
        Some(r) => return Err(cx.error(format!("repeats {r:?} must have one entry per dim of {x}"))),
        None => (0..x.rank()).map(|i| cx.fresh(format!("tile{i}"))).collect(),
    };
    Ok(vec![TensorType { dtype: x.dtype, shape }])
}

/// The `start..end` range of dims that `Shape` reports, clamped as ONNX specifies.
pub fn shape_range(rank: usize, start: i64, end: Option<i64>) -> std::ops::Range<usize> {
    let r = rank as i64;
    let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let (s, e) = (clamp(start), clamp(end.unwrap_or(r)));
    s..e.max(s)
}

pub(crate) fn infer_shape(cx: &InferCtx, start: i64, end: Option<i64>) -> Result<Vec<TensorType>, InferError> {
    let x = cx.input(0)?;
    let n = shape_range(x.rank(), start, end).len();
    Ok(vec![TensorType::known(DType::I64, &[n])])
}

pub(crate) fn infer_constant_of_shape(cx: &InferCtx, value: &Tensor) -> Result<Vec<TensorType>, InferError> {
    cx.expect_dtype(0, |d| d == DType::I64)?;
    let shape = match cx.const_i64(0) {
        Some(v) => {
            if v.iter().any(|&d| d < 0) {
                return Err(cx.error(format!("shape {v:?} has a negative dim")));
            }
            let dims: Vec<usize> = v.iter().map(|&d| d as usize).collect();
            crate::tensor::check_alloc(value.dtype(), &dims).map_err(|e| cx.error(e.to_string()))?;
            dims.into_iter().map(Dim::Known).collect()
        }
        None => {
            let n = cx.runtime_len(0, "shape input")?;
            cx.fresh_shape(n, "dim")
        }
    };
    Ok(vec![TensorType { dtype: value.dtype(), shape }])
}

pub(crate) fn infer_range(cx: &InferCtx) -> Result<Vec<TensorType>, InferError> {
    let t = cx.input(0)?;
    for i in 1..3 {
        if cx.input(i)?.dtype != t.dtype {
            return Err(cx.error("start, limit and delta must share a dtype".into()));
        }
    }
    let len = match (cx.const_input(0), cx.const_input(1), cx.const_input(2)) {
        (Some(s), Some(l), Some(d)) => {
            let (s, l, d) = (s.to_f64_vec()[0], l.to_f64_vec()[0], d.to_f64_vec()[0]);
            Dim::Known(((l - s) / d).ceil().max(0.0) as usize)
        }
        _ => cx.fresh("range"),
    };
    Ok(vec![TensorType { dtype: t.dtype, shape: vec![len] }])
}

/// Pad modes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PadMode {
    #[default]
    Constant,
    Reflect,
    Edge,
    Wrap,
}

impl PadMode {
    pub fn onnx_name(&self) -> &'static str {
        match self {
            PadMode::Constant => "constant",
            PadMode::Reflect => "reflect",
            PadMode::Edge => "edge",
            PadMode::Wrap => "wrap",
        }
    }
}

/// Full per-axis `(begin, end)` pads (negative = crop) from Pad's `pads` and optional `axes`.
pub fn pad_amounts(rank: usize, pads: &[i64], axes: Option<&[i64]>) -> Result<Vec<(i64, i64)>, String> {
    let default: Vec<i64> = (0..rank as i64).collect();
    let axes = axes.unwrap_or(&default);
    if pads.len() != 2 * axes.len() {
        return Err(format!("pads has {} entries, expected {}", pads.len(), 2 * axes.len()));
    }
    let mut out = vec![(0, 0); rank];
    for (i, &a) in axes.iter().enumerate() {
        let ax = super::normalize_axis(a, rank).ok_or_else(|| format!("pad axis {a} out of range"))?;
        out[ax] = (pads[i], pads[i + axes.len()]);
    }
    Ok(out)
}

pub(crate) fn infer_pad(cx: &InferCtx) -> Result<Vec<TensorType>, InferError> {
    let x = cx.input(0)?;
    let (Some(pads), true) = (cx.const_i64(1), cx.opt_input(3).is_none() || cx.const_input(3).is_some()) else {
        let shape = (0..x.rank()).map(|i| cx.fresh(format!("pad{i}"))).collect();
        return Ok(vec![TensorType { dtype: x.dtype, shape }]);
    };
    let amounts = pad_amounts(x.rank(), &pads, cx.const_i64(3).as_deref()).map_err(|m| cx.error(m))?;
    let shape = x
        .shape
        .iter()
        .zip(&amounts)
        .enumerate()
        .map(|(i, (d, &(b, e)))| match d.known() {
            Some(n) => match (n as i64).checked_add(b).and_then(|v| v.checked_add(e)) {
                Some(v) if v >= 0 => Ok(Dim::Known(v as usize)),
                Some(_) => Err(cx.error(format!("pads {pads:?} crop axis {i} below zero"))),
                None => Err(cx.error(format!("pads {pads:?} overflow axis {i}"))),
            },
            None if b == 0 && e == 0 => Ok(d.clone()),
            None => Ok(cx.fresh(format!("pad{i}"))),
        })
        .collect::<Result<_, _>>()?;
    Ok(vec![TensorType { dtype: x.dtype, shape }])
}

/// Resize interpolation mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ResizeMode {
    #[default]
    Nearest,
    Linear,
    Cubic,
}

/// How output coordinates map back to input coordinates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ResizeCoord {
    #[default]
    HalfPixel,
    HalfPixelSymmetric,
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
    TfCropAndResize,
}

/// Rounding of nearest-mode source coordinates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ResizeNearest {
    #[default]
    RoundPreferFloor,
    RoundPreferCeil,
    Floor,
    Ceil,
}

/// Resize (and the old Upsample, which the importer maps here).
#[derive(Clone, Debug, PartialEq)]
pub struct Resize {
    pub mode: ResizeMode,
    pub coord: ResizeCoord,
    pub nearest: ResizeNearest,
    pub cubic_coeff_a: f32,
    pub exclude_outside: bool,
    pub extrapolation_value: f32,
    /// Opset 18 `axes`: which axes scales/sizes refer to (default: all).
    pub axes: Option<Vec<i64>>,
    /// Opset 18 `keep_aspect_ratio_policy`: "stretch", "not_larger" or "not_smaller".
    pub keep_aspect_ratio_policy: String,
    /// Opset 19 `antialias`.
    pub antialias: bool,
}

impl Default for Resize {
    fn default() -> Self {
        Resize {
            mode: ResizeMode::Nearest,
            coord: ResizeCoord::HalfPixel,
            nearest: ResizeNearest::RoundPreferFloor,
            cubic_coeff_a: -0.75,
            exclude_outside: false,
            extrapolation_value: 0.0,
            axes: None,
            keep_aspect_ratio_policy: "stretch".into(),
            antialias: false,
        }
    }
}

impl Resize {
    /// Output extents and per-axis scales for a concrete input, from `scales` or `sizes`.
    pub fn output_shape(
        &self,
        input: &[usize],
        scales: Option<&[f32]>,
        sizes: Option<&[i64]>,
    ) -> Result<(Vec<usize>, Vec<f32>), String> {
        let rank = input.len();
        let default: Vec<i64> = (0..rank as i64).collect();
        let axes: Vec<usize> = self
            .axes
            .as_deref()
            .unwrap_or(&default)
            .iter()
            .map(|&a| super::normalize_axis(a, rank).ok_or_else(|| format!("resize axis {a} out of range")))
            .collect::<Result<_, _>>()?;
        let mut out = input.to_vec();
        let mut sc = vec![1.0f32; rank];
        match (scales.filter(|s| !s.is_empty()), sizes.filter(|s| !s.is_empty())) {
            (Some(s), None) => {
                if s.len() != axes.len() {
                    return Err(format!("scales has {} entries for {} axes", s.len(), axes.len()));
                }
                for (&ax, &f) in axes.iter().zip(s) {
                    if f <= 0.0 || !f.is_finite() {
                        return Err(format!("scale {f} must be positive"));
                    }
                    sc[ax] = f;
                    out[ax] = (input[ax] as f64 * f as f64).floor() as usize;
                }
            }
            (None, Some(sz)) => {
                if sz.len() != axes.len() || sz.iter().any(|&v| v < 0) {
                    return Err(format!("sizes {sz:?} do not fit {} axes", axes.len()));
                }
                let ratios: Vec<f32> = axes.iter().zip(sz).map(|(&ax, &v)| v as f32 / input[ax] as f32).collect();
                let policy = match self.keep_aspect_ratio_policy.as_str() {
                    "not_larger" => ratios.iter().cloned().fold(f32::INFINITY, f32::min),
                    "not_smaller" => ratios.iter().cloned().fold(0.0, f32::max),
                    _ => f32::NAN,
                };
                for (i, &ax) in axes.iter().enumerate() {
                    if policy.is_nan() {
                        sc[ax] = ratios[i];
                        out[ax] = sz[i] as usize;
                    } else {
                        sc[ax] = policy;
                        out[ax] = (input[ax] as f32 * policy).round() as usize;
                    }
                }
            }
            _ => return Err("exactly one of scales and sizes must be given".into()),
        }
        Ok((out, sc))
    }

    pub(crate) fn infer(&self, cx: &InferCtx) -> Result<Vec<TensorType>, InferError> {
        let x = cx.input(0)?;
        let scales = cx.const_input(2).map(|t| t.to_f64_vec().into_iter().map(|v| v as f32).collect::<Vec<_>>());
        let sizes = cx.const_i64(3);
        let scales_ok = cx.opt_input(2).is_none() || scales.is_some();
        let sizes_ok = cx.opt_input(3).is_none() || sizes.is_some();
        let shape = match (x.concrete_shape(), scales_ok && sizes_ok) {
            (Some(dims), true) => {
                let (out, _) =
                    self.output_shape(&dims, scales.as_deref(), sizes.as_deref()).map_err(|m| cx.error(m))?;
                out.into_iter().map(Dim::Known).collect()
            }
            _ => (0..x.rank()).map(|i| cx.fresh(format!("resize{i}"))).collect(),
        };
        Ok(vec![TensorType { dtype: x.dtype, shape }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_follow_the_spec() {
        assert_eq!(resolve_slice(10, 1, 100, 2).unwrap(), SliceAxis { start: 1, step: 2, len: 5 });
        assert_eq!(resolve_slice(10, -1, i64::MIN, -1).unwrap(), SliceAxis { start: 9, step: -1, len: 10 });
        assert_eq!(resolve_slice(10, 5, 2, 1).unwrap().len, 0);
        assert!(resolve_slice(10, 0, 1, 0).is_err());
        assert_eq!(resolve_slice(0, -1, i64::MIN, -1).unwrap().len, 0);
    }

    #[test]
    fn reshape_targets() {
        assert_eq!(reshape_target(&[2, 3, 4], &[0, -1], false).unwrap(), vec![2, 12]);
        assert!(reshape_target(&[2, 3], &[4, -1], false).is_err());
        assert_eq!(reshape_target(&[0, 3], &[0, 3], true).unwrap(), vec![0, 3]);
        assert!(reshape_target(&[2, 3], &[i64::MAX, i64::MAX], false).is_err());
    }

    #[test]
    fn split_and_pads() {
        assert_eq!(split_sizes(7, None, 3).unwrap(), vec![3, 3, 1]);
        assert!(split_sizes(7, Some(&[3, 3]), 2).is_err());
        assert_eq!(pad_amounts(2, &[1, 2, 3, 4], None).unwrap(), vec![(1, 3), (2, 4)]);
        assert_eq!(shape_range(4, -3, Some(-1)), 1..3);
    }
}
