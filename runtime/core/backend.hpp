// A started backend: its vtable, its state, and (for plugins) the shared object it came from. Every
// call through the vtable is checked here, so the rest of the runtime deals only in grey::Error.
#pragma once

#include "grey_backend.h"

#include <cstddef>
#include <span>
#include <string>

namespace grey {

class Backend {
public:
    // Takes ownership of `library` (a dlopen handle, or nullptr for the built-in host backend) and of
    // the started `state`.
    Backend(std::string name, std::string path, void* library, const grey_backend_vtable& vtable, void* state,
            uint32_t device_count);
    ~Backend();
    Backend(const Backend&) = delete;
    Backend& operator=(const Backend&) = delete;

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] const std::string& path() const noexcept { return path_; }
    [[nodiscard]] uint32_t device_count() const noexcept { return device_count_; }

    void device_spec(uint32_t device, grey_device_spec& spec, const grey_field_reasons& reasons) const;
    void device_telemetry(uint32_t device, grey_device_telemetry& telemetry, const grey_field_reasons& reasons) const;

    [[nodiscard]] grey_backend_buffer* buffer_alloc(uint32_t device, uint64_t size) const;
    void buffer_free(grey_backend_buffer* buffer) const noexcept;
    // A new allocation holding `bytes` (buffer_alloc, then buffer_write); freed again when the write fails.
    [[nodiscard]] grey_backend_buffer* buffer_holding(uint32_t device, std::span<const std::byte> bytes) const;
    void buffer_write(grey_backend_buffer* buffer, uint64_t offset, const void* source, uint64_t size) const;
    void buffer_read(grey_backend_buffer* buffer, uint64_t offset, void* destination, uint64_t size) const;
    [[nodiscard]] bool has_buffer_copy() const noexcept { return vtable_.buffer_copy != nullptr; }
    [[nodiscard]] bool has_buffer_map() const noexcept { return vtable_.buffer_map != nullptr; }
    void buffer_copy(grey_backend_buffer* destination, uint64_t destination_offset, grey_backend_buffer* source,
                     uint64_t source_offset, uint64_t size) const;
    [[nodiscard]] bool has_buffer_fill() const noexcept { return vtable_.buffer_fill != nullptr; }
    void buffer_fill(grey_backend_buffer* buffer, uint64_t offset, uint8_t value, uint64_t size) const;
    [[nodiscard]] bool has_buffer_checksum() const noexcept { return vtable_.buffer_checksum != nullptr; }
    [[nodiscard]] uint64_t buffer_checksum(grey_backend_buffer* buffer, uint64_t offset, uint64_t size) const;
    // Fills kind, address and vendor_device of `mapping`; UNSUPPORTED when the backend has no buffer_map slot.
    void buffer_map(grey_backend_buffer* buffer, grey_buffer_mapping& mapping) const;
    // Fills every member after struct_size; UNSUPPORTED when the backend keeps no statistics.
    void memory_stats(uint32_t device, grey_memory_stats& stats) const;
    // Sets the device's power limit and returns the one it replaced; UNSUPPORTED without the slot.
    [[nodiscard]] uint64_t power_limit_set(uint32_t device, uint64_t limit_mw) const;
    [[nodiscard]] bool has_quantization() const noexcept { return vtable_.quantize != nullptr && vtable_.dequantize != nullptr; }
    // GREY_BACKEND_CAP_* bits the backend declared.
    [[nodiscard]] bool has(uint64_t capability) const noexcept { return (vtable_.capabilities & capability) == capability; }
    void quantize(const grey_backend_quant_job& job) const;
    void dequantize(const grey_backend_quant_job& job) const;

    // Streams and events (GREY_BACKEND_CAP_STREAMS with every slot set); without them the runtime runs
    // async work when it is enqueued (core/stream.hpp).
    [[nodiscard]] bool has_streams() const noexcept;
    // quantize_async and dequantize_async are optional beside streams: without them the runtime waits for
    // the stream and runs the synchronous slot, in order.
    [[nodiscard]] bool has_quantize_async() const noexcept;
    [[nodiscard]] grey_backend_stream* stream_create(uint32_t device) const;
    void stream_destroy(grey_backend_stream* stream) const noexcept;
    // Throws the failure the stream kept, with the backend's message.
    void stream_synchronize(grey_backend_stream* stream) const;
    [[nodiscard]] bool stream_query(grey_backend_stream* stream) const;
    [[nodiscard]] grey_backend_event* event_create(uint32_t device) const;
    // An event never timed (event_create_untimed; event_create where the backend lacks it).
    [[nodiscard]] grey_backend_event* event_create_untimed(uint32_t device) const;
    void event_destroy(grey_backend_event* event) const noexcept;
    void event_record(grey_backend_event* event, grey_backend_stream* stream) const;
    void stream_wait_event(grey_backend_stream* stream, grey_backend_event* event) const;
    void event_synchronize(grey_backend_event* event) const;
    [[nodiscard]] bool event_query(grey_backend_event* event) const;
    [[nodiscard]] double event_elapsed_ms(grey_backend_event* start, grey_backend_event* end) const;
    void buffer_write_async(grey_backend_stream* stream, grey_backend_buffer* buffer, uint64_t offset, const void* source, uint64_t size) const;
    void buffer_read_async(grey_backend_stream* stream, grey_backend_buffer* buffer, uint64_t offset, void* destination, uint64_t size) const;
    void buffer_copy_async(grey_backend_stream* stream, grey_backend_buffer* destination, uint64_t destination_offset,
                           grey_backend_buffer* source, uint64_t source_offset, uint64_t size) const;
    void buffer_fill_async(grey_backend_stream* stream, grey_backend_buffer* buffer, uint64_t offset, uint8_t value, uint64_t size) const;
    void buffer_checksum_async(grey_backend_stream* stream, grey_backend_buffer* buffer, uint64_t offset, uint64_t size,
                               uint64_t* out_checksum) const;
    void quantize_async(grey_backend_stream* stream, const grey_backend_quant_job& job) const;
    void dequantize_async(grey_backend_stream* stream, const grey_backend_quant_job& job) const;
    // The stream's vendor handle; false when the backend has no stream_native_handle slot.
    [[nodiscard]] bool stream_native_handle(grey_backend_stream* stream, grey_memory_kind& kind, uint64_t& handle) const;
    // A stream over the caller's vendor stream; nullptr when the backend has no stream_wrap_native slot.
    [[nodiscard]] grey_backend_stream* stream_wrap_native(uint32_t device, grey_memory_kind kind, uint64_t handle) const;
    // Pinned host memory; nullptr when the backend has no host_alloc slot.
    [[nodiscard]] void* host_alloc(uint32_t device, uint64_t size) const;
    void host_free(void* memory) const noexcept;
    // The KV cache's block operations: all three slots, or the backend holds no KV cache.
    [[nodiscard]] bool has_kv() const noexcept;
    void kv_store(const grey_backend_kv_store_job& job) const;
    void kv_compress(const grey_backend_kv_compress_job& job) const;
    void kv_attend(const grey_backend_kv_attend_job& job) const;
    // kv_attend enqueued on `stream` (kv_attend_async), its tables staged in `staging` (host memory of
    // GREY_BACKEND_KV_ATTEND_STAGING_BYTES, kept by the caller until the stream is past the work).
    [[nodiscard]] bool has_kv_attend_async() const noexcept { return vtable_.kv_attend_async != nullptr; }
    void kv_attend_async(grey_backend_stream* stream, const grey_backend_kv_attend_job& job, void* staging) const;
    // Container blocks decoded on the device (codec_decode): block i's payload in containers[i], its bytes
    // into `output`; faults[i] gets its fault bits.
    [[nodiscard]] bool has_codec_decode() const noexcept { return vtable_.codec_decode != nullptr; }
    void codec_decode(std::span<grey_backend_buffer* const> containers, grey_backend_buffer* output, std::span<const grey_backend_codec_block> blocks,
                      std::span<uint32_t> faults) const;
    // The same enqueued on `stream` (codec_decode_async): the fault bits reach `faults` (a buffer of
    // GREY_BACKEND_CODEC_DECODE_ASYNC_BYTES(count) the caller keeps until the stream is past the work).
    // With `table` (host memory of GREY_BACKEND_CODEC_TABLE_BYTES(count), kept by the caller as long as
    // `faults`) and the codec_decode_async_staged slot, the backend stages its job table there and queues
    // its upload on the stream instead of making it during the call.
    [[nodiscard]] bool has_codec_decode_async() const noexcept { return vtable_.codec_decode_async != nullptr; }
    [[nodiscard]] bool has_codec_decode_async_staged() const noexcept { return vtable_.codec_decode_async_staged != nullptr; }
    void codec_decode_async(grey_backend_stream* stream, std::span<grey_backend_buffer* const> containers, grey_backend_buffer* output,
                            std::span<const grey_backend_codec_block> blocks, grey_backend_buffer* faults, void* table = nullptr) const;
    // `task(data)` run on a host thread when `stream` reaches it, in order with its work (host_task_async).
    [[nodiscard]] bool has_host_task_async() const noexcept { return vtable_.host_task_async != nullptr; }
    void host_task_async(grey_backend_stream* stream, void (*task)(void*), void* data) const;
    // The deduplication hashes of a range's blocks, on the device (block_hashes).
    [[nodiscard]] bool has_block_hashes() const noexcept { return vtable_.block_hashes != nullptr; }
    void block_hashes(grey_backend_buffer* buffer, uint64_t offset, uint64_t size, uint32_t block_size, uint64_t seed,
                      std::span<uint64_t> hashes) const;

private:
    // Turns a backend's non-OK status into grey::Error, keeping the message it gave through set_error.
    void check(grey_status status, const char* operation) const;
    // An event from one of the two creating slots, checked the same way.
    using EventCreate = grey_status (*)(void*, uint32_t, grey_backend_event**);
    [[nodiscard]] grey_backend_event* made_event(EventCreate slot, uint32_t device, const char* what) const;

    std::string name_;
    std::string path_;
    void* library_;
    grey_backend_vtable vtable_;
    void* state_;
    uint32_t device_count_;
};

// Status values a backend may return; anything else is reported as GREY_ERROR_BACKEND.
bool is_known_status(grey_status status) noexcept;

}  // namespace grey
