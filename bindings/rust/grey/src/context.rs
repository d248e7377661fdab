use crate::config::ConfigView;
use crate::device::{read_fields, DeviceSpec, Telemetry};
use crate::{c_string_or_null, chars, check, enum_name, ptr_or_null, read_text, sys, Error, Result};
use std::ffi::{c_void, CStr};
use std::marker::PhantomData;
use std::os::raw::c_char;
use std::ptr::NonNull;

/// A grey_log_level: messages below a context's level are dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Info,
    Warning,
    Error,
    Off,
}

impl LogLevel {
    fn raw(self) -> sys::grey_log_level {
        match self {
            LogLevel::Debug => sys::GREY_LOG_DEBUG,
            LogLevel::Info => sys::GREY_LOG_INFO,
            LogLevel::Warning => sys::GREY_LOG_WARNING,
            LogLevel::Error => sys::GREY_LOG_ERROR,
            LogLevel::Off => sys::GREY_LOG_OFF,
        }
    }

    fn from_raw(level: sys::grey_log_level) -> LogLevel {
        match level {
            sys::GREY_LOG_DEBUG => LogLevel::Debug,
            sys::GREY_LOG_INFO => LogLevel::Info,
            sys::GREY_LOG_WARNING => LogLevel::Warning,
            sys::GREY_LOG_ERROR => LogLevel::Error,
            _ => LogLevel::Off,
        }
    }
}

type LogFn = Box<dyn Fn(LogLevel, &str) + Send + Sync>;

unsafe extern "C" fn log_trampoline(
    level: sys::grey_log_level,
    message: *const c_char,
    user: *mut c_void,
) {
    let callback = &*(user as *const LogFn);
    let message = CStr::from_ptr(message).to_string_lossy();
    // A panic must not unwind into C.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        callback(LogLevel::from_raw(level), &message)
    }));
}

/// Options for [`Context`]: `Context::builder().backends(&["cuda"]).profile("aggressive").build()`.
#[derive(Default)]
pub struct ContextBuilder {
    backends: Option<String>,
    backends_optional: bool,
    backend_dir: Option<String>,
    config_path: Option<String>,
    profile: Option<String>,
    env_overrides: bool,
    log_level: Option<LogLevel>,
    log: Option<LogFn>,
}

impl ContextBuilder {
    /// Loads only these backends ("cuda", "hip", ...); the host backend is always there. `build` fails
    /// ([`Error::Unsupported`](crate::Error::Unsupported), "backend 'cuda' is not available: ...") if one
    /// does not load.
    pub fn backends(mut self, names: &[&str]) -> Self {
        self.backends = Some(names.join(","));
        self.backends_optional = false;
        self
    }
    /// Loads only those of these backends that are there; the others are only reported by
    /// [`Context::backends`].
    pub fn backends_if_present(mut self, names: &[&str]) -> Self {
        self.backends = Some(names.join(","));
        self.backends_optional = true;
        self
    }
    /// Searches `dir` for plugins before every other place.
    pub fn backend_dir(mut self, dir: &str) -> Self {
        self.backend_dir = Some(dir.to_string());
        self
    }
    /// Overlays the YAML file at `path` on the profile.
    pub fn config_file(mut self, path: &str) -> Self {
        self.config_path = Some(path.to_string());
        self
    }
    /// "conservative", "balanced" (the default) or "aggressive".
    pub fn profile(mut self, profile: &str) -> Self {
        self.profile = Some(profile.to_string());
        self
    }
    /// Applies GREY_* environment variables; without it the environment is never read.
    pub fn env_overrides(mut self, on: bool) -> Self {
        self.env_overrides = on;
        self
    }
    /// Messages below `level` are dropped (default Warning).
    pub fn log_level(mut self, level: LogLevel) -> Self {
        self.log_level = Some(level);
        self
    }
    /// Receives log messages instead of stderr; may be called from any thread using the context and
    /// must not call back into it.
    pub fn log(mut self, callback: impl Fn(LogLevel, &str) + Send + Sync + 'static) -> Self {
        self.log = Some(Box::new(callback));
        self
    }

    pub fn build(self) -> Result<Context> {
        const F: &str = "grey_context_create";
        let backends = c_string_or_null(F, "options.backends", self.backends.as_deref())?;
        let backend_dir = c_string_or_null(F, "options.backend_dir", self.backend_dir.as_deref())?;
        let config_path = c_string_or_null(F, "options.config_path", self.config_path.as_deref())?;
        let profile = c_string_or_null(F, "options.profile", self.profile.as_deref())?;
        let mut options = versioned!(sys::grey_context_options);
        options.log_level = self.log_level.unwrap_or(LogLevel::Warning).raw();
        options.backends = ptr_or_null(&backends);
        options.backend_dir = ptr_or_null(&backend_dir);
        options.config_path = ptr_or_null(&config_path);
        options.profile = ptr_or_null(&profile);
        options.apply_env_overrides = self.env_overrides as u32;
        options.require_backends = (self.backends.is_some() && !self.backends_optional) as u32;
        let log = self.log.map(Box::new);
        if let Some(callback) = &log {
            options.log_callback = Some(log_trampoline);
            options.log_user = &**callback as *const LogFn as *mut c_void;
        }
        let mut raw = std::ptr::null_mut();
        check(unsafe { sys::grey_context_create(&options, &mut raw) })?;
        Ok(Context {
            raw: NonNull::new(raw).expect("grey_context_create returned OK and NULL"),
            _log: log,
        })
    }
}

/// A libgrey context: configuration, backends and devices. Safe to share between threads (libgrey
/// synchronises each call). Destroyed on drop.
pub struct Context {
    raw: NonNull<sys::grey_context>,
    _log: Option<Box<LogFn>>, // lives as long as the context that calls it
}

unsafe impl Send for Context {}
unsafe impl Sync for Context {}

/// One backend candidate the loader considered. `outcome` is "loaded", "skipped", "failed" or
/// "not_found"; `reason` says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendInfo {
    pub name: String,
    pub path: String,
    pub outcome: &'static str,
    pub reason: String,
    pub device_count: u32,
}

/// One directory of the plugin search path and the loader's verdict on it. `origin` is "host"
/// (`backend_dir`), "environment" (GREY_BACKEND_DIR) or "beside_library" (grey/ beside the file
/// holding libgrey); `state` is "searched", "missing", "refused" (someone other than root or this user
/// could have written there) or "duplicate"; `reason` says why, naming the path at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginDir {
    pub path: String,
    pub real_path: String,
    pub origin: &'static str,
    pub state: &'static str,
    pub reason: String,
}

impl Context {
    /// A context with the defaults: every plugin found, the balanced profile, no environment.
    pub fn new() -> Result<Context> {
        ContextBuilder::default().build()
    }

    pub fn builder() -> ContextBuilder {
        ContextBuilder::default()
    }

    pub(crate) fn raw(&self) -> *mut sys::grey_context {
        self.raw.as_ptr()
    }

    /// The number of devices across all loaded backends (the host CPU is always one).
    pub fn device_count(&self) -> Result<u32> {
        let mut n = 0;
        check(unsafe { sys::grey_device_count(self.raw(), &mut n) })?;
        Ok(n)
    }

    /// The specification of device `index`.
    pub fn device(&self, index: u32) -> Result<DeviceSpec> {
        let mut spec = versioned!(sys::grey_device_spec);
        check(unsafe { sys::grey_device_spec_get(self.raw(), index, &mut spec) })?;
        let fields = read_fields(
            self,
            index,
            &spec as *const _ as *const u8,
            sys::GREY_FIELD_GROUP_SPEC,
        )?;
        Ok(DeviceSpec::new(index, &spec, fields))
    }

    /// Every device, in index order.
    pub fn devices(&self) -> Result<Vec<DeviceSpec>> {
        (0..self.device_count()?).map(|i| self.device(i)).collect()
    }

    /// Samples device `index` now.
    pub fn telemetry(&self, index: u32) -> Result<Telemetry> {
        let mut t = versioned!(sys::grey_device_telemetry);
        check(unsafe { sys::grey_device_telemetry_get(self.raw(), index, &mut t) })?;
        let fields = read_fields(
            self,
            index,
            &t as *const _ as *const u8,
            sys::GREY_FIELD_GROUP_TELEMETRY,
        )?;
        Ok(Telemetry {
            index,
            timestamp_ns: t.timestamp_ns,
            fields,
        })
    }

    /// Why `field` (a GREY_FIELD_* value) of device `index` is unavailable ("" when it is ok).
    pub fn field_reason(&self, index: u32, field: sys::grey_field) -> Result<String> {
        read_text(|b, n, len| unsafe {
            sys::grey_device_field_reason(self.raw(), index, field, b, n, len)
        })
    }

    /// The loader's report: every backend candidate, loaded or not.
    pub fn backends(&self) -> Result<Vec<BackendInfo>> {
        let mut n = 0;
        check(unsafe { sys::grey_backend_candidate_count(self.raw(), &mut n) })?;
        (0..n)
            .map(|i| {
                let mut info = versioned!(sys::grey_backend_info);
                check(unsafe { sys::grey_backend_info_get(self.raw(), i, &mut info) })?;
                Ok(BackendInfo {
                    name: chars(&info.name),
                    path: chars(&info.path),
                    outcome: unsafe { enum_name(sys::grey_backend_outcome_name(info.outcome)) },
                    reason: chars(&info.reason),
                    device_count: info.device_count,
                })
            })
            .collect()
    }

    /// Every directory on the plugin search path, in order, with whether it was searched and why.
    pub fn plugin_dirs(&self) -> Result<Vec<PluginDir>> {
        let mut n = 0;
        check(unsafe { sys::grey_plugin_dir_count(self.raw(), &mut n) })?;
        (0..n)
            .map(|i| {
                let mut info = versioned!(sys::grey_plugin_dir_info);
                check(unsafe { sys::grey_plugin_dir_info_get(self.raw(), i, &mut info) })?;
                Ok(PluginDir {
                    path: chars(&info.path),
                    real_path: chars(&info.real_path),
                    origin: unsafe { enum_name(sys::grey_plugin_origin_name(info.origin)) },
                    state: unsafe { enum_name(sys::grey_plugin_dir_state_name(info.state)) },
                    reason: chars(&info.reason),
                })
            })
            .collect()
    }

    /// The directories on the plugin search path, in order, searched or not (see `plugin_dirs`).
    pub fn backend_search_path(&self) -> Result<Vec<String>> {
        let text =
            read_text(|b, n, len| unsafe { sys::grey_backend_search_path(self.raw(), b, n, len) })?;
        Ok(text
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect())
    }

    /// The context's effective configuration (read-only, borrowed).
    pub fn config(&self) -> ConfigView<'_> {
        ConfigView {
            raw: unsafe { sys::grey_context_config(self.raw()) },
            context: PhantomData,
        }
    }

    /// Allocates `size` bytes (> 0) on `device`.
    pub fn buffer(&self, device: u32, size: u64) -> Result<Buffer<'_>> {
        let mut raw = std::ptr::null_mut();
        check(unsafe { sys::grey_buffer_create(self.raw(), device, size, &mut raw) })?;
        Ok(Buffer {
            raw: NonNull::new(raw).expect("grey_buffer_create returned OK and NULL"),
            context: PhantomData,
        })
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        unsafe { sys::grey_context_destroy(self.raw.as_ptr()) }
    }
}

/// Memory on one device, borrowed from its context and freed on drop. Reads and writes copy straight
/// between a Rust slice and the device; [`Buffer::map`] gives its address, for other libraries.
pub struct Buffer<'ctx> {
    raw: NonNull<sys::grey_buffer>,
    context: PhantomData<&'ctx Context>,
}

unsafe impl Send for Buffer<'_> {}
unsafe impl Sync for Buffer<'_> {} // concurrent reads are allowed; writes take &mut self

impl Buffer<'_> {
    pub(crate) fn raw(&self) -> *mut sys::grey_buffer {
        self.raw.as_ptr()
    }

    /// The buffer's size in bytes.
    pub fn size(&self) -> Result<u64> {
        let mut n = 0;
        check(unsafe { sys::grey_buffer_size(self.raw.as_ptr(), &mut n) })?;
        Ok(n)
    }

    /// The index of the device it lives on.
    pub fn device(&self) -> Result<u32> {
        let mut d = 0;
        check(unsafe { sys::grey_buffer_device(self.raw.as_ptr(), &mut d) })?;
        Ok(d)
    }

    /// Copies `data` into the buffer at `offset`; the range must lie inside the buffer.
    pub fn write(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        check(unsafe {
            sys::grey_buffer_write(
                self.raw.as_ptr(),
                offset,
                data.as_ptr() as *const c_void,
                data.len() as u64,
            )
        })
    }

    /// Fills `out` from the buffer at `offset`.
    pub fn read(&self, offset: u64, out: &mut [u8]) -> Result<()> {
        check(unsafe {
            sys::grey_buffer_read(
                self.raw.as_ptr(),
                offset,
                out.as_mut_ptr() as *mut c_void,
                out.len() as u64,
            )
        })
    }

    /// Sets `size` bytes from `offset` to `value`.
    pub fn fill(&mut self, offset: u64, value: u8, size: u64) -> Result<()> {
        check(unsafe { sys::grey_buffer_fill(self.raw.as_ptr(), offset, value, size) })
    }

    /// Copies `size` bytes from `source` at `source_offset` to this buffer at `offset`.
    pub fn copy_from(
        &mut self,
        offset: u64,
        source: &Buffer<'_>,
        source_offset: u64,
        size: u64,
    ) -> Result<()> {
        if self.raw == source.raw {
            return Err(Error::InvalidArgument(
                "grey: a buffer cannot be copied from itself through copy_from".into(),
            ));
        }
        check(unsafe {
            sys::grey_buffer_copy(
                self.raw.as_ptr(),
                offset,
                source.raw.as_ptr(),
                source_offset,
                size,
            )
        })
    }
}

/// Where a [`Mapping`]'s address points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryKind {
    /// Host memory the CPU dereferences.
    Host,
    /// A CUdeviceptr on CUDA device `vendor_device`.
    CudaDevice,
    /// A kind this crate does not know yet.
    Other(u32),
}

impl MemoryKind {
    pub(crate) fn from_raw(raw: sys::grey_memory_kind) -> MemoryKind {
        match raw {
            sys::GREY_MEMORY_HOST => MemoryKind::Host,
            sys::GREY_MEMORY_CUDA_DEVICE => MemoryKind::CudaDevice,
            other => MemoryKind::Other(other),
        }
    }

    pub(crate) fn to_raw(self) -> sys::grey_memory_kind {
        match self {
            MemoryKind::Host => sys::GREY_MEMORY_HOST,
            MemoryKind::CudaDevice => sys::GREY_MEMORY_CUDA_DEVICE,
            MemoryKind::Other(raw) => raw,
        }
    }
}

/// A mapped buffer (grey_buffer_map): the address of its bytes, unmapped on drop. It borrows the buffer,
/// so the buffer can neither be freed nor written through `&mut` while the mapping lives.
pub struct Mapping<'b> {
    buffer: &'b Buffer<'b>,
    pub kind: MemoryKind,
    pub address: u64,
    pub size: u64,
    /// The device's number in its vendor's API (CUDA: the ordinal), not libgrey's device index.
    pub vendor_device: i32,
}

impl Mapping<'_> {
    /// The bytes, when they are host memory. Sound: the buffer is borrowed shared for the mapping's
    /// life, so no write through this crate can change them meanwhile.
    pub fn host_bytes(&self) -> Option<&[u8]> {
        if self.kind != MemoryKind::Host || self.size == 0 {
            return None;
        }
        Some(unsafe {
            std::slice::from_raw_parts(self.address as usize as *const u8, self.size as usize)
        })
    }
}

impl Drop for Mapping<'_> {
    fn drop(&mut self) {
        // One unmap per map: it cannot fail here.
        let _ = unsafe { sys::grey_buffer_unmap(self.buffer.raw.as_ptr()) };
    }
}

impl<'b> Mapping<'b> {
    /// The mapping grey_buffer_map or grey_buffer_map_async filled for `buffer`.
    pub(crate) fn from_raw(buffer: &'b Buffer<'b>, raw: &sys::grey_buffer_mapping) -> Self {
        Mapping {
            buffer,
            kind: MemoryKind::from_raw(raw.kind),
            address: raw.address,
            size: raw.size_bytes,
            vendor_device: raw.vendor_device,
        }
    }
}

impl Buffer<'_> {
    /// Maps the whole buffer (grey_buffer_map). A backend that cannot hand out addresses is
    /// `Error::Unsupported`.
    pub fn map(&self) -> Result<Mapping<'_>> {
        let mut raw = versioned!(sys::grey_buffer_mapping);
        check(unsafe { sys::grey_buffer_map(self.raw.as_ptr(), &mut raw) })?;
        Ok(Mapping::from_raw(self, &raw))
    }
}

impl Drop for Buffer<'_> {
    fn drop(&mut self) {
        unsafe { sys::grey_buffer_destroy(self.raw.as_ptr()) }
    }
}
