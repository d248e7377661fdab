// Helpers every backend uses to fill spec and telemetry fields: a value is set together with its state
// and source, and a field that cannot be read is marked together with its reason, so no backend can
// leave a bare number without saying where it came from. Header-only: plugins compile it in.
#pragma once

#include "grey_backend.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

namespace grey::backend {

inline void set_u64(grey_field_u64& field, uint64_t value, grey_source source) {
    field.value = value;
    field.state = GREY_FIELD_OK;
    field.source = source;
}

inline void set_f64(grey_field_f64& field, double value, grey_source source) {
    field.value = value;
    field.state = GREY_FIELD_OK;
    field.source = source;
}

inline void set_text(grey_field_text& field, std::string_view value, grey_source source) {
    const size_t n = value.size() < GREY_TEXT_MAX - 1 ? value.size() : GREY_TEXT_MAX - 1;
    std::memcpy(field.value, value.data(), n);
    field.value[n] = '\0';
    field.state = GREY_FIELD_OK;
    field.source = source;
}

// Marks a field unavailable and records why. Works for every field struct type.
template <typename Field>
void mark(Field& field, grey_field id, grey_field_state state, const grey_field_reasons* reasons,
          std::string_view reason) {
    std::memset(&field.value, 0, sizeof field.value);
    field.state = state;
    field.source = GREY_SOURCE_NONE;
    if (reasons != nullptr && reasons->set != nullptr) {
        const std::string text(reason);
        reasons->set(reasons->sink_data, id, text.c_str());
    }
}

// Copies a C string into a fixed char array, always NUL-terminated.
template <size_t N>
void copy_name(char (&destination)[N], std::string_view source) {
    const size_t n = source.size() < N - 1 ? source.size() : N - 1;
    std::memcpy(destination, source.data(), n);
    destination[n] = '\0';
}

}  // namespace grey::backend
