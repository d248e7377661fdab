// Small helpers shared by the unit tests.
#pragma once

#include "grey.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace grey::test {

struct ContextDeleter {
    void operator()(grey_context* c) const noexcept { grey_context_destroy(c); }
};
using ContextPtr = std::unique_ptr<grey_context, ContextDeleter>;

struct BufferDeleter {
    void operator()(grey_buffer* b) const noexcept { grey_buffer_destroy(b); }
};
using BufferPtr = std::unique_ptr<grey_buffer, BufferDeleter>;

inline bool has(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }

// `n` bytes drawn from seed `seed`.
inline std::vector<uint8_t> random_bytes(std::size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<uint8_t> v(n);
    for (auto& b : v) b = static_cast<uint8_t>(rng());
    return v;
}

// A log sink that keeps every message, for asserting on what the library said.
struct LogCapture {
    std::vector<std::pair<grey_log_level, std::string>> messages;
    static void callback(grey_log_level level, const char* message, void* user) {
        static_cast<LogCapture*>(user)->messages.emplace_back(level, message);
    }
    [[nodiscard]] bool contains(const std::string& needle) const {
        for (const auto& m : messages)
            if (m.second.find(needle) != std::string::npos) return true;
        return false;
    }
};

// Weights-like test values: `n` draws of N(0, sigma) from seed `seed`, with every `outlier_every`-th
// value (from `first_outlier`) scaled by `outlier_scale`, as trained weights have outliers.
inline std::vector<float> normal_values(std::size_t n, uint32_t seed, float sigma, std::size_t first_outlier, std::size_t outlier_every,
                                        float outlier_scale) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, sigma);
    std::vector<float> v(n);
    for (auto& x : v) x = normal(rng);
    for (std::size_t i = first_outlier; i < n; i += outlier_every) v[i] *= outlier_scale;
    return v;
}

// A tensor description of `shape` (outermost first).
inline grey_tensor_desc desc_of(const std::vector<uint64_t>& shape, grey_dtype dtype = GREY_DTYPE_F32) {
    grey_tensor_desc d = GREY_TENSOR_DESC_INIT;
    d.dtype = dtype;
    d.rank = static_cast<uint32_t>(shape.size());
    std::copy(shape.begin(), shape.end(), d.shape);
    return d;
}

// Options that load no plugin, so that device counts do not depend on the machine's GPUs.
inline grey_context_options host_only_options() {
    grey_context_options options = GREY_CONTEXT_OPTIONS_INIT;
    options.backends = "host";
    return options;
}

inline ContextPtr make_context(grey_context_options options = GREY_CONTEXT_OPTIONS_INIT) {
    grey_context* context = nullptr;
    const grey_status status = grey_context_create(&options, &context);
    EXPECT_EQ(status, GREY_OK) << grey_last_error();
    return ContextPtr(context);
}

// The loader's report: every backend candidate, in the order it considered them.
inline std::vector<grey_backend_info> backend_reports(grey_context* context) {
    uint32_t count = 0;
    EXPECT_EQ(grey_backend_candidate_count(context, &count), GREY_OK);
    std::vector<grey_backend_info> reports(count);
    for (uint32_t i = 0; i < count; ++i) {
        reports[i].struct_size = sizeof reports[i];
        EXPECT_EQ(grey_backend_info_get(context, i, &reports[i]), GREY_OK);
    }
    return reports;
}

// The report on the backend called `name`; a test failure (and an empty report) if there is none.
inline grey_backend_info backend_report(grey_context* context, const std::string& name) {
    for (const auto& info : backend_reports(context))
        if (name == info.name) return info;
    ADD_FAILURE() << "no report for the " << name << " backend";
    return {};
}

// The index of the last device the backend called `backend` offers in `context`; 0 (the host device) when
// it offers none.
inline uint32_t last_device_of(grey_context* context, const std::string& backend) {
    uint32_t count = 0, found = 0;
    EXPECT_EQ(grey_device_count(context, &count), GREY_OK);
    for (uint32_t d = 0; d < count; ++d) {
        grey_device_spec spec{};
        spec.struct_size = sizeof spec;
        EXPECT_EQ(grey_device_spec_get(context, d, &spec), GREY_OK);
        if (backend == spec.backend) found = d;
    }
    return found;
}

// A directory that removes itself.
class TempDir {
public:
    TempDir() {
        std::string pattern = (std::filesystem::temp_directory_path() / "grey-test-XXXXXX").string();
        if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
        path_ = pattern;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    [[nodiscard]] const std::filesystem::path& path() const { return path_; }

    // Writes `text` to a file below the directory, creating parents.
    std::filesystem::path write(const std::string& relative, const std::string& text) const {
        const auto file = path_ / relative;
        std::filesystem::create_directories(file.parent_path());
        std::ofstream(file, std::ios::binary) << text;
        return file;
    }

private:
    std::filesystem::path path_;
};

}  // namespace grey::test
