// Records a caller gathers to append in one call (grey_audit_append_batch). Each is checked as it is
// added, with the checks of a single append, and laid out as the log stores it, so that appending the
// batch only stamps, moves and seals bytes. Not thread-safe: one thread fills a batch at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace grey::audit {

// Refuses, with GREY_ERROR_INVALID_ARGUMENT saying why, a record the log does not take: a type of other
// than 1 to 64 characters of [A-Za-z0-9._-], a payload over 1 MiB or one that is not valid JSON (with
// the limits of json_check.hpp). Types starting with "grey." pass here; the callers refuse them.
void check_record(std::string_view type, std::string_view payload);

class RecordBatch {
public:
    // The most bytes of records a batch holds (a record takes its type, its payload and 100 bytes).
    static constexpr size_t max_bytes = 64u << 20;

    // Adds a record after the checks above and refusing "grey." types; on refusal the message names
    // the entry ("entry 3: ...") and the batch stays as it was.
    void add(std::string_view type, std::string_view payload);
    [[nodiscard]] uint64_t records() const { return records_; }
    // Gives every record its timestamp: the time the batch is appended.
    void stamp(uint64_t timestamp_ns);
    // The records in their on-disk layout, unsealed (record_format.hpp's append_unsealed).
    [[nodiscard]] std::string& bytes() { return bytes_; }
    void clear() {
        bytes_.clear();
        records_ = 0;
    }

private:
    std::string bytes_;
    uint64_t records_ = 0;
};

}  // namespace grey::audit
