// Strict validation of JSON read or written by the audit log, without building a document. Appending
// checks every payload, and nlohmann::json::accept, which runs the full lexer and SAX machinery, cost
// more than sealing the record itself. The grammar is exactly what nlohmann::json::accept (3.11, no
// comments) accepts — RFC 8259 text, UTF-8 checked byte by byte, surrogate escapes paired, an optional
// leading UTF-8 byte order mark, and no number that overflows a double — with two limits on top, so
// that no reader of the log (ours, a binding's, a script's) meets a document it cannot handle:
//   - containers nest at most max_json_depth deep (recursive parsers and printers overflow the stack
//     on deeper input);
//   - no object repeats a key (compared after unescaping: "a" and "\u0061" are the same key), since
//     readers disagree on which of two values wins.
// The checker itself is iterative. tests/audit/audit_json_check_test.cpp compares it with nlohmann.
#pragma once

#include "audit/json_scan.hpp"

#include <cstddef>
#include <string>
#include <string_view>

namespace grey::audit {

// The deepest nesting a payload, proof artifact or other JSON of the audit log may have: "[]" is depth
// 1, "[[]]" depth 2. docs/security.md documents it.
inline constexpr size_t max_json_depth = 64;

enum class JsonVerdict { Valid, Malformed, TooDeep, DuplicateKey };

struct JsonCheck {
    JsonVerdict verdict = JsonVerdict::Valid;
    size_t offset = 0;  // where the problem was found (bytes from the start)
    std::string key;    // the repeated key, for DuplicateKey (as it was written, escapes and all)
};

// `scan`: how strings are passed over (json_scan.hpp); the same result either way.
JsonCheck check_json(std::string_view text, JsonScan scan = JsonScan::Any);
inline bool valid_json(std::string_view text) { return check_json(text).verdict == JsonVerdict::Valid; }
// "is not valid JSON (at byte 12)", "nests deeper than 64 levels (at byte 64)", ... for messages.
std::string json_problem_text(const JsonCheck& check);

}  // namespace grey::audit
