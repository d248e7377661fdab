// libFuzzer target: the LT-Block container decoder on arbitrary bytes (every header and table field, and
// each codec's payload), and the encoders on arbitrary data. Decoding may refuse (grey::Error with
// GREY_ERROR_CORRUPT) but must never crash, read out of bounds, allocate without bound or hang; what it
// accepts must encode again and decode to the same bytes. The device decoders (common/codec_decode.hpp,
// run lane by lane, each payload alone in an allocation of its size) must fault on exactly the blocks the
// host decoder refuses and give its bytes on the others. Inputs that start with "ENC" are data for the
// encoders instead: the next bytes choose the codec, dtype and block size, and the round trip must be
// exact.
#include "codec/container.hpp"
#include "codec/device_jobs.hpp"
#include "common/codec_decode.hpp"
#include "core/error.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

using namespace grey::codec;

constexpr uint64_t kMaxDecodedBytes = 16u << 20;  // zero blocks make huge outputs from tiny inputs

void round_trip(std::span<const std::byte> data, const EncodeOptions& options) {
    const auto container = encode(data, options);
    const auto back = decode(container);
    if (!std::equal(back.begin(), back.end(), data.begin(), data.end())) __builtin_trap();
}

void fuzz_device_lanes(std::span<const std::byte> bytes, const ContainerInfo& info) {
    const DeviceDecodePlan plan = device_decode_plan(bytes, info, 0, info.raw_size);
    grey::common::RansWorkspace workspace;
    for (size_t j = 0; j < plan.jobs.size(); ++j) {
        grey::common::CodecBlockJob job = plan.jobs[j];
        std::vector<uint8_t> payload(job.stored_size);
        if (!payload.empty()) std::memcpy(payload.data(), bytes.data() + job.payload, payload.size());
        std::vector<uint8_t> lanes(job.raw_size);
        job.payload = 0;
        job.output = 0;
        const uint32_t fault = grey::common::decode_block_by_lanes(payload.data(), lanes.data(), job, &workspace);
        std::vector<std::byte> host(job.raw_size);
        bool host_decodes = true;
        try {
            decode_block(bytes, info, plan.job_blocks[j], host);
        } catch (const grey::Error&) {
            host_decodes = false;
        }
        if (host_decodes != (fault == grey::common::kFaultNone)) __builtin_trap();
        if (host_decodes && std::memcmp(lanes.data(), host.data(), host.size()) != 0) __builtin_trap();
    }
}

void fuzz_decoder(std::span<const std::byte> bytes) {
    const ContainerSizes sizes = container_sizes(bytes);
    if (sizes.raw_size > kMaxDecodedBytes) return;
    const ContainerInfo info = read_container_info(bytes);
    fuzz_device_lanes(bytes, info);
    const auto decoded = decode(bytes);
    round_trip(decoded, {CodecId::zstd, info.dtype, info.block_size, 1});
}

void fuzz_encoders(std::span<const std::byte> bytes) {
    if (bytes.size() < 3) return;
    static constexpr CodecId kCodecs[] = {CodecId::raw, CodecId::bitmask, CodecId::floats, CodecId::lz4, CodecId::zstd};
    static constexpr grey_dtype kDtypes[] = {GREY_DTYPE_U8, GREY_DTYPE_BF16, GREY_DTYPE_F16, GREY_DTYPE_F32, GREY_DTYPE_F64};
    const auto choice = std::to_integer<unsigned>(bytes[0]);
    const CodecId codec = kCodecs[choice % 5];
    grey_dtype dtype = kDtypes[(choice / 5) % 5];
    if (codec == CodecId::floats && dtype == GREY_DTYPE_U8) dtype = GREY_DTYPE_BF16;
    const uint32_t block_size = 16u * (1u + std::to_integer<unsigned>(bytes[1]));  // a multiple of every width
    round_trip(bytes.subspan(2), {codec, dtype, block_size, 1});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
    try {
        if (size >= 3 && std::memcmp(data, "ENC", 3) == 0)
            fuzz_encoders(bytes.subspan(3));
        else
            fuzz_decoder(bytes);
    } catch (const grey::Error& e) {
        // Encoding what the decoder accepted, or data, must not fail; decoding may refuse only as corrupt.
        if (e.status() != GREY_ERROR_CORRUPT) __builtin_trap();
    }
    return 0;
}
