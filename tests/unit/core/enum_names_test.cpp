#include "test_support.hpp"

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

namespace {

// Every value from 0 to `last` has a distinct name; the next value, and any negative one, has none.
template <typename Enum>
void expect_names(const char* (*name)(Enum), int last) {
    std::set<std::string> seen;
    for (int v = 0; v <= last; ++v) {
        const char* text = name(static_cast<Enum>(v));
        ASSERT_NE(text, nullptr) << v;
        EXPECT_TRUE(seen.insert(text).second) << "duplicate: " << text;
    }
    EXPECT_EQ(name(static_cast<Enum>(last + 1)), nullptr);
    EXPECT_EQ(name(static_cast<Enum>(-1)), nullptr);
    EXPECT_EQ(name(static_cast<Enum>(0x7FFFFFFF)), nullptr);
}

}  // namespace

TEST(EnumNames, EveryValueOfEveryEnumHasADistinctName) {
    expect_names(grey_backend_outcome_name, GREY_BACKEND_NOT_FOUND);
    expect_names(grey_plugin_origin_name, GREY_PLUGIN_ORIGIN_BESIDE_LIBRARY);
    expect_names(grey_plugin_dir_state_name, GREY_PLUGIN_DIR_DUPLICATE);
    expect_names(grey_field_state_name, GREY_FIELD_NOT_APPLICABLE);
    expect_names(grey_source_name, GREY_SOURCE_TABLE);
    expect_names(grey_vendor_name, GREY_VENDOR_CPU);
    expect_names(grey_device_type_name, GREY_DEVICE_GPU);
    expect_names(grey_field_kind_name, GREY_FIELD_KIND_TEXT);
    expect_names(grey_field_group_name, GREY_FIELD_GROUP_TELEMETRY);
    expect_names(grey_memory_kind_name, GREY_MEMORY_CUDA_DEVICE);
    expect_names(grey_model_format_name, GREY_MODEL_FORMAT_GGUF);
    expect_names(grey_quant_calibration_name, GREY_CALIBRATION_MSE);
    expect_names(grey_audit_durability_name, GREY_AUDIT_DURABILITY_GROUP);
    expect_names(grey_kv_format_name, GREY_KV_FP8_E4M3);
    expect_names(grey_workload_kind_name, GREY_WORKLOAD_TRAINING);
    expect_names(grey_kv_precision_name, GREY_KV_PRECISION_INT2);
    expect_names(grey_kv_runtime_name, GREY_KV_RUNTIME_LLAMA_CPP);
    expect_names(grey_tensor_role_name, GREY_TENSOR_ROLE_OUTPUT);
    expect_names(grey_residency_name, GREY_RESIDENCY_COMPRESSED_HOST);
    expect_names(grey_codec_name, GREY_CODEC_BITMASK);
    expect_names(grey_map_access_name, GREY_MAP_WRITE);
}

TEST(EnumNames, NamesAreTheWordsReportsUse) {
    EXPECT_STREQ(grey_vendor_name(GREY_VENDOR_NVIDIA), "nvidia");
    EXPECT_STREQ(grey_source_name(GREY_SOURCE_CUDA_DRIVER), "cuda_driver");
    EXPECT_STREQ(grey_field_state_name(GREY_FIELD_PERMISSION_DENIED), "permission_denied");
    EXPECT_STREQ(grey_backend_outcome_name(GREY_BACKEND_NOT_FOUND), "not_found");
    EXPECT_STREQ(grey_plugin_origin_name(GREY_PLUGIN_ORIGIN_BESIDE_LIBRARY), "beside_library");
    EXPECT_STREQ(grey_quant_calibration_name(GREY_CALIBRATION_MSE), "mse");
}

// A new enum in grey.h comes with its name function: the header declares grey_<enum>_name for every
// public enum but the few that are named another way.
TEST(EnumNames, TheHeaderNamesEveryEnum) {
    std::ifstream in(GREY_PUBLIC_HEADER);
    ASSERT_TRUE(in) << GREY_PUBLIC_HEADER;
    std::stringstream text;
    text << in.rdbuf();
    const std::string header = text.str();
    const std::set<std::string> named_otherwise = {
        "grey_status",  // grey_status_string
        "grey_field",   // grey_field_describe's key
    };
    const std::regex enum_decl(R"(typedef enum (grey_\w+) \{)");
    int enums = 0;
    for (auto it = std::sregex_iterator(header.begin(), header.end(), enum_decl); it != std::sregex_iterator(); ++it) {
        ++enums;
        const std::string name = (*it)[1];
        if (named_otherwise.count(name) != 0) continue;
        EXPECT_NE(header.find(" " + name + "_name("), std::string::npos) << name << " has no " << name << "_name()";
    }
    EXPECT_GE(enums, 20);
}
