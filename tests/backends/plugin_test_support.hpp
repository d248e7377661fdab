// What the tests of a GPU backend plugin against fake vendor libraries share (tests/hip, tests/level0):
// environment switches for one scope, a context holding the host and one plugin, and the buffer round
// trip every backend must pass against the host backend.
#pragma once

#include "grey_backend.h"
#include "test_support.hpp"

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace grey::test {

// Sets (or, with a NULL value, removes) environment variables for one scope, and puts back what was there.
class ScopedEnv {
public:
    ScopedEnv(std::initializer_list<std::pair<const char*, const char*>> vars) {
        for (const auto& [name, value] : vars) {
            const char* old = std::getenv(name);
            saved_.push_back({name, old != nullptr, old != nullptr ? old : ""});
            if (value != nullptr) setenv(name, value, 1);
            else unsetenv(name);
        }
    }
    ~ScopedEnv() {
        for (const auto& s : saved_) {
            if (s.had) setenv(s.name.c_str(), s.value.c_str(), 1);
            else unsetenv(s.name.c_str());
        }
    }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;

private:
    struct Saved {
        std::string name;
        bool had;
        std::string value;
    };
    std::vector<Saved> saved_;
};

// A context with the host backend and the plugin `backend` from `plugin_dir`; device 1 is its first GPU.
struct PluginContext {
    PluginContext(const char* backend, const char* plugin_dir, const char* config_path = nullptr) : name(backend) {
        grey_context_options options = GREY_CONTEXT_OPTIONS_INIT;
        options.backends = backend;
        options.backend_dir = plugin_dir;
        options.config_path = config_path;
        options.log_level = GREY_LOG_OFF;
        EXPECT_EQ(grey_context_create(&options, &context), GREY_OK) << grey_last_error();
    }
    ~PluginContext() { grey_context_destroy(context); }
    PluginContext(const PluginContext&) = delete;
    PluginContext& operator=(const PluginContext&) = delete;

    [[nodiscard]] grey_backend_info report() const { return backend_report(context, name); }
    grey_device_spec spec(uint32_t device = 1) {
        grey_device_spec s{};
        s.struct_size = sizeof s;
        EXPECT_EQ(grey_device_spec_get(context, device, &s), GREY_OK) << grey_last_error();
        return s;
    }
    grey_device_telemetry telemetry(uint32_t device = 1) {
        grey_device_telemetry t{};
        t.struct_size = sizeof t;
        EXPECT_EQ(grey_device_telemetry_get(context, device, &t), GREY_OK) << grey_last_error();
        return t;
    }
    std::string reason(grey_field field, uint32_t device = 1) {
        char text[512] = {};
        size_t length = 0;
        EXPECT_EQ(grey_device_field_reason(context, device, field, text, sizeof text, &length), GREY_OK);
        return text;
    }
    grey_memory_stats stats(uint32_t device = 1) {
        grey_memory_stats s{};
        s.struct_size = sizeof s;
        EXPECT_EQ(grey_device_memory_stats_get(context, device, &s), GREY_OK) << grey_last_error();
        return s;
    }

    std::string name;
    grey_context* context = nullptr;
};

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The entry point's vtable of the plugin file `path`, for checking which slots it declares.
inline grey_backend_vtable plugin_vtable(const std::string& path) {
    grey_backend_vtable vt{};
    void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    EXPECT_NE(lib, nullptr) << dlerror();
    if (lib == nullptr) return vt;
    auto entry = reinterpret_cast<grey_backend_entry_fn>(dlsym(lib, GREY_BACKEND_ENTRY_SYMBOL));
    EXPECT_NE(entry, nullptr);
    vt.struct_size = sizeof vt;
    if (entry != nullptr) {
        EXPECT_EQ(entry(GREY_BACKEND_ABI_VERSION, &vt), GREY_OK);
    }
    vt.name = nullptr;  // it points into the library, which goes now
    dlclose(lib);
    return vt;
}

// Writes random bytes to a buffer of `device`, reads them back, copies and fills at odd offsets, and
// compares the checksum with the host backend's (device 0) over the same bytes.
inline void expect_buffers_round_trip(grey_context* context, uint32_t device) {
    const size_t n = 3 * 1024 * 1024 + 17;
    std::mt19937_64 rng(n);
    std::vector<unsigned char> data(n);
    for (auto& byte : data) byte = static_cast<unsigned char>(rng());
    grey_buffer* a = nullptr;
    grey_buffer* b = nullptr;
    grey_buffer* h = nullptr;
    ASSERT_EQ(grey_buffer_create(context, device, n, &a), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_create(context, device, n, &b), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_create(context, 0, n, &h), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_write(a, 0, data.data(), n), GREY_OK) << grey_last_error();
    std::vector<unsigned char> back(n);
    ASSERT_EQ(grey_buffer_read(a, 0, back.data(), n), GREY_OK) << grey_last_error();
    EXPECT_EQ(back, data);
    ASSERT_EQ(grey_buffer_copy(b, 5, a, 3, n - 10), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_fill(b, 0, 0xAB, 5), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_read(b, 0, back.data(), n), GREY_OK) << grey_last_error();
    for (size_t i = 0; i < 5; ++i) ASSERT_EQ(back[i], 0xAB);
    for (size_t i = 0; i < n - 10; ++i) ASSERT_EQ(back[5 + i], data[3 + i]) << i;
    ASSERT_EQ(grey_buffer_write(h, 0, data.data(), n), GREY_OK);
    uint64_t on_device = 0, on_host = 0;
    ASSERT_EQ(grey_buffer_checksum(a, 7, n - 7, &on_device), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_checksum(h, 7, n - 7, &on_host), GREY_OK);
    EXPECT_EQ(on_device, on_host);
    grey_buffer_destroy(h);
    grey_buffer_destroy(b);
    grey_buffer_destroy(a);
}

// Streams on a GPU plugin over a fake driver that defers stream work until something waits: two streams
// of `device` ordered by an event, writes, a copy, a fill, a read and two checksums, checked after one
// synchronize; then the event and stream queries, and elapsed time, which the fakes have no clock for
// (`elapsed` is the status and `elapsed_call` text the plugin's error must have). Fails if the plugin
// forgets a wait, an ordering or a synchronize. `checksum_waits`: the plugin's checksum_async waits for
// the stream's earlier work (Level Zero's adds its partial sums on the host), so the read before it has
// run by then.
inline void expect_streams_order_work(grey_context* context, uint32_t device, const char* elapsed_call,
                                      grey_status elapsed = GREY_ERROR_BACKEND, bool checksum_waits = false) {
    constexpr size_t kSize = 1 << 16;
    grey_buffer *a = nullptr, *b = nullptr;
    ASSERT_EQ(grey_buffer_create(context, device, kSize, &a), GREY_OK);
    ASSERT_EQ(grey_buffer_create(context, device, kSize, &b), GREY_OK);
    grey_stream *producer = nullptr, *consumer = nullptr;
    grey_event* ready = nullptr;
    ASSERT_EQ(grey_stream_create(context, device, &producer), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_stream_create(context, device, &consumer), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_event_create(context, device, &ready), GREY_OK) << grey_last_error();
    std::vector<unsigned char> first(kSize, 1), second(kSize);
    for (size_t i = 0; i < kSize; ++i) second[i] = static_cast<unsigned char>(i * 13);
    ASSERT_EQ(grey_buffer_write_async(a, 0, first.data(), kSize, producer), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_write_async(a, 0, second.data(), kSize, producer), GREY_OK);
    ASSERT_EQ(grey_buffer_copy_async(b, 0, a, 0, kSize, producer), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_fill_async(b, 0, 0x5A, 100, producer), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_event_record(ready, producer), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_stream_wait_event(consumer, ready), GREY_OK) << grey_last_error();
    std::vector<unsigned char> got(kSize);
    uint64_t sum = 0, empty = 1;
    ASSERT_EQ(grey_buffer_read_async(b, 0, got.data(), kSize, consumer), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_checksum_async(b, 0, kSize, &sum, consumer), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_checksum_async(b, 0, 0, &empty, consumer), GREY_OK) << grey_last_error();
    if (!checksum_waits) {
        EXPECT_EQ(got, std::vector<unsigned char>(kSize, 0)) << "nothing has run before a wait";
    }
    ASSERT_EQ(grey_stream_synchronize(consumer), GREY_OK) << grey_last_error();
    auto expected = second;
    std::fill_n(expected.begin(), 100, 0x5A);
    EXPECT_EQ(got, expected);
    uint64_t synchronous_sum = 0;
    ASSERT_EQ(grey_buffer_checksum(b, 0, kSize, &synchronous_sum), GREY_OK);
    EXPECT_EQ(sum, synchronous_sum);
    EXPECT_EQ(empty, 0u);
    uint32_t done = 0;
    ASSERT_EQ(grey_event_query(ready, &done), GREY_OK) << grey_last_error();
    EXPECT_EQ(done, 1u);
    ASSERT_EQ(grey_event_synchronize(ready), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_stream_query(producer, &done), GREY_OK) << grey_last_error();
    EXPECT_EQ(done, 1u);
    double ms = 0;
    EXPECT_EQ(grey_event_elapsed_ms(ready, ready, &ms), elapsed);
    EXPECT_TRUE(contains(grey_last_error(), elapsed_call)) << grey_last_error();
    grey_event_destroy(ready);
    grey_stream_destroy(consumer);
    grey_stream_destroy(producer);
    grey_buffer_destroy(b);
    grey_buffer_destroy(a);
}

}  // namespace grey::test
