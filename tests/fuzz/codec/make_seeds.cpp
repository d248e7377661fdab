// Writes the codec fuzzer's seed corpus: one small container per codec and element type (with zero,
// fill, compressed and ragged blocks), and encoder inputs. Built beside the fuzzer:
//   build/fuzz/bin/make_codec_seeds tests/fuzz/codec/corpus/codec
#include "codec/container.hpp"

#include <cmath>
#include <cstring>
#include <fstream>
#include <string>

using namespace grey::codec;

namespace {

void write(const std::string& path, std::span<const std::byte> bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// Three blocks and a ragged end: zeros, one value repeated, then small floats (a third of them zero in
// the third block), as 4-byte floats or as their top halves (bf16-like 2-byte elements).
std::vector<std::byte> sample(uint32_t block_size, bool halves) {
    const uint32_t width = halves ? 2 : 4;
    std::vector<std::byte> data(3 * block_size + 37);
    for (size_t i = block_size; i < 2 * block_size; i += width) std::memcpy(data.data() + i, "\x80\x3f\x80\x3f", width);
    for (size_t i = 2 * block_size; i + width <= data.size(); i += width) {
        const float v = (i / width) % 3 == 0 && i < 3 * block_size ? 0.0f : std::sin(static_cast<float>(i)) * 0.01f;
        uint32_t bits;
        std::memcpy(&bits, &v, 4);
        if (halves) bits >>= 16;
        std::memcpy(data.data() + i, &bits, width);
    }
    return data;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    const std::string dir = argv[1];
    const struct {
        const char* name;
        CodecId codec;
        grey_dtype dtype;
        uint32_t block_size;  // the float codec's table and lane states need blocks of a few KiB to pay off
    } seeds[] = {{"raw-u8", CodecId::raw, GREY_DTYPE_U8, 256},           {"bitmask-f32", CodecId::bitmask, GREY_DTYPE_F32, 256},
                 {"bitmask-bf16", CodecId::bitmask, GREY_DTYPE_BF16, 256}, {"float-f32", CodecId::floats, GREY_DTYPE_F32, 2048},
                 {"float-bf16", CodecId::floats, GREY_DTYPE_BF16, 2048},   {"float-f16", CodecId::floats, GREY_DTYPE_F16, 2048},
                 {"float-f64", CodecId::floats, GREY_DTYPE_F64, 2048},     {"lz4-u8", CodecId::lz4, GREY_DTYPE_U8, 256},
                 {"zstd-f32", CodecId::zstd, GREY_DTYPE_F32, 256}};
    for (const auto& seed : seeds) {
        const auto data = sample(seed.block_size, seed.dtype == GREY_DTYPE_BF16 || seed.dtype == GREY_DTYPE_F16);
        write(dir + "/seed-" + seed.name, encode(data, {seed.codec, seed.dtype, seed.block_size, 1}));
    }
    const auto data = sample(256, false);
    write(dir + "/seed-empty", encode({}, {}));
    std::vector<std::byte> input = {std::byte{'E'}, std::byte{'N'}, std::byte{'C'}, std::byte{2 + 5 * 1}, std::byte{3}};
    input.insert(input.end(), data.begin(), data.end());
    write(dir + "/seed-encode-float-bf16", input);
    return 0;
}
