// What the fake GPU drivers (tests/cuda/fake_driver, tests/hip/fake_driver) do with the quantization
// kernels of kernels/cuda/quant_*.cu, shared so that both vendors' plugins are checked by one rule:
//  - a stand-in that tests plumbing, not quantization: the first kernel of every quantize path (the one
//    that reads the whole plain tensor) flags non-finite elements as the real kernels do (grey_qk_flags:
//    the lowest non-finite and the lowest NaN index, and the `noticed` word) and writes the FNV-1a hash
//    of the plain tensor's bytes into the first 8 bytes of the quantized one; every dequantize kernel
//    copies those 8 bytes to the plain tensor; the other kernels do nothing;
//  - a launch log (FAKE_QUANT_LAUNCH_LOG names a file): one line per quantization kernel launched, with
//    its name, grid, block, dynamic shared memory and every argument but the addresses (which differ
//    between runs; only whether each is set), so a test can pin what a plugin launches for a job.
#pragma once

#include "cuda/quant_args.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace fake {

enum class QuantRole { none, scan, dequantize, other };

inline QuantRole quant_role(const std::string& n) {
    for (const char* scan : {"grey_quant_blocks", "grey_quant_q8_0", "grey_quant_grouped8", "grey_quant_grouped16", "grey_quant_rows",
                             "grey_quant_absmax", "grey_quant_search", "grey_quant_ragged"})
        if (n == scan) return QuantRole::scan;
    if (n.rfind("grey_dequant", 0) == 0) return QuantRole::dequantize;
    if (n.rfind("grey_quant_", 0) == 0 || n.rfind("grey_measure", 0) == 0) return QuantRole::other;
    return QuantRole::none;
}

inline void quant_scan(const grey_qk_args& a) {
    const uint64_t size = a.dtype == GREY_QK_F32 ? 4 : 2;
    const auto* plain = reinterpret_cast<const unsigned char*>(a.plain);
    auto* flags = reinterpret_cast<grey_qk_flags*>(a.flags);
    uint64_t hash = 0xCBF29CE484222325ull;
    for (uint64_t i = 0; i < a.elements * size; ++i) hash = (hash ^ plain[i]) * 0x100000001B3ull;
    for (uint64_t i = 0; i < a.elements; ++i) {
        uint32_t bits = 0;
        std::memcpy(&bits, plain + i * size, size);
        // Exponent all ones: infinite, or NaN when the mantissa is not zero.
        const bool f16 = a.dtype == GREY_QK_F16;
        const uint32_t exponent = size == 4 ? (bits >> 23) & 0xFF : f16 ? (bits >> 10) & 0x1F : (bits >> 7) & 0xFF;
        const uint32_t mantissa = size == 4 ? bits & 0x7FFFFF : f16 ? bits & 0x3FF : bits & 0x7F;
        if (exponent != (f16 ? 0x1Fu : 0xFFu)) continue;
        flags->non_finite = std::min<uint64_t>(flags->non_finite, i);
        if (mantissa != 0) flags->nan = std::min<uint64_t>(flags->nan, i);
        *reinterpret_cast<volatile uint32_t*>(a.noticed) = 1;
    }
    std::memcpy(reinterpret_cast<void*>(a.quantized), &hash, sizeof hash);
}

inline void dequant_stand_in(const grey_qk_args& a) {
    std::memcpy(reinterpret_cast<void*>(a.plain), reinterpret_cast<const void*>(a.quantized), 8);
}

// The launch as a line of the log; `params` as the launch call takes them (the kernels' signatures:
// (args), (args, error), (args, rows) or (args, rows, error)).
inline std::string quant_launch_line(const std::string& name, unsigned int grid, unsigned int block, unsigned int shared, void** params) {
    grey_qk_args a;
    std::memcpy(&a, params[0], sizeof a);
    const bool ragged = name == "grey_quant_ragged" || name == "grey_dequant_ragged" || name == "grey_measure_ragged";
    const bool measure = name.rfind("grey_measure", 0) == 0 || name == "grey_quant_measure";
    char line[512];
    int at = std::snprintf(line, sizeof line,
                           "%s grid=%u block=%u shared=%u elements=%llu run=%llu sets=%llu codes=%llu format=%d dtype=%d run_shift=%d "
                           "sets_are_runs=%d run_div=%llu>>%d set_div=%llu>>%d plain=%d quantized=%d flags=%d noticed=%d codings=%d absmax=%d",
                           name.c_str(), grid, block, shared, static_cast<unsigned long long>(a.elements),
                           static_cast<unsigned long long>(a.run_length), static_cast<unsigned long long>(a.param_count),
                           static_cast<unsigned long long>(a.codes_bytes), a.format, a.dtype, a.run_shift, a.sets_are_runs,
                           static_cast<unsigned long long>(a.run_multiplier), a.run_mshift, static_cast<unsigned long long>(a.set_multiplier),
                           a.set_mshift, a.plain != 0, a.quantized != 0, a.flags != 0, a.noticed != 0, a.codings != 0, a.absmax_bits != 0);
    if (ragged) {
        grey_qk_rows r;
        std::memcpy(&r, params[1], sizeof r);
        at += std::snprintf(line + at, sizeof line - at, " row_length=%llu row_bytes=%llu groups_per_row=%llu mse=%d",
                            static_cast<unsigned long long>(r.row_length), static_cast<unsigned long long>(r.row_bytes),
                            static_cast<unsigned long long>(r.groups_per_row), r.mse);
    }
    if (measure) {
        uint64_t error = 0;
        std::memcpy(&error, params[ragged ? 2 : 1], sizeof error);
        std::snprintf(line + at, sizeof line - at, " error=%d", error != 0);
    }
    return line;
}

// Appends the launch to FAKE_QUANT_LAUNCH_LOG's file when it is a quantization kernel's. The caller
// serializes launches.
inline void log_quant_launch(const std::string& name, unsigned int grid, unsigned int block, unsigned int shared, void** params) {
    const char* path = std::getenv("FAKE_QUANT_LAUNCH_LOG");
    if (path == nullptr || quant_role(name) == QuantRole::none) return;
    if (std::FILE* f = std::fopen(path, "a")) {
        std::fprintf(f, "%s\n", quant_launch_line(name, grid, block, shared, params).c_str());
        std::fclose(f);
    }
}

}  // namespace fake
