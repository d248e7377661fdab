#include "codec/library_codecs.hpp"

#include "codec/byte_io.hpp"

#include <lz4.h>
#include <zstd.h>

namespace grey::codec {

void encode_lz4(std::span<const std::byte> block, std::vector<std::byte>& out) {
    const int bound = LZ4_compressBound(static_cast<int>(block.size()));
    const size_t at = out.size();
    out.resize(at + static_cast<size_t>(bound));
    const int written = LZ4_compress_default(reinterpret_cast<const char*>(block.data()), reinterpret_cast<char*>(out.data() + at),
                                             static_cast<int>(block.size()), bound);
    if (written <= 0) fail(GREY_ERROR_INTERNAL, "LZ4_compress_default failed on a block of " + std::to_string(block.size()) + " bytes");
    out.resize(at + static_cast<size_t>(written));
}

void decode_lz4(std::span<const std::byte> payload, std::span<std::byte> block) {
    const int got = LZ4_decompress_safe(reinterpret_cast<const char*>(payload.data()), reinterpret_cast<char*>(block.data()),
                                        static_cast<int>(payload.size()), static_cast<int>(block.size()));
    if (got < 0) corrupt("lz4 payload", "liblz4 rejects it (LZ4_decompress_safe returned " + std::to_string(got) + ")");
    if (static_cast<size_t>(got) != block.size())
        corrupt("lz4 payload", "decodes to " + std::to_string(got) + " bytes, expected " + std::to_string(block.size()));
}

struct ZstdContexts::State {
    ZSTD_CCtx* compress = nullptr;
    ZSTD_DCtx* decompress = nullptr;
    ~State() {
        ZSTD_freeCCtx(compress);
        ZSTD_freeDCtx(decompress);
    }
};

ZstdContexts::ZstdContexts() : state_(std::make_unique<State>()) {}
ZstdContexts::~ZstdContexts() = default;

void ZstdContexts::encode(std::span<const std::byte> block, int level, std::vector<std::byte>& out) {
    if (state_->compress == nullptr && (state_->compress = ZSTD_createCCtx()) == nullptr)
        fail(GREY_ERROR_OUT_OF_MEMORY, "ZSTD_createCCtx failed");
    const size_t bound = ZSTD_compressBound(block.size());
    const size_t at = out.size();
    out.resize(at + bound);
    const size_t written = ZSTD_compressCCtx(state_->compress, out.data() + at, bound, block.data(), block.size(), level);
    if (ZSTD_isError(written) != 0) fail(GREY_ERROR_INTERNAL, std::string("ZSTD_compressCCtx: ") + ZSTD_getErrorName(written));
    out.resize(at + written);
}

void ZstdContexts::decode(std::span<const std::byte> payload, std::span<std::byte> block) {
    if (state_->decompress == nullptr && (state_->decompress = ZSTD_createDCtx()) == nullptr)
        fail(GREY_ERROR_OUT_OF_MEMORY, "ZSTD_createDCtx failed");
    const size_t got = ZSTD_decompressDCtx(state_->decompress, block.data(), block.size(), payload.data(), payload.size());
    if (ZSTD_isError(got) != 0) corrupt("zstd payload", std::string("libzstd rejects it: ") + ZSTD_getErrorName(got));
    if (got != block.size()) corrupt("zstd payload", "decodes to " + std::to_string(got) + " bytes, expected " + std::to_string(block.size()));
}

}  // namespace grey::codec
