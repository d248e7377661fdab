// A damaged container never decodes to wrong bytes: every bit of the header and the block table, and
// bits throughout each codec's payloads, are flipped one at a time, and every prefix is tried. Each must
// fail with GREY_ERROR_CORRUPT (naming the block for a table entry or a payload) or, for a payload bit
// that a codec provably ignores, decode to the original bytes.
#include "codec_test_support.hpp"

#include "common/dtype.hpp"
#include "common/numeric.hpp"

#include <cmath>
#include <regex>

namespace grey::codec::test {
namespace {

constexpr uint32_t kBlock = 1024;

// Four blocks: zeros, one repeated value, data the codec compresses, and a ragged last one.
std::vector<std::byte> mixed_input(CodecId codec) {
    std::vector<std::byte> data(3 * kBlock + 202);
    for (size_t i = kBlock; i < 2 * kBlock; i += 2) data[i] = std::byte{0x12}, data[i + 1] = std::byte{0x3C};
    for (size_t i = 2 * kBlock; i + 1 < data.size(); i += 2) {
        const float v = std::sin(static_cast<float>(i)) * 0.02f;
        uint16_t bits = common::f32_to_bf16(v);
        if (codec == CodecId::bitmask && (i / 2) % 4 != 0) bits = 0;
        if ((codec == CodecId::lz4 || codec == CodecId::zstd) && (i / 2) % 8 < 5) bits = static_cast<uint16_t>((i / 64) * 3);
        std::memcpy(data.data() + i, &bits, 2);
    }
    return data;
}

void expect_corrupt_or_exact(std::span<const std::byte> damaged, std::span<const std::byte> original, const std::string& what,
                             bool must_fail, const std::string& expect_block = "") {
    std::vector<std::byte> out;
    const auto [status, message] = failure_of([&] { out = decode(damaged); });
    if (status == GREY_OK) {
        EXPECT_FALSE(must_fail) << what << ": decoded without an error";
        EXPECT_TRUE(out.size() == original.size() && std::memcmp(out.data(), original.data(), out.size()) == 0)
            << what << ": decoded to WRONG bytes";
        return;
    }
    EXPECT_EQ(status, GREY_ERROR_CORRUPT) << what << ": " << message;
    if (!expect_block.empty()) {
        EXPECT_NE(message.find(expect_block), std::string::npos) << what << ": " << message;
    }
}

class Corruption : public ::testing::TestWithParam<CodecId> {};

TEST_P(Corruption, EveryHeaderAndTableBitIsChecked) {
    const auto data = mixed_input(GetParam());
    const auto container = encode(data, {GetParam(), GREY_DTYPE_BF16, kBlock, 3});
    const auto info = read_container_info(container);
    ASSERT_EQ(info.blocks.size(), 4u);
    if (GetParam() != CodecId::raw) {
        ASSERT_EQ(info.blocks[2].codec, GetParam());
    }
    for (size_t byte = 0; byte < info.payload_start; ++byte) {
        for (int bit = 0; bit < 8; ++bit) {
            auto damaged = container;
            damaged[byte] ^= static_cast<std::byte>(1u << bit);
            std::string block;
            if (byte >= kHeaderSize) block = "block " + std::to_string((byte - kHeaderSize) / kEntrySize) + " of 4";
            expect_corrupt_or_exact(damaged, data, "bit " + std::to_string(bit) + " of byte " + std::to_string(byte), true, block);
        }
    }
}

TEST_P(Corruption, PayloadBitsNeverGiveWrongBytes) {
    const auto data = mixed_input(GetParam());
    const auto container = encode(data, {GetParam(), GREY_DTYPE_BF16, kBlock, 3});
    const auto info = read_container_info(container);
    size_t failures = 0;
    size_t tries = 0;
    for (uint32_t b = 0; b < info.blocks.size(); ++b) {
        const auto& entry = info.blocks[b];
        for (uint64_t at = 0; at < entry.stored_size; ++at) {
            auto damaged = container;
            const size_t byte = info.payload_start + entry.offset + at;
            damaged[byte] ^= static_cast<std::byte>(1u << (at % 8));
            const std::string block = "block " + std::to_string(b) + " of 4";
            const std::string what = block + " payload byte " + std::to_string(at);
            std::vector<std::byte> out;
            const auto [status, message] = failure_of([&] { out = decode(damaged); });
            ++tries;
            if (status != GREY_OK) {
                ++failures;
                EXPECT_EQ(status, GREY_ERROR_CORRUPT) << what << ": " << message;
                EXPECT_NE(message.find(block), std::string::npos) << what << ": " << message;
            } else {
                EXPECT_TRUE(std::memcmp(out.data(), data.data(), data.size()) == 0) << what << ": decoded to WRONG bytes";
            }
        }
    }
    // The codecs of libgrey's own formats have no unused bits; an LZ match offset changed to point at an
    // identical earlier copy may decode to the same bytes, which is harmless.
    if (GetParam() != CodecId::lz4 && GetParam() != CodecId::zstd) {
        EXPECT_EQ(failures, tries);
    }
    EXPECT_GT(failures, 0u);
}

TEST_P(Corruption, EveryTruncationAndExtensionFails) {
    const auto data = mixed_input(GetParam());
    const auto container = encode(data, {GetParam(), GREY_DTYPE_BF16, kBlock, 3});
    for (size_t n = 0; n < container.size(); n += (n < 300 ? 1 : 37))
        expect_corrupt_or_exact(std::span(container).first(n), data, "the first " + std::to_string(n) + " bytes", true);
    auto longer = container;
    longer.push_back(std::byte{0});
    expect_corrupt_or_exact(longer, data, "one byte more", true);
}

INSTANTIATE_TEST_SUITE_P(Codec, Corruption,
                         ::testing::Values(CodecId::raw, CodecId::bitmask, CodecId::floats, CodecId::lz4, CodecId::zstd),
                         [](const auto& param_info) { return std::string(codec_name(param_info.param)); });

TEST(Corruption, FailedDecodeLeavesNoHalfVerifiedBytes) {
    const auto data = mixed_input(CodecId::floats);
    auto container = encode(data, {CodecId::floats, GREY_DTYPE_BF16, kBlock, 3});
    container.back() ^= std::byte{1};  // the ragged last block's payload
    std::vector<std::byte> out(data.size(), std::byte{0x55});
    const auto [status, message] = failure_of([&] { decode_into(container, out); });
    EXPECT_EQ(status, GREY_ERROR_CORRUPT);
    EXPECT_NE(message.find("block 3 of 4"), std::string::npos) << message;
    EXPECT_TRUE(std::all_of(out.begin(), out.end(), [](std::byte b) { return b == std::byte{0}; }));
}

TEST(Corruption, ABlockDecodesAloneAndChecksItsIndex) {
    const auto data = mixed_input(CodecId::floats);
    const auto container = encode(data, {CodecId::floats, GREY_DTYPE_BF16, kBlock, 3});
    const auto info = read_container_info(container);
    std::vector<std::byte> block(kBlock);
    decode_block(container, info, 2, block);
    EXPECT_EQ(std::memcmp(block.data(), data.data() + 2 * kBlock, kBlock), 0);
    // Block 0's entry moved to index 1 fails its checksum (the index seeds it).
    auto swapped = container;
    std::memcpy(swapped.data() + kHeaderSize + kEntrySize, container.data() + kHeaderSize, 8);
    EXPECT_EQ(failure_of([&] { (void)decode(swapped); }).first, GREY_ERROR_CORRUPT);
    EXPECT_EQ(failure_of([&] { decode_block(container, info, 4, block); }).first, GREY_ERROR_INVALID_ARGUMENT);
}

TEST(Corruption, ARangeDecodesOnlyItsBlocksAndChecksThem) {
    const auto data = mixed_input(CodecId::floats);
    const auto container = encode(data, {CodecId::floats, GREY_DTYPE_BF16, kBlock, 3});
    const auto info = read_container_info(container);
    // Within one block, across a boundary, whole blocks, the ragged end, nothing.
    for (const auto& [offset, size] : std::vector<std::pair<uint64_t, uint64_t>>{
             {5, 7}, {kBlock - 3, 10}, {kBlock, 2 * kBlock}, {3 * kBlock + 1, data.size() - 3 * kBlock - 1}, {17, 0}, {0, data.size()}}) {
        std::vector<std::byte> out(size);
        decode_range(container, info, offset, out);
        EXPECT_EQ(size == 0 ? 0 : std::memcmp(out.data(), data.data() + offset, size), 0) << offset << "+" << size;
    }
    std::vector<std::byte> one(1);
    EXPECT_EQ(failure_of([&] { decode_range(container, info, data.size(), one); }).first, GREY_ERROR_INVALID_ARGUMENT);
    // A damaged block is met only by ranges that touch it.
    auto damaged = container;
    damaged.back() ^= std::byte{1};  // the ragged last block's payload
    std::vector<std::byte> first(kBlock);
    decode_range(damaged, info, 0, first);
    EXPECT_EQ(std::memcmp(first.data(), data.data(), kBlock), 0);
    EXPECT_EQ(failure_of([&] { decode_range(damaged, info, data.size() - 1, one); }).first, GREY_ERROR_CORRUPT);
}

}  // namespace
}  // namespace grey::codec::test
