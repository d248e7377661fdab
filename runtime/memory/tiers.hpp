// The memory tiers of one context: sealing, residency changes (deduplicated, compressed on the device or
// in host memory, and back), reads and maps of buffers in any residency, compaction, and the accounting
// of grey_memory_stats. One mutex serialises the tier state of every buffer of the context; an unsealed
// buffer never changes residency, so the ordinary buffer calls on it take no lock.
#pragma once

#include "core/error.hpp"
#include "grey.h"
#include "memory/block_store.hpp"
#include "memory/device_decode.hpp"
#include "memory/pinned_host.hpp"
#include "memory/residency.hpp"
#include "memory/working_set.hpp"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

struct grey_buffer;
struct grey_stream;

namespace grey {
class Logger;
struct Device;
namespace config {
class Config;
}
}  // namespace grey

namespace grey::memory {

class Tiers {
public:
    // `devices` is the context's device table, which outlives the tiers.
    Tiers(const std::vector<std::unique_ptr<Device>>& devices, const config::Config& config);
    ~Tiers();
    Tiers(const Tiers&) = delete;
    Tiers& operator=(const Tiers&) = delete;

    void add(grey_buffer& buffer);
    // Frees whatever the buffer's residency holds besides its raw memory, and its cached copy.
    void remove(grey_buffer& buffer) noexcept;

    void seal(grey_buffer& buffer);
    // Reads `out.size()` bytes at `offset` of a sealed buffer in any residency (the range is checked).
    void read(const grey_buffer& buffer, uint64_t offset, std::span<std::byte> out);
    // grey_buffer_compress: waits for a call using the buffer on another thread and for the work queued
    // on it (on any stream), but for no other work, then moves it.
    void change(grey_buffer& buffer, grey_residency residency, grey_codec codec);
    // Fills kind, address and vendor_device; counts the mapping.
    void map(grey_buffer& buffer, grey_map_access access, grey_buffer_mapping& mapping);
    // grey_buffer_map_async: argument checks are the caller's. Returns the failure the stream is to
    // report (the mapping then counts, with address 0, until its unmap); nullopt when mapped.
    std::optional<Error> map_async(grey_buffer& buffer, grey_map_access access, grey_buffer_mapping& mapping, grey_stream& stream);
    void unmap(grey_buffer& buffer);
    // The first failure found in the async decodes map_async queued on `stream` (a block the device's
    // decoder faulted on), forgotten once taken: fills seen complete are checked first (with
    // `stream_goes`, the fills queued on the stream are waited for, so none is left to report to it after
    // it is gone). grey_stream_synchronize and grey_stream_query keep it as the stream's.
    std::optional<Error> take_fill_failure(const grey_stream& stream, bool stream_goes);
    // Moves the device's sealed buffers as `policy` says, taking the lock for one buffer at a time (so a
    // pass over many buffers holds other calls up for one move at most; buffers created during the pass
    // wait for the next). Mapped buffers and buffers a call is using are skipped; so is a buffer with
    // queued work unless `wait_for_queued` (grey_memory_compact), which waits for that buffer's work (and
    // no other) first. Buffers last used at or after `used_before` are left alone (the background scan
    // passes the start of its interval).
    grey_compact_result compact(uint32_t device, const grey_compact_policy& policy, bool wait_for_queued,
                                std::chrono::steady_clock::time_point used_before = std::chrono::steady_clock::time_point::max());

    // Async work on buffers (memory/async_use.hpp): begin_use before an _async call's checks, end_use
    // once its work is enqueued on `enqueued_on` (nullptr: not enqueued, or run at enqueue). end_use
    // returns false when it could not record the use (the caller then waits for the stream).
    void begin_use(const std::vector<const grey_buffer*>& buffers);
    bool end_use(const std::vector<const grey_buffer*>& buffers, grey_backend_stream* enqueued_on) noexcept;
    // A stream is being destroyed. When its work has all completed (`finished`), the buffers' events on it
    // are freed now (they would otherwise hold backend events, and a new stream at the same address would
    // find them); otherwise they stay until the buffers go (work no event marked yet gets one first).
    // Its spare events are freed either way.
    void forget_stream(grey_backend_stream* stream, bool finished) noexcept;

    // The background scan (memory/background_scan.cpp): a thread that compacts every device with the
    // configured policy every memory.deduplication.scan_interval_ms, when that is above 0 and the policy
    // deduplicates or compresses. start_scan is called once by the context; stop_scan (idempotent)
    // stops and joins it before the buffers go.
    void start_scan(const Logger& logger);
    void stop_scan() noexcept;
    [[nodiscard]] bool scanning() const noexcept { return scan_thread_.joinable(); }
    // Passes the scan has completed (tests wait on it).
    [[nodiscard]] uint64_t scan_passes();
    // The tier members of grey_memory_stats (from logical_bytes on), for the device or one tenant on it.
    void stats(uint32_t device, const uint64_t* tenant, grey_memory_stats& stats);
    void info(const grey_buffer& buffer, grey_buffer_info& info);
    grey_backend_buffer* raw_handle(const grey_buffer& buffer, const char* what);

    // The policy grey_memory_compact takes from the configuration.
    [[nodiscard]] grey_compact_policy configured_policy() const noexcept;
    [[nodiscard]] uint32_t block_size() const noexcept { return block_size_; }
    // Replaces the block hash (tests force collisions with it); only while the context has no buffer.
    // The backends' block_hashes slot computes xxh3, so from then on every block is hashed on the host.
    void set_block_hash(BlockHash hash);
    // Hash matches of different bytes that deduplication kept apart, on `device`.
    uint64_t collisions(uint32_t device);

private:
    struct DeviceTiers {
        std::unique_ptr<SharedBlockStore> store;
        std::unique_ptr<WorkingSetCache> cache;
        std::shared_ptr<PinnedBudget> pinned;   // what host-tier containers hold pinned
        std::shared_ptr<TableStaging> staging;  // host memory of the decoder's job tables
        // The tiers' own stream of the device, made on the first synchronous map that queues work on one
        // (decode_host_container_locked) and destroyed with the tiers.
        grey_backend_stream* stream = nullptr;
    };
    DeviceTiers& at(uint32_t device);

    // Mapped, or with async work enqueuing, queued or filling its cached copy: never moved then.
    bool busy_locked(grey_buffer& buffer);
    // Waits, with the lock held, for the work queued on `buffer` (its events on every stream) and for an
    // async fill of its cached copy: what a move would otherwise free under them. Their failures stay
    // with their streams.
    void wait_for_queued_locked(grey_buffer& buffer);
    // The events that mark where async calls' work ends on their streams (end_use): one recorded a call,
    // held by each of the call's buffers (so a call on two buffers records one, not two), counted; one no
    // buffer holds goes to its stream's spares, to be recorded again by a later call there rather than
    // made anew, and is destroyed with the stream's records (forget_stream). let_go_locked drops one
    // holder, or gives back at once an event taken that no buffer came to hold.
    grey_backend_event* take_event_locked(uint32_t device, const grey_backend_stream* stream);
    void let_go_locked(grey_backend_event* event) noexcept;
    // An event taken for `buffer`'s device and recorded on `stream` (no holder yet); if the record fails
    // it goes back to the spares and the failure propagates.
    grey_backend_event* record_event_locked(const grey_buffer& buffer, grey_backend_stream* stream);
    // Records an event after the work queued on `buffer` that none marks yet (an unsealed buffer's, see
    // end_use), on every stream or on `only`.
    void mark_queued_locked(grey_buffer& buffer, const grey_backend_stream* only);
    // The checks of a change of residency that do not depend on the data (repeated after a wait).
    void check_change_locked(const grey_buffer& buffer, grey_residency residency) const;
    void scan_loop(const Logger& logger);
    void read_locked(const grey_buffer& buffer, uint64_t offset, std::span<std::byte> out);
    // Writes the buffer's whole contents into `target`, a device buffer of its size on its device.
    void materialize_locked(const grey_buffer& buffer, grey_backend_buffer* target);
    void change_locked(grey_buffer& buffer, grey_residency residency, grey_codec codec);
    // An async map's fill of `target` decoded on `stream` itself (codec_decode_async): taken when every
    // block of the buffer is decoded, copied or filled on the device and at least one is decoded, with
    // `source` keeping the fault bits (and any host bytes the stream reads) and checking them once the
    // fill has run. False (nothing queued) when the buffer needs another route.
    bool decode_on_stream_locked(const grey_buffer& buffer, grey_backend_buffer* target, grey_stream& stream, WorkingSetCache::FillSource& source);
    // A host-tier buffer's container in device memory of its own, with the jobs that decode it there
    // (planned when it was compressed), when the device decodes every block of it and has room; nullopt
    // otherwise (the host decodes). The container is copied there during the call, except `on_stream`
    // for a pinned one, and for a pageable one where the backend runs host tasks on streams and pinned
    // staging can be had (`staging`, of kContainerPiece bytes or fewer): the caller queues that copy on its
    // stream (copy_pending), from the staging in pieces where there is one.
    struct StagedContainer {
        decltype(WorkingSetCache::FillSource::container) memory;
        const ContainerJobs* jobs;  // the residency's
        bool copy_pending;
        std::shared_ptr<void> staging;
        uint64_t staging_size = 0;
    };
    // The largest piece a pageable container is copied to the device in on a stream.
    static constexpr uint64_t kContainerPiece = 4ull << 20;
    // Queues on `stream` the copy of `bytes` (host memory kept until the stream has passed it) into
    // `target` from its start, through `staging` (pinned, `staging_size` bytes): piece by piece, a host
    // task that copies the piece into the staging, then its DMA. The stream runs them in order, so one
    // staging serves every piece; it is reused by another map only once the stream has passed the last.
    // Returns what the tasks read (the pieces' descriptions), to keep with the fill.
    static std::shared_ptr<const void> queue_staged_copy(const Backend& backend, grey_backend_stream* stream, grey_backend_buffer* target,
                                                         std::span<const std::byte> bytes, void* staging, uint64_t staging_size);
    std::optional<StagedContainer> stage_host_container_locked(const grey_buffer& buffer, bool on_stream);
    // A synchronous map's decode of a host-tier container the device decodes whole, into `target`, with
    // one wait: the copy to the device, the decode (its job table staged in host memory too) and the
    // read-back of the fault bits are queued on the tiers' own stream of the device, which is then
    // synchronized once; a block the device gave up on is decoded on the host after. False (nothing done)
    // where the backend has no streams or no codec_decode_async, or the device no room.
    bool decode_host_container_locked(const grey_buffer& buffer, grey_backend_buffer* target);
    // Copy on write of a sealed buffer mapped for writing: raw memory of its own, unsealed.
    void copy_on_write_locked(grey_buffer& buffer, const char* call);
    // The block hashes of blocks [first, first + count) of a raw buffer, computed where it lies by the
    // backend's block_hashes slot (seeded with `seed`, its domain's, so that they equal the host's xxh3):
    // each block's, and those of its kConstantParts equal parts, which all hash alike in a block of one
    // repeated 8-byte value (zeros included), so that a block whose parts differ is known not to be
    // constant without reading it back. A buffer is hashed in ranges of kHashRangeBlocks blocks, which
    // bounds the tables (2 MiB of part hashes a range) whatever its size.
    struct DeviceHashes {
        uint64_t first = 0;  // the range's first block
        std::vector<uint64_t> blocks;
        std::vector<uint64_t> parts;
        uint64_t part_size = 0;
    };
    static constexpr uint32_t kConstantParts = 64;
    static constexpr uint64_t kHashRangeBlocks = 4096;
    // Whether `buffer`'s blocks can be hashed on its device: raw, on a backend with the block_hashes slot
    // and device copies (to store its blocks with), and the block hash not replaced.
    bool hashes_on_device_locked(const grey_buffer& buffer) const;
    // nullopt when the slot failed (the range is then hashed on the host).
    std::optional<DeviceHashes> device_hashes_locked(const grey_buffer& buffer, uint64_t seed, uint64_t first, uint64_t count) const;
    Residency deduplicated_locked(const grey_buffer& buffer);
    // Compresses the stored blocks a deduplicated buffer holds into `tier` with `codec`, each once; the
    // number of blocks it changed (blocks already held so, or that the codec does not make smaller, stay).
    uint64_t compress_blocks_locked(const grey_buffer& buffer, grey_residency tier, grey_codec codec);
    Residency compressed_locked(const grey_buffer& buffer, grey_residency tier, grey_codec codec);
    // Frees what `residency` holds (the raw memory of a raw buffer is `handle`).
    void release_locked(const grey_buffer& buffer, Residency& residency, grey_backend_buffer* handle) noexcept;
    grey_codec resolve(grey_codec codec) const;
    uint64_t physical_locked(uint32_t device);

    std::mutex mutex_;
    std::condition_variable use_ended_;  // with mutex_: a call ended its use of buffers (end_use)
    const std::vector<std::unique_ptr<Device>>& devices_;
    uint32_t block_size_;
    uint64_t cache_capacity_;
    uint64_t pinned_host_cap_;
    std::string algorithm_;
    bool deduplicate_;
    bool compress_;
    BlockHash hash_ = xxh3_block_hash;
    bool hash_on_device_ = true;  // false once hash_ is replaced
    // Failures that async decodes' checks found, for the streams that queued them (take_fill_failure);
    // before per_device_, whose caches run the checks.
    std::map<const grey_stream*, Error> fill_failures_;
    // Fills decoded on streams whose checks have not run, and failures in fill_failures_: while it is 0,
    // take_fill_failure has nothing to find and takes no lock (grey_stream_synchronize and
    // grey_stream_query call it every time). Changed under mutex_, read without it.
    std::atomic<uint64_t> unsettled_checks_{0};
    std::map<uint32_t, DeviceTiers> per_device_;
    std::set<grey_buffer*> buffers_;
    uint64_t next_sequence_ = 1;
    struct HeldEvent {
        uint32_t device;
        const grey_backend_stream* stream;  // nullptr once the stream is gone: destroyed when let go
        uint32_t holders;
    };
    std::map<grey_backend_event*, HeldEvent> held_events_;
    struct SpareEvent {
        grey_backend_event* event;
        uint32_t device;
    };
    std::map<const grey_backend_stream*, std::vector<SpareEvent>> spare_events_;
    static constexpr size_t kSpareEvents = 16;  // a stream's spares past this are destroyed
    int64_t scan_interval_ms_;

    // The background scan's stop signal and its thread (last, so that it stops before the rest goes).
    std::mutex scan_mutex_;
    std::condition_variable scan_wake_;
    bool scan_stop_ = false;    // guarded by scan_mutex_
    uint64_t scan_passes_ = 0;  // guarded by scan_mutex_
    std::thread scan_thread_;
};

}  // namespace grey::memory
