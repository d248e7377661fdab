// One source, several plugins: GREY_TEST_PLUGIN_<VARIANT> selects how this one behaves.
//  fake      two fake GPUs with host memory behind them, everything reported correctly, no streams;
//            a write of 13 bytes at offset 13 fails (work that fails when it runs, for the stream tests)
//  wrongabi  claims a backend ABI version this libgrey does not speak
//  noentry   exports no grey_backend_entry
//  failinit  passes every check, then fails in init with a message
//  nodriver  init says UNSUPPORTED, as a GPU backend does on a machine without its driver
//  nodevice  starts, then offers no device
//  badname   its vtable name differs from its file name
//  zeroquant the fake GPUs with quantization slots that write zeros and declare no capability, so the
//            runtime must measure the error itself (built into a directory of its own)
//  kvlegacy  the fake GPUs with KV-cache slots (the host backend's block operations) written as a plugin
//            built before grey_backend_kv_store_job's dtype and first_non_finite: F32 K/V only, checked by
//            the runtime, and no capability (built into a directory of its own)
#include "common/fields.hpp"
#include "common/quant_layout.h"
#if defined(GREY_TEST_PLUGIN_KVLEGACY)
#include "host/kv/host_kv.hpp"
#endif

#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

struct grey_backend_buffer {
    std::vector<unsigned char> bytes;
};

namespace {

const grey_backend_host* g_host = nullptr;  // test plugin only: one instance at a time

grey_status init(const grey_backend_host* host, void** out_state) {
    g_host = host;
#if defined(GREY_TEST_PLUGIN_FAILINIT)
    host->set_error(host->host_data, "the fake device refused to start");
    *out_state = nullptr;
    return GREY_ERROR_BACKEND;
#elif defined(GREY_TEST_PLUGIN_NODRIVER)
    host->set_error(host->host_data, "libfake-driver.so.1: cannot open shared object file");
    *out_state = nullptr;
    return GREY_ERROR_UNSUPPORTED;
#else
    host->log(host->host_data, GREY_LOG_DEBUG, "fake backend started");
    *out_state = nullptr;
    return GREY_OK;
#endif
}

void shutdown(void*) {}

grey_status device_count(void*, uint32_t* out) {
#if defined(GREY_TEST_PLUGIN_NODEVICE)
    *out = 0;
#else
    *out = 2;
#endif
    return GREY_OK;
}

grey_status device_spec(void*, uint32_t device, grey_device_spec* spec, const grey_field_reasons* reasons) {
    using namespace grey::backend;
    if (device >= 2) {
        g_host->set_error(g_host->host_data, "fake: no such device");
        return GREY_ERROR_INVALID_ARGUMENT;
    }
    spec->vendor = GREY_VENDOR_NVIDIA;
    spec->type = GREY_DEVICE_GPU;
    set_text(spec->name, device == 0 ? "Fake GPU 0" : "Fake GPU 1", GREY_SOURCE_TABLE);
    set_u64(spec->memory_total_bytes, (device + 1) * 1024ull * 1024 * 1024, GREY_SOURCE_TABLE);
    set_u64(spec->compute_units, 132, GREY_SOURCE_TABLE);
    mark(spec->power_limit_mw, GREY_FIELD_POWER_LIMIT_MW, GREY_FIELD_PERMISSION_DENIED, reasons, "fake: power limits need root");
    // A misbehaving backend: says UNSUPPORTED but leaves a value behind; the runtime must clear it.
    spec->pcie_width_max.value = 16;
    spec->pcie_width_max.state = GREY_FIELD_UNSUPPORTED;
    return GREY_OK;
}

grey_status buffer_alloc(void*, uint32_t, uint64_t size, grey_backend_buffer** out) {
    if (size > (1ull << 30)) {
        g_host->set_error(g_host->host_data, ("fake: out of device memory: requested " + std::to_string(size) +
                                              " bytes, 1073741824 available").c_str());
        return GREY_ERROR_OUT_OF_MEMORY;
    }
    auto buffer = std::make_unique<grey_backend_buffer>();
    buffer->bytes.resize(size);
    *out = buffer.release();
    return GREY_OK;
}

void buffer_free(void*, grey_backend_buffer* buffer) { std::unique_ptr<grey_backend_buffer>(buffer).reset(); }

// The failing write the stream tests need (work that fails when it runs): 13 bytes at offset 13.
constexpr uint64_t kRejectedWrite = 13;

grey_status buffer_write(void*, grey_backend_buffer* b, uint64_t offset, const void* src, uint64_t size) {
    if (offset == kRejectedWrite && size == kRejectedWrite) {
        g_host->set_error(g_host->host_data, "fake: the device rejected a write of 13 bytes at offset 13");
        return GREY_ERROR_BACKEND;
    }
    std::memcpy(b->bytes.data() + offset, src, size);
    return GREY_OK;
}

grey_status buffer_read(void*, grey_backend_buffer* b, uint64_t offset, void* dst, uint64_t size) {
    std::memcpy(dst, b->bytes.data() + offset, size);
    return GREY_OK;
}

#if defined(GREY_TEST_PLUGIN_ZEROQUANT)
// "Quantizes" to all-zero bytes (every format decodes them to zeros) after checking that the job carries
// the layout the runtime computed and ranges that match it.
grey_status zero_fill(const grey_backend_quant_job* job, const grey_backend_memory& out, uint64_t expected) {
    if (job->layout == nullptr || job->layout->struct_size < sizeof(grey_quant_layout) || out.buffer == nullptr || out.size != expected ||
        job->quantized.size != job->layout->bytes) {
        g_host->set_error(g_host->host_data, "zeroquant: the job does not match its layout");
        return GREY_ERROR_INTERNAL;
    }
    std::memset(out.buffer->bytes.data() + out.offset, 0, out.size);
    return GREY_OK;
}

grey_status quantize(void*, const grey_backend_quant_job* job) { return zero_fill(job, job->quantized, job->layout->bytes); }
grey_status dequantize(void*, const grey_backend_quant_job* job) { return zero_fill(job, job->plain, job->plain.size); }
#endif

#if defined(GREY_TEST_PLUGIN_KVLEGACY)
const float* floats_of(const grey_backend_memory& m) { return reinterpret_cast<const float*>(m.buffer->bytes.data() + m.offset); }

// Reads no member after `slots`: F32 K/V, finite, as the runtime gives a plugin without the capability.
grey_status kv_store(void*, const grey_backend_kv_store_job* job) {
    std::vector<uint8_t*> blocks(job->tokens);
    for (uint32_t i = 0; i < job->tokens; ++i) blocks[i] = job->blocks[i]->bytes.data();
    grey::host::kv_store(*job->layout, job->layer_first, job->layer_count, floats_of(job->keys), floats_of(job->values), blocks,
                         {job->slots, job->tokens});
    return GREY_OK;
}

grey_status kv_compress(void*, const grey_backend_kv_compress_job* job) {
    for (uint32_t i = 0; i < job->count; ++i) grey::host::kv_compress(*job->layout, job->sources[i]->bytes.data(), job->destinations[i]->bytes.data());
    return GREY_OK;
}

grey_status kv_attend(void*, const grey_backend_kv_attend_job* job) {
    if (job->batch == 0) return GREY_OK;
    const uint64_t count = job->table_offsets[job->batch];
    std::vector<const uint8_t*> blocks(count);
    for (uint64_t i = 0; i < count; ++i) blocks[i] = job->blocks[i]->bytes.data();
    const grey::host::KvAttendBlocks tables{blocks, {job->quantized, count}, {job->table_offsets, job->batch + size_t{1}}, {job->first, job->batch},
                                            {job->last, job->batch}};
    grey::host::kv_attend(*job->layout, tables, job->layer, job->query_heads, job->scale, floats_of(job->queries),
                          reinterpret_cast<float*>(job->output.buffer->bytes.data() + job->output.offset));
    return GREY_OK;
}
#endif

}  // namespace

#if !defined(GREY_TEST_PLUGIN_NOENTRY)
extern "C" GREY_BACKEND_EXPORT grey_status grey_backend_entry(uint32_t, grey_backend_vtable* out) {
    grey_backend_vtable vt{};
    vt.struct_size = sizeof vt;
#if defined(GREY_TEST_PLUGIN_WRONGABI)
    static_assert(GREY_BACKEND_ABI_VERSION != 42, "the wrong version must differ from the loader's");
    vt.abi_version = 42;
#else
    vt.abi_version = GREY_BACKEND_ABI_VERSION;
#endif
#if defined(GREY_TEST_PLUGIN_BADNAME)
    vt.name = "somethingelse";
#else
    vt.name = GREY_TEST_PLUGIN_NAME;
#endif
    vt.init = init;
    vt.shutdown = shutdown;
    vt.device_count = device_count;
    vt.device_spec = device_spec;
    vt.buffer_alloc = buffer_alloc;
    vt.buffer_free = buffer_free;
    vt.buffer_write = buffer_write;
    vt.buffer_read = buffer_read;
    // No telemetry, copy or fill: the runtime must cope (UNSUPPORTED, or staging through the host).
#if defined(GREY_TEST_PLUGIN_ZEROQUANT)
    vt.quantize = quantize;
    vt.dequantize = dequantize;
#endif
#if defined(GREY_TEST_PLUGIN_KVLEGACY)
    vt.kv_store = kv_store;
    vt.kv_compress = kv_compress;
    vt.kv_attend = kv_attend;
#endif
    *out = vt;
    return GREY_OK;
}
#else
extern "C" GREY_BACKEND_EXPORT int grey_backend_something_else(void) { return 0; }
#endif
