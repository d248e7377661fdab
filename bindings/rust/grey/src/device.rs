use crate::context::Context;
use crate::{chars, check, enum_name, sys, text, Result};
use std::os::raw::c_char;

/// A field's value: which kind it is follows from grey_field_describe.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    U64(u64),
    F64(f64),
    Text(String),
}

/// One reading of a device. `value` is None unless `state` is "ok"; `reason` then says why. Keys are
/// the JSON keys `greyctl detect` prints.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub key: String,
    pub value: Option<Value>,
    pub state: &'static str,
    pub source: &'static str,
    pub unit: String,
    pub reason: String,
}

/// Reads every field of `group` from the struct at `base`, at the offsets libgrey describes, so a
/// field added to grey.h appears here with no change.
pub(crate) fn read_fields(
    ctx: &Context,
    device: u32,
    base: *const u8,
    group: sys::grey_field_group,
) -> Result<Vec<Field>> {
    let mut fields = Vec::new();
    for f in 0..sys::GREY_FIELD_COUNT {
        let mut desc = versioned!(sys::grey_field_desc);
        check(unsafe { sys::grey_field_describe(f, &mut desc) })?;
        if desc.group != group {
            continue;
        }
        // SAFETY: libgrey gives the offset of a field of the kind it names inside `group`'s struct.
        let (value, state, source) = unsafe {
            let at = base.add(desc.offset as usize);
            match desc.kind {
                sys::GREY_FIELD_KIND_U64 => {
                    let r = &*(at as *const sys::grey_field_u64);
                    (Value::U64(r.value), r.state, r.source)
                }
                sys::GREY_FIELD_KIND_F64 => {
                    let r = &*(at as *const sys::grey_field_f64);
                    (Value::F64(r.value), r.state, r.source)
                }
                _ => {
                    let r = &*(at as *const sys::grey_field_text);
                    (Value::Text(chars(&r.value[..])), r.state, r.source)
                }
            }
        };
        let ok = state == sys::GREY_FIELD_OK;
        fields.push(Field {
            key: unsafe { text(desc.key as *const c_char) },
            value: if ok { Some(value) } else { None },
            state: unsafe { enum_name(sys::grey_field_state_name(state)) },
            source: unsafe { enum_name(sys::grey_source_name(source)) },
            unit: unsafe { text(desc.unit as *const c_char) },
            reason: if ok {
                String::new()
            } else {
                ctx.field_reason(device, f)?
            },
        });
    }
    Ok(fields)
}

fn find<'a>(fields: &'a [Field], key: &str) -> Option<&'a Field> {
    fields.iter().find(|f| f.key == key)
}

/// Static facts about one device: every field of grey_device_spec in `fields`, with accessors.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceSpec {
    pub index: u32,
    pub backend: String,
    pub backend_device_index: u32,
    /// "nvidia", "amd", "intel", "cpu" or "unknown".
    pub vendor: &'static str,
    /// "gpu" or "cpu".
    pub device_type: &'static str,
    pub fields: Vec<Field>,
}

impl DeviceSpec {
    pub(crate) fn new(index: u32, spec: &sys::grey_device_spec, fields: Vec<Field>) -> DeviceSpec {
        DeviceSpec {
            index,
            backend: chars(&spec.backend),
            backend_device_index: spec.backend_device_index,
            vendor: unsafe { enum_name(sys::grey_vendor_name(spec.vendor)) },
            device_type: if spec.type_ == sys::GREY_DEVICE_GPU {
                "gpu"
            } else {
                "cpu"
            },
            fields,
        }
    }

    /// The field named `key` ("memory_total_bytes").
    pub fn field(&self, key: &str) -> Option<&Field> {
        find(&self.fields, key)
    }

    /// The value of an integer field, if available.
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        match self.field(key)?.value {
            Some(Value::U64(v)) => Some(v),
            _ => None,
        }
    }

    /// The value of a floating-point field, if available.
    pub fn get_f64(&self, key: &str) -> Option<f64> {
        match self.field(key)?.value {
            Some(Value::F64(v)) => Some(v),
            _ => None,
        }
    }

    /// The value of a text field, if available.
    pub fn get_text(&self, key: &str) -> Option<&str> {
        match &self.field(key)?.value {
            Some(Value::Text(v)) => Some(v),
            _ => None,
        }
    }

    pub fn name(&self) -> Option<&str> {
        self.get_text("name")
    }

    pub fn memory_total_bytes(&self) -> Option<u64> {
        self.get_u64("memory_total_bytes")
    }

    pub fn compute_units(&self) -> Option<u64> {
        self.get_u64("compute_units")
    }
}

/// One live sample of a device.
#[derive(Debug, Clone, PartialEq)]
pub struct Telemetry {
    pub index: u32,
    pub timestamp_ns: u64,
    pub fields: Vec<Field>,
}

impl Telemetry {
    /// The reading named `key` ("power_draw_mw").
    pub fn field(&self, key: &str) -> Option<&Field> {
        find(&self.fields, key)
    }

    /// The names of the set throttle_reasons bits (empty when unavailable).
    pub fn throttle_reason_names(&self) -> Vec<String> {
        let bits = match self.field("throttle_reasons").and_then(|f| f.value.clone()) {
            Some(Value::U64(bits)) => bits,
            _ => return Vec::new(),
        };
        (0..32)
            .map(|shift| 1u32 << shift)
            .filter(|bit| bits & u64::from(*bit) != 0)
            .filter_map(|bit| {
                let name = unsafe { sys::grey_throttle_reason_name(bit) };
                if name.is_null() {
                    None
                } else {
                    Some(unsafe { text(name) })
                }
            })
            .collect()
    }
}
