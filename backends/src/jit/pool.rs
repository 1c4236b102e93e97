//! Intra-op parallelism: a fork-join pool of `threads − 1` helper threads plus the calling
//! thread. A parallel region publishes one job (a closure over chunk indices) and every
//! participant claims chunks from one atomic word holding the job's epoch and the next index,
//! so a helper that arrives late can never claim a chunk of a job that has moved on. Helpers
//! spin between regions — a model's steps follow each other within microseconds, sooner than
//! a parked thread wakes up (with rayon's parking, two threads ran small models slower than
//! one) — and park after `SPIN` without work.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Below this much work in a region, splitting across threads costs more than it saves.
pub(crate) const MIN_PARALLEL_WORK: usize = 1 << 15;

/// How long an idle helper spins before it parks.
const SPIN: Duration = Duration::from_millis(2);

/// The index half of the claim word while a job is being published: above every job's length.
const CLOSED: u64 = u32::MAX as u64;

/// The calling thread plus helpers that share its parallel regions.
pub(crate) struct Workers {
    threads: usize,
    shared: Arc<Shared>,
    helpers: Vec<JoinHandle<()>>,
    /// One region at a time: a region started while another is running (a concurrent run of
    /// the same model) runs on its calling thread alone.
    region: Mutex<()>,
}

/// A job as the helpers see it: `&dyn Fn(chunk)` behind a thin pointer, valid while the job's
/// chunks are not all done.
type Job<'a> = &'a (dyn Fn(usize) + Sync);

#[derive(Default)]
struct Shared {
    /// `epoch << 32 | next chunk`.
    claim: AtomicU64,
    /// Points at the current job's `Job` (on the publishing thread's stack).
    job: AtomicPtr<()>,
    chunks: AtomicUsize,
    done: AtomicUsize,
    panicked: AtomicBool,
    quit: AtomicBool,
}

impl Shared {
    /// Claims and runs chunks of the current job until none is left; whether it ran any.
    fn run_available(&self) -> bool {
        let mut ran = false;
        loop {
            let cur = self.claim.load(Acquire);
            let next = cur & CLOSED;
            // A stale length only matters if the claim below succeeds, and it cannot: the
            // publisher closes the claim word before it changes the length.
            if next >= self.chunks.load(Acquire) as u64 {
                return ran;
            }
            if self.claim.compare_exchange_weak(cur, cur + 1, AcqRel, Relaxed).is_err() {
                continue;
            }
            // SAFETY: the claim succeeded in this job's epoch with a chunk not yet done, so the
            // publisher is still waiting in `for_each` and its job is alive.
            let job = unsafe { *(self.job.load(Acquire) as *const Job) };
            if catch_unwind(AssertUnwindSafe(|| job(next as usize))).is_err() {
                self.panicked.store(true, Relaxed);
            }
            self.done.fetch_add(1, Release);
            ran = true;
        }
    }

    fn helper_loop(&self) {
        let mut idle_since = Instant::now();
        let mut polls = 0u32;
        while !self.quit.load(Acquire) {
            if self.run_available() {
                idle_since = Instant::now();
                continue;
            }
            polls = polls.wrapping_add(1);
            if polls.is_multiple_of(256) && idle_since.elapsed() > SPIN {
                // Woken by the next job's publisher (or at once, if it already unparked us).
                std::thread::park();
                idle_since = Instant::now();
            } else {
                std::hint::spin_loop();
            }
        }
    }
}

impl Workers {
    /// `threads` participants (0: one per core).
    pub(crate) fn new(threads: usize) -> Result<Workers, String> {
        let threads = if threads == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { threads };
        let mut workers =
            Workers { threads, shared: Arc::new(Shared::default()), helpers: Vec::new(), region: Mutex::new(()) };
        for i in 1..threads {
            let shared = Arc::clone(&workers.shared);
            let helper =
                std::thread::Builder::new().name(format!("kiln-worker-{i}")).spawn(move || shared.helper_loop());
            // On failure, dropping `workers` stops the helpers already started.
            workers.helpers.push(helper.map_err(|e| format!("could not start {threads} worker threads: {e}"))?);
        }
        Ok(workers)
    }

    pub(crate) fn threads(&self) -> usize {
        self.threads
    }

    /// `f(i)` for `i < n`, spread over the workers when the total work (`n × work_each`)
    /// is worth it.
    pub(crate) fn for_each(&self, n: usize, work_each: usize, f: impl Fn(usize) + Sync + Send) {
        let region = match self.region.try_lock() {
            Ok(guard) if !self.helpers.is_empty() && n > 1 && n.saturating_mul(work_each) >= MIN_PARALLEL_WORK => guard,
            _ => return (0..n).for_each(f),
        };
        let per_chunk = (MIN_PARALLEL_WORK / work_each.max(1)).clamp(1, n.div_ceil(self.threads));
        let chunks = n.div_ceil(per_chunk);
        let run_chunk = |c: usize| (c * per_chunk..((c + 1) * per_chunk).min(n)).for_each(&f);
        let job: Job = &run_chunk;
        let s = &self.shared;
        // Publish: close the claim word, set the job, then open it in the next epoch.
        let epoch = ((s.claim.load(Relaxed) >> 32) + 1) & CLOSED;
        s.claim.store(epoch << 32 | CLOSED, Release);
        s.job.store(&job as *const Job as *mut (), Release);
        s.chunks.store(chunks, Release);
        s.done.store(0, Release);
        s.claim.store(epoch << 32, Release);
        for h in &self.helpers {
            h.thread().unpark();
        }
        s.run_available();
        // Helpers may still be running chunks of this job, which borrows this frame.
        while s.done.load(Acquire) < chunks {
            std::hint::spin_loop();
        }
        drop(region);
        if s.panicked.swap(false, Relaxed) {
            resume_unwind(Box::new("a parallel kernel panicked"));
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.shared.quit.store(true, Release);
        for h in self.helpers.drain(..) {
            h.thread().unpark();
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    #[test]
    fn every_index_runs_once_across_many_regions_and_callers() {
        let workers = Arc::new(Workers::new(3).unwrap());
        let callers: Vec<_> = (0..3)
            .map(|t| {
                let workers = Arc::clone(&workers);
                std::thread::spawn(move || {
                    for round in 0..200 {
                        let n = 1 + (round * 7 + t) % 97;
                        let hits: Vec<AtomicU32> = (0..n).map(|_| AtomicU32::new(0)).collect();
                        workers.for_each(n, MIN_PARALLEL_WORK, |i| {
                            hits[i].fetch_add(1, Relaxed);
                        });
                        assert!(hits.iter().all(|h| h.load(Relaxed) == 1), "round {round} of caller {t}");
                    }
                })
            })
            .collect();
        for c in callers {
            c.join().unwrap();
        }
    }

    #[test]
    fn a_panicking_chunk_surfaces_after_the_region_ends() {
        let workers = Workers::new(2).unwrap();
        let ran = AtomicU32::new(0);
        let result = catch_unwind(AssertUnwindSafe(|| {
            workers.for_each(64, MIN_PARALLEL_WORK, |i| {
                ran.fetch_add(1, Relaxed);
                assert!(i != 5, "chunk 5 fails");
            })
        }));
        assert!(result.is_err());
        assert_eq!(ran.load(Relaxed), 64, "every chunk still ran");
        // The pool keeps working.
        let sum = AtomicUsize::new(0);
        workers.for_each(100, MIN_PARALLEL_WORK, |i| {
            sum.fetch_add(i, Relaxed);
        });
        assert_eq!(sum.load(Relaxed), 4950);
    }
}
