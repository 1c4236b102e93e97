//! The matmul/convolution core. Products go to the packed AVX-512/AVX2/FMA micro-kernels of the
//! `gemm` crate's f32 half (`gemm-f32`; chosen over `matrixmultiply` and a Cranelift-emitted
//! kernel by the GEMM sweep in `benches/`: Cranelift lowers only 128-bit vectors on x86-64),
//! split over the worker threads along the long side of the result. This module does what is
//! specific to each op: strided operand views for MatMul/Gemm (transposes cost nothing), im2col
//! for general convolutions, a direct path for 1×1 stride-1 convolutions (the input already is
//! the right-hand matrix), and depthwise convolutions through the sliding-window kernel
//! (`window`), which adds their bias too. Other epilogues (bias, activation, residual) run
//! afterwards as generated elementwise kernels on the output.

use super::exec::Ptr;
use super::lower::Vid;
use super::pool::Workers;
use super::window::{Reduce, Window};

/// A matrix operand: its value and element strides (row, column, batch).
#[derive(Clone, Debug)]
pub(crate) struct Mat {
    pub vid: Vid,
    pub rs: isize,
    pub cs: isize,
    pub bs: isize,
}

/// `C[b] = alpha · A[b] · B[b]` for `b < batch`; C is contiguous `[batch, m, n]`.
#[derive(Clone, Debug)]
pub(crate) struct MatMulStep {
    pub batch: usize,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a: Mat,
    pub b: Mat,
    pub alpha: f32,
    pub c: Vid,
}

/// How a 2-D convolution is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConvAlgo {
    /// 1×1, stride 1, no padding: `Y_g = W_g · X_g` directly.
    Pointwise,
    /// Unfold the input into a `[Cin/g·kh·kw, oh·ow]` scratch matrix, then one GEMM per group.
    Im2col,
    /// One input channel per output channel: a direct sliding-window kernel.
    Depthwise,
}

/// A 2-D convolution with concrete geometry (NCHW, weights `[Cout, Cin/g, kh, kw]`).
#[derive(Clone, Debug)]
pub(crate) struct ConvStep {
    pub algo: ConvAlgo,
    pub x: Vid,
    pub w: Vid,
    pub y: Vid,
    /// im2col scratch (`Im2col` only).
    pub scratch: Option<Vid>,
    /// Per-channel bias added by the kernel itself (`Depthwise` only; the other algorithms
    /// leave it to the epilogue).
    pub bias: Option<Vid>,
    pub batch: usize,
    pub cin: usize,
    pub cout: usize,
    /// Each plane's geometry: input and output extents, kernel, stride, padding, dilation.
    pub window: Window,
    pub groups: usize,
}

/// Below this many multiply-adds a product runs on one thread.
const PARALLEL_MACS: usize = 1 << 18;
/// Blocks of a split product start at multiples of this (the micro-kernels' tile heights).
const SPLIT_ALIGN: usize = 16;

/// `dst[m×n] (+)= alpha · lhs[m×k] · rhs[k×n]`, all strided.
///
/// # Safety
/// Every pointer must be valid for the elements its strides and extents reach; `dst` must not
/// overlap `lhs` or `rhs`.
#[allow(clippy::too_many_arguments)]
unsafe fn sgemm(
    workers: &Workers,
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    (d_rs, d_cs): (isize, isize),
    lhs: *const f32,
    (l_rs, l_cs): (isize, isize),
    rhs: *const f32,
    (r_rs, r_cs): (isize, isize),
    alpha: f32,
) {
    // The micro-kernels want a column-major destination: a row-major one is computed as
    // Cᵀ = Bᵀ·Aᵀ (all strides here are non-negative).
    let ((m, n), (d_rs, d_cs), (lhs, l_rs, l_cs), (rhs, r_rs, r_cs)) = if d_cs.abs() < d_rs.abs() {
        ((n, m), (d_cs, d_rs), (rhs, r_cs, r_rs), (lhs, l_cs, l_rs))
    } else {
        ((m, n), (d_rs, d_cs), (lhs, l_rs, l_cs), (rhs, r_rs, r_cs))
    };
    // Threads split the longer side of C into one block each and run single-threaded products
    // (the crate's own rayon split slowed a 512³ product down on two cores); each repacks only
    // the operand along the short side.
    let parts = if m * n * k >= PARALLEL_MACS { workers.threads().min(m.max(n).div_ceil(SPLIT_ALIGN)) } else { 1 };
    let split_rows = m >= n;
    let block = m.max(n).div_ceil(parts).next_multiple_of(SPLIT_ALIGN);
    let (dst, lhs, rhs) = (Ptr(dst), Ptr(lhs as *mut f32), Ptr(rhs as *mut f32));
    workers.for_each(parts, PARALLEL_MACS, |p| {
        let (lo, hi) = (p * block, ((p + 1) * block).min(m.max(n)));
        if lo >= hi {
            return;
        }
        let (pm, pn) = if split_rows { (hi - lo, n) } else { (m, hi - lo) };
        let at = lo as isize;
        // SAFETY: forwarded from the caller; block `p` addresses rows (or columns) lo..hi of C
        // and the matching rows of `lhs` (or columns of `rhs`), which no other block touches.
        unsafe {
            let (d, l, r) = if split_rows {
                (dst.raw().offset(at * d_rs), lhs.raw().offset(at * l_rs), rhs.raw())
            } else {
                (dst.raw().offset(at * d_cs), lhs.raw(), rhs.raw().offset(at * r_cs))
            };
            gemm_f32::gemm::f32::get_gemm_fn()(
                pm,
                pn,
                k,
                d,
                d_cs,
                d_rs,
                false,
                l,
                l_cs,
                l_rs,
                r,
                r_cs,
                r_rs,
                0.0,
                alpha,
                false,
                false,
                false,
                gemm_common::Parallelism::None,
            )
        }
    });
}

impl MatMulStep {
    /// # Safety
    /// `a`, `b`, `c` point at buffers of the shapes this step was lowered for.
    pub(crate) unsafe fn run(&self, workers: &Workers, a: Ptr, b: Ptr, c: Ptr) {
        for i in 0..self.batch {
            // SAFETY: offsets stay inside the batched operands by construction.
            unsafe {
                sgemm(
                    workers,
                    (self.m, self.n, self.k),
                    c.add(i * self.m * self.n),
                    (self.n as isize, 1),
                    a.0.offset(i as isize * self.a.bs),
                    (self.a.rs, self.a.cs),
                    b.0.offset(i as isize * self.b.bs),
                    (self.b.rs, self.b.cs),
                    self.alpha,
                )
            }
        }
    }
}

impl ConvStep {
    /// # Safety
    /// `x`, `w`, `y` (and `scratch` for im2col, `bias` for depthwise, else null) point at
    /// buffers of the lowered shapes; `y` overlaps none of the others.
    pub(crate) unsafe fn run(&self, workers: &Workers, [x, w, y, scratch, bias]: [Ptr; 5]) {
        let (cin_g, cout_g) = (self.cin / self.groups, self.cout / self.groups);
        let (plane_in, plane_out) = (self.window.h * self.window.w, self.window.oh * self.window.ow);
        let k = cin_g * self.window.kh * self.window.kw;
        for img in 0..self.batch {
            // SAFETY (whole block): image and group offsets stay within the NCHW buffers.
            unsafe {
                let x_img = Ptr(x.add(img * self.cin * plane_in));
                let y_img = Ptr(y.add(img * self.cout * plane_out));
                if self.algo == ConvAlgo::Depthwise {
                    self.depthwise(workers, x_img, w, bias, y_img);
                    continue;
                }
                for g in 0..self.groups {
                    let x_g = x_img.add(g * cin_g * plane_in);
                    let rhs = match self.algo {
                        ConvAlgo::Pointwise => x_g as *const f32,
                        _ => {
                            self.im2col(workers, Ptr(x_g), scratch);
                            scratch.0 as *const f32
                        }
                    };
                    sgemm(
                        workers,
                        (cout_g, plane_out, k),
                        y_img.add(g * cout_g * plane_out),
                        (plane_out as isize, 1),
                        w.add(g * cout_g * k),
                        (k as isize, 1),
                        rhs,
                        (plane_out as isize, 1),
                        1.0,
                    );
                }
            }
        }
    }

    /// Unfolds one group of one image into `col[(c·kh + i)·kw + j][oy·ow + ox]`, zeros where the
    /// window reads padding.
    unsafe fn im2col(&self, workers: &Workers, x: Ptr, col: Ptr) {
        let win = &self.window;
        let rows = (self.cin / self.groups) * win.kh * win.kw;
        let (plane_in, plane_out) = (win.h * win.w, win.oh * win.ow);
        workers.for_each(rows, plane_out, |r| {
            let (c, ki, kj) = (r / (win.kh * win.kw), (r / win.kw) % win.kh, r % win.kw);
            // SAFETY: row `r` of the scratch and channel `c` of the input are in bounds.
            let (src, dst) = unsafe {
                (
                    std::slice::from_raw_parts(x.add(c * plane_in), plane_in),
                    std::slice::from_raw_parts_mut(col.add(r * plane_out), plane_out),
                )
            };
            let (ox0, ox1, ix0) = valid_span(win.ow, win.w, win.stride[1], win.pad[1], kj * win.dilation[1]);
            let (oy0, oy1, iy0) = valid_span(win.oh, win.h, win.stride[0], win.pad[0], ki * win.dilation[0]);
            if ox0 >= ox1 || oy0 >= oy1 {
                dst.fill(0.0);
                return;
            }
            dst[..oy0 * win.ow].fill(0.0);
            dst[oy1 * win.ow..].fill(0.0);
            for (oy, row) in dst.chunks_exact_mut(win.ow).enumerate().take(oy1).skip(oy0) {
                let line = &src[(iy0 + (oy - oy0) * win.stride[0]) * win.w..][..win.w];
                row[..ox0].fill(0.0);
                row[ox1..].fill(0.0);
                if win.stride[1] == 1 {
                    row[ox0..ox1].copy_from_slice(&line[ix0..ix0 + (ox1 - ox0)]);
                } else {
                    for (o, v) in row[ox0..ox1].iter_mut().enumerate() {
                        *v = line[ix0 + o * win.stride[1]];
                    }
                }
            }
        });
    }

    /// One filter per channel: a weighted sliding window over each plane, plus the channel's
    /// bias when there is one (`bias` null otherwise).
    unsafe fn depthwise(&self, workers: &Workers, x: Ptr, w: Ptr, bias: Ptr, y: Ptr) {
        let win = &self.window;
        let (plane_in, plane_out, taps) = (win.h * win.w, win.oh * win.ow, win.kh * win.kw);
        workers.for_each(self.cout, plane_out * taps, |c| {
            // SAFETY: channel `c` of input, weights and output are in bounds.
            let (src, filt, dst) = unsafe {
                (
                    std::slice::from_raw_parts(x.add(c * plane_in), plane_in),
                    std::slice::from_raw_parts(w.add(c * taps), taps),
                    std::slice::from_raw_parts_mut(y.add(c * plane_out), plane_out),
                )
            };
            // SAFETY: a non-null bias holds one value per channel.
            let bias = if bias.raw().is_null() { 0.0 } else { unsafe { *bias.add(c) } };
            win.plane(Reduce::Dot { weights: filt, bias }, src, dst);
        });
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

#[cfg(test)]
mod tests {
    use super::valid_span;

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
}
