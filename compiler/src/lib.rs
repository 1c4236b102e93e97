//! Kiln: an ONNX compiler for neural networks — driver, ONNX import/export, CLI and public API.

pub mod model;
pub mod onnx;

pub use model::Model;
