// The loader against plugins that each break the contract in one way (tests/plugins/test_plugin.cpp).
#include "core/error.hpp"
#include "core/loader.hpp"
#include "test_support.hpp"

#include <algorithm>
#include <map>
#include <string>

using grey::test::make_context;

namespace {

std::map<std::string, grey_backend_info> reports_of(grey_context* context) {
    std::map<std::string, grey_backend_info> out;
    for (const auto& info : grey::test::backend_reports(context))
        if (std::string(info.path).find(GREY_TEST_PLUGIN_DIR) == 0 || std::string(info.name) == "host" ||
            info.outcome == GREY_BACKEND_NOT_FOUND)
            out.emplace(info.name, info);
    return out;
}

grey_context_options plugin_dir_options(const char* backends = nullptr) {
    grey_context_options options = GREY_CONTEXT_OPTIONS_INIT;
    options.backend_dir = GREY_TEST_PLUGIN_DIR;
    options.backends = backends;
    options.log_level = GREY_LOG_OFF;
    return options;
}

bool has(const char* text, const char* needle) { return std::string(text).find(needle) != std::string::npos; }

}  // namespace

TEST(Loader, BrokenPluginsAreSkippedWithTheirReasonAndTheContextWorks) {
    auto context = make_context(plugin_dir_options());
    auto reports = reports_of(context.get());

    ASSERT_TRUE(reports.count("host"));
    EXPECT_EQ(reports["host"].outcome, GREY_BACKEND_LOADED);

    ASSERT_TRUE(reports.count("wrongabi"));
    EXPECT_EQ(reports["wrongabi"].outcome, GREY_BACKEND_FAILED);
    EXPECT_TRUE(has(reports["wrongabi"].reason, "built for backend ABI version 42")) << reports["wrongabi"].reason;

    ASSERT_TRUE(reports.count("noentry"));
    EXPECT_EQ(reports["noentry"].outcome, GREY_BACKEND_FAILED);
    EXPECT_TRUE(has(reports["noentry"].reason, "exports no grey_backend_entry")) << reports["noentry"].reason;

    ASSERT_TRUE(reports.count("failinit"));
    EXPECT_EQ(reports["failinit"].outcome, GREY_BACKEND_FAILED);
    EXPECT_TRUE(has(reports["failinit"].reason, "init failed (backend error): the fake device refused to start"))
        << reports["failinit"].reason;

    ASSERT_TRUE(reports.count("nodriver"));
    EXPECT_EQ(reports["nodriver"].outcome, GREY_BACKEND_SKIPPED) << "no driver is not an error: the backend is just not offered";
    EXPECT_TRUE(has(reports["nodriver"].reason, "libfake-driver.so.1")) << reports["nodriver"].reason;

    ASSERT_TRUE(reports.count("badname"));
    EXPECT_EQ(reports["badname"].outcome, GREY_BACKEND_FAILED);
    EXPECT_TRUE(has(reports["badname"].reason, "calls itself 'somethingelse'")) << reports["badname"].reason;

    ASSERT_TRUE(reports.count("garbage"));
    EXPECT_EQ(reports["garbage"].outcome, GREY_BACKEND_FAILED);
    EXPECT_TRUE(has(reports["garbage"].reason, "dlopen failed")) << reports["garbage"].reason;

    ASSERT_TRUE(reports.count("fake"));
    EXPECT_EQ(reports["fake"].outcome, GREY_BACKEND_LOADED);
    EXPECT_EQ(reports["fake"].device_count, 2u);

    // The context is fully usable: host first, then the fake plugin's devices.
    uint32_t devices = 0;
    ASSERT_EQ(grey_device_count(context.get(), &devices), GREY_OK);
    ASSERT_GE(devices, 3u);
    grey_device_spec spec{};
    spec.struct_size = sizeof spec;
    bool found_fake = false;
    for (uint32_t d = 0; d < devices; ++d) {
        ASSERT_EQ(grey_device_spec_get(context.get(), d, &spec), GREY_OK) << grey_last_error();
        if (std::string(spec.backend) != "fake" || spec.backend_device_index != 1) continue;
        found_fake = true;
        EXPECT_STREQ(spec.name.value, "Fake GPU 1");
        EXPECT_EQ(spec.memory_total_bytes.value, 2ull << 30);
        EXPECT_EQ(spec.power_limit_mw.state, GREY_FIELD_PERMISSION_DENIED);
        char reason[256];
        size_t length = 0;
        ASSERT_EQ(grey_device_field_reason(context.get(), d, GREY_FIELD_POWER_LIMIT_MW, reason, sizeof reason, &length), GREY_OK);
        EXPECT_STREQ(reason, "fake: power limits need root");
        // The plugin left a stale value in an unsupported field; the runtime must have cleared it.
        EXPECT_EQ(spec.pcie_width_max.state, GREY_FIELD_UNSUPPORTED);
        EXPECT_EQ(spec.pcie_width_max.value, 0u);
        ASSERT_EQ(grey_device_field_reason(context.get(), d, GREY_FIELD_UUID, reason, sizeof reason, &length), GREY_OK);
        EXPECT_STREQ(reason, "backend 'fake' does not report this field");
        // No telemetry slot: a clear UNSUPPORTED, not a crash.
        grey_device_telemetry telemetry{};
        telemetry.struct_size = sizeof telemetry;
        EXPECT_EQ(grey_device_telemetry_get(context.get(), d, &telemetry), GREY_ERROR_UNSUPPORTED);
        EXPECT_TRUE(has(grey_last_error(), "does not implement telemetry")) << grey_last_error();
    }
    EXPECT_TRUE(found_fake);
}

TEST(Loader, OnlyRequestedBackendsLoadAndMissingOnesAreReported) {
    auto context = make_context(plugin_dir_options("fake,nosuch"));
    auto reports = reports_of(context.get());
    EXPECT_EQ(reports["fake"].outcome, GREY_BACKEND_LOADED);
    EXPECT_EQ(reports["failinit"].outcome, GREY_BACKEND_SKIPPED);
    EXPECT_TRUE(has(reports["failinit"].reason, "not requested")) << reports["failinit"].reason;
    ASSERT_TRUE(reports.count("nosuch"));
    EXPECT_EQ(reports["nosuch"].outcome, GREY_BACKEND_NOT_FOUND);
    EXPECT_TRUE(has(reports["nosuch"].reason, "libgrey-backend-nosuch.so")) << reports["nosuch"].reason;
}

// A named backend the host requires is there with a device, or the context is refused saying why: a
// GPU backend on a machine without its driver (nodriver: what the CUDA plugin does here), and one that
// starts but offers no device, fail as a missing one does, never as a context without that backend.
TEST(Loader, ARequiredBackendWithoutDriverOrDeviceIsRefused) {
    for (const auto& [name, why] : {std::pair{"nodriver", "libfake-driver.so.1: cannot open shared object file"},
                                    std::pair{"nodevice", "it loaded but offers no device"}}) {
        grey_context_options options = plugin_dir_options(name);
        grey_context* context = nullptr;
        ASSERT_EQ(grey_context_create(&options, &context), GREY_OK) << "not required: only reported";
        grey_context_destroy(context);
        options.require_backends = 1;
        context = nullptr;
        EXPECT_EQ(grey_context_create(&options, &context), GREY_ERROR_UNSUPPORTED) << name;
        EXPECT_EQ(context, nullptr);
        EXPECT_TRUE(has(grey_last_error(), (std::string("backend '") + name + "' is not available: ").c_str())) << grey_last_error();
        EXPECT_TRUE(has(grey_last_error(), why)) << grey_last_error();
    }
}

TEST(Loader, AutoDetectOffLoadsOnlyNamedBackends) {
    grey::test::TempDir dir;
    const auto file = dir.write("c.yaml", "detection:\n  auto_detect: false\n");
    auto options = plugin_dir_options();
    options.config_path = file.c_str();
    auto context = make_context(options);
    auto reports = reports_of(context.get());
    EXPECT_EQ(reports["fake"].outcome, GREY_BACKEND_SKIPPED);
    EXPECT_TRUE(has(reports["fake"].reason, "auto_detect is false")) << reports["fake"].reason;
    uint32_t devices = 0;
    ASSERT_EQ(grey_device_count(context.get(), &devices), GREY_OK);
    EXPECT_EQ(devices, 1u);
}

TEST(Loader, TheHostDirectoryComesFirstAndShadowsLaterCopies) {
    auto path = grey::plugin_search_path("/first", "/second/.");
    ASSERT_EQ(path.size(), 3u);
    EXPECT_EQ(path[0].path, "/first");
    EXPECT_EQ(path[0].origin, GREY_PLUGIN_ORIGIN_HOST);
    EXPECT_EQ(path[1].path, "/second");
    EXPECT_EQ(path[1].origin, GREY_PLUGIN_ORIGIN_ENVIRONMENT);
    EXPECT_EQ(path[2].origin, GREY_PLUGIN_ORIGIN_BESIDE_LIBRARY);
    auto without_env = grey::plugin_search_path("/first", nullptr);
    EXPECT_TRUE(std::none_of(without_env.begin(), without_env.end(), [](const auto& d) { return d.path == "/second"; }));

    // The same directory twice: the second copy of every plugin is reported as shadowed.
    grey_context_options options = plugin_dir_options("fake");
    setenv("GREY_BACKEND_DIR", GREY_TEST_PLUGIN_DIR "/.", 1);
    options.apply_env_overrides = 1;
    auto context = make_context(options);
    unsetenv("GREY_BACKEND_DIR");
    uint32_t count = 0;
    ASSERT_EQ(grey_backend_candidate_count(context.get(), &count), GREY_OK);
    int fake_loaded = 0;
    for (uint32_t i = 0; i < count; ++i) {
        grey_backend_info info{};
        info.struct_size = sizeof info;
        ASSERT_EQ(grey_backend_info_get(context.get(), i, &info), GREY_OK);
        if (std::string(info.name) == "fake" && info.outcome == GREY_BACKEND_LOADED) ++fake_loaded;
    }
    EXPECT_EQ(fake_loaded, 1) << "a directory listed twice is searched once";

    size_t length = 0;
    ASSERT_EQ(grey_backend_search_path(context.get(), nullptr, 0, &length), GREY_ERROR_BUFFER_TOO_SMALL);
    std::string text(length + 1, '\0');
    ASSERT_EQ(grey_backend_search_path(context.get(), text.data(), text.size(), &length), GREY_OK);
    EXPECT_EQ(text.substr(0, text.find('\n')), std::filesystem::weakly_canonical(GREY_TEST_PLUGIN_DIR).string());
}

TEST(Loader, BackendInfoRejectsBadIndex) {
    auto context = make_context(grey::test::host_only_options());
    grey_backend_info info{};
    info.struct_size = sizeof info;
    EXPECT_EQ(grey_backend_info_get(context.get(), 1000, &info), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(has(grey_last_error(), "out of range"));
}

TEST(Loader, BackendListParsing) {
    EXPECT_EQ(grey::parse_backend_list(" cuda , hip,cuda,"), (std::vector<std::string>{"cuda", "hip"}));
    EXPECT_TRUE(grey::parse_backend_list("").empty());
    EXPECT_TRUE(grey::parse_backend_list(nullptr).empty());
    EXPECT_THROW(grey::parse_backend_list("CUDA"), grey::Error);
    EXPECT_THROW(grey::parse_backend_list("a/b"), grey::Error);
}
