#include "test_support.hpp"

#include <cstring>
#include <vector>

using grey::test::LogCapture;
using grey::test::make_context;

TEST(Context, DefaultOptionsGiveTheHostDeviceFirst) {
    grey_context* raw = nullptr;
    ASSERT_EQ(grey_context_create(nullptr, &raw), GREY_OK) << grey_last_error();
    grey::test::ContextPtr context(raw);
    uint32_t count = 0;
    ASSERT_EQ(grey_device_count(context.get(), &count), GREY_OK);
    ASSERT_GE(count, 1u);
    grey_device_spec spec{};
    spec.struct_size = sizeof spec;
    ASSERT_EQ(grey_device_spec_get(context.get(), 0, &spec), GREY_OK) << grey_last_error();
    EXPECT_STREQ(spec.backend, "host");
    EXPECT_EQ(spec.vendor, GREY_VENDOR_CPU);
    EXPECT_EQ(spec.type, GREY_DEVICE_CPU);
    EXPECT_EQ(spec.struct_size, sizeof spec);
}

TEST(Context, DestroyIsNullSafe) { grey_context_destroy(nullptr); }

TEST(Context, RejectsBadOptionsWithoutTouchingTheOutParameter) {
    grey_context* sentinel = reinterpret_cast<grey_context*>(0x1);
    grey_context* out = sentinel;

    grey_context_options small = GREY_CONTEXT_OPTIONS_INIT;
    small.struct_size = 8;
    EXPECT_EQ(grey_context_create(&small, &out), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(grey_last_error()).find("struct_size"), std::string::npos);
    EXPECT_EQ(out, sentinel);

    grey_context_options level = GREY_CONTEXT_OPTIONS_INIT;
    level.log_level = static_cast<grey_log_level>(17);
    EXPECT_EQ(grey_context_create(&level, &out), GREY_ERROR_INVALID_ARGUMENT);

    grey_context_options profile = GREY_CONTEXT_OPTIONS_INIT;
    profile.profile = "reckless";
    EXPECT_EQ(grey_context_create(&profile, &out), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(grey_last_error()).find("reckless"), std::string::npos);

    grey_context_options missing_config = GREY_CONTEXT_OPTIONS_INIT;
    missing_config.config_path = "/nonexistent/grey.yaml";
    EXPECT_EQ(grey_context_create(&missing_config, &out), GREY_ERROR_NOT_FOUND);

    grey_context_options bad_backend_name = GREY_CONTEXT_OPTIONS_INIT;
    bad_backend_name.backends = "cuda,../../evil";
    EXPECT_EQ(grey_context_create(&bad_backend_name, &out), GREY_ERROR_INVALID_ARGUMENT);

    EXPECT_EQ(grey_context_create(nullptr, nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(out, sentinel);
}

TEST(Context, ANamedBackendIsRequiredOnlyWhenTheHostSaysSo) {
    grey_context* context = nullptr;
    grey_context_options options = GREY_CONTEXT_OPTIONS_INIT;
    options.backends = "host,nosuchbackend";
    ASSERT_EQ(grey_context_create(&options, &context), GREY_OK) << "by default a missing backend is only reported";
    grey_context_destroy(context);

    options.require_backends = 1;
    context = nullptr;
    EXPECT_EQ(grey_context_create(&options, &context), GREY_ERROR_UNSUPPORTED);
    EXPECT_EQ(context, nullptr);
    EXPECT_NE(std::string(grey_last_error()).find("backend 'nosuchbackend' is not available: requested, but no libgrey-backend-nosuchbackend.so"),
              std::string::npos)
        << grey_last_error();

    options.backends = "host";
    ASSERT_EQ(grey_context_create(&options, &context), GREY_OK) << "the host backend is always there";
    grey_context_destroy(context);

    options.require_backends = 2;
    context = nullptr;
    EXPECT_EQ(grey_context_create(&options, &context), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(grey_last_error()).find("require_backends"), std::string::npos) << grey_last_error();
}

TEST(Context, ANewerCallerStructIsAcceptedOnlyIfItsExtraFieldsAreZero) {
    struct Newer {
        grey_context_options base;
        uint64_t future_field;
    } newer{};
    newer.base = GREY_CONTEXT_OPTIONS_INIT;
    newer.base.struct_size = sizeof newer;
    newer.base.log_level = GREY_LOG_OFF;
    grey_context* out = nullptr;
    ASSERT_EQ(grey_context_create(&newer.base, &out), GREY_OK) << grey_last_error();
    grey_context_destroy(out);
    newer.future_field = 1;
    EXPECT_EQ(grey_context_create(&newer.base, &out), GREY_ERROR_UNSUPPORTED);
}

TEST(Context, InvalidConfigFileFailsCreationNamingTheKey) {
    grey::test::TempDir dir;
    const auto file = dir.write("bad.yaml", "thermal:\n  max_temp_c: hot\n");
    grey_context_options options = GREY_CONTEXT_OPTIONS_INIT;
    options.config_path = file.c_str();
    grey_context* out = nullptr;
    EXPECT_EQ(grey_context_create(&options, &out), GREY_ERROR_CONFIG);
    EXPECT_NE(std::string(grey_last_error()).find("bad.yaml:2: thermal.max_temp_c"), std::string::npos) << grey_last_error();
}

TEST(Context, ConfigIsReadableThroughTheContext) {
    grey_context_options options = GREY_CONTEXT_OPTIONS_INIT;
    options.profile = "aggressive";
    auto context = make_context(options);
    const grey_config* config = grey_context_config(context.get());
    ASSERT_NE(config, nullptr);
    char value[16];
    size_t length = 0;
    ASSERT_EQ(grey_config_get(config, "memory.compression.algorithm", value, sizeof value, &length), GREY_OK);
    EXPECT_STREQ(value, "zstd");
    EXPECT_EQ(grey_context_config(nullptr), nullptr);
}

TEST(Context, LogCallbackReceivesMessagesAtOrAboveTheLevel) {
    LogCapture log;
    grey_context_options options = GREY_CONTEXT_OPTIONS_INIT;
    options.log_level = GREY_LOG_INFO;
    options.log_callback = &LogCapture::callback;
    options.log_user = &log;
    options.backend_dir = GREY_TEST_PLUGIN_DIR;
    { auto context = make_context(options); }
    EXPECT_TRUE(log.contains("backend 'fake'")) << "the loader reports each plugin at INFO";
    for (const auto& m : log.messages) EXPECT_GE(m.first, GREY_LOG_INFO);
}

TEST(Context, EnvironmentIsIgnoredUnlessTheHostOptsIn) {
    setenv("GREY_BACKEND_DIR", GREY_TEST_PLUGIN_DIR, 1);
    setenv("GREY_DAEMON_PORT", "9123", 1);
    {
        grey_context_options options = GREY_CONTEXT_OPTIONS_INIT;
        options.backends = "fake";
        options.log_level = GREY_LOG_OFF;
        auto context = make_context(options);
        char value[16];
        size_t length = 0;
        ASSERT_EQ(grey_config_get(grey_context_config(context.get()), "daemon.port", value, sizeof value, &length), GREY_OK);
        EXPECT_STREQ(value, "8090");
        uint32_t count = 0;
        ASSERT_EQ(grey_device_count(context.get(), &count), GREY_OK);
        EXPECT_EQ(count, 1u) << "GREY_BACKEND_DIR must not be searched";
    }
    {
        grey_context_options options = GREY_CONTEXT_OPTIONS_INIT;
        options.backends = "fake";
        options.apply_env_overrides = 1;
        options.log_level = GREY_LOG_OFF;
        auto context = make_context(options);
        char value[16];
        size_t length = 0;
        ASSERT_EQ(grey_config_get(grey_context_config(context.get()), "daemon.port", value, sizeof value, &length), GREY_OK);
        EXPECT_STREQ(value, "9123");
        uint32_t count = 0;
        ASSERT_EQ(grey_device_count(context.get(), &count), GREY_OK);
        EXPECT_EQ(count, 3u) << "host + the fake plugin's two devices from GREY_BACKEND_DIR";
    }
    setenv("GREY_DAEMON_PORT", "not-a-port", 1);
    {
        grey_context_options options = GREY_CONTEXT_OPTIONS_INIT;
        options.apply_env_overrides = 1;
        grey_context* out = nullptr;
        EXPECT_EQ(grey_context_create(&options, &out), GREY_ERROR_CONFIG);
        EXPECT_NE(std::string(grey_last_error()).find("GREY_DAEMON_PORT"), std::string::npos) << grey_last_error();
    }
    unsetenv("GREY_BACKEND_DIR");
    unsetenv("GREY_DAEMON_PORT");
}

TEST(Context, SpecQueryHonoursTheCallersStructSize) {
    auto context = make_context();
    grey_device_spec too_small{};
    too_small.struct_size = 4;
    EXPECT_EQ(grey_device_spec_get(context.get(), 0, &too_small), GREY_ERROR_INVALID_ARGUMENT);

    // A caller compiled against a newer header passes a larger struct: the tail is zeroed.
    std::vector<unsigned char> bigger(sizeof(grey_device_spec) + 64, 0xAB);
    auto* spec = reinterpret_cast<grey_device_spec*>(bigger.data());
    spec->struct_size = static_cast<uint32_t>(bigger.size());
    ASSERT_EQ(grey_device_spec_get(context.get(), 0, spec), GREY_OK) << grey_last_error();
    EXPECT_EQ(spec->struct_size, bigger.size());
    for (size_t i = sizeof(grey_device_spec); i < bigger.size(); ++i) ASSERT_EQ(bigger[i], 0) << i;
}

TEST(Context, OutOfRangeDeviceIsAClearError) {
    auto context = make_context(grey::test::host_only_options());
    grey_device_spec spec{};
    spec.struct_size = sizeof spec;
    EXPECT_EQ(grey_device_spec_get(context.get(), 99, &spec), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(std::string(grey_last_error()), "device index 99 is out of range (the context has 1 device(s))");
    grey_device_telemetry telemetry{};
    telemetry.struct_size = sizeof telemetry;
    EXPECT_EQ(grey_device_telemetry_get(context.get(), 99, &telemetry), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_device_spec_get(context.get(), 0, nullptr), GREY_ERROR_INVALID_ARGUMENT);
}

TEST(Context, EveryUnavailableHostFieldHasAReasonAndNoValue) {
    auto context = make_context();
    grey_device_spec spec{};
    spec.struct_size = sizeof spec;
    ASSERT_EQ(grey_device_spec_get(context.get(), 0, &spec), GREY_OK);
    grey_device_telemetry telemetry{};
    telemetry.struct_size = sizeof telemetry;
    ASSERT_EQ(grey_device_telemetry_get(context.get(), 0, &telemetry), GREY_OK) << grey_last_error();
    EXPECT_GT(telemetry.timestamp_ns, 0u);
    for (int f = 0; f < GREY_FIELD_COUNT; ++f) {
        grey_field_desc desc{};
        desc.struct_size = sizeof desc;
        ASSERT_EQ(grey_field_describe(static_cast<grey_field>(f), &desc), GREY_OK);
        const char* base = desc.group == GREY_FIELD_GROUP_SPEC ? reinterpret_cast<const char*>(&spec)
                                                               : reinterpret_cast<const char*>(&telemetry);
        const char* at = base + desc.offset;
        grey_field_state state;
        bool value_is_zero = true;
        switch (desc.kind) {
            case GREY_FIELD_KIND_U64: {
                auto* v = reinterpret_cast<const grey_field_u64*>(at);
                state = v->state;
                value_is_zero = v->value == 0;
                if (state == GREY_FIELD_OK) {
                    EXPECT_NE(v->source, GREY_SOURCE_NONE) << desc.key;
                }
                break;
            }
            case GREY_FIELD_KIND_F64: {
                auto* v = reinterpret_cast<const grey_field_f64*>(at);
                state = v->state;
                value_is_zero = v->value == 0.0;
                break;
            }
            default: {
                auto* v = reinterpret_cast<const grey_field_text*>(at);
                state = v->state;
                value_is_zero = v->value[0] == '\0';
                break;
            }
        }
        char reason[GREY_REASON_MAX * 2];
        size_t length = 0;
        ASSERT_EQ(grey_device_field_reason(context.get(), 0, static_cast<grey_field>(f), reason, sizeof reason, &length), GREY_OK);
        if (state == GREY_FIELD_OK) {
            EXPECT_EQ(length, 0u) << desc.key;
        } else {
            EXPECT_TRUE(value_is_zero) << desc.key << " is unavailable but carries a value";
            EXPECT_GT(length, 0u) << desc.key << " is unavailable without a reason";
        }
    }
    // Facts every Linux host has.
    EXPECT_EQ(spec.name.state, GREY_FIELD_OK);
    EXPECT_EQ(spec.memory_total_bytes.state, GREY_FIELD_OK);
    EXPECT_GT(spec.memory_total_bytes.value, 0u);
    EXPECT_EQ(spec.compute_units.state, GREY_FIELD_OK);
    EXPECT_EQ(spec.pci_bus_id.state, GREY_FIELD_NOT_APPLICABLE);
    EXPECT_EQ(telemetry.memory_used_bytes.state, GREY_FIELD_OK);
    EXPECT_LE(telemetry.memory_used_bytes.value, spec.memory_total_bytes.value + (1ull << 30));
}

TEST(Context, FieldReasonUsesTheBufferProtocol) {
    auto context = make_context();
    grey_device_spec spec{};
    spec.struct_size = sizeof spec;
    ASSERT_EQ(grey_device_spec_get(context.get(), 0, &spec), GREY_OK);
    size_t length = 0;
    EXPECT_EQ(grey_device_field_reason(context.get(), 0, GREY_FIELD_PCI_BUS_ID, nullptr, 0, &length), GREY_ERROR_BUFFER_TOO_SMALL);
    ASSERT_GT(length, 0u);
    std::string text(length + 1, '\0');
    ASSERT_EQ(grey_device_field_reason(context.get(), 0, GREY_FIELD_PCI_BUS_ID, text.data(), text.size(), &length), GREY_OK);
    EXPECT_EQ(std::string(text.c_str()), "a host CPU is not a PCIe device");
    EXPECT_EQ(grey_device_field_reason(context.get(), 0, static_cast<grey_field>(GREY_FIELD_COUNT), text.data(), text.size(), &length),
              GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_device_field_reason(context.get(), 0, GREY_FIELD_NAME, nullptr, 5, &length), GREY_ERROR_INVALID_ARGUMENT);
}
