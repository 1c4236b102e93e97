//! Repeated runs of a compiled model allocate nothing. After warm-up runs (which fill the arena
//! pool and grow each thread's packing and window scratch), one more `run_into` with
//! caller-owned outputs is watched by a global allocator that counts every allocation on every
//! thread. This binary holds this one test, so nothing else allocates while it counts.

use kiln_ir::Tensor;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// The system allocator, counting allocations and reallocations.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        // SAFETY: forwarded.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        // SAFETY: forwarded.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        // SAFETY: forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Models whose plans cover every native step kind: GEMM convolutions (im2col, pointwise,
/// grouped), depthwise and pooling windows, in-place Concat, LRN, Softmax, fused elementwise
/// kernels and the matrix–vector Gemm.
const MODELS: [&str; 3] = ["squeezenet", "inception_v1", "shufflenet"];

#[test]
fn repeated_runs_allocate_nothing() {
    for name in MODELS {
        let path = kiln_tests::workspace_root().join(format!("models/light/{name}.onnx"));
        for threads in [1, 2] {
            let model = kiln::Compiler::new().threads(threads).compile_file(&path).expect("the model compiles");
            let input =
                Tensor::from_vec(&[1, 3, 224, 224], (0..3 * 224 * 224).map(|i| (i % 255) as f32 / 255.0).collect())
                    .expect("an input tensor");
            let inputs = [input];
            let mut outputs = model.run(&inputs).expect("the model runs");
            for _ in 0..3 {
                model.run_into(&inputs, &mut outputs).expect("the model runs");
            }
            let before = ALLOCATIONS.load(Relaxed);
            model.run_into(&inputs, &mut outputs).expect("the model runs");
            let during = ALLOCATIONS.load(Relaxed) - before;
            assert_eq!(during, 0, "{name} on {threads} threads: a repeated run allocated {during} times");
        }
    }
}
