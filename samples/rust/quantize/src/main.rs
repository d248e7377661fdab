//! Quantizes one real weight matrix in every format libgrey knows and prints each format's error.
//! `cargo run [-- MODEL.safetensors|MODEL.gguf]` in this directory.
//!
//! The input is the first two-dimensional F32, F16 or BF16 tensor whose rows are a multiple of 128
//! long (so that every format can hold it) of the model named on the command line, or else of the
//! all-MiniLM-L6-v2 weights scripts/fetch-model.sh caches. Without either, a deterministic synthetic
//! 256 x 512 tensor stands in, and the sample says so. Every sample in samples/ picks the same input
//! the same way and prints the same lines.
use grey::{Calibration, DType, TensorRef};
use std::path::PathBuf;

/// $GREY_CACHE_DIR, else $XDG_CACHE_HOME/libgrey, else ~/.cache/libgrey (as scripts/fetch-model.sh).
fn default_model() -> PathBuf {
    let env = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let cache = env("GREY_CACHE_DIR")
        .or_else(|| env("XDG_CACHE_HOME").map(|xdg| xdg.join("libgrey")))
        .unwrap_or_else(|| {
            env("HOME")
                .unwrap_or_else(|| PathBuf::from("."))
                .join(".cache")
                .join("libgrey")
        });
    cache.join("all-minilm-l6-v2").join("model.safetensors")
}

/// An LCG whose values are exact in f32, so every language makes the same tensor.
fn synthetic(n: usize) -> Vec<f32> {
    let mut state: u32 = 12345;
    (0..n)
        .map(|_| {
            state = state.wrapping_mul(1664525).wrapping_add(1013904223);
            ((state >> 8) as f32 / 16777216.0 - 0.5) / 16.0
        })
        .collect()
}

fn report_every_format(tensor: TensorRef<'_>) -> grey::Result<()> {
    for name in grey::quant_formats() {
        let r = grey::quantize(tensor, name, Calibration::Rtn)?.report;
        println!(
            "quantize {}: bits_per_weight {:.4} rel_rmse {:.8} sqnr_db {:.4} max_abs_err {:.8}",
            name, r.bits_per_weight, r.rel_rmse, r.sqnr_db, r.max_abs_err
        );
    }
    Ok(())
}

fn run() -> Result<(), String> {
    let argument = std::env::args().nth(1);
    let path = argument
        .as_ref()
        .map(PathBuf::from)
        .unwrap_or_else(default_model);
    if argument.is_none() && !path.exists() {
        println!(
            "note: no model at {} (scripts/fetch-model.sh fetches one): using a synthetic tensor",
            path.display()
        );
        println!("input: synthetic [256, 512] F32");
        let values = synthetic(256 * 512);
        return report_every_format(TensorRef::f32(&values, &[256, 512]))
            .map_err(|e| e.to_string());
    }
    let path_text = path.to_str().ok_or("the model path is not UTF-8")?;
    let model = grey::Model::open(path_text).map_err(|e| e.to_string())?;
    for t in model.tensors().map_err(|e| e.to_string())? {
        let plain = t.dtype == DType::F32 || t.dtype == DType::F16 || t.dtype == DType::BF16;
        if plain && t.shape.len() == 2 && t.shape[1] % 128 == 0 {
            println!(
                "input: {} [{}, {}] {} of {}",
                t.name, t.shape[0], t.shape[1], t.dtype, path_text
            );
            // Quantized straight from the mapped file.
            return report_every_format(t.as_tensor()).map_err(|e| e.to_string());
        }
    }
    Err(format!(
        "{} has no 2-D float tensor with rows a multiple of 128",
        path_text
    ))
}

fn main() {
    if let Err(err) = run() {
        eprintln!("quantize: {}", err);
        std::process::exit(1);
    }
}
