//! libgrey for Rust: a safe API over [`grey_sys`].
//!
//! ```no_run
//! let ctx = grey::Context::new()?;
//! for dev in ctx.devices()? {
//!     println!("{} {:?} {:?}", dev.name().unwrap_or("-"), dev.memory_total_bytes(), dev.compute_units());
//! }
//! # Ok::<(), grey::Error>(())
//! ```
//!
//! Quantization and the audit log:
//!
//! ```no_run
//! let weights = vec![0.5f32; 4 * 128];
//! let q = grey::quantize(grey::TensorRef::f32(&weights, &[4, 128]), "int4-g128", grey::Calibration::Mse)?;
//! println!("{} {}", q.report.rel_rmse, q.report.sqnr_db);
//! let log = grey::AuditLog::open("audit.log", "audit.key.writer")?;
//! log.append("run", r#"{"step":1}"#)?;
//! # Ok::<(), grey::Error>(())
//! ```
//!
//! Handles are owned and freed on `Drop`; a [`Buffer`] borrows its [`Context`], so a context cannot
//! be dropped while one of its buffers lives, and a [`ModelTensor`]'s bytes borrow their [`Model`]. Every fallible call returns `Result<T, grey::Error>`,
//! whose message is libgrey's `grey_last_error()` for the failing call.

use grey_sys as sys;
use std::ffi::{CStr, CString};
use std::fmt;
use std::os::raw::c_char;

// ---- errors -------------------------------------------------------------------------------------

/// A failed libgrey call, one variant per `grey_status`, each with libgrey's message.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    InvalidArgument(String),
    OutOfMemory(String),
    Unsupported(String),
    NotFound(String),
    Io(String),
    Corrupt(String),
    Config(String),
    Backend(String),
    PermissionDenied(String),
    /// `required` is the size (in bytes, NUL included) to ask for.
    BufferTooSmall {
        message: String,
        required: usize,
    },
    Internal(String),
    /// Not admitted before the timeout (nothing is held).
    Timeout(String),
    /// An emergency stop is in force: no work is admitted.
    Stopped(String),
    /// A progress callback asked the call to stop (nothing was written).
    Cancelled(String),
    /// A status this version of the crate does not know.
    Other {
        status: u32,
        message: String,
    },
    /// A string argument held a NUL byte, which a C string cannot carry (C would read it only up to
    /// that byte). The message names the grey.h function and parameter; `status()` is
    /// `GREY_ERROR_INVALID_ARGUMENT`. The library is not called.
    Nul(String),
}

impl Error {
    fn from_status(status: sys::grey_status, message: String, required: usize) -> Error {
        match status {
            sys::GREY_ERROR_INVALID_ARGUMENT => Error::InvalidArgument(message),
            sys::GREY_ERROR_OUT_OF_MEMORY => Error::OutOfMemory(message),
            sys::GREY_ERROR_UNSUPPORTED => Error::Unsupported(message),
            sys::GREY_ERROR_NOT_FOUND => Error::NotFound(message),
            sys::GREY_ERROR_IO => Error::Io(message),
            sys::GREY_ERROR_CORRUPT => Error::Corrupt(message),
            sys::GREY_ERROR_CONFIG => Error::Config(message),
            sys::GREY_ERROR_BACKEND => Error::Backend(message),
            sys::GREY_ERROR_PERMISSION_DENIED => Error::PermissionDenied(message),
            sys::GREY_ERROR_BUFFER_TOO_SMALL => Error::BufferTooSmall { message, required },
            sys::GREY_ERROR_INTERNAL => Error::Internal(message),
            sys::GREY_ERROR_TIMEOUT => Error::Timeout(message),
            sys::GREY_ERROR_STOPPED => Error::Stopped(message),
            sys::GREY_ERROR_CANCELLED => Error::Cancelled(message),
            status => Error::Other {
                status: status as u32,
                message,
            },
        }
    }

    /// The `grey_status` value (`GREY_ERROR_INVALID_ARGUMENT`, ...); `Nul` reports invalid argument.
    pub fn status(&self) -> u32 {
        (match self {
            Error::InvalidArgument(_) | Error::Nul(_) => sys::GREY_ERROR_INVALID_ARGUMENT,
            Error::OutOfMemory(_) => sys::GREY_ERROR_OUT_OF_MEMORY,
            Error::Unsupported(_) => sys::GREY_ERROR_UNSUPPORTED,
            Error::NotFound(_) => sys::GREY_ERROR_NOT_FOUND,
            Error::Io(_) => sys::GREY_ERROR_IO,
            Error::Corrupt(_) => sys::GREY_ERROR_CORRUPT,
            Error::Config(_) => sys::GREY_ERROR_CONFIG,
            Error::Backend(_) => sys::GREY_ERROR_BACKEND,
            Error::PermissionDenied(_) => sys::GREY_ERROR_PERMISSION_DENIED,
            Error::BufferTooSmall { .. } => sys::GREY_ERROR_BUFFER_TOO_SMALL,
            Error::Internal(_) => sys::GREY_ERROR_INTERNAL,
            Error::Timeout(_) => sys::GREY_ERROR_TIMEOUT,
            Error::Stopped(_) => sys::GREY_ERROR_STOPPED,
            Error::Cancelled(_) => sys::GREY_ERROR_CANCELLED,
            Error::Other { status, .. } => return *status,
        }) as u32
    }

    /// libgrey's message.
    pub fn message(&self) -> &str {
        match self {
            Error::InvalidArgument(m)
            | Error::OutOfMemory(m)
            | Error::Unsupported(m)
            | Error::NotFound(m)
            | Error::Io(m)
            | Error::Corrupt(m)
            | Error::Config(m)
            | Error::Backend(m)
            | Error::PermissionDenied(m)
            | Error::Internal(m)
            | Error::Timeout(m)
            | Error::Stopped(m)
            | Error::Cancelled(m)
            | Error::Nul(m) => m,
            Error::BufferTooSmall { message, .. } | Error::Other { message, .. } => message,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// Turns a status into a Result, reading grey_last_error() at once, on this thread.
fn check(status: sys::grey_status) -> Result<()> {
    check_sized(status, 0)
}

fn check_sized(status: sys::grey_status, required: usize) -> Result<()> {
    if status == sys::GREY_OK {
        return Ok(());
    }
    let detail = unsafe { text(sys::grey_last_error()) };
    let message = if detail.is_empty() {
        unsafe { text(sys::grey_status_string(status)) }
    } else {
        detail
    };
    Err(Error::from_status(status, message, required))
}

/// A static or library-owned C string as a String ("" for NULL).
unsafe fn text(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

/// The name libgrey gives an enum value (a static string in the library, which stays loaded for the
/// life of the process), or "unknown" for a value newer than the library.
pub(crate) unsafe fn enum_name(p: *const c_char) -> &'static str {
    if p.is_null() {
        "unknown"
    } else {
        CStr::from_ptr(p).to_str().unwrap_or("unknown")
    }
}

/// `s` as the C string for `parameter` of grey.h's `function` ("grey_model_create", "path"). Every
/// string the crate hands to libgrey goes through here (tests/strings.rs checks that): one holding a
/// NUL byte is `Error::Nul`, never a string cut short at it.
fn c_string(function: &str, parameter: &str, s: &str) -> Result<CString> {
    CString::new(s).map_err(|e| {
        Error::Nul(format!(
            "{function}: {parameter} holds a NUL byte (at byte {}), which a C string cannot carry: it would end there",
            e.nul_position()
        ))
    })
}

/// [`c_string`] of an optional string (None: NULL).
fn c_string_or_null(function: &str, parameter: &str, s: Option<&str>) -> Result<Option<CString>> {
    s.map(|s| c_string(function, parameter, s)).transpose()
}

/// The pointer C takes for an optional string: NULL for None.
fn ptr_or_null(s: &Option<CString>) -> *const c_char {
    s.as_ref().map_or(std::ptr::null(), |c| c.as_ptr())
}

fn chars(array: &[c_char]) -> String {
    let bytes: Vec<u8> = array
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Runs a call that follows grey.h's text buffer protocol: ask for the length, then fill.
fn read_text(
    mut call: impl FnMut(*mut c_char, usize, *mut usize) -> sys::grey_status,
) -> Result<String> {
    let mut length = 0usize;
    let status = call(std::ptr::null_mut(), 0, &mut length);
    if status != sys::GREY_ERROR_BUFFER_TOO_SMALL {
        check(status)?;
    }
    let mut buffer = vec![0u8; length + 1];
    check_sized(
        call(
            buffer.as_mut_ptr() as *mut c_char,
            buffer.len(),
            &mut length,
        ),
        length + 1,
    )?;
    buffer.truncate(length);
    Ok(String::from_utf8_lossy(&buffer).into_owned())
}

/// A zeroed versioned struct with its struct_size filled.
macro_rules! versioned {
    ($t:ty) => {{
        let mut v: $t = unsafe { std::mem::zeroed() };
        v.struct_size = std::mem::size_of::<$t>() as u32;
        v
    }};
}

// ---- version ------------------------------------------------------------------------------------

/// The loaded library's version, "MAJOR.MINOR.PATCH".
pub fn version() -> String {
    unsafe { text(sys::grey_version_string()) }
}

/// The loaded library's version as (major << 16) | (minor << 8) | patch.
pub fn version_number() -> u32 {
    unsafe { sys::grey_version() }
}

/// The source revision libgrey was built from.
pub fn build_revision() -> String {
    unsafe { text(sys::grey_build_revision()) }
}

mod audit;
mod config;
mod context;
mod device;
mod govern;
mod kv;
mod model;
mod model_quant;
mod quant;
mod stream;

pub use audit::{
    audit_check_proof, audit_keygen, audit_prove_consistency, audit_prove_inclusion,
    audit_records_json, audit_verify, audit_verify_with_threads, hex, proof_verify, sha256_file,
    AuditLog, AuditLogBuilder, AuditLogInfo, AuditReport, KeygenOptions, ProofReport,
};
pub use config::{config_keys, Config, ConfigView};
pub use context::{
    BackendInfo, Buffer, Context, ContextBuilder, LogLevel, Mapping, MemoryKind, PluginDir,
};
pub use device::{DeviceSpec, Field, Telemetry, Value};
pub use govern::{
    Admission, DeviceGovernState, GovernorState, Governor, Tenant, TenantStats, WAIT_FOREVER,
};
pub use model::{Model, ModelFormat, ModelTensor, ModelWriter};
pub use model_quant::{dequantize_model, dequantize_model_with_progress, quantize_model, ModelQuantOptions, Progress};
pub use kv::{KvCache, KvConfig, KvFormat, KvStats};
pub use stream::{Event, HostMemory, Stream};
pub use quant::{
    quant_compare, quant_formats, quant_size, quantize, Calibration, DType, QuantParams,
    QuantReport, QuantizedTensor, TensorRef,
};
