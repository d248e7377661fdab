// The C entry points of "Planner (since 0.2)" in grey.h.
#include "core/error.hpp"
#include "plan/llama_cpp_args.hpp"
#include "plan/plan.hpp"
#include "plan/plan_yaml.hpp"

#include <cstddef>
#include <cstring>
#include <initializer_list>
#include <memory>

struct grey_plan {
    grey::plan::Plan plan;
};

namespace {

// A caller whose grey_plan_summary ends before kv_runtime (added later in 0.2) still gets the rest.
constexpr size_t kSummarySize = offsetof(grey_plan_summary, kv_runtime);
constexpr size_t kDeviceSize = sizeof(grey_plan_device);
constexpr size_t kTensorSize = sizeof(grey_plan_tensor);

const grey::plan::Plan& checked(const grey_plan* plan) {
    grey::require_non_null(plan, "plan");
    return plan->plan;
}

void check_index(uint64_t index, size_t count, const char* what) {
    if (index >= count)
        grey::fail(GREY_ERROR_INVALID_ARGUMENT, std::string(what) + " index " + std::to_string(index) + " is out of range (the plan has " +
                                                    std::to_string(count) + ")");
}

// grey_workload as a caller built before kv_precision passes it. Such a caller never asked for a
// quantized KV cache where f16 fits, so it keeps the ladder it was written against (f16 first, quantized
// KV only when nothing fits otherwise), not auto's int8 rule.
constexpr size_t kWorkloadV1Size = offsetof(grey_workload, kv_precision);

grey::plan::Request request_of(const grey_workload& w) {
    if (w.struct_size < kWorkloadV1Size)
        grey::fail(GREY_ERROR_INVALID_ARGUMENT, "workload->struct_size is " + std::to_string(w.struct_size) + "; set it with GREY_WORKLOAD_INIT");
    const int64_t kind = grey::raw_enum(w.kind);
    if (grey_workload_kind_name(w.kind) == nullptr)
        grey::fail(GREY_ERROR_INVALID_ARGUMENT, "workload->kind " + std::to_string(kind) + " is not a grey_workload_kind");
    if (w.context > (uint64_t{1} << 24)) grey::fail(GREY_ERROR_INVALID_ARGUMENT, "workload->context " + std::to_string(w.context) + " is above 16777216 tokens");
    if (w.batch > 65536) grey::fail(GREY_ERROR_INVALID_ARGUMENT, "workload->batch " + std::to_string(w.batch) + " is above 65536");
    if (w.tenants > 1024) grey::fail(GREY_ERROR_INVALID_ARGUMENT, "workload->tenants " + std::to_string(w.tenants) + " is above 1024");
    std::string kv = "f16-first";
    grey_kv_runtime runtime = GREY_KV_RUNTIME_LIBGREY;
    if (w.struct_size >= sizeof(grey_workload)) {
        // Read as an integer first: a C caller may store any int there.
        const int64_t raw = grey::raw_enum(w.kv_precision);
        if (raw < GREY_KV_PRECISION_AUTO || raw > GREY_KV_PRECISION_INT2)
            grey::fail(GREY_ERROR_INVALID_ARGUMENT, "workload->kv_precision " + std::to_string(raw) +
                                                        " is not a grey_kv_precision (auto, f16, int8, int4, int2)");
        const char* name = grey_kv_precision_name(static_cast<grey_kv_precision>(raw));
        // The same for kv_runtime, which was a reserved uint32_t: any value may lie there.
        const int64_t raw_runtime = grey::raw_enum(w.kv_runtime);
        if (raw_runtime < GREY_KV_RUNTIME_LIBGREY || raw_runtime > GREY_KV_RUNTIME_LLAMA_CPP)
            grey::fail(GREY_ERROR_INVALID_ARGUMENT, "workload->kv_runtime " + std::to_string(raw_runtime) +
                                                        " is not a grey_kv_runtime (libgrey, llama-cpp)");
        const auto kv_runtime = static_cast<grey_kv_runtime>(raw_runtime);
        if (raw != GREY_KV_PRECISION_AUTO && w.kind != GREY_WORKLOAD_LLM_INFERENCE)
            grey::fail(GREY_ERROR_INVALID_ARGUMENT, std::string("workload->kv_precision ") + name + " asks for a KV cache, which workload " +
                                                        grey_workload_kind_name(w.kind) + " has none of: leave it auto");
        if (raw_runtime != GREY_KV_RUNTIME_LIBGREY && w.kind != GREY_WORKLOAD_LLM_INFERENCE)
            grey::fail(GREY_ERROR_INVALID_ARGUMENT, std::string("workload->kv_runtime ") + grey_kv_runtime_name(kv_runtime) +
                                                        " sizes a KV cache, which workload " + grey_workload_kind_name(w.kind) +
                                                        " has none of: leave it libgrey");
        kv = name;
        runtime = kv_runtime;
    }
    return {w.kind, w.context, w.batch, w.tenants == 0 ? 1u : w.tenants, kv, runtime};
}

void hand_out(grey::plan::Plan plan, grey_plan** out_plan) {
    auto handle = std::make_unique<grey_plan>();
    handle->plan = std::move(plan);
    *out_plan = handle.release();
}

}  // namespace

namespace {

// One of `values` by the name `name_of` gives it; the error lists them all.
template <typename E>
grey_status enum_from_name(const char* name, E* out, const char* out_name, std::initializer_list<E> values, const char* (*name_of)(E),
                           const char* what) {
    return grey::abi_guard([&] {
        grey::require_non_null(name, "name");
        grey::require_non_null(out, out_name);
        std::string names;
        for (const E value : values) {
            if (std::strcmp(name, name_of(value)) == 0) {
                *out = value;
                return;
            }
            names += (names.empty() ? "" : ", ") + std::string(name_of(value));
        }
        grey::fail(GREY_ERROR_INVALID_ARGUMENT, std::string("'") + name + "' is not a " + what + " (" + names + ")");
    });
}

}  // namespace

extern "C" {

const char* grey_workload_kind_name(grey_workload_kind kind) {
    switch (grey::raw_enum(kind)) {
        case GREY_WORKLOAD_INFERENCE: return "inference";
        case GREY_WORKLOAD_LLM_INFERENCE: return "llm-inference";
        case GREY_WORKLOAD_TRAINING: return "training";
        default: return nullptr;
    }
}

grey_status grey_workload_kind_from_name(const char* name, grey_workload_kind* out_kind) {
    return enum_from_name(name, out_kind, "out_kind", {GREY_WORKLOAD_INFERENCE, GREY_WORKLOAD_LLM_INFERENCE, GREY_WORKLOAD_TRAINING},
                          grey_workload_kind_name, "workload kind");
}

const char* grey_kv_precision_name(grey_kv_precision precision) {
    switch (grey::raw_enum(precision)) {
        case GREY_KV_PRECISION_AUTO: return "auto";
        case GREY_KV_PRECISION_F16: return "f16";
        case GREY_KV_PRECISION_INT8: return "int8";
        case GREY_KV_PRECISION_INT4: return "int4";
        case GREY_KV_PRECISION_INT2: return "int2";
        default: return nullptr;
    }
}

grey_status grey_kv_precision_from_name(const char* name, grey_kv_precision* out_precision) {
    return enum_from_name(name, out_precision, "out_precision",
                          {GREY_KV_PRECISION_AUTO, GREY_KV_PRECISION_F16, GREY_KV_PRECISION_INT8, GREY_KV_PRECISION_INT4, GREY_KV_PRECISION_INT2},
                          grey_kv_precision_name, "KV precision");
}

const char* grey_kv_runtime_name(grey_kv_runtime runtime) {
    switch (grey::raw_enum(runtime)) {
        case GREY_KV_RUNTIME_LIBGREY: return "libgrey";
        case GREY_KV_RUNTIME_LLAMA_CPP: return "llama-cpp";
        default: return nullptr;
    }
}

grey_status grey_kv_runtime_from_name(const char* name, grey_kv_runtime* out_runtime) {
    return enum_from_name(name, out_runtime, "out_runtime", {GREY_KV_RUNTIME_LIBGREY, GREY_KV_RUNTIME_LLAMA_CPP}, grey_kv_runtime_name,
                          "KV runtime");
}

const char* grey_tensor_role_name(grey_tensor_role role) {
    switch (grey::raw_enum(role)) {
        case GREY_TENSOR_ROLE_OTHER: return "other";
        case GREY_TENSOR_ROLE_EMBEDDING: return "embedding";
        case GREY_TENSOR_ROLE_ATTENTION: return "attention";
        case GREY_TENSOR_ROLE_DENSE_FFN: return "dense_ffn";
        case GREY_TENSOR_ROLE_MOE_ROUTER: return "moe_router";
        case GREY_TENSOR_ROLE_ROUTED_EXPERTS: return "routed_experts";
        case GREY_TENSOR_ROLE_SHARED_EXPERTS: return "shared_experts";
        case GREY_TENSOR_ROLE_NORM: return "norm";
        case GREY_TENSOR_ROLE_OUTPUT: return "output";
        default: return nullptr;
    }
}

grey_status grey_plan_create(grey_context* context, const char* model_path, const grey_workload* workload, const char* devices_path,
                             grey_plan** out_plan) {
    return grey::abi_guard([&] {
        grey::require_non_null(model_path, "model_path");
        grey::require_non_null(workload, "workload");
        grey::require_non_null(out_plan, "out_plan");
        const auto request = request_of(*workload);
        if (devices_path == nullptr && context == nullptr)
            grey::fail(GREY_ERROR_INVALID_ARGUMENT, "give a devices file or a context whose devices are detected");
        const auto machine = devices_path != nullptr ? grey::plan::read_devices_file(devices_path) : grey::plan::detect_machine(context);
        const auto model = grey::plan::read_workload_model(model_path);
        hand_out(grey::plan::make_plan(model, machine, request), out_plan);
    });
}

grey_status grey_plan_load(const char* path, grey_plan** out_plan) {
    return grey::abi_guard([&] {
        grey::require_non_null(path, "path");
        grey::require_non_null(out_plan, "out_plan");
        hand_out(grey::plan::read_plan_yaml(path), out_plan);
    });
}

void grey_plan_destroy(grey_plan* plan) { delete plan; }

grey_status grey_plan_to_yaml(const grey_plan* plan, char* buffer, size_t buffer_size, size_t* out_length) {
    return grey::abi_guard([&] { grey::copy_out_text(grey::plan::plan_to_yaml(checked(plan)), buffer, buffer_size, out_length); });
}

grey_status grey_plan_to_json(const grey_plan* plan, char* buffer, size_t buffer_size, size_t* out_length) {
    return grey::abi_guard([&] { grey::copy_out_text(grey::plan::plan_to_json(checked(plan)), buffer, buffer_size, out_length); });
}

grey_status grey_plan_llama_cpp_args(const grey_plan* plan, char* buffer, size_t buffer_size, size_t* out_length) {
    return grey::abi_guard([&] {
        std::string text;
        for (const auto& arg : grey::plan::llama_cpp_args(checked(plan))) text += arg + "\n";
        grey::copy_out_text(text, buffer, buffer_size, out_length);
    });
}

grey_status grey_plan_check_llama_cpp_overrides(const grey_plan* plan, const char* overrides, uint32_t gpu_layers) {
    return grey::abi_guard([&] {
        grey::require_non_null(overrides, "overrides");
        grey::plan::check_llama_cpp_overrides(checked(plan), overrides, gpu_layers);
    });
}

grey_status grey_plan_summary_get(const grey_plan* plan, grey_plan_summary* out_summary) {
    return grey::abi_guard([&] {
        const auto& p = checked(plan);
        grey_plan_summary s{};
        s.struct_size = sizeof s;
        s.kind = p.request.kind;
        s.context = p.request.context;
        s.batch = p.request.batch;
        s.batch_recommended = p.batch_recommended ? 1u : 0u;
        s.tenants = p.request.tenants;
        s.device_count = static_cast<uint32_t>(p.devices.size());
        s.tensor_count = p.tensors.size();
        s.kv_quantized = p.kv_precision == "int8" || p.kv_precision == "int4" || p.kv_precision == "int2";
        s.kv_format = p.kv_precision == "int2" ? GREY_KV_INT2 : p.kv_precision == "int4" ? GREY_KV_INT4 : GREY_KV_INT8;
        s.kv_bytes = p.kv_bytes();
        s.kv_bytes_per_token = p.kv_bytes_per_token;
        for (size_t i = 0; i < p.tensors.size(); ++i) s.weight_bytes_file += p.tensors[i].bytes, s.weight_bytes_planned += p.placed[i].bytes;
        s.predicted_steps_per_s = p.predicted_steps_per_s;
        s.kv_runtime = p.request.kv_runtime;
        grey::copy_out_struct(s, out_summary, kSummarySize, "out_summary");
    });
}

grey_status grey_plan_device_get(const grey_plan* plan, uint32_t index, grey_plan_device* out_device) {
    return grey::abi_guard([&] {
        const auto& p = checked(plan);
        check_index(index, p.devices.size(), "device");
        const auto& d = p.devices[index];
        const auto& u = p.usage[index];
        grey_plan_device out{};
        out.struct_size = sizeof out;
        out.type = d.type;
        std::memcpy(out.name, d.name.data(), std::min(d.name.size(), sizeof out.name - 1));
        out.memory_free_bytes = d.memory_free_bytes;
        out.budget_bytes = u.budget_bytes;
        out.weight_bytes = u.weight_bytes;
        out.kv_bytes = u.kv_bytes;
        out.other_bytes = u.other_bytes;
        out.predicted_bytes = u.predicted_bytes();
        out.safety_margin = d.safety_margin;
        out.bandwidth_gbps = d.bandwidth_gbps;
        out.read_bytes_per_step = u.read_bytes_per_step;
        out.thermal_target_c = u.thermal_target_c;
        out.thermal_max_c = u.thermal_max_c;
        grey::copy_out_struct(out, out_device, kDeviceSize, "out_device");
    });
}

grey_status grey_plan_tensor_get(const grey_plan* plan, uint64_t index, grey_plan_tensor* out_tensor) {
    return grey::abi_guard([&] {
        const auto& p = checked(plan);
        check_index(index, p.tensors.size(), "tensor");
        const auto& t = p.tensors[index];
        const auto& pl = p.placed[index];
        grey_plan_tensor out{};
        out.struct_size = sizeof out;
        out.role = t.role;
        out.name = t.name.c_str();
        out.format = pl.format.c_str();
        out.layer = t.layer;
        out.device = pl.device;
        out.file_bytes = t.bytes;
        out.planned_bytes = pl.bytes;
        grey::copy_out_struct(out, out_tensor, kTensorSize, "out_tensor");
    });
}

}  // extern "C"
