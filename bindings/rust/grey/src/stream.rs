//! Streams and events: ordered work on one device, apart from the calling thread.
//!
//! The async calls are `unsafe`: they return once the work is enqueued, and the host memory and
//! buffers they name must stay alive and untouched until the stream reaches the work (synchronize the
//! stream, or an event recorded after it). [`HostMemory`] is memory the device transfers from at full
//! speed. Errors the work finds arrive at [`Stream::synchronize`].

use crate::quant::make_desc;
use crate::{check, Buffer, Context, DType, Mapping, MemoryKind, QuantParams, Result};
use grey_sys as sys;
use std::ffi::c_void;
use std::marker::PhantomData;
use std::ptr::NonNull;

/// An ordered queue of work on one device, borrowed from its context. Dropping it waits for its work.
pub struct Stream<'ctx> {
    raw: NonNull<sys::grey_stream>,
    context: PhantomData<&'ctx Context>,
}

unsafe impl Send for Stream<'_> {}
unsafe impl Sync for Stream<'_> {}

/// A point in a stream's work: record it on one stream, wait for it on another.
pub struct Event<'ctx> {
    raw: NonNull<sys::grey_event>,
    context: PhantomData<&'ctx Context>,
}

unsafe impl Send for Event<'_> {}
unsafe impl Sync for Event<'_> {}

/// Host memory from `grey_host_alloc` (pinned where the device's backend can pin), freed on drop.
pub struct HostMemory<'ctx> {
    context: &'ctx Context,
    memory: NonNull<u8>,
    size: usize,
}

unsafe impl Send for HostMemory<'_> {}
unsafe impl Sync for HostMemory<'_> {}

impl Context {
    /// A new stream on `device`.
    pub fn stream(&self, device: u32) -> Result<Stream<'_>> {
        let mut raw = std::ptr::null_mut();
        check(unsafe { sys::grey_stream_create(self.raw(), device, &mut raw) })?;
        Ok(Stream {
            raw: NonNull::new(raw).expect("grey_stream_create returned OK and NULL"),
            context: PhantomData,
        })
    }

    /// A stream over another library's stream on `device` (`grey_stream_wrap_native`): `kind` names its
    /// API ([`MemoryKind::CudaDevice`]: `handle` is a CUstream; 0, 1 and 2 are CUDA's NULL, legacy and
    /// per-thread default streams). libgrey's async work then runs in order with that library's, and
    /// [`Stream::wait`] makes it wait for an [`Event`] without blocking. Dropping it waits only for what
    /// libgrey enqueued on it.
    ///
    /// # Safety
    /// The native stream must stay alive, and on `device`'s primary context, until the returned stream
    /// is dropped.
    pub unsafe fn wrap_stream(&self, device: u32, kind: MemoryKind, handle: u64) -> Result<Stream<'_>> {
        let mut raw = std::ptr::null_mut();
        check(sys::grey_stream_wrap_native(self.raw(), device, kind.to_raw(), handle, &mut raw))?;
        Ok(Stream {
            raw: NonNull::new(raw).expect("grey_stream_wrap_native returned OK and NULL"),
            context: PhantomData,
        })
    }

    /// A new event on `device`.
    pub fn event(&self, device: u32) -> Result<Event<'_>> {
        let mut raw = std::ptr::null_mut();
        check(unsafe { sys::grey_event_create(self.raw(), device, &mut raw) })?;
        Ok(Event {
            raw: NonNull::new(raw).expect("grey_event_create returned OK and NULL"),
            context: PhantomData,
        })
    }

    /// `size` bytes (> 0) of host memory that `device` transfers from at full speed.
    pub fn host_memory(&self, device: u32, size: usize) -> Result<HostMemory<'_>> {
        let mut raw: *mut c_void = std::ptr::null_mut();
        check(unsafe { sys::grey_host_alloc(self.raw(), device, size as u64, &mut raw) })?;
        Ok(HostMemory {
            context: self,
            memory: NonNull::new(raw as *mut u8).expect("grey_host_alloc returned OK and NULL"),
            size,
        })
    }
}

impl HostMemory<'_> {
    pub fn as_slice(&self) -> &[u8] {
        unsafe { std::slice::from_raw_parts(self.memory.as_ptr(), self.size) }
    }
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        unsafe { std::slice::from_raw_parts_mut(self.memory.as_ptr(), self.size) }
    }
}

impl Drop for HostMemory<'_> {
    fn drop(&mut self) {
        // Only memory this context gave is freed here, so the call cannot fail.
        let _ =
            unsafe { sys::grey_host_free(self.context.raw(), self.memory.as_ptr() as *mut c_void) };
    }
}

impl Stream<'_> {
    pub(crate) fn raw(&self) -> *mut sys::grey_stream {
        self.raw.as_ptr()
    }

    /// Waits for all enqueued work; the first error it found since the last call.
    pub fn synchronize(&self) -> Result<()> {
        check(unsafe { sys::grey_stream_synchronize(self.raw.as_ptr()) })
    }

    /// Whether all enqueued work has run (a kept error is returned as `synchronize` does).
    pub fn query(&self) -> Result<bool> {
        let mut done = 0;
        check(unsafe { sys::grey_stream_query(self.raw.as_ptr(), &mut done) })?;
        Ok(done != 0)
    }

    /// Work enqueued after this waits for `event`'s latest record.
    pub fn wait(&self, event: &Event) -> Result<()> {
        check(unsafe { sys::grey_stream_wait_event(self.raw.as_ptr(), event.raw.as_ptr()) })
    }

    /// Enqueues a copy of `data` into `buffer` at `offset`.
    ///
    /// # Safety
    /// `data` and `buffer` must stay alive, and `data` unchanged, until the stream reaches the work.
    pub unsafe fn write_async(&self, buffer: &Buffer, offset: u64, data: &[u8]) -> Result<()> {
        check(sys::grey_buffer_write_async(
            buffer.raw(),
            offset,
            data.as_ptr() as *const c_void,
            data.len() as u64,
            self.raw.as_ptr(),
        ))
    }

    /// Enqueues a copy of `out.len()` bytes of `buffer` at `offset` into `out`.
    ///
    /// # Safety
    /// `out` and `buffer` must stay alive, and `out` unread, until the stream reaches the work.
    pub unsafe fn read_async(&self, buffer: &Buffer, offset: u64, out: &mut [u8]) -> Result<()> {
        check(sys::grey_buffer_read_async(
            buffer.raw(),
            offset,
            out.as_mut_ptr() as *mut c_void,
            out.len() as u64,
            self.raw.as_ptr(),
        ))
    }

    /// Enqueues a copy of `size` bytes between two buffers of the stream's device.
    ///
    /// # Safety
    /// Both buffers must stay alive until the stream reaches the work.
    pub unsafe fn copy_async(
        &self,
        destination: &Buffer,
        offset: u64,
        source: &Buffer,
        source_offset: u64,
        size: u64,
    ) -> Result<()> {
        check(sys::grey_buffer_copy_async(
            destination.raw(),
            offset,
            source.raw(),
            source_offset,
            size,
            self.raw.as_ptr(),
        ))
    }

    /// Enqueues a fill of `size` bytes at `offset` with `value`.
    ///
    /// # Safety
    /// `buffer` must stay alive until the stream reaches the work.
    pub unsafe fn fill_async(
        &self,
        buffer: &Buffer,
        offset: u64,
        value: u8,
        size: u64,
    ) -> Result<()> {
        check(sys::grey_buffer_fill_async(
            buffer.raw(),
            offset,
            value,
            size,
            self.raw.as_ptr(),
        ))
    }

    /// Enqueues `grey_quantize_buffer_async`: the plain tensor of `dtype` (F32, F16 or BF16) and `shape`
    /// at `source_offset` of `source`, quantized into `format` ("int8", "q4_0", ...;
    /// [`quant_size`](crate::quant_size) bytes) at `destination_offset` of `destination`. A NaN or
    /// infinite input is returned by the next [`Stream::synchronize`], in the synchronous call's words.
    ///
    /// # Safety
    /// Both buffers must stay alive until the stream reaches the work.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn quantize_async(
        &self,
        source: &Buffer,
        source_offset: u64,
        dtype: DType,
        shape: &[u64],
        format: &str,
        destination: &Buffer,
        destination_offset: u64,
    ) -> Result<()> {
        let params = QuantParams::from_name(format)?.raw();
        let desc = make_desc(dtype, shape)?;
        check(sys::grey_quantize_buffer_async(
            &desc,
            source.raw(),
            source_offset,
            &params,
            destination.raw(),
            destination_offset,
            self.raw.as_ptr(),
        ))
    }

    /// Enqueues `grey_dequantize_buffer_async`: `format` at `source_offset` of `source` back to `dtype`
    /// and `shape` at `destination_offset` of `destination`.
    ///
    /// # Safety
    /// Both buffers must stay alive until the stream reaches the work.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn dequantize_async(
        &self,
        source: &Buffer,
        source_offset: u64,
        format: &str,
        dtype: DType,
        shape: &[u64],
        destination: &Buffer,
        destination_offset: u64,
    ) -> Result<()> {
        let params = QuantParams::from_name(format)?.raw();
        let desc = make_desc(dtype, shape)?;
        check(sys::grey_dequantize_buffer_async(
            &desc,
            &params,
            source.raw(),
            source_offset,
            destination.raw(),
            destination_offset,
            self.raw.as_ptr(),
        ))
    }

    /// The stream's own handle in its vendor's API, for other libraries to enqueue on the same queue:
    /// `(MemoryKind::CudaDevice, a CUstream)` on a CUDA device. It belongs to the stream (valid while
    /// the stream lives). The host device has none: `Error::Unsupported` says so.
    pub fn native_handle(&self) -> Result<(MemoryKind, u64)> {
        let mut kind = sys::GREY_MEMORY_HOST;
        let mut handle = 0u64;
        check(unsafe { sys::grey_stream_native_handle(self.raw.as_ptr(), &mut kind, &mut handle) })?;
        Ok((MemoryKind::from_raw(kind), handle))
    }

    /// Maps `buffer` on this stream (`grey_buffer_map_async`), for writing when `write` is set: a sealed
    /// buffer that is not raw is decoded into the device's working-set cache by work on this stream; a
    /// raw buffer maps at once. The mapping's bytes are there once the stream reaches this point
    /// ([`Stream::synchronize`], or an [`Event`] recorded after). A failure of the mapping itself (the
    /// cache too small, a corrupted block) is returned by the next synchronize; the mapping then has
    /// address 0. Dropping the mapping unmaps it, which is not enqueued.
    ///
    /// # Safety
    /// The mapping's bytes must not be read before the stream has reached this point.
    pub unsafe fn map_async<'b>(&self, buffer: &'b Buffer<'b>, write: bool) -> Result<Mapping<'b>> {
        let access = if write { sys::GREY_MAP_WRITE } else { sys::GREY_MAP_READ };
        let mut raw = versioned!(sys::grey_buffer_mapping);
        check(sys::grey_buffer_map_async(buffer.raw(), access, &mut raw, self.raw.as_ptr()))?;
        Ok(Mapping::from_raw(buffer, &raw))
    }

    /// Enqueues `grey_buffer_checksum`; `*out` receives it when the stream reaches the work.
    ///
    /// # Safety
    /// `out` and `buffer` must stay alive, and `out` unread, until the stream reaches the work.
    pub unsafe fn checksum_async(
        &self,
        buffer: &Buffer,
        offset: u64,
        size: u64,
        out: &mut u64,
    ) -> Result<()> {
        check(sys::grey_buffer_checksum_async(
            buffer.raw(),
            offset,
            size,
            out,
            self.raw.as_ptr(),
        ))
    }
}

impl Drop for Stream<'_> {
    fn drop(&mut self) {
        unsafe { sys::grey_stream_destroy(self.raw.as_ptr()) }
    }
}

impl Event<'_> {
    /// Captures the work enqueued on `stream` so far.
    pub fn record(&self, stream: &Stream) -> Result<()> {
        check(unsafe { sys::grey_event_record(self.raw.as_ptr(), stream.raw.as_ptr()) })
    }

    /// Waits for the latest record; the error its stream had found by then, if any.
    pub fn synchronize(&self) -> Result<()> {
        check(unsafe { sys::grey_event_synchronize(self.raw.as_ptr()) })
    }

    /// Whether the latest record has completed.
    pub fn query(&self) -> Result<bool> {
        let mut done = 0;
        check(unsafe { sys::grey_event_query(self.raw.as_ptr(), &mut done) })?;
        Ok(done != 0)
    }

    /// Milliseconds from this event's latest record to `end`'s (one device); waits for both.
    pub fn elapsed_ms(&self, end: &Event) -> Result<f64> {
        let mut ms = 0.0;
        check(unsafe { sys::grey_event_elapsed_ms(self.raw.as_ptr(), end.raw.as_ptr(), &mut ms) })?;
        Ok(ms)
    }
}

impl Drop for Event<'_> {
    fn drop(&mut self) {
        unsafe { sys::grey_event_destroy(self.raw.as_ptr()) }
    }
}
