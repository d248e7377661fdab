#include "memory/tiers.hpp"

#include "codec/constant_block.hpp"
#include "codec/container.hpp"
#include "config/config.hpp"
#include "core/backend.hpp"
#include "core/context.hpp"
#include "core/error.hpp"
#include "core/stream.hpp"
#include "memory/buffer.hpp"
#include "memory/device_decode.hpp"
#include "memory/host_container.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <functional>
#include <string>

namespace grey::memory {
namespace {

// Constant blocks are found per 8 bytes, so that one repeated value of any width up to 8 (a byte, an
// fp16, an fp32, an fp64) costs no storage.
constexpr uint32_t kConstantWidth = 8;
constexpr uint64_t kStagingBytes = 8ull << 20;

// Whether `bytes` (one block) is a block of zeros or of one repeated 8-byte value.
std::optional<codec::CodecId> constant_of(std::span<const std::byte> bytes) {
    // constant_kind takes whole elements; a ragged end shorter than one is constant when all zero.
    const bool short_zeros = bytes.size() < kConstantWidth && std::all_of(bytes.begin(), bytes.end(), [](std::byte x) { return x == std::byte{0}; });
    return short_zeros ? std::optional(codec::CodecId::zero) : codec::constant_kind(bytes, kConstantWidth);
}

// A new device buffer holding `size` bytes of `source` at `offset`, copied on the device.
grey_backend_buffer* device_copy(const Backend& backend, uint32_t device, grey_backend_buffer* source, uint64_t offset, uint64_t size) {
    grey_backend_buffer* copy = backend.buffer_alloc(device, size);
    try {
        backend.buffer_copy(copy, 0, source, offset, size);
    } catch (...) {
        backend.buffer_free(copy);
        throw;
    }
    return copy;
}

std::string residency_text(grey_residency r) {
    const char* name = grey_residency_name(r);
    return name != nullptr ? name : "residency " + std::to_string(raw_enum(r));
}

codec::CodecId codec_id(grey_codec codec) {
    switch (codec) {
        case GREY_CODEC_LZ4: return codec::CodecId::lz4;
        case GREY_CODEC_ZSTD: return codec::CodecId::zstd;
        case GREY_CODEC_FLOAT: return codec::CodecId::floats;
        case GREY_CODEC_BITMASK: return codec::CodecId::bitmask;
        default: fail(GREY_ERROR_INTERNAL, "codec_id: unresolved codec");
    }
}

// How a buffer's bytes are encoded with the resolved `codec` in blocks of `block_size`.
codec::EncodeOptions encode_options(const grey_buffer& buffer, grey_codec codec, uint32_t block_size) {
    codec::EncodeOptions options;
    options.codec = codec_id(codec);
    options.dtype = buffer.traits.dtype;
    options.block_size = block_size;
    return options;
}

// Writes `size` bytes of `value` repeated with period 8 (a fill block) or zeros into `target`.
void write_constant(const Backend& backend, grey_backend_buffer* target, uint64_t offset, uint64_t size, const BlockRef& ref) {
    if (ref.kind == BlockRef::Kind::zero && backend.has_buffer_fill()) {
        backend.buffer_fill(target, offset, 0, size);
        return;
    }
    std::vector<std::byte> block(size);
    if (ref.kind == BlockRef::Kind::fill)
        for (uint64_t i = 0; i < size; ++i) block[i] = reinterpret_cast<const std::byte*>(&ref.fill_value)[i % kConstantWidth];
    backend.buffer_write(target, offset, block.data(), size);
}

// Whether a deduplicated residency holds a stored block that is held more than once (by another buffer,
// or twice by this one): such a buffer is compressed by compressing its stored blocks in place, since a
// container of its own would add its bytes to the blocks the others keep.
bool holds_a_block_twice(const Residency& r) {
    return r.kind == GREY_RESIDENCY_DEDUPLICATED && std::any_of(r.blocks.begin(), r.blocks.end(), [](const BlockRef& ref) {
               return ref.kind == BlockRef::Kind::shared && ref.block->references > 1;
           });
}

// Names stored block `index` of a deduplicated buffer in a failure to read or move it (a corrupted
// container above all): which block of the buffer, where it lies, how it is held and by how many.
[[noreturn]] void fail_in_stored_block(const Error& e, const Residency& r, uint64_t buffer_size, uint64_t index) {
    const SharedBlock& block = *r.blocks[index].block;
    std::string held = residency_text(block.tier);
    if (block.tier != GREY_RESIDENCY_RAW) held += std::string(" with ") + grey_codec_name(block.codec);
    fail(e.status(), "stored block " + std::to_string(index) + " of " + std::to_string(r.blocks.size()) + " of the buffer (bytes " +
                         std::to_string(index * r.block_size) + ".." + std::to_string(std::min<uint64_t>((index + 1) * r.block_size, buffer_size)) +
                         ", " + held + ", held " + std::to_string(block.references) + " time(s)): " + e.what());
}

// Whether the bytes of a buffer in residency `r` can be put together without leaving the device: raw
// stored blocks by device copies, containers in device memory by the device's decoder.
bool assembles_on_device(const Backend& backend, const Residency& r) {
    if (!backend.has_buffer_copy()) return false;
    if (r.kind == GREY_RESIDENCY_COMPRESSED_DEVICE) return backend.has_codec_decode();
    if (r.kind != GREY_RESIDENCY_DEDUPLICATED) return false;
    return std::all_of(r.blocks.begin(), r.blocks.end(), [&](const BlockRef& ref) {
        return ref.kind != BlockRef::Kind::shared || ref.block->tier == GREY_RESIDENCY_RAW ||
               (ref.block->tier == GREY_RESIDENCY_COMPRESSED_DEVICE && backend.has_codec_decode());
    });
}

// The stored blocks of `r` held compressed in device memory in a codec the device decodes, decoded into
// `target` (at their places in the buffer) in one call; true for each block that came out with its
// checksum. The rest (and any block the device gave up on) are left to the caller's host path, which
// decodes them there and names a damaged one.
std::vector<bool> decode_stored_blocks_on_device(const Backend& backend, const Residency& r, grey_backend_buffer* target) {
    std::vector<bool> decoded(r.blocks.size(), false);
    if (!backend.has_codec_decode()) return decoded;
    std::vector<grey_backend_buffer*> containers;
    std::vector<grey_backend_codec_block> blocks;
    std::vector<uint64_t> indices;
    for (uint64_t b = 0; b < r.blocks.size(); ++b) {
        const BlockRef& ref = r.blocks[b];
        if (ref.kind != BlockRef::Kind::shared || ref.block->tier != GREY_RESIDENCY_COMPRESSED_DEVICE || !ref.block->device_job) continue;
        grey_backend_codec_block block = as_backend_block(*ref.block->device_job);
        block.output = b * r.block_size;
        containers.push_back(ref.block->storage);
        blocks.push_back(block);
        indices.push_back(b);
    }
    std::vector<uint32_t> faults(blocks.size(), 0);
    backend.codec_decode(containers, target, blocks, faults);
    for (size_t j = 0; j < indices.size(); ++j) decoded[indices[j]] = faults[j] == common::kFaultNone;
    return decoded;
}

// Device memory of `size` bytes for an async map to assemble a buffer in; empty when there is no room
// (the map then works through host memory).
decltype(WorkingSetCache::FillSource::device) device_scratch(const Backend& backend, uint32_t device, uint64_t size) {
    decltype(WorkingSetCache::FillSource::device) out(nullptr, [&backend](grey_backend_buffer* b) { backend.buffer_free(b); });
    try {
        out.reset(backend.buffer_alloc(device, size));
    } catch (const Error& e) {
        if (e.status() != GREY_ERROR_OUT_OF_MEMORY) throw;
    }
    return out;
}

// What the device decoder's fault bits (common/codec_decode.hpp) say, in words.
std::string fault_text(uint32_t faults) {
    static constexpr std::pair<uint32_t, const char*> kNames[] = {
        {common::kFaultLayout, "a header field or sizes that do not add up"}, {common::kFaultTable, "an rANS table that is not a distribution"},
        {common::kFaultLane, "an rANS lane that overruns"},                  {common::kFaultBitmask, "a mask that contradicts its count"},
        {common::kFaultChecksum, "decoded bytes that fail the checksum"},    {common::kFaultCodec, "a codec no device decoder has"}};
    std::string out;
    for (const auto& [bit, name] : kNames)
        if ((faults & bit) != 0) out += (out.empty() ? "" : ", ") + std::string(name);
    return out.empty() ? "fault bits " + std::to_string(faults) : out;
}

}  // namespace

Tiers::Tiers(const std::vector<std::unique_ptr<Device>>& devices, const config::Config& config)
    : devices_(devices),
      block_size_(static_cast<uint32_t>(config.get_int("memory.deduplication.block_size_kb") * 1024)),
      cache_capacity_(static_cast<uint64_t>(config.get_int("memory.cache.working_set_mb")) << 20),
      pinned_host_cap_(static_cast<uint64_t>(config.get_int("memory.compression.pinned_host_mb")) << 20),
      algorithm_(config.get_string("memory.compression.algorithm")),
      deduplicate_(config.get_bool("memory.deduplication.enabled")),
      compress_(config.get_bool("memory.compression.enabled")),
      scan_interval_ms_(config.get_int("memory.deduplication.scan_interval_ms")) {}

Tiers::~Tiers() {
    stop_scan();
    // Every buffer is gone by now, and with it every hold; spares (and, defensively, anything still held)
    // are freed while the backends are still there.
    for (const auto& [event, held] : held_events_) devices_.at(held.device)->backend->event_destroy(event);
    for (const auto& [stream, spares] : spare_events_)
        for (const SpareEvent& spare : spares) devices_.at(spare.device)->backend->event_destroy(spare.event);
    // The tiers' own streams: every synchronous map waited for its work, so none is left on them.
    for (const auto& [device, tiers] : per_device_)
        if (tiers.stream != nullptr) devices_.at(device)->backend->stream_destroy(tiers.stream);
}

grey_backend_event* Tiers::take_event_locked(uint32_t device, const grey_backend_stream* stream) {
    const Device& dev = *devices_.at(device);
    SpareEvent taken{nullptr, device};
    if (const auto spares = spare_events_.find(stream); spares != spare_events_.end() && !spares->second.empty()) {
        taken = spares->second.back();
        spares->second.pop_back();
    } else {
        taken.event = dev.backend->event_create_untimed(dev.index_in_backend);
    }
    try {
        held_events_.emplace(taken.event, HeldEvent{device, stream, 0});
    } catch (...) {
        dev.backend->event_destroy(taken.event);
        throw;
    }
    return taken.event;
}

void Tiers::let_go_locked(grey_backend_event* event) noexcept {
    const auto held = held_events_.find(event);
    // Held: one holder fewer. Never held (taken for a record no buffer came to keep): it goes at once.
    if (held == held_events_.end() || (held->second.holders > 0 && --held->second.holders > 0)) return;
    const HeldEvent was = held->second;
    held_events_.erase(held);
    if (was.stream != nullptr) {
        try {
            std::vector<SpareEvent>& spares = spare_events_[was.stream];
            if (spares.size() < kSpareEvents) {
                spares.push_back({event, was.device});
                return;
            }
        } catch (...) {  // no room to keep it: destroyed instead
        }
    }
    devices_.at(was.device)->backend->event_destroy(event);
}

Tiers::DeviceTiers& Tiers::at(uint32_t device) {
    auto found = per_device_.find(device);
    if (found != per_device_.end()) return found->second;
    const Device& dev = *devices_.at(device);
    DeviceTiers tiers;
    tiers.store = std::make_unique<SharedBlockStore>(*dev.backend, dev.index_in_backend, hash_);
    tiers.cache = std::make_unique<WorkingSetCache>(*dev.backend, dev.index_in_backend, cache_capacity_);
    tiers.pinned = std::make_shared<PinnedBudget>(pinned_host_cap_);
    tiers.staging = std::make_shared<TableStaging>(*dev.backend, dev.index_in_backend, tiers.pinned);
    return per_device_.emplace(device, std::move(tiers)).first->second;
}

grey_compact_policy Tiers::configured_policy() const noexcept {
    grey_compact_policy policy = GREY_COMPACT_POLICY_INIT;
    policy.deduplicate = deduplicate_ ? 1u : 0u;
    policy.compress = compress_ && algorithm_ != "none" ? 1u : 0u;
    return policy;
}

void Tiers::set_block_hash(BlockHash hash) {
    std::lock_guard lock(mutex_);
    if (!buffers_.empty()) fail(GREY_ERROR_INVALID_ARGUMENT, "the block hash can only be replaced while the context has no buffer");
    hash_ = std::move(hash);
    hash_on_device_ = false;
}

uint64_t Tiers::collisions(uint32_t device) {
    std::lock_guard lock(mutex_);
    return at(device).store->collisions();
}

void Tiers::add(grey_buffer& buffer) {
    std::lock_guard lock(mutex_);
    buffers_.insert(&buffer);
    buffer.sequence = next_sequence_++;
}

void Tiers::remove(grey_buffer& buffer) noexcept {
    std::lock_guard lock(mutex_);
    if (buffers_.erase(&buffer) == 0) return;
    if (const auto found = per_device_.find(buffer.device); found != per_device_.end()) found->second.cache->drop(&buffer);
    release_locked(buffer, buffer.residency, nullptr);  // the raw memory is freed with the buffer
    for (const auto& [stream, event] : buffer.in_flight) let_go_locked(event);
    buffer.in_flight.clear();
}

void Tiers::seal(grey_buffer& buffer) {
    std::lock_guard lock(mutex_);
    if (buffer.sealed.load()) return;
    if (buffer.map_count.load() != 0)
        fail(GREY_ERROR_INVALID_ARGUMENT, "grey_buffer_seal: the buffer is mapped " + std::to_string(buffer.map_count.load()) +
                                              " time(s), and a mapping may still write it; unmap it first");
    // From here on the buffer may move: its queued work needs the events an unsealed buffer goes without.
    mark_queued_locked(buffer, nullptr);
    buffer.sealed.store(true);
}

grey_codec Tiers::resolve(grey_codec codec) const {
    switch (raw_enum(codec)) {
        case GREY_CODEC_DEFAULT:
            if (algorithm_ == "lz4") return GREY_CODEC_LZ4;
            if (algorithm_ == "zstd") return GREY_CODEC_ZSTD;
            fail(GREY_ERROR_INVALID_ARGUMENT, "GREY_CODEC_DEFAULT: memory.compression.algorithm is \"" + algorithm_ +
                                                  "\", which names no codec; name one (lz4, zstd, float, bitmask)");
        case GREY_CODEC_LZ4:
        case GREY_CODEC_ZSTD:
        case GREY_CODEC_FLOAT:
        case GREY_CODEC_BITMASK: return codec;
        default: fail(GREY_ERROR_INVALID_ARGUMENT, "codec " + std::to_string(raw_enum(codec)) + " is not a grey_codec value");
    }
}

namespace {
void touch(const grey_buffer& buffer) { const_cast<grey_buffer&>(buffer).last_use = std::chrono::steady_clock::now(); }
}  // namespace

grey_backend_buffer* Tiers::raw_handle(const grey_buffer& buffer, const char* what) {
    std::lock_guard lock(mutex_);
    touch(buffer);
    if (buffer.residency.kind == GREY_RESIDENCY_RAW) return buffer.handle;
    // Sealed buffers move in the background (the scan) as well as by explicit calls, so a call that works
    // on device memory brings the buffer back to raw memory of its own rather than failing for where the
    // scan happened to leave it; the scan may compact it again once nothing uses it. The caller holds the
    // buffer against the scan (begin_use) from before this call until its work is queued.
    if (buffer.map_count.load() != 0)
        fail(GREY_ERROR_INVALID_ARGUMENT, std::string(what) + ": the buffer is " + residency_text(buffer.residency.kind) + " and mapped " +
                                              std::to_string(buffer.map_count.load()) +
                                              " time(s); it is brought back to raw memory for this call only when unmapped");
    change_locked(const_cast<grey_buffer&>(buffer), GREY_RESIDENCY_RAW, GREY_CODEC_DEFAULT);
    return buffer.handle;
}

void Tiers::read(const grey_buffer& buffer, uint64_t offset, std::span<std::byte> out) {
    std::lock_guard lock(mutex_);
    touch(buffer);
    read_locked(buffer, offset, out);
}

void Tiers::read_locked(const grey_buffer& buffer, uint64_t offset, std::span<std::byte> out) {
    const Residency& r = buffer.residency;
    if (out.empty()) return;
    switch (r.kind) {
        case GREY_RESIDENCY_RAW: buffer.backend->buffer_read(buffer.handle, offset, out.data(), out.size()); return;
        case GREY_RESIDENCY_DEDUPLICATED: {
            const uint64_t end = offset + out.size();
            for (uint64_t b = offset / r.block_size; b * r.block_size < end; ++b) {
                const uint64_t start = b * r.block_size;
                const uint64_t lo = std::max(offset, start), hi = std::min(end, std::min(start + r.block_size, buffer.size));
                const std::span<std::byte> part = out.subspan(lo - offset, hi - lo);
                const BlockRef& ref = r.blocks[b];
                if (ref.kind == BlockRef::Kind::shared) {
                    try {
                        at(buffer.device).store->read(*ref.block, lo - start, part);
                    } catch (const Error& e) {
                        fail_in_stored_block(e, r, buffer.size, b);
                    }
                } else
                    for (uint64_t i = lo; i < hi; ++i)
                        part[i - lo] = ref.kind == BlockRef::Kind::zero
                                           ? std::byte{0}
                                           : reinterpret_cast<const std::byte*>(&ref.fill_value)[(i - start) % kConstantWidth];
            }
            return;
        }
        case GREY_RESIDENCY_COMPRESSED_DEVICE:
            // Only the header, the table and the touched blocks' payloads cross to the host.
            read_device_container(*buffer.backend, r.device_container, r.container_size, offset, out, r.device_plan.get());
            return;
        case GREY_RESIDENCY_COMPRESSED_HOST: {
            const std::span<const std::byte> container = r.host_container->bytes();
            codec::decode_range(container, codec::read_container_info(container), offset, out);
            return;
        }
        default: fail(GREY_ERROR_INTERNAL, "a buffer in an unknown residency");
    }
}

void Tiers::materialize_locked(const grey_buffer& buffer, grey_backend_buffer* target) {
    const Backend& backend = *buffer.backend;
    const Residency& r = buffer.residency;
    switch (r.kind) {
        case GREY_RESIDENCY_DEDUPLICATED: {
            const std::vector<bool> decoded = decode_stored_blocks_on_device(backend, r, target);
            for (uint64_t b = 0; b < r.blocks.size(); ++b) {
                const uint64_t start = b * r.block_size, size = std::min<uint64_t>(r.block_size, buffer.size - start);
                const BlockRef& ref = r.blocks[b];
                if (ref.kind != BlockRef::Kind::shared) {
                    write_constant(backend, target, start, size, ref);
                } else if (ref.block->tier == GREY_RESIDENCY_RAW && backend.has_buffer_copy()) {
                    backend.buffer_copy(target, start, ref.block->storage, 0, size);
                } else if (decoded[b]) {
                    continue;
                } else {
                    // Through host memory: a compressed block is decoded (and checked) there.
                    std::vector<std::byte> staged(size);
                    read_locked(buffer, start, staged);
                    backend.buffer_write(target, start, staged.data(), size);
                }
            }
            return;
        }
        case GREY_RESIDENCY_COMPRESSED_DEVICE:
            // On the device where the backend decodes, through host memory otherwise. The plan made when the
            // buffer was compressed serves, as for a host-tier container: nothing is read back before the decode.
            decode_device_container(backend, r.device_container, r.container_size, target, 0, buffer.size, r.device_plan.get());
            return;
        case GREY_RESIDENCY_COMPRESSED_HOST: {
            // Where the device decodes every block, only the compressed bytes cross to it.
            // The plan made when the buffer was compressed serves: nothing is read back before the decode.
            // Queued on one stream and waited for once where the backend has streams; otherwise the copy
            // and the decode are each a synchronous call.
            if (decode_host_container_locked(buffer, target)) return;
            if (std::optional<StagedContainer> staged = stage_host_container_locked(buffer, false)) {
                decode_planned_container(backend, staged->memory.get(), r.host_container->bytes(), *r.host_container->info(), *staged->jobs, target, 0);
                return;
            }
            // Otherwise decoded in one pass on the host, every block checked.
            std::vector<std::byte> contents(buffer.size);
            read_locked(buffer, 0, contents);
            backend.buffer_write(target, 0, contents.data(), contents.size());
            return;
        }
        default: {
            // Raw: by a device copy, or through host memory in bounded steps.
            if (backend.has_buffer_copy()) {
                backend.buffer_copy(target, 0, buffer.handle, 0, buffer.size);
                return;
            }
            std::vector<std::byte> staged(std::min(buffer.size, kStagingBytes));
            for (uint64_t done = 0; done < buffer.size;) {
                const uint64_t step = std::min<uint64_t>(staged.size(), buffer.size - done);
                read_locked(buffer, done, std::span(staged.data(), step));
                backend.buffer_write(target, done, staged.data(), step);
                done += step;
            }
        }
    }
}

bool Tiers::hashes_on_device_locked(const grey_buffer& buffer) const {
    const Backend& backend = *buffer.backend;
    // Blocks hashed on the device are stored by device copies, so both slots are needed; a replaced hash
    // (tests) is the host's alone, and the slot's xxh3 would not find what it stored.
    return hash_on_device_ && buffer.residency.kind == GREY_RESIDENCY_RAW && buffer.handle != nullptr && buffer.size > 0 &&
           backend.has_block_hashes() && backend.has_buffer_copy() && block_size_ % (kConstantParts * kConstantWidth) == 0;
}

std::optional<Tiers::DeviceHashes> Tiers::device_hashes_locked(const grey_buffer& buffer, uint64_t seed, uint64_t first, uint64_t count) const {
    const Backend& backend = *buffer.backend;
    const uint64_t offset = first * block_size_, size = std::min<uint64_t>(count * block_size_, buffer.size - offset);
    DeviceHashes out;
    out.first = first;
    out.part_size = block_size_ / kConstantParts;
    out.blocks.resize((size + block_size_ - 1) / block_size_);
    out.parts.resize((size + out.part_size - 1) / out.part_size);
    try {
        backend.block_hashes(buffer.handle, offset, size, block_size_, seed, out.blocks);
        // The parts' hashes need no particular seed: they are only compared with each other.
        backend.block_hashes(buffer.handle, offset, size, static_cast<uint32_t>(out.part_size), seed, out.parts);
    } catch (const Error&) {
        // The slot only saves work: the host path computes the same hashes from the same bytes and shares
        // exactly the same blocks, so a slot that fails (no room for its table, a launch the driver
        // refused) costs time, not the compaction. A device that is really broken fails the host path's
        // reads too, with their own message, so nothing is hidden by going on without the slot.
        return std::nullopt;
    }
    return out;
}

Residency Tiers::deduplicated_locked(const grey_buffer& buffer) {
    SharedBlockStore& store = *at(buffer.device).store;
    const Backend& backend = *buffer.backend;
    const uint32_t device_in_backend = devices_.at(buffer.device)->index_in_backend;
    const uint64_t domain = buffer.traits.sharing_domain;
    Residency result;
    result.kind = GREY_RESIDENCY_DEDUPLICATED;
    result.block_size = block_size_;
    const uint64_t count = (buffer.size + block_size_ - 1) / block_size_;
    result.blocks.reserve(count);
    // A raw buffer on a device with the block_hashes slot is hashed where it lies, range by range, and
    // only the blocks that need their bytes on the host cross to it: those that may be constant, and
    // those whose hash matches a stored block (for the byte comparison). Stored blocks are then device
    // copies. After a failure of the slot the rest of the buffer is hashed on the host.
    bool on_device = hashes_on_device_locked(buffer);
    std::optional<DeviceHashes> device;
    // A compressed source is decoded once, whole (each read fetches and checks its whole container);
    // any other is read block by block (on the device path, only where needed).
    const bool whole = buffer.residency.kind == GREY_RESIDENCY_COMPRESSED_DEVICE || buffer.residency.kind == GREY_RESIDENCY_COMPRESSED_HOST;
    std::vector<std::byte> staged(whole ? buffer.size : std::min<uint64_t>(block_size_, buffer.size));
    if (whole) read_locked(buffer, 0, staged);
    try {
        for (uint64_t b = 0; b < count; ++b) {
            const uint64_t start = b * block_size_, size = std::min<uint64_t>(block_size_, buffer.size - start);
            const std::span<std::byte> bytes(staged.data() + (whole ? start : 0), size);
            if (on_device && (!device || b >= device->first + device->blocks.size())) {
                device = device_hashes_locked(buffer, store.seed(domain), b, std::min(kHashRangeBlocks, count - b));
                on_device = device.has_value();
            }
            // The host path tests every block; the device path only those that may be constant (whose
            // parts all hash alike, or that are too short to tell), the rest cannot be.
            bool may_be_constant = true;
            if (device) {
                const uint64_t full = size / device->part_size;
                const auto parts = std::span(device->parts).subspan((b - device->first) * kConstantParts, full);
                may_be_constant = full < 2 || std::all_of(parts.begin(), parts.end(), [&](uint64_t h) { return h == parts.front(); });
            }
            bool have_bytes = whole;
            if (may_be_constant && !have_bytes) {
                read_locked(buffer, start, bytes);
                have_bytes = true;
            }
            BlockRef ref;
            const auto constant = may_be_constant ? constant_of(bytes) : std::nullopt;
            if (constant == codec::CodecId::zero) {
                ref.kind = BlockRef::Kind::zero;
            } else if (constant == codec::CodecId::fill) {
                ref.kind = BlockRef::Kind::fill;
                std::memcpy(&ref.fill_value, bytes.data(), kConstantWidth);
            } else if (device) {
                ref.kind = BlockRef::Kind::shared;
                ref.block = store.acquire_hashed(
                    domain, device->blocks[b - device->first], static_cast<uint32_t>(size),
                    [&]() -> std::span<const std::byte> {
                        if (!have_bytes) read_locked(buffer, start, bytes);
                        have_bytes = true;
                        return bytes;
                    },
                    [&] { return device_copy(backend, device_in_backend, buffer.handle, start, size); });
            } else {
                ref.kind = BlockRef::Kind::shared;
                ref.block = store.acquire(domain, bytes);
            }
            result.blocks.push_back(ref);
        }
    } catch (...) {
        release_locked(buffer, result, nullptr);
        throw;
    }
    return result;
}

Residency Tiers::compressed_locked(const grey_buffer& buffer, grey_residency tier, grey_codec codec) {
    const grey_codec resolved = resolve(codec);
    std::vector<std::byte> contents(buffer.size);
    read_locked(buffer, 0, contents);
    const codec::EncodeOptions options = encode_options(buffer, resolved, block_size_);
    Residency result;
    result.kind = tier;
    result.codec = resolved;
    std::vector<std::byte> container = codec::encode(contents, options);
    result.container_size = container.size();
    const Device& dev = *devices_.at(buffer.device);
    if (tier == GREY_RESIDENCY_COMPRESSED_DEVICE) {
        // The host has the header and the table now: kept, so that no map or read fetches them back.
        result.device_plan = plan_device_container(container, buffer.size);
        result.device_container = dev.backend->buffer_holding(dev.index_in_backend, container);
    } else
        result.host_container = HostContainer::hold(*dev.backend, dev.index_in_backend, std::move(container), buffer.size, at(buffer.device).pinned);
    return result;
}

void Tiers::release_locked(const grey_buffer& buffer, Residency& residency, grey_backend_buffer* handle) noexcept {
    switch (residency.kind) {
        case GREY_RESIDENCY_RAW:
            if (handle != nullptr) buffer.backend->buffer_free(handle);
            break;
        case GREY_RESIDENCY_DEDUPLICATED: {
            const auto found = per_device_.find(buffer.device);
            for (BlockRef& ref : residency.blocks)
                if (ref.kind == BlockRef::Kind::shared && found != per_device_.end()) found->second.store->release(ref.block);
            break;
        }
        case GREY_RESIDENCY_COMPRESSED_DEVICE:
            if (residency.device_container != nullptr) buffer.backend->buffer_free(residency.device_container);
            break;
        default: break;
    }
    residency = Residency{};
}

void Tiers::change(grey_buffer& buffer, grey_residency residency, grey_codec codec) {
    std::unique_lock lock(mutex_);
    // Bad arguments fail at once; a call using the buffer on another thread (its raw memory, without the
    // lock) ends first, then the work it queued, and the checks run again on what the wait left.
    check_change_locked(buffer, residency);
    use_ended_.wait(lock, [&] { return buffer.enqueuing == 0; });
    wait_for_queued_locked(buffer);
    change_locked(buffer, residency, codec);
}

void Tiers::check_change_locked(const grey_buffer& buffer, grey_residency target) const {
    const int64_t raw_target = raw_enum(target);
    if (raw_target < GREY_RESIDENCY_RAW || raw_target > GREY_RESIDENCY_COMPRESSED_HOST)
        fail(GREY_ERROR_INVALID_ARGUMENT, "grey_buffer_compress: residency " + std::to_string(raw_target) + " is not a grey_residency value");
    if (!buffer.sealed.load())
        fail(GREY_ERROR_INVALID_ARGUMENT, "grey_buffer_compress: the buffer is not sealed; seal it (grey_buffer_seal) so that it cannot change");
    if (buffer.map_count.load() != 0)
        fail(GREY_ERROR_INVALID_ARGUMENT, "grey_buffer_compress: the buffer is mapped " + std::to_string(buffer.map_count.load()) +
                                              " time(s); a mapped buffer is never moved, unmap it first");
}

void Tiers::change_locked(grey_buffer& buffer, grey_residency target, grey_codec codec) {
    check_change_locked(buffer, target);
    if (target == GREY_RESIDENCY_RAW) {
        if (buffer.residency.kind == GREY_RESIDENCY_RAW) return;
        const Device& dev = *devices_.at(buffer.device);
        grey_backend_buffer* handle = dev.backend->buffer_alloc(dev.index_in_backend, buffer.size);
        try {
            materialize_locked(buffer, handle);
        } catch (...) {
            dev.backend->buffer_free(handle);
            throw;
        }
        at(buffer.device).cache->drop(&buffer);
        release_locked(buffer, buffer.residency, nullptr);
        buffer.handle = handle;
        return;
    }
    if ((target == GREY_RESIDENCY_COMPRESSED_DEVICE || target == GREY_RESIDENCY_COMPRESSED_HOST) && holds_a_block_twice(buffer.residency)) {
        (void)compress_blocks_locked(buffer, target, codec);
        return;
    }
    Residency next = target == GREY_RESIDENCY_DEDUPLICATED ? deduplicated_locked(buffer) : compressed_locked(buffer, target, codec);
    grey_backend_buffer* old_handle = buffer.handle;
    release_locked(buffer, buffer.residency, old_handle);
    buffer.handle = nullptr;
    buffer.residency = std::move(next);
}

uint64_t Tiers::compress_blocks_locked(const grey_buffer& buffer, grey_residency tier, grey_codec codec) {
    const grey_codec resolved = resolve(codec);
    const Residency& r = buffer.residency;
    const codec::EncodeOptions options = encode_options(buffer, resolved, r.block_size);  // one container block per stored block
    SharedBlockStore& store = *at(buffer.device).store;
    // A stored block changed in place frees its old storage, which an async map's decode queued on a
    // stream may still read (any buffer's that shares it): those fills end first.
    at(buffer.device).cache->settle_all(true);
    std::set<const SharedBlock*> seen;  // a block this buffer holds twice is compressed once
    uint64_t changed = 0;
    for (uint64_t b = 0; b < r.blocks.size(); ++b) {
        const BlockRef& ref = r.blocks[b];
        if (ref.kind != BlockRef::Kind::shared || !seen.insert(ref.block).second) continue;
        try {
            if (store.compress(*ref.block, tier, resolved, options)) ++changed;
        } catch (const Error& e) {
            if (e.status() != GREY_ERROR_CORRUPT) throw;
            fail_in_stored_block(e, r, buffer.size, b);
        }
    }
    return changed;
}

void Tiers::copy_on_write_locked(grey_buffer& buffer, const char* call) {
    // The buffer gets memory of its own, the blocks it shared stay with the others.
    if (buffer.map_count.load() != 0)
        fail(GREY_ERROR_INVALID_ARGUMENT, std::string(call) + ": the sealed buffer is mapped for reading " +
                                              std::to_string(buffer.map_count.load()) + " time(s); unmap it before mapping it for writing");
    change_locked(buffer, GREY_RESIDENCY_RAW, GREY_CODEC_DEFAULT);
    buffer.sealed.store(false);
}

void Tiers::map(grey_buffer& buffer, grey_map_access access, grey_buffer_mapping& mapping) {
    std::lock_guard lock(mutex_);
    touch(buffer);
    if (access == GREY_MAP_WRITE && buffer.sealed.load()) copy_on_write_locked(buffer, "grey_buffer_map_access");
    if (buffer.residency.kind == GREY_RESIDENCY_RAW) {
        buffer.backend->buffer_map(buffer.handle, mapping);
    } else {
        WorkingSetCache& cache = *at(buffer.device).cache;
        grey_backend_buffer* copy = cache.pin(&buffer, buffer.size, [&](grey_backend_buffer* target) { materialize_locked(buffer, target); });
        try {
            // A copy an async map is still filling on a stream is ready once that stream gets there.
            if (grey_backend_event* ready = cache.pending_event(&buffer)) {
                buffer.backend->event_synchronize(ready);
                // A block that fill decoded wrong: this map gets no wrong bytes (the stream reports it too).
                if (std::optional<Error> failure = cache.fill_failure(&buffer)) throw *failure;
            }
            buffer.backend->buffer_map(copy, mapping);
        } catch (...) {
            cache.unpin(&buffer);
            throw;
        }
    }
    buffer.map_count.fetch_add(1);
}

std::optional<Tiers::StagedContainer> Tiers::stage_host_container_locked(const grey_buffer& buffer, bool on_stream) {
    const Backend& backend = *buffer.backend;
    const Residency& r = buffer.residency;
    if (r.kind != GREY_RESIDENCY_COMPRESSED_HOST || !backend.has_codec_decode()) return std::nullopt;
    const HostContainer& container = *r.host_container;
    if (!container.jobs()) return std::nullopt;  // planned when compressed: some block only the host decodes
    // From the backend's pool: a repeat of the same size is served again without a driver call.
    auto memory = device_scratch(backend, devices_.at(buffer.device)->index_in_backend, container.size());
    if (!memory) return std::nullopt;
    // A pinned container is copied by a DMA the caller queues on the map's stream, ahead of the decode
    // there. A pageable one, which the driver would copy through a staging buffer of its own during the
    // call, is copied on the stream too where host tasks can be queued there: in pieces through pinned
    // staging of the tiers', each put there by a host task when the stream reaches it (the staging
    // counts against memory.compression.pinned_host_mb, within the part of it containers leave to
    // staging: half of that at most, for one piece). Otherwise (no stream, no such slot, or no pinned
    // staging to be had) the copy is made now; the memory is new, so no queued work can be reading it.
    if (on_stream && container.pinned()) return StagedContainer{std::move(memory), &*container.jobs(), true, nullptr, 0};
    if (on_stream && backend.has_host_task_async()) {
        DeviceTiers& tiers = at(buffer.device);
        const uint64_t piece = std::min({kContainerPiece, std::bit_floor(tiers.pinned->staging_reserve() / 2), container.size()});
        if (piece > 0)
            if (std::shared_ptr<void> staging = tiers.staging->take_pinned(piece))
                return StagedContainer{std::move(memory), &*container.jobs(), true, std::move(staging), piece};
    }
    backend.buffer_write(memory.get(), 0, container.bytes().data(), container.size());
    return StagedContainer{std::move(memory), &*container.jobs(), false, nullptr, 0};
}

namespace {

// One piece of a staged copy: what a host task on the stream copies into the staging.
struct CopyPiece {
    void* to;
    const std::byte* from;
    uint64_t size;
};

void copy_piece(void* data) {
    const auto& piece = *static_cast<const CopyPiece*>(data);
    std::memcpy(piece.to, piece.from, piece.size);
}

}  // namespace

std::shared_ptr<const void> Tiers::queue_staged_copy(const Backend& backend, grey_backend_stream* stream, grey_backend_buffer* target,
                                                     std::span<const std::byte> bytes, void* staging, uint64_t staging_size) {
    auto pieces = std::make_shared<std::vector<CopyPiece>>();
    pieces->reserve((bytes.size() + staging_size - 1) / staging_size);
    for (uint64_t done = 0; done < bytes.size(); done += staging_size)
        pieces->push_back({staging, bytes.data() + done, std::min<uint64_t>(staging_size, bytes.size() - done)});
    uint64_t offset = 0;
    try {
        for (CopyPiece& piece : *pieces) {
            backend.host_task_async(stream, copy_piece, &piece);
            backend.buffer_write_async(stream, target, offset, piece.to, piece.size);
            offset += piece.size;
        }
    } catch (...) {
        // Tasks may be queued that read `pieces`: it stays until the stream has run them.
        try {
            backend.stream_synchronize(stream);
        } catch (...) {
        }
        throw;
    }
    return pieces;
}

bool Tiers::decode_host_container_locked(const grey_buffer& buffer, grey_backend_buffer* target) {
    const Backend& backend = *buffer.backend;
    const Residency& r = buffer.residency;
    if (r.kind != GREY_RESIDENCY_COMPRESSED_HOST || !backend.has_streams() || !backend.has_codec_decode_async()) return false;
    const HostContainer& container = *r.host_container;
    if (!container.jobs()) return false;  // planned when compressed: some block only the host decodes
    const ContainerJobs& jobs = *container.jobs();
    const size_t count = jobs.blocks.size();
    const uint32_t device = devices_.at(buffer.device)->index_in_backend;
    DeviceTiers& tiers = at(buffer.device);
    // From the backend's pool, as an async map's: a repeat of the same size is found again.
    auto memory = device_scratch(backend, device, container.size());
    if (!memory) return false;
    auto faults = device_scratch(backend, device, GREY_BACKEND_CODEC_DECODE_ASYNC_BYTES(count));
    if (!faults) return false;
    if (tiers.stream == nullptr) {
        try {
            tiers.stream = backend.stream_create(device);
        } catch (const Error&) {
            return false;  // no stream to be had: the copy and the decode are made one after the other instead
        }
    }
    const std::shared_ptr<void> table = backend.has_codec_decode_async_staged() ? tiers.staging->take(GREY_BACKEND_CODEC_TABLE_BYTES(count)) : nullptr;
    const std::vector<grey_backend_buffer*> containers(count, memory.get());
    std::vector<uint32_t> bits(count, 0);
    try {
        // A pinned container's copy is a DMA; a pageable one's the driver stages, and the wait below
        // covers it as well.
        backend.buffer_write_async(tiers.stream, memory.get(), 0, container.bytes().data(), container.size());
        backend.codec_decode_async(tiers.stream, containers, target, jobs.blocks, faults.get(), table.get());
        backend.buffer_read_async(tiers.stream, faults.get(), 0, bits.data(), bits.size() * sizeof(uint32_t));
        backend.stream_synchronize(tiers.stream);
    } catch (...) {
        // What is queued reads `memory`, `table` and `bits` and writes `target`: all stay until it has run.
        try {
            backend.stream_synchronize(tiers.stream);
        } catch (...) {
        }
        throw;
    }
    // A block the device gave up on is decoded on the host from its payload in the device copy, as a
    // synchronous decode does, so that a damaged one fails with the host decoder's words.
    decode_faulted_on_host(backend, memory.get(), container.bytes(), *container.info(), bits, jobs.job_blocks, {}, target, 0);
    return true;
}

bool Tiers::decode_on_stream_locked(const grey_buffer& buffer, grey_backend_buffer* target, grey_stream& stream,
                                    WorkingSetCache::FillSource& source) {
    const Backend& backend = *buffer.backend;
    const Residency& r = buffer.residency;
    if (!backend.has_codec_decode_async()) return false;
    // The jobs, and for each the buffer's block it writes and how that block is held (for a fault's message).
    std::vector<grey_backend_buffer*> containers;
    std::vector<grey_backend_codec_block> blocks;
    std::vector<uint64_t> job_blocks;
    std::vector<grey_codec> job_codecs;
    uint64_t block_size = 0, block_count = 0;
    decltype(WorkingSetCache::FillSource::container) staged_container;
    bool copy_container = false;  // a host container copied on the stream ahead of the decode
    std::shared_ptr<void> container_staging;  // a pageable one's pinned staging, copied through in pieces
    uint64_t staging_size = 0;
    if (r.kind == GREY_RESIDENCY_COMPRESSED_HOST || r.kind == GREY_RESIDENCY_COMPRESSED_DEVICE) {
        // One container: in device memory already, or a host-tier one copied there first.
        std::optional<ContainerJobs> jobs;
        grey_backend_buffer* container = r.device_container;
        if (r.kind == GREY_RESIDENCY_COMPRESSED_HOST) {
            std::optional<StagedContainer> staged = stage_host_container_locked(buffer, true);
            if (!staged) return false;
            jobs = *staged->jobs;
            copy_container = staged->copy_pending;
            container_staging = std::move(staged->staging);
            staging_size = staged->staging_size;
            staged_container = std::move(staged->memory);
            container = staged_container.get();
        } else {
            jobs = r.device_plan ? planned_container_jobs(*r.device_plan)
                                 : device_container_jobs(backend, r.device_container, r.container_size, buffer.size);
            if (!jobs) return false;
        }
        blocks = std::move(jobs->blocks);
        job_blocks.assign(jobs->job_blocks.begin(), jobs->job_blocks.end());
        containers.assign(blocks.size(), container);
        job_codecs.assign(blocks.size(), r.codec);
        block_size = jobs->block_size;
        block_count = jobs->block_count;
    } else if (r.kind == GREY_RESIDENCY_DEDUPLICATED) {
        // Stored blocks held raw are copied on the stream, constant blocks filled there; one held any
        // other way than those and compressed in device memory in a codec the device decodes needs the host.
        for (uint64_t b = 0; b < r.blocks.size(); ++b) {
            const BlockRef& ref = r.blocks[b];
            if (ref.kind != BlockRef::Kind::shared || ref.block->tier == GREY_RESIDENCY_RAW) continue;
            if (ref.block->tier != GREY_RESIDENCY_COMPRESSED_DEVICE || !ref.block->device_job) return false;
            grey_backend_codec_block block = as_backend_block(*ref.block->device_job);
            block.output = b * r.block_size;
            containers.push_back(ref.block->storage);
            blocks.push_back(block);
            job_blocks.push_back(b);
            job_codecs.push_back(ref.block->codec);
        }
        block_size = r.block_size;
        block_count = r.blocks.size();
    } else {
        return false;
    }
    if (blocks.empty()) return false;  // nothing to decode: the other routes serve it
    const Device& dev = *devices_.at(buffer.device);
    // The fault bits and the backend's job table, kept by the fill until the stream has run the decode.
    auto faults = device_scratch(backend, dev.index_in_backend, GREY_BACKEND_CODEC_DECODE_ASYNC_BYTES(blocks.size()));
    if (!faults) return false;
    // The job table's host staging, kept with the fill too, so that the backend queues its upload on the
    // stream rather than making it (and waiting for it) during the call.
    std::shared_ptr<void> table;
    if (backend.has_codec_decode_async_staged()) table = at(buffer.device).staging->take(GREY_BACKEND_CODEC_TABLE_BYTES(blocks.size()));
    std::shared_ptr<const void> container_pieces;
    try {
        if (r.kind == GREY_RESIDENCY_DEDUPLICATED) {
            // Host bytes of the one-value blocks, sized first: the stream reads them where they are.
            uint64_t fill_bytes = 0;
            for (uint64_t b = 0; b < r.blocks.size(); ++b)
                if (r.blocks[b].kind == BlockRef::Kind::fill) fill_bytes += std::min<uint64_t>(r.block_size, buffer.size - b * r.block_size);
            source.host.resize(fill_bytes);
            uint64_t at_host = 0;
            for (uint64_t b = 0; b < r.blocks.size(); ++b) {
                const uint64_t start = b * r.block_size, size = std::min<uint64_t>(r.block_size, buffer.size - start);
                const BlockRef& ref = r.blocks[b];
                if (ref.kind == BlockRef::Kind::zero) {
                    backend.buffer_fill_async(stream.handle, target, start, 0, size);
                } else if (ref.kind == BlockRef::Kind::fill) {
                    std::byte* bytes = source.host.data() + at_host;
                    for (uint64_t i = 0; i < size; ++i) bytes[i] = reinterpret_cast<const std::byte*>(&ref.fill_value)[i % kConstantWidth];
                    backend.buffer_write_async(stream.handle, target, start, bytes, size);
                    at_host += size;
                } else if (ref.block->tier == GREY_RESIDENCY_RAW) {
                    backend.buffer_copy_async(stream.handle, target, start, ref.block->storage, 0, size);
                }
            }
        }
        if (copy_container && container_staging)
            container_pieces = queue_staged_copy(backend, stream.handle, staged_container.get(), r.host_container->bytes(), container_staging.get(),
                                                 staging_size);
        else if (copy_container)
            backend.buffer_write_async(stream.handle, staged_container.get(), 0, r.host_container->bytes().data(), r.host_container->size());
        backend.codec_decode_async(stream.handle, containers, target, blocks, faults.get(), table.get());
    } catch (...) {
        // Work may be queued that reads `source` and writes `target`: both go once the stream is past it.
        try {
            backend.stream_synchronize(stream.handle);
        } catch (...) {
        }
        throw;
    }
    // Run under the lock, from the cache, once the stream has passed the decode. A faulted block was
    // read wrong by the work queued after the map; the copy is dropped (the cache counts the fill as
    // failed), so that no later map is handed it, and the failure waits for the stream's synchronize.
    source.check = [this, &backend, faults = faults.get(), job_blocks = std::move(job_blocks), job_codecs = std::move(job_codecs), block_size,
                    block_count, size = buffer.size, dedup = r.kind == GREY_RESIDENCY_DEDUPLICATED, key = &stream,
                    held = std::string(r.kind == GREY_RESIDENCY_COMPRESSED_HOST ? "in host memory" : "on the device")]() -> std::optional<Error> {
        std::vector<uint32_t> bits(job_blocks.size());
        backend.buffer_read(faults, 0, bits.data(), bits.size() * sizeof(uint32_t));
        const auto bad = std::find_if(bits.begin(), bits.end(), [](uint32_t f) { return f != common::kFaultNone; });
        if (bad == bits.end()) return std::nullopt;
        const size_t j = static_cast<size_t>(bad - bits.begin());
        const uint64_t b = job_blocks[j];
        const std::string what = (dedup ? "stored block " : "block ") + std::to_string(b) + " of " + std::to_string(block_count) +
                                 (dedup ? " of the buffer" : " of the buffer's container") + " (bytes " + std::to_string(b * block_size) + ".." +
                                 std::to_string(std::min<uint64_t>((b + 1) * block_size, size)) + ", compressed " + held + " with " +
                                 grey_codec_name(job_codecs[j]) + ")";
        Error failure(GREY_ERROR_CORRUPT, what + " is corrupt (the device decoder found " + fault_text(*bad) + ", in " +
                                              std::to_string(std::count_if(bits.begin(), bits.end(), [](uint32_t f) { return f != 0; })) +
                                              " block(s) in all): work queued on the stream after the map read wrong bytes there; "
                                              "the working-set copy is not kept, so the next map decodes the buffer again");
        if (fill_failures_.try_emplace(key, GREY_ERROR_CORRUPT, std::string("grey_buffer_map_async: ") + failure.what()).second)
            unsettled_checks_.fetch_add(1);  // until taken: the stream's next synchronize or query looks
        return failure;
    };
    source.device = std::move(faults);
    source.container = std::move(staged_container);
    source.table = std::move(table);
    source.container_staging = std::move(container_staging);
    source.container_pieces = std::move(container_pieces);
    if (copy_container) source.host_container = r.host_container;
    source.check_pending = Counted(unsettled_checks_);
    return true;
}

std::optional<Error> Tiers::take_fill_failure(const grey_stream& stream, bool stream_goes) {
    if (stream.handle == nullptr || !stream.backend->has_codec_decode_async()) return std::nullopt;  // never queues a decode
    // Nothing decoded on a stream is unchecked and no failure is kept: no lock, no walk of the cache (a
    // stream that goes still waits for the fills queued on it, whatever they are).
    if (!stream_goes && unsettled_checks_.load() == 0) return std::nullopt;
    std::lock_guard lock(mutex_);
    if (const auto found = per_device_.find(stream.device); found != per_device_.end())
        found->second.cache->settle_all(false, stream_goes ? stream.handle : nullptr);
    const auto failure = fill_failures_.find(&stream);
    if (failure == fill_failures_.end()) return std::nullopt;
    Error out = failure->second;
    fill_failures_.erase(failure);
    unsettled_checks_.fetch_sub(1);
    return out;
}

std::optional<Error> Tiers::map_async(grey_buffer& buffer, grey_map_access access, grey_buffer_mapping& mapping, grey_stream& stream) {
    std::lock_guard lock(mutex_);
    touch(buffer);
    const Backend& backend = *buffer.backend;
    try {
        if (access == GREY_MAP_WRITE && buffer.sealed.load()) copy_on_write_locked(buffer, "grey_buffer_map_async");
        if (buffer.residency.kind == GREY_RESIDENCY_RAW) {
            backend.buffer_map(buffer.handle, mapping);
        } else {
            WorkingSetCache& cache = *at(buffer.device).cache;
            const Device& dev = *devices_.at(buffer.device);
            // Made before the fill so that, once the fill is enqueued, only recording it can fail.
            std::unique_ptr<grey_backend_event, std::function<void(grey_backend_event*)>> ready(
                stream.handle != nullptr ? backend.event_create(dev.index_in_backend) : nullptr,
                [&backend](grey_backend_event* e) { backend.event_destroy(e); });
            WorkingSetCache::FillSource source;
            bool enqueued = false;
            grey_backend_buffer* copy = cache.pin(&buffer, buffer.size, [&](grey_backend_buffer* target) {
                if (stream.handle == nullptr) {
                    // No backend streams: the stream's work runs at enqueue, so the map does too.
                    materialize_locked(buffer, target);
                    return;
                }
                // Decoded on the stream itself, straight into the working set, where the device decodes
                // every block. Otherwise decode or gather now, on the calling thread's time (while the
                // device works through what is queued), and queue the copy into the working set behind
                // that work: on the device, into memory of its own, when nothing has to cross to the host
                // and there is room; through host memory otherwise.
                if (!decode_on_stream_locked(buffer, target, stream, source)) {
                    if (assembles_on_device(backend, buffer.residency))
                        source.device = device_scratch(backend, dev.index_in_backend, buffer.size);
                    if (source.device) {
                        materialize_locked(buffer, source.device.get());
                        backend.buffer_copy_async(stream.handle, target, 0, source.device.get(), 0, buffer.size);
                    } else {
                        source.host.resize(buffer.size);
                        read_locked(buffer, 0, source.host);
                        backend.buffer_write_async(stream.handle, target, 0, source.host.data(), source.host.size());
                    }
                }
                try {
                    backend.event_record(ready.get(), stream.handle);
                } catch (...) {
                    // Without the event nothing would say when the copy may be freed: wait here.
                    try {
                        backend.stream_synchronize(stream.handle);
                    } catch (...) {
                    }
                    throw;
                }
                enqueued = true;
            });
            try {
                if (enqueued) {
                    source.stream = stream.handle;
                    cache.set_pending(&buffer, ready.release(), std::move(source));
                } else if (grey_backend_event* pending = cache.pending_event(&buffer)) {
                    // A hit on a copy another stream is still filling: this stream waits for it too.
                    if (stream.handle != nullptr)
                        backend.stream_wait_event(stream.handle, pending);
                    else
                        backend.event_synchronize(pending);
                }
                backend.buffer_map(copy, mapping);
            } catch (...) {
                cache.unpin(&buffer);
                throw;
            }
        }
    } catch (const Error& e) {
        // The stream reports it; the mapping still counts, so that the caller's unmap pairs with it.
        ++buffer.failed_maps;
        buffer.map_count.fetch_add(1);
        mapping.address = 0;
        return e;
    }
    buffer.map_count.fetch_add(1);
    return std::nullopt;
}

void Tiers::unmap(grey_buffer& buffer) {
    std::lock_guard lock(mutex_);
    touch(buffer);
    uint32_t count = buffer.map_count.load();
    do {
        if (count == 0) fail(GREY_ERROR_INVALID_ARGUMENT, "grey_buffer_unmap: the buffer is not mapped");
    } while (!buffer.map_count.compare_exchange_weak(count, count - 1));
    if (buffer.failed_maps > 0) {
        --buffer.failed_maps;  // it pinned nothing
        return;
    }
    if (buffer.residency.kind != GREY_RESIDENCY_RAW) at(buffer.device).cache->unpin(&buffer);
}

void Tiers::begin_use(const std::vector<const grey_buffer*>& buffers) {
    std::lock_guard lock(mutex_);
    for (const grey_buffer* b : buffers) {
        ++const_cast<grey_buffer*>(b)->enqueuing;
        touch(*b);
    }
}

bool Tiers::end_use(const std::vector<const grey_buffer*>& buffers, grey_backend_stream* enqueued_on) noexcept {
    std::lock_guard lock(mutex_);
    use_ended_.notify_all();  // woken waiters take the lock after this call's bookkeeping
    // The bookkeeping is the tiers'; the buffers' contents are untouched.
    for (const grey_buffer* b : buffers) --const_cast<grey_buffer*>(b)->enqueuing;
    if (enqueued_on == nullptr) return true;
    // Only a sealed buffer ever moves, so only a sealed buffer's work needs an event now: an unsealed one
    // notes the stream (a null event), and grey_buffer_seal records its events then. A sealed buffer's
    // event marks the end of the call's work, one for all the call's sealed buffers (one device's).
    const auto sealed = std::find_if(buffers.begin(), buffers.end(), [](const grey_buffer* b) { return b->sealed.load(); });
    grey_backend_event* event = nullptr;
    try {
        if (sealed != buffers.end()) event = record_event_locked(**sealed, enqueued_on);
        for (const grey_buffer* b : buffers) const_cast<grey_buffer*>(b)->in_flight.reserve(b->in_flight.size() + 1);
    } catch (...) {
        if (event != nullptr) let_go_locked(event);
        return false;
    }
    for (const grey_buffer* constant : buffers) {
        auto* b = const_cast<grey_buffer*>(constant);
        grey_backend_event* mark = b->sealed.load() ? event : nullptr;
        if (mark != nullptr) ++held_events_.at(mark).holders;  // before letting go of what it replaces, which may be itself
        const auto use = std::find_if(b->in_flight.begin(), b->in_flight.end(), [&](const auto& u) { return u.first == enqueued_on; });
        if (use == b->in_flight.end()) {
            b->in_flight.emplace_back(enqueued_on, mark);  // room reserved above
        } else {
            let_go_locked(use->second);
            use->second = mark;
        }
    }
    return true;
}

grey_backend_event* Tiers::record_event_locked(const grey_buffer& buffer, grey_backend_stream* stream) {
    grey_backend_event* event = take_event_locked(buffer.device, stream);
    try {
        buffer.backend->event_record(event, stream);
    } catch (...) {
        let_go_locked(event);  // back to the spares: a failed record leaves nothing for anyone to wait on
        throw;
    }
    return event;
}

void Tiers::mark_queued_locked(grey_buffer& buffer, const grey_backend_stream* only) {
    for (auto& [stream, event] : buffer.in_flight) {
        if (event != nullptr || (only != nullptr && stream != only)) continue;
        event = record_event_locked(buffer, stream);
        held_events_.at(event).holders = 1;
    }
}

void Tiers::forget_stream(grey_backend_stream* stream, bool finished) noexcept {
    std::lock_guard lock(mutex_);
    if (finished) {
        for (grey_buffer* b : buffers_)
            std::erase_if(b->in_flight, [&](const auto& use) {
                if (use.first != stream) return false;
                let_go_locked(use.second);
                return true;
            });
    } else {
        // Work whose end no event marks yet gets one while the stream is still there (without one it is
        // forgotten: the stream could not be waited for either).
        for (grey_buffer* b : buffers_) {
            try {
                mark_queued_locked(*b, stream);
            } catch (...) {
                std::erase_if(b->in_flight, [&](const auto& use) { return use.first == stream && use.second == nullptr; });
            }
        }
        // Still held by buffers: destroyed when they let go, never handed to a stream made at the same address.
        for (auto& [event, held] : held_events_)
            if (held.stream == stream) held.stream = nullptr;
    }
    if (const auto spares = spare_events_.find(stream); spares != spare_events_.end()) {
        for (const SpareEvent& spare : spares->second) devices_.at(spare.device)->backend->event_destroy(spare.event);
        spare_events_.erase(spares);
    }
}

bool Tiers::busy_locked(grey_buffer& buffer) {
    if (buffer.map_count.load() != 0 || buffer.enqueuing != 0) return true;
    if (const auto found = per_device_.find(buffer.device); found != per_device_.end() && found->second.cache->fill_pending(&buffer))
        return true;
    // Completed uses are forgotten; a failed one is complete too (its failure belongs to its stream).
    for (auto use = buffer.in_flight.begin(); use != buffer.in_flight.end();) {
        if (use->second == nullptr) return true;  // unmarked work (an unsealed buffer's): never moved
        bool done = true;
        try {
            done = buffer.backend->event_query(use->second);
        } catch (...) {
        }
        if (!done) return true;
        let_go_locked(use->second);
        use = buffer.in_flight.erase(use);
    }
    return false;
}

void Tiers::wait_for_queued_locked(grey_buffer& buffer) {
    mark_queued_locked(buffer, nullptr);  // a sealed buffer's work is marked already; this is for safety's sake
    for (const auto& [stream, event] : buffer.in_flight) {
        try {
            buffer.backend->event_synchronize(event);
        } catch (...) {  // the work's failure is its stream's to report
        }
        let_go_locked(event);
    }
    buffer.in_flight.clear();
    const auto found = per_device_.find(buffer.device);
    if (found == per_device_.end()) return;
    if (grey_backend_event* ready = found->second.cache->pending_event(&buffer)) {
        try {
            buffer.backend->event_synchronize(ready);
        } catch (...) {  // fill_pending notes a failed fill
        }
        (void)found->second.cache->fill_pending(&buffer);
    }
}

grey_compact_result Tiers::compact(uint32_t device, const grey_compact_policy& policy, bool wait_for_queued,
                                   std::chrono::steady_clock::time_point used_before) {
    if (policy.compress != 0 && policy.tier != GREY_RESIDENCY_COMPRESSED_DEVICE && policy.tier != GREY_RESIDENCY_COMPRESSED_HOST)
        fail(GREY_ERROR_INVALID_ARGUMENT, "grey_memory_compact: policy->tier must be GREY_RESIDENCY_COMPRESSED_DEVICE or "
                                          "GREY_RESIDENCY_COMPRESSED_HOST when policy->compress is set, not " +
                                              residency_text(policy.tier));
    if (policy.compress != 0) (void)resolve(policy.codec);
    grey_compact_result result{};
    result.struct_size = sizeof result;
    // The lock is taken for one buffer at a time, so that a pass over many buffers holds up other calls
    // for no longer than one move. A buffer is known by its address and creation sequence: one destroyed
    // in between (or a new one at its address) is passed over.
    struct Known {
        grey_buffer* buffer;
        uint64_t sequence;
    };
    std::vector<Known> buffers;
    {
        std::lock_guard lock(mutex_);
        for (grey_buffer* b : buffers_)
            if (b->device == device) buffers.push_back({b, b->sequence});
        result.physical_bytes_before = physical_locked(device);
    }
    std::sort(buffers.begin(), buffers.end(), [](const Known& a, const Known& b) { return a.sequence < b.sequence; });
    result.buffers_examined = buffers.size();
    const auto alive_locked = [&](const Known& k) { return buffers_.count(k.buffer) != 0 && k.buffer->sequence == k.sequence; };
    // Whether `b` may move now: sealed, not used since `used_before`, not in use. A buffer mapped or in a
    // call's hands is skipped; one whose work is only queued is waited for when asked (the background
    // scan never waits).
    const auto movable_locked = [&](grey_buffer& b) {
        if (wait_for_queued && b.sealed.load() && b.map_count.load() == 0 && b.enqueuing == 0) wait_for_queued_locked(b);
        return b.sealed.load() && b.last_use < used_before && !busy_locked(b);
    };
    std::vector<Known> eligible;
    std::set<const grey_buffer*> deduplicated;
    for (const Known& k : buffers) {
        std::lock_guard lock(mutex_);
        if (!alive_locked(k)) continue;
        if (!movable_locked(*k.buffer)) {
            ++result.buffers_skipped;
            continue;
        }
        eligible.push_back(k);
        if (policy.deduplicate != 0 && k.buffer->residency.kind == GREY_RESIDENCY_RAW) {
            change_locked(*k.buffer, GREY_RESIDENCY_DEDUPLICATED, GREY_CODEC_DEFAULT);
            deduplicated.insert(k.buffer);
        }
    }
    // Compression takes what deduplication left alone, and what it found nothing to share in.
    if (policy.compress != 0)
        for (const Known& k : eligible) {
            std::lock_guard lock(mutex_);
            if (!alive_locked(k) || !movable_locked(*k.buffer)) continue;  // destroyed or taken into use since
            grey_buffer* b = k.buffer;
            const Residency& r = b->residency;
            if (resolve(policy.codec) == GREY_CODEC_FLOAT && !codec::float_codec_takes(b->traits.dtype)) continue;
            if (holds_a_block_twice(r)) {
                // Its stored blocks are compressed where they are, each once for every buffer holding it
                // (those already compressed so, and those compression does not make smaller, are left).
                if (compress_blocks_locked(*b, policy.tier, policy.codec) > 0) ++result.buffers_compressed;
                continue;
            }
            // A buffer of zero and one-value blocks alone already costs nothing.
            const bool stores_a_block =
                std::any_of(r.blocks.begin(), r.blocks.end(), [](const BlockRef& ref) { return ref.kind == BlockRef::Kind::shared; });
            if (r.kind != GREY_RESIDENCY_RAW && (r.kind != GREY_RESIDENCY_DEDUPLICATED || !stores_a_block)) continue;
            change_locked(*b, policy.tier, policy.codec);
            ++result.buffers_compressed;
            deduplicated.erase(b);
        }
    result.buffers_deduplicated = deduplicated.size();
    std::lock_guard lock(mutex_);
    result.physical_bytes_after = physical_locked(device);
    return result;
}

}  // namespace grey::memory
