// The C entry points of "Quantization (since 0.1)" in grey.h. Host memory goes straight to the host
// backend's kernels; device buffers go to the owning backend's quantize/dequantize slots.
#include "core/backend.hpp"
#include "core/error.hpp"
#include "host/quant/quantizer.hpp"
#include "memory/buffer.hpp"
#include "quant/format.hpp"
#include "quant/measure.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

namespace grey::quant {
namespace {

namespace hq = grey::host::quant;

const grey_tensor_desc& checked_desc(const grey_tensor_desc* desc) {
    require_non_null(desc, "desc");
    return *desc;
}

const grey_quant_params& checked_params(const grey_quant_params* params) {
    require_non_null(params, "params");
    return *params;
}

// The plain (unquantized) side of a call: F32, F16 or BF16, and its byte size.
uint64_t plain_bytes(const grey_tensor_desc& desc, const Plan& plan, const char* role) {
    if (!is_float_input(desc.dtype))
        fail(GREY_ERROR_INVALID_ARGUMENT, std::string(role) + " must be F32, F16 or BF16, not " + std::to_string(raw_enum(desc.dtype)));
    return plan.elements * float_input_size(desc.dtype);
}

void require_size(uint64_t given, uint64_t needed, const char* what, bool exact) {
    if (exact ? given != needed : given < needed)
        fail(GREY_ERROR_INVALID_ARGUMENT, std::string(what) + " is " + std::to_string(given) + " bytes; " + (exact ? "the tensor takes " : "at least ") +
                                              std::to_string(needed) + " are needed");
}

grey_quant_report measure(const Plan& plan, std::span<const float> reference, std::span<const std::byte> quantized) {
    // Decoded a slice at a time, so that measuring takes a fixed amount of memory whatever the tensor's
    // size; the sums run in the order they would over the whole tensor, so the report is the same.
    constexpr uint64_t kSlice = uint64_t{1} << 20;  // elements: a multiple of every block and group size
    std::vector<float> decoded(static_cast<std::size_t>(std::min(plan.elements, kSlice)));
    ErrorTotals totals;
    for (uint64_t first = 0; first < plan.elements; first += kSlice) {
        const std::span<float> slice(decoded.data(), static_cast<std::size_t>(std::min(kSlice, plan.elements - first)));
        hq::dequantize_range(plan, quantized, first, slice, hq::best_kernels());
        totals.add(reference.subspan(first, slice.size()), slice);
    }
    return make_report(totals, plan.bytes, plan.calibration);
}

void copy_report(const grey_quant_report& report, grey_quant_report* out) {
    if (out != nullptr) copy_out_struct(report, out, sizeof(grey_quant_report), "out_report");
}

void check_report_size(const grey_quant_report* out) {
    // Refuse a bad struct_size before any work, so that a failure leaves the outputs as they were.
    if (out != nullptr && out->struct_size < sizeof(grey_quant_report))
        fail(GREY_ERROR_INVALID_ARGUMENT, "out_report->struct_size is " + std::to_string(out->struct_size) + "; set it to sizeof(grey_quant_report)");
}

void check_range(const grey_buffer& buffer, uint64_t offset, uint64_t size, const char* what) {
    if (offset > buffer.size || size > buffer.size - offset)
        fail(GREY_ERROR_INVALID_ARGUMENT, std::string(what) + ": " + std::to_string(size) + " bytes at offset " + std::to_string(offset) +
                                              " do not fit in the buffer of " + std::to_string(buffer.size) + " bytes");
}

// Device buffers: both on one device of a backend that has the kernels.
const Backend& kernel_backend(const grey_buffer& source, const grey_buffer& destination) {
    if (source.context != destination.context || source.device != destination.device)
        fail(GREY_ERROR_INVALID_ARGUMENT, "the source and destination buffers must be on the same device");
    if (!source.backend->has_quantization())
        fail(GREY_ERROR_UNSUPPORTED, "the " + source.backend->name() + " backend has no quantization kernels yet; " +
                                         "quantize host memory with grey_quantize, or use a buffer on the host device");
    return *source.backend;
}

grey_backend_quant_job make_job(const grey_tensor_desc& desc, const grey_quant_params& params, const Plan& plan, uint64_t plain) {
    grey_backend_quant_job job{};
    job.struct_size = sizeof job;
    job.tensor = desc;
    job.tensor.struct_size = sizeof job.tensor;
    job.params = params;
    job.params.struct_size = sizeof job.params;
    job.plain_bytes = plain;
    job.quantized_bytes = plan.bytes;
    return job;
}

// The checks a buffer call shares: descriptor, parameters, both buffers, and the job for the backend.
struct BufferCall {
    grey_backend_quant_job job;
    Plan plan;
    const Backend* backend;
};

BufferCall prepare_buffer_call(const grey_tensor_desc* desc, const grey_quant_params* params, const grey_buffer* source,
                               const grey_buffer* destination, const char* plain_role) {
    const auto& d = checked_desc(desc);
    const auto& p = checked_params(params);
    Plan plan = make_plan(checked_shape(d), p);
    const uint64_t plain = plain_bytes(d, plan, plain_role);
    require_non_null(source, "source");
    require_non_null(destination, "destination");
    const Backend& backend = kernel_backend(*source, *destination);
    return {make_job(d, p, plan, plain), std::move(plan), &backend};
}

std::vector<std::byte> read_back(const grey_buffer& buffer, uint64_t offset, uint64_t size) {
    std::vector<std::byte> bytes(size);
    buffer.backend->buffer_read(buffer.handle, offset, bytes.data(), size);
    return bytes;
}

}  // namespace
}  // namespace grey::quant

extern "C" {

const char* grey_quant_format_name(grey_quant_format format) { return grey::quant::format_name(grey::raw_enum(format)); }

grey_status grey_quant_params_from_name(const char* name, grey_quant_params* out_params) {
    return grey::abi_guard([&] {
        grey::require_non_null(name, "name");
        grey::require_non_null(out_params, "out_params");
        for (const auto& named : grey::quant::named_params()) {
            if (std::strcmp(name, named.name) != 0) continue;
            grey_quant_params params = GREY_QUANT_PARAMS_INIT;
            params.format = named.format;
            params.group_size = named.group_size;
            grey::copy_out_struct(params, out_params, sizeof(grey_quant_params), "out_params");
            return;
        }
        std::string valid;
        for (const auto& named : grey::quant::named_params()) valid += (valid.empty() ? "" : ", ") + std::string(named.name);
        grey::fail(GREY_ERROR_INVALID_ARGUMENT, "unknown quantization format name '" + std::string(name) + "'; valid names: " + valid);
    });
}

const char* grey_quant_params_name(const grey_quant_params* params) {
    if (params == nullptr || params->struct_size < sizeof(grey_quant_params) || params->reserved0 != 0) return nullptr;
    const int64_t calibration = grey::raw_enum(params->calibration);
    if (calibration != GREY_CALIBRATION_RTN && calibration != GREY_CALIBRATION_MSE) return nullptr;
    const int64_t format = grey::raw_enum(params->format);
    // grey_quant_params documents group_size 0 as 128 for the grouped formats.
    const bool grouped = format == GREY_QUANT_INT4 || format == GREY_QUANT_INT4_SYM;
    const uint32_t group = grouped && params->group_size == 0 ? 128 : params->group_size;
    for (const auto& named : grey::quant::named_params())
        if (format == named.format && group == named.group_size && params->axis == 0) return named.name;
    return nullptr;
}

uint32_t grey_quant_name_count(void) { return static_cast<uint32_t>(grey::quant::named_params().size()); }

const char* grey_quant_name_at(uint32_t index) {
    const auto named = grey::quant::named_params();
    return index < named.size() ? named[index].name : nullptr;
}

grey_status grey_quant_size(const grey_tensor_desc* desc, const grey_quant_params* params, uint64_t* out_bytes) {
    return grey::abi_guard([&] {
        using namespace grey::quant;
        const auto shape = checked_shape(checked_desc(desc));
        const Plan plan = make_plan(shape, checked_params(params));
        grey::require_non_null(out_bytes, "out_bytes");
        *out_bytes = plan.bytes;
    });
}

grey_status grey_quantize(const grey_tensor_desc* desc, const void* source, uint64_t source_bytes, const grey_quant_params* params,
                          void* destination, uint64_t destination_bytes, grey_quant_report* out_report) {
    return grey::abi_guard([&] {
        using namespace grey::quant;
        const auto& d = checked_desc(desc);
        const Plan plan = make_plan(checked_shape(d), checked_params(params));
        require_size(source_bytes, plain_bytes(d, plan, "desc->dtype"), "source_bytes", true);
        require_size(destination_bytes, plan.bytes, "destination_bytes", false);
        grey::require_non_null(source, "source");
        grey::require_non_null(destination, "destination");
        check_report_size(out_report);
        const auto& kernels = hq::best_kernels();
        // F32 input is read where it lies (often a mapped model file): no copy of the tensor.
        std::vector<float> converted;
        const auto values = hq::as_f32(d.dtype, {static_cast<const std::byte*>(source), source_bytes}, plan.elements, kernels, converted);
        const std::span<std::byte> out{static_cast<std::byte*>(destination), plan.bytes};
        hq::quantize(plan, values, out, kernels);
        if (out_report != nullptr) copy_report(measure(plan, values, out), out_report);
    });
}

grey_status grey_dequantize(const grey_tensor_desc* desc, const grey_quant_params* params, const void* source, uint64_t source_bytes,
                            void* destination, uint64_t destination_bytes) {
    return grey::abi_guard([&] {
        using namespace grey::quant;
        const auto& d = checked_desc(desc);
        const Plan plan = make_plan(checked_shape(d), checked_params(params));
        const uint64_t plain = plain_bytes(d, plan, "desc->dtype (the output type)");
        require_size(source_bytes, plan.bytes, "source_bytes", false);
        require_size(destination_bytes, plain, "destination_bytes", false);
        grey::require_non_null(source, "source");
        grey::require_non_null(destination, "destination");
        std::vector<float> values(plan.elements);
        hq::dequantize(plan, {static_cast<const std::byte*>(source), plan.bytes}, values, hq::best_kernels());
        hq::from_f32(values, d.dtype, {static_cast<std::byte*>(destination), plain});
    });
}

grey_status grey_quant_compare(const grey_tensor_desc* desc, const void* reference, const void* approximation, uint64_t bytes_each,
                               grey_quant_report* out_report) {
    return grey::abi_guard([&] {
        using namespace grey::quant;
        const auto& d = checked_desc(desc);
        const auto shape = checked_shape(d);
        grey_quant_params any = GREY_QUANT_PARAMS_INIT;
        any.format = GREY_QUANT_INT8_TOKEN;  // only to count elements and check the shape is not empty
        const Plan plan = make_plan(shape, any);
        const uint64_t plain = plain_bytes(d, plan, "desc->dtype");
        require_size(bytes_each, plain, "bytes_each", true);
        grey::require_non_null(reference, "reference");
        grey::require_non_null(approximation, "approximation");
        grey::require_non_null(out_report, "out_report");
        check_report_size(out_report);
        const auto& kernels = hq::best_kernels();
        const auto x = hq::to_f32(d.dtype, {static_cast<const std::byte*>(reference), plain}, plan.elements, kernels);
        const auto y = hq::to_f32(d.dtype, {static_cast<const std::byte*>(approximation), plain}, plan.elements, kernels);
        ErrorTotals totals;
        totals.add(x, y);
        copy_report(make_report(totals, plain, GREY_CALIBRATION_RTN), out_report);
    });
}

grey_status grey_quantize_buffer(const grey_tensor_desc* desc, const grey_buffer* source, uint64_t source_offset,
                                 const grey_quant_params* params, grey_buffer* destination, uint64_t destination_offset,
                                 grey_quant_report* out_report) {
    return grey::abi_guard([&] {
        using namespace grey::quant;
        check_report_size(out_report);
        const auto call = prepare_buffer_call(desc, params, source, destination, "desc->dtype");
        check_range(*source, source_offset, call.job.plain_bytes, "source");
        check_range(*destination, destination_offset, call.plan.bytes, "destination");
        call.backend->quantize(call.job, source->handle, source_offset, destination->handle, destination_offset);
        if (out_report == nullptr) return;
        const auto original = read_back(*source, source_offset, call.job.plain_bytes);
        const auto quantized = read_back(*destination, destination_offset, call.plan.bytes);
        const auto values = hq::to_f32(desc->dtype, original, call.plan.elements, hq::best_kernels());
        copy_report(measure(call.plan, values, quantized), out_report);
    });
}

grey_status grey_dequantize_buffer(const grey_tensor_desc* desc, const grey_quant_params* params, const grey_buffer* source,
                                   uint64_t source_offset, grey_buffer* destination, uint64_t destination_offset) {
    return grey::abi_guard([&] {
        using namespace grey::quant;
        const auto call = prepare_buffer_call(desc, params, source, destination, "desc->dtype (the output type)");
        check_range(*source, source_offset, call.plan.bytes, "source");
        check_range(*destination, destination_offset, call.job.plain_bytes, "destination");
        call.backend->dequantize(call.job, source->handle, source_offset, destination->handle, destination_offset);
    });
}

}  // extern "C"
