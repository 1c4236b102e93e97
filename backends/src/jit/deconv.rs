//! ConvTranspose (1-D and 2-D) as a GEMM and a col2im, as ONNX Runtime computes it: per image
//! and group, `cols = Wᵀ · X` on the GEMM core (the transposed weights packed once, when the
//! plan is built) gives every (output channel, tap) row over the input positions, and col2im
//! scatters those rows into the output planes, which start from the bias. The column matrix
//! lives in an arena scratch buffer; col2im is parallel over output channels.

use super::exec::Ptr;
use super::gemm::{block_depth, gemm, Lhs, PackedLhs, Rhs, Strided};
use super::microkernel;
use super::pool::Workers;
use kiln_ir::op::ConvTranspose;
use kiln_ir::Tensor;

#[derive(Clone, Debug)]
pub(crate) struct DeconvStep {
    pub batch: usize,
    pub cin: usize,
    pub cout: usize,
    pub groups: usize,
    /// Input and output planes, kernel, stride, dilation and begin padding, as (rows, columns).
    pub input: [usize; 2],
    pub output: [usize; 2],
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub dilation: [usize; 2],
    pub pad: [usize; 2],
    /// Per group, `Wᵀ` (`cout/g·kh·kw × cin/g`) packed for the GEMM.
    pub packed: Vec<PackedLhs>,
    pub bias: Vec<f32>,
}

impl DeconvStep {
    /// ConvTranspose of `x` (`[N, C, W]` or `[N, C, H, W]`) by constant weights `w`
    /// (`[C, M/g, k…]`) and bias; `None` for other ranks or inconsistent operands.
    pub(crate) fn new(ct: &ConvTranspose, x: &[usize], w: &Tensor, bias: Option<&Tensor>) -> Option<DeconvStep> {
        let ws = w.shape();
        let (rank, groups) = (x.len(), ct.group.max(1));
        let empty = x.contains(&0) || ws.contains(&0);
        if empty || !(3..=4).contains(&rank) || ws.len() != rank || ws[0] != x[1] || !x[1].is_multiple_of(groups) {
            return None;
        }
        let geo = ct.resolve(&x[2..], &ws[2..]).ok()?;
        let (cin_g, cout_g) = (x[1] / groups, ws[1]);
        let cout = cout_g * groups;
        if bias.is_some_and(|b| b.len() != cout) || geo.output.contains(&0) {
            return None;
        }
        // 1-D as 2-D with one row.
        let pair = |v: &[usize], one: usize| if rank == 3 { [one, v[0]] } else { [v[0], v[1]] };
        let taps: usize = ws[2..].iter().product();
        let m = cout_g * taps;
        let weights: Vec<f32> = w.to_f64_vec().into_iter().map(|v| v as f32).collect();
        let kernel = microkernel::best();
        let packed = (0..groups)
            .map(|g| {
                // Group g's weights are `[cin_g, m]` row-major; the GEMM's left operand is their transpose.
                let block = &weights[g * cin_g * m..][..cin_g * m];
                let t: Vec<f32> = (0..m).flat_map(|r| (0..cin_g).map(move |c| block[c * m + r])).collect();
                PackedLhs::new(kernel, &t, m, cin_g, block_depth(cin_g, false))
            })
            .collect();
        Some(DeconvStep {
            batch: x[0],
            cin: x[1],
            cout,
            groups,
            input: pair(&x[2..], 1),
            output: pair(&geo.output, 1),
            kernel: pair(&ws[2..], 1),
            stride: pair(&geo.strides, 1),
            dilation: pair(&geo.dilations, 1),
            pad: pair(&geo.pads_begin, 0),
            packed,
            bias: bias.map_or_else(|| vec![0.0; cout], |b| b.to_f64_vec().into_iter().map(|v| v as f32).collect()),
        })
    }

    /// Elements of the column matrix (one group of one image at a time).
    pub(crate) fn scratch_len(&self) -> usize {
        self.cout / self.groups * self.kernel[0] * self.kernel[1] * self.input[0] * self.input[1]
    }

    /// # Safety
    /// `x`, `y` and `scratch` hold the input, the output and [`Self::scratch_len`] values; none
    /// overlap.
    pub(crate) unsafe fn run(&self, workers: &Workers, x: Ptr, y: Ptr, scratch: Ptr) {
        let (cin_g, cout_g) = (self.cin / self.groups, self.cout / self.groups);
        let (plane_in, plane_out) = (self.input[0] * self.input[1], self.output[0] * self.output[1]);
        let m = cout_g * self.kernel[0] * self.kernel[1];
        for img in 0..self.batch {
            for g in 0..self.groups {
                let xg =
                    Strided { ptr: x.raw().add((img * self.cin + g * cin_g) * plane_in), rs: plane_in as isize, cs: 1 };
                // SAFETY: the packed weights are m×cin_g, X's block is cin_g×plane_in, the scratch
                // holds m×plane_in.
                unsafe {
                    gemm(
                        workers,
                        (m, plane_in, cin_g),
                        Lhs::Packed(&self.packed[g]),
                        Rhs::Matrix(xg),
                        scratch.raw(),
                        plane_in,
                        None,
                    )
                };
                workers.for_each(cout_g, plane_in * self.kernel[0] * self.kernel[1], |c| {
                    let co = g * cout_g + c;
                    // SAFETY: output plane `co` of image `img` is this task's; its rows of the
                    // column matrix are in bounds.
                    let (plane, rows) = unsafe {
                        (
                            std::slice::from_raw_parts_mut(y.add((img * self.cout + co) * plane_out), plane_out),
                            std::slice::from_raw_parts(scratch.add(c * (m / cout_g) * plane_in), m / cout_g * plane_in),
                        )
                    };
                    self.col2im(plane, rows, self.bias[co]);
                });
            }
        }
    }

    /// Scatters one output channel's `kh·kw` rows of input positions into its `plane`.
    fn col2im(&self, plane: &mut [f32], rows: &[f32], bias: f32) {
        let ([h, w], [oh, ow]) = (self.input, self.output);
        plane.fill(bias);
        for (t, row) in rows.chunks_exact(h * w).enumerate() {
            let (ki, kj) = (t / self.kernel[1], t % self.kernel[1]);
            // Input positions i landing inside the output: 0 ≤ i·s + k·d − p < o.
            let [(lo_y, hi_y), (lo_x, hi_x)] = [0, 1].map(|a| {
                let tap = [ki, kj][a] as isize * self.dilation[a] as isize - self.pad[a] as isize;
                let (s, n, o) = (self.stride[a] as isize, [h, w][a] as isize, [oh, ow][a] as isize);
                let lo = if tap >= 0 { 0 } else { (-tap + s - 1) / s };
                let hi = if o - tap <= 0 { 0 } else { ((o - tap + s - 1) / s).min(n) };
                (lo as usize, (hi as usize).max(lo as usize))
            });
            for iy in lo_y..hi_y {
                let oy = iy * self.stride[0] + ki * self.dilation[0] - self.pad[0];
                let src = &row[iy * w..][..w];
                let dst = &mut plane[oy * ow..][..ow];
                let base = kj * self.dilation[1];
                for ix in lo_x..hi_x {
                    dst[ix * self.stride[1] + base - self.pad[1]] += src[ix];
                }
            }
        }
    }
}
