//! Classifies the demo's held-out handwritten digits with the embedding API: compile once, run
//! on a batch given by name, read the logits as a slice.
//!
//! `cargo run --release -p kiln --example classify_digits`

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let model = kiln::Compiler::new().compile_file("models/demo/digits.onnx")?;
    let images = kiln::npy::from_bytes(&std::fs::read("models/demo/digits_images.npy")?)?;
    let labels = kiln::npy::from_bytes(&std::fs::read("models/demo/digits_labels.npy")?)?.to_i64_vec();

    let outputs = model.run_named([("images", images)])?;
    let logits = outputs[0].1.to_vec::<f32>();
    let classes = outputs[0].1.shape()[1];
    let predicted: Vec<usize> = logits
        .chunks(classes)
        .map(|row| (0..classes).fold(0, |best, c| if row[c] > row[best] { c } else { best }))
        .collect();
    let correct = predicted.iter().zip(&labels).filter(|(&p, &l)| p as i64 == l).count();
    println!("first predictions {:?}", &predicted[..10]);
    println!("accuracy {correct}/{} on the held-out digits", labels.len());
    Ok(())
}
