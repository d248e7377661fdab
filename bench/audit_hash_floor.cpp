// OpenSSL 3 deprecates the SHA256_* block functions; libgrey's audit log uses them (crypto.cpp says why),
// so its floor is measured with them too.
#define OPENSSL_SUPPRESS_DEPRECATED
#include "audit_hash_floor.hpp"

#include <openssl/sha.h>

#include <array>
#include <cstring>

namespace grey_bench {

namespace {
SHA256_CTX keyed_pad(uint8_t pad) {
    std::array<uint8_t, SHA256_CBLOCK> block{};
    for (size_t i = 0; i < block.size(); ++i) block[i] = static_cast<uint8_t>((i < 32 ? 0xA5 : 0) ^ pad);
    SHA256_CTX ctx;
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, block.data(), block.size());
    return ctx;
}
}  // namespace

uint64_t hash_floor(std::span<const uint8_t> records, size_t record_size) {
    const SHA256_CTX inner_pad = keyed_pad(0x36);
    const SHA256_CTX outer_pad = keyed_pad(0x5c);
    uint64_t sum = 0;
    for (size_t at = 0; at + record_size <= records.size(); at += record_size) {
        const uint8_t* record = records.data() + at;
        std::array<uint8_t, 32> inner{}, mac{}, leaf{};
        SHA256_CTX ctx = inner_pad;
        SHA256_Update(&ctx, record, record_size - 32);
        SHA256_Final(inner.data(), &ctx);
        ctx = outer_pad;
        SHA256_Update(&ctx, inner.data(), inner.size());
        SHA256_Final(mac.data(), &ctx);
        const uint8_t leaf_prefix = 0x00;
        SHA256_Init(&ctx);
        SHA256_Update(&ctx, &leaf_prefix, 1);
        SHA256_Update(&ctx, record, record_size);
        SHA256_Final(leaf.data(), &ctx);
        uint64_t a = 0, b = 0;
        std::memcpy(&a, mac.data(), sizeof a);
        std::memcpy(&b, leaf.data(), sizeof b);
        sum += a ^ b;
    }
    return sum;
}

uint64_t hash_floor_v2(std::span<const uint8_t> records, size_t record_size) {
    const SHA256_CTX inner_pad = keyed_pad(0x36);
    const SHA256_CTX outer_pad = keyed_pad(0x5c);
    uint64_t sum = 0;
    for (size_t at = 0; at + record_size <= records.size(); at += record_size) {
        const uint8_t* record = records.data() + at;
        std::array<uint8_t, 32> inner{}, mac{}, leaf{};
        const uint8_t leaf_prefix = 0x00;
        SHA256_CTX ctx;
        SHA256_Init(&ctx);
        SHA256_Update(&ctx, &leaf_prefix, 1);
        SHA256_Update(&ctx, record, record_size - 32);
        SHA256_Final(leaf.data(), &ctx);
        ctx = inner_pad;
        SHA256_Update(&ctx, leaf.data(), leaf.size());
        SHA256_Final(inner.data(), &ctx);
        ctx = outer_pad;
        SHA256_Update(&ctx, inner.data(), inner.size());
        SHA256_Final(mac.data(), &ctx);
        uint64_t a = 0, b = 0;
        std::memcpy(&a, mac.data(), sizeof a);
        std::memcpy(&b, leaf.data(), sizeof b);
        sum += a ^ b;
    }
    return sum;
}

}  // namespace grey_bench
