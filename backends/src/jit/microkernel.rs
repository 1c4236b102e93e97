//! The GEMM micro-kernels: one MR×NR tile of `C (+)= A·B` over a packed depth, every
//! accumulator in a register. An A panel holds MR values per depth step (each broadcast), a B
//! panel NR values per depth step (vector loads). One kernel per instruction set, chosen once
//! per process: AVX-512 (16×16: sixteen accumulators, one load and sixteen broadcasts per
//! sixteen FMAs; channel counts are multiples of 16 far more often than of 12, so fewer tiles
//! run on padding than with 12×32), AVX2/FMA (6×16), and a portable 4×8 one.

use std::sync::OnceLock;

/// One call of a micro-kernel: for rows `i < rows` and all `j < NR`,
/// `c[i·ldc + j] (+)= Σ_{p<kc} a[p·MR + i] · b[p·NR + j]` (added to what is there when `add`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tile {
    pub kc: usize,
    pub a: *const f32,
    pub b: *const f32,
    pub c: *mut f32,
    pub ldc: usize,
    pub rows: usize,
    pub add: bool,
}

/// A micro-kernel.
///
/// # Safety
/// `a` holds `kc·MR` values, `b` `kc·NR`, and `c` rows `< rows` of NR
/// at pitch `ldc`, overlapping neither.
pub(crate) type TileFn = unsafe fn(&Tile);

/// One instruction set's micro-kernel and its tile.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MicroKernel {
    pub mr: usize,
    pub nr: usize,
    pub tile: TileFn,
}

/// The tallest tile any kernel has.
pub(crate) const MAX_MR: usize = 16;
/// The largest tile any kernel has (a partial tile is computed into a stack buffer this big).
pub(crate) const MAX_TILE: usize = MAX_MR * 32;

/// The fastest kernel this CPU runs.
pub(crate) fn best() -> MicroKernel {
    static BEST: OnceLock<MicroKernel> = OnceLock::new();
    *BEST.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return MicroKernel { mr: 16, nr: 16, tile: x86::tile_avx512 };
            }
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                return MicroKernel { mr: 6, nr: 16, tile: x86::tile_avx2 };
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
        kernels.push(MicroKernel { mr: 6, nr: 16, tile: x86::tile_avx2 });
    }
    kernels.push(portable());
    kernels.dedup_by_key(|k| (k.mr, k.nr));
    kernels
}

/// The kernel every CPU runs.
pub(crate) fn portable() -> MicroKernel {
    MicroKernel { mr: 4, nr: 8, tile: tile_portable }
}

/// # Safety
/// As [`TileFn`], with MR = 4 and NR = 8.
unsafe fn tile_portable(&Tile { kc, a, b, c, ldc, rows, add }: &Tile) {
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
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// A register-tiled kernel for one vector width: `$mr` rows × `$vecs` vectors of `$lanes`.
    macro_rules! register_tile {
        ($name:ident, $features:literal, $mr:literal, $vecs:literal, $lanes:literal,
         $zero:ident, $load:ident, $store:ident, $splat:ident, $fma:ident, $add:ident) => {
            /// # Safety
            /// The CPU has the enabled features; extents as in [`super::TileFn`].
            #[target_feature(enable = $features)]
            pub(super) unsafe fn $name(&super::Tile { kc, a, b, c, ldc, rows, add }: &super::Tile) {
                let mut acc = [[$zero(); $vecs]; $mr];
                // SAFETY (whole body): depth step `p` reads a[p·MR..][..MR] and b[p·NR..][..NR],
                // and rows `< rows` of C hold NR values each.
                unsafe {
                    for p in 0..kc {
                        let (ap, bp) = (a.add(p * $mr), b.add(p * $vecs * $lanes));
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
                    for (i, row) in acc.iter().enumerate() {
                        if i < rows {
                            let out = c.add(i * ldc);
                            for (v, &s) in row.iter().enumerate() {
                                let at = out.add(v * $lanes);
                                $store(at, if add { $add(s, $load(at)) } else { s });
                            }
                        }
                    }
                }
            }
        };
    }

    register_tile!(
        tile_avx512,
        "avx512f",
        16,
        1,
        16,
        _mm512_setzero_ps,
        _mm512_loadu_ps,
        _mm512_storeu_ps,
        _mm512_set1_ps,
        _mm512_fmadd_ps,
        _mm512_add_ps
    );
    register_tile!(
        tile_avx2,
        "avx2,fma",
        6,
        2,
        8,
        _mm256_setzero_ps,
        _mm256_loadu_ps,
        _mm256_storeu_ps,
        _mm256_set1_ps,
        _mm256_fmadd_ps,
        _mm256_add_ps
    );
}
