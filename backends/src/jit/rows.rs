//! Row primitives shared by depthwise convolution and pooling: `out[i] ⊕= line[i·stride]` for
//! ⊕ ∈ {w·x +, max, +}, and the per-column windows both walk. Compiled twice — portable and
//! for AVX2/FMA — and chosen at run time, so the hot loops vectorize on the machines that can.

/// What a row step does with each input element.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Acc {
    /// `out += w · x`
    MulAdd(f32),
    /// `out = max(out, x)`
    Max,
    /// `out += x`
    Add,
}

/// `out[i] ⊕= line[i·stride]` for every `i < out.len()` (`line` may run on past the last element
/// read).
pub(crate) fn accumulate(out: &mut [f32], line: &[f32], stride: usize, acc: Acc) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the features this function is compiled for were just detected.
        return unsafe { accumulate_avx2(out, line, stride, acc) };
    }
    dispatch(out, line, stride, acc, |w, x, o| o + w * x)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn accumulate_avx2(out: &mut [f32], line: &[f32], stride: usize, acc: Acc) {
    use std::arch::x86_64::*;
    let mut done = 0;
    if stride == 2 {
        // Eight outputs at a time from the even elements of sixteen inputs (stride 2 is what
        // down-sampling convolutions and pools use; the compiler does not vectorize it).
        let blocks = if line.len() >= 16 { (out.len() / 8).min((line.len() - 16) / 16 + 1) } else { 0 };
        let mut step = |f: &dyn Fn(__m256, __m256) -> __m256| {
            for j in 0..blocks {
                // SAFETY: block `j` reads line[16j..16j+16] and writes out[8j..8j+8], both in
                // bounds by the choice of `blocks`.
                unsafe {
                    let p = line.as_ptr().add(16 * j);
                    let (lo, hi) = (_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8)));
                    // x0 x2 x8 x10 | x4 x6 x12 x14, then the 64-bit pairs put in order.
                    let pairs = _mm256_castps_pd(_mm256_shuffle_ps::<0b10_00_10_00>(lo, hi));
                    let x = _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(pairs));
                    let o = out.as_mut_ptr().add(8 * j);
                    _mm256_storeu_ps(o, f(_mm256_loadu_ps(o), x));
                }
            }
        };
        match acc {
            Acc::MulAdd(w) => step(&|o, x| _mm256_fmadd_ps(_mm256_set1_ps(w), x, o)),
            Acc::Max => step(&|o, x| _mm256_max_ps(o, x)),
            Acc::Add => step(&|o, x| _mm256_add_ps(o, x)),
        }
        done = blocks * 8;
    }
    dispatch(&mut out[done..], &line[done * stride..], stride, acc, |w, x, o| w.mul_add(x, o))
}

#[inline(always)]
fn dispatch(out: &mut [f32], line: &[f32], stride: usize, acc: Acc, mul_add: impl Fn(f32, f32, f32) -> f32) {
    match acc {
        Acc::MulAdd(w) => each(out, line, stride, |o, x| mul_add(w, x, o)),
        Acc::Max => each(out, line, stride, f32::max),
        Acc::Add => each(out, line, stride, |o, x| o + x),
    }
}

#[inline(always)]
fn each(out: &mut [f32], line: &[f32], stride: usize, f: impl Fn(f32, f32) -> f32) {
    if stride == 1 {
        for (o, &x) in out.iter_mut().zip(line) {
            *o = f(*o, x);
        }
    } else {
        for (o, &x) in out.iter_mut().zip(line.iter().step_by(stride)) {
            *o = f(*o, x);
        }
    }
}

/// The output positions `o0..o1` whose input index `o·stride + offset − pad` lies in `0..width`,
/// and that first input index.
pub(crate) fn valid_span(out: usize, width: usize, stride: usize, pad: usize, offset: usize) -> (usize, usize, usize) {
    // first o with o·stride + offset ≥ pad
    let lo = if offset >= pad { 0 } else { (pad - offset).div_ceil(stride) }.min(out);
    // one past the last o with o·stride + offset − pad ≤ width − 1
    let hi = if width + pad <= offset { 0 } else { ((width + pad - offset - 1) / stride + 1).min(out) }.max(lo);
    let first = if lo < hi { lo * stride + offset - pad } else { 0 };
    (lo, hi, first)
}

/// The rest of the line from input `first`, where `accumulate` starts for outputs `lo..hi`.
pub(crate) fn segment(line: &[f32], (lo, hi, first): (usize, usize, usize), stride: usize) -> &[f32] {
    debug_assert!(lo >= hi || first + (hi - lo - 1) * stride < line.len(), "the window's last read is in the line");
    &line[first..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_span_matches_a_scan() {
        for (out, width, stride, pad, offset) in
            [(5, 5, 1, 1, 0), (5, 5, 1, 1, 2), (3, 7, 2, 1, 0), (4, 3, 1, 3, 0), (2, 9, 3, 0, 4)]
        {
            let scan: Vec<usize> = (0..out)
                .filter(|&o| {
                    let i = (o * stride + offset) as isize - pad as isize;
                    i >= 0 && i < width as isize
                })
                .collect();
            let (lo, hi, first) = valid_span(out, width, stride, pad, offset);
            match (scan.first(), scan.last()) {
                (Some(&f), Some(&l)) => assert_eq!((lo, hi, first), (f, l + 1, f * stride + offset - pad)),
                _ => assert_eq!(lo, hi),
            }
        }
    }

    #[test]
    fn every_accumulation_matches_scalar_code() {
        let line: Vec<f32> = (0..80).map(|i| ((i * 7) % 11) as f32 - 5.0).collect();
        for (stride, n) in [(1, 13), (2, 13), (2, 39), (2, 40), (3, 13), (3, 26)] {
            for acc in [Acc::MulAdd(0.5), Acc::Max, Acc::Add] {
                let mut out: Vec<f32> = (0..n).map(|i| i as f32 * 0.25).collect();
                let mut want = out.clone();
                accumulate(&mut out, &line, stride, acc);
                for (i, w) in want.iter_mut().enumerate() {
                    let x = line[i * stride];
                    *w = match acc {
                        Acc::MulAdd(a) => *w + a * x,
                        Acc::Max => w.max(x),
                        Acc::Add => *w + x,
                    };
                }
                assert_eq!(out, want, "{acc:?} stride {stride}");
            }
        }
    }
}
