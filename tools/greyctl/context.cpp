#include "commands.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <unistd.h>

namespace greyctl {
namespace {
void log_to_stderr(grey_log_level level, const char* message, void*) {
    std::fprintf(stderr, "[%s] %s\n", grey_log_level_name(level), message);
}
}  // namespace

void write_new_text_file(const std::string& path, const std::string& text, bool force) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!force && fs::symlink_status(path, ec).type() != fs::file_type::not_found)
        throw ApiError(GREY_ERROR_INVALID_ARGUMENT, "'" + path + "' already exists (give --force to replace it)");
    const std::string temporary = path + ".tmp." + std::to_string(::getpid());
    {
        std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
        out << text;
        out.close();
        if (!out) {
            fs::remove(temporary, ec);
            throw ApiError(GREY_ERROR_IO, "cannot write '" + temporary + "'");
        }
    }
    fs::rename(temporary, path, ec);
    if (ec) {
        std::error_code ignored;
        fs::remove(temporary, ignored);
        throw ApiError(GREY_ERROR_IO, "cannot write '" + path + "': " + ec.message());
    }
}

ContextPtr open_context(const GlobalOptions& global, const std::string& backends, BackendRequirement requirement) {
    grey_context_options options = GREY_CONTEXT_OPTIONS_INIT;
    std::string level = global.log_level;
    std::transform(level.begin(), level.end(), level.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    for (int l = GREY_LOG_DEBUG; l <= GREY_LOG_OFF; ++l)
        if (level == grey_log_level_name(static_cast<grey_log_level>(l))) options.log_level = static_cast<grey_log_level>(l);
    options.log_callback = &log_to_stderr;
    options.backends = backends.empty() ? nullptr : backends.c_str();
    // A backend the user names must be there: the library refuses the context and says why.
    options.require_backends = !backends.empty() && requirement == BackendRequirement::named_must_load ? 1u : 0u;
    options.backend_dir = global.backend_dir.empty() ? nullptr : global.backend_dir.c_str();
    options.config_path = global.config_path.empty() ? nullptr : global.config_path.c_str();
    options.profile = global.profile.c_str();
    // A command line is where users expect GREY_* variables to work; --no-env turns them off.
    options.apply_env_overrides = global.no_env ? 0u : 1u;
    grey_context* context = nullptr;
    check(grey_context_create(&options, &context));
    return ContextPtr(context);
}

BackendDevice open_backend_device(const GlobalOptions& global, const std::string& backend) {
    BackendDevice runner{open_context(global, backend)};
    if (backend == "host") return runner;  // device 0 is always the host
    uint32_t count = 0;
    check(grey_device_count(runner.context.get(), &count));
    for (uint32_t d = 0; d < count; ++d) {
        grey_device_spec spec{};
        spec.struct_size = sizeof spec;
        check(grey_device_spec_get(runner.context.get(), d, &spec));
        if (backend == spec.backend) {
            runner.device = d;
            return runner;
        }
    }
    // open_context has made sure the backend loaded; a loaded backend may still offer no device.
    throw ApiError(GREY_ERROR_UNSUPPORTED, "the " + backend + " backend is not available: it loaded but offers no device");
}

}  // namespace greyctl
