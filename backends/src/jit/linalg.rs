//! MatMul, Gemm and 2-D convolution steps on the GEMM core (`gemm`). This module does what is
//! specific to each op: strided operand views for MatMul/Gemm (transposes cost nothing), the
//! unfolded input as the right-hand side of a general convolution (packed by the core straight
//! from the image), the input itself for 1×1 stride-1 convolutions, weights packed when the plan
//! is built, and depthwise convolutions through the sliding-window kernel (`window`), which adds
//! their bias too. Other epilogues (bias, activation, residual) run afterwards as generated
//! elementwise kernels on the output.

use super::exec::Ptr;
use super::gemm::{gemm, Lhs, PackedLhs, Rhs, Strided};
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
    /// One GEMM per group over the input's im2col matrix, which the GEMM packs straight from
    /// the input.
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
    /// Constant weights packed for the GEMM, one per group (empty when the weights are computed
    /// at run time, or for `Depthwise`).
    pub packed: Vec<PackedLhs>,
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

impl MatMulStep {
    /// # Safety
    /// `a`, `b`, `c` point at buffers of the shapes this step was lowered for.
    pub(crate) unsafe fn run(&self, workers: &Workers, a: Ptr, b: Ptr, c: Ptr) {
        for i in 0..self.batch {
            // SAFETY: offsets stay inside the batched operands by construction.
            unsafe {
                let at = |p: Ptr, m: &Mat| Strided { ptr: p.0.offset(i as isize * m.bs), rs: m.rs, cs: m.cs };
                gemm(
                    workers,
                    (self.m, self.n, self.k),
                    Lhs::Matrix { a: at(a, &self.a), alpha: self.alpha },
                    Rhs::Matrix(at(b, &self.b)),
                    c.add(i * self.m * self.n),
                    self.n,
                )
            }
        }
    }
}

impl ConvStep {
    /// # Safety
    /// `x`, `w`, `y` (and `bias` for depthwise, else null) point at
    /// buffers of the lowered shapes; `y` overlaps none of the others.
    pub(crate) unsafe fn run(&self, workers: &Workers, [x, w, y, bias]: [Ptr; 4]) {
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
                        ConvAlgo::Pointwise => Rhs::Matrix(Strided { ptr: x_g, rs: plane_out as isize, cs: 1 }),
                        _ => Rhs::Unfold { x: x_g, window: &self.window },
                    };
                    let weights = match self.packed.get(g) {
                        Some(packed) => Lhs::Packed(packed),
                        None => {
                            Lhs::Matrix { a: Strided { ptr: w.add(g * cout_g * k), rs: k as isize, cs: 1 }, alpha: 1.0 }
                        }
                    };
                    gemm(workers, (cout_g, plane_out, k), weights, rhs, y_img.add(g * cout_g * plane_out), plane_out);
                }
            }
        }
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
