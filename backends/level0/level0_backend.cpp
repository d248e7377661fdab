// libgrey-backend-level0.so: Intel GPUs (and any other Level Zero device) through the Level Zero
// loader and Sysman, opened at run time.
//
// init opens libze_loader.so.1 (required: without it, or without a GPU driver behind it, the backend is
// not offered and the loader reports the reason) and starts Level Zero with Sysman enabled. Memory comes
// from one ChunkPool per device over zeMemAllocDevice; writes and reads run as memory copies, and fill,
// copy, checksum, quantize and dequantize as the kernels of kernels/opencl (SPIR-V embedded at build
// time), all on a synchronous immediate command list. Quantization covers every format of
// grey_quant_format and both calibrations; the KV cache's block operations (kv_store, kv_compress,
// kv_attend, K rotation included) run kernels/opencl/grey_kv.clcpp the same way. Streams are command queues and events Level Zero events (ze_stream.hpp); a
// dequantization on a stream is its kernel appended to the stream's queue, and a quantization is run by
// a host thread of the stream between a gate and a release event of the queue (ze_quant_stream.hpp).
#include "common/fields.hpp"
#include "common/job_failures.hpp"
#include "common/kv_store_job.hpp"
#include "common/plugin_entry.hpp"
#include "level0/device_queue.hpp"
#include "level0/kv_launch.hpp"
#include "level0/probe.hpp"
#include "level0/quant_launch.hpp"
#include "level0/ze_library.hpp"
#include "level0/ze_quant_stream.hpp"
#include "level0/ze_stream.hpp"

#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

struct grey_backend_buffer {
    uint64_t address;
    uint64_t size;
    uint32_t device;
};

// The queue, and the quantizations enqueued on it (their thread and failures, shared with events
// recorded after them). level0_stream_destroy lets the queue go first: its wait needs the thread.
struct grey_backend_stream {
    uint32_t device = 0;
    std::shared_ptr<grey::level0::StreamQuantizer> quantizer;
    std::unique_ptr<grey::level0::ZeStream> stream;
};

// The event, and which quantizations of which stream its latest record stands for (their failure is the event's).
struct grey_backend_event {
    uint32_t device = 0;
    std::unique_ptr<grey::level0::ZeEvent> event;
    grey::backend::RecordedJobs<grey::level0::StreamQuantizer> recorded;
};

namespace grey::level0 {
namespace {

struct DeviceSlot {
    DeviceIdentity identity;
    ze_context_handle_t context = nullptr;
    EnergyHistory energy;
    std::mutex mutex;
    std::unique_ptr<DeviceQueue> queue;  // created on first use, guarded by `mutex`
};

struct Level0State {
    const grey_backend_host* host = nullptr;
    // Declared first so it goes last: contexts, queues and pools call into it.
    std::unique_ptr<ZeLibrary> ze;
    std::vector<ze_context_handle_t> contexts;  // one per driver, destroyed after the devices
    std::vector<std::unique_ptr<DeviceSlot>> devices;

    ~Level0State() {
        devices.clear();
        for (ze_context_handle_t c : contexts) (void)ze->zeContextDestroy(c);
    }
};

Level0State& state_of(void* state) { return *static_cast<Level0State*>(state); }

grey_status report(const grey_backend_host* host, grey_status status, const std::string& message) {
    if (host != nullptr && host->set_error != nullptr) host->set_error(host->host_data, ("level0 backend: " + message).c_str());
    return status;
}

// The status and message of the exception being handled, as every slot reports it (and a stream's
// quantization thread keeps it for the next wait). Call inside a catch block only.
QuantFailure current_failure() {
    try {
        throw;
    } catch (const backend::PoolOutOfMemory& e) {
        return {GREY_ERROR_OUT_OF_MEMORY, e.what()};
    } catch (const ZeError& e) {
        const bool oom = e.result() == ZE_RESULT_ERROR_OUT_OF_DEVICE_MEMORY || e.result() == ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY;
        return {oom ? GREY_ERROR_OUT_OF_MEMORY : GREY_ERROR_BACKEND, e.what()};
    } catch (const std::bad_alloc&) {
        return {GREY_ERROR_OUT_OF_MEMORY, "out of host memory"};
    } catch (const std::invalid_argument& e) {
        return {GREY_ERROR_INVALID_ARGUMENT, e.what()};
    } catch (const std::domain_error& e) {  // a request this backend does not know how to serve
        return {GREY_ERROR_UNSUPPORTED, e.what()};
    } catch (const std::exception& e) {
        return {GREY_ERROR_INTERNAL, e.what()};
    } catch (...) {
        return {GREY_ERROR_INTERNAL, "unknown exception"};
    }
}

// Runs `body`, turning every exception into a status and a message: nothing escapes into the runtime.
template <typename Body>
grey_status guarded(const grey_backend_host* host, Body&& body) noexcept {
    try {
        return body();
    } catch (...) {
        try {
            const QuantFailure failure = current_failure();
            return report(host, failure.status, failure.message);
        } catch (...) {  // the message could not be copied
            return report(host, GREY_ERROR_OUT_OF_MEMORY, "out of host memory");
        }
    }
}

// A failure kept by a stream, in the words of the synchronous call.
grey_status report_failure(const grey_backend_host* host, const std::optional<QuantFailure>& failure) {
    return failure.has_value() ? report(host, failure->status, failure->message) : GREY_OK;
}

DeviceSlot& slot(Level0State& s, uint32_t device) {
    if (device >= s.devices.size())
        throw std::invalid_argument("device " + std::to_string(device) + " does not exist (the backend has " +
                                    std::to_string(s.devices.size()) + ")");
    return *s.devices[device];
}

DeviceQueue& queue(Level0State& s, uint32_t device) {
    DeviceSlot& d = slot(s, device);
    std::lock_guard lock(d.mutex);
    if (!d.queue) d.queue = std::make_unique<DeviceQueue>(*s.ze, d.context, d.identity.device);
    return *d.queue;
}

// Every GPU of every driver the loader found, with one context per driver that has one.
void find_devices(Level0State& s) {
    const ZeLibrary& ze = *s.ze;
    uint32_t driver_count = 0;
    ZeLibrary::check(ze.zeDriverGet(&driver_count, nullptr), "zeDriverGet");
    std::vector<ze_driver_handle_t> drivers(driver_count);
    if (driver_count > 0) ZeLibrary::check(ze.zeDriverGet(&driver_count, drivers.data()), "zeDriverGet");
    drivers.resize(driver_count);
    for (ze_driver_handle_t driver : drivers) {
        uint32_t device_count = 0;
        ZeLibrary::check(ze.zeDeviceGet(driver, &device_count, nullptr), "zeDeviceGet");
        std::vector<ze_device_handle_t> handles(device_count);
        if (device_count > 0) ZeLibrary::check(ze.zeDeviceGet(driver, &device_count, handles.data()), "zeDeviceGet");
        handles.resize(device_count);
        ze_context_handle_t context = nullptr;
        for (ze_device_handle_t handle : handles) {
            ze_device_properties_t props{};
            props.stype = ZE_STRUCTURE_TYPE_DEVICE_PROPERTIES;
            ZeLibrary::check(ze.zeDeviceGetProperties(handle, &props), "zeDeviceGetProperties");
            if (props.type != ZE_DEVICE_TYPE_GPU) continue;
            if (context == nullptr) {
                ze_context_desc_t desc{};
                desc.stype = ZE_STRUCTURE_TYPE_CONTEXT_DESC;
                ZeLibrary::check(ze.zeContextCreate(driver, &desc, &context), "zeContextCreate");
                s.contexts.push_back(context);
            }
            auto d = std::make_unique<DeviceSlot>();
            d->identity = {driver, handle};
            d->context = context;
            s.devices.push_back(std::move(d));
        }
    }
}

grey_status level0_init(const grey_backend_host* host, void** out_state) {
    try {
        auto state = std::make_unique<Level0State>();
        state->host = host;
        try {
            state->ze = std::make_unique<ZeLibrary>();
        } catch (const ZeUnavailable& e) {
            return report(host, GREY_ERROR_UNSUPPORTED, e.what());
        }
        if (!state->ze->sysman_disabled().empty() && host != nullptr && host->log != nullptr)
            host->log(host->host_data, GREY_LOG_INFO, ("level0 backend: " + state->ze->sysman_disabled()).c_str());
        find_devices(*state);
        if (state->devices.empty())
            return report(host, GREY_ERROR_UNSUPPORTED, "the Level Zero loader " + state->ze->library_name() + " started but reports no GPU");
        *out_state = state.release();
        return GREY_OK;
    } catch (const ZeError& e) {
        return report(host, GREY_ERROR_BACKEND, e.what());
    } catch (const std::bad_alloc&) {
        return report(host, GREY_ERROR_OUT_OF_MEMORY, "out of host memory while starting");
    } catch (const std::exception& e) {
        return report(host, GREY_ERROR_INTERNAL, e.what());
    }
}

void level0_shutdown(void* state) { std::unique_ptr<Level0State>(static_cast<Level0State*>(state)).reset(); }

grey_status level0_device_count(void* state, uint32_t* out_count) {
    *out_count = static_cast<uint32_t>(state_of(state).devices.size());
    return GREY_OK;
}

grey_status level0_device_spec(void* state, uint32_t device, grey_device_spec* out, const grey_field_reasons* reasons) {
    Level0State& s = state_of(state);
    return guarded(s.host, [&] {
        fill_spec(*s.ze, slot(s, device).identity, *out, reasons);
        return GREY_OK;
    });
}

grey_status level0_device_telemetry(void* state, uint32_t device, grey_device_telemetry* out, const grey_field_reasons* reasons) {
    Level0State& s = state_of(state);
    return guarded(s.host, [&] {
        DeviceSlot& d = slot(s, device);
        fill_telemetry(*s.ze, d.identity, d.energy, *out, reasons);
        return GREY_OK;
    });
}

grey_status level0_buffer_alloc(void* state, uint32_t device, uint64_t size, grey_backend_buffer** out) {
    Level0State& s = state_of(state);
    return guarded(s.host, [&] {
        DeviceQueue& q = queue(s, device);
        auto buffer = std::make_unique<grey_backend_buffer>(grey_backend_buffer{0, size, device});
        buffer->address = q.pool().allocate(size);
        *out = buffer.release();
        return GREY_OK;
    });
}

void level0_buffer_free(void* state, grey_backend_buffer* buffer) {
    Level0State& s = state_of(state);
    std::unique_ptr<grey_backend_buffer> owned(buffer);
    (void)guarded(s.host, [&] {
        queue(s, owned->device).pool().release(owned->address);
        return GREY_OK;
    });
}

grey_status level0_buffer_write(void* state, grey_backend_buffer* b, uint64_t offset, const void* source, uint64_t size) {
    Level0State& s = state_of(state);
    return guarded(s.host, [&] {
        queue(s, b->device).write(b->address + offset, source, size);
        return GREY_OK;
    });
}

grey_status level0_buffer_read(void* state, grey_backend_buffer* b, uint64_t offset, void* destination, uint64_t size) {
    Level0State& s = state_of(state);
    return guarded(s.host, [&] {
        queue(s, b->device).read(destination, b->address + offset, size);
        return GREY_OK;
    });
}

grey_status level0_buffer_copy(void* state, grey_backend_buffer* destination, uint64_t destination_offset, grey_backend_buffer* source,
                               uint64_t source_offset, uint64_t size) {
    Level0State& s = state_of(state);
    return guarded(s.host, [&] {
        if (destination->device != source->device)
            throw std::invalid_argument("buffer_copy between devices " + std::to_string(source->device) + " and " +
                                        std::to_string(destination->device) + " (the runtime stages those through the host)");
        queue(s, destination->device).copy(destination->address + destination_offset, source->address + source_offset, size);
        return GREY_OK;
    });
}

grey_status level0_buffer_fill(void* state, grey_backend_buffer* b, uint64_t offset, uint8_t value, uint64_t size) {
    Level0State& s = state_of(state);
    return guarded(s.host, [&] {
        queue(s, b->device).fill(b->address + offset, value, size);
        return GREY_OK;
    });
}

grey_status level0_buffer_checksum(void* state, grey_backend_buffer* b, uint64_t offset, uint64_t size, uint64_t* out) {
    Level0State& s = state_of(state);
    return guarded(s.host, [&] {
        *out = queue(s, b->device).checksum(b->address + offset, size);
        return GREY_OK;
    });
}

// The device address of a job's tensor. This backend declares no GREY_BACKEND_CAP_QUANT_HOST_MEMORY, so the
// runtime hands it only buffers, all on one device (it checked).
uint64_t address_of(const grey_backend_memory& memory) {
    if (memory.buffer == nullptr) throw std::logic_error("the runtime handed host memory to a backend that takes only buffers");
    return memory.buffer->address + memory.offset;
}

grey_status level0_quantize(void* state, const grey_backend_quant_job* job) {
    Level0State& s = state_of(state);
    return guarded(s.host, [&] {
        const uint64_t plain = address_of(job->plain), quantized = address_of(job->quantized);
        queue(s, job->plain.buffer->device).quantize(*job->layout, job->plain_dtype, plain, quantized);
        return GREY_OK;
    });
}

grey_status level0_dequantize(void* state, const grey_backend_quant_job* job) {
    Level0State& s = state_of(state);
    return guarded(s.host, [&] {
        const uint64_t quantized = address_of(job->quantized), plain = address_of(job->plain);
        queue(s, job->quantized.buffer->device).dequantize(*job->layout, job->plain_dtype, quantized, plain);
        return GREY_OK;
    });
}

// --- The KV cache's block operations (DeviceQueue::kv_*): the job's buffers as device addresses, all on
// one device (the runtime allocates a cache's blocks on its device).

std::vector<uint64_t> addresses_of(grey_backend_buffer* const* buffers, size_t count) {
    std::vector<uint64_t> out(count);
    for (size_t i = 0; i < count; ++i) out[i] = buffers[i]->address;
    return out;
}

grey_status level0_kv_store(void* state, const grey_backend_kv_store_job* job) {
    Level0State& s = state_of(state);
    return guarded(s.host, [&] {
        const backend::KvStoreExtras extras = backend::kv_store_extras(*job);
        if (extras.first_non_finite != nullptr) *extras.first_non_finite = UINT64_MAX;
        if (job->tokens == 0) return GREY_OK;
        const uint64_t keys = address_of(job->keys), values = address_of(job->values);
        const std::vector<uint64_t> blocks = addresses_of(job->blocks, job->tokens);
        queue(s, job->keys.buffer->device)
            .kv_store(*job->layout, job->layer_first, job->layer_count, keys, values, blocks, {job->slots, job->tokens}, extras.dtype,
                      extras.first_non_finite);
        return GREY_OK;
    });
}

grey_status level0_kv_compress(void* state, const grey_backend_kv_compress_job* job) {
    Level0State& s = state_of(state);
    return guarded(s.host, [&] {
        if (job->count == 0) return GREY_OK;
        queue(s, job->sources[0]->device).kv_compress(*job->layout, addresses_of(job->sources, job->count), addresses_of(job->destinations, job->count));
        return GREY_OK;
    });
}

grey_status level0_kv_attend(void* state, const grey_backend_kv_attend_job* job) {
    Level0State& s = state_of(state);
    return guarded(s.host, [&] {
        if (job->batch == 0) {  // the runtime asks whether the kernels take this layout
            kv_check_layout(*job->layout, job->query_heads);
            return GREY_OK;
        }
        const uint64_t count = job->table_offsets[job->batch];
        const std::vector<uint64_t> entries = kv_block_entries(addresses_of(job->blocks, count), {job->quantized, count});
        const std::vector<grey_kvl0_sequence> sequences =
            kv_sequences({job->first, job->batch}, {job->last, job->batch}, {job->table_offsets, job->batch + size_t{1}});
        const uint64_t queries = address_of(job->queries), output = address_of(job->output);
        queue(s, job->queries.buffer->device).kv_attend(*job->layout, entries, sequences, job->layer, job->query_heads, job->scale, queries, output);
        return GREY_OK;
    });
}

// The power domain of the whole device (not a tile's) and its properties, or NULL with `why` set.
zes_pwr_handle_t device_power_domain(const ZeLibrary& ze, ze_device_handle_t device, zes_power_properties_t& props, std::string& why) {
    if (!ze.sysman_disabled().empty()) {
        why = ze.sysman_disabled();
        return nullptr;
    }
    for (const char* name : {"zesDeviceEnumPowerDomains", "zesPowerGetProperties", "zesPowerGetLimits", "zesPowerSetLimits"})
        if (!ze.has(name)) {
            why = ze.missing(name);
            return nullptr;
        }
    const auto sysman = reinterpret_cast<zes_device_handle_t>(device);
    uint32_t count = 0;
    ZeLibrary::check(ze.zesDeviceEnumPowerDomains(sysman, &count, nullptr), "zesDeviceEnumPowerDomains");
    std::vector<zes_pwr_handle_t> domains(count);
    if (count > 0) ZeLibrary::check(ze.zesDeviceEnumPowerDomains(sysman, &count, domains.data()), "zesDeviceEnumPowerDomains");
    domains.resize(count);
    for (zes_pwr_handle_t domain : domains) {
        props = {};
        props.stype = ZES_STRUCTURE_TYPE_POWER_PROPERTIES;
        ZeLibrary::check(ze.zesPowerGetProperties(domain, &props), "zesPowerGetProperties");
        if (props.onSubdevice) continue;
        if (!props.canControl) {
            why = "Level Zero: zesPowerGetProperties says the device's power domain cannot be controlled";
            return nullptr;
        }
        return domain;
    }
    why = "Level Zero: Sysman lists no power domain for the whole device";
    return nullptr;
}

// Sets the sustained limit (PL1), the one power_limit_mw reports, and gives back the one it replaced.
// Only ever called on the host's request (grey_device_power_limit_set).
grey_status level0_power_limit_set(void* state, uint32_t device, uint64_t limit_mw, uint64_t* out_previous_mw) {
    Level0State& s = state_of(state);
    return guarded(s.host, [&] {
        const ZeLibrary& ze = *s.ze;
        std::string why;
        zes_power_properties_t props{};
        const zes_pwr_handle_t domain = device_power_domain(ze, slot(s, device).identity.device, props, why);
        if (domain == nullptr) return report(s.host, GREY_ERROR_UNSUPPORTED, "cannot set a power limit: " + why);
        // The range where the driver states it (-1: unknown, and the driver alone decides).
        if (limit_mw > INT32_MAX || (props.minLimit > 0 && limit_mw < static_cast<uint64_t>(props.minLimit)) ||
            (props.maxLimit > 0 && limit_mw > static_cast<uint64_t>(props.maxLimit)))
            return report(s.host, GREY_ERROR_INVALID_ARGUMENT,
                          "power limit " + std::to_string(limit_mw) + " mW is outside the device's range (zesPowerGetProperties: min " +
                              std::to_string(props.minLimit) + ", max " + std::to_string(props.maxLimit) + " mW, -1 = not stated)");
        zes_power_sustained_limit_t sustained{};
        if (const ze_result_t r = ze.zesPowerGetLimits(domain, &sustained, nullptr, nullptr); r != ZE_RESULT_SUCCESS)
            return report(s.host, r == ZE_RESULT_ERROR_INSUFFICIENT_PERMISSIONS ? GREY_ERROR_PERMISSION_DENIED : GREY_ERROR_BACKEND,
                          ZeLibrary::describe(r, "zesPowerGetLimits"));
        const uint64_t previous = sustained.enabled && sustained.power > 0 ? static_cast<uint64_t>(sustained.power) : 0;
        sustained.enabled = true;
        sustained.power = static_cast<int32_t>(limit_mw);
        if (const ze_result_t r = ze.zesPowerSetLimits(domain, &sustained, nullptr, nullptr); r != ZE_RESULT_SUCCESS) {
            const grey_status status = r == ZE_RESULT_ERROR_INSUFFICIENT_PERMISSIONS ? GREY_ERROR_PERMISSION_DENIED
                                       : r == ZE_RESULT_ERROR_INVALID_ARGUMENT       ? GREY_ERROR_INVALID_ARGUMENT
                                       : r == ZE_RESULT_ERROR_UNSUPPORTED_FEATURE    ? GREY_ERROR_UNSUPPORTED
                                                                                     : GREY_ERROR_BACKEND;
            return report(s.host, status, ZeLibrary::describe(r, "zesPowerSetLimits") + " (asked for a sustained limit of " +
                                              std::to_string(limit_mw) + " mW)");
        }
        if (out_previous_mw != nullptr) *out_previous_mw = previous;
        return GREY_OK;
    });
}

// ----- streams and events (ze_stream.hpp) -----------------------------------------------------------

grey_status level0_stream_create(void* state, uint32_t device, grey_backend_stream** out) {
    Level0State& s = state_of(state);
    return guarded(s.host, [&] {
        DeviceSlot& d = slot(s, device);
        auto stream = std::make_unique<grey_backend_stream>();
        stream->device = device;
        stream->quantizer = std::make_shared<StreamQuantizer>(*s.ze, d.context, d.identity.device, [] { return current_failure(); });
        stream->stream = std::make_unique<ZeStream>(*s.ze, d.context, d.identity.device);
        *out = stream.release();
        return GREY_OK;
    });
}

// ~ZeStream waits for the queue's work first, which the quantization thread may still have to release;
// then the thread ends. Events may keep the quantizer, for its failure, longer.
void level0_stream_destroy(void*, grey_backend_stream* stream) {
    std::unique_ptr<grey_backend_stream> owned(stream);
    owned->stream.reset();
    owned->quantizer->stop();
}

grey_status level0_stream_synchronize(void* state, grey_backend_stream* stream) {
    Level0State& s = state_of(state);
    return guarded(s.host, [&] {
        // Only the jobs enqueued before the wait are known to have run.
        const uint64_t end = stream->quantizer->next_job();
        stream->stream->synchronize();
        return report_failure(s.host, stream->quantizer->take_failure(end));
    });
}

grey_status level0_stream_query(void* state, grey_backend_stream* stream, uint32_t* out_done) {
    Level0State& s = state_of(state);
    return guarded(s.host, [&] {
        const uint64_t end = stream->quantizer->next_job();
        const bool done = stream->stream->query();
        if (done)
            if (const grey_status failed = report_failure(s.host, stream->quantizer->take_failure(end)); failed != GREY_OK) return failed;
        *out_done = done ? 1 : 0;
        return GREY_OK;
    });
}

grey_status level0_event_create(void* state, uint32_t device, grey_backend_event** out) {
    Level0State& s = state_of(state);
    return guarded(s.host, [&] {
        DeviceSlot& d = slot(s, device);
        auto event = std::make_unique<grey_backend_event>();
        event->device = device;
        event->event = std::make_unique<ZeEvent>(*s.ze, d.context, d.identity.device);
        *out = event.release();
        return GREY_OK;
    });
}

// At any time, as on CUDA: command lists still queued keep the event's Level Zero objects (ze_stream.hpp).
void level0_event_destroy(void*, grey_backend_event* event) { std::unique_ptr<grey_backend_event> owned(event); }

grey_status level0_event_record(void* state, grey_backend_event* event, grey_backend_stream* stream) {
    Level0State& s = state_of(state);
    return guarded(s.host, [&] {
        // Recorded between two quantizations of the stream, so the event knows which it stands for.
        const uint64_t end = stream->quantizer->mark([&] { event->event->record(*stream->stream); });
        event->recorded.set(stream->quantizer, end);
        return GREY_OK;
    });
}

grey_status level0_stream_wait_event(void* state, grey_backend_stream* stream, grey_backend_event* event) {
    Level0State& s = state_of(state);
    return guarded(s.host, [&] {
        event->event->wait_on(*stream->stream);
        return GREY_OK;
    });
}

// Once an event's record has completed: the failure of a quantization it stands for, which its stream keeps.
grey_status event_failure(const grey_backend_host* host, grey_backend_event& event) {
    const auto [quantizer, end] = event.recorded.get();
    return quantizer == nullptr ? GREY_OK : report_failure(host, quantizer->failure_before(end));
}

grey_status level0_event_synchronize(void* state, grey_backend_event* event) {
    Level0State& s = state_of(state);
    return guarded(s.host, [&] {
        event->event->synchronize();
        return event_failure(s.host, *event);
    });
}

grey_status level0_event_query(void* state, grey_backend_event* event, uint32_t* out_done) {
    Level0State& s = state_of(state);
    return guarded(s.host, [&] {
        const bool done = event->event->query();
        if (done)
            if (const grey_status failed = event_failure(s.host, *event); failed != GREY_OK) return failed;
        *out_done = done ? 1 : 0;
        return GREY_OK;
    });
}

// From the device's global timestamps the two records wrote (ze_stream.cpp says why those), after
// waiting for both. The runtime has checked that both are recorded and of one device; the backend checks
// again what it relies on.
grey_status level0_event_elapsed_ms(void* state, grey_backend_event* start, grey_backend_event* end, double* out_ms) {
    Level0State& s = state_of(state);
    return guarded(s.host, [&] {
        if (start->device != end->device)
            throw std::invalid_argument("event_elapsed_ms between events of devices " + std::to_string(start->device) + " and " +
                                        std::to_string(end->device) + " (each device has its own clock)");
        const DeviceIdentity& id = slot(s, start->device).identity;
        const uint64_t from = start->event->completed_timestamp("the start event");
        const uint64_t to = end->event->completed_timestamp("the end event");
        *out_ms = elapsed_ms(device_timer(*s.ze, id.driver, id.device), from, to);
        return GREY_OK;
    });
}

// Appends one memory copy to a command list of the stream.
grey_status submit_copy(Level0State& s, grey_backend_stream* stream, void* destination, const void* source, uint64_t size) {
    return guarded(s.host, [&] {
        stream->stream->submit([&](ze_command_list_handle_t list) {
            ZeLibrary::check(s.ze->zeCommandListAppendMemoryCopy(list, destination, source, size, nullptr, 0, nullptr),
                             "zeCommandListAppendMemoryCopy");
        });
        return GREY_OK;
    });
}

void* pointer_of(uint64_t address) { return reinterpret_cast<void*>(address); }

grey_status level0_buffer_write_async(void* state, grey_backend_stream* stream, grey_backend_buffer* b, uint64_t offset, const void* source,
                                      uint64_t size) {
    return submit_copy(state_of(state), stream, pointer_of(b->address + offset), source, size);
}

grey_status level0_buffer_read_async(void* state, grey_backend_stream* stream, grey_backend_buffer* b, uint64_t offset, void* destination,
                                     uint64_t size) {
    return submit_copy(state_of(state), stream, destination, pointer_of(b->address + offset), size);
}

grey_status level0_buffer_copy_async(void* state, grey_backend_stream* stream, grey_backend_buffer* destination, uint64_t destination_offset,
                                     grey_backend_buffer* source, uint64_t source_offset, uint64_t size) {
    if (destination->device != source->device)
        return report(state_of(state).host, GREY_ERROR_INVALID_ARGUMENT,
                      "buffer_copy between devices " + std::to_string(source->device) + " and " + std::to_string(destination->device) +
                          " (the runtime stages those through the host)");
    return submit_copy(state_of(state), stream, pointer_of(destination->address + destination_offset),
                       pointer_of(source->address + source_offset), size);
}

grey_status level0_buffer_fill_async(void* state, grey_backend_stream* stream, grey_backend_buffer* b, uint64_t offset, uint8_t value,
                                     uint64_t size) {
    Level0State& s = state_of(state);
    return guarded(s.host, [&] {
        stream->stream->submit([&](ze_command_list_handle_t list) {
            ZeLibrary::check(s.ze->zeCommandListAppendMemoryFill(list, pointer_of(b->address + offset), &value, 1, size, nullptr, 0, nullptr),
                             "zeCommandListAppendMemoryFill");
        });
        return GREY_OK;
    });
}

// The checksum's partial sums are added on the host, which no command list can do: this waits for the
// stream's earlier work, then computes the checksum as the synchronous slot does.
grey_status level0_buffer_checksum_async(void* state, grey_backend_stream* stream, grey_backend_buffer* b, uint64_t offset, uint64_t size,
                                         uint64_t* out) {
    Level0State& s = state_of(state);
    return guarded(s.host, [&] {
        stream->stream->synchronize();
        *out = queue(s, b->device).checksum(b->address + offset, size);
        return GREY_OK;
    });
}

grey_status level0_memory_stats(void* state, uint32_t device, grey_memory_stats* out) {
    Level0State& s = state_of(state);
    return guarded(s.host, [&] {
        DeviceSlot& d = slot(s, device);
        std::lock_guard lock(d.mutex);
        backend::clear_stats(*out);
        if (d.queue) d.queue->pool().stats(*out);  // no queue yet: no buffer, an empty pool
        return GREY_OK;
    });
}

// Returns once the job is queued: the stream's thread runs it when the queue reaches it (the job's layout
// is copied: it lives only for this call). What the job alone decides (an unknown layout feature or
// dtype) is refused now; a NaN input surfaces at the next synchronize, idle query or later event.
grey_status level0_quantize_async(void* state, grey_backend_stream* stream, const grey_backend_quant_job* job) {
    Level0State& s = state_of(state);
    return guarded(s.host, [&] {
        const uint64_t plain = address_of(job->plain), quantized = address_of(job->quantized);
        backend::require_stream_job(stream->device, *job);
        check_supported(*job->layout, job->plain_dtype);
        DeviceQueue& device = queue(s, stream->device);
        stream->quantizer->enqueue(*stream->stream, [&device, layout = *job->layout, dtype = job->plain_dtype, plain, quantized] {
            device.quantize(layout, dtype, plain, quantized);
        });
        return GREY_OK;
    });
}

grey_status level0_dequantize_async(void* state, grey_backend_stream* stream, const grey_backend_quant_job* job) {
    Level0State& s = state_of(state);
    return guarded(s.host, [&] {
        const uint64_t quantized = address_of(job->quantized), plain = address_of(job->plain);
        backend::require_stream_job(stream->device, *job);
        queue(s, stream->device).enqueue_dequantize(*stream->stream, *job->layout, job->plain_dtype, quantized, plain);
        return GREY_OK;
    });
}

}  // namespace
}  // namespace grey::level0

extern "C" GREY_BACKEND_EXPORT grey_status grey_backend_entry(uint32_t host_abi_version, grey_backend_vtable* out) {
    using namespace grey::level0;
    if (!grey::backend::loader_accepts(host_abi_version, out)) return GREY_ERROR_UNSUPPORTED;
    grey_backend_vtable vt{};
    vt.struct_size = sizeof vt;
    vt.abi_version = GREY_BACKEND_ABI_VERSION;
    vt.name = "level0";
    vt.init = level0_init;
    vt.shutdown = level0_shutdown;
    vt.device_count = level0_device_count;
    vt.device_spec = level0_device_spec;
    vt.device_telemetry = level0_device_telemetry;
    vt.buffer_alloc = level0_buffer_alloc;
    vt.buffer_free = level0_buffer_free;
    vt.buffer_write = level0_buffer_write;
    vt.buffer_read = level0_buffer_read;
    vt.buffer_copy = level0_buffer_copy;
    vt.buffer_fill = level0_buffer_fill;
    vt.memory_stats = level0_memory_stats;
    vt.buffer_checksum = level0_buffer_checksum;
    vt.quantize = level0_quantize;
    vt.dequantize = level0_dequantize;
    vt.power_limit_set = level0_power_limit_set;
    vt.capabilities = GREY_BACKEND_CAP_STREAMS | GREY_BACKEND_CAP_KV_HADAMARD_K | GREY_BACKEND_CAP_KV_STORE_CHECKED;
    vt.kv_store = level0_kv_store;
    vt.kv_compress = level0_kv_compress;
    vt.kv_attend = level0_kv_attend;
    vt.stream_create = level0_stream_create;
    vt.stream_destroy = level0_stream_destroy;
    vt.stream_synchronize = level0_stream_synchronize;
    vt.stream_query = level0_stream_query;
    vt.event_create = level0_event_create;
    vt.event_destroy = level0_event_destroy;
    vt.event_record = level0_event_record;
    vt.stream_wait_event = level0_stream_wait_event;
    vt.event_synchronize = level0_event_synchronize;
    vt.event_query = level0_event_query;
    vt.event_elapsed_ms = level0_event_elapsed_ms;
    vt.buffer_write_async = level0_buffer_write_async;
    vt.buffer_read_async = level0_buffer_read_async;
    vt.buffer_copy_async = level0_buffer_copy_async;
    vt.buffer_fill_async = level0_buffer_fill_async;
    vt.buffer_checksum_async = level0_buffer_checksum_async;
    vt.quantize_async = level0_quantize_async;
    vt.dequantize_async = level0_dequantize_async;
    grey::backend::publish_vtable(vt, out);
    return GREY_OK;
}
