// What the fake GPU drivers (tests/cuda/fake_driver, tests/hip/fake_driver) do with the KV cache's kernels
// of kernels/cuda/kv_cache.cu, shared so that both vendors' plugins are checked by one rule:
//  - a host stand-in that tests plumbing (the argument blocks, the tables the plugin copied to the
//    device, the addresses), not the kernels: grey_kv_store and grey_kv_compress write the
//    bytes common/kv_layout.hpp defines (the host backend's), and grey_kv_attend_combine writes each
//    query head's softmax(q.K * scale) V in float64 from the tables, as the runtime's host reference does;
//    the split kernels write nothing (the partial results are theirs alone);
//  - a launch log (FAKE_KV_LAUNCH_LOG names a file): one line per KV kernel launched, with its name,
//    grid, block and dynamic shared memory, its argument block (addresses only as set or not: they differ
//    between runs) and the tables it reads (slots, sequence ranges, which blocks are quantized), so a test
//    can pin what a plugin launches for a job. The line is written when the kernel runs, in its stream's
//    order (the tables may be copied by asynchronous copies queued before it), from the argument block as
//    it was at the launch.
#pragma once

#include "common/kv_layout.hpp"
#include "cuda/kv_args.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace fake {

inline bool is_kv_kernel(const std::string& name) { return name.rfind("grey_kv_", 0) == 0; }

template <typename T>
T kv_arg(void** params) {
    T value;
    std::memcpy(&value, params[0], sizeof value);
    return value;
}

// The sequences of an attention launch: grid.z of the split kernel's, grid.x / query_heads of the combining one's.
inline unsigned int kv_batch(const std::string& name, unsigned int gx, unsigned int gz, const grey_kvk_attend_args& a) {
    return name == "grey_kv_attend_combine" ? gx / a.query_heads : gz;
}

inline std::string kv_layout_text(const grey::common::KvLayout& l) {
    char text[160];
    std::snprintf(text, sizeof text, "layers=%u kv_heads=%u head_dim=%u tokens_per_block=%u format=%u group=%u bf16=%u hadamard=%u", l.layers,
                  l.kv_heads, l.head_dim, l.tokens_per_block, l.format, l.group_size, l.window_bf16, l.hadamard_k);
    return text;
}

// The launch as a line of the log (the tables are read where the argument block points: device memory
// is host memory in the fakes, and the plugin copied them before the launch).
inline std::string kv_launch_line(const std::string& name, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int block,
                                  unsigned int shared, void** params) {
    char head[160];
    std::snprintf(head, sizeof head, "%s grid=%u,%u,%u block=%u shared=%u ", name.c_str(), gx, gy, gz, block, shared);
    std::string line = head;
    if (name == "grey_kv_store") {
        const auto a = kv_arg<grey_kvk_store_args>(params);
        line += kv_layout_text(a.layout) + " tokens=" + std::to_string(a.tokens) + " layer_first=" + std::to_string(a.layer_first) +
                " layer_count=" + std::to_string(a.layer_count) + " keys=" + std::to_string(a.keys != 0) + " values=" + std::to_string(a.values != 0) +
                (a.dtype != GREY_KVK_F32 ? " dtype=" + std::to_string(a.dtype) : "") + (a.non_finite != 0 ? " checked" : "") + " slots=";
        const auto* slots = reinterpret_cast<const uint32_t*>(a.slots);
        const auto* blocks = reinterpret_cast<const uint64_t*>(a.blocks);
        for (uint32_t i = 0; i < a.tokens; ++i) line += (i == 0 ? "" : ",") + std::to_string(slots[i]) + (blocks[i] != 0 ? "" : "!");
    } else if (name == "grey_kv_compress" || name == "grey_kv_compress_warps") {
        const auto a = kv_arg<grey_kvk_compress_args>(params);
        const auto* from = reinterpret_cast<const uint64_t*>(a.sources);
        const auto* to = reinterpret_cast<const uint64_t*>(a.destinations);
        uint32_t distinct = 0;
        for (uint32_t i = 0; i < a.count; ++i) distinct += from[i] != 0 && to[i] != 0 && from[i] != to[i] ? 1 : 0;
        line += kv_layout_text(a.layout) + " count=" + std::to_string(a.count) + " distinct_pairs=" + std::to_string(distinct);
    } else {
        const auto a = kv_arg<grey_kvk_attend_args>(params);
        char numbers[200];
        std::snprintf(numbers, sizeof numbers, " layer=%u query_heads=%u group=%u group_chunks=%u splits=%u scale_log2=%.9g queries=%d output=%d partials=%d",
                      a.layer, a.query_heads, a.group, a.group_chunks, a.splits, static_cast<double>(a.scale_log2), a.queries != 0, a.output != 0,
                      a.partials != 0);
        line += kv_layout_text(a.layout) + numbers;
        if (a.stage_bytes != 0) line += " stage_bytes=" + std::to_string(a.stage_bytes);
        line += " sequences=";
        const auto* sequences = reinterpret_cast<const grey_kvk_sequence*>(a.sequences);
        const auto* blocks = reinterpret_cast<const uint64_t*>(a.blocks);
        for (uint32_t b = 0; b < kv_batch(name, gx, gz, a); ++b) {
            const grey_kvk_sequence& s = sequences[b];
            line += (b == 0 ? "" : ";") + std::to_string(s.first) + ".." + std::to_string(s.last) + "@" + std::to_string(s.table_offset) + ":";
            const uint64_t span = (s.last + a.layout.tokens_per_block - 1) / a.layout.tokens_per_block;
            for (uint64_t i = 0; i < span; ++i) line += (blocks[s.table_offset + i] & 1u) != 0 ? "q" : "w";
        }
    }
    return line;
}

// Appends the launch to FAKE_KV_LAUNCH_LOG's file when it is a KV kernel's. The caller serializes launches.
inline void log_kv_launch_now(const std::string& name, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int block, unsigned int shared,
                          void** params) {
    const char* path = std::getenv("FAKE_KV_LAUNCH_LOG");
    if (path == nullptr || !is_kv_kernel(name)) return;
    if (std::FILE* f = std::fopen(path, "a")) {
        std::fprintf(f, "%s\n", kv_launch_line(name, gx, gy, gz, block, shared, params).c_str());
        std::fclose(f);
    }
}

// Element i of a store's input (grey_kvk_store_args.dtype) as a float.
inline float kv_store_input(uint64_t address, uint64_t i, uint32_t dtype) {
    using namespace grey::common;
    if (dtype == GREY_KVK_F32) return reinterpret_cast<const float*>(address)[i];
    const uint16_t bits = reinterpret_cast<const uint16_t*>(address)[i];
    return dtype == GREY_KVK_BF16 ? bf16_to_f32(bits) : f16_to_f32(bits);
}

// grey_kv_store on the host: token i's rows into slot slots[i] of blocks[i] (K rotated when the layout
// says so), folding the first non-finite input's index into *non_finite as the kernel does.
inline void kv_store_stand_in(const grey_kvk_store_args& a) {
    using namespace grey::common;
    const KvLayout& l = a.layout;
    const uint64_t total = uint64_t{a.layer_count} * a.tokens * l.kv_heads * l.head_dim;
    std::vector<float> keys(total), values(total);
    for (uint64_t i = 0; i < total; ++i) {
        keys[i] = kv_store_input(a.keys, i, a.dtype);
        values[i] = kv_store_input(a.values, i, a.dtype);
        if (a.non_finite == 0) continue;
        auto& first = *reinterpret_cast<uint64_t*>(a.non_finite);
        if (!std::isfinite(keys[i])) first = std::min<uint64_t>(first, i);
        if (!std::isfinite(values[i])) first = std::min<uint64_t>(first, total + i);
    }
    const auto* blocks = reinterpret_cast<const uint64_t*>(a.blocks);
    const auto* slots = reinterpret_cast<const uint32_t*>(a.slots);
    std::vector<float> row(l.head_dim);
    for (uint32_t layer = 0; layer < a.layer_count; ++layer)
        for (uint32_t token = 0; token < a.tokens; ++token)
            for (uint32_t head = 0; head < l.kv_heads; ++head) {
                const uint64_t from = ((uint64_t{layer} * a.tokens + token) * l.kv_heads + head) * l.head_dim;
                std::copy_n(keys.begin() + static_cast<std::ptrdiff_t>(from), l.head_dim, row.begin());
                if (l.hadamard_k != 0) kv_hadamard_rotate(row.data(), l.head_dim);
                auto* dense = reinterpret_cast<uint16_t*>(blocks[token]);
                for (uint32_t c = 0; c < l.head_dim; ++c) {
                    const uint64_t to = kv_dense_index(l, layer + a.layer_first, head, slots[token], c);
                    dense[to] = kv_to_window(l, row[c]);
                    dense[kv_block_elements(l) + to] = kv_to_window(l, values[from + c]);
                }
            }
}

// grey_kv_compress (and grey_kv_compress_warps: the same bytes) on the host.
inline void kv_compress_stand_in(const grey_kvk_compress_args& a) {
    using namespace grey::common;
    const KvLayout& l = a.layout;
    for (uint32_t b = 0; b < a.count; ++b) {
        const auto* dense = reinterpret_cast<const uint8_t*>(reinterpret_cast<const uint64_t*>(a.sources)[b]);
        auto* out = reinterpret_cast<uint8_t*>(reinterpret_cast<const uint64_t*>(a.destinations)[b]);
        std::memset(out, 0, kv_compressed_block_bytes(l));
        auto* params = reinterpret_cast<KvGroupParams*>(out);
        const uint64_t count = kv_k_param_count(l) + kv_v_param_count(l);
        for (uint64_t i = 0; i < count; ++i) params[i] = kv_group_params_at(l, dense, i);
        for (int half = 0; half < 2; ++half)
            for (uint64_t byte = 0; byte < kv_half_code_bytes(l); ++byte)
                out[(half == 0 ? kv_k_codes_offset(l) : kv_v_codes_offset(l)) + byte] = kv_code_byte_at(l, dense, params, half, byte);
    }
}

// grey_kv_attend_combine on the host: the whole attention, in float64, from the tables.
inline void kv_attend_stand_in(const grey_kvk_attend_args& a, unsigned int batch) {
    using namespace grey::common;
    const KvLayout& l = a.layout;
    const uint32_t dim = l.head_dim;
    const auto* sequences = reinterpret_cast<const grey_kvk_sequence*>(a.sequences);
    const auto* table = reinterpret_cast<const uint64_t*>(a.blocks);
    const auto* queries = reinterpret_cast<const float*>(a.queries);
    auto* output = reinterpret_cast<float*>(a.output);
    const double scale = static_cast<double>(a.scale_log2) / 1.4426950408889634;
    std::vector<double> q(dim), acc(dim), scores;
    for (unsigned int b = 0; b < batch; ++b) {
        const grey_kvk_sequence& s = sequences[b];
        for (uint32_t h = 0; h < a.query_heads; ++h) {
            const uint32_t head = h / a.group;
            const float* query = queries + (uint64_t{b} * a.query_heads + h) * dim;
            for (uint32_t c = 0; c < dim; ++c) q[c] = query[c];
            if (l.hadamard_k != 0) kv_hadamard_rotate(q.data(), dim);
            scores.assign(s.last - s.first, 0.0);
            double top = -INFINITY;
            auto block_of = [&](uint64_t t) { return table[s.table_offset + t / l.tokens_per_block]; };
            for (uint64_t t = s.first; t < s.last; ++t) {
                const uint64_t entry = block_of(t);
                const auto* block = reinterpret_cast<const uint8_t*>(entry & ~uint64_t{1});
                double dot = 0.0;
                for (uint32_t c = 0; c < dim; ++c)
                    dot += q[c] * kv_value(l, block, (entry & 1u) != 0, 0, a.layer, head, static_cast<uint32_t>(t % l.tokens_per_block), c);
                scores[t - s.first] = dot * scale;
                top = std::max(top, scores[t - s.first]);
            }
            double total = 0.0;
            acc.assign(dim, 0.0);
            for (uint64_t t = s.first; t < s.last; ++t) {
                const uint64_t entry = block_of(t);
                const auto* block = reinterpret_cast<const uint8_t*>(entry & ~uint64_t{1});
                const double p = std::exp(scores[t - s.first] - top);
                total += p;
                for (uint32_t c = 0; c < dim; ++c)
                    acc[c] += p * kv_value(l, block, (entry & 1u) != 0, 1, a.layer, head, static_cast<uint32_t>(t % l.tokens_per_block), c);
            }
            for (uint32_t c = 0; c < dim; ++c) output[(uint64_t{b} * a.query_heads + h) * dim + c] = static_cast<float>(acc[c] / total);
        }
    }
}

// A KV kernel's launch: its arguments read now (the driver copies them at the launch), its log line and
// its stand-in to run when its stream reaches it; nullptr for a name that is no KV kernel.
inline std::function<void()> kv_launch(const std::string& name, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int block,
                                       unsigned int shared, void** params) {
    if (!is_kv_kernel(name)) return nullptr;
    auto logged = [=](auto args, auto run) {
        return [=]() mutable {
            void* copy[] = {&args};
            log_kv_launch_now(name, gx, gy, gz, block, shared, copy);
            run(args);
        };
    };
    if (name == "grey_kv_store") return logged(kv_arg<grey_kvk_store_args>(params), [](const grey_kvk_store_args& a) { kv_store_stand_in(a); });
    if (name == "grey_kv_compress" || name == "grey_kv_compress_warps")
        return logged(kv_arg<grey_kvk_compress_args>(params), [](const grey_kvk_compress_args& a) { kv_compress_stand_in(a); });
    const auto attend = kv_arg<grey_kvk_attend_args>(params);
    const bool combine = name == "grey_kv_attend_combine";
    const unsigned int batch = kv_batch(name, gx, gz, attend);
    return logged(attend, [combine, batch](const grey_kvk_attend_args& a) {
        if (combine) kv_attend_stand_in(a, batch);
    });
}

}  // namespace fake
