// The name of a full block for prefix sharing: a chained hash of (parent's name, token ids, tenant salt).
// A hash only finds a candidate; the cache compares salt, parent and tokens before sharing.
#pragma once

#include <cstdint>
#include <span>

namespace grey::kv {

inline uint64_t mix64(uint64_t x) {  // splitmix64's finaliser
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

inline uint64_t block_hash(uint64_t parent_hash, std::span<const int32_t> tokens, uint64_t salt) {
    uint64_t h = mix64(parent_hash ^ mix64(salt ^ 0x6B76636163686531ull));
    for (const int32_t token : tokens) h = mix64(h ^ static_cast<uint32_t>(token));
    return h;
}

}  // namespace grey::kv
