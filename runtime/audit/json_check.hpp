// Strict validation of a record's JSON payload without building a document. Appending checks every
// payload, and nlohmann::json::accept, which runs the full lexer and SAX machinery, cost more than
// sealing the record itself. This accepts exactly what nlohmann::json::accept (3.11, no comments)
// accepts — tests/audit/audit_json_check_test.cpp compares the two — so the log's contract is unchanged:
// RFC 8259 text, UTF-8 checked byte by byte, surrogate escapes paired, any nesting depth (no
// recursion), an optional leading UTF-8 byte order mark, and no number that overflows a double.
#pragma once

#include <string_view>

namespace grey::audit {

bool valid_json(std::string_view text);

}  // namespace grey::audit
