// OpenSSL 3 deprecates the SHA256_* block functions; libgrey's audit log uses them (crypto.cpp says why),
// so its floor is measured with them too.
#define OPENSSL_SUPPRESS_DEPRECATED
#include "audit_hash_floor.hpp"

#include <openssl/sha.h>

#include <array>
#include <cstring>
#include <utility>

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

using Digest = std::array<uint8_t, 32>;

// HMAC-SHA-256 of `n` bytes under the key whose pads were hashed once (keyed_pad).
Digest hmac(const SHA256_CTX& inner_pad, const SHA256_CTX& outer_pad, const uint8_t* data, size_t n) {
    Digest inner{}, mac{};
    SHA256_CTX ctx = inner_pad;
    SHA256_Update(&ctx, data, n);
    SHA256_Final(inner.data(), &ctx);
    ctx = outer_pad;
    SHA256_Update(&ctx, inner.data(), inner.size());
    SHA256_Final(mac.data(), &ctx);
    return mac;
}

// SHA-256(0x00 || the first n bytes of `data`).
Digest leaf_hash(const uint8_t* data, size_t n) {
    const uint8_t leaf_prefix = 0x00;
    Digest leaf{};
    SHA256_CTX ctx;
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, &leaf_prefix, 1);
    SHA256_Update(&ctx, data, n);
    SHA256_Final(leaf.data(), &ctx);
    return leaf;
}

// seal(record, inner_pad, outer_pad) -> {mac, leaf} over every record, folded into one value that
// depends on every hash.
template <class Seal>
uint64_t over_records(std::span<const uint8_t> records, size_t record_size, Seal seal) {
    const SHA256_CTX inner_pad = keyed_pad(0x36);
    const SHA256_CTX outer_pad = keyed_pad(0x5c);
    uint64_t sum = 0;
    for (size_t at = 0; at + record_size <= records.size(); at += record_size) {
        const auto [mac, leaf] = seal(records.data() + at, inner_pad, outer_pad);
        uint64_t a = 0, b = 0;
        std::memcpy(&a, mac.data(), sizeof a);
        std::memcpy(&b, leaf.data(), sizeof b);
        sum += a ^ b;
    }
    return sum;
}
}  // namespace

uint64_t hash_floor(std::span<const uint8_t> records, size_t record_size) {
    return over_records(records, record_size, [record_size](const uint8_t* record, const SHA256_CTX& inner_pad, const SHA256_CTX& outer_pad) {
        return std::pair{hmac(inner_pad, outer_pad, record, record_size - 32), leaf_hash(record, record_size)};
    });
}

uint64_t hash_floor_v2(std::span<const uint8_t> records, size_t record_size) {
    return over_records(records, record_size, [record_size](const uint8_t* record, const SHA256_CTX& inner_pad, const SHA256_CTX& outer_pad) {
        const Digest leaf = leaf_hash(record, record_size - 32);
        return std::pair{hmac(inner_pad, outer_pad, leaf.data(), leaf.size()), leaf};
    });
}

}  // namespace grey_bench
