//! Pooling: MaxPool (with optional argmax indices), AveragePool (count_include_pad) and LpPool over
//! windows resolved by the IR's `Window::resolve` (ceil_mode included), and the global pools.
//! Values are pooled in f64 and cast back to the input dtype.

use super::kernel::{alloc, bail, indices, show, strides, KResult};
use kiln_ir::op::{Pool, PoolKind};
use kiln_ir::{DType, Tensor};

/// MaxPool / AveragePool / LpPool; MaxPool's optional second output holds flat argmax indices.
pub(crate) fn pool(p: &Pool, x: &Tensor, num_outputs: usize) -> KResult<Vec<Tensor>> {
    let shape = x.shape();
    let kernel = p.kernel();
    if shape.len() != kernel.len() + 2 || kernel.is_empty() || kernel.contains(&0) || shape[2..].contains(&0) {
        bail!("input {} does not match kernel_shape {kernel:?} (or has an empty spatial dim)", show(shape));
    }
    let dims = &shape[2..];
    let geo = p.window.resolve(dims, kernel, p.ceil_mode)?;
    let mut out_shape = shape[..2].to_vec();
    out_shape.extend(&geo.output);
    alloc(DType::F64, &out_shape)?;
    let planes = shape[0] * shape[1];
    let plane: usize = dims.iter().product();
    let data = x.to_f64_vec();
    let taps: Vec<Vec<usize>> = indices(&geo.kernel).collect();
    let (in_strides, index_strides) = (strides(dims), index_strides(dims, p.storage_order));
    let mut values = Vec::with_capacity(out_shape.iter().product());
    let mut argmax = Vec::new();
    for pl in 0..planes {
        let xs = &data[pl * plane..][..plane];
        for opos in indices(&geo.output) {
            let mut acc = Acc::default();
            for k in &taps {
                let (mut flat, mut index, mut inside, mut in_padded) = (0, 0, true, true);
                for d in 0..dims.len() {
                    // Position in padded coordinates, then in input coordinates.
                    let i = opos[d] * geo.strides[d] + k[d] * geo.dilations[d];
                    in_padded &= i < dims[d] + geo.pads_begin[d] + geo.pads_end[d];
                    let at = i.wrapping_sub(geo.pads_begin[d]);
                    inside &= at < dims[d];
                    flat = at.wrapping_mul(in_strides[d]).wrapping_add(flat);
                    index = at.wrapping_mul(index_strides[d]).wrapping_add(index);
                }
                acc.padded += in_padded as usize;
                if inside {
                    acc.add(p.kind, xs[flat], index);
                }
            }
            argmax.push(acc.best.map_or(0, |(_, index)| (pl * plane + index) as i64));
            values.push(acc.finish(p.kind));
        }
    }
    let mut outs = vec![Tensor::from_vec(&out_shape, values)?.cast(x.dtype())];
    if num_outputs > 1 {
        outs.push(Tensor::from_vec(&out_shape, argmax)?);
    }
    Ok(outs)
}

/// Strides that turn a spatial position into MaxPool's index: row-major, or column-major when
/// `storage_order` is 1.
fn index_strides(dims: &[usize], storage_order: i64) -> Vec<usize> {
    if storage_order == 1 {
        let rev: Vec<usize> = dims.iter().rev().copied().collect();
        strides(&rev).into_iter().rev().collect()
    } else {
        strides(dims)
    }
}

/// What one window has seen: the running sum (average, Lp), the largest tap with its index
/// (max), how many taps fell inside the input, and how many inside the explicitly padded input
/// (AveragePool's count_include_pad divisor; taps added only by ceil_mode do not count).
#[derive(Default)]
struct Acc {
    sum: f64,
    best: Option<(f64, usize)>,
    inside: usize,
    padded: usize,
}

impl Acc {
    fn add(&mut self, kind: PoolKind, v: f64, index: usize) {
        self.inside += 1;
        match kind {
            // The first largest tap wins; NaN taps are skipped (as ONNX Runtime does).
            PoolKind::Max => {
                if !v.is_nan() && self.best.is_none_or(|(b, _)| v > b) {
                    self.best = Some((v, index));
                }
            }
            PoolKind::Average { .. } => self.sum += v,
            PoolKind::Lp { p } => self.sum += v.abs().powf(p as f64),
        }
    }

    fn finish(&self, kind: PoolKind) -> f64 {
        match kind {
            PoolKind::Max => self.best.map_or(f64::NEG_INFINITY, |(v, _)| v),
            PoolKind::Average { count_include_pad } => {
                let n = if count_include_pad { self.padded } else { self.inside };
                self.sum / n.max(1) as f64
            }
            PoolKind::Lp { p } => self.sum.powf(1.0 / p as f64),
        }
    }
}

/// GlobalAveragePool / GlobalMaxPool / GlobalLpPool: every spatial dim reduced to 1.
pub(crate) fn global_pool(kind: PoolKind, x: &Tensor) -> KResult<Tensor> {
    let shape = x.shape();
    if shape.len() < 3 {
        bail!("input {} needs rank at least 3", show(shape));
    }
    let plane: usize = shape[2..].iter().product();
    let data = x.to_f64_vec();
    let values: Vec<f64> = if plane == 0 {
        vec![f64::NAN; shape[0] * shape[1]]
    } else {
        data.chunks_exact(plane)
            .map(|c| match kind {
                PoolKind::Max => c.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                PoolKind::Average { .. } => c.iter().sum::<f64>() / plane as f64,
                PoolKind::Lp { p } => c.iter().map(|v| v.abs().powf(p as f64)).sum::<f64>().powf(1.0 / p as f64),
            })
            .collect()
    };
    let mut out_shape = shape[..2].to_vec();
    out_shape.extend(std::iter::repeat_n(1, shape.len() - 2));
    Ok(Tensor::from_vec(&out_shape, values)?.cast(x.dtype()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_ir::op::Window;

    fn grid(shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        Tensor::from_vec(shape, (1..=n).map(|v| v as f32).collect()).unwrap()
    }

    fn pool_of(kind: PoolKind, k: &[usize], strides: Vec<usize>, pads: Vec<usize>, ceil_mode: bool) -> Pool {
        Pool {
            kind,
            window: Window { kernel_shape: Some(k.to_vec()), strides, pads, ..Default::default() },
            ceil_mode,
            storage_order: 0,
        }
    }

    #[test]
    fn maxpool_ceil_mode_and_indices() {
        // 4x4 grid 1..16, 3x3 windows, stride 2: floor mode keeps one window, ceil mode four
        // (the extra ones clipped at the edge).
        let x = grid(&[1, 1, 4, 4]);
        let floor = pool(&pool_of(PoolKind::Max, &[3, 3], vec![2, 2], vec![], false), &x, 1).unwrap();
        assert_eq!(floor[0].to_vec::<f32>(), vec![11.0]);
        let ceil = pool(&pool_of(PoolKind::Max, &[3, 3], vec![2, 2], vec![], true), &x, 2).unwrap();
        assert_eq!(ceil[0].shape(), &[1, 1, 2, 2]);
        assert_eq!(ceil[0].to_vec::<f32>(), vec![11.0, 12.0, 15.0, 16.0]);
        assert_eq!(ceil[1].to_i64_vec(), vec![10, 11, 14, 15]);
        let mut col_major = pool_of(PoolKind::Max, &[3, 3], vec![2, 2], vec![], true);
        col_major.storage_order = 1;
        // Position (row 2, col 3) is 3 * 4 + 2 = 14 column-major.
        assert_eq!(pool(&col_major, &x, 2).unwrap()[1].to_i64_vec(), vec![10, 14, 11, 15]);
    }

    #[test]
    fn avgpool_count_include_pad() {
        // 3x3 grid 1..9 padded by 1, 3x3 windows, stride 2: window sums 12, 16, 24, 28 over 4 real taps.
        let x = grid(&[1, 1, 3, 3]);
        let inc = pool_of(PoolKind::Average { count_include_pad: true }, &[3, 3], vec![2, 2], vec![1; 4], false);
        let exc = pool_of(PoolKind::Average { count_include_pad: false }, &[3, 3], vec![2, 2], vec![1; 4], false);
        assert_eq!(pool(&inc, &x, 1).unwrap()[0].to_vec::<f32>(), vec![12. / 9., 16. / 9., 24. / 9., 28. / 9.]);
        assert_eq!(pool(&exc, &x, 1).unwrap()[0].to_vec::<f32>(), vec![3., 4., 6., 7.]);
        // Taps that only ceil_mode adds are not counted even with count_include_pad.
        let x = grid(&[1, 1, 4]);
        let ceil = pool_of(PoolKind::Average { count_include_pad: true }, &[3], vec![2], vec![], true);
        assert_eq!(pool(&ceil, &x, 1).unwrap()[0].to_vec::<f32>(), vec![2.0, 3.5]);
    }

    #[test]
    fn lp_and_global_pools() {
        let x = Tensor::from_vec(&[1, 1, 2], vec![3.0f32, -4.0]).unwrap();
        let lp = pool_of(PoolKind::Lp { p: 2.0 }, &[2], vec![], vec![], false);
        assert_eq!(pool(&lp, &x, 1).unwrap()[0].to_vec::<f32>(), vec![5.0]);
        let x = grid(&[1, 2, 2, 2]);
        let avg = global_pool(PoolKind::Average { count_include_pad: false }, &x).unwrap();
        assert_eq!((avg.shape(), avg.to_vec::<f32>()), (&[1, 2, 1, 1][..], vec![2.5, 6.5]));
        assert_eq!(global_pool(PoolKind::Max, &x).unwrap().to_vec::<f32>(), vec![4.0, 8.0]);
    }
}
