//! Sliding windows over one NCHW plane: depthwise convolution (a weighted sum per window), max
//! pooling and sum pooling. Where no window reaches past the plane, its rows are read in place;
//! otherwise the plane is first copied into a padded scratch (zeros, or −∞ for max), a vector at
//! a time, so the loop over outputs has no bounds tests (the last few rows of an unpadded plane
//! go that way too, where a vector load would run past its end). Outputs are then
//! computed a vector at a time (sixteen with AVX-512, eight with AVX2/FMA, chosen at run time),
//! four output rows side by side, with every tap of the window summed in registers and one store
//! per vector. The loop is specialized for column strides 1 and 2, and also compiled portably.

use kiln_ir::op::Geometry;
use std::cell::RefCell;

/// Geometry of a 2-D window over a plane.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    /// Input plane rows and columns.
    pub h: usize,
    pub w: usize,
    /// Output plane rows and columns.
    pub oh: usize,
    pub ow: usize,
    /// Window rows and columns.
    pub kh: usize,
    pub kw: usize,
    pub stride: [usize; 2],
    /// Padding before the first row and column (padding after is implied by the output size).
    pub pad: [usize; 2],
    pub dilation: [usize; 2],
}

/// What a window computes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Reduce<'a> {
    /// `bias + Σ weights[ki·kw + kj] · x` (one depthwise filter).
    Dot { weights: &'a [f32], bias: f32 },
    /// `max x` (padding never wins).
    Max,
    /// `Σ x` (padding adds nothing).
    Sum,
}

impl Reduce<'_> {
    /// The value before any tap.
    fn initial(self) -> f32 {
        match self {
            Reduce::Dot { bias, .. } => bias,
            Reduce::Max => f32::NEG_INFINITY,
            Reduce::Sum => 0.0,
        }
    }
}

/// An instruction set the window loop is compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Isa {
    Avx512,
    Avx2,
    Portable,
}

impl Isa {
    /// Every one this CPU runs, fastest first.
    fn available() -> Vec<Isa> {
        let mut all = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                all.push(Isa::Avx512);
            }
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                all.push(Isa::Avx2);
            }
        }
        all.push(Isa::Portable);
        all
    }

    /// The fastest, found once per process.
    fn best() -> Isa {
        static BEST: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
        *BEST.get_or_init(|| Isa::available()[0])
    }
}

/// The most outputs a kernel computes together (the padded rows leave room for a last block).
const LANES: usize = 16;

/// Output rows computed side by side.
const ROWS: usize = 4;

thread_local! {
    /// Each worker's padded plane, grown once and reused across runs.
    static PADDED: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

impl Window {
    /// The window of a resolved 2-D Conv or pooling over planes of `input` (rows, columns).
    pub(crate) fn from_geometry(input: &[usize], geo: &Geometry) -> Window {
        Window {
            h: input[0],
            w: input[1],
            oh: geo.output[0],
            ow: geo.output[1],
            kh: geo.kernel[0],
            kw: geo.kernel[1],
            stride: [geo.strides[0], geo.strides[1]],
            pad: [geo.pads_begin[0], geo.pads_begin[1]],
            dilation: [geo.dilations[0], geo.dilations[1]],
        }
    }

    /// Rows and row pitch of the padded plane: every row a window reaches, and every column the
    /// last block of `LANES` outputs reads (a stride-s block loads `LANES·s` elements).
    fn padded_extent(&self) -> (usize, usize) {
        let rows = (self.oh - 1) * self.stride[0] + (self.kh - 1) * self.dilation[0] + 1;
        let pitch = self.ow.div_ceil(LANES) * LANES * self.stride[1] + (self.kw - 1) * self.dilation[1];
        (rows, pitch)
    }

    /// `dst[oy·ow + ox] = ⊕ over the window at (oy, ox)` for one plane `src` (`h·w` values) into
    /// `dst` (`oh·ow` values).
    pub(crate) fn plane(&self, reduce: Reduce, src: &[f32], dst: &mut [f32]) {
        self.plane_on(Isa::best(), reduce, src, dst)
    }

    /// [`Window::plane`] on a given instruction set (tests run each one the CPU has).
    fn plane_on(&self, isa: Isa, reduce: Reduce, src: &[f32], dst: &mut [f32]) {
        debug_assert_eq!((src.len(), dst.len()), (self.h * self.w, self.oh * self.ow));
        if let Reduce::Dot { weights, .. } = reduce {
            assert_eq!(weights.len(), self.kh * self.kw, "one weight per tap");
        }
        if dst.is_empty() {
            return;
        }
        let in_place = self.rows_in_place();
        let (top, rest) = dst.split_at_mut(in_place * self.ow);
        if in_place > 0 {
            Window { oh: in_place, ..*self }.rows_on(isa, reduce, src, self.w, top);
        }
        if !rest.is_empty() {
            // The rows below read the plane from the first input row they reach (no padding
            // above them: either the plane has none, or no row was read in place).
            let skip = in_place * self.stride[0];
            let below = Window { h: self.h - skip, oh: self.oh - in_place, ..*self };
            below.padded_on(isa, reduce, &src[skip * self.w..], rest);
        }
    }

    /// How many output rows, from the first, read their windows straight from the plane: none
    /// when any window reaches past the plane's edge (padding, or a ceil-mode output), else the
    /// rows whose every vector load stays inside the plane (a row's blocks read up to the
    /// padded pitch past the row's start).
    fn rows_in_place(&self) -> usize {
        let ([sy, sx], [dy, dx]) = (self.stride, self.dilation);
        let inside = self.pad == [0, 0]
            && (self.oh - 1) * sy + (self.kh - 1) * dy < self.h
            && (self.ow - 1) * sx + (self.kw - 1) * dx < self.w;
        let (_, reach) = self.padded_extent();
        match (self.h * self.w).checked_sub(reach) {
            // The last input row a window may start its loads on, then the output rows whose
            // windows end on or above it.
            Some(room) if inside => {
                (room / self.w).checked_sub((self.kh - 1) * dy).map_or(0, |last| (last / sy + 1).min(self.oh))
            }
            _ => 0,
        }
    }

    /// The window over a copy of the plane with its padding around it.
    fn padded_on(&self, isa: Isa, reduce: Reduce, src: &[f32], dst: &mut [f32]) {
        PADDED.with(|padded| {
            let mut scratch = padded.borrow_mut();
            let (rows, pitch) = self.padded_extent();
            let fill = if matches!(reduce, Reduce::Max) { f32::NEG_INFINITY } else { 0.0 };
            if scratch.len() < rows * pitch {
                scratch.resize(rows * pitch, fill);
            }
            let padded = &mut scratch[..rows * pitch];
            #[cfg(target_arch = "x86_64")]
            {
                // SAFETY: `Isa` admits only instruction sets this CPU has.
                match isa {
                    Isa::Avx512 => unsafe { avx512::pad(self, src, padded, pitch, fill) },
                    Isa::Avx2 => unsafe { avx2::pad(self, src, padded, pitch, fill) },
                    Isa::Portable => self.pad_portable(src, padded, pitch, fill),
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            self.pad_portable(src, padded, pitch, fill);
            self.rows_on(isa, reduce, padded, pitch, dst)
        })
    }

    /// Every output row from `plane`, which holds the window's rows at `pitch` with room for
    /// every load (the padded copy, or the plane itself for [`Window::rows_in_place`]).
    fn rows_on(&self, isa: Isa, reduce: Reduce, plane: &[f32], pitch: usize, dst: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        {
            macro_rules! on {
                ($module:ident) => {
                    // SAFETY: `Isa` admits only instruction sets this CPU has.
                    return unsafe {
                        match self.stride[1] {
                            1 => $module::plane::<1>(self, reduce, plane, pitch, dst),
                            2 => $module::plane::<2>(self, reduce, plane, pitch, dst),
                            _ => $module::plane::<0>(self, reduce, plane, pitch, dst),
                        }
                    }
                };
            }
            match isa {
                Isa::Avx512 => on!(avx512),
                Isa::Avx2 => on!(avx2),
                Isa::Portable => {}
            }
        }
        self.plane_portable(reduce, plane, pitch, dst)
    }

    /// Copies the plane into `padded` (rows of `pitch`) with `fill` around it: each element is
    /// written once, the input where the plane has it, padding elsewhere.
    fn pad_portable(&self, src: &[f32], padded: &mut [f32], pitch: usize, fill: f32) {
        let left = self.pad[1].min(pitch);
        let cols = self.w.min(pitch - left);
        for (r, line) in padded.chunks_exact_mut(pitch).enumerate() {
            match r.checked_sub(self.pad[0]).filter(|&iy| iy < self.h) {
                Some(iy) => {
                    line[..left].fill(fill);
                    line[left..left + cols].copy_from_slice(&src[iy * self.w..iy * self.w + cols]);
                    line[left + cols..].fill(fill);
                }
                None => line.fill(fill),
            }
        }
    }

    fn plane_portable(&self, reduce: Reduce, padded: &[f32], pitch: usize, dst: &mut [f32]) {
        let [sy, sx] = self.stride;
        let [dy, dx] = self.dilation;
        for (oy, out) in dst.chunks_exact_mut(self.ow).enumerate() {
            for (ox, o) in out.iter_mut().enumerate() {
                let mut acc = reduce.initial();
                for ki in 0..self.kh {
                    let row = &padded[(oy * sy + ki * dy) * pitch..];
                    for kj in 0..self.kw {
                        let x = row[ox * sx + kj * dx];
                        acc = match reduce {
                            Reduce::Dot { weights, .. } => acc + weights[ki * self.kw + kj] * x,
                            Reduce::Max => acc.max(x),
                            Reduce::Sum => acc + x,
                        };
                    }
                }
                *o = acc;
            }
        }
    }
}

/// The window loop for one instruction set: `$lanes` outputs at a time, all taps in registers.
/// Its `plane::<SX>` is specialized for column stride `SX` (0: the stride in `win`, read by a
/// gather); `$load2` reads every other element of `2·$lanes` (stride 2).
#[cfg(target_arch = "x86_64")]
macro_rules! window_kernel {
    ($module:ident, $features:literal, $lanes:literal, $vec:ty, $load:ident, $store:ident, $set1:ident,
     $fma:ident, $max:ident, $add:ident, $load2:ident, $gather:ident, $load_within:ident, $store_first:ident) => {
        mod $module {
            use super::{Reduce, Window, ROWS};
            use std::arch::x86_64::*;

            const LANES: usize = $lanes;

            /// [`Window::pad_portable`] a vector at a time (a small plane's rows are too short
            /// for calls to `memcpy` to pay).
            ///
            /// # Safety
            /// The CPU has the enabled features.
            #[target_feature(enable = $features)]
            pub(super) unsafe fn pad(win: &Window, src: &[f32], padded: &mut [f32], pitch: usize, fill: f32) {
                let fill = $set1(fill);
                let w = win.w as isize;
                for (r, line) in padded.chunks_exact_mut(pitch).enumerate() {
                    let row = r
                        .checked_sub(win.pad[0])
                        .filter(|&iy| iy < win.h)
                        .map(|iy| src[iy * win.w..][..win.w].as_ptr());
                    for j in (0..pitch).step_by(LANES) {
                        // Lane `l` takes column `from + l` of the row, where there is one.
                        let from = j as isize - win.pad[1] as isize;
                        // SAFETY: only the row's columns [0, w) are read, and line[j..pitch] written.
                        unsafe {
                            let v = match row {
                                Some(row) => super::$load_within(row.wrapping_offset(from), -from, w - from, fill),
                                None => fill,
                            };
                            let at = line.as_mut_ptr().add(j);
                            match pitch - j {
                                n if n >= LANES => $store(at, v),
                                n => super::$store_first(at, n, v),
                            }
                        }
                    }
                }
            }

            /// # Safety
            /// The CPU has the enabled features.
            #[target_feature(enable = $features)]
            pub(super) unsafe fn plane<const SX: usize>(
                win: &Window,
                reduce: Reduce,
                padded: &[f32],
                pitch: usize,
                dst: &mut [f32],
            ) {
                match reduce {
                    Reduce::Dot { weights, bias } => {
                        blocks::<SX>(win, padded, pitch, dst, $set1(bias), |acc, x, t| $fma($set1(weights[t]), x, acc))
                    }
                    Reduce::Max => {
                        blocks::<SX>(win, padded, pitch, dst, $set1(f32::NEG_INFINITY), |acc, x, _| $max(acc, x))
                    }
                    Reduce::Sum => blocks::<SX>(win, padded, pitch, dst, $set1(0.0), |acc, x, _| $add(acc, x)),
                }
            }

            #[target_feature(enable = $features)]
            fn blocks<const SX: usize>(
                win: &Window,
                padded: &[f32],
                pitch: usize,
                dst: &mut [f32],
                init: $vec,
                tap: impl Fn($vec, $vec, usize) -> $vec + Copy,
            ) {
                let mut rows = dst.chunks_exact_mut(ROWS * win.ow);
                for (group, out) in (&mut rows).enumerate() {
                    rows_at::<SX, ROWS>(win, padded, pitch, group * ROWS, out, init, tap);
                }
                let done = win.oh / ROWS * ROWS;
                for (oy, out) in rows.into_remainder().chunks_exact_mut(win.ow).enumerate() {
                    rows_at::<SX, 1>(win, padded, pitch, done + oy, out, init, tap);
                }
            }

            /// Output rows `oy..oy + R` into `out`, their vectors computed side by side: each is
            /// a chain of dependent taps, and independent chains keep the vector units busy.
            #[target_feature(enable = $features)]
            fn rows_at<const SX: usize, const R: usize>(
                win: &Window,
                padded: &[f32],
                pitch: usize,
                oy: usize,
                out: &mut [f32],
                init: $vec,
                tap: impl Fn($vec, $vec, usize) -> $vec,
            ) {
                let [sy, sx] = win.stride;
                let [dy, dx] = win.dilation;
                let ow = win.ow;
                debug_assert_eq!(out.len(), R * ow);
                // Reads padded[at + i·sx] for i < LANES; `padded_extent` keeps the last one in bounds.
                let load = |at: usize| -> $vec {
                    debug_assert!(at + if SX == 2 { 2 * LANES - 1 } else { (LANES - 1) * sx } < padded.len());
                    // SAFETY: every block's reads lie within its padded rows (see `padded_extent`).
                    unsafe {
                        let p = padded.as_ptr().add(at);
                        match SX {
                            1 => $load(p),
                            2 => super::$load2(p),
                            _ => super::$gather(p, sx),
                        }
                    }
                };
                for ox in (0..ow).step_by(LANES) {
                    let mut acc = [init; R];
                    for ki in 0..win.kh {
                        let row = (oy * sy + ki * dy) * pitch + ox * sx;
                        for kj in 0..win.kw {
                            for (r, acc) in acc.iter_mut().enumerate() {
                                *acc = tap(*acc, load(row + r * sy * pitch + kj * dx), ki * win.kw + kj);
                            }
                        }
                    }
                    for (r, acc) in acc.into_iter().enumerate() {
                        // SAFETY: out[r·ow + ox..][..n] is in bounds.
                        unsafe {
                            let at = out.as_mut_ptr().add(r * ow + ox);
                            match ow - ox {
                                n if n >= LANES => $store(at, acc),
                                n => super::$store_first(at, n, acc),
                            }
                        }
                    }
                }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

#[cfg(target_arch = "x86_64")]
window_kernel!(
    avx2,
    "avx2,fma",
    8,
    __m256,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_set1_ps,
    _mm256_fmadd_ps,
    _mm256_max_ps,
    _mm256_add_ps,
    even_avx2,
    gather_avx2,
    within_avx2,
    store_first_avx2
);

#[cfg(target_arch = "x86_64")]
window_kernel!(
    avx512,
    "avx512f",
    16,
    __m512,
    _mm512_loadu_ps,
    _mm512_storeu_ps,
    _mm512_set1_ps,
    _mm512_fmadd_ps,
    _mm512_max_ps,
    _mm512_add_ps,
    even_avx512,
    gather_avx512,
    within_avx512,
    store_first_avx512
);

/// Lanes `l` of `p[l]` with `lo ≤ l < hi`, `fill` in the others (whose elements are not read).
///
/// # Safety
/// AVX2; those elements are readable.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn within_avx2(p: *const f32, lo: isize, hi: isize, fill: __m256) -> __m256 {
    let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let clamp = |v: isize| _mm256_set1_epi32(v.clamp(-1, 8) as i32);
    let mask = _mm256_andnot_si256(_mm256_cmpgt_epi32(clamp(lo), lanes), _mm256_cmpgt_epi32(clamp(hi), lanes));
    // SAFETY: forwarded; masked-off elements are not accessed.
    let x = unsafe { _mm256_maskload_ps(p, mask) };
    _mm256_blendv_ps(fill, x, _mm256_castsi256_ps(mask))
}

/// Stores the first `n < 8` lanes of `v` at `p`.
///
/// # Safety
/// AVX2; `p[..n]` is writable.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn store_first_avx2(p: *mut f32, n: usize, v: __m256) {
    let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    // SAFETY: forwarded.
    unsafe { _mm256_maskstore_ps(p, mask, v) }
}

/// Lanes `l` of `p[l]` with `lo ≤ l < hi`, `fill` in the others (whose elements are not read).
///
/// # Safety
/// AVX-512F; those elements are readable.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn within_avx512(p: *const f32, lo: isize, hi: isize, fill: __m512) -> __m512 {
    let (lo, hi) = (lo.clamp(0, 16) as u32, hi.clamp(0, 16) as u32);
    let mask = if hi <= lo { 0 } else { ((1u32 << (hi - lo)) - 1) << lo };
    // SAFETY: forwarded; AVX-512 does not access masked-off elements.
    unsafe { _mm512_mask_loadu_ps(fill, mask as __mmask16, p) }
}

/// Stores the first `n < 16` lanes of `v` at `p`.
///
/// # Safety
/// AVX-512F; `p[..n]` is writable.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn store_first_avx512(p: *mut f32, n: usize, v: __m512) {
    // SAFETY: forwarded.
    unsafe { _mm512_mask_storeu_ps(p, ((1u32 << n) - 1) as __mmask16, v) }
}

/// `p[0], p[2], …, p[14]`: x0 x2 x8 x10 | x4 x6 x12 x14, then the 64-bit pairs put in order.
///
/// # Safety
/// AVX2; `p` holds sixteen values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn even_avx2(p: *const f32) -> __m256 {
    // SAFETY: forwarded.
    let (lo, hi) = unsafe { (_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8))) };
    let pairs = _mm256_castps_pd(_mm256_shuffle_ps::<0b10_00_10_00>(lo, hi));
    _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(pairs))
}

/// `p[i·stride]` for `i < 8`.
///
/// # Safety
/// AVX2; those elements are readable.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn gather_avx2(p: *const f32, stride: usize) -> __m256 {
    let lanes = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(stride as i32));
    // SAFETY: forwarded.
    unsafe { _mm256_i32gather_ps::<4>(p, lanes) }
}

/// `p[0], p[2], …, p[30]`: two loads and one two-source permute.
///
/// # Safety
/// AVX-512F; `p` holds thirty-two values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn even_avx512(p: *const f32) -> __m512 {
    let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    // SAFETY: forwarded.
    let (lo, hi) = unsafe { (_mm512_loadu_ps(p), _mm512_loadu_ps(p.add(16))) };
    _mm512_permutex2var_ps(lo, even, hi)
}

/// `p[i·stride]` for `i < 16`.
///
/// # Safety
/// AVX-512F; those elements are readable.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn gather_avx512(p: *const f32, stride: usize) -> __m512 {
    let lanes = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32(stride as i32),
    );
    // SAFETY: forwarded.
    unsafe { _mm512_i32gather_ps::<4>(lanes, p) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The window by definition, reading the unpadded plane.
    fn reference(win: &Window, reduce: Reduce, src: &[f32]) -> Vec<f32> {
        let mut out = Vec::new();
        for oy in 0..win.oh {
            for ox in 0..win.ow {
                let mut acc = reduce.initial();
                for ki in 0..win.kh {
                    for kj in 0..win.kw {
                        let iy = (oy * win.stride[0] + ki * win.dilation[0]) as isize - win.pad[0] as isize;
                        let ix = (ox * win.stride[1] + kj * win.dilation[1]) as isize - win.pad[1] as isize;
                        if iy < 0 || ix < 0 || iy >= win.h as isize || ix >= win.w as isize {
                            continue;
                        }
                        let x = src[iy as usize * win.w + ix as usize];
                        acc = match reduce {
                            Reduce::Dot { weights, .. } => acc + weights[ki * win.kw + kj] * x,
                            Reduce::Max => acc.max(x),
                            Reduce::Sum => acc + x,
                        };
                    }
                }
                out.push(acc);
            }
        }
        out
    }

    #[test]
    fn every_geometry_matches_the_definition() {
        // (h, w, k, stride, pad, dilation, ceil-mode extra output)
        let cases = [
            (7, 7, 3, 1, 1, 1, 0),
            (14, 14, 3, 2, 1, 1, 0),
            (13, 27, 3, 2, 0, 1, 1),
            (9, 19, 5, 1, 2, 2, 0),
            (11, 23, 3, 3, 1, 1, 0),
            (5, 5, 1, 1, 0, 1, 0),
            (4, 9, 7, 1, 3, 1, 0),
            // Rows wider than a vector: whole blocks, then a partial one.
            (6, 40, 3, 1, 1, 1, 0),
            (5, 70, 3, 2, 1, 1, 0),
            (4, 60, 3, 3, 0, 1, 0),
            // No padding: the leading rows read in place, the last ones through the copy.
            (23, 23, 3, 2, 0, 1, 0),
            (40, 37, 3, 1, 0, 1, 0),
            (29, 30, 3, 2, 0, 2, 0),
        ];
        for (h, w, k, s, p, d, extra) in cases {
            let span = (k - 1) * d + 1;
            let out = |n: usize| (n + 2 * p - span) / s + 1 + extra;
            let win =
                Window { h, w, oh: out(h), ow: out(w), kh: k, kw: k, stride: [s, s], pad: [p, p], dilation: [d, d] };
            let in_place = win.rows_in_place();
            let unpadded = p == 0 && extra == 0;
            assert!(in_place == 0 || unpadded, "{win:?}: a padded window reads {in_place} rows in place");
            if unpadded && h >= 20 {
                assert!(in_place > 0 && in_place < win.oh, "{win:?}: {in_place} rows in place, the rest copied");
            }
            let src: Vec<f32> = (0..h * w).map(|i| ((i * 7919) % 23) as f32 - 11.0).collect();
            let weights: Vec<f32> = (0..k * k).map(|i| 0.25 * i as f32 - 1.0).collect();
            for (isa, reduce) in Isa::available().into_iter().flat_map(|isa| {
                [Reduce::Dot { weights: &weights, bias: 0.5 }, Reduce::Max, Reduce::Sum].map(|r| (isa, r))
            }) {
                let mut dst = vec![f32::NAN; win.oh * win.ow];
                win.plane_on(isa, reduce, &src, &mut dst);
                let want = reference(&win, reduce, &src);
                for (i, (g, w)) in dst.iter().zip(&want).enumerate() {
                    assert!((g - w).abs() <= 1e-4 * w.abs().max(1.0), "{isa:?} {win:?} {reduce:?} at {i}: {g} vs {w}");
                }
            }
        }
    }
}
