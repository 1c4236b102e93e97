//! Embedding Kiln in a Rust program: compile an ONNX model once, then run it from several
//! threads at once, writing outputs into buffers the caller owns.
//!
//! `cargo run --release -p kiln --example embed -- models/light/squeezenet.onnx`

use kiln_ir::{DType, Tensor};
use std::sync::Arc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).unwrap_or_else(|| "models/light/squeezenet.onnx".into());
    let model = Arc::new(kiln::Compiler::new().threads(2).compile_file(&path)?);
    let t = model.compile_times();
    println!("compiled {path}: import {:.0} ms, passes {:.0} ms, codegen {:.0} ms", t.import, t.passes, t.codegen);

    // One input per graph input; a seeded random image here.
    let input = Tensor::seeded(DType::F32, &[1, 3, 224, 224], "image", 0.0, 1.0)?;
    let outputs = model.run(std::slice::from_ref(&input))?;
    let scores = outputs[0].to_vec::<f32>();
    let best = scores.iter().enumerate().fold((0, f32::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b });
    println!("{}: {:?}, best class {} ({:.4})", model.output_names()[0], outputs[0].shape(), best.0, best.1);

    // Concurrent runs share the compiled code; `run_into` reuses the caller's output buffers.
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (model, input, shape) = (model.clone(), input.clone(), outputs[0].shape().to_vec());
            std::thread::spawn(move || -> Result<bool, kiln::KilnError> {
                let mut out = vec![Tensor::zeros(DType::F32, &shape).expect("small")];
                for _ in 0..3 {
                    model.run_into(std::slice::from_ref(&input), &mut out)?;
                }
                Ok(out[0].to_vec::<f32>() == scores_of(&model, &input)?)
            })
        })
        .collect();
    for w in workers {
        assert!(w.join().expect("worker panicked")?, "concurrent runs agree");
    }
    println!("concurrent runs agree");
    Ok(())
}

fn scores_of(model: &kiln::CompiledModel, input: &Tensor) -> Result<Vec<f32>, kiln::KilnError> {
    Ok(model.run(std::slice::from_ref(input))?[0].to_vec::<f32>())
}
