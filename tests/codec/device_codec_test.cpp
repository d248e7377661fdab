// The device side of the codecs (common/xxh3.hpp, common/codec_decode.hpp), run lane by lane on the host
// as the fake CUDA driver runs them: the hash equals libxxhash's, every block a device decodes comes out
// as the host decoder's bytes, and a damaged payload is a fault exactly when the host decoder refuses it,
// without a read outside the payload (each payload sits alone in its allocation here, for ASan).

#include "codec_test_support.hpp"

#include "codec/device_jobs.hpp"
#include "common/codec_decode.hpp"
#include "common/xxh3.hpp"

#include <xxhash.h>

#include <bit>
#include <cmath>
#include <limits>
#include <memory>

namespace grey::codec::test {
namespace {

using common::CodecBlockJob;

TEST(DeviceHash, EqualsLibxxhashForEveryLengthClassAndSeed) {
    const auto data = random_bytes(3 * 65536 + 100, 7);
    const auto* bytes = reinterpret_cast<const uint8_t*>(data.data());
    std::mt19937_64 rng(11);
    // Every length up to four 1 KiB blocks (each short-input branch, block and stripe boundary), then
    // block sizes the container uses; unaligned starts and seeds 0, 1 and random.
    std::vector<uint64_t> lengths;
    for (uint64_t n = 0; n <= 4200; ++n) lengths.push_back(n);
    for (uint64_t n : {16383ull, 16384ull, 65535ull, 65536ull, 65537ull, 3ull * 65536}) lengths.push_back(n);
    for (const uint64_t n : lengths)
        for (const uint64_t seed : {uint64_t{0}, uint64_t{1}, uint64_t{rng()}}) {
            const uint64_t offset = n + 100 <= data.size() ? rng() % 100 : 0;
            ASSERT_EQ(common::xxh3_64(bytes + offset, n, seed), XXH3_64bits_withSeed(bytes + offset, n, seed))
                << "length " << n << ", seed " << seed << ", offset " << offset;
        }
}

// Decodes every device block of `container` lane by lane into a copy of the host's output with those
// blocks cleared; each payload is copied into an allocation of exactly its size first.
struct LaneDecode {
    std::vector<std::byte> output;
    std::vector<uint32_t> faults;  // per device job
};

LaneDecode decode_by_lanes(std::span<const std::byte> container, const ContainerInfo& info, const DeviceDecodePlan& plan,
                           std::span<const std::byte> host_output) {
    LaneDecode result{std::vector<std::byte>(host_output.begin(), host_output.end()), {}};
    auto workspace = std::make_unique<common::RansWorkspace>();
    for (const CodecBlockJob& planned : plan.jobs) {
        std::fill_n(result.output.begin() + static_cast<std::ptrdiff_t>(planned.output), planned.raw_size, std::byte{0x5A});
        auto payload = std::make_unique<uint8_t[]>(std::max<uint32_t>(planned.stored_size, 1));
        std::memcpy(payload.get(), container.data() + planned.payload, planned.stored_size);
        CodecBlockJob job = planned;
        job.payload = 0;
        // The block's bytes also alone, so that a write past its end is caught.
        auto out = std::make_unique<uint8_t[]>(std::max<uint32_t>(job.raw_size, 1));
        job.output = 0;
        result.faults.push_back(common::decode_block_by_lanes(payload.get(), out.get(), job, workspace.get()));
        std::memcpy(result.output.data() + planned.output, out.get(), job.raw_size);
    }
    (void)info;
    return result;
}

void expect_lanes_decode(std::span<const std::byte> data, const EncodeOptions& options, const std::string& what) {
    const auto container = encode(data, options);
    const ContainerInfo info = read_container_info(container);
    const DeviceDecodePlan plan = device_decode_plan(container, info, 0, data.size());
    ASSERT_EQ(plan.jobs.size() + plan.host_blocks.size(), info.blocks.size()) << what;
    for (uint32_t b : plan.host_blocks)
        EXPECT_TRUE(info.blocks[b].codec == CodecId::lz4 || info.blocks[b].codec == CodecId::zstd) << what << ": block " << b;
    const LaneDecode lanes = decode_by_lanes(container, info, plan, data);
    for (size_t j = 0; j < plan.jobs.size(); ++j) EXPECT_EQ(lanes.faults[j], common::kFaultNone) << what << ": block " << plan.job_blocks[j];
    EXPECT_TRUE(std::equal(lanes.output.begin(), lanes.output.end(), data.begin(), data.end())) << what << ": not bit-exact";
}

struct LaneCase {
    std::string name;
    grey_dtype dtype;
    std::vector<std::byte> data;
};

std::vector<LaneCase> adversarial_cases() {
    std::vector<LaneCase> out;
    const float nan_payload = std::bit_cast<float>(0x7FC01234u);
    for (size_t n : {0u, 1u, 2u, 3u, 15u, 16u, 17u, 1000u, 4097u, 65536u + 6u}) {
        out.push_back({"random u8 " + std::to_string(n), GREY_DTYPE_U8, random_bytes(n, n)});
        out.push_back({"normal f32 " + std::to_string(n), GREY_DTYPE_F32,
                       elements<float>(n, [](size_t i) { return std::sin(0.37f * static_cast<float>(i)) * 0.05f; })});
        out.push_back({"normal bf16 " + std::to_string(n), GREY_DTYPE_BF16, elements<uint16_t>(n, [](size_t i) {
                           return static_cast<uint16_t>(std::bit_cast<uint32_t>(std::cos(0.11f * static_cast<float>(i)) * 0.02f) >> 16);
                       })});
        out.push_back({"sparse f16 " + std::to_string(n), GREY_DTYPE_F16,
                       elements<uint16_t>(n, [](size_t i) { return static_cast<uint16_t>(i % 7 == 0 ? 0x3C00 + i % 300 : 0); })});
        out.push_back({"nan payloads f32 " + std::to_string(n), GREY_DTYPE_F32, elements<float>(n, [&](size_t i) {
                           return i % 3 == 0 ? nan_payload : i % 3 == 1 ? -0.0f : std::numeric_limits<float>::infinity();
                       })});
        out.push_back({"denormal f64 " + std::to_string(n), GREY_DTYPE_F64,
                       elements<double>(n, [](size_t i) { return std::numeric_limits<double>::denorm_min() * static_cast<double>(i % 5); })});
        out.push_back({"zeros f32 " + std::to_string(n), GREY_DTYPE_F32, std::vector<std::byte>(n)});
        out.push_back({"fill bf16 " + std::to_string(n), GREY_DTYPE_BF16,
                       elements<uint16_t>(n, [](size_t) { return static_cast<uint16_t>(0x3F80); })});
        out.push_back({"one exponent bf16 " + std::to_string(n), GREY_DTYPE_BF16,
                       elements<uint16_t>(n, [](size_t i) { return static_cast<uint16_t>(0x3F00 | (i * 37 % 256)); })});
    }
    return out;
}

TEST(DeviceDecode, EveryCodecAndBlockSizeGivesTheHostBytes) {
    for (const LaneCase& c : adversarial_cases())
        for (const CodecId codec : codecs_for(c.dtype))
            for (const uint32_t block_size : {16u, 4096u, 65536u}) {
                const uint32_t width = element_width_of(c.dtype);
                if (block_size % width != 0) continue;
                expect_lanes_decode(c.data, EncodeOptions{codec, c.dtype, block_size, 1},
                                    c.name + ", " + std::string(codec_name(codec)) + ", blocks of " + std::to_string(block_size));
            }
}

TEST(DeviceDecode, ThePlanCoversTheBlocksARangeTouches) {
    const auto data = elements<float>(10 * 1024, [](size_t i) { return 0.01f * static_cast<float>(i % 97); });
    const auto container = encode(data, EncodeOptions{CodecId::floats, GREY_DTYPE_F32, 1024, 1});
    const ContainerInfo info = read_container_info(container);
    const auto plan = device_decode_plan(container, info, 1500, 2000);  // blocks 1..3
    ASSERT_EQ(plan.job_blocks, (std::vector<uint32_t>{1, 2, 3}));
    EXPECT_EQ(plan.jobs[0].output, 1024u);
    EXPECT_EQ(plan.jobs[2].payload, info.payload_start + info.blocks[3].offset);
    EXPECT_TRUE(device_decode_plan(container, info, 0, 0).jobs.empty());
    // lz4 and zstd blocks stay with the host.
    const auto zstd = encode(random_bytes(4096, 3), EncodeOptions{CodecId::zstd, GREY_DTYPE_U8, 1024, 1});
    const auto text = elements<uint8_t>(4096, [](size_t i) { return static_cast<uint8_t>("abcabcabd"[i % 9]); });
    const auto lz4 = encode(text, EncodeOptions{CodecId::lz4, GREY_DTYPE_U8, 1024, 1});
    const auto lz4_plan = device_decode_plan(lz4, read_container_info(lz4), 0, text.size());
    EXPECT_TRUE(lz4_plan.jobs.empty());
    EXPECT_EQ(lz4_plan.host_blocks.size(), 4u);
    EXPECT_EQ(device_decode_plan(zstd, read_container_info(zstd), 0, 4096).jobs.size(), 4u);  // random: stored raw
}

// Every byte of every device payload flipped, one bit at a time: the lanes fault exactly when the host
// decoder (with the checksum) refuses the block, and a block they accept has the original bytes.
TEST(DeviceDecode, ADamagedPayloadFaultsExactlyWhenTheHostRefusesIt) {
    struct Damaged {
        grey_dtype dtype;
        CodecId codec;
        std::vector<std::byte> data;
    };
    const std::vector<Damaged> inputs = {
        {GREY_DTYPE_BF16, CodecId::floats, elements<uint16_t>(6000, [](size_t i) {
             return static_cast<uint16_t>(std::bit_cast<uint32_t>(std::sin(0.3f * static_cast<float>(i)) * 0.1f) >> 16);
         })},
        {GREY_DTYPE_F32, CodecId::floats, elements<float>(4004, [](size_t i) { return 1.0f / static_cast<float>(i % 40 + 1); })},
        {GREY_DTYPE_F16, CodecId::bitmask,
         elements<uint16_t>(2002, [](size_t i) { return static_cast<uint16_t>(i % 5 == 0 ? 0x4000 + i : 0); })},
        {GREY_DTYPE_U8, CodecId::bitmask, elements<uint8_t>(999, [](size_t i) { return static_cast<uint8_t>(i % 3 == 0 ? i : 0); })},
    };
    auto workspace = std::make_unique<common::RansWorkspace>();
    for (const Damaged& input : inputs) {
        const auto container = encode(input.data, EncodeOptions{input.codec, input.dtype, 1u << 20, 1});
        const ContainerInfo info = read_container_info(container);
        ASSERT_EQ(info.blocks.size(), 1u);
        ASSERT_EQ(info.blocks[0].codec, input.codec) << "input " << (&input - inputs.data());
        const auto plan = device_decode_plan(container, info, 0, input.data.size());
        const CodecBlockJob original = plan.jobs.at(0);
        int faults = 0;
        for (uint32_t at = 0; at < original.stored_size; ++at)
            for (const uint8_t bit : {uint8_t{0x01}, uint8_t{0x80}}) {
                auto damaged = container;
                damaged[original.payload + at] ^= std::byte{bit};
                auto payload = std::make_unique<uint8_t[]>(original.stored_size);
                std::memcpy(payload.get(), damaged.data() + original.payload, original.stored_size);
                auto out = std::make_unique<uint8_t[]>(original.raw_size);
                CodecBlockJob job = original;
                job.payload = 0;
                job.output = 0;
                const uint32_t fault = common::decode_block_by_lanes(payload.get(), out.get(), job, workspace.get());
                const auto host = failure_of([&] { (void)decode(damaged); });
                ASSERT_EQ(fault != common::kFaultNone, host.first != GREY_OK)
                    << "payload byte " << at << " bit " << int{bit} << ": lanes fault " << fault << ", host: " << host.second;
                if (fault == common::kFaultNone) {
                    ASSERT_EQ(0, std::memcmp(out.get(), input.data.data(), input.data.size())) << "payload byte " << at;
                }
                faults += fault != common::kFaultNone;
            }
        EXPECT_GT(faults, 0);
    }
}

TEST(DeviceDecode, AJobThatContradictsItsPayloadFaults) {
    const auto data = elements<uint16_t>(1024, [](size_t i) { return static_cast<uint16_t>(0x3C00 + i % 50); });
    const auto container = encode(data, EncodeOptions{CodecId::floats, GREY_DTYPE_F16, 1024, 1});
    const ContainerInfo info = read_container_info(container);
    const auto plan = device_decode_plan(container, info, 0, data.size());
    const auto* base = reinterpret_cast<const uint8_t*>(container.data());
    auto workspace = std::make_unique<common::RansWorkspace>();
    std::vector<uint8_t> out(data.size());
    const auto fault_of = [&](CodecBlockJob job) { return common::decode_block_by_lanes(base, out.data(), job, workspace.get()); };
    CodecBlockJob job = plan.jobs.at(0);
    ASSERT_EQ(job.codec, common::kCodecFloat);
    ASSERT_EQ(fault_of(job), common::kFaultNone);
    CodecBlockJob wrong = job;
    wrong.checksum ^= 1;
    EXPECT_EQ(fault_of(wrong), common::kFaultChecksum);
    wrong = job;
    wrong.checksum_seed ^= 1;  // an entry field changed, or the block moved
    EXPECT_EQ(fault_of(wrong), common::kFaultChecksum);
    wrong = job;
    wrong.stored_size -= 1;
    EXPECT_EQ(fault_of(wrong), common::kFaultLayout);
    wrong = job;
    wrong.element_width = 4;
    EXPECT_EQ(fault_of(wrong), common::kFaultLayout);
    wrong = job;
    wrong.codec = 5;  // lz4
    EXPECT_EQ(fault_of(wrong), common::kFaultCodec);
    wrong = job;
    wrong.codec = common::kCodecFill;  // a fill payload is one element
    EXPECT_EQ(fault_of(wrong), common::kFaultLayout);
}

}  // namespace
}  // namespace grey::codec::test
