// libgrey-backend-hip.so: AMD GPUs through the HIP runtime and ROCm SMI, both opened at run time.
//
// init opens libamdhip64 (required: without it, or without a device, the backend is not offered and
// the loader reports the reason) and ROCm SMI (optional: without it the fields it feeds are marked
// unsupported with the reason). Memory comes from one ChunkPool per device over hipMalloc; writes and
// reads are synchronous HIP copies. Fill, copy and checksum run the kernels of kernels/cuda, built as
// AMD code objects for the device's gfx target (hip_kernels.hpp) and loaded on first use; on a GPU this
// build has no code object for, fill and copy are HIP's own calls and the checksum says why it cannot
// run. Quantize and dequantize run the quantization kernels of kernels/cuda by the launch plan the CUDA
// plugin uses (hip_quantizer.hpp), synchronously. Streams and events are HIP's (hipStreamCreate,
// hipEventCreate): copies, fills, checksums, quantize and dequantize enqueue on them (a quantization's
// bad input is found by the stream's journal at the next wait, hip_quant_journal.hpp). The KV cache's block operations
// (kv_store, kv_compress, kv_attend) run kernels/cuda/kv_cache.cu by the plan the CUDA plugin uses
// (hip_kv.hpp), synchronously.
#include "common/chunk_pool.hpp"
#include "common/fields.hpp"
#include "common/job_failures.hpp"
#include "common/plugin_entry.hpp"
#include "hip/hip_kernels.hpp"
#include "hip/hip_kv.hpp"
#include "hip/hip_quant_journal.hpp"
#include "hip/hip_quantizer.hpp"
#include "hip/hip_runtime.hpp"
#include "hip/probe.hpp"

#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <vector>

struct grey_backend_buffer {
    uint64_t address;
    uint64_t size;
    uint32_t device;
};

// A hipStream_t of one device, 8 bytes of its pool for the checksums enqueued on it, and the
// quantizations enqueued on it (shared with events recorded after them).
struct grey_backend_stream {
    uint32_t device = 0;
    grey::hip::api::Stream stream = nullptr;
    uint64_t checksum_slot = 0;
    std::shared_ptr<grey::hip::QuantJournal> journal = std::make_shared<grey::hip::QuantJournal>();
};

// The HIP event, and which quantizations of which stream its latest record stands for (their failure is
// the event's).
struct grey_backend_event {
    uint32_t device = 0;
    grey::hip::api::Event event = nullptr;
    grey::backend::RecordedJobs<grey::hip::QuantJournal> recorded;
};

namespace grey::hip {
namespace {

// One device: its identity, and (created on first use) its pool. HIP's current device is per thread,
// so every call sets it under the device's mutex.
struct DeviceSlot {
    DeviceIdentity identity;
    std::mutex mutex;
    std::unique_ptr<backend::ChunkPool> pool;
    // The kernels, loaded on first use; kernels_unavailable says why there are none once that was found.
    std::unique_ptr<BufferKernels> kernels;
    std::string kernels_unavailable;
    uint64_t checksum_slot = 0;  // 8 bytes of the pool for the checksum kernel's sum
    // The quantization kernels, made on the first quantize or dequantize (quant_unavailable says why there
    // are none once that was found), and the synchronous slot's flags, on its first job.
    std::unique_ptr<QuantKernels> quant;
    std::string quant_unavailable;
    QuantFlags quant_flags;
    // The KV cache's kernels, made on the first KV job; kv_unavailable says why there are none once that
    // was found.
    std::unique_ptr<KvKernels> kv;
    std::string kv_unavailable;
};

struct HipState {
    const grey_backend_host* host = nullptr;
    // Declared first so they go last: the pools free through the runtime.
    std::unique_ptr<HipRuntime> hip;
    std::unique_ptr<RocmSmi> smi;
    std::string smi_unavailable;
    std::vector<std::unique_ptr<DeviceSlot>> devices;
};

void* device_pointer(uint64_t address) { return reinterpret_cast<void*>(address); }

HipState& state_of(void* state) { return *static_cast<HipState*>(state); }

grey_status report(const grey_backend_host* host, grey_status status, const std::string& message) {
    if (host != nullptr && host->set_error != nullptr) host->set_error(host->host_data, ("hip backend: " + message).c_str());
    return status;
}

template <typename Body>
grey_status guarded(const grey_backend_host* host, Body&& body) noexcept {
    try {
        return body();
    } catch (const backend::PoolOutOfMemory& e) {
        return report(host, GREY_ERROR_OUT_OF_MEMORY, e.what());
    } catch (const HipError& e) {
        return report(host, e.error() == api::kErrorOutOfMemory ? GREY_ERROR_OUT_OF_MEMORY : GREY_ERROR_BACKEND, e.what());
    } catch (const std::bad_alloc&) {
        return report(host, GREY_ERROR_OUT_OF_MEMORY, "out of host memory");
    } catch (const std::invalid_argument& e) {
        return report(host, GREY_ERROR_INVALID_ARGUMENT, e.what());
    } catch (const std::domain_error& e) {  // KernelsUnavailable: what this GPU cannot run, and why
        return report(host, GREY_ERROR_UNSUPPORTED, e.what());
    } catch (const std::exception& e) {
        return report(host, GREY_ERROR_INTERNAL, e.what());
    } catch (...) {
        return report(host, GREY_ERROR_INTERNAL, "unknown exception");
    }
}

DeviceSlot& slot(HipState& s, uint32_t device) {
    if (device >= s.devices.size())
        throw std::invalid_argument("device " + std::to_string(device) + " does not exist (the backend has " +
                                    std::to_string(s.devices.size()) + ")");
    return *s.devices[device];
}

// Runs `body(hip)` with the device current, under its mutex; creates its pool on first use.
template <typename Body>
auto on_device(HipState& s, uint32_t device, Body&& body) {
    DeviceSlot& d = slot(s, device);
    std::lock_guard lock(d.mutex);
    const HipRuntime& hip = *s.hip;
    hip.check(hip.set_device(d.identity.ordinal), "hipSetDevice");
    if (!d.pool) {
        d.pool = std::make_unique<backend::ChunkPool>(
            [&hip](uint64_t bytes) {
                void* memory = nullptr;
                const api::Error e = hip.mem_alloc(&memory, bytes);
                if (e == api::kErrorOutOfMemory) throw backend::PoolOutOfMemory(hip.describe(e, "hipMalloc"));
                hip.check(e, "hipMalloc");
                return reinterpret_cast<uint64_t>(memory);
            },
            // The pool frees its chunks when it goes, on whichever thread: make the device current.
            [&hip, ordinal = d.identity.ordinal](uint64_t address) {
                if (hip.set_device(ordinal) == api::kSuccess) (void)hip.mem_free(reinterpret_cast<void*>(address));
            });
    }
    return body(hip, *d.pool);
}

// Inside on_device: the device's kernels, loaded on first use; nullptr (with d.kernels_unavailable set)
// where they cannot run. A code object that fails to load throws HipError, every time it is tried.
const BufferKernels* kernels_of(DeviceSlot& d, const HipRuntime& hip) {
    if (d.kernels || !d.kernels_unavailable.empty()) return d.kernels.get();
    try {
        require_module_api(hip);
        d.kernels = std::make_unique<BufferKernels>(hip, target_of(gcn_arch_name(hip, d.identity.ordinal)));
    } catch (const KernelsUnavailable& e) {
        d.kernels_unavailable = e.what();
    }
    return d.kernels.get();
}

// Inside on_device: the device's quantization kernels, made on first use. Throws KernelsUnavailable (the
// same reason every time) where they cannot run, and HipError where loading failed (tried again next time).
const QuantKernels& quant_kernels_of(DeviceSlot& d, const HipRuntime& hip) {
    if (d.quant) return *d.quant;
    if (!d.quant_unavailable.empty()) throw KernelsUnavailable(d.quant_unavailable);
    try {
        require_module_api(hip);
        d.quant = std::make_unique<QuantKernels>(hip, target_of(gcn_arch_name(hip, d.identity.ordinal)), d.identity.ordinal);
    } catch (const KernelsUnavailable& e) {
        d.quant_unavailable = std::string("cannot quantize on the device: ") + e.what();
        throw KernelsUnavailable(d.quant_unavailable);
    }
    return *d.quant;
}

// Inside on_device: the flags the synchronous quantize slot shares between its jobs, armed on first use
// by copies on the null stream. Only that slot makes them: the copies wait for every stream of the
// device, which an enqueue on a stream must not (its jobs have flags of their own, hip_quant_journal.hpp).
const QuantFlags& quant_flags_of(DeviceSlot& d, const HipRuntime& hip, backend::ChunkPool& pool) {
    if (d.quant_flags.flags == 0) {
        // A grey_qk_flags armed to ~0, then the uint32 `noticed` word at 0.
        const uint64_t block = pool.allocate(sizeof(grey_qk_flags) + sizeof(uint32_t));
        const grey_qk_flags armed{~uint64_t{0}, ~uint64_t{0}, ~uint64_t{0}};
        const uint32_t quiet = 0;
        try {
            hip.check(hip.mem_copy(device_pointer(block), &armed, sizeof armed, api::kMemcpyHostToDevice), "hipMemcpy");
            hip.check(hip.mem_copy(device_pointer(block + sizeof armed), &quiet, sizeof quiet, api::kMemcpyHostToDevice), "hipMemcpy");
        } catch (...) {
            pool.release(block);
            throw;
        }
        d.quant_flags = {block, block + sizeof armed};
    }
    return d.quant_flags;
}

// Inside on_device: the device's KV cache kernels, made on first use. Throws KernelsUnavailable (the same
// reason every time) where they cannot run, and HipError where loading failed (tried again next time).
const KvKernels& kv_kernels_of(DeviceSlot& d, const HipRuntime& hip) {
    if (d.kv) return *d.kv;
    if (!d.kv_unavailable.empty()) throw KernelsUnavailable(d.kv_unavailable);
    try {
        require_module_api(hip);
        d.kv = std::make_unique<KvKernels>(hip, target_of(gcn_arch_name(hip, d.identity.ordinal)), d.identity.ordinal);
    } catch (const KernelsUnavailable& e) {
        d.kv_unavailable = std::string("no KV cache on the device: ") + e.what();
        throw KernelsUnavailable(d.kv_unavailable);
    }
    return *d.kv;
}

grey_status hip_init(const grey_backend_host* host, void** out_state) {
    try {
        auto state = std::make_unique<HipState>();
        state->host = host;
        try {
            state->hip = std::make_unique<HipRuntime>();
        } catch (const LibraryUnavailable& e) {
            return report(host, GREY_ERROR_UNSUPPORTED, e.what());
        }
        const HipRuntime& hip = *state->hip;
        try {
            state->smi = std::make_unique<RocmSmi>();
        } catch (const LibraryUnavailable& e) {
            state->smi_unavailable = e.what();
            if (host != nullptr && host->log != nullptr)
                host->log(host->host_data, GREY_LOG_INFO, ("hip backend: " + state->smi_unavailable + "; ROCm SMI fields are unavailable").c_str());
        }
        int count = 0;
        if (const api::Error e = hip.get_device_count(&count); e == api::kErrorNoDevice || (e == api::kSuccess && count <= 0))
            return report(host, GREY_ERROR_UNSUPPORTED, "the HIP runtime " + hip.library_name() + " is installed but reports no device");
        else
            hip.check(e, "hipGetDeviceCount");
        for (int i = 0; i < count; ++i) {
            auto d = std::make_unique<DeviceSlot>();
            d->identity.ordinal = i;
            char bus[64] = {};
            if (hip.device_get_pci_bus_id(bus, sizeof bus - 1, i) == api::kSuccess) d->identity.pci_bus_id = bus;
            attach_smi(state->smi.get(), state->smi_unavailable, d->identity);
            state->devices.push_back(std::move(d));
        }
        *out_state = state.release();
        return GREY_OK;
    } catch (const HipError& e) {
        return report(host, GREY_ERROR_BACKEND, e.what());
    } catch (const std::bad_alloc&) {
        return report(host, GREY_ERROR_OUT_OF_MEMORY, "out of host memory while starting");
    } catch (const std::exception& e) {
        return report(host, GREY_ERROR_INTERNAL, e.what());
    }
}

void hip_shutdown(void* state) {
    auto owned = std::unique_ptr<HipState>(static_cast<HipState*>(state));
    owned->devices.clear();  // the pools free their chunks while the runtime is still open
}

grey_status hip_device_count(void* state, uint32_t* out_count) {
    *out_count = static_cast<uint32_t>(state_of(state).devices.size());
    return GREY_OK;
}

grey_status hip_device_spec(void* state, uint32_t device, grey_device_spec* out, const grey_field_reasons* reasons) {
    HipState& s = state_of(state);
    return guarded(s.host, [&] {
        DeviceSlot& d = slot(s, device);
        std::lock_guard lock(d.mutex);  // fill_spec makes the device current for hipMemGetInfo
        fill_spec(*s.hip, s.smi.get(), d.identity, *out, reasons);
        return GREY_OK;
    });
}

grey_status hip_device_telemetry(void* state, uint32_t device, grey_device_telemetry* out, const grey_field_reasons* reasons) {
    HipState& s = state_of(state);
    return guarded(s.host, [&] {
        DeviceSlot& d = slot(s, device);
        std::lock_guard lock(d.mutex);
        fill_telemetry(*s.hip, s.smi.get(), d.identity, *out, reasons);
        return GREY_OK;
    });
}

grey_status hip_buffer_alloc(void* state, uint32_t device, uint64_t size, grey_backend_buffer** out) {
    HipState& s = state_of(state);
    return guarded(s.host, [&] {
        auto buffer = std::make_unique<grey_backend_buffer>(grey_backend_buffer{0, size, device});
        buffer->address = on_device(s, device, [&](const HipRuntime&, backend::ChunkPool& pool) { return pool.allocate(size); });
        *out = buffer.release();
        return GREY_OK;
    });
}

void hip_buffer_free(void* state, grey_backend_buffer* buffer) {
    HipState& s = state_of(state);
    std::unique_ptr<grey_backend_buffer> owned(buffer);
    (void)guarded(s.host, [&] {
        on_device(s, owned->device, [&](const HipRuntime&, backend::ChunkPool& pool) { pool.release(owned->address); });
        return GREY_OK;
    });
}

grey_status hip_buffer_write(void* state, grey_backend_buffer* b, uint64_t offset, const void* source, uint64_t size) {
    HipState& s = state_of(state);
    return guarded(s.host, [&] {
        on_device(s, b->device, [&](const HipRuntime& hip, backend::ChunkPool&) {
            hip.check(hip.mem_copy(device_pointer(b->address + offset), source, size, api::kMemcpyHostToDevice), "hipMemcpy");
        });
        return GREY_OK;
    });
}

grey_status hip_buffer_read(void* state, grey_backend_buffer* b, uint64_t offset, void* destination, uint64_t size) {
    HipState& s = state_of(state);
    return guarded(s.host, [&] {
        on_device(s, b->device, [&](const HipRuntime& hip, backend::ChunkPool&) {
            hip.check(hip.mem_copy(destination, device_pointer(b->address + offset), size, api::kMemcpyDeviceToHost), "hipMemcpy");
        });
        return GREY_OK;
    });
}

grey_status hip_buffer_copy(void* state, grey_backend_buffer* destination, uint64_t destination_offset, grey_backend_buffer* source,
                            uint64_t source_offset, uint64_t size) {
    HipState& s = state_of(state);
    return guarded(s.host, [&] {
        if (destination->device != source->device)
            throw std::invalid_argument("buffer_copy between devices " + std::to_string(source->device) + " and " +
                                        std::to_string(destination->device) + " (the runtime stages those through the host)");
        DeviceSlot& d = slot(s, destination->device);
        on_device(s, destination->device, [&](const HipRuntime& hip, backend::ChunkPool&) {
            if (const BufferKernels* k = kernels_of(d, hip))
                return kernel_copy(hip, *k, destination->address + destination_offset, source->address + source_offset, size);
            hip.check(hip.mem_copy(device_pointer(destination->address + destination_offset), device_pointer(source->address + source_offset),
                                   size, api::kMemcpyDeviceToDevice),
                      "hipMemcpy");
        });
        return GREY_OK;
    });
}

// The fill kernel, or hipMemset where there are no kernels. Either may return before the device has
// finished: both synchronize, so the slot is synchronous.
grey_status hip_buffer_fill(void* state, grey_backend_buffer* b, uint64_t offset, uint8_t value, uint64_t size) {
    HipState& s = state_of(state);
    return guarded(s.host, [&] {
        DeviceSlot& d = slot(s, b->device);
        on_device(s, b->device, [&](const HipRuntime& hip, backend::ChunkPool&) {
            if (const BufferKernels* k = kernels_of(d, hip)) return kernel_fill(hip, *k, b->address + offset, value, size);
            hip.check(hip.mem_set(device_pointer(b->address + offset), value, size), "hipMemset");
            hip.check(hip.device_synchronize(), "hipDeviceSynchronize");
        });
        return GREY_OK;
    });
}

// grey_buffer_checksum on the device (the checksum kernel of grey_kernels.cu); unsupported, with the
// reason, on a GPU without kernels.
grey_status hip_buffer_checksum(void* state, grey_backend_buffer* b, uint64_t offset, uint64_t size, uint64_t* out) {
    HipState& s = state_of(state);
    return guarded(s.host, [&] {
        DeviceSlot& d = slot(s, b->device);
        *out = on_device(s, b->device, [&](const HipRuntime& hip, backend::ChunkPool& pool) {
            const BufferKernels* k = kernels_of(d, hip);
            if (k == nullptr) throw KernelsUnavailable("cannot checksum on the device: " + d.kernels_unavailable);
            if (d.checksum_slot == 0) d.checksum_slot = pool.allocate(sizeof(uint64_t));
            return kernel_checksum(hip, *k, d.checksum_slot, b->address + offset, size);
        });
        return GREY_OK;
    });
}

// Sets power cap 0 through ROCm SMI (microwatts) and gives back the cap it replaced. Only ever called
// on the host's request (grey_device_power_limit_set).
grey_status hip_power_limit_set(void* state, uint32_t device, uint64_t limit_mw, uint64_t* out_previous_mw) {
    HipState& s = state_of(state);
    return guarded(s.host, [&] {
        const DeviceIdentity& id = slot(s, device).identity;
        const RocmSmi* smi = s.smi.get();
        if (!id.smi) return report(s.host, GREY_ERROR_UNSUPPORTED, "cannot set a power limit: " + id.smi_unavailable);
        if (smi->dev_power_cap_get == nullptr || smi->dev_power_cap_set == nullptr)
            return report(s.host, GREY_ERROR_UNSUPPORTED,
                          "cannot set a power limit: " + smi->missing(smi->dev_power_cap_get == nullptr ? "rsmi_dev_power_cap_get" : "rsmi_dev_power_cap_set"));
        if (limit_mw > UINT64_MAX / 1000)
            return report(s.host, GREY_ERROR_INVALID_ARGUMENT, "power limit " + std::to_string(limit_mw) + " mW is beyond ROCm SMI's range");
        auto status_of = [](rsmi::Status r) {
            return r == rsmi::kPermission                                     ? GREY_ERROR_PERMISSION_DENIED
                   : r == rsmi::kInvalidArgs || r == rsmi::kInputOutOfBounds ? GREY_ERROR_INVALID_ARGUMENT
                   : r == rsmi::kNotSupported                                ? GREY_ERROR_UNSUPPORTED
                                                                             : GREY_ERROR_BACKEND;
        };
        uint64_t previous_uw = 0;
        if (const auto r = smi->dev_power_cap_get(*id.smi, 0, &previous_uw); r != rsmi::kSuccess)
            return report(s.host, status_of(r), smi->describe(r, "rsmi_dev_power_cap_get"));
        if (const auto r = smi->dev_power_cap_set(*id.smi, 0, limit_mw * 1000); r != rsmi::kSuccess)
            return report(s.host, status_of(r), smi->describe(r, "rsmi_dev_power_cap_set") + " (asked for " + std::to_string(limit_mw) + " mW)");
        if (out_previous_mw != nullptr) *out_previous_mw = previous_uw / 1000;
        return GREY_OK;
    });
}

// The device address of a job's tensor: this backend declares no GREY_BACKEND_CAP_QUANT_HOST_MEMORY.
uint64_t address_of(const grey_backend_memory& memory) {
    if (memory.buffer == nullptr) throw std::logic_error("the runtime handed host memory to a backend that takes only buffers");
    return memory.buffer->address + memory.offset;
}

grey_status hip_quantize(void* state, const grey_backend_quant_job* job) {
    HipState& s = state_of(state);
    return guarded(s.host, [&] {
        const uint64_t plain = address_of(job->plain), quantized = address_of(job->quantized);
        DeviceSlot& d = slot(s, job->plain.buffer->device);
        on_device(s, job->plain.buffer->device, [&](const HipRuntime& hip, backend::ChunkPool& pool) {
            const QuantKernels& k = quant_kernels_of(d, hip);
            quantize(hip, k, pool, quant_flags_of(d, hip, pool), *job, plain, quantized);
        });
        return GREY_OK;
    });
}

grey_status hip_dequantize(void* state, const grey_backend_quant_job* job) {
    HipState& s = state_of(state);
    return guarded(s.host, [&] {
        const uint64_t quantized = address_of(job->quantized), plain = address_of(job->plain);
        DeviceSlot& d = slot(s, job->quantized.buffer->device);
        on_device(s, job->quantized.buffer->device, [&](const HipRuntime& hip, backend::ChunkPool&) {
            dequantize(hip, quant_kernels_of(d, hip), *job, quantized, plain);
        });
        return GREY_OK;
    });
}

// ----- the KV cache's block operations (hip_kv.cpp): the job's buffers as device addresses --------------

std::vector<uint64_t> addresses_of(grey_backend_buffer* const* buffers, size_t count) {
    std::vector<uint64_t> out(count);
    for (size_t i = 0; i < count; ++i) out[i] = buffers[i]->address;
    return out;
}

grey_status hip_kv_store(void* state, const grey_backend_kv_store_job* job) {
    HipState& s = state_of(state);
    return guarded(s.host, [&] {
        const backend::kv::StoreInput input = backend::kv::store_input(*job, address_of(job->keys), address_of(job->values));
        const auto blocks = addresses_of(job->blocks, job->tokens);
        const uint32_t device = job->keys.buffer->device;
        DeviceSlot& d = slot(s, device);
        on_device(s, device, [&](const HipRuntime& hip, backend::ChunkPool& pool) {
            kv_store(hip, kv_kernels_of(d, hip), pool, *job->layout, input, blocks, {job->slots, job->tokens});
        });
        return GREY_OK;
    });
}

grey_status hip_kv_compress(void* state, const grey_backend_kv_compress_job* job) {
    HipState& s = state_of(state);
    return guarded(s.host, [&] {
        if (job->count == 0) return GREY_OK;
        const auto sources = addresses_of(job->sources, job->count), destinations = addresses_of(job->destinations, job->count);
        const uint32_t device = job->sources[0]->device;
        DeviceSlot& d = slot(s, device);
        on_device(s, device, [&](const HipRuntime& hip, backend::ChunkPool& pool) {
            kv_compress(hip, kv_kernels_of(d, hip), pool, *job->layout, sources, destinations);
        });
        return GREY_OK;
    });
}

// A job of batch 0 is the runtime asking, as a cache is created, whether the kernels take the layout (it
// names no device: a GPU without a code object says why at the cache's first store).
grey_status hip_kv_attend(void* state, const grey_backend_kv_attend_job* job) {
    HipState& s = state_of(state);
    return guarded(s.host, [&] {
        kv_check_layout(*job->layout, job->query_heads);
        if (job->batch == 0) return GREY_OK;
        const uint64_t count = job->table_offsets[job->batch];
        std::vector<uint64_t> blocks(count);
        for (uint64_t i = 0; i < count; ++i) blocks[i] = job->blocks[i]->address | (job->quantized[i] != 0 ? 1u : 0u);
        const backend::kv::AttendTables tables{blocks, {job->table_offsets, job->batch + size_t{1}}, {job->first, job->batch}, {job->last, job->batch}};
        const uint64_t queries = address_of(job->queries), output = address_of(job->output);
        const uint32_t device = job->queries.buffer->device;
        DeviceSlot& d = slot(s, device);
        on_device(s, device, [&](const HipRuntime& hip, backend::ChunkPool& pool) {
            kv_attend(hip, kv_kernels_of(d, hip), pool, *job->layout, tables, job->layer, job->query_heads, job->scale, queries, output);
        });
        return GREY_OK;
    });
}

// ----- streams and events: HIP's own, resolved with the runtime (hip_runtime.hpp) --------------------

const HipRuntime& stream_api(HipState& s) {
    s.hip->require_stream_api();
    return *s.hip;
}

grey_status hip_stream_create(void* state, uint32_t device, grey_backend_stream** out) {
    HipState& s = state_of(state);
    return guarded(s.host, [&] {
        const HipRuntime& hip = stream_api(s);
        auto stream = std::make_unique<grey_backend_stream>();
        stream->device = device;
        on_device(s, device, [&](const HipRuntime&, backend::ChunkPool& pool) {
            stream->checksum_slot = pool.allocate(sizeof(uint64_t));
            if (const api::Error e = hip.stream_create(&stream->stream); e != api::kSuccess) {
                pool.release(stream->checksum_slot);
                hip.check(e, "hipStreamCreate");
            }
        });
        *out = stream.release();
        return GREY_OK;
    });
}

// Once the stream has run the jobs numbered below `end`: checks them and gives their memory back.
void check_jobs(HipState& s, uint32_t device, QuantJournal& journal, uint64_t end) {
    on_device(s, device, [&](const HipRuntime&, backend::ChunkPool& pool) { journal.check_before(end, pool); });
}

// A quantization's failure, kept by a stream, in the words of the synchronous call.
grey_status report_failure(const grey_backend_host* host, const std::optional<QuantFailure>& failure) {
    return failure.has_value() ? report(host, failure->status, failure->message) : GREY_OK;
}

// The stream's work goes first (it may still use the checksum slot and the quantizations' memory);
// hipStreamDestroy alone would return before it has run. Its failures were returned by the runtime's
// synchronize before this.
void hip_stream_destroy(void* state, grey_backend_stream* stream) {
    HipState& s = state_of(state);
    std::unique_ptr<grey_backend_stream> owned(stream);
    (void)guarded(s.host, [&] {
        const HipRuntime& hip = *s.hip;
        const api::Error waited = hip.stream_synchronize(owned->stream);
        (void)hip.stream_destroy(owned->stream);
        on_device(s, owned->device, [&](const HipRuntime&, backend::ChunkPool& pool) {
            pool.release(owned->checksum_slot);
            owned->journal->release(pool);
        });
        hip.check(waited, "hipStreamSynchronize");
        return GREY_OK;
    });
}

grey_status hip_stream_synchronize(void* state, grey_backend_stream* stream) {
    HipState& s = state_of(state);
    return guarded(s.host, [&] {
        // Only the jobs enqueued before the wait are known to have run.
        const uint64_t end = stream->journal->next_job();
        s.hip->check(s.hip->stream_synchronize(stream->stream), "hipStreamSynchronize");
        check_jobs(s, stream->device, *stream->journal, end);
        return report_failure(s.host, stream->journal->take_failure());
    });
}

// A query's answer as the out_done flag: hipErrorNotReady is the answer "not yet", not a failure.
uint32_t done_flag(const HipRuntime& hip, api::Error e, const char* call) {
    if (e != api::kErrorNotReady) hip.check(e, call);
    return e == api::kSuccess ? 1 : 0;
}

grey_status hip_stream_query(void* state, grey_backend_stream* stream, uint32_t* out_done) {
    HipState& s = state_of(state);
    return guarded(s.host, [&] {
        const uint64_t end = stream->journal->next_job();
        const uint32_t done = done_flag(*s.hip, s.hip->stream_query(stream->stream), "hipStreamQuery");
        if (done != 0) {
            check_jobs(s, stream->device, *stream->journal, end);
            if (const grey_status failed = report_failure(s.host, stream->journal->take_failure()); failed != GREY_OK) return failed;
        }
        *out_done = done;
        return GREY_OK;
    });
}

grey_status hip_event_create(void* state, uint32_t device, grey_backend_event** out) {
    HipState& s = state_of(state);
    return guarded(s.host, [&] {
        const HipRuntime& hip = stream_api(s);
        auto event = std::make_unique<grey_backend_event>();
        event->device = device;
        on_device(s, device, [&](const HipRuntime&, backend::ChunkPool&) { hip.check(hip.event_create(&event->event), "hipEventCreate"); });
        *out = event.release();
        return GREY_OK;
    });
}

void hip_event_destroy(void* state, grey_backend_event* event) {
    std::unique_ptr<grey_backend_event> owned(event);
    (void)state_of(state).hip->event_destroy(owned->event);
}

grey_status hip_event_record(void* state, grey_backend_event* event, grey_backend_stream* stream) {
    HipState& s = state_of(state);
    return guarded(s.host, [&] {
        // Recorded between two quantizations of the stream, so the event knows which it stands for.
        const uint64_t end = stream->journal->mark([&] { s.hip->check(s.hip->event_record(event->event, stream->stream), "hipEventRecord"); });
        event->recorded.set(stream->journal, end);
        return GREY_OK;
    });
}

grey_status hip_stream_wait_event(void* state, grey_backend_stream* stream, grey_backend_event* event) {
    HipState& s = state_of(state);
    return guarded(s.host, [&] {
        s.hip->check(s.hip->stream_wait_event(stream->stream, event->event, 0), "hipStreamWaitEvent");
        return GREY_OK;
    });
}

// Once an event's record has completed: the failure of a quantization it stands for, which its stream keeps.
grey_status event_failure(HipState& s, grey_backend_event& event) {
    const auto [journal, end] = event.recorded.get();
    if (journal == nullptr) return GREY_OK;
    check_jobs(s, event.device, *journal, end);
    return report_failure(s.host, journal->failure_before(end));
}

grey_status hip_event_synchronize(void* state, grey_backend_event* event) {
    HipState& s = state_of(state);
    return guarded(s.host, [&] {
        s.hip->check(s.hip->event_synchronize(event->event), "hipEventSynchronize");
        return event_failure(s, *event);
    });
}

grey_status hip_event_query(void* state, grey_backend_event* event, uint32_t* out_done) {
    HipState& s = state_of(state);
    return guarded(s.host, [&] {
        const uint32_t done = done_flag(*s.hip, s.hip->event_query(event->event), "hipEventQuery");
        if (done != 0)
            if (const grey_status failed = event_failure(s, *event); failed != GREY_OK) return failed;
        *out_done = done;
        return GREY_OK;
    });
}

grey_status hip_event_elapsed_ms(void* state, grey_backend_event* start, grey_backend_event* end, double* out_ms) {
    HipState& s = state_of(state);
    return guarded(s.host, [&] {
        const HipRuntime& hip = *s.hip;
        hip.check(hip.event_synchronize(start->event), "hipEventSynchronize");
        hip.check(hip.event_synchronize(end->event), "hipEventSynchronize");
        float ms = 0;
        hip.check(hip.event_elapsed_time(&ms, start->event, end->event), "hipEventElapsedTime");
        *out_ms = ms;
        return GREY_OK;
    });
}

// Enqueues `call(hip)` with the stream's device current (HIP takes the device from the stream, but
// the pool and kernels are per device).
template <typename Call>
grey_status enqueue_on(HipState& s, grey_backend_stream* stream, Call&& call) {
    return guarded(s.host, [&] {
        on_device(s, stream->device, [&](const HipRuntime& hip, backend::ChunkPool&) { call(hip); });
        return GREY_OK;
    });
}

grey_status hip_buffer_write_async(void* state, grey_backend_stream* stream, grey_backend_buffer* b, uint64_t offset, const void* source,
                                   uint64_t size) {
    return enqueue_on(state_of(state), stream, [&](const HipRuntime& hip) {
        hip.check(hip.mem_copy_async(device_pointer(b->address + offset), source, size, api::kMemcpyHostToDevice, stream->stream), "hipMemcpyAsync");
    });
}

grey_status hip_buffer_read_async(void* state, grey_backend_stream* stream, grey_backend_buffer* b, uint64_t offset, void* destination,
                                  uint64_t size) {
    return enqueue_on(state_of(state), stream, [&](const HipRuntime& hip) {
        hip.check(hip.mem_copy_async(destination, device_pointer(b->address + offset), size, api::kMemcpyDeviceToHost, stream->stream),
                  "hipMemcpyAsync");
    });
}

grey_status hip_buffer_copy_async(void* state, grey_backend_stream* stream, grey_backend_buffer* destination, uint64_t destination_offset,
                                  grey_backend_buffer* source, uint64_t source_offset, uint64_t size) {
    return enqueue_on(state_of(state), stream, [&](const HipRuntime& hip) {
        if (destination->device != source->device)
            throw std::invalid_argument("buffer_copy between devices " + std::to_string(source->device) + " and " +
                                        std::to_string(destination->device) + " (the runtime stages those through the host)");
        hip.check(hip.mem_copy_async(device_pointer(destination->address + destination_offset), device_pointer(source->address + source_offset),
                                     size, api::kMemcpyDeviceToDevice, stream->stream),
                  "hipMemcpyAsync");
    });
}

grey_status hip_buffer_fill_async(void* state, grey_backend_stream* stream, grey_backend_buffer* b, uint64_t offset, uint8_t value,
                                  uint64_t size) {
    return enqueue_on(state_of(state), stream, [&](const HipRuntime& hip) {
        hip.check(hip.mem_set_async(device_pointer(b->address + offset), value, size, stream->stream), "hipMemsetAsync");
    });
}

// The checksum kernel on the stream, into the stream's own slot (so checksums of two streams never
// share one); unsupported, with the reason, on a GPU without kernels.
grey_status hip_buffer_checksum_async(void* state, grey_backend_stream* stream, grey_backend_buffer* b, uint64_t offset, uint64_t size,
                                      uint64_t* out) {
    HipState& s = state_of(state);
    return enqueue_on(s, stream, [&](const HipRuntime& hip) {
        const BufferKernels* k = kernels_of(slot(s, stream->device), hip);
        if (k == nullptr) throw KernelsUnavailable("cannot checksum on the device: " + slot(s, stream->device).kernels_unavailable);
        enqueue_checksum(hip, *k, stream->stream, stream->checksum_slot, b->address + offset, size, out);
    });
}

// Enqueue-only: the stream's journal launches the kernels on the stream; a NaN input surfaces at the
// next synchronize, query or event of the stream, in the synchronous slot's words.
grey_status hip_quantize_async(void* state, grey_backend_stream* stream, const grey_backend_quant_job* job) {
    HipState& s = state_of(state);
    return guarded(s.host, [&] {
        const uint64_t plain = address_of(job->plain), quantized = address_of(job->quantized);
        backend::require_stream_job(stream->device, *job);
        DeviceSlot& d = slot(s, stream->device);
        on_device(s, stream->device, [&](const HipRuntime& hip, backend::ChunkPool& pool) {
            stream->journal->enqueue_quantize(hip, quant_kernels_of(d, hip), pool, stream->stream, *job, plain, quantized);
        });
        return GREY_OK;
    });
}

// Dequantization finds nothing to refuse on the device: its kernels go on the stream, and that is all.
grey_status hip_dequantize_async(void* state, grey_backend_stream* stream, const grey_backend_quant_job* job) {
    HipState& s = state_of(state);
    return guarded(s.host, [&] {
        const uint64_t quantized = address_of(job->quantized), plain = address_of(job->plain);
        backend::require_stream_job(stream->device, *job);
        DeviceSlot& d = slot(s, stream->device);
        on_device(s, stream->device, [&](const HipRuntime& hip, backend::ChunkPool&) {
            enqueue_dequantize(hip, quant_kernels_of(d, hip), stream->stream, *job, quantized, plain);
        });
        return GREY_OK;
    });
}

grey_status hip_memory_stats(void* state, uint32_t device, grey_memory_stats* out) {
    HipState& s = state_of(state);
    return guarded(s.host, [&] {
        DeviceSlot& d = slot(s, device);
        std::lock_guard lock(d.mutex);
        backend::clear_stats(*out);
        if (d.pool) d.pool->stats(*out);  // no pool yet: no buffer
        return GREY_OK;
    });
}

}  // namespace
}  // namespace grey::hip

extern "C" GREY_BACKEND_EXPORT grey_status grey_backend_entry(uint32_t host_abi_version, grey_backend_vtable* out) {
    using namespace grey::hip;
    if (!grey::backend::loader_accepts(host_abi_version, out)) return GREY_ERROR_UNSUPPORTED;
    grey_backend_vtable vt{};
    vt.struct_size = sizeof vt;
    vt.abi_version = GREY_BACKEND_ABI_VERSION;
    vt.name = "hip";
    vt.init = hip_init;
    vt.shutdown = hip_shutdown;
    vt.device_count = hip_device_count;
    vt.device_spec = hip_device_spec;
    vt.device_telemetry = hip_device_telemetry;
    vt.buffer_alloc = hip_buffer_alloc;
    vt.buffer_free = hip_buffer_free;
    vt.buffer_write = hip_buffer_write;
    vt.buffer_read = hip_buffer_read;
    vt.buffer_copy = hip_buffer_copy;
    vt.buffer_fill = hip_buffer_fill;
    vt.buffer_checksum = hip_buffer_checksum;
    vt.memory_stats = hip_memory_stats;
    vt.power_limit_set = hip_power_limit_set;
    vt.quantize = hip_quantize;
    vt.dequantize = hip_dequantize;
    vt.kv_store = hip_kv_store;
    vt.kv_compress = hip_kv_compress;
    vt.kv_attend = hip_kv_attend;
    // The KV kernels rotate K and the queries themselves (kernels/cuda/kv_cache.cu).
    vt.capabilities = GREY_BACKEND_CAP_QUANT_ERROR | GREY_BACKEND_CAP_STREAMS | GREY_BACKEND_CAP_KV_HADAMARD_K | GREY_BACKEND_CAP_KV_STORE_CHECKED;
    vt.stream_create = hip_stream_create;
    vt.stream_destroy = hip_stream_destroy;
    vt.stream_synchronize = hip_stream_synchronize;
    vt.stream_query = hip_stream_query;
    vt.event_create = hip_event_create;
    vt.event_destroy = hip_event_destroy;
    vt.event_record = hip_event_record;
    vt.stream_wait_event = hip_stream_wait_event;
    vt.event_synchronize = hip_event_synchronize;
    vt.event_query = hip_event_query;
    vt.event_elapsed_ms = hip_event_elapsed_ms;
    vt.buffer_write_async = hip_buffer_write_async;
    vt.buffer_read_async = hip_buffer_read_async;
    vt.buffer_copy_async = hip_buffer_copy_async;
    vt.buffer_fill_async = hip_buffer_fill_async;
    vt.buffer_checksum_async = hip_buffer_checksum_async;
    vt.quantize_async = hip_quantize_async;
    vt.dequantize_async = hip_dequantize_async;
    grey::backend::publish_vtable(vt, out);
    return GREY_OK;
}
