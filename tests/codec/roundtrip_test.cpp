// Every codec round-trips bit-exactly on adversarial inputs: tiny and ragged sizes, block size +-1, all
// zeros, NaNs of every payload, infinities, denormals and random bytes, in each element type.
#include "codec_test_support.hpp"

#include "codec/float_split.hpp"
#include "common/dtype.hpp"
#include "common/numeric.hpp"

#include <limits>

namespace grey::codec::test {
namespace {

struct Input {
    std::string name;
    std::vector<std::byte> bytes;
};

std::vector<Input> adversarial_inputs(grey_dtype dtype, uint32_t block_size) {
    std::vector<Input> out;
    for (size_t size : {size_t{0}, size_t{1}, size_t{2}, size_t{3}, size_t{block_size - 1}, size_t{block_size}, size_t{block_size + 1},
                        size_t{3} * block_size + 5}) {
        out.push_back({"random " + std::to_string(size), random_bytes(size, size)});
        out.push_back({"zeros " + std::to_string(size), std::vector<std::byte>(size)});
    }
    const size_t n = size_t{2} * block_size + 7;  // a ragged last block, and an odd end for 2- and 4-byte types
    out.push_back({"0xFF", std::vector<std::byte>(n, std::byte{0xFF})});
    if (dtype == GREY_DTYPE_F32) {
        out.push_back({"nan payloads", elements<uint32_t>(n, [](size_t i) { return (0x7F800001u + static_cast<uint32_t>(i * 7919 % 0x7FFFFF)) | (i % 2 ? 0x80000000u : 0); })});
        out.push_back({"one nan", elements<uint32_t>(n, [](size_t) { return 0x7FC00000u; })});
        out.push_back({"infinities", elements<uint32_t>(n, [](size_t i) { return i % 3 ? 0x7F800000u : 0xFF800000u; })});
        out.push_back({"denormals", elements<uint32_t>(n, [](size_t i) { return static_cast<uint32_t>(i * 2654435761u) & 0x807FFFFFu; })});
        out.push_back({"sparse", elements<float>(n, [](size_t i) { return i % 5 == 0 ? static_cast<float>(i) * 0.25f : (i % 7 == 0 ? -0.0f : 0.0f); })});
    } else if (dtype == GREY_DTYPE_BF16 || dtype == GREY_DTYPE_F16) {
        const uint16_t inf = dtype == GREY_DTYPE_BF16 ? 0x7F80 : 0x7C00;
        const uint16_t mantissa = dtype == GREY_DTYPE_BF16 ? 0x7F : 0x3FF;
        out.push_back({"nan payloads", elements<uint16_t>(n, [=](size_t i) {
                           return static_cast<uint16_t>(inf | (1 + i % mantissa) | (i % 2 ? 0x8000 : 0));
                       })});
        out.push_back({"one nan", elements<uint16_t>(n, [=](size_t) { return static_cast<uint16_t>(inf | 1); })});
        out.push_back({"infinities", elements<uint16_t>(n, [=](size_t i) { return static_cast<uint16_t>(i % 3 ? inf : inf | 0x8000); })});
        out.push_back({"denormals", elements<uint16_t>(n, [=](size_t i) { return static_cast<uint16_t>((i * 40503u) & (mantissa | 0x8000)); })});
        out.push_back({"normals", elements<uint16_t>(n, [=](size_t i) {
                           const float v = std::sin(static_cast<float>(i)) * 0.05f;
                           return dtype == GREY_DTYPE_BF16 ? common::f32_to_bf16(v) : common::f32_to_f16(v);
                       })});
    }
    return out;
}

struct Case {
    grey_dtype dtype;
    uint32_t block_size;
};

class RoundTrip : public ::testing::TestWithParam<Case> {};

TEST_P(RoundTrip, EveryCodecIsBitExactOnAdversarialInputs) {
    const Case c = GetParam();
    for (const auto& input : adversarial_inputs(c.dtype, c.block_size)) {
        for (CodecId codec : codecs_for(c.dtype)) {
            EncodeOptions options;
            options.codec = codec;
            options.dtype = c.dtype;
            options.block_size = c.block_size;
            expect_round_trip(input.bytes, options, input.name + " with " + std::string(codec_name(codec)));
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Codec, RoundTrip,
                         ::testing::Values(Case{GREY_DTYPE_U8, kDefaultBlockSize}, Case{GREY_DTYPE_U8, 65535}, Case{GREY_DTYPE_U8, 65537},
                                           Case{GREY_DTYPE_BF16, kDefaultBlockSize}, Case{GREY_DTYPE_BF16, 64},
                                           Case{GREY_DTYPE_F16, kDefaultBlockSize}, Case{GREY_DTYPE_F32, kDefaultBlockSize},
                                           Case{GREY_DTYPE_F32, 16}, Case{GREY_DTYPE_F64, 4096}, Case{GREY_DTYPE_Q4_0, 1024}),
                         [](const auto& param_info) {
                             return std::string(common::dtype_name(param_info.param.dtype)) + "_block" + std::to_string(param_info.param.block_size);
                         });

TEST(CodecChoice, ConstantBlocksTakeNoPayloadAndExpandingCodecsFallBackToRaw) {
    const uint32_t bs = 4096;
    std::vector<std::byte> data(bs * 3);
    for (size_t i = bs; i < 2 * bs; i += 2) data[i] = std::byte{0x3F}, data[i + 1] = std::byte{0x80};  // one bf16 value repeated
    const auto noise = random_bytes(bs, 7);
    std::copy(noise.begin(), noise.end(), data.begin() + 2 * bs);
    EncodeOptions options{CodecId::floats, GREY_DTYPE_BF16, bs, 3};
    const auto container = expect_round_trip(data, options, "zero, fill, noise");
    const auto info = read_container_info(container);
    ASSERT_EQ(info.blocks.size(), 3u);
    EXPECT_EQ(info.blocks[0].codec, CodecId::zero);
    EXPECT_EQ(info.blocks[0].stored_size, 0u);
    EXPECT_EQ(info.blocks[1].codec, CodecId::fill);
    EXPECT_EQ(info.blocks[1].stored_size, 2u);
    EXPECT_EQ(info.blocks[2].codec, CodecId::raw);  // random bytes: the float codec would expand them
    EXPECT_EQ(info.blocks[2].stored_size, bs);
    EXPECT_EQ(container.size(), kHeaderSize + 3 * kEntrySize + 2 + bs);
}

TEST(CodecChoice, BitmaskStoresOnlyTheNonzeroElements) {
    const uint32_t bs = 4096;
    const auto data = elements<uint32_t>(bs, [](size_t i) { return i % 10 == 0 ? 0x3F800000u + static_cast<uint32_t>(i) : 0u; });
    const auto container = expect_round_trip(data, {CodecId::bitmask, GREY_DTYPE_F32, bs, 3}, "10% dense");
    const auto info = read_container_info(container);
    ASSERT_EQ(info.blocks[0].codec, CodecId::bitmask);
    // 8 bytes of header, a bit per element, and the 103 nonzero elements.
    EXPECT_EQ(info.blocks[0].stored_size, 8u + (1024 / 32) * 4 + 103 * 4);
}

TEST(CodecChoice, FloatCodecSplitsSymbolAndRemainderExactly) {
    for (uint32_t width : {2u, 4u, 8u})
        for (uint64_t x : {uint64_t{0}, ~uint64_t{0}, uint64_t{0x8000000000000000}, uint64_t{0x123456789ABCDEF0}}) {
            const uint64_t element = width == 8 ? x : x & ((uint64_t{1} << (8 * width)) - 1);
            EXPECT_EQ(float_join(float_symbol(element, width), float_remainder(element, width), width), element);
        }
    EXPECT_EQ(float_symbol(0x3F80, 2), 0x7Fu);  // bf16 1.0: exponent 127
    EXPECT_EQ(float_remainder(0xBF85, 2), 0x85u);  // bf16 -1.04: sign and mantissa
    EXPECT_EQ(float_symbol(0x3F800000, 4), 0x7Fu);
}

TEST(CodecOptions, RefusesWhatCannotBeEncoded) {
    const auto data = random_bytes(100, 1);
    const auto status_of = [&](EncodeOptions options) { return failure_of([&] { (void)encode(data, options); }).first; };
    EXPECT_EQ(status_of({CodecId::floats, GREY_DTYPE_U8, kDefaultBlockSize, 3}), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(status_of({CodecId::zero, GREY_DTYPE_U8, kDefaultBlockSize, 3}), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(status_of({CodecId::fill, GREY_DTYPE_U8, kDefaultBlockSize, 3}), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(status_of({static_cast<CodecId>(9), GREY_DTYPE_U8, kDefaultBlockSize, 3}), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(status_of({CodecId::zstd, GREY_DTYPE_U8, kMinBlockSize - 1, 3}), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(status_of({CodecId::zstd, GREY_DTYPE_U8, kMaxBlockSize + 1, 3}), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(status_of({CodecId::zstd, GREY_DTYPE_F32, 1026, 3}), GREY_ERROR_INVALID_ARGUMENT);  // not a multiple of 4
    EXPECT_EQ(status_of({CodecId::zstd, GREY_DTYPE_U8, kDefaultBlockSize, 0}), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(status_of({CodecId::zstd, static_cast<grey_dtype>(99), kDefaultBlockSize, 3}), GREY_ERROR_INVALID_ARGUMENT);
    std::vector<std::byte> small(99);
    const auto container = encode(data, {});
    EXPECT_EQ(failure_of([&] { decode_into(container, small); }).first, GREY_ERROR_INVALID_ARGUMENT);
}

TEST(CodecNames, RoundTripThroughTheirSpelling) {
    for (uint8_t n = 0; n < kCodecIdCount; ++n) EXPECT_EQ(codec_from_name(codec_name(static_cast<CodecId>(n))), static_cast<CodecId>(n));
    EXPECT_EQ(codec_from_name("brotli"), std::nullopt);
    EXPECT_EQ(codec_from_number(kCodecIdCount), std::nullopt);
}

}  // namespace
}  // namespace grey::codec::test
