// The host codecs side by side on real bf16 weights, in one run: the float codec against zstd (levels 1
// and 3) and lz4, each through the LT-Block container (64 KiB blocks), beside the order-0 entropy bounds
// computed on the same bytes. Prints ratio, encode and decode GB/s (of raw bytes; the best of --reps
// runs, one thread) and checks every decode bit for bit.
//   build/release/bin/grey_codec_bench $(scripts/fetch-model.sh) [--reps N]
// The weights are a safetensors file's F32 tensors converted to bf16 (round to nearest even).
#include "codec/container.hpp"
#include "common/numeric.hpp"
#include "core/error.hpp"
#include "model/model_file.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace {

using namespace grey::codec;
using Clock = std::chrono::steady_clock;

std::vector<std::byte> read_file(const char* path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) grey::fail(GREY_ERROR_NOT_FOUND, std::string("cannot open ") + path);
    const std::vector<char> text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<std::byte> out(text.size());
    std::memcpy(out.data(), text.data(), text.size());
    return out;
}

// Every F32 tensor of the file, converted to bf16 and concatenated.
std::vector<std::byte> bf16_weights(std::span<const std::byte> file) {
    std::vector<std::byte> out;
    for (const auto& tensor : grey::model::parse_safetensors(file).tensors) {
        if (tensor.dtype != GREY_DTYPE_F32) continue;
        for (size_t i = 0; i + 4 <= tensor.data.size(); i += 4) {
            float v;
            std::memcpy(&v, tensor.data.data() + i, 4);
            const uint16_t bits = grey::common::f32_to_bf16(v);
            out.push_back(static_cast<std::byte>(bits & 0xFF));
            out.push_back(static_cast<std::byte>(bits >> 8));
        }
    }
    return out;
}

template <size_t N>
double entropy_bits(const std::array<uint64_t, N>& counts, uint64_t total) {
    double h = 0;
    for (uint64_t c : counts)
        if (c != 0) h -= static_cast<double>(c) / static_cast<double>(total) * std::log2(static_cast<double>(c) / static_cast<double>(total));
    return h;
}

struct Method {
    const char* name;
    CodecId codec;
    int level;
};

}  // namespace

int main(int argc, char** argv) try {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s MODEL.safetensors [--reps N]\n", argv[0]);
        return 2;
    }
    int reps = 3;
    if (argc == 4 && std::string(argv[2]) == "--reps") reps = std::max(1, std::atoi(argv[3]));
    const auto file = read_file(argv[1]);
    const auto data = bf16_weights(file);
    const size_t n = data.size() / 2;

    // Order-0 bounds on the same bytes: the exponent byte and the sign+mantissa byte each coded by its
    // own distribution (what the float codec aims at), and the 16-bit value as one symbol.
    std::array<uint64_t, 256> exponents{};
    std::array<uint64_t, 256> rests{};
    std::vector<uint64_t> values(65536);
    for (size_t i = 0; i < n; ++i) {
        uint16_t x;
        std::memcpy(&x, data.data() + 2 * i, 2);
        ++exponents[(x >> 7) & 0xFF];
        ++rests[((x >> 8) & 0x80) | (x & 0x7F)];
        ++values[x];
    }
    double h_value = 0;
    for (uint64_t c : values)
        if (c != 0) h_value -= static_cast<double>(c) / static_cast<double>(n) * std::log2(static_cast<double>(c) / static_cast<double>(n));
    const double h_exp = entropy_bits(exponents, n);
    const double h_rest = entropy_bits(rests, n);

    std::printf("codec bench: %s, %zu bf16 values (%.1f MB), 64 KiB blocks, best of %d, one thread\n", argv[1], n, data.size() / 1e6, reps);
    std::printf("order-0 entropy: exponent %.3f bits, sign+mantissa %.3f bits -> bound ratio %.4f; 16-bit value %.3f bits -> %.4f\n",
                h_exp, h_rest, 16.0 / (h_exp + h_rest), h_value, 16.0 / h_value);
    std::printf("%-10s %10s %12s %12s %14s\n", "codec", "ratio", "encode GB/s", "decode GB/s", "vs exp+sm bound");
    const Method methods[] = {{"float", CodecId::floats, 1}, {"zstd-1", CodecId::zstd, 1}, {"zstd-3", CodecId::zstd, 3}, {"lz4", CodecId::lz4, 1}};
    std::vector<std::byte> back(data.size());
    for (const auto& m : methods) {
        double best_encode = 1e30, best_decode = 1e30;
        std::vector<std::byte> container;
        for (int r = 0; r < reps; ++r) {
            const auto t0 = Clock::now();
            container = encode(data, {m.codec, GREY_DTYPE_BF16, kDefaultBlockSize, m.level});
            const auto t1 = Clock::now();
            decode_into(container, back);
            const auto t2 = Clock::now();
            best_encode = std::min(best_encode, std::chrono::duration<double>(t1 - t0).count());
            best_decode = std::min(best_decode, std::chrono::duration<double>(t2 - t1).count());
        }
        if (back != data) grey::fail(GREY_ERROR_INTERNAL, std::string(m.name) + " did not round-trip");
        const double ratio = static_cast<double>(data.size()) / static_cast<double>(container.size());
        std::printf("%-10s %10.4f %12.3f %12.3f %13.1f%%\n", m.name, ratio, data.size() / best_encode / 1e9, data.size() / best_decode / 1e9,
                    100.0 * ratio / (16.0 / (h_exp + h_rest)));
    }
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "codec bench: %s\n", e.what());
    return 1;
}
