//! Neural-network ops with windows and weights: Conv, ConvTranspose, Gemm, MatMul, pooling, LRN.
//! [`Window`] resolves strides/pads/dilations/auto_pad into concrete geometry once, for shape
//! inference and for every backend.

use super::infer::{broadcast_all, InferCtx, InferError};
use crate::{DType, Dim, TensorType};

/// ONNX `auto_pad`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AutoPad {
    #[default]
    NotSet,
    SameUpper,
    SameLower,
    Valid,
}

impl AutoPad {
    pub fn onnx_name(&self) -> &'static str {
        match self {
            AutoPad::NotSet => "NOTSET",
            AutoPad::SameUpper => "SAME_UPPER",
            AutoPad::SameLower => "SAME_LOWER",
            AutoPad::Valid => "VALID",
        }
    }

    pub fn from_onnx(s: &str) -> Option<AutoPad> {
        [AutoPad::NotSet, AutoPad::SameUpper, AutoPad::SameLower, AutoPad::Valid]
            .into_iter()
            .find(|a| a.onnx_name() == s)
    }
}

/// Window attributes shared by convolutions and pools. Empty vectors mean ONNX defaults
/// (stride 1, dilation 1, zero pads); `pads` is `[begin..., end...]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Window {
    pub kernel_shape: Option<Vec<usize>>,
    pub strides: Vec<usize>,
    pub pads: Vec<usize>,
    pub dilations: Vec<usize>,
    pub auto_pad: AutoPad,
}

/// A window resolved against concrete spatial extents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub kernel: Vec<usize>,
    pub strides: Vec<usize>,
    pub dilations: Vec<usize>,
    pub pads_begin: Vec<usize>,
    pub pads_end: Vec<usize>,
    pub output: Vec<usize>,
}

impl Window {
    /// Resolves the window for input spatial extents `input` and kernel extents `kernel`.
    /// `ceil_mode` is the pooling rounding mode. Errors describe what does not fit.
    pub fn resolve(&self, input: &[usize], kernel: &[usize], ceil_mode: bool) -> Result<Geometry, String> {
        let n = input.len();
        if kernel.len() != n {
            return Err(format!("kernel rank {} does not match {} spatial dims", kernel.len(), n));
        }
        let get = |v: &[usize], what: &str| -> Result<Vec<usize>, String> {
            match v.len() {
                0 => Ok(vec![1; n]),
                l if l == n => Ok(v.to_vec()),
                l => Err(format!("{what} has {l} entries, expected {n}")),
            }
        };
        let strides = get(&self.strides, "strides")?;
        let dilations = get(&self.dilations, "dilations")?;
        if strides.contains(&0) || dilations.contains(&0) {
            return Err("strides and dilations must be positive".into());
        }
        if kernel.contains(&0) {
            return Err(format!("kernel extents {kernel:?} must be positive"));
        }
        let (mut pads_begin, mut pads_end) = match self.pads.len() {
            0 => (vec![0; n], vec![0; n]),
            l if l == 2 * n => (self.pads[..n].to_vec(), self.pads[n..].to_vec()),
            l => return Err(format!("pads has {l} entries, expected {}", 2 * n)),
        };
        let mut output = vec![0; n];
        for i in 0..n {
            let span = (kernel[i] - 1)
                .checked_mul(dilations[i])
                .and_then(|s| s.checked_add(1))
                .ok_or_else(|| format!("kernel extent {} with dilation {} overflows", kernel[i], dilations[i]))?;
            match self.auto_pad {
                AutoPad::NotSet => {
                    let padded = input[i]
                        .checked_add(pads_begin[i])
                        .and_then(|p| p.checked_add(pads_end[i]))
                        .ok_or_else(|| format!("pads of spatial dim {i} overflow"))?;
                    if padded < span {
                        return Err(format!(
                            "window of extent {span} does not fit spatial dim {i} of extent {} (padded {padded})",
                            input[i]
                        ));
                    }
                    let q = padded - span;
                    output[i] = if ceil_mode { q.div_ceil(strides[i]) } else { q / strides[i] } + 1;
                    // A last window starting entirely in the end padding is dropped (as ONNX does).
                    if ceil_mode && (output[i] - 1) * strides[i] >= input[i] + pads_begin[i] {
                        output[i] -= 1;
                    }
                }
                AutoPad::Valid => {
                    if input[i] < span {
                        return Err(format!(
                            "window of extent {span} does not fit spatial dim {i} of extent {}",
                            input[i]
                        ));
                    }
                    output[i] = (input[i] - span) / strides[i] + 1;
                    pads_begin[i] = 0;
                    pads_end[i] = 0;
                }
                AutoPad::SameUpper | AutoPad::SameLower => {
                    output[i] = input[i].div_ceil(strides[i]);
                    let covered = output[i].saturating_sub(1).checked_mul(strides[i]).and_then(|c| c.checked_add(span));
                    let total = covered.ok_or_else(|| format!("window of extent {span} overflows spatial dim {i}"))?;
                    let total = total.saturating_sub(input[i]);
                    let small = total / 2;
                    if self.auto_pad == AutoPad::SameUpper {
                        pads_begin[i] = small;
                        pads_end[i] = total - small;
                    } else {
                        pads_begin[i] = total - small;
                        pads_end[i] = small;
                    }
                }
            }
        }
        // A backend may materialize the padded plane: its extents must add up and fit in memory.
        let padded: Option<Vec<usize>> =
            (0..n).map(|i| input[i].checked_add(pads_begin[i])?.checked_add(pads_end[i])).collect();
        let padded = padded.ok_or("the padded input overflows")?;
        crate::tensor::check_alloc(crate::DType::F32, &padded).map_err(|e| format!("the padded input plane: {e}"))?;
        Ok(Geometry { kernel: kernel.to_vec(), strides, dilations, pads_begin, pads_end, output })
    }
}

/// Output spatial dims of a window over possibly symbolic input dims.
fn spatial_output(
    cx: &InferCtx,
    window: &Window,
    input: &[Dim],
    kernel: &[usize],
    ceil_mode: bool,
) -> Result<Vec<Dim>, InferError> {
    match crate::concrete(input) {
        Some(dims) => {
            let g = window.resolve(&dims, kernel, ceil_mode).map_err(|m| cx.error(m))?;
            Ok(g.output.into_iter().map(Dim::Known).collect())
        }
        None => Ok((0..input.len()).map(|i| cx.fresh(format!("spatial{i}"))).collect()),
    }
}

/// Convolution. Weights are `[M, C/group, k...]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Conv {
    pub window: Window,
    pub group: usize,
}

impl Conv {
    pub(crate) fn infer(&self, cx: &InferCtx) -> Result<Vec<TensorType>, InferError> {
        let x = cx.expect_dtype(0, DType::is_float)?;
        let w = cx.input(1)?;
        if w.dtype != x.dtype {
            return Err(cx.error(format!("weight dtype {} differs from input dtype {}", w.dtype, x.dtype)));
        }
        if x.rank() < 3 || w.rank() != x.rank() {
            return Err(cx.error(format!("input {x} and weight {w} must have equal rank of at least 3")));
        }
        let group = self.group.max(1);
        let kernel = w.shape[2..].iter().map(Dim::known).collect::<Option<Vec<_>>>();
        let kernel = kernel.ok_or_else(|| cx.error("kernel extents must be known".into()))?;
        if let Some(ks) = &self.window.kernel_shape {
            if *ks != kernel {
                return Err(cx.error(format!("kernel_shape {ks:?} disagrees with weight {w}")));
            }
        }
        if let (Some(c), Some(wc)) = (x.shape[1].known(), w.shape[1].known()) {
            if c != wc * group {
                return Err(cx.error(format!(
                    "input has {c} channels but weight {w} with group {group} expects {}",
                    wc * group
                )));
            }
        }
        if let (Some(m), Some(b)) = (w.shape[0].known(), cx.opt_input(2)) {
            if b.shape != [Dim::Known(m)] {
                return Err(cx.error(format!("bias {b} must have shape [{m}]")));
            }
        }
        let mut shape = vec![x.shape[0].clone(), w.shape[0].clone()];
        shape.extend(spatial_output(cx, &self.window, &x.shape[2..], &kernel, false)?);
        Ok(vec![TensorType { dtype: x.dtype, shape }])
    }
}

/// Transposed convolution. Weights are `[C, M/group, k...]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ConvTranspose {
    pub window: Window,
    pub group: usize,
    pub output_padding: Vec<usize>,
    pub output_shape: Option<Vec<usize>>,
}

impl ConvTranspose {
    /// Resolves geometry (output extents and begin/end pads) for concrete input extents.
    pub fn resolve(&self, input: &[usize], kernel: &[usize]) -> Result<Geometry, String> {
        let n = input.len();
        let get = |v: &[usize], d: usize| if v.is_empty() { vec![d; n] } else { v.to_vec() };
        let w = &self.window;
        let strides = get(&w.strides, 1);
        let dilations = get(&w.dilations, 1);
        let out_pad = get(&self.output_padding, 0);
        if [strides.len(), dilations.len(), out_pad.len(), kernel.len()].iter().any(|&l| l != n) {
            return Err(format!("strides, dilations, output_padding and kernel must each have {n} entries"));
        }
        let full = |i: usize| strides[i] * (input[i] - 1) + out_pad[i] + (kernel[i] - 1) * dilations[i] + 1;
        let (mut pb, mut pe) = match w.pads.len() {
            0 => (vec![0; n], vec![0; n]),
            l if l == 2 * n => (w.pads[..n].to_vec(), w.pads[n..].to_vec()),
            l => return Err(format!("pads has {l} entries, expected {}", 2 * n)),
        };
        let mut output = vec![0; n];
        for i in 0..n {
            let target = match (&self.output_shape, w.auto_pad) {
                (Some(os), _) => Some(*os.get(os.len().wrapping_sub(n) + i).ok_or("output_shape too short")?),
                (None, AutoPad::SameUpper | AutoPad::SameLower) => Some(input[i] * strides[i]),
                _ => None,
            };
            match target {
                Some(t) => {
                    // ONNX splits the total padding with floor division; a negative total (an
                    // output_shape beyond the full output) extends the end, which the output
                    // extent already says, so only the begin pad matters.
                    let total = full(i) as i64 - t as i64;
                    let (begin, end) = if w.auto_pad == AutoPad::SameUpper {
                        (total.div_euclid(2), total - total.div_euclid(2))
                    } else {
                        (total - total.div_euclid(2), total.div_euclid(2))
                    };
                    pb[i] = usize::try_from(begin).map_err(|_| "output_shape needs a negative begin pad")?;
                    pe[i] = end.max(0) as usize;
                    output[i] = t;
                }
                None => {
                    output[i] = full(i).checked_sub(pb[i] + pe[i]).ok_or("pads exceed the output")?;
                }
            }
        }
        Ok(Geometry { kernel: kernel.to_vec(), strides, dilations, pads_begin: pb, pads_end: pe, output })
    }

    pub(crate) fn infer(&self, cx: &InferCtx) -> Result<Vec<TensorType>, InferError> {
        let x = cx.expect_dtype(0, DType::is_float)?;
        let w = cx.input(1)?;
        if x.rank() < 3 || w.rank() != x.rank() {
            return Err(cx.error(format!("input {x} and weight {w} must have equal rank of at least 3")));
        }
        let kernel = w.shape[2..].iter().map(Dim::known).collect::<Option<Vec<_>>>();
        let kernel = kernel.ok_or_else(|| cx.error("kernel extents must be known".into()))?;
        let m = match w.shape[1].known() {
            Some(per_group) => Dim::Known(per_group * self.group.max(1)),
            None => cx.fresh("channels"),
        };
        let spatial: Vec<Dim> = match crate::concrete(&x.shape[2..]) {
            Some(dims) => {
                let g = self.resolve(&dims, &kernel).map_err(|m| cx.error(m))?;
                g.output.into_iter().map(Dim::Known).collect()
            }
            None => (0..kernel.len()).map(|i| cx.fresh(format!("spatial{i}"))).collect(),
        };
        let mut shape = vec![x.shape[0].clone(), m];
        shape.extend(spatial);
        Ok(vec![TensorType { dtype: x.dtype, shape }])
    }
}

/// `alpha * op(A) @ op(B) + beta * C`.
#[derive(Clone, Debug, PartialEq)]
pub struct Gemm {
    pub alpha: f32,
    pub beta: f32,
    pub trans_a: bool,
    pub trans_b: bool,
}

impl Default for Gemm {
    fn default() -> Self {
        Gemm { alpha: 1.0, beta: 1.0, trans_a: false, trans_b: false }
    }
}

impl Gemm {
    pub(crate) fn infer(&self, cx: &InferCtx) -> Result<Vec<TensorType>, InferError> {
        let a = cx.expect_rank(0, 2)?;
        let b = cx.expect_rank(1, 2)?;
        if a.dtype != b.dtype || a.dtype == DType::Bool {
            return Err(cx.error(format!("operand dtypes {} and {} are not a valid pair", a.dtype, b.dtype)));
        }
        let (m, ka) = if self.trans_a { (&a.shape[1], &a.shape[0]) } else { (&a.shape[0], &a.shape[1]) };
        let (kb, n) = if self.trans_b { (&b.shape[1], &b.shape[0]) } else { (&b.shape[0], &b.shape[1]) };
        if let (Some(x), Some(y)) = (ka.known(), kb.known()) {
            if x != y {
                return Err(cx.error(format!("inner dimensions differ: A {a} gives {x}, B {b} gives {y}")));
            }
        }
        let out = vec![m.clone(), n.clone()];
        if let Some(c) = cx.opt_input(2) {
            let joined = broadcast_all(cx, &[&out, &c.shape])?;
            if joined.len() != 2
                || joined.iter().zip(&out).any(|(j, o)| j.known().is_some() && o.known().is_some() && j != o)
            {
                return Err(cx.error(format!("C {c} does not broadcast to [{m},{n}]")));
            }
        }
        Ok(vec![TensorType { dtype: a.dtype, shape: out }])
    }
}

pub(crate) fn infer_matmul(cx: &InferCtx) -> Result<Vec<TensorType>, InferError> {
    let a = cx.input(0)?;
    let b = cx.input(1)?;
    if a.dtype != b.dtype || a.dtype == DType::Bool {
        return Err(cx.error(format!("operand dtypes {} and {} are not a valid pair", a.dtype, b.dtype)));
    }
    if a.rank() == 0 || b.rank() == 0 {
        return Err(cx.error("MatMul operands must have rank at least 1".into()));
    }
    let a_shape: Vec<Dim> = if a.rank() == 1 { vec![Dim::Known(1), a.shape[0].clone()] } else { a.shape.clone() };
    let b_shape: Vec<Dim> = if b.rank() == 1 { vec![b.shape[0].clone(), Dim::Known(1)] } else { b.shape.clone() };
    let (ra, rb) = (a_shape.len(), b_shape.len());
    let (ka, kb) = (&a_shape[ra - 1], &b_shape[rb - 2]);
    if let (Some(x), Some(y)) = (ka.known(), kb.known()) {
        if x != y {
            return Err(cx.error(format!("inner dimensions differ: {a} @ {b}")));
        }
    }
    let mut shape = broadcast_all(cx, &[&a_shape[..ra - 2], &b_shape[..rb - 2]])?;
    if a.rank() > 1 {
        shape.push(a_shape[ra - 2].clone());
    }
    if b.rank() > 1 {
        shape.push(b_shape[rb - 1].clone());
    }
    Ok(vec![TensorType { dtype: a.dtype, shape }])
}

/// BatchNormalization (`params` = 4: scale, bias, mean, var) and InstanceNormalization (2:
/// scale, bias): float data, and one parameter per channel (dim 1) in each parameter input.
pub(crate) fn infer_channel_norm(cx: &InferCtx, params: usize) -> Result<Vec<TensorType>, InferError> {
    let x = cx.expect_dtype(0, DType::is_float)?;
    let channels = x.shape.get(1).and_then(Dim::known);
    for i in 1..=params {
        let p = cx.input(i)?;
        let (Some(c), Some(n)) = (channels, p.numel()) else { continue };
        if n != c {
            return Err(cx.error(format!("input {i} {p} must hold one value for each of the {c} channels of {x}")));
        }
    }
    Ok(vec![x.clone()])
}

pub(crate) fn infer_layer_norm(cx: &InferCtx, axis: i64) -> Result<Vec<TensorType>, InferError> {
    let x = cx.expect_dtype(0, DType::is_float)?;
    let a = cx.axis(axis, x.rank())?;
    let mut out = vec![x.clone()];
    let mut stat = x.shape[..a].to_vec();
    stat.extend(std::iter::repeat_n(Dim::Known(1), x.rank() - a));
    out.extend((1..cx.num_outputs.min(3)).map(|_| TensorType { dtype: DType::F32, shape: stat.clone() }));
    Ok(out)
}

/// Which reduction a pool applies to its window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PoolKind {
    Max,
    Average { count_include_pad: bool },
    Lp { p: f32 },
}

impl PoolKind {
    pub fn onnx_name(&self) -> &'static str {
        match self {
            PoolKind::Max => "MaxPool",
            PoolKind::Average { .. } => "AveragePool",
            PoolKind::Lp { .. } => "LpPool",
        }
    }
}

/// A windowed pool. MaxPool may have a second output, the argmax indices (i64).
#[derive(Clone, Debug, PartialEq)]
pub struct Pool {
    pub kind: PoolKind,
    pub window: Window,
    pub ceil_mode: bool,
    /// MaxPool `storage_order`: 1 means column-major indices.
    pub storage_order: i64,
}

impl Pool {
    /// The kernel extents (required attribute for pools).
    pub fn kernel(&self) -> &[usize] {
        self.window.kernel_shape.as_deref().unwrap_or(&[])
    }

    pub(crate) fn infer(&self, cx: &InferCtx) -> Result<Vec<TensorType>, InferError> {
        let x = cx.expect_dtype(0, |d| d.is_float() || matches!(d, DType::I8 | DType::U8))?;
        let kernel = self.kernel();
        if x.rank() != kernel.len() + 2 {
            return Err(cx.error(format!("input {x} does not match kernel_shape {kernel:?}")));
        }
        let mut shape = x.shape[..2].to_vec();
        shape.extend(spatial_output(cx, &self.window, &x.shape[2..], kernel, self.ceil_mode)?);
        let mut out = vec![TensorType { dtype: x.dtype, shape: shape.clone() }];
        if cx.num_outputs > 1 {
            out.push(TensorType { dtype: DType::I64, shape });
        }
        Ok(out)
    }
}

pub(crate) fn infer_global_pool(cx: &InferCtx) -> Result<Vec<TensorType>, InferError> {
    let x = cx.expect_dtype(0, DType::is_float)?;
    if x.rank() < 3 {
        return Err(cx.error(format!("input {x} needs rank at least 3")));
    }
    let mut shape = x.shape[..2].to_vec();
    shape.extend(std::iter::repeat_n(Dim::Known(1), x.rank() - 2));
    Ok(vec![TensorType { dtype: x.dtype, shape }])
}

/// Local response normalization across channels.
#[derive(Clone, Debug, PartialEq)]
pub struct Lrn {
    pub size: usize,
    pub alpha: f32,
    pub beta: f32,
    pub bias: f32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_output_sizes() {
        let w = Window { strides: vec![2, 2], pads: vec![3, 3, 3, 3], ..Default::default() };
        assert_eq!(w.resolve(&[224, 224], &[7, 7], false).unwrap().output, vec![112, 112]);
        let same = Window { strides: vec![2], auto_pad: AutoPad::SameUpper, ..Default::default() };
        let g = same.resolve(&[5], &[3], false).unwrap();
        assert_eq!((g.output[0], g.pads_begin[0], g.pads_end[0]), (3, 1, 1));
        let pool = Window { strides: vec![2], ..Default::default() };
        assert_eq!(pool.resolve(&[6], &[3], true).unwrap().output, vec![3]);
        assert_eq!(pool.resolve(&[6], &[3], false).unwrap().output, vec![2]);
        assert!(pool.resolve(&[2], &[3], false).is_err());
        let empty_kernel = pool.resolve(&[6], &[0], false).unwrap_err();
        assert!(empty_kernel.contains("kernel extents [0] must be positive"), "{empty_kernel}");
    }

    #[test]
    fn conv_transpose_output() {
        let ct = ConvTranspose {
            window: Window { strides: vec![2, 2], ..Default::default() },
            group: 1,
            ..Default::default()
        };
        assert_eq!(ct.resolve(&[3, 3], &[3, 3]).unwrap().output, vec![7, 7]);
        // test_convtranspose_output_shape: stride 3 gives a full output of 9, asked for 10 and 8.
        let wide = ConvTranspose {
            window: Window { strides: vec![3, 2], ..Default::default() },
            output_shape: Some(vec![10, 8]),
            ..Default::default()
        };
        let g = wide.resolve(&[3, 3], &[3, 3]).unwrap();
        assert_eq!((g.output, g.pads_begin, g.pads_end), (vec![10, 8], vec![0, 0], vec![0, 0]));
        let same = Window { auto_pad: AutoPad::SameUpper, ..Default::default() };
        assert_eq!(same.resolve(&[0], &[3], false).unwrap().output, vec![0]);
    }
}
