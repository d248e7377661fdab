// SHA-256 of a few independent messages at once with the SHA extensions (SHA-NI): the round instruction
// takes about three cycles to give its result but a new one can start every cycle (measured on this
// project's AMD EPYC), so one message at a time (OpenSSL) waits for each round while four interleaved
// keep the unit busy: about three times the blocks a second of one at a time, and more than the 16-lane
// AVX-512 path (sha256_x16.hpp) on the same core. Used only where the CPU reports SHA-NI (crypto.cpp falls
// back to the 16-lane path or to one at a time, which give the same bytes; the tests compare them).
#pragma once

#include <cstddef>
#include <cstdint>

namespace grey::audit {

inline constexpr size_t sha256_ni_streams = 4;

bool have_sha256_ni();
// For s < count <= sha256_ni_streams: the chaining value state[s] (eight words, a to h, as OpenSSL's
// SHA256_CTX keeps them) absorbs `blocks` 64-byte blocks at data[s], data[s] + 64, ... Only where
// have_sha256_ni().
void sha256_ni_blocks(uint32_t* const* state, const uint8_t* const* data, size_t count, size_t blocks);

}  // namespace grey::audit
