#include "core/loader.hpp"

#include "core/error.hpp"
#include "core/text.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <cstring>
#include <set>

#ifndef GREY_INSTALL_PLUGIN_DIR
#define GREY_INSTALL_PLUGIN_DIR ""
#endif
#ifndef GREY_BUILD_PLUGIN_DIR
#define GREY_BUILD_PLUGIN_DIR ""
#endif

namespace grey {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kPrefix = "libgrey-backend-";
constexpr std::string_view kSuffix = ".so";

// The directory libgrey itself was loaded from (the executable's, when linked statically).
fs::path library_directory() {
    Dl_info info{};
    if (dladdr(reinterpret_cast<void*>(&plugin_search_path), &info) == 0 || info.dli_fname == nullptr) return {};
    std::error_code ec;
    fs::path file = fs::canonical(info.dli_fname, ec);
    return ec ? fs::path() : file.parent_path();
}

bool valid_name(std::string_view name) {
    return !name.empty() && name.size() < GREY_NAME_MAX &&
           std::all_of(name.begin(), name.end(), [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; });
}

// The pieces of the vtable without which a backend cannot be used at all.
const char* missing_required_slot(const grey_backend_vtable& vt) {
    if (vt.init == nullptr) return "init";
    if (vt.shutdown == nullptr) return "shutdown";
    if (vt.device_count == nullptr) return "device_count";
    if (vt.device_spec == nullptr) return "device_spec";
    if ((vt.buffer_alloc == nullptr) != (vt.buffer_free == nullptr)) return "buffer_free (buffer_alloc is set)";
    return nullptr;
}

std::string with_detail(std::string message, const std::string& detail) {
    if (!detail.empty()) message.append(": ").append(detail);
    return message;
}

struct Candidate {
    std::string name;
    fs::path path;
};

std::vector<Candidate> list_candidates(const fs::path& dir) {
    std::vector<Candidate> out;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string file = it->path().filename().string();
        if (!file.starts_with(kPrefix) || !file.ends_with(kSuffix) || file.size() <= kPrefix.size() + kSuffix.size()) continue;
        out.push_back({file.substr(kPrefix.size(), file.size() - kPrefix.size() - kSuffix.size()), it->path()});
    }
    std::sort(out.begin(), out.end(), [](const Candidate& a, const Candidate& b) { return a.name < b.name; });
    return out;
}

}  // namespace

std::vector<fs::path> plugin_search_path(const char* host_dir, const char* env_backend_dir) {
    std::vector<fs::path> dirs;
    auto add = [&dirs](const fs::path& dir) {
        if (dir.empty()) return;
        std::error_code ec;
        fs::path normal = fs::weakly_canonical(dir, ec);
        if (ec) normal = dir.lexically_normal();
        if (std::find(dirs.begin(), dirs.end(), normal) == dirs.end()) dirs.push_back(normal);
    };
    if (host_dir != nullptr && *host_dir != '\0') add(host_dir);
    if (env_backend_dir != nullptr && *env_backend_dir != '\0') add(env_backend_dir);
    if (auto dir = library_directory(); !dir.empty()) add(dir / "grey");
    add(GREY_INSTALL_PLUGIN_DIR);
    add(GREY_BUILD_PLUGIN_DIR);
    return dirs;
}

std::vector<std::string> parse_backend_list(const char* list) {
    std::vector<std::string> names;
    if (list == nullptr) return names;
    std::string_view rest = list;
    while (!rest.empty()) {
        const auto comma = rest.find(',');
        std::string_view item = rest.substr(0, comma);
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
        while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
        if (item.empty()) continue;
        if (!valid_name(item))
            fail(GREY_ERROR_INVALID_ARGUMENT, "backend name '" + std::string(item) + "' is not valid (use lower-case letters, digits and _)");
        if (std::find(names.begin(), names.end(), item) == names.end()) names.emplace_back(item);
    }
    return names;
}

std::unique_ptr<Backend> start_backend(const std::string& expected_name, const std::string& path, void* library,
                                       grey_backend_entry_fn entry, const grey_backend_host& host) {
    grey_backend_vtable vt{};
    vt.struct_size = sizeof vt;
    detail::clear_last_error();
    const grey_status entered = entry(GREY_BACKEND_ABI_VERSION, &vt);
    if (entered != GREY_OK)
        fail(GREY_ERROR_BACKEND, std::string("its entry point refused to start (") + grey_status_string(entered) + ")" +
                                     (*detail::last_error() ? std::string(": ") + detail::last_error() : std::string()));
    if (vt.abi_version != GREY_BACKEND_ABI_VERSION)
        fail(GREY_ERROR_BACKEND, "it was built for backend ABI version " + std::to_string(vt.abi_version) +
                                     "; this libgrey speaks version " + std::to_string(GREY_BACKEND_ABI_VERSION));
    if (vt.struct_size < GREY_BACKEND_VTABLE_MIN_SIZE)
        fail(GREY_ERROR_BACKEND, "its vtable is " + std::to_string(vt.struct_size) + " bytes; ABI version " +
                                     std::to_string(GREY_BACKEND_ABI_VERSION) + " needs at least " + std::to_string(GREY_BACKEND_VTABLE_MIN_SIZE));
    // Slots past what the plugin filled stay as zero-initialised above: NULL, i.e. not implemented.
    // A plugin that claims more than it can fill is trusted only up to this libgrey's size.
    if (vt.struct_size < sizeof(grey_backend_vtable)) std::memset(reinterpret_cast<char*>(&vt) + vt.struct_size, 0, sizeof(grey_backend_vtable) - vt.struct_size);
    if (vt.name == nullptr || expected_name != vt.name)
        fail(GREY_ERROR_BACKEND, "it calls itself '" + std::string(vt.name ? vt.name : "(null)") + "' but its file says '" + expected_name + "'");
    if (const char* slot = missing_required_slot(vt)) fail(GREY_ERROR_BACKEND, std::string("its required slot ") + slot + " is NULL");

    void* state = nullptr;
    detail::clear_last_error();
    const grey_status started = vt.init(&host, &state);
    if (started != GREY_OK) {
        const std::string detail = detail::last_error();
        fail(started == GREY_ERROR_UNSUPPORTED ? GREY_ERROR_UNSUPPORTED : GREY_ERROR_BACKEND,
             with_detail(std::string("init failed (") + grey_status_string(started) + ")", detail));
    }
    uint32_t count = 0;
    const grey_status counted = vt.device_count(state, &count);
    if (counted != GREY_OK) {
        const std::string detail = detail::last_error();
        vt.shutdown(state);
        fail(GREY_ERROR_BACKEND, with_detail(std::string("device_count failed (") + grey_status_string(counted) + ")", detail));
    }
    return std::make_unique<Backend>(expected_name, path, library, vt, state, count);
}

LoadedBackends load_plugins(const LoaderRequest& request, const grey_backend_host& host, const Logger& logger) {
    LoadedBackends result;
    std::set<std::string> seen;  // names already loaded or tried: the first directory wins
    seen.insert("host");

    for (const auto& dir : request.search_path) {
        std::error_code ec;
        if (!fs::is_directory(dir, ec)) {
            logger.debug("backend search: " + dir.string() + " does not exist");
            continue;
        }
        for (const auto& candidate : list_candidates(dir)) {
            BackendReport report{candidate.name, candidate.path.string(), GREY_BACKEND_SKIPPED, {}, 0};
            const bool requested = std::find(request.requested.begin(), request.requested.end(), candidate.name) != request.requested.end();
            if (!valid_name(candidate.name)) {
                report.outcome = GREY_BACKEND_FAILED;
                report.reason = "the name in its file name is not valid";
            } else if (seen.count(candidate.name)) {
                report.reason = "shadowed: a backend of this name was found earlier in the search path";
            } else if (!request.requested.empty() && !requested) {
                report.reason = "not requested (the host asked for: " + join(request.requested, ",") + ")";
            } else if (request.requested.empty() && !request.auto_detect) {
                report.reason = "not requested (detection.auto_detect is false and the host named no backends)";
            } else {
                seen.insert(candidate.name);
                void* library = dlopen(candidate.path.c_str(), RTLD_NOW | RTLD_LOCAL);
                if (library == nullptr) {
                    const char* why = dlerror();
                    report.outcome = GREY_BACKEND_FAILED;
                    report.reason = std::string("dlopen failed: ") + (why ? why : "unknown error");
                } else if (auto entry = reinterpret_cast<grey_backend_entry_fn>(dlsym(library, GREY_BACKEND_ENTRY_SYMBOL)); entry == nullptr) {
                    dlclose(library);
                    report.outcome = GREY_BACKEND_FAILED;
                    report.reason = std::string("it exports no ") + GREY_BACKEND_ENTRY_SYMBOL + " entry point";
                } else {
                    try {
                        auto backend = start_backend(candidate.name, candidate.path.string(), library, entry, host);
                        report.outcome = GREY_BACKEND_LOADED;
                        report.device_count = backend->device_count();
                        report.reason = "loaded: " + std::to_string(report.device_count) + " device(s)";
                        result.backends.push_back(std::move(backend));
                    } catch (const Error& e) {
                        dlclose(library);
                        // UNSUPPORTED is a backend saying "nothing for me here" (no driver, no device).
                        report.outcome = e.status() == GREY_ERROR_UNSUPPORTED ? GREY_BACKEND_SKIPPED : GREY_BACKEND_FAILED;
                        report.reason = e.what();
                    }
                }
            }
            const std::string line = "backend '" + report.name + "' (" + report.path + "): " + report.reason;
            logger.log(report.outcome == GREY_BACKEND_FAILED ? GREY_LOG_WARNING : GREY_LOG_INFO, line);
            result.reports.push_back(std::move(report));
        }
    }

    for (const auto& name : request.requested) {
        if (name == "host" || seen.count(name)) continue;
        const std::string dirs = join(request.search_path, ", ", [](const fs::path& d) { return d.string(); });
        BackendReport report{name, "", GREY_BACKEND_NOT_FOUND, "requested, but no libgrey-backend-" + name + ".so in: " + dirs, 0};
        logger.warning("backend '" + name + "': " + report.reason);
        result.reports.push_back(std::move(report));
    }
    return result;
}

}  // namespace grey
