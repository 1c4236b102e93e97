//! Native kernels written in Rust for windowed and channel ops: 2-D max/average pooling, global
//! pooling, LRN across channels and Concat (the other native kernels are planned by `native`). Each
//! is specialized by the geometry fixed at lowering and parallel over independent planes/rows.

use super::exec::Ptr;
use super::lower::Vid;
use super::pool::Workers;
use super::window::{Reduce, Window};

/// Max or average pooling of NCHW planes.
#[derive(Clone, Debug)]
pub(crate) struct PoolStep {
    pub x: Vid,
    pub y: Vid,
    pub planes: usize,
    pub window: Window,
    /// Average pooling: each output's factor, one over the count of its window (`oh·ow`
    /// values; a multiply vectorizes where a division per output did not); `None` for max
    /// pooling.
    pub scale: Option<Vec<f32>>,
}

impl PoolStep {
    /// # Safety
    /// `x` and `y` point at `planes` planes of the lowered extents and do not overlap.
    pub(crate) unsafe fn run(&self, workers: &Workers, x: Ptr, y: Ptr) {
        let win = &self.window;
        let (pin, pout) = (win.h * win.w, win.oh * win.ow);
        let reduce = if self.scale.is_some() { Reduce::Sum } else { Reduce::Max };
        workers.for_each(self.planes, pout * win.kh * win.kw, |p| {
            // SAFETY: plane `p` is in bounds of both buffers.
            let (src, dst) = unsafe {
                (std::slice::from_raw_parts(x.add(p * pin), pin), std::slice::from_raw_parts_mut(y.add(p * pout), pout))
            };
            win.plane(reduce, src, dst);
            if let Some(scale) = &self.scale {
                dst.iter_mut().zip(scale).for_each(|(o, s)| *o *= s);
            }
        });
    }
}

/// For each of `n_out` windows of `k` elements along one axis of `n` inputs: how many elements
/// average pooling divides by (the padded extent, or only the inputs).
pub(crate) fn average_counts(
    n_out: usize,
    n: usize,
    (k, stride): (usize, usize),
    (pad_begin, pad_end): (usize, usize),
    count_include_pad: bool,
) -> Vec<f32> {
    (0..n_out)
        .map(|o| {
            let (lo, hi, padded) = window(o, stride, pad_begin, pad_end, k, n);
            (if count_include_pad { padded } else { hi - lo }) as f32
        })
        .collect()
}

/// The input rows `lo..hi` a window at output `o` reads, and how many positions of the padded
/// input it covers (for `count_include_pad`).
fn window(o: usize, stride: usize, pad_begin: usize, pad_end: usize, k: usize, n: usize) -> (usize, usize, usize) {
    let start = (o * stride) as isize - pad_begin as isize;
    let end = start + k as isize;
    let padded_end = end.min((n + pad_end) as isize);
    let lo = start.max(0) as usize;
    let hi = (end.min(n as isize).max(0) as usize).max(lo);
    (lo, hi, (padded_end - start).max(0) as usize)
}

/// GlobalAveragePool / GlobalMaxPool: one value per plane.
#[derive(Clone, Debug)]
pub(crate) struct GlobalPoolStep {
    pub x: Vid,
    pub y: Vid,
    pub max: bool,
    pub planes: usize,
    pub plane: usize,
}

impl GlobalPoolStep {
    /// # Safety
    /// `x` holds `planes × plane` values, `y` holds `planes`.
    pub(crate) unsafe fn run(&self, workers: &Workers, x: Ptr, y: Ptr) {
        workers.for_each(self.planes, self.plane, |p| {
            // SAFETY: plane `p` is in bounds; each task writes its own output element.
            unsafe {
                let src = std::slice::from_raw_parts(x.add(p * self.plane), self.plane);
                *y.add(p) = if self.max {
                    src.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v))
                } else {
                    src.iter().sum::<f32>() / self.plane as f32
                };
            }
        });
    }
}

/// Local response normalization across channels of NCHW.
#[derive(Clone, Debug)]
pub(crate) struct LrnStep {
    pub x: Vid,
    pub y: Vid,
    pub batch: usize,
    pub channels: usize,
    pub plane: usize,
    pub size: usize,
    pub alpha: f32,
    pub beta: f32,
    pub bias: f32,
}

impl LrnStep {
    /// # Safety
    /// `x` and `y` hold `batch × channels × plane` values and do not overlap.
    pub(crate) unsafe fn run(&self, workers: &Workers, x: Ptr, y: Ptr) {
        let (below, above) = ((self.size - 1) / 2, self.size / 2);
        let scale = self.alpha / self.size as f32;
        workers.for_each(self.batch * self.channels, self.plane * self.size, |bc| {
            let (b, c) = (bc / self.channels, bc % self.channels);
            let (lo, hi) = (c.saturating_sub(below), (c + above).min(self.channels - 1));
            let base = b * self.channels * self.plane;
            // SAFETY: every index is inside image `b`; each task writes its own channel.
            unsafe {
                for p in 0..self.plane {
                    let sq: f32 = (lo..=hi).map(|k| (*x.add(base + k * self.plane + p)).powi(2)).sum();
                    let at = base + c * self.plane + p;
                    *y.add(at) = *x.add(at) / (self.bias + scale * sq).powf(self.beta);
                }
            }
        });
    }
}

/// Concat: per outer index, each input contributes a contiguous block of the output row.
/// Inputs that were written in place (see `lower`) have no part here.
#[derive(Clone, Debug)]
pub(crate) struct ConcatStep {
    pub parts: Vec<ConcatPart>,
    pub y: Vid,
    pub outer: usize,
    /// Elements of one output row (all inputs' blocks).
    pub row: usize,
}

/// One copied input: `len` elements per outer index, at element `at` of the output row.
#[derive(Clone, Debug)]
pub(crate) struct ConcatPart {
    pub x: Vid,
    pub len: usize,
    pub at: usize,
}

impl ConcatStep {
    /// # Safety
    /// Part `i`'s input holds `outer × parts[i].len` values, `y` holds `outer × row`; `y`
    /// overlaps no part's input.
    pub(crate) unsafe fn run(&self, ins: &[Ptr], y: Ptr) {
        for o in 0..self.outer {
            for (part, p) in self.parts.iter().zip(ins) {
                // SAFETY: block `o` of input and output are in bounds and disjoint.
                unsafe { std::ptr::copy_nonoverlapping(p.add(o * part.len), y.add(o * self.row + part.at), part.len) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::window;

    #[test]
    fn pooling_windows_clip_to_input_and_padding() {
        // 3-wide window, stride 2, pads 1/1 on 5 inputs: outputs 0..3
        assert_eq!(window(0, 2, 1, 1, 3, 5), (0, 2, 3));
        assert_eq!(window(2, 2, 1, 1, 3, 5), (3, 5, 3));
        // ceil-mode window past the padded end counts only the padded extent
        assert_eq!(window(3, 2, 0, 0, 3, 6), (6, 6, 0));
    }
}
