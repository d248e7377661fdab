#include "core/backend.hpp"

#include "core/error.hpp"

#include <dlfcn.h>

namespace grey {

Backend::Backend(std::string name, std::string path, void* library, const grey_backend_vtable& vtable, void* state,
                 uint32_t device_count)
    : name_(std::move(name)), path_(std::move(path)), library_(library), vtable_(vtable), state_(state),
      device_count_(device_count) {}

Backend::~Backend() {
    if (vtable_.shutdown != nullptr) vtable_.shutdown(state_);
    if (library_ != nullptr) dlclose(library_);
}

bool is_known_status(grey_status status) noexcept {
    const int64_t raw = raw_enum(status);
    return raw >= GREY_OK && raw <= GREY_ERROR_CANCELLED;
}

void Backend::check(grey_status status, const char* operation) const {
    if (status == GREY_OK) return;
    std::string message = detail::last_error();
    if (message.empty()) message = "backend '" + name_ + "': " + operation + " failed (" + grey_status_string(status) + ")";
    if (!is_known_status(status)) {
        message = "backend '" + name_ + "': " + operation + " returned an unknown status " +
                  std::to_string(raw_enum(status));
        status = GREY_ERROR_BACKEND;
    }
    fail(status, message);
}

namespace {
[[noreturn]] void unsupported(const std::string& backend, const char* what) {
    fail(GREY_ERROR_UNSUPPORTED, "backend '" + backend + "' does not implement " + what);
}
}  // namespace

void Backend::device_spec(uint32_t device, grey_device_spec& spec, const grey_field_reasons& reasons) const {
    check(vtable_.device_spec(state_, device, &spec, &reasons), "device_spec");
}

void Backend::device_telemetry(uint32_t device, grey_device_telemetry& telemetry, const grey_field_reasons& reasons) const {
    if (vtable_.device_telemetry == nullptr) unsupported(name_, "telemetry");
    check(vtable_.device_telemetry(state_, device, &telemetry, &reasons), "device_telemetry");
}

grey_backend_buffer* Backend::buffer_alloc(uint32_t device, uint64_t size) const {
    if (vtable_.buffer_alloc == nullptr) unsupported(name_, "buffers");
    grey_backend_buffer* buffer = nullptr;
    check(vtable_.buffer_alloc(state_, device, size, &buffer), "buffer_alloc");
    if (buffer == nullptr) fail(GREY_ERROR_BACKEND, "backend '" + name_ + "': buffer_alloc succeeded but returned no buffer");
    return buffer;
}

void Backend::buffer_free(grey_backend_buffer* buffer) const noexcept {
    if (vtable_.buffer_free != nullptr && buffer != nullptr) vtable_.buffer_free(state_, buffer);
}

grey_backend_buffer* Backend::buffer_holding(uint32_t device, std::span<const std::byte> bytes) const {
    grey_backend_buffer* buffer = buffer_alloc(device, bytes.size());
    try {
        buffer_write(buffer, 0, bytes.data(), bytes.size());
    } catch (...) {
        buffer_free(buffer);
        throw;
    }
    return buffer;
}

void Backend::buffer_write(grey_backend_buffer* buffer, uint64_t offset, const void* source, uint64_t size) const {
    if (vtable_.buffer_write == nullptr) unsupported(name_, "buffer writes");
    check(vtable_.buffer_write(state_, buffer, offset, source, size), "buffer_write");
}

void Backend::buffer_read(grey_backend_buffer* buffer, uint64_t offset, void* destination, uint64_t size) const {
    if (vtable_.buffer_read == nullptr) unsupported(name_, "buffer reads");
    check(vtable_.buffer_read(state_, buffer, offset, destination, size), "buffer_read");
}

void Backend::buffer_copy(grey_backend_buffer* destination, uint64_t destination_offset, grey_backend_buffer* source,
                          uint64_t source_offset, uint64_t size) const {
    check(vtable_.buffer_copy(state_, destination, destination_offset, source, source_offset, size), "buffer_copy");
}

void Backend::buffer_fill(grey_backend_buffer* buffer, uint64_t offset, uint8_t value, uint64_t size) const {
    check(vtable_.buffer_fill(state_, buffer, offset, value, size), "buffer_fill");
}

uint64_t Backend::buffer_checksum(grey_backend_buffer* buffer, uint64_t offset, uint64_t size) const {
    uint64_t sum = 0;
    check(vtable_.buffer_checksum(state_, buffer, offset, size, &sum), "buffer_checksum");
    return sum;
}

void Backend::buffer_map(grey_backend_buffer* buffer, grey_buffer_mapping& mapping) const {
    if (vtable_.buffer_map == nullptr)
        fail(GREY_ERROR_UNSUPPORTED, "backend '" + name_ + "' cannot map buffers (it has no buffer_map slot): copy through grey_buffer_read instead");
    check(vtable_.buffer_map(state_, buffer, &mapping), "buffer_map");
}

void Backend::memory_stats(uint32_t device, grey_memory_stats& stats) const {
    if (vtable_.memory_stats == nullptr) unsupported(name_, "memory statistics");
    check(vtable_.memory_stats(state_, device, &stats), "memory_stats");
}

uint64_t Backend::power_limit_set(uint32_t device, uint64_t limit_mw) const {
    if (vtable_.power_limit_set == nullptr) unsupported(name_, "setting a power limit");
    uint64_t previous = 0;
    check(vtable_.power_limit_set(state_, device, limit_mw, &previous), "power_limit_set");
    return previous;
}

void Backend::quantize(const grey_backend_quant_job& job) const {
    if (vtable_.quantize == nullptr) unsupported(name_, "quantization");
    check(vtable_.quantize(state_, &job), "quantize");
}

void Backend::dequantize(const grey_backend_quant_job& job) const {
    if (vtable_.dequantize == nullptr) unsupported(name_, "dequantization");
    check(vtable_.dequantize(state_, &job), "dequantize");
}

bool Backend::has_streams() const noexcept {
    const auto& v = vtable_;
    return has(GREY_BACKEND_CAP_STREAMS) && v.stream_create && v.stream_destroy && v.stream_synchronize && v.stream_query &&
           v.event_create && v.event_destroy && v.event_record && v.stream_wait_event && v.event_synchronize && v.event_query &&
           v.event_elapsed_ms && v.buffer_write_async && v.buffer_read_async && v.buffer_copy_async && v.buffer_fill_async &&
           v.buffer_checksum_async;
}

bool Backend::has_quantize_async() const noexcept { return vtable_.quantize_async != nullptr && vtable_.dequantize_async != nullptr; }

grey_backend_stream* Backend::stream_create(uint32_t device) const {
    grey_backend_stream* stream = nullptr;
    check(vtable_.stream_create(state_, device, &stream), "stream_create");
    if (stream == nullptr) fail(GREY_ERROR_BACKEND, "backend '" + name_ + "': stream_create succeeded but returned no stream");
    return stream;
}

void Backend::stream_destroy(grey_backend_stream* stream) const noexcept { vtable_.stream_destroy(state_, stream); }

void Backend::stream_synchronize(grey_backend_stream* stream) const { check(vtable_.stream_synchronize(state_, stream), "stream_synchronize"); }

bool Backend::stream_query(grey_backend_stream* stream) const {
    uint32_t done = 0;
    check(vtable_.stream_query(state_, stream, &done), "stream_query");
    return done != 0;
}

grey_backend_event* Backend::made_event(EventCreate slot, uint32_t device, const char* what) const {
    grey_backend_event* event = nullptr;
    check(slot(state_, device, &event), what);
    if (event == nullptr) fail(GREY_ERROR_BACKEND, "backend '" + name_ + "': " + what + " succeeded but returned no event");
    return event;
}

grey_backend_event* Backend::event_create(uint32_t device) const { return made_event(vtable_.event_create, device, "event_create"); }

grey_backend_event* Backend::event_create_untimed(uint32_t device) const {
    if (vtable_.event_create_untimed == nullptr) return event_create(device);
    return made_event(vtable_.event_create_untimed, device, "event_create_untimed");
}

void Backend::event_destroy(grey_backend_event* event) const noexcept { vtable_.event_destroy(state_, event); }

void Backend::event_record(grey_backend_event* event, grey_backend_stream* stream) const {
    check(vtable_.event_record(state_, event, stream), "event_record");
}

void Backend::stream_wait_event(grey_backend_stream* stream, grey_backend_event* event) const {
    check(vtable_.stream_wait_event(state_, stream, event), "stream_wait_event");
}

void Backend::event_synchronize(grey_backend_event* event) const { check(vtable_.event_synchronize(state_, event), "event_synchronize"); }

bool Backend::event_query(grey_backend_event* event) const {
    uint32_t done = 0;
    check(vtable_.event_query(state_, event, &done), "event_query");
    return done != 0;
}

double Backend::event_elapsed_ms(grey_backend_event* start, grey_backend_event* end) const {
    double ms = 0;
    check(vtable_.event_elapsed_ms(state_, start, end, &ms), "event_elapsed_ms");
    return ms;
}

void Backend::buffer_write_async(grey_backend_stream* stream, grey_backend_buffer* buffer, uint64_t offset, const void* source,
                                 uint64_t size) const {
    check(vtable_.buffer_write_async(state_, stream, buffer, offset, source, size), "buffer_write_async");
}

void Backend::buffer_read_async(grey_backend_stream* stream, grey_backend_buffer* buffer, uint64_t offset, void* destination,
                                uint64_t size) const {
    check(vtable_.buffer_read_async(state_, stream, buffer, offset, destination, size), "buffer_read_async");
}

void Backend::buffer_copy_async(grey_backend_stream* stream, grey_backend_buffer* destination, uint64_t destination_offset,
                                grey_backend_buffer* source, uint64_t source_offset, uint64_t size) const {
    check(vtable_.buffer_copy_async(state_, stream, destination, destination_offset, source, source_offset, size), "buffer_copy_async");
}

void Backend::buffer_fill_async(grey_backend_stream* stream, grey_backend_buffer* buffer, uint64_t offset, uint8_t value,
                                uint64_t size) const {
    check(vtable_.buffer_fill_async(state_, stream, buffer, offset, value, size), "buffer_fill_async");
}

void Backend::buffer_checksum_async(grey_backend_stream* stream, grey_backend_buffer* buffer, uint64_t offset, uint64_t size,
                                    uint64_t* out_checksum) const {
    check(vtable_.buffer_checksum_async(state_, stream, buffer, offset, size, out_checksum), "buffer_checksum_async");
}

void Backend::quantize_async(grey_backend_stream* stream, const grey_backend_quant_job& job) const {
    check(vtable_.quantize_async(state_, stream, &job), "quantize_async");
}

void Backend::dequantize_async(grey_backend_stream* stream, const grey_backend_quant_job& job) const {
    check(vtable_.dequantize_async(state_, stream, &job), "dequantize_async");
}

bool Backend::stream_native_handle(grey_backend_stream* stream, grey_memory_kind& kind, uint64_t& handle) const {
    if (vtable_.stream_native_handle == nullptr) return false;
    check(vtable_.stream_native_handle(state_, stream, &kind, &handle), "stream_native_handle");
    return true;
}

grey_backend_stream* Backend::stream_wrap_native(uint32_t device, grey_memory_kind kind, uint64_t handle) const {
    if (vtable_.stream_wrap_native == nullptr) return nullptr;
    grey_backend_stream* stream = nullptr;
    check(vtable_.stream_wrap_native(state_, device, kind, handle, &stream), "stream_wrap_native");
    return stream;
}

void* Backend::host_alloc(uint32_t device, uint64_t size) const {
    if (vtable_.host_alloc == nullptr || vtable_.host_free == nullptr) return nullptr;
    void* memory = nullptr;
    check(vtable_.host_alloc(state_, device, size, &memory), "host_alloc");
    if (memory == nullptr) fail(GREY_ERROR_BACKEND, "backend '" + name_ + "': host_alloc succeeded but returned no memory");
    return memory;
}

void Backend::host_free(void* memory) const noexcept {
    if (vtable_.host_free != nullptr && memory != nullptr) vtable_.host_free(state_, memory);
}

bool Backend::has_kv() const noexcept {
    return vtable_.kv_store != nullptr && vtable_.kv_compress != nullptr && vtable_.kv_attend != nullptr;
}

void Backend::kv_store(const grey_backend_kv_store_job& job) const { check(vtable_.kv_store(state_, &job), "kv_store"); }

void Backend::kv_compress(const grey_backend_kv_compress_job& job) const { check(vtable_.kv_compress(state_, &job), "kv_compress"); }

void Backend::kv_attend(const grey_backend_kv_attend_job& job) const { check(vtable_.kv_attend(state_, &job), "kv_attend"); }

void Backend::kv_attend_async(grey_backend_stream* stream, const grey_backend_kv_attend_job& job, void* staging) const {
    check(vtable_.kv_attend_async(state_, stream, &job, staging), "kv_attend_async");
}

void Backend::codec_decode(std::span<grey_backend_buffer* const> containers, grey_backend_buffer* output,
                           std::span<const grey_backend_codec_block> blocks, std::span<uint32_t> faults) const {
    if (blocks.empty()) return;
    if (containers.size() != blocks.size() || faults.size() != blocks.size())
        fail(GREY_ERROR_INTERNAL, "codec_decode: a container and a fault slot for each block");
    check(vtable_.codec_decode(state_, containers.data(), output, blocks.data(), static_cast<uint32_t>(blocks.size()), faults.data()),
          "codec_decode");
}

void Backend::codec_decode_async(grey_backend_stream* stream, std::span<grey_backend_buffer* const> containers, grey_backend_buffer* output,
                                 std::span<const grey_backend_codec_block> blocks, grey_backend_buffer* faults, void* table) const {
    if (blocks.empty()) return;
    if (containers.size() != blocks.size()) fail(GREY_ERROR_INTERNAL, "codec_decode_async: a container for each block");
    const auto count = static_cast<uint32_t>(blocks.size());
    if (table != nullptr && vtable_.codec_decode_async_staged != nullptr) {
        check(vtable_.codec_decode_async_staged(state_, stream, containers.data(), output, blocks.data(), count, faults, table),
              "codec_decode_async_staged");
        return;
    }
    check(vtable_.codec_decode_async(state_, stream, containers.data(), output, blocks.data(), count, faults), "codec_decode_async");
}

void Backend::host_task_async(grey_backend_stream* stream, void (*task)(void*), void* data) const {
    check(vtable_.host_task_async(state_, stream, task, data), "host_task_async");
}

void Backend::block_hashes(grey_backend_buffer* buffer, uint64_t offset, uint64_t size, uint32_t block_size, uint64_t seed,
                           std::span<uint64_t> hashes) const {
    // The slot writes one hash per block into the table it is given: the table must hold exactly that.
    if (size == 0 || block_size == 0 || hashes.size() != (size + block_size - 1) / block_size)
        fail(GREY_ERROR_INTERNAL, "block_hashes: " + std::to_string(size) + " bytes in blocks of " + std::to_string(block_size) +
                                      " with room for " + std::to_string(hashes.size()) + " hash(es)");
    check(vtable_.block_hashes(state_, buffer, offset, size, block_size, seed, hashes.data()), "block_hashes");
}

}  // namespace grey
