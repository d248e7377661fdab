// Finds backend plugins, checks each against the plugin contract, starts the ones that pass, and
// records why every candidate was or was not loaded.
#pragma once

#include "core/backend.hpp"
#include "core/log.hpp"

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace grey {

struct BackendReport {
    std::string name;
    std::string path;
    grey_backend_outcome outcome = GREY_BACKEND_FAILED;
    std::string reason;
    uint32_t device_count = 0;
};

// One directory of the search path: where it came from and, once the loader has looked, its verdict.
struct PluginDirectory {
    std::filesystem::path path;  // as named, absolute
    grey_plugin_origin origin = GREY_PLUGIN_ORIGIN_HOST;
    grey_plugin_dir_state state = GREY_PLUGIN_DIR_MISSING;
    std::filesystem::path real_path;
    std::string reason;
};

struct LoaderRequest {
    std::vector<PluginDirectory> search_path;  // in order
    std::vector<std::string> requested;        // empty: every plugin found (if auto_detect)
    bool auto_detect = true;
};

struct LoadedBackends {
    std::vector<std::unique_ptr<Backend>> backends;
    std::vector<BackendReport> reports;
    std::vector<PluginDirectory> directories;  // the request's search path, each with its verdict
};

// The directories to search, in order, each named once: the host's directory, GREY_BACKEND_DIR (only
// when `env_backend_dir` is given), and grey/ beside the file that holds libgrey's code. Never a path
// fixed when libgrey was built: an installed copy must not search its build tree.
std::vector<PluginDirectory> plugin_search_path(const char* host_dir, const char* env_backend_dir);

// Starts one backend from its entry function (the built-in host backend, or a plugin's symbol).
// Throws grey::Error with the reason if it fails any check.
std::unique_ptr<Backend> start_backend(const std::string& expected_name, const std::string& path, void* library,
                                       grey_backend_entry_fn entry, const grey_backend_host& host);

LoadedBackends load_plugins(const LoaderRequest& request, const grey_backend_host& host, const Logger& logger);

// Splits "cuda, hip" into names; throws GREY_ERROR_INVALID_ARGUMENT on a malformed name.
std::vector<std::string> parse_backend_list(const char* list);

}  // namespace grey
