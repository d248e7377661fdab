// GPU conformance: every buffer operation on each GPU device against the host reference (device 0),
// through grey.h alone, on fresh random inputs each run: round trips, fills, in-device copies, cross-
// device copies and checksums at awkward sizes and offsets, buffer mapping, the same operations through the
// async calls on several streams at once (ordered by events), deduplication of sealed buffers (hashed on
// the GPU) against the same on the host, then out-of-memory handling. Prints one line
// per check and a summary; exits 1 on any failure.
//   grey_gpu_conformance [--quick] [--backend-dir DIR]
// --quick uses small sizes (for compute-sanitizer, which slows kernels down a lot).
#include "gpu_check.hpp"

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <deque>
#include <random>
#include <string>
#include <vector>

#include <stdlib.h>
#include <unistd.h>

namespace {

using gpu_check::Buffer;
using gpu_check::check;
using gpu_check::ok;

std::vector<unsigned char> read_all(grey_buffer* b, uint64_t size) {
    std::vector<unsigned char> out(size, 0x5A);
    if (!ok(grey_buffer_read(b, 0, out.data(), size))) out.clear();
    return out;
}

void run_device(grey_context* c, uint32_t gpu, const std::vector<uint64_t>& sizes, std::mt19937_64& rng) {
    for (const uint64_t size : sizes) {
        const std::string tag = "device " + std::to_string(gpu) + ", " + std::to_string(size) + " bytes: ";
        std::vector<unsigned char> data(size);
        for (auto& b : data) b = static_cast<unsigned char>(rng());
        Buffer g(c, gpu, size), h(c, 0, size), g2(c, gpu, size), h2(c, 0, size);
        if (!ok(g.status) || !ok(h.status) || !ok(g2.status) || !ok(h2.status)) {
            check(false, tag + "allocation");
            continue;
        }
        // Poison the GPU buffers first so an unwritten byte cannot pass as correct.
        check(ok(grey_buffer_fill(g.handle, 0, 0xEE, size)) && ok(grey_buffer_fill(g2.handle, 0, 0xEE, size)), tag + "poison fill");
        check(ok(grey_buffer_write(g.handle, 0, data.data(), size)) && ok(grey_buffer_write(h.handle, 0, data.data(), size)),
              tag + "write");
        check(read_all(g.handle, size) == data, tag + "write/read round trip");

        std::uniform_int_distribution<uint64_t> any(0, size - 1);
        uint64_t a = any(rng), b = any(rng);
        if (a > b) std::swap(a, b);
        const uint64_t length = b - a + 1;
        const auto value = static_cast<uint8_t>(rng());
        check(ok(grey_buffer_fill(g.handle, a, value, length)) && ok(grey_buffer_fill(h.handle, a, value, length)),
              tag + "fill [" + std::to_string(a) + ", +" + std::to_string(length) + ")");
        check(read_all(g.handle, size) == read_all(h.handle, size), tag + "fill matches host");

        // In-device copy at independent source and destination offsets (kernel: aligned and not).
        const uint64_t copy_length = 1 + rng() % size;
        const uint64_t src = rng() % (size - copy_length + 1), dst = rng() % (size - copy_length + 1);
        check(ok(grey_buffer_write(g2.handle, 0, data.data(), size)) && ok(grey_buffer_write(h2.handle, 0, data.data(), size)),
              tag + "second buffer write");
        check(ok(grey_buffer_copy(g2.handle, dst, g.handle, src, copy_length)) &&
                  ok(grey_buffer_copy(h2.handle, dst, h.handle, src, copy_length)),
              tag + "copy " + std::to_string(copy_length) + " bytes " + std::to_string(src) + " -> " + std::to_string(dst));
        check(read_all(g2.handle, size) == read_all(h2.handle, size), tag + "copy matches host");

        // Checksums of the whole buffer and of a random sub-range, GPU kernel against host.
        uint64_t cg = 0, ch = 0, sg = 0, sh = 0;
        check(ok(grey_buffer_checksum(g2.handle, 0, size, &cg)) && ok(grey_buffer_checksum(h2.handle, 0, size, &ch)) && cg == ch,
              tag + "checksum of the whole buffer");
        check(ok(grey_buffer_checksum(g2.handle, a, length, &sg)) && ok(grey_buffer_checksum(h2.handle, a, length, &sh)) && sg == sh,
              tag + "checksum of a sub-range");

        // Across devices the runtime stages through the host.
        check(ok(grey_buffer_copy(h2.handle, 0, g.handle, 0, size)) && read_all(h2.handle, size) == read_all(g.handle, size),
              tag + "GPU -> host copy");
    }
}

// The async calls on several streams of one GPU at once: each stream writes, fills, copies, checksums and
// reads back its own buffers, and waits (through an event) for the previous stream's copy before reading
// that stream's buffer too. Everything is checked against the same work done on the host.
void run_streams(grey_context* c, uint32_t gpu, uint64_t size, std::mt19937_64& rng) {
    constexpr int kStreams = 4;
    const std::string tag = "device " + std::to_string(gpu) + ", " + std::to_string(kStreams) + " streams of " + std::to_string(size) + " bytes: ";
    struct Lane {
        grey_stream* stream = nullptr;
        grey_event* copied = nullptr;
        std::vector<unsigned char> data, expected, own, previous;
        uint64_t checksum = 0, expected_checksum = 0;
    };
    std::vector<Lane> lanes(kStreams);
    std::deque<Buffer> sources, copies;
    bool created = true;
    for (auto& lane : lanes) {
        created = created && ok(grey_stream_create(c, gpu, &lane.stream)) && ok(grey_event_create(c, gpu, &lane.copied));
        sources.emplace_back(c, gpu, size);
        copies.emplace_back(c, gpu, size);
        created = created && ok(sources.back().status) && ok(copies.back().status);
    }
    check(created, tag + "streams, events and buffers");
    std::uniform_int_distribution<uint64_t> any(0, size - 1);
    for (int k = 0; k < kStreams && created; ++k) {
        Lane& lane = lanes[k];
        lane.data.resize(size);
        for (auto& b : lane.data) b = static_cast<unsigned char>(rng());
        uint64_t a = any(rng), b = any(rng);
        if (a > b) std::swap(a, b);
        const auto value = static_cast<uint8_t>(rng());
        lane.expected = lane.data;
        std::memset(lane.expected.data() + a, value, b - a + 1);
        lane.expected_checksum = 0;
        for (uint64_t i = 0; i < size; ++i)
            lane.expected_checksum += (uint64_t{lane.expected[i]} + 1) * (i * 0x9E3779B97F4A7C15ull + 0xD6E8FEB86659FD93ull);
        lane.own.assign(size, 0);
        lane.previous.assign(size, 0);
        const bool enqueued = ok(grey_buffer_fill_async(sources[k].handle, 0, 0xEE, size, lane.stream)) &&
                              ok(grey_buffer_write_async(sources[k].handle, 0, lane.data.data(), size, lane.stream)) &&
                              ok(grey_buffer_fill_async(sources[k].handle, a, value, b - a + 1, lane.stream)) &&
                              ok(grey_buffer_copy_async(copies[k].handle, 0, sources[k].handle, 0, size, lane.stream)) &&
                              ok(grey_event_record(lane.copied, lane.stream)) &&
                              ok(grey_buffer_checksum_async(copies[k].handle, 0, size, &lane.checksum, lane.stream)) &&
                              ok(grey_buffer_read_async(copies[k].handle, 0, lane.own.data(), size, lane.stream));
        check(enqueued, tag + "stream " + std::to_string(k) + " enqueues");
    }
    // Each stream then reads the previous stream's copy, after waiting for it.
    for (int k = 0; k < kStreams && created; ++k) {
        const int before = (k + kStreams - 1) % kStreams;
        check(ok(grey_stream_wait_event(lanes[k].stream, lanes[before].copied)) &&
                  ok(grey_buffer_read_async(copies[before].handle, 0, lanes[k].previous.data(), size, lanes[k].stream)),
              tag + "stream " + std::to_string(k) + " waits for stream " + std::to_string(before));
    }
    for (int k = 0; k < kStreams && created; ++k) {
        const int before = (k + kStreams - 1) % kStreams;
        Lane& lane = lanes[k];
        check(ok(grey_stream_synchronize(lane.stream)), tag + "stream " + std::to_string(k) + " synchronizes");
        check(lane.own == lane.expected, tag + "stream " + std::to_string(k) + " write/fill/copy/read matches host");
        check(lane.checksum == lane.expected_checksum, tag + "stream " + std::to_string(k) + " checksum matches host");
        check(lane.previous == lanes[before].expected, tag + "stream " + std::to_string(k) + " sees stream " + std::to_string(before) + "'s copy");
    }
    for (auto& lane : lanes) {
        grey_event_destroy(lane.copied);
        grey_stream_destroy(lane.stream);
    }
}

void run_out_of_memory(grey_context* c, uint32_t gpu) {
    grey_memory_stats before{};
    before.struct_size = sizeof before;
    grey_device_spec spec{};
    spec.struct_size = sizeof spec;
    if (!ok(grey_device_spec_get(c, gpu, &spec)) || spec.memory_total_bytes.state != GREY_FIELD_OK) {
        check(false, "device " + std::to_string(gpu) + ": memory total for the out-of-memory check");
        return;
    }
    Buffer keep(c, gpu, 1 << 20);
    check(ok(keep.status) && ok(grey_device_memory_stats_get(c, gpu, &before)), "device " + std::to_string(gpu) + ": stats before OOM");
    grey_buffer* huge = nullptr;
    const grey_status s = grey_buffer_create(c, gpu, spec.memory_total_bytes.value * 2, &huge);
    const std::string message = grey_last_error();
    check(s == GREY_ERROR_OUT_OF_MEMORY && huge == nullptr && message.find(std::to_string(spec.memory_total_bytes.value * 2)) != std::string::npos,
          "device " + std::to_string(gpu) + ": twice the memory -> GREY_ERROR_OUT_OF_MEMORY naming the size (" + message + ")");
    grey_memory_stats after{};
    after.struct_size = sizeof after;
    check(ok(grey_device_memory_stats_get(c, gpu, &after)) && after.committed_bytes == before.committed_bytes &&
              after.allocated_bytes == before.allocated_bytes && after.allocation_count == before.allocation_count,
          "device " + std::to_string(gpu) + ": pool unchanged after OOM");
    Buffer again(c, gpu, 8 << 20);
    check(ok(again.status), "device " + std::to_string(gpu) + ": allocation works after OOM");
    grey_memory_stats s2{};
    s2.struct_size = sizeof s2;
    if (ok(grey_device_memory_stats_get(c, gpu, &s2)))
        std::printf("INFO  device %u pool: reserved %" PRIu64 ", committed %" PRIu64 ", allocated %" PRIu64 ", largest free %" PRIu64
                    ", fragmentation %.4f, grown %" PRIu64 " times, granularity %" PRIu64 "\n",
                    gpu, s2.reserved_bytes, s2.committed_bytes, s2.allocated_bytes, s2.largest_free_bytes, s2.fragmentation,
                    s2.growth_count, s2.granularity_bytes);
}

// grey_buffer_map through grey.h alone: CUDA memory on the device's own CUDA ordinal (its index in the
// backend), the whole buffer, the same address every time, one unmap per map. (tests/gpu/
// check_mapping.py checks the address itself through the CUDA driver.)
void run_mapping(grey_context* c, uint32_t gpu, const grey_device_spec& spec) {
    const std::string tag = "device " + std::to_string(gpu) + ": ";
    Buffer b(c, gpu, 4097);
    grey_buffer_mapping first{}, second{};
    first.struct_size = second.struct_size = sizeof first;
    check(ok(b.status) && ok(grey_buffer_map(b.handle, &first)) && ok(grey_buffer_map(b.handle, &second)), tag + "map twice");
    check(first.kind == GREY_MEMORY_CUDA_DEVICE && first.size_bytes == 4097 && first.address != 0 &&
              first.vendor_device == static_cast<int32_t>(spec.backend_device_index) && second.address == first.address,
          tag + "mapping is CUDA memory of the whole buffer on CUDA ordinal " + std::to_string(first.vendor_device));
    check(ok(grey_buffer_unmap(b.handle)) && ok(grey_buffer_unmap(b.handle)) && grey_buffer_unmap(b.handle) == GREY_ERROR_INVALID_ARGUMENT,
          tag + "one unmap per map");
}

}  // namespace

grey_memory_stats memory_stats(grey_context* c, uint32_t device) {
    grey_memory_stats stats{};
    stats.struct_size = sizeof stats;
    if (!ok(grey_device_memory_stats_get(c, device, &stats))) stats = {};
    return stats;
}

void run_dedup_in(grey_context* c, uint32_t gpu, std::mt19937_64& rng);

// A context like the program's but with the background scan off (a configuration overlay), so that only
// the compactions below move sealed buffers: the scan (every 100 ms in the balanced profile, compressing
// too) would move them between the steps compared. nullptr, with a FAIL line, if it cannot be made.
grey_context* context_without_scan(const gpu_check::Options& options) {
    char path[] = "/tmp/grey-conformance-XXXXXX.yaml";
    const int fd = mkstemps(path, 5);
    const char overlay[] = "version: \"1.0\"\nmemory:\n  deduplication:\n    scan_interval_ms: 0\n";
    const bool written = fd >= 0 && write(fd, overlay, sizeof overlay - 1) == static_cast<ssize_t>(sizeof overlay - 1);
    if (fd >= 0) close(fd);
    grey_context_options context_options = GREY_CONTEXT_OPTIONS_INIT;
    context_options.backend_dir = options.backend_dir;
    context_options.config_path = path;
    grey_context* context = nullptr;
    const bool made = written && ok(grey_context_create(&context_options, &context));
    if (fd >= 0) unlink(path);
    check(made, "a context with the background scan off");
    return made ? context : nullptr;
}

// Deduplication of sealed buffers in device memory, which hashes their blocks on the GPU (the backend's
// block_hashes slot) and shares them in the device's block store: the same buffers on the host device give
// the reference for what is shared, constant and saved, and every buffer reads back its own bytes.
void run_dedup(const gpu_check::Options& options, uint32_t gpu, std::mt19937_64& rng) {
    grey_context* c = context_without_scan(options);
    if (c == nullptr) return;
    run_dedup_in(c, gpu, rng);
    grey_context_destroy(c);
}

void run_dedup_in(grey_context* c, uint32_t gpu, std::mt19937_64& rng) {
    const uint64_t size = (4ull << 20) + 12345;  // a ragged last block
    const std::string tag = "device " + std::to_string(gpu) + ", deduplication of " + std::to_string(size) + "-byte buffers: ";
    std::vector<unsigned char> data(size), half(size), zeros(size, 0), repeated(size);
    for (auto& b : data) b = static_cast<unsigned char>(rng());
    half = data;  // shares its first half with `data`, then differs
    for (uint64_t i = size / 2; i < size; ++i) half[i] = static_cast<unsigned char>(rng());
    for (uint64_t i = 0; i < size; ++i) repeated[i] = static_cast<unsigned char>(0xA0 + i % 8);  // one 8-byte value
    const std::vector<const std::vector<unsigned char>*> contents = {&data, &data, &data, &data, &half, &zeros, &repeated};
    struct Side {
        uint32_t device;
        std::deque<Buffer> buffers;
        grey_memory_stats before{}, after{};
        grey_compact_result result{};
    };
    Side sides[2] = {{gpu, {}, {}, {}, {}}, {0, {}, {}, {}, {}}};
    for (Side& side : sides) {
        side.before = memory_stats(c, side.device);
        bool made = true;
        for (const auto* content : contents) {
            side.buffers.emplace_back(c, side.device, size);
            Buffer& b = side.buffers.back();
            made = made && ok(b.status) && ok(grey_buffer_write(b.handle, 0, content->data(), size)) && ok(grey_buffer_seal(b.handle));
        }
        check(made, tag + (side.device == 0 ? "host" : "GPU") + " buffers written and sealed");
        grey_compact_policy policy = GREY_COMPACT_POLICY_INIT;
        policy.deduplicate = 1;
        policy.compress = 0;
        side.result.struct_size = sizeof side.result;
        check(ok(grey_memory_compact(c, side.device, &policy, &side.result)), tag + (side.device == 0 ? "host" : "GPU") + " compaction");
        side.after = memory_stats(c, side.device);
    }
    const Side &g = sides[0], &h = sides[1];
    const auto delta = [](const Side& s, uint64_t grey_memory_stats::*field) { return s.after.*field - s.before.*field; };
    check(delta(g, &grey_memory_stats::saved_dedup_bytes) == delta(h, &grey_memory_stats::saved_dedup_bytes) &&
              delta(g, &grey_memory_stats::saved_dedup_bytes) >= 3 * size,
          tag + "saved by deduplication as on the host (" + std::to_string(delta(g, &grey_memory_stats::saved_dedup_bytes)) + " bytes)");
    check(delta(g, &grey_memory_stats::shared_blocks) == delta(h, &grey_memory_stats::shared_blocks) &&
              delta(g, &grey_memory_stats::constant_blocks) == delta(h, &grey_memory_stats::constant_blocks),
          tag + "stored and constant blocks as on the host (" + std::to_string(delta(g, &grey_memory_stats::shared_blocks)) + " stored, " +
              std::to_string(delta(g, &grey_memory_stats::constant_blocks)) + " constant)");
    check(g.after.buffers_by_residency[GREY_RESIDENCY_DEDUPLICATED] - g.before.buffers_by_residency[GREY_RESIDENCY_DEDUPLICATED] ==
              h.after.buffers_by_residency[GREY_RESIDENCY_DEDUPLICATED] - h.before.buffers_by_residency[GREY_RESIDENCY_DEDUPLICATED],
          tag + "the same buffers deduplicated as on the host");
    bool same = true;
    for (size_t i = 0; i < contents.size(); ++i) same = same && read_all(g.buffers[i].handle, size) == *contents[i];
    check(same, tag + "every GPU buffer reads back its own bytes");
    // A map puts a deduplicated buffer together in device memory.
    grey_buffer_mapping mapping{};
    mapping.struct_size = sizeof mapping;
    const bool mapped = ok(grey_buffer_map(g.buffers[4].handle, &mapping));
    check(mapped && mapping.kind == GREY_MEMORY_CUDA_DEVICE && mapping.address != 0, tag + "a deduplicated buffer maps as CUDA memory");
    if (mapped) check(ok(grey_buffer_unmap(g.buffers[4].handle)), tag + "unmap");
}

int main(int argc, char** argv) {
    return gpu_check::run(argc, argv, "conformance", false,
                          [](grey_context* context, uint32_t gpu, const grey_device_spec& spec, const gpu_check::Options& options, std::mt19937_64& rng) {
                              std::vector<uint64_t> sizes = {1, 15, 16, 17, 255, 256, 4097, 65536 + 3, (1 << 20) + 7};
                              if (!options.quick) {
                                  sizes.push_back((3 << 20) + 1);
                                  sizes.push_back((64ull << 20) + 5);
                              }
                              run_device(context, gpu, sizes, rng);
                              for (const uint64_t size : {uint64_t{4097}, uint64_t{(1 << 20) + 7}}) run_streams(context, gpu, size, rng);
                              if (!options.quick) run_streams(context, gpu, (64ull << 20) + 5, rng);
                              run_mapping(context, gpu, spec);
                              run_dedup(options, gpu, rng);
                              if (!options.quick) run_out_of_memory(context, gpu);
                          });
}
