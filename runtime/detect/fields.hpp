// The table of every device field: its key, unit, kind, and where it lives. grey_field_describe,
// greyctl and the bindings all walk this one table, so a field added here appears everywhere.
#pragma once

#include "grey.h"

#include <span>

namespace grey::detect {

struct FieldInfo {
    grey_field field;
    grey_field_kind kind;
    grey_field_group group;
    size_t offset;
    const char* key;
    const char* unit;
};

std::span<const FieldInfo> fields();
// The row of a field, given the raw integer a caller passed (grey::raw_enum); throws
// GREY_ERROR_INVALID_ARGUMENT for a value that is not a field of this version.
const FieldInfo& field_info(int64_t raw_field);

// Access a field of a spec or telemetry struct by its table entry.
grey_field_state& field_state(void* group_struct, const FieldInfo& info);
grey_source& field_source(void* group_struct, const FieldInfo& info);
// Zeroes the value of a field (used when its state is not OK, so no stale number survives).
void clear_field_value(void* group_struct, const FieldInfo& info);

}  // namespace grey::detect
