//! Quantization: [`quantize`], [`QuantizedTensor`], [`quant_compare`], and the format names every
//! libgrey front end shares ([`quant_formats`], [`QuantParams::from_name`]).

use crate::{c_string, check, sys, Error, Result};
use std::ffi::c_void;
use std::fmt;

/// A grey_dtype: the element type of a tensor. `Display` gives its grey.h name ("F32", "Q4_0", ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DType(pub u32);

impl DType {
    pub const F32: DType = DType(sys::GREY_DTYPE_F32);
    pub const F16: DType = DType(sys::GREY_DTYPE_F16);
    pub const BF16: DType = DType(sys::GREY_DTYPE_BF16);

    /// The grey.h name, or None for a value this libgrey does not know.
    pub fn name(self) -> Option<&'static str> {
        let p = unsafe { sys::grey_dtype_name(self.0) };
        if p.is_null() {
            None
        } else {
            // Static storage in libgrey (grey.h).
            unsafe { std::ffi::CStr::from_ptr(p) }.to_str().ok()
        }
    }

    /// The DType of a grey.h name ("F32", "BF16", "Q8_0", ...).
    pub fn from_name(name: &str) -> Result<DType> {
        (0..256)
            .map(DType)
            .take_while(|d| d.name().is_some())
            .find(|d| d.name() == Some(name))
            .ok_or_else(|| Error::InvalidArgument(format!("grey: unknown element type {:?}", name)))
    }

    fn is_plain(self) -> bool {
        self == DType::F32 || self == DType::F16 || self == DType::BF16
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "DType({})", self.0),
        }
    }
}

/// How quantization chooses its scales.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Calibration {
    /// Round to nearest, the scale taken from the absolute maximum.
    #[default]
    Rtn,
    /// Per group, the clipping range with the least squared error.
    Mse,
}

impl Calibration {
    pub(crate) fn raw(self) -> sys::grey_quant_calibration {
        match self {
            Calibration::Rtn => sys::GREY_CALIBRATION_RTN,
            Calibration::Mse => sys::GREY_CALIBRATION_MSE,
        }
    }

    fn from_raw(raw: sys::grey_quant_calibration) -> Calibration {
        if raw == sys::GREY_CALIBRATION_MSE {
            Calibration::Mse
        } else {
            Calibration::Rtn
        }
    }

    /// "rtn" or "mse".
    pub fn name(self) -> &'static str {
        match self {
            Calibration::Rtn => "rtn",
            Calibration::Mse => "mse",
        }
    }
}

/// Every format name libgrey knows ("int8", "int4-g128", ...), in its documented order.
pub fn quant_formats() -> Vec<&'static str> {
    let n = unsafe { sys::grey_quant_name_count() };
    (0..n)
        .filter_map(|i| {
            let p = unsafe { sys::grey_quant_name_at(i) };
            // Static storage in libgrey (grey.h).
            (!p.is_null()).then(|| {
                unsafe { std::ffi::CStr::from_ptr(p) }
                    .to_str()
                    .unwrap_or("")
            })
        })
        .collect()
}

/// A grey_quant_params. Make one from a format name: `QuantParams::from_name("int4-g128")?`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuantParams {
    /// A grey_quant_format value (`grey_sys::GREY_QUANT_INT8`, ...).
    pub format: u32,
    pub calibration: Calibration,
    pub group_size: u32,
    pub axis: i32,
}

impl QuantParams {
    /// Parses a format name (grey_quant_params_from_name); calibration RTN. An unknown name is
    /// `Error::InvalidArgument` listing the valid ones.
    pub fn from_name(name: &str) -> Result<QuantParams> {
        let c_name = c_string("grey_quant_params_from_name", "name", name)?;
        let mut raw = versioned!(sys::grey_quant_params);
        check(unsafe { sys::grey_quant_params_from_name(c_name.as_ptr(), &mut raw) })?;
        Ok(QuantParams {
            format: raw.format,
            calibration: Calibration::from_raw(raw.calibration),
            group_size: raw.group_size,
            axis: raw.axis,
        })
    }

    /// The same parameters with another calibration.
    pub fn with_calibration(self, calibration: Calibration) -> QuantParams {
        QuantParams {
            calibration,
            ..self
        }
    }

    /// The format name of these parameters (grey_quant_params_name), or None when none stands for them.
    pub fn name(&self) -> Option<&'static str> {
        let raw = self.raw();
        let p = unsafe { sys::grey_quant_params_name(&raw) };
        // Static storage in libgrey (grey.h).
        (!p.is_null()).then(|| {
            unsafe { std::ffi::CStr::from_ptr(p) }
                .to_str()
                .unwrap_or("")
        })
    }

    pub(crate) fn raw(&self) -> sys::grey_quant_params {
        let mut raw = versioned!(sys::grey_quant_params);
        raw.format = self.format;
        raw.calibration = self.calibration.raw();
        raw.group_size = self.group_size;
        raw.axis = self.axis;
        raw
    }
}

/// A borrowed tensor in host memory: element type, shape (outermost first) and bytes.
#[derive(Debug, Clone, Copy)]
pub struct TensorRef<'a> {
    pub dtype: DType,
    pub shape: &'a [u64],
    pub data: &'a [u8],
}

impl<'a> TensorRef<'a> {
    /// An F32 tensor over `values`, without copying them.
    pub fn f32(values: &'a [f32], shape: &'a [u64]) -> TensorRef<'a> {
        // u8 has no alignment requirement and every byte of an f32 is initialised.
        let data = unsafe {
            std::slice::from_raw_parts(values.as_ptr() as *const u8, std::mem::size_of_val(values))
        };
        TensorRef {
            dtype: DType::F32,
            shape,
            data,
        }
    }

    /// A tensor of any element type over its bytes (F16 and BF16 as their 2-byte bit patterns).
    pub fn bytes(dtype: DType, shape: &'a [u64], data: &'a [u8]) -> TensorRef<'a> {
        TensorRef { dtype, shape, data }
    }
}

pub(crate) fn make_desc(dtype: DType, shape: &[u64]) -> Result<sys::grey_tensor_desc> {
    let mut desc = versioned!(sys::grey_tensor_desc);
    if shape.len() > desc.shape.len() {
        return Err(Error::InvalidArgument(format!(
            "grey: rank {} is more than libgrey's {}",
            shape.len(),
            desc.shape.len()
        )));
    }
    desc.dtype = dtype.0;
    desc.rank = shape.len() as u32;
    desc.shape[..shape.len()].copy_from_slice(shape);
    Ok(desc)
}

fn require_plain(dtype: DType, what: &str) -> Result<()> {
    if dtype.is_plain() {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "grey: {} must be F32, F16 or BF16, not {}",
            what, dtype
        )))
    }
}

/// What a quantization cost, measured against a float64 reference.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantReport {
    pub calibration: Calibration,
    pub elements: u64,
    pub bytes: u64,
    pub bits_per_weight: f64,
    pub rel_rmse: f64,
    /// +inf when the result is exact.
    pub sqnr_db: f64,
    pub max_abs_err: f64,
    pub sum_squared_error: f64,
    pub sum_squared_signal: f64,
}

impl QuantReport {
    fn from_raw(raw: &sys::grey_quant_report) -> QuantReport {
        QuantReport {
            calibration: Calibration::from_raw(raw.calibration),
            elements: raw.elements,
            bytes: raw.bytes,
            bits_per_weight: raw.bits_per_weight,
            rel_rmse: raw.rel_rmse,
            sqnr_db: raw.sqnr_db,
            max_abs_err: raw.max_abs_err,
            sum_squared_error: raw.sum_squared_error,
            sum_squared_signal: raw.sum_squared_signal,
        }
    }
}

/// A quantized tensor: its bytes in the layout of docs/quantization.md, what it was made from, and
/// the error measured when it was made.
#[derive(Debug, Clone)]
pub struct QuantizedTensor {
    /// The format name.
    pub format: String,
    pub params: QuantParams,
    pub shape: Vec<u64>,
    /// The element type it was quantized from.
    pub dtype: DType,
    pub data: Vec<u8>,
    pub report: QuantReport,
}

/// The bytes the quantized form of a tensor of `shape` takes in `format`.
pub fn quant_size(shape: &[u64], format: &str) -> Result<u64> {
    let params = QuantParams::from_name(format)?.raw();
    let desc = make_desc(DType::F32, shape)?;
    let mut size = 0;
    check(unsafe { sys::grey_quant_size(&desc, &params, &mut size) })?;
    Ok(size)
}

/// Quantizes `input` (F32, F16 or BF16) into `format` ("int8", "int4-g128", ...; [`quant_formats`])
/// and measures the error. The input is read in place.
pub fn quantize(
    input: TensorRef<'_>,
    format: &str,
    calibration: Calibration,
) -> Result<QuantizedTensor> {
    let params = QuantParams::from_name(format)?.with_calibration(calibration);
    require_plain(input.dtype, "the input")?;
    let desc = make_desc(input.dtype, input.shape)?;
    let raw_params = params.raw();
    let mut size = 0;
    check(unsafe { sys::grey_quant_size(&desc, &raw_params, &mut size) })?;
    let mut data = vec![0u8; size as usize];
    let mut report = versioned!(sys::grey_quant_report);
    check(unsafe {
        sys::grey_quantize(
            &desc,
            input.data.as_ptr() as *const c_void,
            input.data.len() as u64,
            &raw_params,
            data.as_mut_ptr() as *mut c_void,
            data.len() as u64,
            &mut report,
        )
    })?;
    Ok(QuantizedTensor {
        format: format.to_string(),
        params,
        shape: input.shape.to_vec(),
        dtype: input.dtype,
        data,
        report: QuantReport::from_raw(&report),
    })
}

impl QuantizedTensor {
    fn elements(&self) -> u64 {
        self.shape.iter().product()
    }

    /// The values as bytes of `dtype` (F32, F16 or BF16).
    pub fn dequantize(&self, dtype: DType) -> Result<Vec<u8>> {
        require_plain(dtype, "the output")?;
        let width = if dtype == DType::F32 { 4 } else { 2 };
        let mut out = vec![0u8; (self.elements() * width) as usize];
        self.dequantize_into(dtype, &mut out)?;
        Ok(out)
    }

    /// The values as f32.
    pub fn dequantize_f32(&self) -> Result<Vec<f32>> {
        let mut out = vec![0f32; self.elements() as usize];
        // Every bit pattern is a valid f32, and u8 has no alignment requirement.
        let bytes = unsafe {
            std::slice::from_raw_parts_mut(
                out.as_mut_ptr() as *mut u8,
                std::mem::size_of_val(&out[..]),
            )
        };
        self.dequantize_into(DType::F32, bytes)?;
        Ok(out)
    }

    fn dequantize_into(&self, dtype: DType, out: &mut [u8]) -> Result<()> {
        let desc = make_desc(dtype, &self.shape)?;
        let params = self.params.raw();
        check(unsafe {
            sys::grey_dequantize(
                &desc,
                &params,
                self.data.as_ptr() as *const c_void,
                self.data.len() as u64,
                out.as_mut_ptr() as *mut c_void,
                out.len() as u64,
            )
        })
    }
}

/// Measures `approximation` against `reference` (same element type and shape) in float64.
pub fn quant_compare(
    reference: TensorRef<'_>,
    approximation: TensorRef<'_>,
) -> Result<QuantReport> {
    if reference.dtype != approximation.dtype
        || reference.shape != approximation.shape
        || reference.data.len() != approximation.data.len()
    {
        return Err(Error::InvalidArgument(format!(
            "grey: reference is {}{:?}, approximation {}{:?}: they must match",
            reference.dtype, reference.shape, approximation.dtype, approximation.shape
        )));
    }
    let desc = make_desc(reference.dtype, reference.shape)?;
    let mut report = versioned!(sys::grey_quant_report);
    check(unsafe {
        sys::grey_quant_compare(
            &desc,
            reference.data.as_ptr() as *const c_void,
            approximation.data.as_ptr() as *const c_void,
            reference.data.len() as u64,
            &mut report,
        )
    })?;
    Ok(QuantReport::from_raw(&report))
}
