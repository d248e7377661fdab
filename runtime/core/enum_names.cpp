// The lower-case names of grey.h's enums, for logs, reports and bindings, so that every consumer
// prints the same words. A value this version does not know has no name (NULL): the library may
// be newer than its caller, or a caller may pass any integer.
#include "core/error.hpp"

extern "C" {

const char* grey_backend_outcome_name(grey_backend_outcome value) {
    switch (grey::raw_enum(value)) {
        case GREY_BACKEND_LOADED: return "loaded";
        case GREY_BACKEND_SKIPPED: return "skipped";
        case GREY_BACKEND_FAILED: return "failed";
        case GREY_BACKEND_NOT_FOUND: return "not_found";
        default: return nullptr;
    }
}

const char* grey_plugin_origin_name(grey_plugin_origin value) {
    switch (grey::raw_enum(value)) {
        case GREY_PLUGIN_ORIGIN_HOST: return "host";
        case GREY_PLUGIN_ORIGIN_ENVIRONMENT: return "environment";
        case GREY_PLUGIN_ORIGIN_BESIDE_LIBRARY: return "beside_library";
        default: return nullptr;
    }
}

const char* grey_plugin_dir_state_name(grey_plugin_dir_state value) {
    switch (grey::raw_enum(value)) {
        case GREY_PLUGIN_DIR_SEARCHED: return "searched";
        case GREY_PLUGIN_DIR_MISSING: return "missing";
        case GREY_PLUGIN_DIR_REFUSED: return "refused";
        case GREY_PLUGIN_DIR_DUPLICATE: return "duplicate";
        default: return nullptr;
    }
}

const char* grey_field_state_name(grey_field_state value) {
    switch (grey::raw_enum(value)) {
        case GREY_FIELD_OK: return "ok";
        case GREY_FIELD_UNSUPPORTED: return "unsupported";
        case GREY_FIELD_PERMISSION_DENIED: return "permission_denied";
        case GREY_FIELD_NOT_APPLICABLE: return "not_applicable";
        default: return nullptr;
    }
}

const char* grey_source_name(grey_source value) {
    switch (grey::raw_enum(value)) {
        case GREY_SOURCE_NONE: return "none";
        case GREY_SOURCE_OS: return "os";
        case GREY_SOURCE_CUDA_DRIVER: return "cuda_driver";
        case GREY_SOURCE_NVML: return "nvml";
        case GREY_SOURCE_HIP: return "hip";
        case GREY_SOURCE_AMD_SMI: return "amd_smi";
        case GREY_SOURCE_LEVEL_ZERO: return "level_zero";
        case GREY_SOURCE_DERIVED: return "derived";
        case GREY_SOURCE_TABLE: return "table";
        default: return nullptr;
    }
}

const char* grey_vendor_name(grey_vendor value) {
    switch (grey::raw_enum(value)) {
        case GREY_VENDOR_UNKNOWN: return "unknown";
        case GREY_VENDOR_NVIDIA: return "nvidia";
        case GREY_VENDOR_AMD: return "amd";
        case GREY_VENDOR_INTEL: return "intel";
        case GREY_VENDOR_CPU: return "cpu";
        default: return nullptr;
    }
}

const char* grey_device_type_name(grey_device_type value) {
    switch (grey::raw_enum(value)) {
        case GREY_DEVICE_CPU: return "cpu";
        case GREY_DEVICE_GPU: return "gpu";
        default: return nullptr;
    }
}

const char* grey_field_kind_name(grey_field_kind value) {
    switch (grey::raw_enum(value)) {
        case GREY_FIELD_KIND_U64: return "u64";
        case GREY_FIELD_KIND_F64: return "f64";
        case GREY_FIELD_KIND_TEXT: return "text";
        default: return nullptr;
    }
}

const char* grey_field_group_name(grey_field_group value) {
    switch (grey::raw_enum(value)) {
        case GREY_FIELD_GROUP_SPEC: return "spec";
        case GREY_FIELD_GROUP_TELEMETRY: return "telemetry";
        default: return nullptr;
    }
}

const char* grey_memory_kind_name(grey_memory_kind value) {
    switch (grey::raw_enum(value)) {
        case GREY_MEMORY_HOST: return "host";
        case GREY_MEMORY_CUDA_DEVICE: return "cuda_device";
        default: return nullptr;
    }
}

const char* grey_model_format_name(grey_model_format value) {
    switch (grey::raw_enum(value)) {
        case GREY_MODEL_FORMAT_SAFETENSORS: return "safetensors";
        case GREY_MODEL_FORMAT_GGUF: return "gguf";
        default: return nullptr;
    }
}

const char* grey_quant_calibration_name(grey_quant_calibration value) {
    switch (grey::raw_enum(value)) {
        case GREY_CALIBRATION_RTN: return "rtn";
        case GREY_CALIBRATION_MSE: return "mse";
        default: return nullptr;
    }
}

const char* grey_audit_durability_name(grey_audit_durability value) {
    switch (grey::raw_enum(value)) {
        case GREY_AUDIT_DURABILITY_EVERY_RECORD: return "every_record";
        case GREY_AUDIT_DURABILITY_GROUP: return "group";
        default: return nullptr;
    }
}

const char* grey_kv_format_name(grey_kv_format value) {
    switch (grey::raw_enum(value)) {
        case GREY_KV_INT8: return "int8";
        case GREY_KV_INT4: return "int4";
        case GREY_KV_INT2: return "int2";
        case GREY_KV_FP8_E4M3: return "fp8-e4m3";
        default: return nullptr;
    }
}

}  // extern "C"
