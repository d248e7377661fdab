// The inner loop of the audit log's JSON check (json_check.cpp): how many bytes from the start of a
// string's contents need no closer look. Appending checks every payload, and most of a payload is plain
// ASCII inside strings.
#pragma once

#include <cstddef>
#include <cstdint>

namespace grey::audit {

// How the run is found: Any takes 64 bytes at a time in AVX-512 registers where the CPU has AVX-512 F
// and BW, else eight at a time in a 64-bit word; EightBytes always does the latter (the tests compare
// the two on every length and position).
enum class JsonScan { Any, EightBytes };

// The length of the longest prefix of [p, p + n) with no quote, backslash, control character (< 0x20)
// or byte of a multi-byte UTF-8 sequence (>= 0x80).
size_t plain_run(const uint8_t* p, size_t n, JsonScan scan);

}  // namespace grey::audit
