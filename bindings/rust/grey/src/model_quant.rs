//! Whole models: [`quantize_model`] and [`dequantize_model`] (grey_model_quantize and
//! grey_model_dequantize). The policy is libgrey's; these pass the caller's choices on.

use crate::{
    c_string, c_string_or_null, check, ptr_or_null, read_text, sys, Calibration, Context, DType,
    Error, Result,
};
use std::ffi::{c_char, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The progress of a whole-model call: `progress(bytes_done, bytes_total, tensor)`, called before the
/// first tensor and after each one (input bytes, kept tensors included). Returning `true` stops the
/// call, which then fails with [`Error::Cancelled`] and writes nothing; so does a panic in it.
pub type Progress<'a> = &'a dyn Fn(u64, u64, &str) -> bool;

unsafe extern "C" fn progress_trampoline(
    done: u64,
    total: u64,
    tensor: *const c_char,
    user: *mut c_void,
) -> u32 {
    // SAFETY: `user` is the `Progress` the caller set, alive for the whole call; `tensor` a C string.
    let progress = unsafe { &*(user as *const Progress) };
    let name = unsafe { CStr::from_ptr(tensor) }.to_string_lossy();
    // A panic must not unwind into C.
    u32::from(catch_unwind(AssertUnwindSafe(|| progress(done, total, &name))).unwrap_or(true))
}

/// The caller's choices for [`quantize_model`]; `ModelQuantOptions::default()` is libgrey's default
/// policy (grey.h, "Whole models").
#[derive(Default)]
pub struct ModelQuantOptions<'a> {
    pub calibration: Calibration,
    /// RE2 patterns of tensor names to keep in their precision.
    pub keep: Vec<String>,
    /// RE2 patterns of tensor names to quantize even when they are critical layers.
    pub quantize: Vec<String>,
    /// (pattern, format): the first whose pattern matches a name gives its format.
    pub formats: Vec<(String, String)>,
    /// Quantize the critical layers too (embeddings, output layer, norms, biases, first and last conv).
    pub quantize_critical: bool,
    /// Succeed, and write, when no tensor is quantized.
    pub allow_empty: bool,
    /// Replace a file already at the output path.
    pub replace: bool,
    /// Quantize in buffers on `device` of this context rather than in host memory.
    pub context: Option<(&'a Context, u32)>,
    /// Told of every tensor done; can stop the call.
    pub progress: Option<Progress<'a>>,
}

fn pattern_lines(what: &str, patterns: impl Iterator<Item = String>) -> Result<CString> {
    let mut text = String::new();
    for p in patterns {
        if p.contains('\n') {
            return Err(Error::InvalidArgument(format!(
                "{what}: a pattern cannot hold a line break: {p:?}"
            )));
        }
        text.push_str(&p);
        text.push('\n');
    }
    c_string("grey_model_quantize", what, &text)
}

/// Quantizes the model file `input` in `format` ("int4-g128", ...) under libgrey's policy and writes
/// `output` (.safetensors or .gguf; None to measure only). Returns the report as JSON text:
/// {"tensors": [...], "kept": [{"name", "dtype", "shape", "reason"}...], "total": {...}}.
pub fn quantize_model(
    input: &str,
    output: Option<&str>,
    format: &str,
    options: &ModelQuantOptions,
) -> Result<String> {
    let input_c = c_string("grey_model_quantize", "input_path", input)?;
    let output_c = c_string_or_null("grey_model_quantize", "output_path", output)?;
    let format_c = c_string("grey_model_quantize", "format", format)?;
    let keep = pattern_lines("keep_patterns", options.keep.iter().cloned())?;
    let quantize = pattern_lines("quantize_patterns", options.quantize.iter().cloned())?;
    let overrides = pattern_lines(
        "format_overrides",
        options.formats.iter().map(|(p, f)| format!("{p}={f}")),
    )?;
    let mut raw: sys::grey_model_quant_options = versioned!(sys::grey_model_quant_options);
    raw.calibration = options.calibration.raw();
    raw.keep_critical = u32::from(!options.quantize_critical);
    raw.allow_empty = u32::from(options.allow_empty);
    raw.replace = u32::from(options.replace);
    raw.keep_patterns = keep.as_ptr();
    raw.quantize_patterns = quantize.as_ptr();
    raw.format_overrides = overrides.as_ptr();
    if let Some((context, device)) = options.context {
        raw.context = context.raw();
        raw.device = device;
    }
    if let Some(progress) = options.progress.as_ref() {
        raw.progress = Some(progress_trampoline);
        raw.progress_user = progress as *const Progress as *mut c_void;
    }
    let mut result = std::ptr::null_mut();
    check(unsafe {
        sys::grey_model_quantize(
            input_c.as_ptr(),
            ptr_or_null(&output_c),
            format_c.as_ptr(),
            &raw,
            &mut result,
        )
    })?;
    let text = read_text(|buffer, size, length| unsafe {
        sys::grey_model_quant_result_json(result, buffer, size, length)
    });
    unsafe { sys::grey_model_quant_result_destroy(result) };
    text
}

/// Restores a full-precision safetensors file `output` from the model `input` that libgrey quantized:
/// quantized tensors become `dtype` (F32, F16 or BF16) in their original shape, the rest is copied.
pub fn dequantize_model(input: &str, output: &str, dtype: DType, replace: bool) -> Result<()> {
    dequantize_model_with_progress(input, output, dtype, replace, None)
}

/// [`dequantize_model`], telling `progress` of every tensor done (it can stop the call).
pub fn dequantize_model_with_progress(
    input: &str,
    output: &str,
    dtype: DType,
    replace: bool,
    progress: Option<Progress>,
) -> Result<()> {
    let input_c = c_string("grey_model_dequantize", "input_path", input)?;
    let output_c = c_string("grey_model_dequantize", "output_path", output)?;
    let mut raw: sys::grey_model_dequant_options = versioned!(sys::grey_model_dequant_options);
    raw.dtype = dtype.0;
    raw.replace = u32::from(replace);
    if let Some(progress) = progress.as_ref() {
        raw.progress = Some(progress_trampoline);
        raw.progress_user = progress as *const Progress as *mut c_void;
    }
    check(unsafe { sys::grey_model_dequantize(input_c.as_ptr(), output_c.as_ptr(), &raw) })
}
