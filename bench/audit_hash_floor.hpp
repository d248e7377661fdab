// The hash floor of the audit log: what sealing or checking one record cannot cost less than, its
// HMAC-SHA-256 and its Merkle leaf hash SHA-256(0x00 || record), computed the way libgrey computes them
// (runtime/audit/crypto.cpp: OpenSSL's SHA-256 block functions, the HMAC pads hashed once per key). The
// benchmark measures it beside the log's own rates, in the same run, on the same record size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace grey_bench {

// HMAC-SHA-256 (under a fixed key) of each record's first record_size - 32 bytes, and the leaf hash of
// each whole record, for `count` records of `record_size` bytes laid end to end in `records`. Returns a
// value that depends on every hash, so that no work can be optimised away.
uint64_t hash_floor(std::span<const uint8_t> records, size_t record_size);

// The same two hashes as record format version 2 defines them (docs/audit-format.md): the leaf hash
// SHA-256(0x00 || record without its last 32 bytes) and the HMAC of that 32-byte leaf. Not the issue's
// floor, which is hash_floor above; measured beside it to show what version 2's own hashing costs.
uint64_t hash_floor_v2(std::span<const uint8_t> records, size_t record_size);

}  // namespace grey_bench
