//! Normalizations: BatchNormalization (inference), InstanceNormalization, LayerNormalization, LRN,
//! and the Softmax family (Softmax, LogSoftmax, Hardmax; opset-13 axis or legacy 2-D semantics).
//! Statistics are computed in f64; BatchNorm applies per-channel f64 coefficients in the input's
//! compute type.

use super::kernel::{
    alloc, axis, bail, cast_to, finish, input, opt_input, show, slice_of, standard, with_float, KResult,
};
use kiln_ir::{DType, Element, Tensor};
use ndarray::IxDyn;

/// Per-channel parameters: each must hold exactly `c` values.
fn per_channel(ins: &[Option<Tensor>], i: usize, c: usize, what: &str) -> KResult<Vec<f64>> {
    let t = input(ins, i)?;
    if t.len() != c {
        bail!("{what} {} must have {c} elements (one per channel)", show(t.shape()));
    }
    Ok(t.to_f64_vec())
}

fn channels(x: &Tensor) -> KResult<(usize, usize, usize)> {
    let s = x.shape();
    if s.len() < 2 {
        bail!("input {} needs rank at least 2 ([N, C, ...])", show(s));
    }
    Ok((s[0], s[1], s[2..].iter().product()))
}

/// BatchNormalization in inference mode: `(x - mean) / sqrt(var + eps) * scale + bias`.
pub(crate) fn batch_norm(eps: f32, ins: &[Option<Tensor>]) -> KResult<Tensor> {
    let x = input(ins, 0)?;
    let (_, c, plane) = channels(x)?;
    let [scale, bias, mean, var] =
        [(1, "scale"), (2, "bias"), (3, "mean"), (4, "var")].map(|(i, w)| per_channel(ins, i, c, w));
    let (scale, bias, mean, var) = (scale?, bias?, mean?, var?);
    let a: Vec<f64> = (0..c).map(|i| scale[i] / (var[i] + eps as f64).sqrt()).collect();
    let b: Vec<f64> = (0..c).map(|i| bias[i] - mean[i] * a[i]).collect();
    let dtype = x.dtype();
    with_float!(dtype, T => {
        let xs = cast_to::<T>(x);
        let xs = standard(&xs);
        let (a, b): (Vec<T>, Vec<T>) = (a.iter().map(|&v| T::from_f64(v)).collect(), b.iter().map(|&v| T::from_f64(v)).collect());
        let mut out = slice_of(&xs).to_vec();
        if plane > 0 {
            for (i, chunk) in out.chunks_exact_mut(plane).enumerate() {
                let (ai, bi) = (a[i % c], b[i % c]);
                chunk.iter_mut().for_each(|v| *v = *v * ai + bi);
            }
        }
        Ok(finish(super::kernel::array(x.shape(), out), dtype))
    })
}

/// Mean and `1 / sqrt(var + eps)` of a group of values.
fn moments(v: &[f64], eps: f64) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    (mean, 1.0 / (var + eps).sqrt())
}

/// InstanceNormalization: each (n, c) plane normalized over its spatial extent.
pub(crate) fn instance_norm(eps: f32, ins: &[Option<Tensor>]) -> KResult<Tensor> {
    let x = input(ins, 0)?;
    let (_, c, plane) = channels(x)?;
    let (scale, bias) = (per_channel(ins, 1, c, "scale")?, per_channel(ins, 2, c, "bias")?);
    let mut data = x.to_f64_vec();
    if plane > 0 {
        for (i, chunk) in data.chunks_exact_mut(plane).enumerate() {
            let (mean, inv) = moments(chunk, eps as f64);
            chunk.iter_mut().for_each(|v| *v = (*v - mean) * inv * scale[i % c] + bias[i % c]);
        }
    }
    Ok(Tensor::from_vec(x.shape(), data)?.cast(x.dtype()))
}

/// LayerNormalization over axes `axis..rank`; scale and bias broadcast to that tail. With more
/// than one output, also the per-row mean and inverse standard deviation (f32, the default
/// `stash_type`), shaped like the input with the normalized dims set to 1.
pub(crate) fn layer_norm(ax: i64, eps: f32, ins: &[Option<Tensor>], num_outputs: usize) -> KResult<Vec<Tensor>> {
    let x = input(ins, 0)?;
    let shape = x.shape();
    let a = axis(ax, shape.len())?;
    let (head, tail) = shape.split_at(a);
    let (outer, inner): (usize, usize) = (head.iter().product(), tail.iter().product());
    let param = |i: usize| -> KResult<Option<Vec<f64>>> {
        let Some(t) = opt_input(ins, i) else { return Ok(None) };
        let Some(full) = cast_to::<f64>(t).broadcast(IxDyn(tail)).map(|v| v.iter().copied().collect()) else {
            bail!("parameter {} does not broadcast to the normalized shape {}", show(t.shape()), show(tail));
        };
        Ok(Some(full))
    };
    let scale = param(1)?.ok_or("scale is required")?;
    let bias = param(2)?.unwrap_or_else(|| vec![0.0; inner]);
    let mut data = x.to_f64_vec();
    let (mut means, mut inv_stds) = (Vec::with_capacity(outer), Vec::with_capacity(outer));
    for r in 0..outer {
        let row = &mut data[r * inner..][..inner];
        let (mean, inv) = moments(row, eps as f64);
        for (j, v) in row.iter_mut().enumerate() {
            *v = (*v - mean) * inv * scale[j] + bias[j];
        }
        means.push(mean);
        inv_stds.push(inv);
    }
    let mut outs = vec![Tensor::from_vec(shape, data)?.cast(x.dtype())];
    if num_outputs > 1 {
        let stat_shape: Vec<usize> = head.iter().copied().chain(tail.iter().map(|_| 1)).collect();
        outs.push(Tensor::from_vec(&stat_shape, means)?.cast(DType::F32));
        outs.push(Tensor::from_vec(&stat_shape, inv_stds)?.cast(DType::F32));
    }
    Ok(outs)
}

/// LRN across channels: `x / (bias + alpha / size * sum of x^2 over the channel window)^beta`,
/// the window spanning `floor((size-1)/2)` channels below and `ceil((size-1)/2)` above.
pub(crate) fn lrn(l: &kiln_ir::op::Lrn, x: &Tensor) -> KResult<Tensor> {
    let (n, c, plane) = channels(x)?;
    if l.size == 0 {
        bail!("LRN size must be positive");
    }
    let data = x.to_f64_vec();
    let (below, above) = ((l.size - 1) / 2, l.size / 2);
    let mut out = vec![0.0; data.len()];
    for b in 0..n {
        for ch in 0..c {
            let (lo, hi) = (ch.saturating_sub(below), (ch + above).min(c - 1));
            for p in 0..plane {
                let sq: f64 = (lo..=hi).map(|k| data[(b * c + k) * plane + p].powi(2)).sum();
                let at = (b * c + ch) * plane + p;
                out[at] = data[at] / (l.bias as f64 + l.alpha as f64 / l.size as f64 * sq).powf(l.beta as f64);
            }
        }
    }
    Ok(Tensor::from_vec(x.shape(), out)?.cast(x.dtype()))
}

/// Which member of the Softmax family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SoftmaxKind {
    Softmax,
    LogSoftmax,
    Hardmax,
}

/// Softmax family along `axis` (opset 13+), or with `legacy` semantics: the input is viewed as
/// 2-D `[prod(dims[..axis]), prod(dims[axis..])]` and each row is normalized.
pub(crate) fn softmax(kind: SoftmaxKind, ax: i64, legacy: bool, x: &Tensor) -> KResult<Tensor> {
    let shape = x.shape();
    let a = axis(ax, shape.len().max(1))?;
    let (len, post) = match legacy {
        true => (shape[a.min(shape.len())..].iter().product::<usize>(), 1),
        false => (shape.get(a).copied().unwrap_or(1), shape[(a + 1).min(shape.len())..].iter().product()),
    };
    let mut data = x.to_f64_vec();
    alloc(x.dtype(), shape)?;
    let group = len * post;
    if group > 0 {
        for block in data.chunks_exact_mut(group) {
            for j in 0..post {
                let idx = |i: usize| i * post + j;
                let max = (0..len).map(|i| block[idx(i)]).fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = (0..len).map(|i| (block[idx(i)] - max).exp()).sum();
                let first_max = (0..len).find(|&i| block[idx(i)] == max);
                for i in 0..len {
                    let v = &mut block[idx(i)];
                    *v = match kind {
                        SoftmaxKind::Softmax => (*v - max).exp() / sum,
                        SoftmaxKind::LogSoftmax => *v - max - sum.ln(),
                        SoftmaxKind::Hardmax => (first_max == Some(i)) as u8 as f64,
                    };
                }
            }
        }
    }
    Ok(Tensor::from_vec(shape, data)?.cast(x.dtype()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], v: Vec<f32>) -> Tensor {
        Tensor::from_vec(shape, v).unwrap()
    }

    #[test]
    fn batch_norm_by_hand() {
        // Channel 0: scale 2, bias 1, mean 1, var 3 (eps 1 -> std 2): y = (x - 1) + 1 = x.
        // Channel 1: scale 1, bias 0, mean 0, var 0 (eps 1 -> std 1): y = x.
        let x = t(&[1, 2, 2], vec![1., 5., -2., 3.]);
        let p = |a: f32, b: f32| Some(t(&[2], vec![a, b]));
        let y = batch_norm(1.0, &[Some(x), p(2., 1.), p(1., 0.), p(1., 0.), p(3., 0.)]).unwrap();
        assert_eq!(y.to_vec::<f32>(), vec![1., 5., -2., 3.]);
        let x = t(&[1, 1, 2], vec![0., 4.]);
        let one = |v: f32| Some(t(&[1], vec![v]));
        let y = batch_norm(0.0, &[Some(x), one(3.), one(1.), one(2.), one(4.)]).unwrap();
        assert_eq!(y.to_vec::<f32>(), vec![-2., 4.]);
    }

    #[test]
    fn layer_and_instance_norm_by_hand() {
        // Rows [1, 3] and [2, 6] both normalize to [-1, 1]; scale [2, 3], bias [0, 1] -> [-2, 4].
        let x = t(&[2, 2], vec![1., 3., 2., 6.]);
        let ins = [Some(x.clone()), Some(t(&[2], vec![2., 3.])), Some(t(&[2], vec![0., 1.]))];
        let y = layer_norm(-1, 0.0, &ins, 3).unwrap();
        assert_eq!(y[0].to_vec::<f32>(), vec![-2., 4., -2., 4.]);
        // Means 2 and 4, standard deviations 1 and 2.
        assert_eq!((y[1].shape(), y[1].to_vec::<f32>()), (&[2, 1][..], vec![2., 4.]));
        assert_eq!(y[2].to_vec::<f32>(), vec![1., 0.5]);
        let y =
            instance_norm(0.0, &[Some(t(&[1, 1, 2], vec![1., 3.])), Some(t(&[1], vec![2.])), Some(t(&[1], vec![1.]))])
                .unwrap();
        assert_eq!(y.to_vec::<f32>(), vec![-1., 3.]);
    }

    #[test]
    fn lrn_by_hand() {
        // size 2: window is {c, c+1}; alpha 2 / size 2 = 1, bias 1, beta 1 -> x / (1 + sum sq).
        let l = kiln_ir::op::Lrn { size: 2, alpha: 2.0, beta: 1.0, bias: 1.0 };
        let y = lrn(&l, &t(&[1, 2, 1], vec![1., 2.])).unwrap();
        assert_eq!(y.to_vec::<f32>(), vec![1. / 6., 2. / 5.]);
    }

    #[test]
    fn softmax_rows_and_legacy_semantics() {
        let x = t(&[2, 2, 2], vec![0., 1., 2., 3., 1., 1., 1., 1.]);
        let new = softmax(SoftmaxKind::Softmax, 1, false, &x).unwrap().to_vec::<f32>();
        // Along axis 1: pairs (0,2), (1,3) -> each 1/(1+e^2), e^2/(1+e^2).
        let lo = 1.0 / (1.0 + 2f32.exp());
        assert!((new[0] - lo).abs() < 1e-7 && (new[2] - (1.0 - lo)).abs() < 1e-7);
        assert_eq!(&new[4..], &[0.5; 4]);
        let legacy = softmax(SoftmaxKind::Softmax, 1, true, &x).unwrap().to_vec::<f32>();
        // Legacy: rows of 4 — [0,1,2,3] normalized together.
        let z: f32 = (0..4).map(|i| (i as f32).exp()).sum();
        for (i, v) in legacy[..4].iter().enumerate() {
            assert!((v - (i as f32).exp() / z).abs() < 1e-7);
        }
        assert!((legacy[..4].iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(&legacy[4..], &[0.25; 4]);
        let hard = softmax(SoftmaxKind::Hardmax, -1, false, &x).unwrap().to_vec::<f32>();
        assert_eq!(hard, vec![0., 1., 0., 1., 1., 0., 1., 0.]);
        let log = softmax(SoftmaxKind::LogSoftmax, 0, false, &t(&[2], vec![0., 0.])).unwrap();
        assert!((log.to_vec::<f32>()[0] - 0.5f32.ln()).abs() < 1e-7);
    }
}
