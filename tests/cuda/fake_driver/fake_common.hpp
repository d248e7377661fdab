// Helpers shared by the fake libcuda.so.1 and libnvidia-ml.so.1: behaviour switches read from the
// environment at every call, so one test process can change them between cases.
//   FAKE_CUDA_FAIL / FAKE_NVML_FAIL   "name:code[,name:code...]": that entry point returns `code`
#pragma once

#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

namespace fake {

// The code `name` must fail with according to the list in environment variable `variable`.
inline std::optional<int> forced_failure(const char* variable, const char* name) {
    const char* list = std::getenv(variable);
    if (list == nullptr) return std::nullopt;
    const std::string text = list;
    const std::string key = std::string(name) + ":";
    for (size_t at = 0; at < text.size();) {
        size_t end = text.find(',', at);
        if (end == std::string::npos) end = text.size();
        const std::string item = text.substr(at, end - at);
        if (item.rfind(key, 0) == 0) return std::atoi(item.c_str() + key.size());
        at = end + 1;
    }
    return std::nullopt;
}

inline unsigned long long env_u64(const char* variable, unsigned long long fallback) {
    const char* value = std::getenv(variable);
    return value != nullptr && *value != '\0' ? std::strtoull(value, nullptr, 0) : fallback;
}

}  // namespace fake
