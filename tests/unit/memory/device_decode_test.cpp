// memory::decode_device_container with a backend that has the codec_decode slot: the host backend with
// that slot added, running the device decoder's lane code (common/codec_decode.hpp) on its buffers as
// the fake CUDA driver does. Blocks the device decodes, blocks only the host decodes (zstd), blocks the
// device gives up on, damaged containers (the host decoder's message, never wrong bytes) and a backend
// without the slot.
#include "host_backend_support.hpp"

#include "codec/container.hpp"
#include "common/codec_decode.hpp"
#include "core/backend.hpp"
#include "core/error.hpp"
#include "memory/device_decode.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace {

using grey::codec::CodecId;
using grey::test::host_vtable;

// What the test's codec_decode slot does with the blocks it is given.
enum class SlotMode { decode, fault_every_block, fail };
std::atomic<SlotMode> slot_mode{SlotMode::decode};
std::atomic<uint32_t> slot_blocks{0};  // blocks handed to the slot, all calls

uint8_t* address_of(void* state, grey_backend_buffer* buffer) {
    static const grey_backend_vtable vt = host_vtable();
    grey_buffer_mapping mapping{};
    mapping.struct_size = sizeof mapping;
    EXPECT_EQ(vt.buffer_map(state, buffer, &mapping), GREY_OK);
    return reinterpret_cast<uint8_t*>(static_cast<uintptr_t>(mapping.address));
}

grey_status lanes_decode(void* state, grey_backend_buffer* const* containers, grey_backend_buffer* output, const grey_backend_codec_block* blocks,
                         uint32_t count, uint32_t* faults) {
    slot_blocks += count;
    if (slot_mode == SlotMode::fail) return GREY_ERROR_BACKEND;
    grey::common::RansWorkspace workspace;
    for (uint32_t i = 0; i < count; ++i) {
        grey::common::CodecBlockJob job{};
        std::memcpy(&job, &blocks[i], sizeof job);
        faults[i] = slot_mode == SlotMode::fault_every_block
                        ? grey::common::kFaultChecksum
                        : grey::common::decode_block_by_lanes(address_of(state, containers[i]), address_of(state, output), job, &workspace);
    }
    return GREY_OK;
}

// The host backend, with or without the codec_decode slot.
std::unique_ptr<grey::Backend> host_backend(bool with_codec_decode) {
    grey_backend_vtable vt = host_vtable();
    if (with_codec_decode) vt.codec_decode = lanes_decode;
    return grey::test::host_backend_over(vt);
}

std::vector<std::byte> weights(size_t elements) {
    std::vector<std::byte> out(elements * 2);
    for (size_t i = 0; i < elements; ++i) {
        const float v = std::sin(0.07f * static_cast<float>(i)) * 0.03f;
        uint32_t bits = 0;
        std::memcpy(&bits, &v, 4);
        const auto bf16 = static_cast<uint16_t>(bits >> 16);
        std::memcpy(out.data() + 2 * i, &bf16, 2);
    }
    std::fill(out.begin() + 3 * 4096, out.begin() + 4 * 4096, std::byte{0});  // a zero block among them
    return out;
}

struct Decoded {
    grey_status status = GREY_OK;
    std::string message;
    std::vector<std::byte> bytes;
};

// The container written into a backend buffer, decoded into another at offset 100.
Decoded decode_through(const grey::Backend& backend, const std::vector<std::byte>& container, uint64_t raw_size) {
    grey_backend_buffer* in = backend.buffer_holding(0, container);
    grey_backend_buffer* out = backend.buffer_alloc(0, raw_size + 100);
    Decoded result;
    try {
        grey::memory::decode_device_container(backend, in, container.size(), out, 100, raw_size);
        result.bytes.resize(raw_size);
        backend.buffer_read(out, 100, result.bytes.data(), raw_size);
    } catch (const grey::Error& e) {
        result.status = e.status();
        result.message = e.what();
    }
    backend.buffer_free(in);
    backend.buffer_free(out);
    return result;
}

std::string host_failure(const std::vector<std::byte>& container) {
    try {
        (void)grey::codec::decode(container);
    } catch (const grey::Error& e) {
        return e.what();
    }
    return "";
}

TEST(DeviceDecodeContainer, BlocksDecodeOnTheDeviceAndTheRestOnTheHost) {
    const auto backend = host_backend(true);
    const auto data = weights(20000);  // 10 blocks of 4096 bytes, the last ragged
    for (const CodecId codec : {CodecId::floats, CodecId::bitmask, CodecId::zstd, CodecId::raw}) {
        const auto container = grey::codec::encode(data, {codec, GREY_DTYPE_BF16, 4096, 1});
        slot_mode = SlotMode::decode;
        const uint32_t before = slot_blocks;
        const Decoded d = decode_through(*backend, container, data.size());
        ASSERT_EQ(d.status, GREY_OK) << d.message;
        EXPECT_EQ(d.bytes, data) << grey::codec::codec_name(codec);
        const auto sizes = grey::codec::container_sizes(container);
        EXPECT_EQ(slot_blocks - before, sizes.block_count - sizes.blocks_by_codec[static_cast<size_t>(CodecId::zstd)])
            << "every block but zstd's goes to the device";
        // Blocks the device gives up on are decoded on the host, with the same bytes.
        slot_mode = SlotMode::fault_every_block;
        const Decoded fallback = decode_through(*backend, container, data.size());
        ASSERT_EQ(fallback.status, GREY_OK) << fallback.message;
        EXPECT_EQ(fallback.bytes, data) << grey::codec::codec_name(codec);
    }
    slot_mode = SlotMode::decode;
    // Without the slot, the whole container is read back and decoded on the host.
    const auto container = grey::codec::encode(data, {CodecId::floats, GREY_DTYPE_BF16, 4096, 1});
    const uint32_t before = slot_blocks;
    const Decoded plain = decode_through(*host_backend(false), container, data.size());
    ASSERT_EQ(plain.status, GREY_OK) << plain.message;
    EXPECT_EQ(plain.bytes, data);
    EXPECT_EQ(slot_blocks, before);
}

// The plan kept on the host from when a container was written (a buffer compressed into device memory)
// decodes exactly as the table read back does: device blocks, host-only blocks, blocks the device gives
// up on; and a range read from it gives the same bytes.
TEST(DeviceDecodeContainer, APlanKeptOnTheHostDecodesTheSame) {
    const auto backend = host_backend(true);
    const auto data = weights(20000);
    for (const CodecId codec : {CodecId::floats, CodecId::bitmask, CodecId::zstd, CodecId::raw}) {
        SCOPED_TRACE(grey::codec::codec_name(codec));
        const auto container = grey::codec::encode(data, {codec, GREY_DTYPE_BF16, 4096, 1});
        const auto plan = grey::memory::plan_device_container(container, data.size());
        ASSERT_NE(plan, nullptr);
        EXPECT_EQ(plan->table.size(), plan->info.payload_start) << "the header and the table, no payload";
        grey_backend_buffer* in = backend->buffer_holding(0, container);
        grey_backend_buffer* out = backend->buffer_alloc(0, data.size() + 100);
        for (const SlotMode mode : {SlotMode::decode, SlotMode::fault_every_block}) {
            slot_mode = mode;
            const uint32_t before = slot_blocks;
            backend->buffer_fill(out, 0, 0xEE, data.size() + 100);
            grey::memory::decode_device_container(*backend, in, container.size(), out, 100, data.size(), plan.get());
            std::vector<std::byte> bytes(data.size());
            backend->buffer_read(out, 100, bytes.data(), bytes.size());
            EXPECT_EQ(bytes, data);
            EXPECT_EQ(slot_blocks - before, plan->plan.jobs.size());
        }
        slot_mode = SlotMode::decode;
        std::vector<std::byte> range(5000);
        grey::memory::read_device_container(*backend, in, container.size(), 6000, range, plan.get());
        EXPECT_TRUE(std::equal(range.begin(), range.end(), data.begin() + 6000));
        backend->buffer_free(in);
        backend->buffer_free(out);
    }
    // Made from the host's bytes, it is checked as a table read back would be.
    const auto container = grey::codec::encode(data, {CodecId::floats, GREY_DTYPE_BF16, 4096, 1});
    try {
        (void)grey::memory::plan_device_container(container, data.size() - 2);
        ADD_FAILURE() << "a container of another size was planned";
    } catch (const grey::Error& e) {
        EXPECT_EQ(e.status(), GREY_ERROR_CORRUPT);
        EXPECT_NE(std::string(e.what()).find("raw size 40000, expected 39998"), std::string::npos) << e.what();
    }
    EXPECT_EQ(grey::memory::plan_device_container(std::span(container).first(10), data.size()), nullptr) << "too short for a header";
}

TEST(DeviceDecodeContainer, ADamagedContainerFailsWithTheHostDecodersMessage) {
    const auto backend = host_backend(true);
    slot_mode = SlotMode::decode;
    const auto data = weights(20000);
    const auto container = grey::codec::encode(data, {CodecId::floats, GREY_DTYPE_BF16, 4096, 1});
    const auto info = grey::codec::read_container_info(container);
    // A payload byte of block 5 (the device faults, the host names it), the header, a table entry.
    for (const uint64_t at : {info.payload_start + info.blocks[5].offset + info.blocks[5].stored_size - 1, uint64_t{9},
                              uint64_t{grey::codec::kHeaderSize + 2 * grey::codec::kEntrySize + 5}}) {
        auto damaged = container;
        damaged[at] ^= std::byte{0x10};
        const std::string expected = host_failure(damaged);
        ASSERT_FALSE(expected.empty()) << "byte " << at;
        const Decoded d = decode_through(*backend, damaged, data.size());
        EXPECT_EQ(d.status, GREY_ERROR_CORRUPT) << "byte " << at;
        EXPECT_EQ(d.message, expected) << "byte " << at;
    }
    // A container of other bytes than the buffer's.
    const Decoded wrong_size = decode_through(*backend, container, data.size() - 2);
    EXPECT_EQ(wrong_size.status, GREY_ERROR_CORRUPT);
    EXPECT_NE(wrong_size.message.find("raw size 40000, expected 39998"), std::string::npos) << wrong_size.message;
    // A container cut short inside its table.
    const std::vector<std::byte> cut(container.begin(), container.begin() + 60);
    const Decoded truncated = decode_through(*backend, cut, data.size());
    EXPECT_EQ(truncated.status, GREY_ERROR_CORRUPT) << truncated.message;
    // The slot's own failure is the backend's, not a silent host decode.
    slot_mode = SlotMode::fail;
    const Decoded failed = decode_through(*backend, container, data.size());
    EXPECT_EQ(failed.status, GREY_ERROR_BACKEND) << failed.message;
    slot_mode = SlotMode::decode;
}

}  // namespace
