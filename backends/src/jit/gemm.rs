//! The f32 GEMM core behind MatMul, Gemm and convolution: `C = alpha · A · B` with C row-major.
//!
//! B is packed in blocks `KC` deep and `NB` wide into panels as wide as the micro-kernel's tile
//! (`microkernel`); for a convolution the panels are filled straight from the input image, so
//! the im2col matrix is never written out. Each tile-high strip of A is packed (scaled by
//! alpha) and run across the block's panels; constant weights are packed once, when the plan
//! is built ([`PackedLhs`]). The packing buffers are per thread and only grow,
//! so repeated runs allocate nothing. A product with one row or one column skips packing (a
//! matrix–vector product, which only streams its matrix). Threads split C into one block each,
//! by columns unless splitting its rows balances the work clearly better. A B whose rows can be
//! read in place (`Rhs::Shifted`) is not packed at all; the kernel's shifted variant reads it.

use super::exec::Ptr;
pub(crate) use super::microkernel::Epilogue;
use super::microkernel::{self, MicroKernel, Tile, MAX_MR, MAX_TILE};
use super::pool::Workers;
use super::window::Window;
use std::cell::RefCell;
use std::ops::Range;

/// Depth of a block of packed B.
const KC: usize = 256;
/// The deepest block when B is read in place: nothing is packed, so a block's depth only bounds
/// the strip of A (which stays in L1), and each tile loads and stores C once per block.
const KC_IN_PLACE: usize = 768;
/// Width of a packed block of B (a multiple of every kernel's tile width).
const NB: usize = 512;
/// Bytes in a cache line.
const CACHE_LINE: usize = 64;
/// f32 values in a cache line.
const LINE_VALUES: usize = CACHE_LINE / std::mem::size_of::<f32>();
/// Below this many multiply-adds a product runs on one thread.
const PARALLEL_MACS: usize = 1 << 18;
/// What streaming one strip of A costs a thread, in tile columns of one strip counted 2 each
/// (see `gemm_with`). Measured on ResNet-50, Inception-v2 and SqueezeNet at 2 threads: 16 to
/// 64 gave the same times; 0 left ResNet-50's 3×3 layers over 7×7 a third slower, and 256 made
/// Inception-v2's pointwise layers pack all of B twice.
const STRIP_READ: usize = 32;

/// A strided matrix: element `(i, j)` is at `ptr + i·rs + j·cs`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Strided {
    pub ptr: *const f32,
    pub rs: isize,
    pub cs: isize,
}

/// The left-hand operand.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Lhs<'a> {
    /// Packed on the fly, scaled by `alpha`.
    Matrix {
        a: Strided,
        alpha: f32,
    },
    Packed(&'a PackedLhs),
}

/// The depth of a product's blocks (the last may be shallower): `KC`, or with B read in place
/// the depth split evenly into blocks of at most `KC_IN_PLACE`.
pub(crate) fn block_depth(k: usize, in_place: bool) -> usize {
    if in_place {
        k.div_ceil(k.div_ceil(KC_IN_PLACE).max(1)).max(1)
    } else {
        KC
    }
}

/// A left-hand matrix packed ahead of time: for each block of `depth`, its strips of `mr` rows
/// (zero rows past the end), in the order the GEMM reads them.
#[derive(Clone, Debug)]
pub(crate) struct PackedLhs {
    kernel: MicroKernel,
    k: usize,
    /// The depth of a block ([`block_depth`] of the product it is packed for).
    depth: usize,
    /// Rows rounded up to whole strips.
    rows: usize,
    data: Vec<f32>,
}

impl PackedLhs {
    /// Packs the row-major `m×k` matrix `a` for `kernel`, in blocks `depth` deep.
    pub(crate) fn new(kernel: MicroKernel, a: &[f32], m: usize, k: usize, depth: usize) -> PackedLhs {
        assert_eq!(a.len(), m * k, "an m×k matrix");
        let rows = m.next_multiple_of(kernel.mr);
        let mut data = vec![0.0; rows * k];
        let matrix = Strided { ptr: a.as_ptr(), rs: k as isize, cs: 1 };
        for p0 in (0..k).step_by(depth) {
            let kc = depth.min(k - p0);
            for i0 in (0..m).step_by(kernel.mr) {
                let at = p0 * rows + i0 * kc;
                // SAFETY: rows `i0..` (at most m) and columns `p0..p0 + kc` lie inside `a`.
                unsafe { pack_a(matrix, 1.0, i0..m.min(i0 + kernel.mr), p0..p0 + kc, kernel.mr, &mut data[at..]) };
            }
        }
        PackedLhs { kernel, k, depth, rows, data }
    }

    /// The strip of rows from `i0` (a multiple of the tile height) in the block from depth `p0`.
    fn strip(&self, i0: usize, p0: usize) -> &[f32] {
        let kc = self.depth.min(self.k - p0);
        &self.data[p0 * self.rows + i0 * kc..][..kc * self.kernel.mr]
    }
}

/// The right-hand operand.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Rhs<'a> {
    Matrix(Strided),
    /// The im2col matrix of the planes at `x` (channel after channel, `h·w` each) under
    /// `window`, never materialized: row `(c·kh + ki)·kw + kj`, column `oy·ow + ox` holds
    /// `x[c][oy·sy + ki·dy − pad_y][ox·sx + kj·dx − pad_x]`, or 0 in the padding.
    Unfold {
        x: *const f32,
        window: &'a Window,
    },
    /// Read in place: row `p` is the values from `x + rows[p]` on (a last, partial panel is
    /// packed, so nothing past the last column is read).
    Shifted {
        x: *const f32,
        rows: &'a [isize],
    },
}

// SAFETY: the pointers are only read, from threads that each touch disjoint parts of C.
unsafe impl Send for Strided {}
unsafe impl Sync for Strided {}
unsafe impl Send for Rhs<'_> {}
unsafe impl Sync for Rhs<'_> {}

thread_local! {
    /// Each thread's packed block of B, one packed strip of A, and one unfolded row.
    static PACKED: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// `c[i·ldc + j] = Σ_p A[i,p] · B[p,j]` for `i < m`, `j < n` (A scaled by its alpha), then
/// the epilogue if any.
///
/// # Safety
/// `a` and `b` must be readable at every element their strides and extents reach (for
/// `Unfold`, every plane of the window; a packed `a` must have been packed as `m×k`); `c`
/// writable at `m` rows of `n` at pitch `ldc`, and overlapping neither operand; the epilogue
/// as [`Epilogue::apply`] for all of C.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm(
    workers: &Workers,
    dims: (usize, usize, usize),
    a: Lhs,
    b: Rhs,
    c: *mut f32,
    ldc: usize,
    epilogue: Option<&Epilogue>,
) {
    let kernel = match a {
        Lhs::Packed(p) => p.kernel,
        Lhs::Matrix { .. } => microkernel::best(),
    };
    // SAFETY: forwarded.
    unsafe { gemm_with(kernel, workers, dims, a, b, c, ldc, epilogue) }
}

/// [`gemm`] with a given micro-kernel (tests run every kernel the CPU has).
///
/// # Safety
/// As [`gemm`]; a packed `a` was packed for `kernel`.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_with(
    kernel: MicroKernel,
    workers: &Workers,
    (m, n, k): (usize, usize, usize),
    a: Lhs,
    b: Rhs,
    c: *mut f32,
    ldc: usize,
    epilogue: Option<&Epilogue>,
) {
    if let Lhs::Packed(p) = a {
        let depth = block_depth(k, matches!(b, Rhs::Shifted { .. }));
        assert!(p.kernel.mr == kernel.mr && p.k == k && p.depth == depth && p.rows >= m, "packed for this product");
    }
    if let Rhs::Shifted { rows, .. } = b {
        assert!(kernel.shifted.is_some() && rows.len() == k, "a shifted kernel and one offset per row of B");
    }
    // Threads split C's columns unless a split of its rows balances the work clearly better.
    // Blocks start at tile boundaries, so split columns go in whole panels: a 7×7 image's 49
    // columns split 32 against 17, and a 14×14 image's seven panels four against three. A
    // thread's work, in tile columns of one strip (2 each): its tiles; packing its columns of B
    // (1 each, none when B is read in place; split rows would each pack all of B); and
    // streaming its strips of A (`STRIP_READ` each: split columns would each read all of A,
    // which on a deep layer over a small image is most of the traffic).
    let (strips, threads) = (m.div_ceil(kernel.mr), workers.threads());
    let packs = usize::from(!matches!(b, Rhs::Shifted { .. }));
    let work = |strips: usize, cols: usize| cols * (2 * strips + packs) + STRIP_READ * strips;
    let widest = n.div_ceil(threads).next_multiple_of(kernel.nr).min(n);
    let split_cols = 10 * work(strips, widest) <= 11 * work(strips.div_ceil(threads), n);
    let (long, align) = if split_cols { (n, kernel.nr) } else { (m, kernel.mr) };
    let parts = if m * n * k >= PARALLEL_MACS { workers.threads().min(long.div_ceil(align)) } else { 1 };
    let block = long.div_ceil(parts).next_multiple_of(align);
    let c = Ptr(c);
    workers.for_each(parts, PARALLEL_MACS, |p| {
        let part = p * block..((p + 1) * block).min(long);
        if part.is_empty() {
            return;
        }
        let (rows, cols) = if split_cols { (0..m, part) } else { (part, 0..n) };
        // SAFETY: forwarded from the caller; part `p` writes rows (or columns) of C that no
        // other part touches.
        unsafe { serial(kernel, rows, cols, k, a, b, c.raw(), ldc, epilogue) }
    });
}

/// Rows `rows` × columns `cols` of C on this thread, each tile finished by the epilogue.
#[allow(clippy::too_many_arguments)]
unsafe fn serial(
    kernel: MicroKernel,
    rows: Range<usize>,
    cols: Range<usize>,
    k: usize,
    a: Lhs,
    b: Rhs,
    c: *mut f32,
    ldc: usize,
    epilogue: Option<&Epilogue>,
) {
    if let (Lhs::Matrix { a, alpha }, Rhs::Matrix(b)) = (a, b) {
        if rows.len() == 1 || cols.len() == 1 || k == 0 {
            // SAFETY: forwarded.
            unsafe { matrix_vector(rows.clone(), cols.clone(), k, alpha, a, b, c, ldc) };
            if let Some(e) = epilogue {
                // SAFETY: forwarded.
                unsafe { e.apply(c, ldc, rows, cols) };
            }
            return;
        }
    }
    if k == 0 {
        for i in rows.clone() {
            // SAFETY: row `i`, columns `cols` of C are in bounds.
            unsafe { std::slice::from_raw_parts_mut(c.add(i * ldc + cols.start), cols.len()) }.fill(0.0);
        }
        if let Some(e) = epilogue {
            // SAFETY: forwarded.
            unsafe { e.apply(c, ldc, rows, cols) };
        }
        return;
    }
    let MicroKernel { mr, nr, .. } = kernel;
    let depth = block_depth(k, matches!(b, Rhs::Shifted { .. }));
    PACKED.with(|packed| {
        let mut packed = packed.borrow_mut();
        let block_len = NB.div_ceil(nr) * panel_pitch(KC, nr);
        // The block starts on a cache line, and so does every panel of a 16- or 32-wide kernel
        // (`panel_pitch`): a vector load that straddles two lines costs two loads, and on
        // an Intel Xeon that took the kernel from 150 down to 131 GFLOP/s.
        let len = LINE_VALUES + block_len + depth * mr + NB;
        if packed.len() < len {
            packed.resize(len, 0.0);
        }
        let skew = packed.as_ptr().align_offset(CACHE_LINE).min(LINE_VALUES);
        let (b_block, rest) = packed[skew..].split_at_mut(block_len);
        let (a_strip, line) = rest.split_at_mut(depth * mr);
        let mut scratch = [0.0f32; MAX_TILE];
        for j0 in cols.clone().step_by(NB) {
            let nb = NB.min(cols.end - j0);
            let panels = || (0..nb.div_ceil(nr)).map(|q| (q, j0 + q * nr, nr.min(nb - q * nr)));
            for p0 in (0..k).step_by(depth) {
                let kc = depth.min(k - p0);
                // SAFETY: the block lies inside B by the caller's contract.
                unsafe {
                    match b {
                        Rhs::Unfold { x, window } => {
                            unfold_block(x, window, p0..p0 + kc, j0..j0 + nb, nr, line, b_block)
                        }
                        Rhs::Matrix(m) => pack_block(m, p0..p0 + kc, j0..j0 + nb, nr, b_block),
                        Rhs::Shifted { .. } => {}
                    }
                }
                let rows_start = rows.start;
                for i0 in rows.clone().step_by(mr) {
                    let mv = mr.min(rows.end - i0);
                    let strip = match a {
                        Lhs::Packed(packed) => packed.strip(i0, p0),
                        Lhs::Matrix { a, alpha } => {
                            // SAFETY: the strip lies inside A by the caller's contract.
                            unsafe { pack_a(a, alpha, i0..i0 + mv, p0..p0 + kc, mr, a_strip) };
                            &a_strip[..kc * mr]
                        }
                    };
                    for (q, j, nv) in panels() {
                        // SAFETY: the tile's rows `< mv` and columns `< nv` lie inside C; its
                        // panel holds `kc` rows of `nr` (in place: the caller's slack covers
                        // the columns past `nv`).
                        unsafe {
                            let at = c.add(i0 * ldc + j);
                            // Whole panels of in-place rows go through the shifted kernel; a
                            // partial one is packed first (for the first strip; later strips
                            // find it packed).
                            let (b, b_rows, tile, narrow) = match b {
                                Rhs::Shifted { x, rows } if nv == nr => {
                                    let shifted = kernel.shifted.expect("checked by gemm_with");
                                    (x.add(j), rows[p0..].as_ptr(), shifted, None)
                                }
                                Rhs::Shifted { x, rows } => {
                                    if i0 == rows_start {
                                        pack_rows(x.add(j), &rows[p0..p0 + kc], nv, nr, b_block);
                                    }
                                    (b_block.as_ptr(), std::ptr::null(), kernel.tile, kernel.narrow)
                                }
                                _ => {
                                    let panel = b_block.as_ptr().add(q * panel_pitch(kc, nr));
                                    (panel, std::ptr::null(), kernel.tile, kernel.narrow)
                                }
                            };
                            let epilogue = match epilogue {
                                Some(e) if p0 + kc == k => e.at(i0, j, ldc),
                                _ => Epilogue::NONE,
                            };
                            let whole =
                                Tile { kc, a: strip.as_ptr(), b, b_rows, c: at, ldc, rows: mv, add: p0 > 0, epilogue };
                            if nv == nr {
                                tile(&whole);
                            } else if let Some(narrow) = narrow {
                                narrow(&whole, nv);
                            } else {
                                let epilogue = Epilogue::NONE;
                                tile(&Tile { c: scratch.as_mut_ptr(), ldc: nr, add: false, epilogue, ..whole });
                                for (i, part) in scratch.chunks_exact(nr).take(mv).enumerate() {
                                    let out = std::slice::from_raw_parts_mut(at.add(i * ldc), nv);
                                    for (o, &s) in out.iter_mut().zip(part) {
                                        *o = if p0 > 0 { *o + s } else { s };
                                    }
                                }
                                whole.epilogue.apply(at, ldc, 0..mv, 0..nv);
                            }
                        }
                    }
                }
            }
        }
    });
}

/// Packs `A[rows, depth] · alpha` as `dst[p·mr + i]`, zero rows past the end.
unsafe fn pack_a(a: Strided, alpha: f32, rows: Range<usize>, depth: Range<usize>, mr: usize, dst: &mut [f32]) {
    let mut starts = [std::ptr::null::<f32>(); MAX_MR];
    for (start, i) in starts.iter_mut().zip(rows.clone()) {
        // SAFETY: row `i`, columns `depth` of A are in bounds.
        *start = unsafe { a.ptr.offset(i as isize * a.rs + depth.start as isize * a.cs) };
    }
    let starts = &starts[..rows.len()];
    // A whole strip of rows that are contiguous along the depth (a row-major A) goes eight
    // depth steps at a time, by a transpose in registers. Element by element, packing took 11%
    // of a 512³ product whose A is a run-time input.
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if mr == 8 && starts.len() == 8 && a.cs == 1 && std::arch::is_x86_feature_detected!("avx") {
        done = depth.len() / 8 * 8;
        for p in (0..done).step_by(8) {
            let rows: [*const f32; 8] = std::array::from_fn(|i| starts[i].wrapping_add(p));
            // SAFETY: AVX was just detected; each row holds the depth steps `p..p + 8`, and
            // `dst` the strip's `depth.len()·8` values.
            unsafe { avx::transpose8(rows, alpha, dst[p * 8..][..64].as_mut_ptr()) };
        }
    }
    for (p, out) in dst[..depth.len() * mr].chunks_exact_mut(mr).enumerate().skip(done) {
        let at = p as isize * a.cs;
        for (o, &row) in out.iter_mut().zip(starts) {
            // SAFETY: as above.
            *o = alpha * unsafe { *row.offset(at) };
        }
        out[starts.len()..].fill(0.0);
    }
}

/// Where panel `q + 1` of a block starts relative to panel `q`: `kc` rows of `nr`, plus a
/// cache line so that consecutive panels do not start 4 KiB apart (packing writes one row of
/// every panel in turn, and stores that far apart all land in the same few L1 sets).
fn panel_pitch(kc: usize, nr: usize) -> usize {
    kc * nr + LINE_VALUES
}

/// Packs rows `depth`, columns `cols` of the matrix `m` into panels of `nr` columns
/// (`block[q·pitch + p·nr + j]`, zeros past `cols`), reading along whichever axis of `m` is
/// contiguous.
unsafe fn pack_block(m: Strided, depth: Range<usize>, cols: Range<usize>, nr: usize, block: &mut [f32]) {
    let kc = depth.len();
    let pitch = panel_pitch(kc, nr);
    // SAFETY (both arms): rows `depth` and columns `cols` of `m` are in bounds.
    if m.cs == 1 {
        for (p, d) in depth.enumerate() {
            let row = unsafe {
                std::slice::from_raw_parts(m.ptr.offset(d as isize * m.rs + cols.start as isize), cols.len())
            };
            spread_row(row, p, kc, nr, block);
        }
    } else {
        for q in 0..cols.len().div_ceil(nr) {
            let panel = &mut block[q * pitch..][..kc * nr];
            for j in 0..nr.min(cols.len() - q * nr) {
                let col =
                    unsafe { m.ptr.offset((cols.start + q * nr + j) as isize * m.cs + depth.start as isize * m.rs) };
                for (p, line) in panel.chunks_exact_mut(nr).enumerate() {
                    line[j] = unsafe { *col.offset(p as isize * m.rs) };
                }
            }
        }
    }
    zero_tail(block, kc, cols.len(), nr);
}

/// Packs the first `width` values of each row `x + rows[p]` as one panel of `nr` columns
/// (`panel[p·nr + j]`, zeros past `width`).
///
/// # Safety
/// Each row holds `width` values.
unsafe fn pack_rows(x: *const f32, rows: &[isize], width: usize, nr: usize, panel: &mut [f32]) {
    for (&at, line) in rows.iter().zip(panel.chunks_exact_mut(nr)) {
        // SAFETY: forwarded.
        line[..width].copy_from_slice(unsafe { std::slice::from_raw_parts(x.offset(at), width) });
        line[width..].fill(0.0);
    }
}

/// Zeros the columns of the last panel past `width`.
fn zero_tail(block: &mut [f32], kc: usize, width: usize, nr: usize) {
    let tail = width % nr;
    if tail != 0 {
        for line in block[width / nr * panel_pitch(kc, nr)..][..kc * nr].chunks_exact_mut(nr) {
            line[tail..].fill(0.0);
        }
    }
}

/// Packs rows `depth`, columns `cols` of the im2col matrix of the planes at `x` into panels of
/// `nr` columns (`block[q·pitch + p·nr + j]`, zeros past `cols`). Each depth row is unfolded
/// into `line` first, one output row at a time (the window's bounds worked out once per output
/// row, the input copied in runs), then spread over the panels.
unsafe fn unfold_block(
    x: *const f32,
    win: &Window,
    depth: Range<usize>,
    cols: Range<usize>,
    nr: usize,
    line: &mut [f32],
    block: &mut [f32],
) {
    let kc = depth.len();
    let line = &mut line[..cols.len()];
    let taps = win.kh * win.kw;
    let (sx, sy, dy) = (win.stride[1], win.stride[0], win.dilation[0]);
    for (p, d) in depth.enumerate() {
        let (ch, ki, kj) = (d / taps, (d / win.kw) % win.kh, d % win.kw);
        let offset = kj * win.dilation[1];
        // SAFETY: channel `ch` is one of the window's planes.
        let plane = unsafe { std::slice::from_raw_parts(x.add(ch * win.h * win.w), win.h * win.w) };
        let (mut oy, mut ox, mut at) = (cols.start / win.ow, cols.start % win.ow, 0);
        while at < line.len() {
            let len = (win.ow - ox).min(line.len() - at);
            let out = &mut line[at..at + len];
            match (oy * sy + ki * dy).checked_sub(win.pad[0]).filter(|&iy| iy < win.h) {
                None => zero_short(out),
                Some(iy) => sample_row(out, &plane[iy * win.w..][..win.w], ox, sx, win.pad[1], offset),
            }
            at += len;
            (oy, ox) = (oy + 1, 0);
        }
        spread_row(line, p, kc, nr, block);
    }
    zero_tail(block, kc, cols.len(), nr);
}

/// `out[t] = row[(o0 + t)·stride + offset − pad]`, or 0 where that index is outside the row:
/// a run of outputs `o0..` of a window's tap `offset` sliding along one input row.
pub(crate) fn sample_row(out: &mut [f32], row: &[f32], o0: usize, stride: usize, pad: usize, offset: usize) {
    // Outputs `lo..hi` of the run read inside the row.
    let (lo, hi, _) = valid_span(o0 + out.len(), row.len(), stride, pad, offset);
    let (lo, hi) = (lo.max(o0) - o0, hi.max(o0) - o0);
    zero_short(&mut out[..lo]);
    zero_short(&mut out[hi..]);
    if lo < hi {
        let first = (o0 + lo) * stride + offset - pad;
        if stride == 1 {
            copy_short(&mut out[lo..hi], &row[first..first + (hi - lo)]);
        } else {
            copy_strided(&mut out[lo..hi], &row[first..], stride);
        }
    }
}

/// `dst.copy_from_slice(src)` for the few elements of one output row. A `memcpy` call per run
/// cost more than the copy (and plain loops are turned back into that call), so with AVX-512
/// the run is copied sixteen lanes at a time, the last chunk under a mask.
fn copy_short(dst: &mut [f32], src: &[f32]) {
    assert_eq!(dst.len(), src.len(), "runs of equal length");
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: AVX-512F was just detected; both slices hold `dst.len()` elements.
        return unsafe { avx512::copy(dst.as_mut_ptr(), Some(src.as_ptr()), dst.len()) };
    }
    dst.copy_from_slice(src);
}

/// `dst[t] = src[t·stride]`. Stride 2 (the first convolution of most image models) goes
/// sixteen lanes at a time with AVX-512: two loads and one two-source permute per sixteen values.
fn copy_strided(dst: &mut [f32], src: &[f32], stride: usize) {
    if dst.is_empty() {
        return;
    }
    assert!(src.len() > (dst.len() - 1) * stride, "the source holds every strided element");
    #[cfg(target_arch = "x86_64")]
    if stride == 2 && std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: AVX-512F was just detected; the extents were checked above.
        return unsafe { avx512::copy_stride2(dst.as_mut_ptr(), dst.len(), src.as_ptr(), src.len()) };
    }
    for (t, d) in dst.iter_mut().enumerate() {
        *d = src[t * stride];
    }
}

/// `dst.fill(0.0)` for a few elements (as [`copy_short`]).
fn zero_short(dst: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: AVX-512F was just detected; `dst` holds `dst.len()` elements.
        return unsafe { avx512::copy(dst.as_mut_ptr(), None, dst.len()) };
    }
    dst.fill(0.0);
}

#[cfg(target_arch = "x86_64")]
mod avx {
    use std::arch::x86_64::*;

    /// `dst[8·k + i] = alpha · rows[i][k]` for `i, k < 8`: eight depth steps of eight rows of A,
    /// packed as the micro-kernel reads them (the usual 8×8 transpose: pairs interleaved, then
    /// quadruples, then the 128-bit halves swapped).
    ///
    /// # Safety
    /// The CPU has AVX; each row holds eight values and `dst` sixty-four.
    #[target_feature(enable = "avx")]
    pub(super) unsafe fn transpose8(rows: [*const f32; 8], alpha: f32, dst: *mut f32) {
        let scale = _mm256_set1_ps(alpha);
        // SAFETY: each row holds eight values.
        let r = rows.map(|row| _mm256_mul_ps(unsafe { _mm256_loadu_ps(row) }, scale));
        let pairs = |a: usize| [_mm256_unpacklo_ps(r[a], r[a + 1]), _mm256_unpackhi_ps(r[a], r[a + 1])];
        let (t01, t23, t45, t67) = (pairs(0), pairs(2), pairs(4), pairs(6));
        // Rows 0–3 (then 4–7) of depth steps k and k + 4, for k = 0, 1, 2, 3.
        let quads = |lo: [__m256; 2], hi: [__m256; 2]| {
            [
                _mm256_shuffle_ps::<0x44>(lo[0], hi[0]),
                _mm256_shuffle_ps::<0xEE>(lo[0], hi[0]),
                _mm256_shuffle_ps::<0x44>(lo[1], hi[1]),
                _mm256_shuffle_ps::<0xEE>(lo[1], hi[1]),
            ]
        };
        let (top, bottom) = (quads(t01, t23), quads(t45, t67));
        for k in 0..4 {
            // SAFETY: `dst` holds sixty-four values.
            unsafe {
                _mm256_storeu_ps(dst.add(8 * k), _mm256_permute2f128_ps::<0x20>(top[k], bottom[k]));
                _mm256_storeu_ps(dst.add(8 * (k + 4)), _mm256_permute2f128_ps::<0x31>(top[k], bottom[k]));
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    /// Copies `len` values from `src` (zeros when `None`) to `dst`; masked lanes are neither
    /// read nor written.
    ///
    /// # Safety
    /// The CPU has AVX-512F; `dst` (and `src`) hold `len` elements.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn copy(dst: *mut f32, src: Option<*const f32>, len: usize) {
        let mut at = 0;
        while at < len {
            let mask = lanes(len - at);
            // SAFETY: lanes under the mask are at indices below `len`.
            unsafe {
                let v = match src {
                    Some(s) => _mm512_maskz_loadu_ps(mask, s.add(at)),
                    None => _mm512_setzero_ps(),
                };
                _mm512_mask_storeu_ps(dst.add(at), mask, v);
            }
            at += 16;
        }
    }

    /// The lanes below `n` (all sixteen from 16 on).
    fn lanes(n: usize) -> __mmask16 {
        if n >= 16 {
            !0
        } else {
            (1 << n) - 1
        }
    }

    /// `dst[t] = src[2t]` for `t < len`; `src` holds `src_len ≥ 2·len − 1` elements, and no lane
    /// at or past `src_len` is read.
    ///
    /// # Safety
    /// The CPU has AVX-512F; `dst` holds `len` elements and `src` `src_len`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn copy_stride2(dst: *mut f32, len: usize, src: *const f32, src_len: usize) {
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let mut t = 0;
        while t < len {
            let (base, left) = (2 * t, src_len - 2 * t);
            // SAFETY: the masks admit only lanes below `src_len` (loads) and `len` (store); a
            // pointer past the end is formed with wrapping arithmetic and never dereferenced.
            unsafe {
                let a = _mm512_maskz_loadu_ps(lanes(left), src.add(base));
                let b = _mm512_maskz_loadu_ps(lanes(left.saturating_sub(16)), src.wrapping_add(base + 16));
                _mm512_mask_storeu_ps(dst.add(t), lanes(len - t), _mm512_permutex2var_ps(a, even, b));
            }
            t += 16;
        }
    }
}

/// Writes `row` as packed row `p` of consecutive panels of `nr` columns.
fn spread_row(row: &[f32], p: usize, kc: usize, nr: usize, block: &mut [f32]) {
    /// Fixed-width chunks, so each copy is a few vector moves rather than a call.
    fn spread<const N: usize>(row: &[f32], p: usize, kc: usize, block: &mut [f32]) {
        let chunks = row.chunks_exact(N);
        let rest = chunks.remainder();
        for (q, chunk) in chunks.enumerate() {
            block[q * panel_pitch(kc, N) + p * N..][..N].copy_from_slice(chunk);
        }
        if !rest.is_empty() {
            let q = row.len() / N;
            for (d, &v) in block[q * panel_pitch(kc, N) + p * N..][..rest.len()].iter_mut().zip(rest) {
                *d = v;
            }
        }
    }
    match nr {
        8 => spread::<8>(row, p, kc, block),
        16 => spread::<16>(row, p, kc, block),
        32 => spread::<32>(row, p, kc, block),
        _ => unreachable!("micro-kernels are 8, 16 or 32 columns wide"),
    }
}

/// One row or one column of C (or an empty depth): dot products, or for one row of C over a
/// row-major B, `c += a_p · B[p, :]` row after row, so B is read once in order.
#[allow(clippy::too_many_arguments)]
unsafe fn matrix_vector(
    rows: Range<usize>,
    cols: Range<usize>,
    k: usize,
    alpha: f32,
    a: Strided,
    b: Strided,
    c: *mut f32,
    ldc: usize,
) {
    // SAFETY (whole body): every index below is inside the extents the caller vouched for.
    unsafe {
        if rows.len() == 1 && b.cs == 1 && cols.len() > 1 && k > 0 {
            let i = rows.start;
            let out = std::slice::from_raw_parts_mut(c.add(i * ldc + cols.start), cols.len());
            out.fill(0.0);
            for p in 0..k {
                let s = alpha * *a.ptr.offset(i as isize * a.rs + p as isize * a.cs);
                let line =
                    std::slice::from_raw_parts(b.ptr.offset(p as isize * b.rs + cols.start as isize), cols.len());
                for (o, &v) in out.iter_mut().zip(line) {
                    *o += s * v;
                }
            }
            return;
        }
        for i in rows {
            for j in cols.clone() {
                let x = Strided { ptr: a.ptr.offset(i as isize * a.rs), rs: a.cs, cs: 0 };
                let y = Strided { ptr: b.ptr.offset(j as isize * b.cs), rs: b.rs, cs: 0 };
                *c.add(i * ldc + j) = alpha * dot(x, y, k);
            }
        }
    }
}

/// `Σ_{p<k} x[p·x.rs] · y[p·y.rs]`, sixteen partial sums when both are contiguous.
unsafe fn dot(x: Strided, y: Strided, k: usize) -> f32 {
    const LANES: usize = 16;
    // SAFETY (whole body): both vectors hold `k` elements at their strides.
    unsafe {
        if x.rs == 1 && y.rs == 1 {
            let (x, y) = (std::slice::from_raw_parts(x.ptr, k), std::slice::from_raw_parts(y.ptr, k));
            let mut acc = [0.0f32; LANES];
            let (xc, yc) = (x.chunks_exact(LANES), y.chunks_exact(LANES));
            let tail: f32 = xc.remainder().iter().zip(yc.remainder()).map(|(a, b)| a * b).sum();
            for (xs, ys) in xc.zip(yc) {
                for ((s, a), b) in acc.iter_mut().zip(xs).zip(ys) {
                    *s += a * b;
                }
            }
            return acc.iter().sum::<f32>() + tail;
        }
        (0..k as isize).map(|p| *x.ptr.offset(p * x.rs) * *y.ptr.offset(p * y.rs)).sum()
    }
}

/// The output positions `o0..o1` whose input index `o·stride + offset − pad` lies in `0..width`,
/// and that first input index.
pub(crate) fn valid_span(out: usize, width: usize, stride: usize, pad: usize, offset: usize) -> (usize, usize, usize) {
    if stride == 1 {
        // The same without divisions (the common case, once per output row in packing).
        let lo = pad.saturating_sub(offset).min(out);
        let hi = (width + pad).saturating_sub(offset).min(out).max(lo);
        return (lo, hi, if lo < hi { lo + offset - pad } else { 0 });
    }
    // first o with o·stride + offset ≥ pad
    let lo = if offset >= pad { 0 } else { (pad - offset).div_ceil(stride) }.min(out);
    // one past the last o with o·stride + offset − pad ≤ width − 1
    let hi = if width + pad <= offset { 0 } else { ((width + pad - offset - 1) / stride + 1).min(out) }.max(lo);
    let first = if lo < hi { lo * stride + offset - pad } else { 0 };
    (lo, hi, first)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::jit::microkernel::all;

    /// Deterministic values in [-1, 1).
    pub(crate) fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// `alpha · A · B` for row-major `m×k` A and `k×n` B, in f64, from the definition.
    fn product(alpha: f64, a: &[f32], b: &[f32], (m, n, k): (usize, usize, usize)) -> Vec<f64> {
        (0..m * n).map(|e| (0..k).map(|p| alpha * a[e / n * k + p] as f64 * b[p * n + e % n] as f64).sum()).collect()
    }

    pub(crate) fn assert_close(got: &[f32], want: &[f64], what: &str) {
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            assert!((g as f64 - w).abs() <= 1e-4 * (1.0 + w.abs()), "{what}: element {i} is {g}, want {w}");
        }
    }

    /// Every kernel, on one and two threads, with A row-major, transposed or pre-packed and B
    /// row-major or transposed, against the definition — shapes with partial tiles, a depth
    /// over `KC`, a width over `NB`, single rows and columns, and an empty depth.
    #[test]
    fn gemm_matches_the_definition() {
        let shapes = [(1, 7, 5), (7, 1, 5), (13, 33, 300), (17, 530, 20), (40, 17, 600), (5, 6, 0), (33, 70, 9)];
        for kernel in all() {
            for threads in [1, 2] {
                let workers = Workers::new(threads).unwrap();
                for (m, n, k) in shapes {
                    let (a, b) = (values(m * k, 1), values(k * n, 2));
                    let want = product(0.5, &a, &b, (m, n, k));
                    let at: Vec<f32> = (0..m * k).map(|e| a[e % m * k + e / m]).collect();
                    let bt: Vec<f32> = (0..k * n).map(|e| b[e % k * n + e / k]).collect();
                    let half: Vec<f32> = a.iter().map(|v| 0.5 * v).collect();
                    let packed = PackedLhs::new(kernel, &half, m, k, KC);
                    let lhs = [
                        Lhs::Matrix { a: Strided { ptr: a.as_ptr(), rs: k as isize, cs: 1 }, alpha: 0.5 },
                        Lhs::Matrix { a: Strided { ptr: at.as_ptr(), rs: 1, cs: m as isize }, alpha: 0.5 },
                        Lhs::Packed(&packed),
                    ];
                    let rhs = [
                        Strided { ptr: b.as_ptr(), rs: n as isize, cs: 1 },
                        Strided { ptr: bt.as_ptr(), rs: 1, cs: k as isize },
                    ];
                    for (l, &a) in lhs.iter().enumerate() {
                        for (r, &b) in rhs.iter().enumerate() {
                            let mut c = vec![f32::NAN; m * n];
                            // SAFETY: the operands and C have exactly the strided extents given.
                            unsafe {
                                gemm_with(kernel, &workers, (m, n, k), a, Rhs::Matrix(b), c.as_mut_ptr(), n, None)
                            };
                            let what = format!(
                                "{}x{} kernel, {threads} threads, {m}x{n}x{k}, lhs {l}, rhs {r}",
                                kernel.mr, kernel.nr
                            );
                            assert_close(&c, &want, &what);
                        }
                    }
                }
            }
        }
    }

    /// Every width of a last, partial panel (the narrow kernels and the scratch tile), with a
    /// partial strip of rows and a depth over `KC` (so later blocks add to C), finished by an
    /// epilogue (bias, residual and ReLU, applied once, after the last block).
    #[test]
    fn every_panel_width_matches_the_definition() {
        let (m, k) = (11, KC + 44);
        let workers = Workers::new(1).unwrap();
        for kernel in all() {
            for n in 2..=2 * kernel.nr + 1 {
                let (a, b, bias, residual) = (values(m * k, 5), values(k * n, 6), values(m, 7), values(m * n, 8));
                let want: Vec<f64> = product(1.0, &a, &b, (m, n, k))
                    .iter()
                    .enumerate()
                    .map(|(e, v)| (v + bias[e / n] as f64 + residual[e] as f64).max(0.0))
                    .collect();
                let packed = PackedLhs::new(kernel, &a, m, k, KC);
                let mut c = vec![f32::NAN; m * n];
                let rhs = Rhs::Matrix(Strided { ptr: b.as_ptr(), rs: n as isize, cs: 1 });
                let epilogue = Epilogue { bias: bias.as_ptr(), residual: residual.as_ptr(), relu: true };
                // SAFETY: the operands, C, bias and residual have exactly the extents given.
                unsafe {
                    gemm_with(
                        kernel,
                        &workers,
                        (m, n, k),
                        Lhs::Packed(&packed),
                        rhs,
                        c.as_mut_ptr(),
                        n,
                        Some(&epilogue),
                    )
                };
                assert_close(&c, &want, &format!("{}x{} kernel, {m}x{n}x{k}", kernel.nr, kernel.mr));
            }
        }
    }

    /// The epilogue's portable rows and whatever `apply` runs on this CPU give the definition,
    /// for every combination of parts and row widths around a vector's.
    #[test]
    fn epilogue_matches_the_definition() {
        let (m, ldc) = (3, 40);
        let (c0, bias, residual) = (values(m * ldc, 13), values(m, 14), values(m * ldc, 15));
        for (with_bias, with_residual, relu) in (0..8).map(|b| (b & 1 == 1, b & 2 == 2, b & 4 == 4)) {
            let e = Epilogue {
                bias: if with_bias { bias.as_ptr() } else { std::ptr::null() },
                residual: if with_residual { residual.as_ptr() } else { std::ptr::null() },
                relu,
            };
            for width in [1, 15, 16, 17, 33, 39] {
                let cols = 1..1 + width;
                let want: Vec<f64> = (0..m * ldc)
                    .map(|e| {
                        let (i, j) = (e / ldc, e % ldc);
                        if !cols.contains(&j) {
                            return c0[e] as f64;
                        }
                        let v = c0[e]
                            + if with_bias { bias[i] } else { 0.0 }
                            + if with_residual { residual[e] } else { 0.0 };
                        (if relu { v.max(0.0) } else { v }) as f64
                    })
                    .collect();
                for portable in [false, true] {
                    let mut c = c0.clone();
                    // SAFETY: C and the residual hold `m` rows of `ldc`, the bias `m` values.
                    unsafe {
                        if portable {
                            e.apply_rows(c.as_mut_ptr(), ldc, 0..m, cols.clone())
                        } else {
                            e.apply(c.as_mut_ptr(), ldc, 0..m, cols.clone())
                        }
                    };
                    assert_close(&c, &want, &format!("{e:?}, width {width}, portable {portable}"));
                }
            }
        }
    }

    /// B read in place, row by row, through every kernel's shifted variant: whole panels and
    /// every width of a last, partial one (packed first), with a depth over `KC_IN_PLACE`.
    #[test]
    fn in_place_rows_match_the_definition() {
        let (m, k) = (13, KC_IN_PLACE + 40);
        let workers = Workers::new(1).unwrap();
        for kernel in all().into_iter().filter(|k| k.shifted.is_some()) {
            for n in [kernel.nr, 2 * kernel.nr + 1, 3 * kernel.nr - 1, 70] {
                let (a, b) = (values(m * k, 11), values(k * n, 12));
                let want = product(1.0, &a, &b, (m, n, k));
                let packed = PackedLhs::new(kernel, &a, m, k, block_depth(k, true));
                let rows: Vec<isize> = (0..k as isize).map(|p| p * n as isize).collect();
                let mut c = vec![f32::NAN; m * n];
                let rhs = Rhs::Shifted { x: b.as_ptr(), rows: &rows };
                // SAFETY: every row holds `n` values, and C `m` rows of `n`.
                unsafe { gemm_with(kernel, &workers, (m, n, k), Lhs::Packed(&packed), rhs, c.as_mut_ptr(), n, None) };
                assert_close(&c, &want, &format!("{}x{} kernel, {m}x{n}x{k} in place", kernel.mr, kernel.nr));
            }
        }
    }

    /// A convolution test case: `(cin, h, w, cout, kh, kw, stride, pad, dilation)`.
    pub(crate) type ConvCase = (usize, usize, usize, usize, usize, usize, [usize; 2], [usize; 2], [usize; 2]);

    /// Cases for the convolution tests: padding (wider than the kernel, or on one side only),
    /// strides 1 to 3, dilation, a one-column kernel, planes narrower than a tile and wider
    /// than a block.
    pub(crate) const CONV_CASES: [ConvCase; 11] = [
        (3, 5, 5, 4, 3, 3, [1, 1], [1, 1], [1, 1]),
        (2, 7, 6, 17, 3, 3, [2, 2], [1, 0], [1, 1]),
        (4, 9, 9, 5, 3, 3, [1, 1], [2, 2], [2, 2]),
        (1, 30, 40, 3, 5, 5, [1, 1], [2, 2], [1, 1]),
        (2, 8, 8, 3, 7, 7, [3, 2], [3, 3], [1, 1]),
        (3, 4, 4, 2, 2, 2, [1, 1], [0, 0], [1, 1]),
        (3, 41, 45, 4, 7, 7, [2, 2], [3, 3], [1, 1]),
        (2, 12, 38, 3, 3, 3, [2, 2], [0, 1], [1, 1]),
        (2, 9, 20, 3, 3, 3, [2, 1], [1, 2], [1, 2]),
        (1, 7, 7, 2, 5, 3, [1, 1], [2, 9], [1, 1]),
        (3, 6, 20, 4, 7, 1, [1, 1], [3, 0], [1, 1]),
    ];

    /// The window of a case (symmetric padding).
    pub(crate) fn case_window(
        h: usize,
        w: usize,
        kh: usize,
        kw: usize,
        stride: [usize; 2],
        pad: [usize; 2],
        dilation: [usize; 2],
    ) -> Window {
        let oh = (h + 2 * pad[0] - dilation[0] * (kh - 1) - 1) / stride[0] + 1;
        let ow = (w + 2 * pad[1] - dilation[1] * (kw - 1) - 1) / stride[1] + 1;
        Window { h, w, oh, ow, kh, kw, stride, pad, dilation }
    }

    /// One image's convolution from its definition, in f64: `x` holds `cin` planes, `wt` is
    /// `[cout, cin/groups, kh, kw]`.
    pub(crate) fn conv_definition(
        x: &[f32],
        wt: &[f32],
        cin: usize,
        cout: usize,
        groups: usize,
        win: &Window,
    ) -> Vec<f64> {
        let Window { h, w, oh, ow, kh, kw, stride, pad, dilation } = *win;
        let (cin_g, cout_g) = (cin / groups, cout / groups);
        let mut want = vec![0.0f64; cout * oh * ow];
        for (e, out) in want.iter_mut().enumerate() {
            let (co, oy, ox) = (e / (oh * ow), e / ow % oh, e % ow);
            for (c, i, j) in (0..cin_g).flat_map(|c| (0..kh).flat_map(move |i| (0..kw).map(move |j| (c, i, j)))) {
                let iy = (oy * stride[0] + i * dilation[0]) as isize - pad[0] as isize;
                let ix = (ox * stride[1] + j * dilation[1]) as isize - pad[1] as isize;
                if (0..h as isize).contains(&iy) && (0..w as isize).contains(&ix) {
                    let plane = co / cout_g * cin_g + c;
                    *out += wt[((co * cin_g + c) * kh + i) * kw + j] as f64
                        * x[(plane * h + iy as usize) * w + ix as usize] as f64;
                }
            }
        }
        want
    }

    /// The unfolded right-hand side against a convolution written from its definition.
    #[test]
    fn unfolded_convolution_matches_the_definition() {
        for kernel in all() {
            for (cin, h, w, cout, kh, kw, stride, pad, dilation) in CONV_CASES {
                let win = case_window(h, w, kh, kw, stride, pad, dilation);
                let (x, wt) = (values(cin * h * w, 3), values(cout * cin * kh * kw, 4));
                let want = conv_definition(&x, &wt, cin, cout, 1, &win);
                let (k, n) = (cin * kh * kw, win.oh * win.ow);
                let packed = PackedLhs::new(kernel, &wt, cout, k, KC);
                let mut y = vec![f32::NAN; cout * n];
                let workers = Workers::new(1).unwrap();
                let rhs = Rhs::Unfold { x: x.as_ptr(), window: &win };
                // SAFETY: `x` holds `cin` planes of the window, `y` `cout` output planes.
                unsafe {
                    gemm_with(kernel, &workers, (cout, n, k), Lhs::Packed(&packed), rhs, y.as_mut_ptr(), n, None)
                };
                assert_close(&y, &want, &format!("{}x{} kernel, {win:?}", kernel.mr, kernel.nr));
            }
        }
    }

    #[test]
    fn valid_span_matches_a_scan() {
        for (out, width, stride, pad, offset) in (0..6).flat_map(|o| {
            (1..6).flat_map(move |w| {
                (1..4).flat_map(move |s| (0..4).flat_map(move |p| (0..7).map(move |f| (o, w, s, p, f))))
            })
        }) {
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
