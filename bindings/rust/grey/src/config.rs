use crate::{c_string, c_string_or_null, check, ptr_or_null, read_text, sys, text, Result};
use std::marker::PhantomData;
use std::ptr::NonNull;

/// Every key of the configuration schema, as dotted paths ("memory.compression.algorithm").
pub fn config_keys() -> Vec<String> {
    let n = unsafe { sys::grey_config_key_count() };
    (0..n)
        .map(|i| unsafe { text(sys::grey_config_key_name(i)) })
        .collect()
}

fn get(raw: *const sys::grey_config, key: &str) -> Result<String> {
    let key = c_string("grey_config_get", "key", key)?;
    read_text(|b, n, len| unsafe { sys::grey_config_get(raw, key.as_ptr(), b, n, len) })
}

fn to_yaml(raw: *const sys::grey_config) -> Result<String> {
    read_text(|b, n, len| unsafe { sys::grey_config_to_yaml(raw, b, n, len) })
}

/// An owned grey_config: a profile's defaults with YAML, the environment and explicit values layered
/// on top. Freed on drop. `Send` but not `Sync`: libgrey does not synchronise a config.
pub struct Config {
    raw: NonNull<sys::grey_config>,
}

unsafe impl Send for Config {}

impl Config {
    pub(crate) fn raw_ptr(&self) -> *const sys::grey_config {
        self.raw.as_ptr()
    }

    /// The defaults of `profile` ("conservative", "balanced", "aggressive"; None for "balanced").
    pub fn new(profile: Option<&str>) -> Result<Config> {
        let profile = c_string_or_null("grey_config_create", "profile", profile)?;
        let mut raw = std::ptr::null_mut();
        check(unsafe { sys::grey_config_create(ptr_or_null(&profile), &mut raw) })?;
        Ok(Config {
            raw: NonNull::new(raw).expect("grey_config_create returned OK and NULL"),
        })
    }

    /// `Config::new(profile)` with the YAML file at `path` overlaid.
    pub fn load(path: &str, profile: Option<&str>) -> Result<Config> {
        let mut config = Config::new(profile)?;
        config.load_file(path)?;
        Ok(config)
    }

    /// Overlays a YAML file; an invalid one gives `Error::Config` naming file, line and key.
    pub fn load_file(&mut self, path: &str) -> Result<()> {
        let path = c_string("grey_config_load_file", "path", path)?;
        check(unsafe { sys::grey_config_load_file(self.raw.as_ptr(), path.as_ptr()) })
    }

    /// Overlays YAML text; `origin` names it in error messages.
    pub fn load_str(&mut self, yaml: &str, origin: Option<&str>) -> Result<()> {
        let yaml = c_string("grey_config_load_string", "yaml", yaml)?;
        let origin = c_string_or_null("grey_config_load_string", "origin", origin)?;
        check(unsafe {
            sys::grey_config_load_string(self.raw.as_ptr(), yaml.as_ptr(), ptr_or_null(&origin))
        })
    }

    /// Applies the GREY_* environment variables (never done implicitly).
    pub fn apply_env(&mut self) -> Result<()> {
        check(unsafe { sys::grey_config_apply_env(self.raw.as_ptr()) })
    }

    /// Sets `key` from its textual form ("true", "75", "zstd"), validated as in a file.
    pub fn set(&mut self, key: &str, value: impl ToString) -> Result<()> {
        let key = c_string("grey_config_set", "key", key)?;
        let value = c_string("grey_config_set", "value", &value.to_string())?;
        check(unsafe { sys::grey_config_set(self.raw.as_ptr(), key.as_ptr(), value.as_ptr()) })
    }

    /// The textual value of `key`.
    pub fn get(&self, key: &str) -> Result<String> {
        get(self.raw.as_ptr(), key)
    }

    /// The whole configuration as YAML.
    pub fn to_yaml(&self) -> Result<String> {
        to_yaml(self.raw.as_ptr())
    }
}

impl Drop for Config {
    fn drop(&mut self) {
        unsafe { sys::grey_config_destroy(self.raw.as_ptr()) }
    }
}

/// A context's effective configuration: read-only, borrowed from the context.
pub struct ConfigView<'ctx> {
    pub(crate) raw: *const sys::grey_config,
    pub(crate) context: PhantomData<&'ctx ()>,
}

impl ConfigView<'_> {
    /// The textual value of `key`.
    pub fn get(&self, key: &str) -> Result<String> {
        get(self.raw, key)
    }

    /// The whole configuration as YAML.
    pub fn to_yaml(&self) -> Result<String> {
        to_yaml(self.raw)
    }
}
