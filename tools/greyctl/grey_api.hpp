// greyctl's thin C++ view of grey.h: owning handles and a check() that turns a status into an exception
// carrying grey_last_error(). greyctl uses the public API and nothing else.
#pragma once

#include "grey.h"

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace greyctl {

class ApiError : public std::runtime_error {
public:
    ApiError(grey_status code, const std::string& message) : std::runtime_error(message), status(code) {}
    grey_status status;
};

inline void check(grey_status status) {
    if (status != GREY_OK) {
        const std::string detail = grey_last_error();
        throw ApiError(status, detail.empty() ? grey_status_string(status) : detail);
    }
}

// A grey.h handle that is destroyed with its own grey_*_destroy when it goes out of scope.
template <auto destroy>
struct Destroy {
    template <class Handle>
    void operator()(Handle* handle) const noexcept { destroy(handle); }
};
template <class Handle, auto destroy>
using Owned = std::unique_ptr<Handle, Destroy<destroy>>;

using ContextPtr = Owned<grey_context, grey_context_destroy>;
using AuditLogPtr = Owned<grey_audit_log, grey_audit_log_destroy>;
using ConfigPtr = Owned<grey_config, grey_config_destroy>;
using PlanPtr = Owned<grey_plan, grey_plan_destroy>;
using QuantResultPtr = Owned<grey_model_quant_result, grey_model_quant_result_destroy>;
using ModelPtr = Owned<grey_model, grey_model_destroy>;
using BufferPtr = Owned<grey_buffer, grey_buffer_destroy>;
using KvCachePtr = Owned<grey_kv_cache, grey_kv_cache_destroy>;
using GovernorPtr = Owned<grey_governor, grey_governor_destroy>;
using TenantPtr = Owned<grey_tenant, grey_tenant_destroy>;

inline std::string hex(const uint8_t* bytes, size_t size) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string text;
    for (size_t i = 0; i < size; ++i) {
        text.push_back(digits[bytes[i] >> 4]);
        text.push_back(digits[bytes[i] & 15]);
    }
    return text;
}

// Opens an audit log for appending; `options` gives the durability and epoch policy (by default fsync
// per record and grey.h's default epochs), the paths are filled in here.
inline AuditLogPtr open_audit_log(const std::string& log_path, const std::string& key_path, const std::string& signing_key = "",
                                  grey_audit_options options = GREY_AUDIT_OPTIONS_INIT) {
    options.log_path = log_path.c_str();
    options.key_path = key_path.c_str();
    options.signing_key_path = signing_key.empty() ? nullptr : signing_key.c_str();
    grey_audit_log* log = nullptr;
    check(grey_audit_log_create(&options, &log));
    return AuditLogPtr(log);
}

// Reads a string through grey.h's buffer protocol (ask for the length, then fill).
template <typename Call>
std::string read_text(Call&& call) {
    size_t length = 0;
    grey_status status = call(nullptr, size_t{0}, &length);
    if (status != GREY_OK && status != GREY_ERROR_BUFFER_TOO_SMALL) check(status);
    std::string text(length + 1, '\0');
    check(call(text.data(), text.size(), &length));
    text.resize(length);
    return text;
}

// Every entry of one of grey.h's indexed lists: `count(handle, &n)`, then `get(handle, i, &info)` for each
// index, struct_size set first (the loader's backend candidates, the plugin directories, a model's tensors).
template <typename Handle, typename Index, typename Info>
std::vector<Info> list_all(const Handle* handle, grey_status (*count)(const Handle*, Index*), grey_status (*get)(const Handle*, Index, Info*)) {
    Index n = 0;
    check(count(handle, &n));
    std::vector<Info> infos(n);
    for (Index i = 0; i < n; ++i) {
        infos[i].struct_size = sizeof infos[i];
        check(get(handle, i, &infos[i]));
    }
    return infos;
}

// The quantization formats by the names grey.h defines (grey_quant_params_from_name), so that greyctl,
// the bindings and the samples spell every format the same way.
inline std::vector<std::string> quant_format_names() {
    std::vector<std::string> names;
    for (uint32_t i = 0; i < grey_quant_name_count(); ++i) names.emplace_back(grey_quant_name_at(i));
    return names;
}

}  // namespace greyctl
