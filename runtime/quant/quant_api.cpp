// The C entry points of "Quantization (since 0.1)" in grey.h. Every call goes through a backend's
// quantize and dequantize slots with the layout computed here once: host memory through the built-in
// host backend (core/host_memory_backend.hpp), device buffers through the owning backend. The error
// report is measured where the data is: by the backend when it can (GREY_BACKEND_CAP_QUANT_ERROR),
// otherwise on the host from what is read back.
#include "common/dtype.hpp"
#include "common/quant_error.hpp"
#include "core/backend.hpp"
#include "core/context.hpp"
#include "core/error.hpp"
#include "core/stream.hpp"
#include "core/host_memory_backend.hpp"
#include "core/tensor_desc.hpp"
#include "memory/async_use.hpp"
#include "memory/buffer.hpp"
#include "quant/format.hpp"
#include "quant/host_memory_quantize.hpp"
#include "quant/measure.hpp"

#include <cstring>
#include <vector>

namespace grey::quant {
namespace {

const grey_tensor_desc& checked_desc(const grey_tensor_desc* desc) {
    require_non_null(desc, "desc");
    return *desc;
}

const grey_quant_params& checked_params(const grey_quant_params* params) {
    require_non_null(params, "params");
    return *params;
}

// The plain (unquantized) side of a call: F32, F16 or BF16, and its byte size.
uint64_t plain_bytes(const grey_tensor_desc& desc, const grey_quant_layout& layout, const char* role) {
    if (!common::is_float_input(desc.dtype))
        fail(GREY_ERROR_INVALID_ARGUMENT, std::string(role) + " must be F32, F16 or BF16, not " + std::to_string(raw_enum(desc.dtype)));
    return layout.elements * common::float_input_size(desc.dtype);
}

void require_size(uint64_t given, uint64_t needed, const char* what, bool exact) {
    if (exact ? given != needed : given < needed)
        fail(GREY_ERROR_INVALID_ARGUMENT, std::string(what) + " is " + std::to_string(given) + " bytes; " + (exact ? "the tensor takes " : "at least ") +
                                              std::to_string(needed) + " are needed");
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
    (void)raw_handle(source, "the source buffer");
    check_writable(destination, "the destination buffer");
    if (!source.backend->has_quantization())
        fail(GREY_ERROR_UNSUPPORTED, "the " + source.backend->name() + " backend has no quantization kernels yet; " +
                                         "quantize host memory with grey_quantize, or use a buffer on the host device");
    return *source.backend;
}

grey_backend_memory host_memory(const void* at, uint64_t size) { return {nullptr, const_cast<void*>(at), 0, size}; }
grey_backend_memory buffer_memory(const grey_buffer& buffer, uint64_t offset, uint64_t size) { return {buffer.handle, nullptr, offset, size}; }

grey_backend_quant_job make_job(const grey_quant_layout& layout, grey_dtype plain_dtype, grey_backend_memory plain, grey_backend_memory quantized) {
    grey_backend_quant_job job{};
    job.struct_size = sizeof job;
    job.layout = &layout;
    job.plain_dtype = plain_dtype;
    job.plain = plain;
    job.quantized = quantized;
    return job;
}

grey_backend_quant_error empty_error() {
    grey_backend_quant_error error{};
    error.struct_size = sizeof error;
    return error;
}

grey_quant_report report_of(const grey_backend_quant_error& error, const grey_quant_layout& layout) {
    common::ErrorSums sums;
    sums.sum_squared_signal = error.sum_squared_signal;
    sums.sum_squared_error = error.sum_squared_error;
    sums.max_abs_error = error.max_abs_error;
    sums.elements = error.elements;
    return make_report(sums, layout.bytes, layout.calibration);
}

// The host backend, for host memory; it must take host memory and measure there (it always does).
const Backend& host_backend() {
    const Backend& backend = host_memory_backend();
    if (!quantizes_host_memory(backend)) fail(GREY_ERROR_INTERNAL, "the built-in host backend does not take host memory");
    return backend;
}

// The error of `quantized` against `plain` (of `dtype`), both read back into host memory: the host
// backend dequantizes, and the sums run here.
grey_backend_quant_error measure_on_host(const grey_quant_layout& layout, grey_dtype dtype, std::span<const std::byte> plain,
                                         std::span<const std::byte> quantized) {
    std::vector<float> decoded(layout.elements);
    host_backend().dequantize(make_job(layout, GREY_DTYPE_F32, host_memory(decoded.data(), decoded.size() * 4), host_memory(quantized.data(), layout.bytes)));
    const auto reference = to_f32(dtype, plain, layout.elements);
    common::ErrorSums sums;
    sums.add(reference.data(), decoded.data(), reference.size());
    grey_backend_quant_error error = empty_error();
    error.elements = sums.elements;
    error.sum_squared_signal = sums.sum_squared_signal;
    error.sum_squared_error = sums.sum_squared_error;
    error.max_abs_error = sums.max_abs_error;
    return error;
}

// The checks a buffer call shares: descriptor, parameters, both buffers.
struct BufferCall {
    grey_quant_layout layout;
    grey_dtype plain_dtype;
    uint64_t plain_bytes;
    const Backend* backend;
};

BufferCall prepare_buffer_call(const grey_tensor_desc* desc, const grey_quant_params* params, const grey_buffer* source,
                               const grey_buffer* destination, const char* plain_role) {
    const auto& d = checked_desc(desc);
    const auto layout = make_layout(checked_shape(d), checked_params(params));
    const uint64_t plain = plain_bytes(d, layout, plain_role);
    require_non_null(source, "source");
    require_non_null(destination, "destination");
    return {layout, d.dtype, plain, &kernel_backend(*source, *destination)};
}

std::vector<std::byte> read_back(const grey_buffer& buffer, uint64_t offset, uint64_t size) {
    std::vector<std::byte> bytes(size);
    buffer.backend->buffer_read(buffer.handle, offset, bytes.data(), size);
    return bytes;
}

}  // namespace

bool quantizes_host_memory(const Backend& backend) noexcept {
    return backend.has_quantization() && backend.has(GREY_BACKEND_CAP_QUANT_HOST_MEMORY | GREY_BACKEND_CAP_QUANT_ERROR);
}

void quantize_host_memory(const Backend& backend, const grey_tensor_desc* desc, const void* source, uint64_t source_bytes,
                          const grey_quant_params* params, void* destination, uint64_t destination_bytes, grey_quant_report* out_report) {
    const auto& d = checked_desc(desc);
    const auto layout = make_layout(checked_shape(d), checked_params(params));
    require_size(source_bytes, plain_bytes(d, layout, "desc->dtype"), "source_bytes", true);
    require_size(destination_bytes, layout.bytes, "destination_bytes", false);
    require_non_null(source, "source");
    require_non_null(destination, "destination");
    check_report_size(out_report);
    grey_backend_quant_job job = make_job(layout, d.dtype, host_memory(source, source_bytes), host_memory(destination, layout.bytes));
    grey_backend_quant_error error = empty_error();
    if (out_report != nullptr) job.error = &error;
    backend.quantize(job);
    if (out_report != nullptr) copy_report(report_of(error, layout), out_report);
}

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
        const auto layout = make_layout(grey::checked_shape(checked_desc(desc)), checked_params(params));
        grey::require_non_null(out_bytes, "out_bytes");
        *out_bytes = layout.bytes;
    });
}

grey_status grey_quantize(const grey_tensor_desc* desc, const void* source, uint64_t source_bytes, const grey_quant_params* params,
                          void* destination, uint64_t destination_bytes, grey_quant_report* out_report) {
    return grey::abi_guard([&] {
        using namespace grey::quant;
        quantize_host_memory(host_backend(), desc, source, source_bytes, params, destination, destination_bytes, out_report);
    });
}

grey_status grey_dequantize(const grey_tensor_desc* desc, const grey_quant_params* params, const void* source, uint64_t source_bytes,
                            void* destination, uint64_t destination_bytes) {
    return grey::abi_guard([&] {
        using namespace grey::quant;
        const auto& d = checked_desc(desc);
        const auto layout = make_layout(grey::checked_shape(d), checked_params(params));
        const uint64_t plain = plain_bytes(d, layout, "desc->dtype (the output type)");
        require_size(source_bytes, layout.bytes, "source_bytes", false);
        require_size(destination_bytes, plain, "destination_bytes", false);
        grey::require_non_null(source, "source");
        grey::require_non_null(destination, "destination");
        host_backend().dequantize(make_job(layout, d.dtype, host_memory(destination, plain), host_memory(source, layout.bytes)));
    });
}

grey_status grey_quant_compare(const grey_tensor_desc* desc, const void* reference, const void* approximation, uint64_t bytes_each,
                               grey_quant_report* out_report) {
    return grey::abi_guard([&] {
        using namespace grey::quant;
        const auto& d = checked_desc(desc);
        const auto shape = grey::checked_shape(d);
        grey_quant_params any = GREY_QUANT_PARAMS_INIT;
        any.format = GREY_QUANT_INT8_TOKEN;  // only to count elements and check the shape is not empty
        const auto layout = make_layout(shape, any);
        const uint64_t plain = plain_bytes(d, layout, "desc->dtype");
        require_size(bytes_each, plain, "bytes_each", true);
        grey::require_non_null(reference, "reference");
        grey::require_non_null(approximation, "approximation");
        grey::require_non_null(out_report, "out_report");
        check_report_size(out_report);
        const auto x = to_f32(d.dtype, {static_cast<const std::byte*>(reference), plain}, layout.elements);
        const auto y = to_f32(d.dtype, {static_cast<const std::byte*>(approximation), plain}, layout.elements);
        grey::common::ErrorSums sums;
        sums.add(x.data(), y.data(), x.size());
        copy_report(make_report(sums, plain, GREY_CALIBRATION_RTN), out_report);
    });
}

grey_status grey_quantize_buffer(const grey_tensor_desc* desc, const grey_buffer* source, uint64_t source_offset,
                                 const grey_quant_params* params, grey_buffer* destination, uint64_t destination_offset,
                                 grey_quant_report* out_report) {
    return grey::abi_guard([&] {
        using namespace grey::quant;
        check_report_size(out_report);
        const auto call = prepare_buffer_call(desc, params, source, destination, "desc->dtype");
        // The buffers stay where they are for the call (the background scan moves sealed ones).
        grey::memory::AsyncUse use({source, destination});
        (void)grey::raw_handle(*source, "grey_quantize_buffer source");
        check_range(*source, source_offset, call.plain_bytes, "source");
        check_range(*destination, destination_offset, call.layout.bytes, "destination");
        grey_backend_quant_job job = make_job(call.layout, call.plain_dtype, buffer_memory(*source, source_offset, call.plain_bytes),
                                              buffer_memory(*destination, destination_offset, call.layout.bytes));
        grey_backend_quant_error error = empty_error();
        const bool measured_there = out_report != nullptr && call.backend->has(GREY_BACKEND_CAP_QUANT_ERROR);
        if (measured_there) job.error = &error;
        call.backend->quantize(job);
        if (out_report == nullptr) return;
        if (!measured_there) {
            source->context->logger.debug("backend '" + call.backend->name() +
                                          "' cannot measure quantization error where the data is; reading both tensors back to measure on the host");
            error = measure_on_host(call.layout, call.plain_dtype, read_back(*source, source_offset, call.plain_bytes),
                                    read_back(*destination, destination_offset, call.layout.bytes));
        }
        copy_report(report_of(error, call.layout), out_report);
    });
}

grey_status grey_dequantize_buffer(const grey_tensor_desc* desc, const grey_quant_params* params, const grey_buffer* source,
                                   uint64_t source_offset, grey_buffer* destination, uint64_t destination_offset) {
    return grey::abi_guard([&] {
        using namespace grey::quant;
        const auto call = prepare_buffer_call(desc, params, source, destination, "desc->dtype (the output type)");
        // The buffers stay where they are for the call (the background scan moves sealed ones).
        grey::memory::AsyncUse use({source, destination});
        (void)grey::raw_handle(*source, "grey_dequantize_buffer source");
        check_range(*source, source_offset, call.layout.bytes, "source");
        check_range(*destination, destination_offset, call.plain_bytes, "destination");
        call.backend->dequantize(make_job(call.layout, call.plain_dtype, buffer_memory(*destination, destination_offset, call.plain_bytes),
                                          buffer_memory(*source, source_offset, call.layout.bytes)));
    });
}

// The _async forms: the synchronous calls' checks, then the job enqueued on the stream (on a backend
// without streams, the synchronous call run at enqueue).
grey_status grey_quantize_buffer_async(const grey_tensor_desc* desc, const grey_buffer* source, uint64_t source_offset,
                                       const grey_quant_params* params, grey_buffer* destination, uint64_t destination_offset,
                                       grey_stream* stream) {
    return grey::abi_guard([&] {
        using namespace grey::quant;
        const auto call = prepare_buffer_call(desc, params, source, destination, "desc->dtype");
        grey_stream& s = grey::stream_for(stream, *source, "grey_quantize_buffer_async");
        // The buffers are not moved from here until the job is queued; the source is checked raw again
        // under that guard (prepare_buffer_call's check came before it).
        grey::memory::AsyncUse use(s, {source, destination});
        (void)grey::raw_handle(*source, "grey_quantize_buffer_async source");
        check_range(*source, source_offset, call.plain_bytes, "source");
        check_range(*destination, destination_offset, call.layout.bytes, "destination");
        const grey_backend_quant_job job = make_job(call.layout, call.plain_dtype, buffer_memory(*source, source_offset, call.plain_bytes),
                                                    buffer_memory(*destination, destination_offset, call.layout.bytes));
        grey::submit(s, [&](grey_backend_stream* h) { call.backend->quantize_async(h, job); }, [&] { call.backend->quantize(job); },
                     call.backend->has_quantize_async());
        use.enqueued();
    });
}

grey_status grey_dequantize_buffer_async(const grey_tensor_desc* desc, const grey_quant_params* params, const grey_buffer* source,
                                         uint64_t source_offset, grey_buffer* destination, uint64_t destination_offset, grey_stream* stream) {
    return grey::abi_guard([&] {
        using namespace grey::quant;
        const auto call = prepare_buffer_call(desc, params, source, destination, "desc->dtype (the output type)");
        grey_stream& s = grey::stream_for(stream, *source, "grey_dequantize_buffer_async");
        // The buffers are not moved from here until the job is queued; the source is checked raw again
        // under that guard (prepare_buffer_call's check came before it).
        grey::memory::AsyncUse use(s, {source, destination});
        (void)grey::raw_handle(*source, "grey_dequantize_buffer_async source");
        check_range(*source, source_offset, call.layout.bytes, "source");
        check_range(*destination, destination_offset, call.plain_bytes, "destination");
        const grey_backend_quant_job job = make_job(call.layout, call.plain_dtype, buffer_memory(*destination, destination_offset, call.plain_bytes),
                                                    buffer_memory(*source, source_offset, call.layout.bytes));
        grey::submit(s, [&](grey_backend_stream* h) { call.backend->dequantize_async(h, job); }, [&] { call.backend->dequantize(job); },
                     call.backend->has_quantize_async());
        use.enqueued();
    });
}

}  // extern "C"
