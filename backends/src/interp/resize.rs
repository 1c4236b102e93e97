//! Resize (nearest, linear, cubic; every coordinate transformation mode) applied one axis at a
//! time: each output index along an axis reads a few weighted input taps, or the extrapolation
//! value (`tf_crop_and_resize` outside the input). Separable modes make this exact for N-d.

use super::kernel::{alloc, bail, input, opt_i64s, opt_input, KResult};
use kiln_ir::op::{Resize, ResizeCoord, ResizeMode, ResizeNearest};
use kiln_ir::{DType, Tensor};
use ndarray::{ArrayD, Axis, IxDyn, Zip};

/// The input taps (index, weight) one output element reads; `None` means the extrapolation value.
pub(crate) type Taps = Option<Vec<(usize, f64)>>;

/// Resize(x, roi?, scales?, sizes?).
pub(crate) fn resize(r: &Resize, ins: &[Option<Tensor>]) -> KResult<Tensor> {
    let x = input(ins, 0)?;
    let rank = x.rank();
    let scales: Option<Vec<f32>> = opt_input(ins, 2).map(|t| t.to_f64_vec().into_iter().map(|v| v as f32).collect());
    let (out_shape, sc) = r.output_shape(x.shape(), scales.as_deref(), opt_i64s(ins, 3).as_deref())?;
    alloc(x.dtype(), &out_shape)?;
    let roi = roi_per_axis(r, rank, opt_input(ins, 1))?;
    let mut a = ArrayD::from_shape_vec(IxDyn(x.shape()), x.to_f64_vec()).expect("shape matches data");
    for d in 0..rank {
        let (n_in, n_out) = (x.shape()[d], out_shape[d]);
        if n_in == n_out && sc[d] == 1.0 && r.coord != ResizeCoord::TfCropAndResize {
            continue;
        }
        if n_in == 0 && n_out > 0 {
            bail!("cannot resize an empty axis {d} to {n_out}");
        }
        let taps: Vec<Taps> = (0..n_out)
            .map(|o| taps(r, source_coord(r.coord, o, sc[d] as f64, n_in, n_out, roi[d]), n_in, sc[d] as f64))
            .collect();
        let mut shape = a.shape().to_vec();
        shape[d] = n_out;
        alloc(DType::F64, &shape)?;
        a = resample_axis(&a, d, &shape, &taps, r.extrapolation_value as f64);
    }
    Ok(Tensor::from_array(a).cast(x.dtype()))
}

/// Per-axis `(start, end)` of the region of interest (only `tf_crop_and_resize` reads it).
pub(crate) fn roi_per_axis(r: &Resize, rank: usize, roi: Option<&Tensor>) -> KResult<Vec<(f64, f64)>> {
    let mut out = vec![(0.0, 1.0); rank];
    let Some(roi) = roi.filter(|t| !t.is_empty() && r.coord == ResizeCoord::TfCropAndResize) else {
        return Ok(out);
    };
    let default: Vec<i64> = (0..rank as i64).collect();
    let axes = r.axes.as_deref().unwrap_or(&default);
    let v = roi.to_f64_vec();
    if v.len() != 2 * axes.len() {
        bail!("roi has {} entries, expected {}", v.len(), 2 * axes.len());
    }
    for (i, &a) in axes.iter().enumerate() {
        let d = super::kernel::axis(a, rank)?;
        out[d] = (v[i], v[i + axes.len()]);
    }
    Ok(out)
}

/// The input coordinate output index `o` maps to. As in the ONNX reference, the resized length
/// in these formulas is the unrounded `scale * n_in`.
pub(crate) fn source_coord(
    coord: ResizeCoord,
    o: usize,
    scale: f64,
    n_in: usize,
    n_out: usize,
    roi: (f64, f64),
) -> f64 {
    let (x, n_in_f) = (o as f64, n_in as f64);
    let resized = scale * n_in_f;
    match coord {
        ResizeCoord::HalfPixel => (x + 0.5) / scale - 0.5,
        ResizeCoord::HalfPixelSymmetric => {
            let adjustment = n_out as f64 / resized;
            let center = n_in_f / 2.0;
            center * (1.0 - adjustment) + (x + 0.5) / scale - 0.5
        }
        ResizeCoord::PytorchHalfPixel if resized > 1.0 => (x + 0.5) / scale - 0.5,
        ResizeCoord::PytorchHalfPixel => 0.0,
        ResizeCoord::AlignCorners if resized > 1.0 => x * (n_in_f - 1.0) / (resized - 1.0),
        ResizeCoord::AlignCorners => 0.0,
        ResizeCoord::Asymmetric => x / scale,
        ResizeCoord::TfCropAndResize if resized > 1.0 => {
            roi.0 * (n_in_f - 1.0) + x * (roi.1 - roi.0) * (n_in_f - 1.0) / (resized - 1.0)
        }
        ResizeCoord::TfCropAndResize => 0.5 * (roi.0 + roi.1) * (n_in_f - 1.0),
    }
}

/// The taps for source coordinate `c` on an axis of `n` inputs resized by `scale`.
pub(crate) fn taps(r: &Resize, c: f64, n: usize, scale: f64) -> Taps {
    let last = n as f64 - 1.0;
    if r.coord == ResizeCoord::TfCropAndResize && (c < 0.0 || c > last) {
        return None;
    }
    let clamp = |i: f64| i.clamp(0.0, last) as usize;
    if r.antialias && scale < 1.0 && r.mode != ResizeMode::Nearest {
        return Some(antialias_taps(r, c, last, scale).into_iter().map(|(i, w)| (clamp(i), w)).collect());
    }
    Some(match r.mode {
        ResizeMode::Nearest => {
            let frac = c - c.floor();
            let i = match r.nearest {
                ResizeNearest::RoundPreferFloor if frac == 0.5 => c.floor(),
                ResizeNearest::RoundPreferCeil if frac == 0.5 => c.ceil(),
                ResizeNearest::RoundPreferFloor | ResizeNearest::RoundPreferCeil => c.round(),
                ResizeNearest::Floor => c.floor(),
                ResizeNearest::Ceil => c.ceil(),
            };
            vec![(clamp(i), 1.0)]
        }
        ResizeMode::Linear => {
            let c = c.clamp(0.0, last);
            let lo = c.floor();
            let t = c - lo;
            vec![(clamp(lo), 1.0 - t), (clamp(lo + 1.0), t)]
        }
        ResizeMode::Cubic => {
            let lo = c.floor();
            let w = cubic_weights(r.cubic_coeff_a as f64, c - lo);
            let taps = (0..4).map(|k| (lo - 1.0 + k as f64, w[k])).collect();
            exclude_outside(r, taps, last).into_iter().map(|(i, w)| (clamp(i), w)).collect()
        }
    })
}

/// With `exclude_outside`, taps outside the input get weight 0 and the rest are renormalized.
fn exclude_outside(r: &Resize, mut taps: Vec<(f64, f64)>, last: f64) -> Vec<(f64, f64)> {
    if r.exclude_outside {
        taps.retain(|&(i, _)| (0.0..=last).contains(&i));
        let total: f64 = taps.iter().map(|t| t.1).sum();
        taps.iter_mut().for_each(|t| t.1 /= total);
    }
    taps
}

/// Antialiased linear/cubic downsampling (the ONNX reference's `*_coeffs_antialias`): the kernel
/// is stretched by `1 / scale`, evaluated at tap offsets from `ceil(c) - 1` with the fraction taken
/// in `(0, 1]`, and normalized to sum 1. Positions are unclamped (edge-padded by the caller).
fn antialias_taps(r: &Resize, c: f64, last: f64, scale: f64) -> Vec<(f64, f64)> {
    let base = c.ceil() - 1.0;
    let ratio = c - base;
    let cubic = r.mode == ResizeMode::Cubic;
    let reach = if cubic { 2.0 } else { 1.0 };
    let weight = |x: f64| if cubic { keys(r.cubic_coeff_a as f64, x) } else { (1.0 - x.abs()).max(0.0) };
    let start = (-reach / scale).floor() as i64 + 1;
    let mut taps: Vec<(f64, f64)> =
        (start..2 - start).map(|i| (base + i as f64, weight(scale * (i as f64 - ratio)))).collect();
    let total: f64 = taps.iter().map(|t| t.1).sum();
    taps.iter_mut().for_each(|t| t.1 /= total);
    exclude_outside(r, taps, last)
}

/// Keys' cubic convolution kernel with coefficient `a`.
fn keys(a: f64, x: f64) -> f64 {
    let x = x.abs();
    if x <= 1.0 {
        ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
    } else {
        0.0
    }
}

/// The four cubic taps' weights around fraction `t` (offsets -1, 0, 1, 2).
fn cubic_weights(a: f64, t: f64) -> [f64; 4] {
    [keys(a, t + 1.0), keys(a, t), keys(a, 1.0 - t), keys(a, 2.0 - t)]
}

/// Resamples axis `d` of `a` to `taps.len()` elements.
fn resample_axis(a: &ArrayD<f64>, d: usize, shape: &[usize], taps: &[Taps], ext: f64) -> ArrayD<f64> {
    let mut out = ArrayD::zeros(IxDyn(shape));
    Zip::from(out.lanes_mut(Axis(d))).and(a.lanes(Axis(d))).for_each(|mut o, i| {
        for (j, t) in taps.iter().enumerate() {
            o[j] = t.as_ref().map_or(ext, |t| t.iter().map(|&(k, w)| i[k] * w).sum());
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(r: Resize, x: Tensor, scales: Option<Vec<f32>>, sizes: Option<Vec<i64>>) -> Vec<f32> {
        let ins = [Some(x), None, scales.map(Tensor::vector), sizes.map(Tensor::vector)];
        resize(&r, &ins).unwrap().to_vec::<f32>()
    }

    fn row(v: &[f32]) -> Tensor {
        Tensor::from_vec(&[1, v.len()], v.to_vec()).unwrap()
    }

    #[test]
    fn nearest_upsampling_by_hand() {
        // Asymmetric x2 with floor: out o reads o / 2.
        let r = Resize { coord: ResizeCoord::Asymmetric, nearest: ResizeNearest::Floor, ..Default::default() };
        assert_eq!(run(r, row(&[1., 2., 3.]), Some(vec![1., 2.]), None), vec![1., 1., 2., 2., 3., 3.]);
        // Half-pixel x2, round_prefer_floor: o -> (o + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25.
        let r = Resize::default();
        assert_eq!(run(r, row(&[1., 2.]), Some(vec![1., 2.]), None), vec![1., 1., 2., 2.]);
    }

    #[test]
    fn linear_by_hand() {
        // Half-pixel x2 on [0, 4]: coords -0.25 (clamped 0), 0.25, 0.75, 1.25 (clamped 1).
        let r = Resize { mode: ResizeMode::Linear, ..Default::default() };
        assert_eq!(run(r, row(&[0., 4.]), Some(vec![1., 2.]), None), vec![0., 1., 3., 4.]);
        // Align corners to 4 samples of [0, 3]: exact ramp.
        let r = Resize { mode: ResizeMode::Linear, coord: ResizeCoord::AlignCorners, ..Default::default() };
        assert_eq!(run(r, row(&[0., 3.]), None, Some(vec![1, 4])), vec![0., 1., 2., 3.]);
        // Downsampling [1, 2, 3, 4] by 0.6 with align corners: the resized length in the formula is
        // the unrounded 2.4, so output 1 reads coordinate 3 / 1.4 (the ONNX reference's 3.142857).
        let r = Resize { mode: ResizeMode::Linear, coord: ResizeCoord::AlignCorners, ..Default::default() };
        let y = run(r, row(&[1., 2., 3., 4.]), Some(vec![1., 0.6]), None);
        assert!((y[0] - 1.0).abs() < 1e-6 && (y[1] - (1.0 + 3.0 / 1.4)).abs() < 1e-6, "{y:?}");
        // 2-D bilinear: 2x2 -> 3x3 with align corners; the centre is the mean of all four.
        let r = Resize { mode: ResizeMode::Linear, coord: ResizeCoord::AlignCorners, ..Default::default() };
        let x = Tensor::from_vec(&[2, 2], vec![0f32, 2., 4., 6.]).unwrap();
        assert_eq!(run(r, x, None, Some(vec![3, 3])), vec![0., 1., 2., 2., 3., 4., 4., 5., 6.]);
    }

    #[test]
    fn cubic_weights_sum_to_one_and_crop_extrapolates() {
        for t in [0.0, 0.25, 0.5, 0.9] {
            assert!((cubic_weights(-0.75, t).iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
        assert_eq!(cubic_weights(-0.5, 0.0), [0.0, 1.0, 0.0, 0.0]);
        let r = Resize {
            mode: ResizeMode::Linear,
            coord: ResizeCoord::TfCropAndResize,
            extrapolation_value: -1.0,
            ..Default::default()
        };
        let roi = Tensor::vector(vec![0.0f32, 0.5, 1.0, 1.5]);
        let ins = [Some(row(&[0., 4.])), Some(roi), None, Some(Tensor::vector(vec![1i64, 3]))];
        // Column coords: 0.5, 1.0, 1.5 (outside -> extrapolated).
        assert_eq!(resize(&r, &ins).unwrap().to_vec::<f32>(), vec![2., 4., -1.]);
    }
}
