//! Runs an ahead-of-time compiled model: `kiln-aot-host [EXPECTED_DIR]`. Inputs are the ones
//! `kiln run` generates for the model (seeded by input name); with EXPECTED_DIR (a `kiln run
//! --out` folder), each output is compared with the `.npy` there and the program fails on a
//! mismatch.

use kiln::driver::{memory::Limit, Session};
use std::path::Path;

include!(concat!(env!("KILN_AOT_DIR"), "/kernels.rs"));

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = Path::new(env!("KILN_AOT_DIR"));
    let start = std::time::Instant::now();
    let model = kiln::aot::load(&dir.join(MODEL_FILE), &kernels(), FINGERPRINT, 0)?;
    println!("loaded {} kernels in {:.1} ms (no code generation)", kernels().len(), start.elapsed().as_secs_f64() * 1e3);

    let mut session = Session::load(&dir.join(MODEL_FILE))?;
    let inputs = session.prepare(&[], vec![], Limit::from_system())?;
    let outputs = model.run(&inputs)?;
    let expected = std::env::args().nth(1);
    let mut used = std::collections::HashSet::new();
    for (name, t) in model.output_names().iter().zip(&outputs) {
        let v = t.to_vec::<f32>();
        print!("{name}: {:?} first {:?}", t.shape(), &v[..v.len().min(4)]);
        if let Some(expected) = &expected {
            let file = Path::new(expected).join(kiln::driver::files::file_name(name, "npy", &mut used));
            let want = kiln::npy::from_bytes(&std::fs::read(&file)?)?.to_vec::<f32>();
            let scale = want.iter().fold(1e-6f32, |m, x| m.max(x.abs()));
            let err = v.iter().zip(&want).fold(0f32, |m, (a, b)| m.max((a - b).abs())) / scale;
            if v.len() != want.len() || err > 1e-5 {
                return Err(format!("{name}: differs from {} (relative error {err:e})", file.display()).into());
            }
            print!("  matches {} (relative error {err:.1e})", file.display());
        }
        println!();
    }
    Ok(())
}
