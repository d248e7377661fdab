// SHA-256 of a few independent messages at once with the SHA extensions (SHA-NI). The round instruction
// gives its result about three cycles after it starts but can start about once a cycle (measured on this
// project's AMD EPYC, Zen 4), so one message at a time waits on every round; two interleaved took 51
// TSC ticks (2.6 GHz) a block each against 91 for one stream of the same loop, and the records' leaf prefixes and MACs
// took 71 and 55 ns a record against 132 and 102 one at a time through OpenSSL and 93 and 75 through the
// 16-lane AVX-512 path (sha256_x16.hpp), on one core. Used only where the CPU reports SHA-NI (crypto.cpp
// falls back to the 16-lane path or to one at a time, which give the same bytes; the tests compare them).
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
