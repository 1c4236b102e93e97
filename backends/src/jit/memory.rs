//! The memory plan: every intermediate the JIT writes lives in one arena, at an offset chosen
//! from its lifetime (first step that writes it, last step that reads it), so buffers whose
//! lifetimes do not overlap share bytes. Greedy best-fit by decreasing size, 64-byte aligned.

/// One buffer's size and the steps during which it holds data (inclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Lifetime {
    pub bytes: usize,
    pub first: usize,
    pub last: usize,
}

pub(crate) const ALIGN: usize = 64;

fn round_up(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

/// Offsets for each buffer and the arena size. Two buffers whose lifetimes overlap never share
/// a byte.
pub(crate) fn assign(lifetimes: &[Lifetime]) -> (Vec<usize>, usize) {
    let mut order: Vec<usize> = (0..lifetimes.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(lifetimes[i].bytes), i));
    let mut offsets = vec![0usize; lifetimes.len()];
    let mut placed: Vec<usize> = Vec::new();
    let mut total = 0;
    for i in order {
        let me = lifetimes[i];
        let size = round_up(me.bytes.max(1));
        let mut busy: Vec<(usize, usize)> = placed
            .iter()
            .filter(|&&j| lifetimes[j].first <= me.last && me.first <= lifetimes[j].last)
            .map(|&j| (offsets[j], offsets[j] + round_up(lifetimes[j].bytes.max(1))))
            .collect();
        busy.sort_unstable();
        // The smallest gap that fits, else the end.
        let mut best: Option<(usize, usize)> = None;
        let mut cursor = 0;
        for &(start, end) in &busy {
            if start >= cursor + size && best.is_none_or(|(_, gap)| start - cursor < gap) {
                best = Some((cursor, start - cursor));
            }
            cursor = cursor.max(end);
        }
        let offset = best.map_or(cursor, |(o, _)| o);
        offsets[i] = offset;
        total = total.max(offset + size);
        placed.push(i);
    }
    (offsets, total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lt(bytes: usize, first: usize, last: usize) -> Lifetime {
        Lifetime { bytes, first, last }
    }

    #[test]
    fn disjoint_lifetimes_share_and_overlapping_ones_do_not() {
        let ls = [lt(1000, 0, 1), lt(1000, 2, 3), lt(500, 1, 2)];
        let (offs, total) = assign(&ls);
        assert_eq!(offs[0], offs[1], "a chain reuses one buffer");
        assert!(total <= 1024 + 512);
        for i in 0..ls.len() {
            for j in 0..i {
                let overlap_t = ls[i].first <= ls[j].last && ls[j].first <= ls[i].last;
                let overlap_m = offs[i] < offs[j] + ls[j].bytes && offs[j] < offs[i] + ls[i].bytes;
                assert!(!(overlap_t && overlap_m), "{i} and {j} collide");
            }
        }
    }

    #[test]
    fn random_plans_never_collide() {
        let mut state = 12345u64;
        let mut next = |m: usize| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) as usize % m
        };
        for _ in 0..200 {
            let ls: Vec<Lifetime> = (0..20)
                .map(|_| {
                    let a = next(30);
                    lt(1 + next(5000), a, a + next(6))
                })
                .collect();
            let (offs, total) = assign(&ls);
            for i in 0..ls.len() {
                assert!(offs[i] % ALIGN == 0 && offs[i] + ls[i].bytes <= total);
                for j in 0..i {
                    let overlap_t = ls[i].first <= ls[j].last && ls[j].first <= ls[i].last;
                    let overlap_m = offs[i] < offs[j] + ls[j].bytes && offs[j] < offs[i] + ls[i].bytes;
                    assert!(!(overlap_t && overlap_m));
                }
            }
        }
    }
}
