#include "host/host_backend.hpp"

#include "common/checksum.hpp"
#include "common/fields.hpp"
#include "common/kv_store_job.hpp"
#include "common/quant_error.hpp"
#include "common/quant_layout.h"
#include "host/host_probe.hpp"
#include "host/host_stream.hpp"
#include "host/kv/host_kv.hpp"
#include "host/quant/quantizer.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <span>
#include <stdexcept>
#include <string>

struct grey_backend_buffer {
    struct Free {
        void operator()(void* p) const noexcept { std::free(p); }
    };
    std::unique_ptr<std::byte, Free> data;
    uint64_t size = 0;
};

struct grey_backend_stream {
    grey::host::Stream stream;
};

struct grey_backend_event {
    std::mutex mutex;
    std::shared_ptr<grey::host::Signal> latest;  // the latest record; guarded by mutex

    std::shared_ptr<grey::host::Signal> current() {
        std::lock_guard lock(mutex);
        return latest;
    }
};

namespace grey::host {
namespace {

// Host buffers are aligned for the widest vector loads the host kernels use.
constexpr uint64_t kAlignment = 64;

struct HostState {
    explicit HostState(const grey_backend_host* h) : host(h), probe("/") {}
    const grey_backend_host* host;
    HostProbe probe;
    // What grey_device_memory_stats_get reports: the host has no pool, so these are plain sums.
    std::mutex stats_mutex;
    uint64_t allocated_bytes = 0;
    uint64_t allocation_count = 0;
};

HostState& state_of(void* state) { return *static_cast<HostState*>(state); }

grey_status report(void* state, grey_status status, const std::string& message) {
    if (capture_failure(status, message)) return status;
    const auto* host = state_of(state).host;
    if (host != nullptr && host->set_error != nullptr) host->set_error(host->host_data, message.c_str());
    return status;
}

grey_status check_device(void* state, uint32_t device) {
    if (device == 0) return GREY_OK;
    return report(state, GREY_ERROR_INVALID_ARGUMENT, "host backend: device " + std::to_string(device) + " does not exist (it has one device, 0)");
}

grey_status host_init(const grey_backend_host* host, void** out_state) {
    try {
        auto state = std::make_unique<HostState>(host);
        *out_state = state.release();
        return GREY_OK;
    } catch (const std::bad_alloc&) {
        return GREY_ERROR_OUT_OF_MEMORY;
    } catch (...) {
        return GREY_ERROR_INTERNAL;
    }
}

void host_shutdown(void* state) { std::unique_ptr<HostState>(static_cast<HostState*>(state)).reset(); }

grey_status host_device_count(void*, uint32_t* out_count) {
    *out_count = 1;
    return GREY_OK;
}

grey_status host_device_spec(void* state, uint32_t device, grey_device_spec* out, const grey_field_reasons* reasons) {
    if (auto s = check_device(state, device); s != GREY_OK) return s;
    try {
        out->vendor = GREY_VENDOR_CPU;
        out->type = GREY_DEVICE_CPU;
        state_of(state).probe.fill_spec(*out, reasons);
        return GREY_OK;
    } catch (const std::exception& e) {
        return report(state, GREY_ERROR_INTERNAL, std::string("host backend: reading the CPU's facts failed: ") + e.what());
    }
}

grey_status host_device_telemetry(void* state, uint32_t device, grey_device_telemetry* out, const grey_field_reasons* reasons) {
    if (auto s = check_device(state, device); s != GREY_OK) return s;
    try {
        state_of(state).probe.fill_telemetry(*out, reasons);
        return GREY_OK;
    } catch (const std::exception& e) {
        return report(state, GREY_ERROR_INTERNAL, std::string("host backend: sampling the CPU failed: ") + e.what());
    }
}

// Rounded up to the alignment; wraps to a smaller value when `size` is within kAlignment of 2^64.
uint64_t rounded_size(uint64_t size) { return (size + kAlignment - 1) / kAlignment * kAlignment; }

grey_status host_buffer_alloc(void* state, uint32_t device, uint64_t size, grey_backend_buffer** out) {
    if (auto s = check_device(state, device); s != GREY_OK) return s;
    const uint64_t rounded = rounded_size(size);
    if (rounded < size)
        return report(state, GREY_ERROR_OUT_OF_MEMORY, "host backend: " + std::to_string(size) + " bytes cannot be allocated");
    try {
        auto buffer = std::make_unique<grey_backend_buffer>();
        buffer->data.reset(static_cast<std::byte*>(std::aligned_alloc(kAlignment, rounded)));
        if (!buffer->data)
            return report(state, GREY_ERROR_OUT_OF_MEMORY, "host backend: cannot allocate " + std::to_string(size) + " bytes of host memory");
        buffer->size = size;
        {
            HostState& s = state_of(state);
            std::lock_guard lock(s.stats_mutex);
            s.allocated_bytes += rounded;
            s.allocation_count += 1;
        }
        *out = buffer.release();
        return GREY_OK;
    } catch (const std::bad_alloc&) {
        return report(state, GREY_ERROR_OUT_OF_MEMORY, "host backend: out of host memory");
    }
}

void host_buffer_free(void* state, grey_backend_buffer* buffer) {
    {
        HostState& s = state_of(state);
        std::lock_guard lock(s.stats_mutex);
        s.allocated_bytes -= rounded_size(buffer->size);
        s.allocation_count -= 1;
    }
    std::unique_ptr<grey_backend_buffer>(buffer).reset();
}

grey_status host_memory_stats(void* state, uint32_t device, grey_memory_stats* out) {
    if (auto s = check_device(state, device); s != GREY_OK) return s;
    HostState& s = state_of(state);
    std::lock_guard lock(s.stats_mutex);
    // Every buffer is its own aligned allocation: nothing is held beyond what buffers use.
    out->reserved_bytes = s.allocated_bytes;
    out->committed_bytes = s.allocated_bytes;
    out->allocated_bytes = s.allocated_bytes;
    out->free_bytes = 0;
    out->largest_free_bytes = 0;
    out->allocation_count = s.allocation_count;
    out->growth_count = 0;
    out->granularity_bytes = kAlignment;
    out->fragmentation = 0.0;
    return GREY_OK;
}

grey_status host_buffer_checksum(void*, grey_backend_buffer* buffer, uint64_t offset, uint64_t size, uint64_t* out) {
    *out = grey::common::checksum_accumulate(0, std::span<const std::byte>(buffer->data.get() + offset, size), 0);
    return GREY_OK;
}

grey_status host_buffer_write(void*, grey_backend_buffer* buffer, uint64_t offset, const void* source, uint64_t size) {
    std::memcpy(buffer->data.get() + offset, source, size);
    return GREY_OK;
}

grey_status host_buffer_read(void*, grey_backend_buffer* buffer, uint64_t offset, void* destination, uint64_t size) {
    std::memcpy(destination, buffer->data.get() + offset, size);
    return GREY_OK;
}

grey_status host_buffer_copy(void*, grey_backend_buffer* destination, uint64_t destination_offset,
                             grey_backend_buffer* source, uint64_t source_offset, uint64_t size) {
    std::memmove(destination->data.get() + destination_offset, source->data.get() + source_offset, size);
    return GREY_OK;
}

grey_status host_buffer_fill(void*, grey_backend_buffer* buffer, uint64_t offset, uint8_t value, uint64_t size) {
    std::memset(buffer->data.get() + offset, value, size);
    return GREY_OK;
}

// Host buffers are plain aligned allocations: the mapping is the allocation itself.
grey_status host_buffer_map(void*, grey_backend_buffer* buffer, grey_buffer_mapping* out) {
    out->kind = GREY_MEMORY_HOST;
    out->address = reinterpret_cast<uintptr_t>(buffer->data.get());
    out->vendor_device = 0;
    return GREY_OK;
}

// Runs a quantization slot's body: bad input (std::invalid_argument) becomes GREY_ERROR_INVALID_ARGUMENT
// in the bare words of common/quant_text.hpp (the reference wording, which grey_quantize passes on as it
// is and a GPU backend's message ends with), an unknown layout feature UNSUPPORTED, exhausted memory
// OUT_OF_MEMORY, anything else INTERNAL; nothing escapes the slot.
template <typename Body>
grey_status guard_quant(void* state, const char* doing, Body&& body) noexcept {
    try {
        body();
        return GREY_OK;
    } catch (const std::invalid_argument& e) {
        return report(state, GREY_ERROR_INVALID_ARGUMENT, e.what());
    } catch (const std::domain_error& e) {
        return report(state, GREY_ERROR_UNSUPPORTED, std::string("host backend: ") + e.what());
    } catch (const std::bad_alloc&) {
        return report(state, GREY_ERROR_OUT_OF_MEMORY, std::string("host backend: out of host memory while ") + doing);
    } catch (const std::exception& e) {
        return report(state, GREY_ERROR_INTERNAL, std::string("host backend: ") + doing + ": " + e.what());
    } catch (...) {
        return report(state, GREY_ERROR_INTERNAL, std::string("host backend: ") + doing + " failed");
    }
}

// The bytes of a job's tensor: a host buffer of this backend, or host memory (the backend accepts both).
std::span<std::byte> bytes_of(const grey_backend_memory& memory) {
    std::byte* base = memory.buffer != nullptr ? memory.buffer->data.get() + memory.offset : static_cast<std::byte*>(memory.host);
    return {base, static_cast<std::size_t>(memory.size)};
}

const grey_quant_layout& layout_of(const grey_backend_quant_job& job) {
    if ((job.layout->required_features & ~GREY_QUANT_LAYOUT_REQUIRES_KNOWN) != 0)
        throw std::domain_error("the quantization layout requires features " + std::to_string(job.layout->required_features) +
                                " this backend does not know");
    return *job.layout;
}

// The host reference of the quantization slots, on host buffers and host memory alike: the route of
// grey_quantize and grey_dequantize too. The work is shared out over the host's worker pool when it
// offers one (a context's), with the same bits as on one thread.
grey_status host_quantize(void* state, const grey_backend_quant_job* job) {
    return guard_quant(state, "quantizing", [&] {
        const auto& kernels = quant::best_kernels();
        const quant::Parallel parallel(state_of(state).host);
        const grey_quant_layout& layout = layout_of(*job);
        const auto out = bytes_of(job->quantized).first(static_cast<std::size_t>(layout.bytes));
        grey::common::ErrorSums sums;
        // The ggml formats in one pass over the input (the error from the same codes), unless it holds
        // values the general route refuses, which then says why.
        if (!quant::quantizes_in_one_pass(layout, job->plain_dtype) ||
            !quant::quantize_in_one_pass(layout, job->plain_dtype, bytes_of(job->plain), out, job->error != nullptr ? &sums : nullptr, kernels,
                                         parallel)) {
            // The input is read where it lies (often a mapped model file), checked as it is quantized where
            // the plan allows; otherwise, or when a value fails that check, as_f32 checks it first (naming
            // the value) and quantize the groups (naming the group).
            const auto plain = bytes_of(job->plain);
            if (!quant::quantize_checked(layout, job->plain_dtype, plain, out, kernels, parallel)) {
                quant::FloatBuffer converted;
                uint32_t max_magnitude_bits = 0;
                const auto values = quant::as_f32(job->plain_dtype, plain, layout.elements, kernels, converted, parallel, &max_magnitude_bits);
                quant::quantize(layout, values, out, kernels, parallel, max_magnitude_bits);
            }
            if (job->error != nullptr) quant::add_quantization_error(sums, layout, job->plain_dtype, plain, out, kernels, parallel);
        }
        if (job->error == nullptr) return;
        job->error->elements = sums.elements;
        job->error->sum_squared_signal = sums.sum_squared_signal;
        job->error->sum_squared_error = sums.sum_squared_error;
        job->error->max_abs_error = sums.max_abs_error;
    });
}

grey_status host_dequantize(void* state, const grey_backend_quant_job* job) {
    return guard_quant(state, "dequantizing", [&] {
        const auto& kernels = quant::best_kernels();
        const quant::Parallel parallel(state_of(state).host);
        const grey_quant_layout& layout = layout_of(*job);
        const auto quantized = bytes_of(job->quantized).first(static_cast<std::size_t>(layout.bytes));
        const auto plain = bytes_of(job->plain);
        if (quant::f32_in_place(job->plain_dtype, plain.data())) {
            // Straight into the destination: no float32 copy of the tensor to fill and convert.
            quant::dequantize(layout, quantized, {reinterpret_cast<float*>(plain.data()), static_cast<std::size_t>(layout.elements)}, kernels,
                              parallel);
            return;
        }
        std::vector<float> values(layout.elements);
        quant::dequantize(layout, quantized, values, kernels, parallel);
        quant::from_f32(values, job->plain_dtype, plain, parallel);
    });
}

// --- The KV cache's block operations (host/kv/host_kv.cpp), on this backend's buffers.

uint8_t* block_bytes(grey_backend_buffer* buffer) { return reinterpret_cast<uint8_t*>(buffer->data.get()); }

grey_status host_kv_store(void* state, const grey_backend_kv_store_job* job) {
    return guard_quant(state, "writing KV blocks", [&] {
        const backend::KvStoreExtras extras = backend::kv_store_extras(*job);
        std::vector<float> key_storage, value_storage;
        const std::span<const float> keys = kv_input_floats(bytes_of(job->keys), extras.dtype, key_storage);
        const std::span<const float> values = kv_input_floats(bytes_of(job->values), extras.dtype, value_storage);
        if (extras.first_non_finite != nullptr) {
            // Checked before anything is written (the runtime drops the tokens when one is found).
            *extras.first_non_finite = kv_first_non_finite(keys, values);
            if (*extras.first_non_finite != UINT64_MAX) return;
        }
        std::vector<uint8_t*> blocks(job->tokens);
        for (uint32_t i = 0; i < job->tokens; ++i) blocks[i] = block_bytes(job->blocks[i]);
        kv_store(*job->layout, job->layer_first, job->layer_count, keys.data(), values.data(), blocks, {job->slots, job->tokens});
    });
}

grey_status host_kv_compress(void* state, const grey_backend_kv_compress_job* job) {
    return guard_quant(state, "quantizing KV blocks", [&] {
        for (uint32_t i = 0; i < job->count; ++i) kv_compress(*job->layout, block_bytes(job->sources[i]), block_bytes(job->destinations[i]));
    });
}

grey_status host_kv_attend(void* state, const grey_backend_kv_attend_job* job) {
    return guard_quant(state, "attending over KV blocks", [&] {
        if (job->batch == 0) return;  // every layout is supported
        const uint64_t count = job->table_offsets[job->batch];
        std::vector<const uint8_t*> blocks(count);
        for (uint64_t i = 0; i < count; ++i) blocks[i] = block_bytes(job->blocks[i]);
        const KvAttendBlocks tables{blocks, {job->quantized, count}, {job->table_offsets, job->batch + size_t{1}}, {job->first, job->batch},
                                    {job->last, job->batch}};
        kv_attend(*job->layout, tables, job->layer, job->query_heads, job->scale, reinterpret_cast<const float*>(bytes_of(job->queries).data()),
                  reinterpret_cast<float*>(bytes_of(job->output).data()));
    });
}

// --- Streams and events: each stream's worker thread runs the synchronous slots above in order.

// Runs an enqueuing slot's body; nothing escapes it.
template <typename Body>
grey_status guard_enqueue(void* state, Body&& body) noexcept {
    try {
        body();
        return GREY_OK;
    } catch (const std::bad_alloc&) {
        return report(state, GREY_ERROR_OUT_OF_MEMORY, "host backend: out of host memory while enqueuing work on a stream");
    } catch (const std::exception& e) {
        return report(state, GREY_ERROR_INTERNAL, std::string("host backend: enqueuing on a stream failed: ") + e.what());
    }
}

grey_status report_failure(void* state, const std::optional<Failure>& failure) {
    return failure.has_value() ? report(state, failure->status, failure->message) : GREY_OK;
}

grey_status host_stream_create(void* state, uint32_t device, grey_backend_stream** out) {
    if (auto s = check_device(state, device); s != GREY_OK) return s;
    return guard_enqueue(state, [&] { *out = std::make_unique<grey_backend_stream>().release(); });
}

void host_stream_destroy(void*, grey_backend_stream* stream) { std::unique_ptr<grey_backend_stream>(stream).reset(); }

grey_status host_stream_synchronize(void* state, grey_backend_stream* stream) { return report_failure(state, stream->stream.synchronize()); }

grey_status host_stream_query(void* state, grey_backend_stream* stream, uint32_t* out_done) {
    std::optional<Failure> failure;
    *out_done = stream->stream.query(failure) ? 1 : 0;
    return report_failure(state, failure);
}

grey_status host_event_create(void* state, uint32_t device, grey_backend_event** out) {
    if (auto s = check_device(state, device); s != GREY_OK) return s;
    return guard_enqueue(state, [&] { *out = std::make_unique<grey_backend_event>().release(); });
}

void host_event_destroy(void*, grey_backend_event* event) { std::unique_ptr<grey_backend_event>(event).reset(); }

grey_status host_event_record(void* state, grey_backend_event* event, grey_backend_stream* stream) {
    return guard_enqueue(state, [&] {
        auto signal = std::make_shared<Signal>();
        stream->stream.enqueue_record(signal);
        std::lock_guard lock(event->mutex);
        event->latest = std::move(signal);
    });
}

grey_status host_stream_wait_event(void* state, grey_backend_stream* stream, grey_backend_event* event) {
    return guard_enqueue(state, [&] {
        if (auto signal = event->current()) stream->stream.enqueue_wait(std::move(signal));
    });
}

grey_status host_event_synchronize(void* state, grey_backend_event* event) {
    auto signal = event->current();
    return signal ? report_failure(state, signal->wait()) : GREY_OK;
}

grey_status host_event_query(void* state, grey_backend_event* event, uint32_t* out_done) {
    auto signal = event->current();
    if (!signal || !signal->done()) {
        *out_done = signal ? 0 : 1;
        return GREY_OK;
    }
    *out_done = 1;
    return report_failure(state, signal->wait());
}

grey_status host_event_elapsed_ms(void* state, grey_backend_event* start, grey_backend_event* end, double* out_ms) {
    auto first = start->current();
    auto second = end->current();
    if (!first || !second) return report(state, GREY_ERROR_INVALID_ARGUMENT, "host backend: an event has never been recorded");
    const auto elapsed = second->completed_at() - first->completed_at();
    *out_ms = std::chrono::duration<double, std::milli>(elapsed).count();
    return GREY_OK;
}

grey_status host_buffer_write_async(void* state, grey_backend_stream* stream, grey_backend_buffer* buffer, uint64_t offset,
                                    const void* source, uint64_t size) {
    return guard_enqueue(state, [&] { stream->stream.enqueue([=] { return host_buffer_write(state, buffer, offset, source, size); }); });
}

grey_status host_buffer_read_async(void* state, grey_backend_stream* stream, grey_backend_buffer* buffer, uint64_t offset,
                                   void* destination, uint64_t size) {
    return guard_enqueue(state, [&] { stream->stream.enqueue([=] { return host_buffer_read(state, buffer, offset, destination, size); }); });
}

grey_status host_buffer_copy_async(void* state, grey_backend_stream* stream, grey_backend_buffer* destination,
                                   uint64_t destination_offset, grey_backend_buffer* source, uint64_t source_offset, uint64_t size) {
    return guard_enqueue(state, [&] {
        stream->stream.enqueue([=] { return host_buffer_copy(state, destination, destination_offset, source, source_offset, size); });
    });
}

grey_status host_buffer_fill_async(void* state, grey_backend_stream* stream, grey_backend_buffer* buffer, uint64_t offset,
                                   uint8_t value, uint64_t size) {
    return guard_enqueue(state, [&] { stream->stream.enqueue([=] { return host_buffer_fill(state, buffer, offset, value, size); }); });
}

grey_status host_buffer_checksum_async(void* state, grey_backend_stream* stream, grey_backend_buffer* buffer, uint64_t offset,
                                       uint64_t size, uint64_t* out_checksum) {
    return guard_enqueue(state, [&] {
        stream->stream.enqueue([=] { return host_buffer_checksum(state, buffer, offset, size, out_checksum); });
    });
}

// A job and its layout copied for a stream: the caller's are valid only for the length of the call.
struct QueuedJob {
    grey_quant_layout layout;
    grey_backend_quant_job job;
};

template <typename Slot>
grey_status enqueue_job(void* state, grey_backend_stream* stream, const grey_backend_quant_job* job, Slot slot) {
    return guard_enqueue(state, [&] {
        auto queued = std::make_shared<QueuedJob>(QueuedJob{*job->layout, *job});
        queued->job.layout = &queued->layout;
        queued->job.error = nullptr;
        stream->stream.enqueue([state, queued, slot] { return slot(state, &queued->job); });
    });
}

grey_status host_quantize_async(void* state, grey_backend_stream* stream, const grey_backend_quant_job* job) {
    return enqueue_job(state, stream, job, host_quantize);
}

grey_status host_dequantize_async(void* state, grey_backend_stream* stream, const grey_backend_quant_job* job) {
    return enqueue_job(state, stream, job, host_dequantize);
}

// An attention job and its tables copied for a stream: the runtime's are valid only for the length of the
// call (its staging serves a backend that uploads the tables, which this one does not).
struct QueuedKvAttend {
    grey_kv_layout layout;
    std::vector<uint64_t> first, last, table_offsets;
    std::vector<grey_backend_buffer*> blocks;
    std::vector<uint8_t> quantized;
    grey_backend_kv_attend_job job;
};

grey_status host_kv_attend_async(void* state, grey_backend_stream* stream, const grey_backend_kv_attend_job* job, void*) {
    return guard_enqueue(state, [&] {
        auto queued = std::make_shared<QueuedKvAttend>();
        const uint64_t count = job->batch == 0 ? 0 : job->table_offsets[job->batch];
        queued->layout = *job->layout;
        queued->first.assign(job->first, job->first + job->batch);
        queued->last.assign(job->last, job->last + job->batch);
        queued->table_offsets.assign(job->table_offsets, job->table_offsets + job->batch + (job->batch == 0 ? 0 : 1));
        queued->blocks.assign(job->blocks, job->blocks + count);
        queued->quantized.assign(job->quantized, job->quantized + count);
        queued->job = *job;
        queued->job.layout = &queued->layout;
        queued->job.first = queued->first.data();
        queued->job.last = queued->last.data();
        queued->job.table_offsets = queued->table_offsets.data();
        queued->job.blocks = queued->blocks.data();
        queued->job.quantized = queued->quantized.data();
        stream->stream.enqueue([state, queued] { return host_kv_attend(state, &queued->job); });
    });
}

}  // namespace

grey_status host_backend_entry(uint32_t host_abi_version, grey_backend_vtable* out) {
    if (host_abi_version != GREY_BACKEND_ABI_VERSION || out == nullptr || out->struct_size < sizeof(grey_backend_vtable))
        return GREY_ERROR_UNSUPPORTED;
    grey_backend_vtable vt{};
    vt.struct_size = sizeof vt;
    vt.abi_version = GREY_BACKEND_ABI_VERSION;
    vt.name = "host";
    vt.init = host_init;
    vt.shutdown = host_shutdown;
    vt.device_count = host_device_count;
    vt.device_spec = host_device_spec;
    vt.device_telemetry = host_device_telemetry;
    vt.buffer_alloc = host_buffer_alloc;
    vt.buffer_free = host_buffer_free;
    vt.buffer_write = host_buffer_write;
    vt.buffer_read = host_buffer_read;
    vt.buffer_copy = host_buffer_copy;
    vt.buffer_fill = host_buffer_fill;
    vt.memory_stats = host_memory_stats;
    vt.buffer_checksum = host_buffer_checksum;
    vt.quantize = host_quantize;
    vt.dequantize = host_dequantize;
    vt.buffer_map = host_buffer_map;
    vt.capabilities = GREY_BACKEND_CAP_QUANT_HOST_MEMORY | GREY_BACKEND_CAP_QUANT_ERROR | GREY_BACKEND_CAP_STREAMS | GREY_BACKEND_CAP_KV_HADAMARD_K |
                      GREY_BACKEND_CAP_KV_STORE_CHECKED;
    vt.stream_create = host_stream_create;
    vt.stream_destroy = host_stream_destroy;
    vt.stream_synchronize = host_stream_synchronize;
    vt.stream_query = host_stream_query;
    vt.event_create = host_event_create;
    vt.event_destroy = host_event_destroy;
    vt.event_record = host_event_record;
    vt.stream_wait_event = host_stream_wait_event;
    vt.event_synchronize = host_event_synchronize;
    vt.event_query = host_event_query;
    vt.event_elapsed_ms = host_event_elapsed_ms;
    vt.buffer_write_async = host_buffer_write_async;
    vt.buffer_read_async = host_buffer_read_async;
    vt.buffer_copy_async = host_buffer_copy_async;
    vt.buffer_fill_async = host_buffer_fill_async;
    vt.buffer_checksum_async = host_buffer_checksum_async;
    vt.quantize_async = host_quantize_async;
    vt.dequantize_async = host_dequantize_async;
    vt.kv_store = host_kv_store;
    vt.kv_compress = host_kv_compress;
    vt.kv_attend = host_kv_attend;
    vt.kv_attend_async = host_kv_attend_async;
    *out = vt;
    return GREY_OK;
}

}  // namespace grey::host
