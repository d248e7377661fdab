// C entry points of the configuration layer.
#include "config/config.hpp"
#include "config/config_handle.hpp"
#include "core/error.hpp"

#include <cstdlib>
#include <memory>

using grey::abi_guard;
using grey::require_non_null;

namespace {
grey::config::Profile profile_from(const char* name) {
    grey::config::Profile profile = grey::config::Profile::Balanced;
    if (name != nullptr && !grey::config::parse_profile(name, profile))
        grey::fail(GREY_ERROR_INVALID_ARGUMENT,
                   std::string("unknown profile '") + name + "' (expected conservative, balanced or aggressive)");
    return profile;
}
}  // namespace

extern "C" {

grey_status grey_config_create(const char* profile, grey_config** out_config) {
    return abi_guard([&] {
        require_non_null(out_config, "out_config");
        auto config = std::make_unique<grey_config>(grey_config{grey::config::Config(profile_from(profile))});
        *out_config = config.release();
    });
}

grey_status grey_config_load_file(grey_config* config, const char* path) {
    return abi_guard([&] {
        require_non_null(config, "config");
        require_non_null(path, "path");
        config->impl.load_file(path);
    });
}

grey_status grey_config_load_string(grey_config* config, const char* yaml, const char* origin) {
    return abi_guard([&] {
        require_non_null(config, "config");
        require_non_null(yaml, "yaml");
        config->impl.load_yaml(yaml, origin != nullptr ? origin : "<string>");
    });
}

grey_status grey_config_apply_env(grey_config* config) {
    return abi_guard([&] {
        require_non_null(config, "config");
        config->impl.apply_env([](const char* n) -> const char* { return std::getenv(n); });
    });
}

grey_status grey_config_set(grey_config* config, const char* key, const char* value) {
    return abi_guard([&] {
        require_non_null(config, "config");
        require_non_null(key, "key");
        require_non_null(value, "value");
        config->impl.set(key, value);
    });
}

grey_status grey_config_get(const grey_config* config, const char* key, char* buffer, size_t buffer_size,
                            size_t* out_length) {
    return abi_guard([&] {
        require_non_null(config, "config");
        require_non_null(key, "key");
        grey::copy_out_text(config->impl.get_text(key), buffer, buffer_size, out_length);
    });
}

grey_status grey_config_to_yaml(const grey_config* config, char* buffer, size_t buffer_size, size_t* out_length) {
    return abi_guard([&] {
        require_non_null(config, "config");
        grey::copy_out_text(config->impl.to_yaml(), buffer, buffer_size, out_length);
    });
}

uint32_t grey_config_key_count(void) { return static_cast<uint32_t>(grey::config::schema().size()); }

const char* grey_config_key_name(uint32_t index) {
    const auto keys = grey::config::schema();
    return index < keys.size() ? keys[index].path.data() : nullptr;
}

const char* grey_config_key_acted_on_by(uint32_t index) {
    const auto keys = grey::config::schema();
    return index < keys.size() && !keys[index].acted_on_by.empty() ? keys[index].acted_on_by.data() : nullptr;
}

void grey_config_destroy(grey_config* config) { delete config; }

}  // extern "C"
