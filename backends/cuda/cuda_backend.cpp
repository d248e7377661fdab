// libgrey-backend-cuda.so: NVIDIA GPUs through the CUDA driver API and NVML, both opened at run time.
//
// init opens libcuda.so.1 (required: without it the backend is not offered, and the loader reports the
// reason) and libnvidia-ml.so.1 (optional: without it the fields NVML feeds are marked unsupported with
// the reason). Memory comes from one VmmPool per device; fill, copy, checksum, quantize and dequantize
// run the kernels of the embedded fatbins.
#include "common/fields.hpp"
#include "common/job_failures.hpp"
#include "cuda/codec_ops.hpp"
#include "cuda/device_runtime.hpp"
#include "cuda/driver.hpp"
#include "cuda/nvml.hpp"
#include "cuda/probe.hpp"
#include "cuda/kv_ops.hpp"
#include "cuda/quant_journal.hpp"
#include "cuda/quantizer.hpp"

#include <cstddef>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <vector>

struct grey_backend_buffer {
    CUdeviceptr pointer;
    uint64_t size;
    uint32_t device;
};

// A caller's stream: a CUDA stream of the device, 8 bytes of device memory for its checksums (the
// stream orders their use), and the quantizations enqueued on it (shared with events recorded after them).
struct grey_backend_stream {
    grey::cuda::DeviceRuntime* runtime;
    CUstream stream;
    CUdeviceptr checksum_slot;
    std::shared_ptr<grey::cuda::QuantJournal> journal;
    bool owns_stream = true;  // false: the caller's CUstream (stream_wrap_native), never destroyed here
};

// The CUDA event, and which quantizations of which stream its latest record stands for (their failure is
// the event's).
struct grey_backend_event {
    grey::cuda::DeviceRuntime* runtime = nullptr;
    CUevent event = nullptr;
    grey::backend::RecordedJobs<grey::cuda::QuantJournal> recorded;
};

namespace grey::cuda {
namespace {

constexpr const char* kDriverLibrary = "libcuda.so.1";
constexpr const char* kNvmlLibrary = "libnvidia-ml.so.1";

struct DeviceSlot {
    DeviceIdentity identity;
    uint64_t memory_bytes = 0;
    // Created on first use (see device_runtime.hpp); guarded by `mutex`.
    std::mutex mutex;
    std::unique_ptr<DeviceRuntime> runtime;
};

struct CudaState {
    const grey_backend_host* host = nullptr;
    // Declared first so they are destroyed last: the devices' runtimes still call into the driver.
    std::unique_ptr<Driver> driver;
    std::unique_ptr<Nvml> nvml;
    std::string nvml_unavailable;
    std::vector<std::unique_ptr<DeviceSlot>> devices;
    // grey_host_alloc memory, by address, and the device whose context pinned it.
    std::mutex host_memory_mutex;
    std::map<void*, uint32_t> host_memory;
};

CudaState& state_of(void* state) { return *static_cast<CudaState*>(state); }

grey_status report(const grey_backend_host* host, grey_status status, const std::string& message) {
    if (host != nullptr && host->set_error != nullptr) host->set_error(host->host_data, ("cuda backend: " + message).c_str());
    return status;
}

// Runs `body`, turning every exception into a status and a message: nothing escapes into the runtime.
template <typename Body>
grey_status guarded(const grey_backend_host* host, Body&& body) noexcept {
    try {
        return body();
    } catch (const PoolOutOfMemory& e) {
        return report(host, GREY_ERROR_OUT_OF_MEMORY, e.what());
    } catch (const DriverError& e) {
        return report(host, e.result() == CUDA_ERROR_OUT_OF_MEMORY ? GREY_ERROR_OUT_OF_MEMORY : GREY_ERROR_BACKEND, e.what());
    } catch (const std::bad_alloc&) {
        return report(host, GREY_ERROR_OUT_OF_MEMORY, "out of host memory");
    } catch (const std::invalid_argument& e) {
        return report(host, GREY_ERROR_INVALID_ARGUMENT, e.what());
    } catch (const std::domain_error& e) {  // a request this backend does not know how to serve
        return report(host, GREY_ERROR_UNSUPPORTED, e.what());
    } catch (const std::exception& e) {
        return report(host, GREY_ERROR_INTERNAL, e.what());
    } catch (...) {
        return report(host, GREY_ERROR_INTERNAL, "unknown exception");
    }
}

DeviceSlot& slot(CudaState& s, uint32_t device) {
    if (device >= s.devices.size())
        throw std::invalid_argument("device " + std::to_string(device) + " does not exist (the backend has " +
                                    std::to_string(s.devices.size()) + ")");
    return *s.devices[device];
}

DeviceRuntime& runtime(CudaState& s, uint32_t device) {
    DeviceSlot& d = slot(s, device);
    std::lock_guard lock(d.mutex);
    if (!d.runtime) d.runtime = std::make_unique<DeviceRuntime>(*s.driver, d.identity.device, d.memory_bytes);
    return *d.runtime;
}

grey_status cuda_init(const grey_backend_host* host, void** out_state) {
    try {
        auto state = std::make_unique<CudaState>();
        state->host = host;
        try {
            state->driver = std::make_unique<Driver>(kDriverLibrary);
        } catch (const DriverUnavailable& e) {
            return report(host, GREY_ERROR_UNSUPPORTED, e.what());
        }
        const Driver& cu = *state->driver;
        try {
            state->nvml = std::make_unique<Nvml>(kNvmlLibrary);
        } catch (const NvmlUnavailable& e) {
            state->nvml_unavailable = e.what();
            if (host != nullptr && host->log != nullptr)
                host->log(host->host_data, GREY_LOG_INFO, ("cuda backend: " + state->nvml_unavailable + "; NVML fields are unavailable").c_str());
        }
        int count = 0;
        cu.check(cu.cuDeviceGetCount(&count), "cuDeviceGetCount");
        if (count <= 0) return report(host, GREY_ERROR_UNSUPPORTED, "the CUDA driver is installed but reports no device");
        for (int i = 0; i < count; ++i) {
            auto d = std::make_unique<DeviceSlot>();
            cu.check(cu.cuDeviceGet(&d->identity.device, i), "cuDeviceGet");
            char bus[64] = {};
            if (cu.cuDeviceGetPCIBusId(bus, sizeof bus - 1, d->identity.device) == CUDA_SUCCESS) d->identity.pci_bus_id = bus;
            size_t total = 0;
            cu.check(cu.cuDeviceTotalMem(&total, d->identity.device), "cuDeviceTotalMem");
            d->memory_bytes = total;
            attach_nvml(cu, state->nvml.get(), state->nvml_unavailable, d->identity);
            state->devices.push_back(std::move(d));
        }
        *out_state = state.release();
        return GREY_OK;
    } catch (const DriverError& e) {
        return report(host, GREY_ERROR_BACKEND, e.what());
    } catch (const std::bad_alloc&) {
        return report(host, GREY_ERROR_OUT_OF_MEMORY, "out of host memory while starting");
    } catch (const std::exception& e) {
        return report(host, GREY_ERROR_INTERNAL, e.what());
    }
}

void cuda_shutdown(void* state) { std::unique_ptr<CudaState>(static_cast<CudaState*>(state)).reset(); }

grey_status cuda_device_count(void* state, uint32_t* out_count) {
    *out_count = static_cast<uint32_t>(state_of(state).devices.size());
    return GREY_OK;
}

// Free/total memory through the driver, for fields NVML cannot give. It needs the device's context.
DriverMemoryInfo driver_memory_info(CudaState& s, uint32_t device) {
    return [&s, device](uint64_t& free, uint64_t& total, std::string& why) {
        try {
            runtime(s, device).memory_info(free, total);
            return true;
        } catch (const std::exception& e) {
            why = std::string("CUDA driver: ") + e.what();
            return false;
        }
    };
}

grey_status cuda_device_spec(void* state, uint32_t device, grey_device_spec* out, const grey_field_reasons* reasons) {
    CudaState& s = state_of(state);
    return guarded(s.host, [&] {
        DeviceSlot& d = slot(s, device);
        fill_spec(*s.driver, s.nvml.get(), d.identity, driver_memory_info(s, device), *out, reasons);
        return GREY_OK;
    });
}

grey_status cuda_device_telemetry(void* state, uint32_t device, grey_device_telemetry* out, const grey_field_reasons* reasons) {
    CudaState& s = state_of(state);
    return guarded(s.host, [&] {
        DeviceSlot& d = slot(s, device);
        fill_telemetry(*s.driver, s.nvml.get(), d.identity, driver_memory_info(s, device), *out, reasons);
        return GREY_OK;
    });
}

grey_status cuda_buffer_alloc(void* state, uint32_t device, uint64_t size, grey_backend_buffer** out) {
    CudaState& s = state_of(state);
    return guarded(s.host, [&] {
        DeviceRuntime& rt = runtime(s, device);
        auto buffer = std::make_unique<grey_backend_buffer>(grey_backend_buffer{0, size, device});
        buffer->pointer = rt.pool().allocate(size);
        *out = buffer.release();
        return GREY_OK;
    });
}

void cuda_buffer_free(void* state, grey_backend_buffer* buffer) {
    CudaState& s = state_of(state);
    std::unique_ptr<grey_backend_buffer> owned(buffer);
    // A buffer exists only if its device's runtime does.
    (void)guarded(s.host, [&] {
        runtime(s, owned->device).pool().release(owned->pointer);
        return GREY_OK;
    });
}

grey_status cuda_buffer_write(void* state, grey_backend_buffer* b, uint64_t offset, const void* source, uint64_t size) {
    CudaState& s = state_of(state);
    return guarded(s.host, [&] {
        runtime(s, b->device).write(b->pointer + offset, source, size);
        return GREY_OK;
    });
}

grey_status cuda_buffer_read(void* state, grey_backend_buffer* b, uint64_t offset, void* destination, uint64_t size) {
    CudaState& s = state_of(state);
    return guarded(s.host, [&] {
        runtime(s, b->device).read(destination, b->pointer + offset, size);
        return GREY_OK;
    });
}

grey_status cuda_buffer_copy(void* state, grey_backend_buffer* destination, uint64_t destination_offset, grey_backend_buffer* source,
                             uint64_t source_offset, uint64_t size) {
    CudaState& s = state_of(state);
    return guarded(s.host, [&] {
        if (destination->device != source->device)
            throw std::invalid_argument("buffer_copy between devices " + std::to_string(source->device) + " and " +
                                        std::to_string(destination->device) + " (the runtime stages those through the host)");
        runtime(s, destination->device).copy(destination->pointer + destination_offset, source->pointer + source_offset, size);
        return GREY_OK;
    });
}

grey_status cuda_buffer_fill(void* state, grey_backend_buffer* b, uint64_t offset, uint8_t value, uint64_t size) {
    CudaState& s = state_of(state);
    return guarded(s.host, [&] {
        runtime(s, b->device).fill(b->pointer + offset, value, size);
        return GREY_OK;
    });
}

grey_status cuda_memory_stats(void* state, uint32_t device, grey_memory_stats* out) {
    CudaState& s = state_of(state);
    return guarded(s.host, [&] {
        DeviceSlot& d = slot(s, device);
        std::lock_guard lock(d.mutex);
        if (!d.runtime) {
            // No buffer has been made on this device: the pool does not exist yet and holds nothing.
            const uint32_t size = out->struct_size;
            *out = grey_memory_stats{};
            out->struct_size = size;
            return GREY_OK;
        }
        d.runtime->pool().stats(*out);
        return GREY_OK;
    });
}

grey_status cuda_buffer_checksum(void* state, grey_backend_buffer* b, uint64_t offset, uint64_t size, uint64_t* out) {
    CudaState& s = state_of(state);
    return guarded(s.host, [&] {
        *out = runtime(s, b->device).checksum(b->pointer + offset, size);
        return GREY_OK;
    });
}

// The device address of a job's tensor. This backend declares no GREY_BACKEND_CAP_QUANT_HOST_MEMORY, so the
// runtime hands it only buffers, all on one device (it checked).
CUdeviceptr address_of(const grey_backend_memory& memory) {
    if (memory.buffer == nullptr) throw std::logic_error("the runtime handed host memory to a backend that takes only buffers");
    return memory.buffer->pointer + memory.offset;
}

grey_status cuda_quantize(void* state, const grey_backend_quant_job* job) {
    CudaState& s = state_of(state);
    return guarded(s.host, [&] {
        const CUdeviceptr plain = address_of(job->plain), quantized = address_of(job->quantized);
        quantize(runtime(s, job->plain.buffer->device), *job, plain, quantized);
        return GREY_OK;
    });
}

grey_status cuda_dequantize(void* state, const grey_backend_quant_job* job) {
    CudaState& s = state_of(state);
    return guarded(s.host, [&] {
        const CUdeviceptr quantized = address_of(job->quantized), plain = address_of(job->plain);
        dequantize(runtime(s, job->quantized.buffer->device), *job, quantized, plain);
        return GREY_OK;
    });
}

// --- Container blocks and deduplication hashes (codec_ops.cpp).

static_assert(sizeof(grey_backend_codec_block) == sizeof(common::CodecBlockJob) &&
                  offsetof(grey_backend_codec_block, payload) == offsetof(common::CodecBlockJob, payload) &&
                  offsetof(grey_backend_codec_block, checksum_seed) == offsetof(common::CodecBlockJob, checksum_seed) &&
                  offsetof(grey_backend_codec_block, element_width) == offsetof(common::CodecBlockJob, element_width),
              "grey_backend_codec_block is the kernels' CodecBlockJob");

grey_status cuda_codec_decode(void* state, grey_backend_buffer* const* containers, grey_backend_buffer* output,
                              const grey_backend_codec_block* blocks, uint32_t count, uint32_t* out_faults) {
    CudaState& s = state_of(state);
    return guarded(s.host, [&] {
        // The kernels take each payload at its device address.
        std::vector<common::CodecBlockJob> jobs(count);
        std::memcpy(jobs.data(), blocks, count * sizeof *blocks);
        for (uint32_t i = 0; i < count; ++i) jobs[i].payload += containers[i]->pointer;
        codec_decode(runtime(s, output->device), output->pointer, jobs, {out_faults, count});
        return GREY_OK;
    });
}

// The job table goes into the runtime's `faults` buffer after the fault bits: the runtime keeps that
// buffer until the stream has run the kernel, so nothing of the backend's has to outlive the call.
grey_status codec_decode_enqueued(void* state, grey_backend_stream* stream, grey_backend_buffer* const* containers, grey_backend_buffer* output,
                                  const grey_backend_codec_block* blocks, uint32_t count, grey_backend_buffer* faults, void* staging) {
    CudaState& s = state_of(state);
    return guarded(s.host, [&] {
        if (faults->size < GREY_BACKEND_CODEC_DECODE_ASYNC_BYTES(count))
            throw std::invalid_argument("codec_decode_async: the faults buffer holds " + std::to_string(faults->size) + " bytes, fewer than " +
                                        std::to_string(GREY_BACKEND_CODEC_DECODE_ASYNC_BYTES(count)) + " for " + std::to_string(count) + " blocks");
        std::vector<common::CodecBlockJob> jobs(count);
        std::memcpy(jobs.data(), blocks, count * sizeof *blocks);
        for (uint32_t i = 0; i < count; ++i) jobs[i].payload += containers[i]->pointer;
        codec_decode_on(*stream->runtime, stream->stream, output->pointer, jobs, faults->pointer,
                        faults->pointer + GREY_BACKEND_CODEC_FAULTS_BYTES(count), staging);
        return GREY_OK;
    });
}

grey_status cuda_codec_decode_async(void* state, grey_backend_stream* stream, grey_backend_buffer* const* containers, grey_backend_buffer* output,
                                    const grey_backend_codec_block* blocks, uint32_t count, grey_backend_buffer* faults) {
    return codec_decode_enqueued(state, stream, containers, output, blocks, count, faults, nullptr);
}

// The job table staged in the runtime's host memory, which it keeps until the stream is past the kernel.
grey_status cuda_codec_decode_async_staged(void* state, grey_backend_stream* stream, grey_backend_buffer* const* containers,
                                           grey_backend_buffer* output, const grey_backend_codec_block* blocks, uint32_t count,
                                           grey_backend_buffer* faults, void* table) {
    return codec_decode_enqueued(state, stream, containers, output, blocks, count, faults, table);
}

grey_status cuda_block_hashes(void* state, grey_backend_buffer* buffer, uint64_t offset, uint64_t size, uint32_t block_size, uint64_t seed,
                              uint64_t* out_hashes) {
    CudaState& s = state_of(state);
    return guarded(s.host, [&] {
        block_hashes(runtime(s, buffer->device), buffer->pointer + offset, size, block_size, seed,
                     {out_hashes, static_cast<size_t>((size + block_size - 1) / block_size)});
        return GREY_OK;
    });
}

// --- The KV cache's block operations (kv_ops.cpp): the job's buffers as device addresses.

std::vector<CUdeviceptr> addresses_of(grey_backend_buffer* const* buffers, size_t count) {
    std::vector<CUdeviceptr> out(count);
    for (size_t i = 0; i < count; ++i) out[i] = buffers[i]->pointer;
    return out;
}

grey_status cuda_kv_store(void* state, const grey_backend_kv_store_job* job) {
    CudaState& s = state_of(state);
    return guarded(s.host, [&] {
        const auto blocks = addresses_of(job->blocks, job->tokens);
        kv_store(runtime(s, job->keys.buffer->device), *job->layout, backend::kv::store_input(*job, address_of(job->keys), address_of(job->values)),
                 blocks, {job->slots, job->tokens});
        return GREY_OK;
    });
}

grey_status cuda_kv_compress(void* state, const grey_backend_kv_compress_job* job) {
    CudaState& s = state_of(state);
    return guarded(s.host, [&] {
        if (job->count == 0) return GREY_OK;
        kv_compress(runtime(s, job->sources[0]->device), *job->layout, addresses_of(job->sources, job->count),
                    addresses_of(job->destinations, job->count));
        return GREY_OK;
    });
}

// The job's blocks as the kernels' table entries: device addresses, bit 0 set for a quantized block. The
// runtime's own where it gives them (the address a buffer maps to is its pointer), else from the buffers
// into `made`.
std::span<const uint64_t> kv_block_entries(const grey_backend_kv_attend_job& job, std::vector<uint64_t>& made) {
    const uint64_t count = job.table_offsets[job.batch];
    if (job.struct_size >= offsetof(grey_backend_kv_attend_job, addresses) + sizeof job.addresses && job.addresses != nullptr)
        return {job.addresses, count};
    made.resize(count);
    for (uint64_t i = 0; i < count; ++i) made[i] = job.blocks[i]->pointer | (job.quantized[i] != 0 ? 1u : 0u);
    return made;
}

KvAttendTables kv_attend_tables(const grey_backend_kv_attend_job& job, std::span<const uint64_t> blocks) {
    return KvAttendTables{blocks, {job.table_offsets, job.batch + size_t{1}}, {job.first, job.batch}, {job.last, job.batch}};
}

grey_status cuda_kv_attend(void* state, const grey_backend_kv_attend_job* job) {
    CudaState& s = state_of(state);
    return guarded(s.host, [&] {
        if (job->batch == 0) {  // the runtime asks whether the kernels take this layout
            kv_check_layout(*job->layout, job->query_heads);
            return GREY_OK;
        }
        std::vector<uint64_t> made;
        const std::span<const uint64_t> blocks = kv_block_entries(*job, made);
        kv_attend(runtime(s, job->queries.buffer->device), *job->layout, kv_attend_tables(*job, blocks), job->layer, job->query_heads, job->scale,
                  address_of(job->queries), address_of(job->output));
        return GREY_OK;
    });
}

// Enqueue-only: the tables go up from the runtime's staging on the stream, the scratch is the stream's.
grey_status cuda_kv_attend_async(void* state, grey_backend_stream* stream, const grey_backend_kv_attend_job* job, void* staging) {
    CudaState& s = state_of(state);
    return guarded(s.host, [&] {
        if (job->batch == 0) return GREY_OK;
        std::vector<uint64_t> made;
        const std::span<const uint64_t> blocks = kv_block_entries(*job, made);
        kv_attend_on(*stream->runtime, *stream->journal, stream->stream, *job->layout, kv_attend_tables(*job, blocks), job->layer, job->query_heads,
                     job->scale, address_of(job->queries), address_of(job->output), staging);
        return GREY_OK;
    });
}

// Pool memory is ordinary device memory at a fixed address for the buffer's life; the CUDA ordinal is
// the CUdevice the slot was opened with (cuDeviceGet(&device, ordinal) gives the ordinal back).
grey_status cuda_buffer_map(void* state, grey_backend_buffer* b, grey_buffer_mapping* out) {
    CudaState& s = state_of(state);
    return guarded(s.host, [&] {
        out->kind = GREY_MEMORY_CUDA_DEVICE;
        out->address = static_cast<uint64_t>(b->pointer);
        out->vendor_device = static_cast<int32_t>(slot(s, b->device).identity.device);
        return GREY_OK;
    });
}

// Reads the management limit (the one a set replaces; the enforced limit may be lower) and sets the new
// one. Only ever called on the host's request (grey_device_power_limit_set).
grey_status cuda_power_limit_set(void* state, uint32_t device, uint64_t limit_mw, uint64_t* out_previous_mw) {
    CudaState& s = state_of(state);
    return guarded(s.host, [&] {
        const DeviceSlot& d = slot(s, device);
        const Nvml* nvml = s.nvml.get();
        if (nvml == nullptr) return report(s.host, GREY_ERROR_UNSUPPORTED, "cannot set a power limit: " + s.nvml_unavailable);
        if (d.identity.nvml == nullptr) return report(s.host, GREY_ERROR_UNSUPPORTED, "cannot set a power limit: " + d.identity.nvml_unavailable);
        if (nvml->device_get_power_management_limit == nullptr || nvml->device_set_power_management_limit == nullptr)
            return report(s.host, GREY_ERROR_UNSUPPORTED,
                          "cannot set a power limit: " + nvml->missing("nvmlDeviceGetPowerManagementLimit or nvmlDeviceSetPowerManagementLimit"));
        if (limit_mw > UINT32_MAX) return report(s.host, GREY_ERROR_INVALID_ARGUMENT, "power limit " + std::to_string(limit_mw) + " mW is beyond NVML's range");
        unsigned int previous = 0;
        if (const auto r = nvml->device_get_power_management_limit(d.identity.nvml, &previous); r != nvml::kSuccess)
            return report(s.host, r == nvml::kErrorNoPermission ? GREY_ERROR_PERMISSION_DENIED : GREY_ERROR_BACKEND,
                          nvml->describe(r, "nvmlDeviceGetPowerManagementLimit"));
        if (const auto r = nvml->device_set_power_management_limit(d.identity.nvml, static_cast<unsigned int>(limit_mw)); r != nvml::kSuccess) {
            const grey_status status = r == nvml::kErrorNoPermission    ? GREY_ERROR_PERMISSION_DENIED
                                       : r == nvml::kErrorInvalidArgument ? GREY_ERROR_INVALID_ARGUMENT
                                       : r == nvml::kErrorNotSupported    ? GREY_ERROR_UNSUPPORTED
                                                                          : GREY_ERROR_BACKEND;
            return report(s.host, status, nvml->describe(r, "nvmlDeviceSetPowerManagementLimit") + " (asked for " + std::to_string(limit_mw) + " mW)");
        }
        *out_previous_mw = previous;
        return GREY_OK;
    });
}

// --- Streams and events of the caller's: CUDA streams and timed events of the device's context.

// A stream's state on `rt`: its journal and the checksum slot its work sums into.
std::unique_ptr<grey_backend_stream> new_stream(DeviceRuntime& rt, CUstream stream, bool owns_stream) {
    auto made = std::make_unique<grey_backend_stream>(grey_backend_stream{&rt, stream, 0, std::make_shared<QuantJournal>(rt), owns_stream});
    made->checksum_slot = rt.pool().allocate(sizeof(uint64_t));
    return made;
}

grey_status cuda_stream_create(void* state, uint32_t device, grey_backend_stream** out) {
    CudaState& s = state_of(state);
    return guarded(s.host, [&] {
        DeviceRuntime& rt = runtime(s, device);
        auto stream = new_stream(rt, nullptr, true);
        try {
            stream->stream = rt.create_stream();
        } catch (...) {
            rt.pool().release(stream->checksum_slot);
            throw;
        }
        *out = stream.release();
        return GREY_OK;
    });
}

// The caller's CUstream of the device's primary context. 0, 1 and 2 are CUDA's NULL, legacy and
// per-thread default streams, which belong to whichever context is current: the device's, when used.
grey_status cuda_stream_wrap_native(void* state, uint32_t device, grey_memory_kind kind, uint64_t handle, grey_backend_stream** out) {
    CudaState& s = state_of(state);
    return guarded(s.host, [&] {
        if (kind != GREY_MEMORY_CUDA_DEVICE)
            return report(s.host, GREY_ERROR_INVALID_ARGUMENT,
                          "a CUDA device's streams are CUstreams (GREY_MEMORY_CUDA_DEVICE), not streams of memory kind " +
                              std::to_string(static_cast<int>(kind)));
        DeviceRuntime& rt = runtime(s, device);
        const auto native = reinterpret_cast<CUstream>(static_cast<uintptr_t>(handle));
        if (handle > 2) {
            CUcontext owner = nullptr;
            const CUresult r = rt.in_context([&](const Driver& cu) { return cu.cuStreamGetCtx(native, &owner); });
            if (r != CUDA_SUCCESS)
                return report(s.host, GREY_ERROR_INVALID_ARGUMENT,
                              "CUstream " + std::to_string(handle) + " cannot be wrapped: " + s.driver->describe(r, "cuStreamGetCtx"));
            if (owner != rt.context())
                return report(s.host, GREY_ERROR_INVALID_ARGUMENT,
                              "CUstream " + std::to_string(handle) + " belongs to another CUDA context than the primary context of CUDA device " +
                                  std::to_string(slot(s, device).identity.device) + ", which libgrey's memory and kernels use");
        }
        *out = new_stream(rt, native, false).release();
        return GREY_OK;
    });
}

void cuda_stream_destroy(void* state, grey_backend_stream* stream) {
    CudaState& s = state_of(state);
    std::unique_ptr<grey_backend_stream> owned(stream);
    // The work goes first: it may still use the checksum slot and the quantizations' memory. Its
    // failures were returned by the runtime's synchronize before this. A wrapped stream was synchronized
    // by the runtime when libgrey enqueued work on it, and must not be waited for otherwise.
    if (owned->owns_stream) {
        (void)guarded(s.host, [&] {
            const uint64_t end = owned->journal->next_job();
            owned->runtime->in_context([&](const Driver& cu) { return cu.cuStreamSynchronize(owned->stream); });
            owned->journal->check_before(end);
            return GREY_OK;
        });
    }
    owned->journal->release_memory();
    if (owned->owns_stream) owned->runtime->destroy_stream(owned->stream);
    owned->runtime->pool().release(owned->checksum_slot);
}

// A quantization's failure, kept by a stream, in the words of the synchronous call.
grey_status report_failure(const grey_backend_host* host, const std::optional<QuantFailure>& failure) {
    return failure.has_value() ? report(host, failure->status, failure->message) : GREY_OK;
}

grey_status cuda_stream_synchronize(void* state, grey_backend_stream* stream) {
    CudaState& s = state_of(state);
    return guarded(s.host, [&] {
        // Only the jobs enqueued before the wait are known to have run.
        const uint64_t end = stream->journal->next_job();
        stream->runtime->in_context([&](const Driver& cu) { cu.check(cu.cuStreamSynchronize(stream->stream), "cuStreamSynchronize"); });
        stream->journal->check_before(end);
        return report_failure(s.host, stream->journal->take_failure());
    });
}

// CUDA_ERROR_NOT_READY is the answer "not yet", not a failure.
grey_status cuda_stream_query(void* state, grey_backend_stream* stream, uint32_t* out_done) {
    CudaState& s = state_of(state);
    return guarded(s.host, [&] {
        const uint64_t end = stream->journal->next_job();
        const CUresult r = stream->runtime->in_context([&](const Driver& cu) { return cu.cuStreamQuery(stream->stream); });
        if (r != CUDA_ERROR_NOT_READY) s.driver->check(r, "cuStreamQuery");
        if (r == CUDA_SUCCESS) {
            stream->journal->check_before(end);
            if (const grey_status failed = report_failure(s.host, stream->journal->take_failure()); failed != GREY_OK) return failed;
        }
        *out_done = r == CUDA_SUCCESS ? 1 : 0;
        return GREY_OK;
    });
}

grey_status make_event(void* state, uint32_t device, bool timed, grey_backend_event** out) {
    CudaState& s = state_of(state);
    return guarded(s.host, [&] {
        DeviceRuntime& rt = runtime(s, device);
        auto event = std::make_unique<grey_backend_event>();
        event->runtime = &rt;
        event->event = rt.create_event(timed);
        *out = event.release();
        return GREY_OK;
    });
}

grey_status cuda_event_create(void* state, uint32_t device, grey_backend_event** out) { return make_event(state, device, true, out); }

grey_status cuda_event_create_untimed(void* state, uint32_t device, grey_backend_event** out) { return make_event(state, device, false, out); }

void cuda_event_destroy(void*, grey_backend_event* event) {
    std::unique_ptr<grey_backend_event> owned(event);
    owned->runtime->destroy_event(owned->event);
}

grey_status cuda_event_record(void* state, grey_backend_event* event, grey_backend_stream* stream) {
    CudaState& s = state_of(state);
    return guarded(s.host, [&] {
        // Recorded between two quantizations of the stream, so the event knows which it stands for.
        const uint64_t end = stream->journal->mark(
            [&] { event->runtime->in_context([&](const Driver& cu) { cu.check(cu.cuEventRecord(event->event, stream->stream), "cuEventRecord"); }); });
        event->recorded.set(stream->journal, end);
        return GREY_OK;
    });
}

grey_status cuda_stream_wait_event(void* state, grey_backend_stream* stream, grey_backend_event* event) {
    CudaState& s = state_of(state);
    return guarded(s.host, [&] {
        stream->runtime->in_context(
            [&](const Driver& cu) { cu.check(cu.cuStreamWaitEvent(stream->stream, event->event, 0), "cuStreamWaitEvent"); });
        return GREY_OK;
    });
}

// Once an event's record has completed: the failure of a quantization it stands for, which its stream keeps.
grey_status event_failure(const grey_backend_host* host, grey_backend_event& event) {
    const auto [journal, end] = event.recorded.get();
    if (journal == nullptr) return GREY_OK;
    journal->check_before(end);
    return report_failure(host, journal->failure_before(end));
}

grey_status cuda_event_synchronize(void* state, grey_backend_event* event) {
    CudaState& s = state_of(state);
    return guarded(s.host, [&] {
        event->runtime->in_context([&](const Driver& cu) { cu.check(cu.cuEventSynchronize(event->event), "cuEventSynchronize"); });
        return event_failure(s.host, *event);
    });
}

grey_status cuda_event_query(void* state, grey_backend_event* event, uint32_t* out_done) {
    CudaState& s = state_of(state);
    return guarded(s.host, [&] {
        const CUresult r = event->runtime->in_context([&](const Driver& cu) { return cu.cuEventQuery(event->event); });
        if (r != CUDA_ERROR_NOT_READY) s.driver->check(r, "cuEventQuery");
        if (r == CUDA_SUCCESS)
            if (const grey_status failed = event_failure(s.host, *event); failed != GREY_OK) return failed;
        *out_done = r == CUDA_SUCCESS ? 1 : 0;
        return GREY_OK;
    });
}

grey_status cuda_event_elapsed_ms(void* state, grey_backend_event* start, grey_backend_event* end, double* out_ms) {
    CudaState& s = state_of(state);
    return guarded(s.host, [&] {
        float ms = 0;
        start->runtime->in_context([&](const Driver& cu) {
            cu.check(cu.cuEventSynchronize(start->event), "cuEventSynchronize");
            cu.check(cu.cuEventSynchronize(end->event), "cuEventSynchronize");
            cu.check(cu.cuEventElapsedTime(&ms, start->event, end->event), "cuEventElapsedTime");
        });
        *out_ms = ms;
        return GREY_OK;
    });
}

grey_status cuda_buffer_write_async(void* state, grey_backend_stream* stream, grey_backend_buffer* b, uint64_t offset, const void* source,
                                    uint64_t size) {
    CudaState& s = state_of(state);
    return guarded(s.host, [&] {
        stream->runtime->write_on(stream->stream, b->pointer + offset, source, size);
        return GREY_OK;
    });
}

grey_status cuda_host_task_async(void* state, grey_backend_stream* stream, void (*task)(void*), void* data) {
    CudaState& s = state_of(state);
    return guarded(s.host, [&] {
        stream->runtime->host_task_on(stream->stream, task, data);
        return GREY_OK;
    });
}

grey_status cuda_buffer_read_async(void* state, grey_backend_stream* stream, grey_backend_buffer* b, uint64_t offset, void* destination,
                                   uint64_t size) {
    CudaState& s = state_of(state);
    return guarded(s.host, [&] {
        stream->runtime->read_on(stream->stream, destination, b->pointer + offset, size);
        return GREY_OK;
    });
}

grey_status cuda_buffer_copy_async(void* state, grey_backend_stream* stream, grey_backend_buffer* destination, uint64_t destination_offset,
                                   grey_backend_buffer* source, uint64_t source_offset, uint64_t size) {
    CudaState& s = state_of(state);
    return guarded(s.host, [&] {
        stream->runtime->copy_on(stream->stream, destination->pointer + destination_offset, source->pointer + source_offset, size);
        return GREY_OK;
    });
}

grey_status cuda_buffer_fill_async(void* state, grey_backend_stream* stream, grey_backend_buffer* b, uint64_t offset, uint8_t value,
                                   uint64_t size) {
    CudaState& s = state_of(state);
    return guarded(s.host, [&] {
        stream->runtime->fill_on(stream->stream, b->pointer + offset, value, size);
        return GREY_OK;
    });
}

grey_status cuda_buffer_checksum_async(void* state, grey_backend_stream* stream, grey_backend_buffer* b, uint64_t offset, uint64_t size,
                                       uint64_t* out) {
    CudaState& s = state_of(state);
    return guarded(s.host, [&] {
        stream->runtime->checksum_on(stream->stream, stream->checksum_slot, b->pointer + offset, size, out);
        return GREY_OK;
    });
}

grey_status cuda_stream_native_handle(void*, grey_backend_stream* stream, grey_memory_kind* out_kind, uint64_t* out_handle) {
    *out_kind = GREY_MEMORY_CUDA_DEVICE;
    *out_handle = reinterpret_cast<uintptr_t>(stream->stream);
    return GREY_OK;
}

// Enqueue-only: the journal launches the kernels on the stream; a NaN input surfaces at the next
// synchronize, query or event of the stream.
grey_status cuda_quantize_async(void* state, grey_backend_stream* stream, const grey_backend_quant_job* job) {
    CudaState& s = state_of(state);
    return guarded(s.host, [&] {
        stream->journal->enqueue_quantize(stream->stream, *job, address_of(job->plain), address_of(job->quantized));
        return GREY_OK;
    });
}

grey_status cuda_dequantize_async(void* state, grey_backend_stream* stream, const grey_backend_quant_job* job) {
    CudaState& s = state_of(state);
    return guarded(s.host, [&] {
        stream->journal->enqueue_dequantize(stream->stream, *job, address_of(job->quantized), address_of(job->plain));
        return GREY_OK;
    });
}

// Pinned through the device's context (cuMemAllocHost), so transfers from it run at full speed.
grey_status cuda_host_alloc(void* state, uint32_t device, uint64_t size, void** out) {
    CudaState& s = state_of(state);
    return guarded(s.host, [&] {
        void* memory = nullptr;
        runtime(s, device).in_context([&](const Driver& cu) { cu.check(cu.cuMemAllocHost(&memory, size), "cuMemAllocHost"); });
        try {
            std::lock_guard lock(s.host_memory_mutex);
            s.host_memory.emplace(memory, device);
        } catch (...) {
            (void)s.driver->cuMemFreeHost(memory);
            throw;
        }
        *out = memory;
        return GREY_OK;
    });
}

void cuda_host_free(void* state, void* memory) {
    CudaState& s = state_of(state);
    (void)guarded(s.host, [&] {
        uint32_t device = 0;
        {
            std::lock_guard lock(s.host_memory_mutex);
            const auto found = s.host_memory.find(memory);
            if (found == s.host_memory.end()) return GREY_OK;
            device = found->second;
            s.host_memory.erase(found);
        }
        runtime(s, device).in_context([&](const Driver& cu) { return cu.cuMemFreeHost(memory); });
        return GREY_OK;
    });
}

}  // namespace
}  // namespace grey::cuda

extern "C" GREY_BACKEND_EXPORT grey_status grey_backend_entry(uint32_t host_abi_version, grey_backend_vtable* out) {
    using namespace grey::cuda;
    if (host_abi_version != GREY_BACKEND_ABI_VERSION || out == nullptr || out->struct_size < GREY_BACKEND_VTABLE_MIN_SIZE)
        return GREY_ERROR_UNSUPPORTED;
    grey_backend_vtable vt{};
    vt.struct_size = sizeof vt;
    vt.abi_version = GREY_BACKEND_ABI_VERSION;
    vt.name = "cuda";
    vt.init = cuda_init;
    vt.shutdown = cuda_shutdown;
    vt.device_count = cuda_device_count;
    vt.device_spec = cuda_device_spec;
    vt.device_telemetry = cuda_device_telemetry;
    vt.buffer_alloc = cuda_buffer_alloc;
    vt.buffer_free = cuda_buffer_free;
    vt.buffer_write = cuda_buffer_write;
    vt.buffer_read = cuda_buffer_read;
    vt.buffer_copy = cuda_buffer_copy;
    vt.buffer_fill = cuda_buffer_fill;
    vt.memory_stats = cuda_memory_stats;
    vt.buffer_checksum = cuda_buffer_checksum;
    vt.quantize = cuda_quantize;
    vt.dequantize = cuda_dequantize;
    vt.buffer_map = cuda_buffer_map;
    vt.capabilities = GREY_BACKEND_CAP_QUANT_ERROR | GREY_BACKEND_CAP_KV_HADAMARD_K | GREY_BACKEND_CAP_KV_STORE_CHECKED;
    vt.power_limit_set = cuda_power_limit_set;
    // Streams, quantization enqueued on them included (each job flags into a slot of its stream's journal).
    vt.capabilities |= GREY_BACKEND_CAP_STREAMS;
    vt.stream_create = cuda_stream_create;
    vt.stream_destroy = cuda_stream_destroy;
    vt.stream_synchronize = cuda_stream_synchronize;
    vt.stream_query = cuda_stream_query;
    vt.event_create = cuda_event_create;
    vt.event_create_untimed = cuda_event_create_untimed;
    vt.event_destroy = cuda_event_destroy;
    vt.event_record = cuda_event_record;
    vt.stream_wait_event = cuda_stream_wait_event;
    vt.event_synchronize = cuda_event_synchronize;
    vt.event_query = cuda_event_query;
    vt.event_elapsed_ms = cuda_event_elapsed_ms;
    vt.buffer_write_async = cuda_buffer_write_async;
    vt.buffer_read_async = cuda_buffer_read_async;
    vt.buffer_copy_async = cuda_buffer_copy_async;
    vt.buffer_fill_async = cuda_buffer_fill_async;
    vt.buffer_checksum_async = cuda_buffer_checksum_async;
    vt.quantize_async = cuda_quantize_async;
    vt.dequantize_async = cuda_dequantize_async;
    vt.stream_native_handle = cuda_stream_native_handle;
    vt.stream_wrap_native = cuda_stream_wrap_native;
    vt.host_alloc = cuda_host_alloc;
    vt.codec_decode = cuda_codec_decode;
    vt.block_hashes = cuda_block_hashes;
    vt.codec_decode_async = cuda_codec_decode_async;
    vt.codec_decode_async_staged = cuda_codec_decode_async_staged;
    vt.host_task_async = cuda_host_task_async;
    vt.kv_store = cuda_kv_store;
    vt.kv_compress = cuda_kv_compress;
    vt.kv_attend = cuda_kv_attend;
    vt.kv_attend_async = cuda_kv_attend_async;
    vt.host_free = cuda_host_free;
    // An older loader has room for fewer slots: fill only what it has.
    const uint32_t room = out->struct_size < sizeof vt ? out->struct_size : static_cast<uint32_t>(sizeof vt);
    vt.struct_size = room;
    std::memcpy(out, &vt, room);
    return GREY_OK;
}
