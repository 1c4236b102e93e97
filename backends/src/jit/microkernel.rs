//! The GEMM micro-kernels: one MR×NR tile of `C (+)= A·B` over a packed depth, every
//! accumulator in a register. An A panel holds MR values per depth step (each broadcast), a B
//! panel NR values per depth step (vector loads). One kernel per instruction set, chosen once
//! per process: AVX-512 (8×32: sixteen accumulators, two loads and eight broadcasts per sixteen
//! FMAs; 8 rows divide every channel count of the light models), AVX2/FMA (6×16), and a portable
//! 4×8 one. The AVX-512 kernel also has narrow variants for a last panel with padding columns,
//! so a 7×7 or 14×14 image does not pay for a whole padded tile. The AVX-512 and AVX2 kernels
//! also come in a shifted variant, which reads each depth step's B values in place, wherever a
//! table puts them, instead of from a packed panel (a stride-1 convolution over a padded image).

use std::ops::Range;
use std::sync::OnceLock;

/// One call of a micro-kernel: for rows `i < rows` and all `j < NR`,
/// `c[i·ldc + j] (+)= Σ_{p<kc} a[p·MR + i] · B_p[j]` (added to what is there when `add`), where
/// `B_p` is `b + p·NR` for a packed panel and `b + b_rows[p]` for a shifted kernel, and then
/// `epilogue` applied to those elements.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tile {
    pub kc: usize,
    pub a: *const f32,
    pub b: *const f32,
    /// Where each depth step's B values start, relative to `b` (read by shifted kernels only).
    pub b_rows: *const isize,
    pub c: *mut f32,
    pub ldc: usize,
    pub rows: usize,
    pub add: bool,
    /// Its origin is the tile's first element ([`Epilogue::NONE`] unless this is C's last
    /// depth block).
    pub epilogue: Epilogue,
}

/// What the GEMM applies to each finished tile of C while it is still in cache:
/// `c[i·ldc + j] = max(c + bias[i] + residual[i·ldc + j], 0)`, each part optional (a null
/// pointer, or `relu` false). The residual has C's layout and pitch, and overlaps nothing. The
/// register kernels apply it before they store a tile; the others after.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Epilogue {
    pub bias: *const f32,
    pub residual: *const f32,
    pub relu: bool,
}

impl Epilogue {
    /// Nothing to apply.
    pub(crate) const NONE: Epilogue = Epilogue { bias: std::ptr::null(), residual: std::ptr::null(), relu: false };

    /// The same epilogue with element (`row`, `col`) of C as its origin.
    ///
    /// # Safety
    /// That element is in bounds of the residual, and `row` of the bias, where they exist.
    pub(crate) unsafe fn at(&self, row: usize, col: usize, ldc: usize) -> Epilogue {
        // SAFETY: forwarded.
        unsafe {
            Epilogue {
                bias: if self.bias.is_null() { self.bias } else { self.bias.add(row) },
                residual: if self.residual.is_null() { self.residual } else { self.residual.add(row * ldc + col) },
                relu: self.relu,
            }
        }
    }

    /// Applies the epilogue to rows `rows` and columns `cols` of C.
    ///
    /// # Safety
    /// Those elements of C, and of the residual if any, are in bounds; `bias` holds a value
    /// per row.
    pub(crate) unsafe fn apply(&self, c: *mut f32, ldc: usize, rows: Range<usize>, cols: Range<usize>) {
        if self.bias.is_null() && self.residual.is_null() && !self.relu {
            // Epilogue::NONE, which every tile but a last block's carries: nothing to do.
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512F was just detected; extents forwarded.
            return unsafe { self.apply_avx512(c, ldc, rows, cols) };
        }
        // SAFETY: forwarded.
        unsafe { self.apply_rows(c, ldc, rows, cols) }
    }

    /// [`Epilogue::apply`] with AVX-512: one pass of sixteen lanes, the row's last under a
    /// mask (a tile's rows are only two vectors long, too short for the compiler's loops).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn apply_avx512(&self, c: *mut f32, ldc: usize, rows: Range<usize>, cols: Range<usize>) {
        use std::arch::x86_64::*;
        for i in rows {
            // SAFETY (whole body): row `i`, columns `cols` of C and of the residual are in
            // bounds, and `bias` holds row `i`; masked lanes are neither read nor written.
            unsafe {
                let at = i * ldc + cols.start;
                let bias = _mm512_set1_ps(if self.bias.is_null() { 0.0 } else { *self.bias.add(i) });
                for j in (0..cols.len()).step_by(16) {
                    let left = cols.len() - j;
                    let mask: __mmask16 = if left >= 16 { !0 } else { (1 << left) - 1 };
                    let p = c.add(at + j);
                    let mut v = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, p), bias);
                    if !self.residual.is_null() {
                        v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, self.residual.add(at + j)));
                    }
                    if self.relu {
                        // The second operand wins when the first is NaN, as in `f32::max`.
                        v = _mm512_max_ps(v, _mm512_setzero_ps());
                    }
                    _mm512_mask_storeu_ps(p, mask, v);
                }
            }
        }
    }

    pub(crate) unsafe fn apply_rows(&self, c: *mut f32, ldc: usize, rows: Range<usize>, cols: Range<usize>) {
        for i in rows {
            // SAFETY (whole body): row `i`, columns `cols` of C and of the residual are in
            // bounds, and `bias` holds row `i`.
            let at = i * ldc + cols.start;
            let out = unsafe { std::slice::from_raw_parts_mut(c.add(at), cols.len()) };
            let bias = if self.bias.is_null() { 0.0 } else { unsafe { *self.bias.add(i) } };
            for (j, o) in out.iter_mut().enumerate() {
                let r = if self.residual.is_null() { 0.0 } else { unsafe { *self.residual.add(at + j) } };
                let v = *o + bias + r;
                *o = if self.relu { v.max(0.0) } else { v };
            }
        }
    }
}

// SAFETY: the epilogue reads its bias and residual, and writes only the caller's tile of C.
unsafe impl Send for Epilogue {}
unsafe impl Sync for Epilogue {}

/// A micro-kernel.
///
/// # Safety
/// `a` holds `kc·MR` values, every `B_p` NR (for a shifted kernel, `b_rows` holds `kc`
/// offsets), and `c` rows `< rows` of NR at pitch `ldc`, overlapping neither.
pub(crate) type TileFn = unsafe fn(&Tile);

/// A micro-kernel for only the first `cols < NR` columns of a tile (the panel's others are
/// padding); it writes only those columns of C.
///
/// # Safety
/// As [`TileFn`], with `c` holding rows `< rows` of `cols`.
pub(crate) type NarrowFn = unsafe fn(&Tile, usize);

/// One instruction set's micro-kernel and its tile.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MicroKernel {
    pub mr: usize,
    pub nr: usize,
    pub tile: TileFn,
    /// The narrow variant, where the kernel has one; without it a last, partial panel is
    /// computed as a whole tile into scratch.
    pub narrow: Option<NarrowFn>,
    /// The shifted variant, where the kernel has one.
    pub shifted: Option<TileFn>,
}

/// The tallest tile any kernel has.
pub(crate) const MAX_MR: usize = 8;
/// The widest tile any kernel has.
pub(crate) const MAX_NR: usize = 32;
/// The largest tile any kernel has (a partial tile is computed into a stack buffer this big).
pub(crate) const MAX_TILE: usize = MAX_MR * MAX_NR;

/// The fastest kernel this CPU runs.
pub(crate) fn best() -> MicroKernel {
    static BEST: OnceLock<MicroKernel> = OnceLock::new();
    *BEST.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                let narrow = std::arch::is_x86_feature_detected!("avx512vl").then_some(x86::narrow_avx512 as NarrowFn);
                return MicroKernel {
                    mr: 8,
                    nr: 32,
                    tile: x86::tile_avx512::<false>,
                    narrow,
                    shifted: Some(x86::tile_avx512::<true>),
                };
            }
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                return avx2();
            }
        }
        portable()
    })
}

/// Every kernel this CPU runs, fastest first (tests check each against the definition).
#[cfg(test)]
pub(crate) fn all() -> Vec<MicroKernel> {
    let mut kernels = vec![best()];
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        kernels.push(avx2());
    }
    kernels.push(portable());
    kernels.dedup_by_key(|k| (k.mr, k.nr));
    kernels
}

/// The AVX2/FMA kernel (for a CPU that has those features).
#[cfg(target_arch = "x86_64")]
fn avx2() -> MicroKernel {
    MicroKernel { mr: 6, nr: 16, tile: x86::tile_avx2::<false>, narrow: None, shifted: Some(x86::tile_avx2::<true>) }
}

/// The kernel every CPU runs.
pub(crate) fn portable() -> MicroKernel {
    MicroKernel { mr: 4, nr: 8, tile: tile_portable, narrow: None, shifted: None }
}

/// # Safety
/// As [`TileFn`], with MR = 4 and NR = 8.
unsafe fn tile_portable(&Tile { kc, a, b, c, ldc, rows, add, epilogue, .. }: &Tile) {
    const MR: usize = 4;
    const NR: usize = 8;
    // SAFETY: extents as documented.
    let a = unsafe { std::slice::from_raw_parts(a, kc * MR) };
    let mut acc = [[0.0f32; NR]; MR];
    for (p, ap) in a.chunks_exact(MR).enumerate() {
        // SAFETY: row `p` of the panel holds NR values.
        let bp = unsafe { std::slice::from_raw_parts(b.add(p * NR), NR) };
        for (row, &ai) in acc.iter_mut().zip(ap) {
            for (s, &bj) in row.iter_mut().zip(bp) {
                *s += ai * bj;
            }
        }
    }
    for (i, row) in acc.iter().enumerate().take(rows) {
        // SAFETY: row `i < rows` of the tile holds NR values.
        let out = unsafe { std::slice::from_raw_parts_mut(c.add(i * ldc), NR) };
        for (o, &s) in out.iter_mut().zip(row) {
            *o = if add { *o + s } else { s };
        }
    }
    // SAFETY: the tile's elements, as above.
    unsafe { epilogue.apply(c, ldc, 0..rows, 0..NR) };
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// A register-tiled kernel for one vector width: `$mr` rows × `$vecs` vectors of `$lanes`,
    /// over B panels `$pitch` values wide (wider than the tile for a half-width variant), or
    /// over B rows in place when `SHIFTED`.
    macro_rules! register_tile {
        ($name:ident, $features:literal, $mr:literal, $vecs:literal, $lanes:literal, $pitch:literal,
         $zero:ident, $load:ident, $store:ident, $splat:ident, $fma:ident, $add:ident, $max:ident) => {
            /// # Safety
            /// The CPU has the enabled features; extents as in [`super::TileFn`].
            #[target_feature(enable = $features)]
            pub(super) unsafe fn $name<const SHIFTED: bool>(
                &super::Tile { kc, a, b, b_rows, c, ldc, rows, add, epilogue }: &super::Tile,
            ) {
                let mut acc = [[$zero(); $vecs]; $mr];
                // SAFETY (whole body): depth step `p` reads a[p·MR..][..MR] and NR values of B_p,
                // and rows `< rows` of C hold NR values each.
                unsafe {
                    for p in 0..kc {
                        let ap = a.add(p * $mr);
                        let bp = if SHIFTED { b.offset(*b_rows.add(p)) } else { b.add(p * $pitch) };
                        let mut bv = [$zero(); $vecs];
                        for (v, x) in bv.iter_mut().enumerate() {
                            *x = $load(bp.add(v * $lanes));
                        }
                        for (i, row) in acc.iter_mut().enumerate() {
                            let ai = $splat(*ap.add(i));
                            for (s, &x) in row.iter_mut().zip(&bv) {
                                *s = $fma(ai, x, *s);
                            }
                        }
                    }
                    let super::Epilogue { bias, residual, relu } = epilogue;
                    for (i, row) in acc.iter().enumerate() {
                        if i < rows {
                            let out = c.add(i * ldc);
                            for (v, &s) in row.iter().enumerate() {
                                let at = out.add(v * $lanes);
                                let mut s = if add { $add(s, $load(at)) } else { s };
                                if !bias.is_null() {
                                    s = $add(s, $splat(*bias.add(i)));
                                }
                                if !residual.is_null() {
                                    s = $add(s, $load(residual.add(i * ldc + v * $lanes)));
                                }
                                if relu {
                                    // As in `f32::max`, 0 wins over NaN (the second operand).
                                    s = $max(s, $zero());
                                }
                                $store(at, s);
                            }
                        }
                    }
                }
            }
        };
    }

    /// An AVX-512 kernel of `$vecs` sixteen-lane vectors per row.
    macro_rules! avx512_tile {
        ($name:ident, $mr:literal, $vecs:literal, $pitch:literal) => {
            register_tile!(
                $name,
                "avx512f",
                $mr,
                $vecs,
                16,
                $pitch,
                _mm512_setzero_ps,
                _mm512_loadu_ps,
                _mm512_storeu_ps,
                _mm512_set1_ps,
                _mm512_fmadd_ps,
                _mm512_add_ps,
                _mm512_max_ps
            );
        };
    }

    avx512_tile!(tile_avx512, 8, 2, 32);
    // The narrow variant's first sixteen columns.
    avx512_tile!(tile_avx512_half, 8, 1, 32);
    register_tile!(
        tile_avx2,
        "avx2,fma",
        6,
        2,
        8,
        16,
        _mm256_setzero_ps,
        _mm256_loadu_ps,
        _mm256_storeu_ps,
        _mm256_set1_ps,
        _mm256_fmadd_ps,
        _mm256_add_ps,
        _mm256_max_ps
    );

    /// The AVX-512 kernel's narrow variant: the first sixteen columns as a half-width tile, the
    /// rest (fewer than sixteen) by [`columns`].
    ///
    /// # Safety
    /// As [`super::NarrowFn`], on a CPU with AVX-512F and VL.
    pub(super) unsafe fn narrow_avx512(tile: &super::Tile, cols: usize) {
        const NARROW: [super::TileFn; 15] = [
            columns::<1>,
            columns::<2>,
            columns::<3>,
            columns::<4>,
            columns::<5>,
            columns::<6>,
            columns::<7>,
            columns::<8>,
            columns::<9>,
            columns::<10>,
            columns::<11>,
            columns::<12>,
            columns::<13>,
            columns::<14>,
            columns::<15>,
        ];
        assert!(cols > 0 && cols < 32, "a partial panel of the 8×32 kernel");
        let done = if cols >= 16 {
            // SAFETY: the first sixteen columns are in the panel and in C.
            unsafe { tile_avx512_half::<false>(tile) };
            16
        } else {
            0
        };
        if cols > done {
            // SAFETY: columns `done..cols` are in the panel and in C.
            let rest = unsafe {
                let epilogue = tile.epilogue.at(0, done, tile.ldc);
                super::Tile { b: tile.b.add(done), c: tile.c.add(done), epilogue, ..*tile }
            };
            unsafe { NARROW[cols - done - 1](&rest) }
        }
    }

    /// Columns `..NV` (fewer than sixteen) of an 8-row tile over 32-wide B panels, vectorized
    /// along the rows: per depth step one load of A and NV broadcast FMAs, so padding columns
    /// cost nothing. Below eight columns even and odd depth steps accumulate apart, which keeps
    /// enough FMAs in flight.
    ///
    /// # Safety
    /// As [`super::TileFn`] for columns `..NV`, on a CPU with AVX-512F and VL.
    #[target_feature(enable = "avx512f,avx512vl")]
    unsafe fn columns<const NV: usize>(&super::Tile { kc, a, b, c, ldc, rows, add, epilogue, .. }: &super::Tile) {
        const MR: usize = 8;
        const PITCH: usize = 32;
        let mut even = [_mm256_setzero_ps(); NV];
        let mut odd = [_mm256_setzero_ps(); NV];
        // SAFETY (whole body): depth step `p` reads a[p·MR..][..MR] and b[p·PITCH..][..NV], and
        // rows `< rows` of C hold NV values each.
        unsafe {
            macro_rules! step {
                ($p:expr, $acc:expr) => {{
                    let av = _mm256_loadu_ps(a.add($p * MR));
                    for (j, s) in $acc.iter_mut().enumerate() {
                        *s = _mm256_fmadd_ps(av, _mm256_set1_ps(*b.add($p * PITCH + j)), *s);
                    }
                }};
            }
            let mut p = 0;
            if NV < 8 {
                while p + 2 <= kc {
                    step!(p, even);
                    step!(p + 1, odd);
                    p += 2;
                }
            }
            while p < kc {
                step!(p, even);
                p += 1;
            }
            if NV < 8 {
                for (e, o) in even.iter_mut().zip(&odd) {
                    *e = _mm256_add_ps(*e, *o);
                }
            }
            for (j, s) in even.iter().enumerate() {
                let mut column = [0.0f32; MR];
                _mm256_storeu_ps(column.as_mut_ptr(), *s);
                for (i, &v) in column.iter().enumerate().take(rows) {
                    let at = c.add(i * ldc + j);
                    *at = if add { *at + v } else { v };
                }
            }
            epilogue.apply(c, ldc, 0..rows, 0..NV);
        }
    }
}
