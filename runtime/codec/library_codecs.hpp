// The host tier's general-purpose codecs, through the libraries (liblz4, libzstd): a block is one LZ4
// block or one zstd frame. Contexts are made per call site and reused across blocks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace grey::codec {

// The zstd levels the container's encoder accepts (zstd's ordinary range; 20..22 need much memory).
inline constexpr int kZstdMinLevel = 1;
inline constexpr int kZstdMaxLevel = 19;

void encode_lz4(std::span<const std::byte> block, std::vector<std::byte>& out);
void decode_lz4(std::span<const std::byte> payload, std::span<std::byte> block);

// zstd's compression and decompression contexts, kept for the blocks of one encode or decode call.
class ZstdContexts {
public:
    ZstdContexts();
    ~ZstdContexts();
    ZstdContexts(const ZstdContexts&) = delete;
    ZstdContexts& operator=(const ZstdContexts&) = delete;

    void encode(std::span<const std::byte> block, int level, std::vector<std::byte>& out);
    void decode(std::span<const std::byte> payload, std::span<std::byte> block);

private:
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace grey::codec
