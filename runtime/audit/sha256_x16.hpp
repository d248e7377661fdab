// SHA-256 of many messages at once: up to 16 messages of one length, each in a lane of AVX-512 registers.
// The records' leaf prefixes, MACs (version 2) and the Merkle nodes above them are independent of one
// another, and one block through OpenSSL, one message at a time, costs several times a sixteenth of a
// 16-lane block. Where the CPU also has the SHA extensions, two messages interleaved there are faster
// still (sha256_ni.hpp), and crypto.cpp takes that path; this one is for AVX-512 without SHA-NI, or when
// asked for (Lanes::Sixteen). Used only where the CPU reports AVX-512 F and BW (crypto.cpp falls back to
// one at a time, which gives the same bytes; the tests compare them).
#pragma once

#include "audit/crypto.hpp"

#include <cstddef>
#include <cstdint>

namespace grey::audit {

inline constexpr size_t sha256_x16_lanes = 16;
inline constexpr size_t sha256_x16_max_length = 4 * 64 - 9;  // four blocks with the padding

bool have_sha256_x16();
// out[l] = the digest of messages[l] (`length` bytes, at most sha256_x16_max_length), hashed on from the
// chaining value `iv`, which has absorbed `prior_bytes` (a multiple of 64) already; l < count <= 16.
// `secret`: the chaining value comes from a key's pad, and the working copies are wiped. Only where
// have_sha256_x16().
void sha256_x16(const uint32_t iv[8], uint64_t prior_bytes, const uint8_t* const* messages, size_t count, size_t length, Hash* out,
                bool secret);

// The chaining values after whole blocks of up to 16 messages that lie in one buffer, for hashes whose
// messages are longer than sha256_x16 takes (the records' leaf hashes, ahead of their chain field):
// lane l absorbs `blocks` 64-byte blocks of `first_byte` || base[offsets[l] ...] when first_byte >= 0
// (64 * blocks - 1 bytes of the buffer), else of base[offsets[l] ...] (64 * blocks bytes), from the
// chaining value `iv`; state[i][l] is word i of lane l's chaining value after them; l < count <= 16.
// Only public bytes (no wiping). Only where have_sha256_x16().
void sha256_x16_blocks(const uint32_t iv[8], const uint8_t* base, const int32_t* offsets, size_t count, int first_byte, size_t blocks,
                       uint32_t (&state)[8][sha256_x16_lanes]);

}  // namespace grey::audit
