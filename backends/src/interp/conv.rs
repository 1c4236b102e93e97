//! Convolutions: Conv by im2col + GEMM (ndarray's `dot` machinery, i.e. matrixmultiply) per batch
//! item and group, and ConvTranspose by GEMM + col2im. Any number of spatial dims; geometry comes
//! from the IR's `Window::resolve` / `ConvTranspose::resolve`.

use super::kernel::{
    alloc, bail, cast_to, finish, indices, input, opt_input, show, slice_of, standard, strides, with_float, KResult,
    Real,
};
use kiln_ir::op::{Conv, ConvTranspose, Geometry};
use kiln_ir::{ArcArrayD, Tensor};
use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayD, ArrayView2, ArrayViewMut2};

/// Shapes of a (transposed) convolution's operands, validated.
struct Operands<'a> {
    batch: usize,
    channels: usize,
    spatial: &'a [usize],
    kernel: &'a [usize],
    group: usize,
}

fn operands<'a>(x: &'a [usize], w: &'a [usize], group: usize) -> KResult<Operands<'a>> {
    if x.len() < 3 || w.len() != x.len() {
        bail!("input {} and weight {} must have equal rank of at least 3", show(x), show(w));
    }
    if w[2..].contains(&0) || x[2..].contains(&0) {
        bail!("input {} and weight {} must have non-empty spatial dims", show(x), show(w));
    }
    let group = group.max(1);
    Ok(Operands { batch: x[0], channels: x[1], spatial: &x[2..], kernel: &w[2..], group })
}

/// Conv(x, w, b?).
pub(crate) fn conv(c: &Conv, ins: &[Option<Tensor>]) -> KResult<Tensor> {
    let (x, w, b) = (input(ins, 0)?, input(ins, 1)?, opt_input(ins, 2));
    let dtype = x.dtype();
    with_float!(dtype, T => {
        let out = conv_typed::<T>(c, &cast_to(x), &cast_to(w), b.map(cast_to::<T>).as_ref())?;
        Ok(finish(out, dtype))
    })
}

fn conv_typed<T: Real>(c: &Conv, x: &ArcArrayD<T>, w: &ArcArrayD<T>, b: Option<&ArcArrayD<T>>) -> KResult<ArrayD<T>> {
    let o = operands(x.shape(), w.shape(), c.group)?;
    let (m, cg) = (w.shape()[0], w.shape()[1]);
    if o.channels != cg * o.group || m % o.group != 0 {
        bail!("input {} and weight {} do not fit group {}", show(x.shape()), show(w.shape()), o.group);
    }
    if let Some(ks) = c.window.kernel_shape.as_ref().filter(|ks| ks.as_slice() != o.kernel) {
        bail!("kernel_shape {ks:?} disagrees with weight {}", show(w.shape()));
    }
    let geo = c.window.resolve(o.spatial, o.kernel, false)?;
    let mg = m / o.group;
    let k: usize = o.kernel.iter().product();
    let p: usize = geo.output.iter().product();
    let sp_in: usize = o.spatial.iter().product();
    let mut out_shape = vec![o.batch, m];
    out_shape.extend(&geo.output);
    alloc(T::DTYPE, &out_shape)?;
    alloc(T::DTYPE, &[cg * k, p])?;
    let bias = bias_vec(b, m)?;

    let (xs, ws) = (standard(x), standard(w));
    let (xs, ws) = (slice_of(&xs), slice_of(&ws));
    let mut out = vec![T::zero(); out_shape.iter().product()];
    let mut col = vec![T::zero(); cg * k * p];
    for n in 0..o.batch {
        for g in 0..o.group {
            let xg = &xs[(n * o.channels + g * cg) * sp_in..][..cg * sp_in];
            im2col(xg, o.spatial, &geo, cg, &mut col);
            let wv = ArrayView2::from_shape((mg, cg * k), &ws[g * mg * cg * k..][..mg * cg * k]).expect("weight block");
            let cv = ArrayView2::from_shape((cg * k, p), &col[..]).expect("column block");
            let ob = &mut out[(n * m + g * mg) * p..][..mg * p];
            let mut ov = ArrayViewMut2::from_shape((mg, p), ob).expect("output block");
            general_mat_mul(T::one(), &wv, &cv, T::zero(), &mut ov);
        }
    }
    add_bias(&mut out, bias.as_deref(), p);
    Ok(super::kernel::array(&out_shape, out))
}

/// The bias as a vector of `m` values, if present.
fn bias_vec<T: Real>(b: Option<&ArcArrayD<T>>, m: usize) -> KResult<Option<Vec<T>>> {
    match b {
        Some(b) if b.len() != m => bail!("bias {} must have {m} elements", show(b.shape())),
        Some(b) => Ok(Some(b.iter().copied().collect())),
        None => Ok(None),
    }
}

/// Adds `bias[c]` to every run of `plane` elements of channel `c` (channels cycle per batch item).
fn add_bias<T: Real>(out: &mut [T], bias: Option<&[T]>, plane: usize) {
    let Some(bias) = bias else { return };
    if plane == 0 {
        return;
    }
    for (i, chunk) in out.chunks_exact_mut(plane).enumerate() {
        let v = bias[i % bias.len()];
        chunk.iter_mut().for_each(|y| *y += v);
    }
}

/// Unfolds `channels` planes of extents `dims` into rows `(channel, kernel offset)` by columns
/// `output position`; taps landing in padding read zero. The innermost spatial dim is a tight loop.
fn im2col<T: Real>(x: &[T], dims: &[usize], geo: &Geometry, channels: usize, col: &mut [T]) {
    let last = dims.len() - 1;
    let p: usize = geo.output.iter().product();
    let (out_last, in_last) = (geo.output[last], dims[last]);
    let (s_last, d_last, pb_last) = (geo.strides[last], geo.dilations[last], geo.pads_begin[last]);
    let in_strides = strides(dims);
    let plane: usize = dims.iter().product();
    let mut rows = col.chunks_exact_mut(p.max(1));
    for c in 0..channels {
        let xc = &x[c * plane..][..plane];
        for koff in indices(&geo.kernel) {
            let row = rows.next().expect("col has channels * kernel rows");
            if p == 0 {
                continue;
            }
            for (run, opos) in row.chunks_exact_mut(out_last.max(1)).zip(indices(&geo.output[..last])) {
                let mut base = 0;
                let mut inside = true;
                for d in 0..last {
                    let i = opos[d] * geo.strides[d] + koff[d] * geo.dilations[d];
                    if i < geo.pads_begin[d] || i - geo.pads_begin[d] >= dims[d] {
                        inside = false;
                        break;
                    }
                    base += (i - geo.pads_begin[d]) * in_strides[d];
                }
                if !inside {
                    run.fill(T::zero());
                    continue;
                }
                let off = koff[last] * d_last;
                for (o, y) in run.iter_mut().enumerate() {
                    let i = o * s_last + off;
                    *y = if i >= pb_last && i - pb_last < in_last { xc[base + i - pb_last] } else { T::zero() };
                }
            }
        }
    }
}

/// ConvTranspose(x, w, b?); weights are `[C, M/group, k...]`.
pub(crate) fn conv_transpose(c: &ConvTranspose, ins: &[Option<Tensor>]) -> KResult<Tensor> {
    let (x, w, b) = (input(ins, 0)?, input(ins, 1)?, opt_input(ins, 2));
    let dtype = x.dtype();
    with_float!(dtype, T => {
        let out = conv_transpose_typed::<T>(c, &cast_to(x), &cast_to(w), b.map(cast_to::<T>).as_ref())?;
        Ok(finish(out, dtype))
    })
}

fn conv_transpose_typed<T: Real>(
    c: &ConvTranspose,
    x: &ArcArrayD<T>,
    w: &ArcArrayD<T>,
    b: Option<&ArcArrayD<T>>,
) -> KResult<ArrayD<T>> {
    let o = operands(x.shape(), w.shape(), c.group)?;
    let (wc, mg) = (w.shape()[0], w.shape()[1]);
    if o.channels != wc || wc % o.group != 0 {
        bail!("input {} and weight {} do not fit group {}", show(x.shape()), show(w.shape()), o.group);
    }
    let geo = c.resolve(o.spatial, o.kernel)?;
    let (cg, m) = (wc / o.group, mg * o.group);
    let k: usize = o.kernel.iter().product();
    let p_in: usize = o.spatial.iter().product();
    let p_out: usize = geo.output.iter().product();
    let mut out_shape = vec![o.batch, m];
    out_shape.extend(&geo.output);
    alloc(T::DTYPE, &out_shape)?;
    alloc(T::DTYPE, &[mg * k, p_in])?;
    let bias = bias_vec(b, m)?;

    let (xs, ws) = (standard(x), standard(w));
    let (xs, ws) = (slice_of(&xs), slice_of(&ws));
    let out_strides = strides(&geo.output);
    let mut out = vec![T::zero(); out_shape.iter().product()];
    let mut col = vec![T::zero(); mg * k * p_in];
    for n in 0..o.batch {
        for g in 0..o.group {
            let xv = ArrayView2::from_shape((cg, p_in), &xs[(n * o.channels + g * cg) * p_in..][..cg * p_in])
                .expect("input block");
            let wv = ArrayView2::from_shape((cg, mg * k), &ws[g * cg * mg * k..][..cg * mg * k]).expect("weight block");
            let mut cv = ArrayViewMut2::from_shape((mg * k, p_in), &mut col[..]).expect("column block");
            general_mat_mul(T::one(), &wv.t(), &xv, T::zero(), &mut cv);
            let ob = &mut out[(n * m + g * mg) * p_out..][..mg * p_out];
            col2im(&col, o.spatial, &geo, &out_strides, mg, ob);
        }
    }
    add_bias(&mut out, bias.as_deref(), p_out);
    Ok(super::kernel::array(&out_shape, out))
}

/// Scatters rows `(channel, kernel offset)` by columns `input position` into the output planes:
/// input position `i` with tap `k` lands at `i * stride + k * dilation - pad_begin`.
fn col2im<T: Real>(col: &[T], dims: &[usize], geo: &Geometry, out_strides: &[usize], channels: usize, out: &mut [T]) {
    let p_in: usize = dims.iter().product();
    let p_out: usize = geo.output.iter().product();
    let mut rows = col.chunks_exact(p_in);
    for c in 0..channels {
        let plane = &mut out[c * p_out..][..p_out];
        for koff in indices(&geo.kernel) {
            let row = rows.next().expect("col has channels * kernel rows");
            'pos: for (ipos, &v) in indices(dims).zip(row) {
                let mut at = 0;
                for d in 0..dims.len() {
                    let o = ipos[d] * geo.strides[d] + koff[d] * geo.dilations[d];
                    if o < geo.pads_begin[d] || o - geo.pads_begin[d] >= geo.output[d] {
                        continue 'pos;
                    }
                    at += (o - geo.pads_begin[d]) * out_strides[d];
                }
                plane[at] += v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_ir::op::{AutoPad, Window};

    fn t(shape: &[usize], v: Vec<f32>) -> Option<Tensor> {
        Some(Tensor::from_vec(shape, v).unwrap())
    }

    fn conv2d(window: Window, group: usize, ins: &[Option<Tensor>]) -> Tensor {
        conv(&Conv { window, group }, ins).unwrap()
    }

    #[test]
    fn one_channel_3x3_with_pads_and_stride_by_hand() {
        // x = 1..=9 in a 3x3 grid, w = all ones 2x2, pads 1, stride 2 -> 2x2 output whose windows
        // are the four corners: {1}, {2,3}, {4,7}, {5,6,8,9}.
        let x = t(&[1, 1, 3, 3], (1..=9).map(|v| v as f32).collect());
        let w = t(&[1, 1, 2, 2], vec![1.0; 4]);
        let win = Window { strides: vec![2, 2], pads: vec![1, 1, 1, 1], ..Default::default() };
        let y = conv2d(win, 1, &[x, w, t(&[1], vec![0.5])]);
        assert_eq!(y.shape(), &[1, 1, 2, 2]);
        assert_eq!(y.to_vec::<f32>(), vec![1.5, 5.5, 11.5, 28.5]);
    }

    #[test]
    fn dilation_and_same_padding_by_hand() {
        // 1-D: x = [1,2,3,4,5], w = [1,0,-1] dilated by 2 -> taps x[i-2] - x[i+2] with SAME_UPPER pads 2.
        let x = t(&[1, 1, 5], vec![1., 2., 3., 4., 5.]);
        let w = t(&[1, 1, 3], vec![1., 0., -1.]);
        let win = Window { dilations: vec![2], auto_pad: AutoPad::SameUpper, ..Default::default() };
        let y = conv2d(win, 1, &[x, w, None]);
        assert_eq!(y.to_vec::<f32>(), vec![-3., -4., -4., 2., 3.]);
    }

    #[test]
    fn grouped_conv_equals_per_group_convs() {
        let xs: Vec<f32> = (0..2 * 4 * 5 * 5).map(|i| ((i * 7) % 11) as f32 - 5.0).collect();
        let ws: Vec<f32> = (0..6 * 2 * 3 * 3).map(|i| ((i * 5) % 7) as f32 * 0.25 - 0.5).collect();
        let win = Window { pads: vec![1, 0, 1, 2], strides: vec![1, 2], ..Default::default() };
        let y = conv2d(win.clone(), 2, &[t(&[2, 4, 5, 5], xs.clone()), t(&[6, 2, 3, 3], ws.clone()), None]);
        let x = Tensor::from_vec(&[2, 4, 5, 5], xs).unwrap();
        let w = Tensor::from_vec(&[6, 2, 3, 3], ws).unwrap();
        let take = |t: &Tensor, axis: usize, lo: usize, hi: usize| {
            let a = t.array::<f32>().unwrap();
            Tensor::from_array(a.slice_axis(ndarray::Axis(axis), (lo..hi).into()).to_owned())
        };
        for g in 0..2 {
            let part = conv2d(
                win.clone(),
                1,
                &[Some(take(&x, 1, 2 * g, 2 * g + 2)), Some(take(&w, 0, 3 * g, 3 * g + 3)), None],
            );
            assert_eq!(take(&y, 1, 3 * g, 3 * g + 3), part);
        }
        // Depthwise: each channel convolved with its own 1x1 weight is a per-channel scale.
        let dw = conv2d(Window::default(), 4, &[Some(x.clone()), t(&[4, 1, 1, 1], vec![1., 2., 3., 4.]), None]);
        let xa = x.array::<f32>().unwrap();
        for (idx, &v) in dw.array::<f32>().unwrap().indexed_iter() {
            assert_eq!(v, xa[&idx] * (idx[1] + 1) as f32);
        }
    }

    #[test]
    fn conv_transpose_by_hand() {
        // 1-D, stride 2: y[2i + k] += x[i] * w[k] -> x = [1, 2], w = [1, 1, 1] gives [1,1,3,2,2].
        let ct =
            ConvTranspose { window: Window { strides: vec![2], ..Default::default() }, group: 1, ..Default::default() };
        let y = conv_transpose(&ct, &[t(&[1, 1, 2], vec![1., 2.]), t(&[1, 1, 3], vec![1., 1., 1.]), None]).unwrap();
        assert_eq!(y.to_vec::<f32>(), vec![1., 1., 3., 2., 2.]);
        // Two output channels, pads crop one element at each end, bias added.
        let ct = ConvTranspose {
            window: Window { strides: vec![2], pads: vec![1, 1], ..Default::default() },
            group: 1,
            ..Default::default()
        };
        let ins = [t(&[1, 1, 2], vec![1., 2.]), t(&[1, 2, 3], vec![1., 1., 1., 1., 2., 3.]), t(&[2], vec![0., 10.])];
        let y = conv_transpose(&ct, &ins).unwrap();
        assert_eq!(y.shape(), &[1, 2, 3]);
        // channel 1 full: [1, 2, 3+2, 4, 6] -> cropped [2, 5, 4] + 10
        assert_eq!(y.to_vec::<f32>(), vec![1., 3., 2., 12., 15., 14.]);
    }
}
