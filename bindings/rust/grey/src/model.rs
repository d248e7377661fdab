//! Model files: [`Model`] (safetensors and GGUF, memory-mapped) and [`ModelWriter`].

use crate::quant::{make_desc, DType, TensorRef};
use crate::{c_string, check, sys, text, Error, Result};
use std::ffi::c_void;
use std::ptr::NonNull;

/// The two container formats libgrey reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFormat {
    Safetensors,
    Gguf,
}

impl ModelFormat {
    fn raw(self) -> sys::grey_model_format {
        match self {
            ModelFormat::Safetensors => sys::GREY_MODEL_FORMAT_SAFETENSORS,
            ModelFormat::Gguf => sys::GREY_MODEL_FORMAT_GGUF,
        }
    }

    /// "safetensors" or "gguf".
    pub fn name(self) -> &'static str {
        match self {
            ModelFormat::Safetensors => "safetensors",
            ModelFormat::Gguf => "gguf",
        }
    }
}

/// A safetensors or GGUF file, memory-mapped read-only (the format is chosen by content), unmapped on
/// drop. Its tensors borrow it, so none outlives the mapping.
pub struct Model {
    raw: NonNull<sys::grey_model>,
}

// grey.h: a model is immutable once open, and any number of threads may read it.
unsafe impl Send for Model {}
unsafe impl Sync for Model {}

/// One tensor of a [`Model`]; `data` is the tensor's bytes in the mapped file.
#[derive(Debug, Clone)]
pub struct ModelTensor<'m> {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<u64>,
    /// GGUF: the ggml type number; safetensors: 0.
    pub file_type: u32,
    pub data: &'m [u8],
}

impl ModelTensor<'_> {
    /// The tensor as a [`TensorRef`], for [`crate::quantize`].
    pub fn as_tensor(&self) -> TensorRef<'_> {
        TensorRef::bytes(self.dtype, &self.shape, self.data)
    }
}

impl Model {
    /// Maps the file at `path`. A truncated or malformed file is `Error::Corrupt` naming what is wrong.
    pub fn open(path: &str) -> Result<Model> {
        let c_path = c_string("grey_model_create", "path", path)?;
        let mut raw = std::ptr::null_mut();
        check(unsafe { sys::grey_model_create(c_path.as_ptr(), &mut raw) })?;
        Ok(Model {
            raw: NonNull::new(raw).expect("grey_model_create returned OK and NULL"),
        })
    }

    pub fn format(&self) -> Result<ModelFormat> {
        let mut format = 0;
        check(unsafe { sys::grey_model_format_get(self.raw.as_ptr(), &mut format) })?;
        match format {
            sys::GREY_MODEL_FORMAT_SAFETENSORS => Ok(ModelFormat::Safetensors),
            sys::GREY_MODEL_FORMAT_GGUF => Ok(ModelFormat::Gguf),
            other => Err(Error::Other {
                status: sys::GREY_ERROR_UNSUPPORTED as u32,
                message: format!("grey: model format {} is newer than this crate", other),
            }),
        }
    }

    /// The number of tensors.
    pub fn len(&self) -> Result<u64> {
        let mut n = 0;
        check(unsafe { sys::grey_model_tensor_count(self.raw.as_ptr(), &mut n) })?;
        Ok(n)
    }

    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// The tensor at `index`, in file order.
    pub fn tensor(&self, index: u64) -> Result<ModelTensor<'_>> {
        let mut t = versioned!(sys::grey_model_tensor);
        check(unsafe { sys::grey_model_tensor_get(self.raw.as_ptr(), index, &mut t) })?;
        let data = if t.size_bytes == 0 {
            &[][..]
        } else {
            // grey.h: the bytes lie in the mapping, valid until the model is destroyed, which the
            // returned lifetime (a borrow of self) guarantees.
            unsafe { std::slice::from_raw_parts(t.data as *const u8, t.size_bytes as usize) }
        };
        // grey.h: desc is owned by the model and valid as `name`; it is copied out here.
        let desc = unsafe { &*t.desc };
        Ok(ModelTensor {
            name: unsafe { text(t.name) },
            dtype: DType(desc.dtype),
            shape: desc.shape[..desc.rank as usize].to_vec(),
            file_type: t.file_type,
            data,
        })
    }

    /// Every tensor, in file order.
    pub fn tensors(&self) -> Result<Vec<ModelTensor<'_>>> {
        (0..self.len()?).map(|i| self.tensor(i)).collect()
    }

    /// The tensor called `name`, if there is one.
    pub fn get(&self, name: &str) -> Result<Option<ModelTensor<'_>>> {
        Ok(self.tensors()?.into_iter().find(|t| t.name == name))
    }

    /// Drops the pages of tensor `index` from the process's resident memory. Its `data` stays valid
    /// and reads the file again if touched: a program walking a model larger than memory evicts each
    /// tensor when done with it.
    pub fn evict(&self, index: u64) -> Result<()> {
        check(unsafe { sys::grey_model_tensor_evict(self.raw.as_ptr(), index) })
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        unsafe { sys::grey_model_destroy(self.raw.as_ptr()) }
    }
}

/// Writes a safetensors or GGUF file: all at once ([`ModelWriter::add_tensor`], [`ModelWriter::write`])
/// or streamed, holding one tensor at a time ([`ModelWriter::declare_tensor`] for every tensor,
/// [`ModelWriter::open`], [`ModelWriter::write_tensor`] for each, [`ModelWriter::finish`]). Either way
/// the file appears at its path only when complete; dropping an unfinished writer leaves nothing.
pub struct ModelWriter {
    raw: NonNull<sys::grey_model_writer>,
}

// One thread at a time (grey.h), which &mut self gives; moving it between threads is fine.
unsafe impl Send for ModelWriter {}

impl ModelWriter {
    pub fn new(format: ModelFormat) -> Result<ModelWriter> {
        let mut raw = std::ptr::null_mut();
        check(unsafe { sys::grey_model_writer_create(format.raw(), &mut raw) })?;
        Ok(ModelWriter {
            raw: NonNull::new(raw).expect("grey_model_writer_create returned OK and NULL"),
        })
    }

    /// Copies every metadata entry of `source`.
    pub fn copy_metadata(&mut self, source: &Model) -> Result<()> {
        check(unsafe {
            sys::grey_model_writer_copy_metadata(self.raw.as_ptr(), source.raw.as_ptr())
        })
    }

    /// Sets a string metadata entry, replacing one of the same key.
    pub fn set_metadata(&mut self, key: &str, value: &str) -> Result<()> {
        let k = c_string("grey_model_writer_set_metadata", "key", key)?;
        let v = c_string("grey_model_writer_set_metadata", "value", value)?;
        check(unsafe {
            sys::grey_model_writer_set_metadata(self.raw.as_ptr(), k.as_ptr(), v.as_ptr())
        })
    }

    /// Adds a tensor (its bytes are copied). `file_type` is the ggml type number, read only for a GGUF
    /// tensor of DType OTHER.
    pub fn add_tensor(&mut self, name: &str, tensor: TensorRef<'_>, file_type: u32) -> Result<()> {
        let c_name = c_string("grey_model_writer_add_tensor", "name", name)?;
        let desc = make_desc(tensor.dtype, tensor.shape)?;
        check(unsafe {
            sys::grey_model_writer_add_tensor(
                self.raw.as_ptr(),
                c_name.as_ptr(),
                &desc,
                file_type,
                tensor.data.as_ptr() as *const c_void,
                tensor.data.len() as u64,
            )
        })
    }

    /// Writes the file, replacing `path`.
    pub fn write(&mut self, path: &str) -> Result<()> {
        let c_path = c_string("grey_model_writer_write", "path", path)?;
        check(unsafe { sys::grey_model_writer_write(self.raw.as_ptr(), c_path.as_ptr()) })
    }

    /// Declares the next tensor without its bytes, for a streamed file; returns its index.
    pub fn declare_tensor(
        &mut self,
        name: &str,
        dtype: DType,
        shape: &[u64],
        file_type: u32,
    ) -> Result<u64> {
        let c_name = c_string("grey_model_writer_declare_tensor", "name", name)?;
        let desc = make_desc(dtype, shape)?;
        let mut index = 0u64;
        check(unsafe {
            sys::grey_model_writer_declare_tensor(
                self.raw.as_ptr(),
                c_name.as_ptr(),
                &desc,
                file_type,
                &mut index,
            )
        })?;
        Ok(index)
    }

    /// Starts the streamed file at `path` (its header is written now). A file already there is
    /// `Error::Io` unless `replace`.
    pub fn open(&mut self, path: &str, replace: bool) -> Result<()> {
        let c_path = c_string("grey_model_writer_open", "path", path)?;
        let mut options = versioned!(sys::grey_model_write_options);
        options.replace = u32::from(replace);
        check(unsafe { sys::grey_model_writer_open(self.raw.as_ptr(), c_path.as_ptr(), &options) })
    }

    /// Writes the next bytes of declared tensor `index` (tensors in any order, a tensor in pieces).
    pub fn write_tensor(&mut self, index: u64, data: &[u8]) -> Result<()> {
        check(unsafe {
            sys::grey_model_writer_write_tensor(
                self.raw.as_ptr(),
                index,
                data.as_ptr() as *const c_void,
                data.len() as u64,
            )
        })
    }

    /// Completes the streamed file and puts it at its path.
    pub fn finish(&mut self) -> Result<()> {
        check(unsafe { sys::grey_model_writer_finish(self.raw.as_ptr()) })
    }
}

impl Drop for ModelWriter {
    fn drop(&mut self) {
        unsafe { sys::grey_model_writer_destroy(self.raw.as_ptr()) }
    }
}
