#include "detect/fields.hpp"
#include "test_support.hpp"

#include <set>
#include <string>

TEST(Fields, EveryFieldIsDescribedOnceWithItsUnitInTheKey) {
    std::set<std::string> keys;
    for (int f = 0; f < GREY_FIELD_COUNT; ++f) {
        grey_field_desc desc{};
        desc.struct_size = sizeof desc;
        ASSERT_EQ(grey_field_describe(static_cast<grey_field>(f), &desc), GREY_OK);
        EXPECT_EQ(desc.field, f);
        EXPECT_TRUE(keys.insert(desc.key).second) << desc.key;
        const size_t group_size = desc.group == GREY_FIELD_GROUP_SPEC ? sizeof(grey_device_spec) : sizeof(grey_device_telemetry);
        const size_t field_size = desc.kind == GREY_FIELD_KIND_TEXT ? sizeof(grey_field_text) : sizeof(grey_field_u64);
        EXPECT_LE(desc.offset + field_size, group_size) << desc.key;
        const std::string key = desc.key, unit = desc.unit;
        if (unit == "bytes") {
            EXPECT_TRUE(key.ends_with("_bytes")) << key;
        }
        if (unit == "MHz") {
            EXPECT_TRUE(key.ends_with("_mhz")) << key;
        }
        if (unit == "mW") {
            EXPECT_TRUE(key.ends_with("_mw")) << key;
        }
        if (unit == "C") {
            EXPECT_TRUE(key.ends_with("_c")) << key;
        }
        if (unit == "ns") {
            EXPECT_TRUE(key.ends_with("_ns")) << key;
        }
        if (desc.kind == GREY_FIELD_KIND_TEXT) {
            EXPECT_EQ(unit, "") << key;
        }
    }
    grey_field_desc desc{};
    desc.struct_size = sizeof desc;
    EXPECT_EQ(grey_field_describe(GREY_FIELD_COUNT, &desc), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_field_describe(static_cast<grey_field>(-1), &desc), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_field_describe(GREY_FIELD_NAME, nullptr), GREY_ERROR_INVALID_ARGUMENT);
}

TEST(Fields, OffsetsMatchTheStructs) {
    grey_field_desc desc{};
    desc.struct_size = sizeof desc;
    ASSERT_EQ(grey_field_describe(GREY_FIELD_PEAK_MEMORY_BANDWIDTH_GBPS, &desc), GREY_OK);
    EXPECT_EQ(desc.offset, offsetof(grey_device_spec, peak_memory_bandwidth_gbps));
    EXPECT_EQ(desc.kind, GREY_FIELD_KIND_F64);
    EXPECT_STREQ(desc.unit, "GB/s");
    ASSERT_EQ(grey_field_describe(GREY_FIELD_THROTTLE_REASONS, &desc), GREY_OK);
    EXPECT_EQ(desc.group, GREY_FIELD_GROUP_TELEMETRY);
    EXPECT_EQ(desc.offset, offsetof(grey_device_telemetry, throttle_reasons));
}

TEST(Fields, ThrottleReasonNames) {
    EXPECT_STREQ(grey_throttle_reason_name(GREY_THROTTLE_SW_POWER_CAP), "sw_power_cap");
    EXPECT_STREQ(grey_throttle_reason_name(GREY_THROTTLE_HW_THERMAL), "hw_thermal");
    EXPECT_EQ(grey_throttle_reason_name(GREY_THROTTLE_SW_POWER_CAP | GREY_THROTTLE_HW_THERMAL), nullptr);
    EXPECT_EQ(grey_throttle_reason_name(0), nullptr);
}
