//! Normalizations along axes: Softmax/LogSoftmax over any axis (viewed as `[outer, n, inner]`,
//! reading memory three times per row: max, sum of exponentials, write), and
//! LayerNormalization / InstanceNormalization over contiguous rows (one pass for the moments,
//! accumulated in f64 about the row's first element, one pass writing). Parallel over rows, and
//! for Softmax over blocks of the inner extent.

use super::exec::Ptr;
use super::pool::Workers;
use super::typed::broadcast_strides;
use kiln_ir::op::normalize_axis;
use kiln_ir::Tensor;

/// Inner positions one Softmax task normalizes side by side (its accumulators live on the stack).
const LANES: usize = 64;

/// Softmax or LogSoftmax along the middle axis of `[outer, n, inner]`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SoftmaxStep {
    pub log: bool,
    pub outer: usize,
    pub n: usize,
    pub inner: usize,
}

impl SoftmaxStep {
    /// Over `axis` of `shape` (opset 13), or with `legacy` semantics over the flattened tail.
    pub(crate) fn new(shape: &[usize], axis: i64, legacy: bool, log: bool) -> Option<SoftmaxStep> {
        let a = normalize_axis(axis, shape.len())?;
        let prod = |d: &[usize]| d.iter().product::<usize>();
        let (outer, n, inner) = if legacy {
            (prod(&shape[..a]), prod(&shape[a..]), 1)
        } else {
            (prod(&shape[..a]), shape[a], prod(&shape[a + 1..]))
        };
        Some(SoftmaxStep { log, outer, n, inner })
    }

    /// # Safety
    /// `x` and `y` hold `outer × n × inner` values and do not overlap.
    pub(crate) unsafe fn run(&self, workers: &Workers, x: Ptr, y: Ptr) {
        let (n, inner) = (self.n, self.inner);
        let blocks = inner.div_ceil(LANES);
        workers.for_each(self.outer * blocks, n * inner.min(LANES) * 8, |t| {
            let (o, b) = (t / blocks, t % blocks);
            let lo = b * LANES;
            let width = LANES.min(inner - lo);
            // SAFETY: the task covers columns lo..lo+width of slab o, in bounds of both buffers
            // and disjoint from every other task's.
            unsafe { self.block(x.add(o * n * inner + lo), y.add(o * n * inner + lo), width) }
        });
    }

    /// Normalizes `width` columns (stride `inner`) of `n` rows from `x` into `y`.
    unsafe fn block(&self, x: *const f32, y: *mut f32, width: usize) {
        let (n, inner) = (self.n, self.inner);
        let mut max = [f32::NEG_INFINITY; LANES];
        let mut sum = [0.0f32; LANES];
        let (max, sum) = (&mut max[..width], &mut sum[..width]);
        // SAFETY (all three passes): rows k < n of `width` columns are in bounds (caller).
        for k in 0..n {
            let row = unsafe { std::slice::from_raw_parts(x.add(k * inner), width) };
            max.iter_mut().zip(row).for_each(|(m, &v)| *m = m.max(v));
        }
        for k in 0..n {
            let row = unsafe { std::slice::from_raw_parts(x.add(k * inner), width) };
            let out = unsafe { std::slice::from_raw_parts_mut(y.add(k * inner), width) };
            for j in 0..width {
                let e = (row[j] - max[j]).exp();
                sum[j] += e;
                out[j] = e;
            }
        }
        if self.log {
            for (m, s) in max.iter_mut().zip(sum.iter()) {
                *m += s.ln();
            }
            for k in 0..n {
                let row = unsafe { std::slice::from_raw_parts(x.add(k * inner), width) };
                let out = unsafe { std::slice::from_raw_parts_mut(y.add(k * inner), width) };
                out.iter_mut().zip(row).zip(max.iter()).for_each(|((o, &v), &m)| *o = v - m);
            }
        } else {
            sum.iter_mut().for_each(|s| *s = 1.0 / *s);
            for k in 0..n {
                let out = unsafe { std::slice::from_raw_parts_mut(y.add(k * inner), width) };
                out.iter_mut().zip(sum.iter()).for_each(|(o, &s)| *o *= s);
            }
        }
    }
}

/// Where a normalization's scale and bias come from.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Affine {
    /// One per column of a row (LayerNorm: the normalized tail).
    PerColumn,
    /// One per channel, row `r` being channel `r % channels` (InstanceNorm: NC planes).
    PerRow { channels: usize },
}

/// `(x − mean) / √(var + ε) · scale + bias` over each contiguous row of `cols` values.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct NormStep {
    pub rows: usize,
    pub cols: usize,
    pub epsilon: f32,
    pub affine: Affine,
    pub scale: Vec<f32>,
    pub bias: Vec<f32>,
}

impl NormStep {
    /// LayerNormalization of `shape` over `axis..`: scale and bias (absent: 0) must broadcast
    /// to the normalized tail.
    pub(crate) fn layer(
        shape: &[usize],
        axis: i64,
        epsilon: f32,
        scale: &Tensor,
        bias: Option<&Tensor>,
    ) -> Option<NormStep> {
        let a = normalize_axis(axis, shape.len())?;
        let tail = &shape[a..];
        let cols: usize = tail.iter().product();
        let scale = broadcast(scale, tail)?;
        let bias = match bias {
            Some(b) => broadcast(b, tail)?,
            None => vec![0.0; cols],
        };
        let rows = shape[..a].iter().product();
        Some(NormStep { rows, cols, epsilon, affine: Affine::PerColumn, scale, bias })
    }

    /// InstanceNormalization of NC… `shape` with one scale and bias per channel.
    pub(crate) fn instance(shape: &[usize], epsilon: f32, scale: &Tensor, bias: &Tensor) -> Option<NormStep> {
        let channels = *shape.get(1)?;
        if shape.len() < 3 || scale.len() != channels || bias.len() != channels {
            return None;
        }
        let to_f32 = |t: &Tensor| t.to_f64_vec().into_iter().map(|v| v as f32).collect();
        Some(NormStep {
            rows: shape[0] * channels,
            cols: shape[2..].iter().product(),
            epsilon,
            affine: Affine::PerRow { channels },
            scale: to_f32(scale),
            bias: to_f32(bias),
        })
    }

    /// # Safety
    /// `x` and `y` hold `rows × cols` values and do not overlap.
    pub(crate) unsafe fn run(&self, workers: &Workers, x: Ptr, y: Ptr) {
        let cols = self.cols;
        if cols == 0 {
            return;
        }
        workers.for_each(self.rows, cols * 4, |r| {
            // SAFETY: row r is in bounds; each task writes its own row.
            let (src, dst) = unsafe {
                (
                    std::slice::from_raw_parts(x.add(r * cols), cols),
                    std::slice::from_raw_parts_mut(y.add(r * cols), cols),
                )
            };
            // Moments about the first element, so a large mean does not cancel the variance.
            let shift = src[0] as f64;
            let (mut s1, mut s2) = (0.0f64, 0.0f64);
            for &v in src {
                let d = v as f64 - shift;
                s1 += d;
                s2 += d * d;
            }
            let n = cols as f64;
            let mean = s1 / n;
            let var = (s2 / n - mean * mean).max(0.0);
            let inv = (1.0 / (var + self.epsilon as f64).sqrt()) as f32;
            let mean = (shift + mean) as f32;
            match self.affine {
                Affine::PerColumn => {
                    for (((o, &v), &s), &b) in dst.iter_mut().zip(src).zip(&self.scale).zip(&self.bias) {
                        *o = (v - mean) * inv * s + b;
                    }
                }
                Affine::PerRow { channels } => {
                    let (s, b) = (self.scale[r % channels] * inv, self.bias[r % channels]);
                    dst.iter_mut().zip(src).for_each(|(o, &v)| *o = (v - mean) * s + b);
                }
            }
        });
    }
}

/// A constant's values broadcast (numpy rules) to `shape`, as f32; `None` if it does not.
pub(crate) fn broadcast(t: &Tensor, shape: &[usize]) -> Option<Vec<f32>> {
    let strides = broadcast_strides(t.shape(), shape)?;
    let values = t.to_f64_vec();
    let total: usize = shape.iter().product();
    Some(
        (0..total)
            .map(|mut i| {
                let mut at = 0;
                for d in (0..shape.len()).rev() {
                    at += (i % shape[d]) as isize * strides[d];
                    i /= shape[d];
                }
                values[at as usize] as f32
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_views_any_axis_as_outer_n_inner() {
        let s = SoftmaxStep::new(&[2, 3, 4, 5], -2, false, false).unwrap();
        assert_eq!((s.outer, s.n, s.inner), (6, 4, 5));
        let s = SoftmaxStep::new(&[2, 3, 4, 5], 1, true, true).unwrap();
        assert_eq!((s.outer, s.n, s.inner), (2, 60, 1));
        assert!(SoftmaxStep::new(&[2, 3], 2, false, false).is_none());
    }

    #[test]
    fn broadcast_follows_numpy_rules() {
        let t = Tensor::from_vec(&[2, 1], vec![1.0f32, 2.0]).unwrap();
        assert_eq!(broadcast(&t, &[2, 3]).unwrap(), [1.0, 1.0, 1.0, 2.0, 2.0, 2.0]);
        assert_eq!(broadcast(&Tensor::scalar(3.0f32), &[2]).unwrap(), [3.0, 3.0]);
        assert!(broadcast(&t, &[3, 3]).is_none());
    }
}
