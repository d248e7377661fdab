#include "audit/record_batch.hpp"

#include "audit/json_check.hpp"
#include "audit/record_format.hpp"
#include "core/error.hpp"


namespace grey::audit {

void check_record(std::string_view type, std::string_view payload) {
    if (!valid_type(type)) fail(GREY_ERROR_INVALID_ARGUMENT, "record type must be 1 to 64 characters of [A-Za-z0-9._-]");
    if (payload.size() > max_payload_length) fail(GREY_ERROR_INVALID_ARGUMENT, "payload is larger than 1 MiB");
    if (const JsonCheck check = check_json(payload); check.verdict != JsonVerdict::Valid)
        fail(GREY_ERROR_INVALID_ARGUMENT, "payload " + json_problem_text(check));
}

void RecordBatch::add(std::string_view type, std::string_view payload) {
    auto entry = [&] { return "entry " + std::to_string(records_) + ": "; };
    try {
        if (type.starts_with(reserved_type_prefix)) fail(GREY_ERROR_INVALID_ARGUMENT, "record types starting with 'grey.' are reserved for libgrey");
        check_record(type, payload);
    } catch (const Error& e) {
        fail(e.status(), entry() + e.what());
    }
    const size_t size = record_fixed_size + type.size() + payload.size() + record_trailer_size;
    if (bytes_.size() + size > max_bytes)
        fail(GREY_ERROR_INVALID_ARGUMENT, entry() + "the batch would hold more than 64 MiB of records: append it and start another");
    append_unsealed(bytes_, 0, type, payload);
    ++records_;
}

void RecordBatch::stamp(uint64_t timestamp_ns) {
    auto* p = reinterpret_cast<uint8_t*>(bytes_.data());
    for (size_t at = 0; at < bytes_.size(); at += load_u32(p + at)) store_u64(p + at + record_timestamp_offset, timestamp_ns);
}

}  // namespace grey::audit
