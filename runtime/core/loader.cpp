#include "core/loader.hpp"

#include "core/error.hpp"
#include "core/text.hpp"
#include "core/trusted_path.hpp"

#include <dlfcn.h>
#include <link.h>

#include <algorithm>
#include <cstring>
#include <set>

namespace grey {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kPrefix = "libgrey-backend-";
constexpr std::string_view kSuffix = ".so";

// The file that holds this code at run time: libgrey.so, or the program or module (the Python
// extension) that libgrey is linked into statically.
fs::path file_holding_libgrey() {
    struct Search {
        uintptr_t address;
        bool found = false;
        std::string name;
    } search{reinterpret_cast<uintptr_t>(&plugin_search_path)};
    dl_iterate_phdr(
        [](dl_phdr_info* info, size_t, void* data) -> int {
            auto* s = static_cast<Search*>(data);
            for (ElfW(Half) i = 0; i < info->dlpi_phnum; ++i) {
                const ElfW(Phdr)& segment = info->dlpi_phdr[i];
                const uintptr_t start = info->dlpi_addr + segment.p_vaddr;
                if (segment.p_type == PT_LOAD && s->address >= start && s->address - start < segment.p_memsz) {
                    s->found = true;
                    s->name = info->dlpi_name != nullptr ? info->dlpi_name : "";
                    return 1;
                }
            }
            return 0;
        },
        &search);
    if (!search.found) return {};
    // The main program is listed without a name; the kernel knows its file.
    std::error_code ec;
    fs::path file = fs::canonical(search.name.empty() ? fs::path("/proc/self/exe") : fs::path(search.name), ec);
    return ec ? fs::path() : file;
}

// One spelling for "/a/b/.", "/a/b/" and "/a/b", so that each directory is named once.
fs::path normal_form(const fs::path& dir) {
    fs::path normal = dir.lexically_normal();
    if (!normal.has_filename() && normal.has_relative_path()) normal = normal.parent_path();
    return normal;
}

const char* origin_text(grey_plugin_origin origin) {
    switch (origin) {
        case GREY_PLUGIN_ORIGIN_HOST: return "the host's backend_dir";
        case GREY_PLUGIN_ORIGIN_ENVIRONMENT: return "GREY_BACKEND_DIR";
        case GREY_PLUGIN_ORIGIN_BESIDE_LIBRARY: return "beside libgrey";
        default: return "unknown origin";
    }
}

// Gives each directory its verdict. The same directory reached twice (by a link, say) is searched once.
void inspect_directories(std::vector<PluginDirectory>& dirs, const Logger& logger) {
    for (auto it = dirs.begin(); it != dirs.end(); ++it) {
        const TrustedPath verdict = resolve_trusted(it->path, PathKind::Directory);
        it->real_path = verdict.real_path;
        it->reason = verdict.reason;
        it->state = verdict.state == TrustedPath::State::Trusted  ? GREY_PLUGIN_DIR_SEARCHED
                    : verdict.state == TrustedPath::State::Missing ? GREY_PLUGIN_DIR_MISSING
                                                                   : GREY_PLUGIN_DIR_REFUSED;
        const auto earlier = std::find_if(dirs.begin(), it, [&](const PluginDirectory& d) {
            return !d.real_path.empty() && d.real_path == it->real_path;
        });
        if (earlier != it) {
            it->state = GREY_PLUGIN_DIR_DUPLICATE;
            it->reason = "the same directory as '" + earlier->path.string() + "', earlier on the search path";
        }
        const std::string line = "plugin directory " + it->path.string() + " (" + origin_text(it->origin) + "): " + it->reason;
        if (it->state == GREY_PLUGIN_DIR_REFUSED) logger.warning("not searching " + line);
        else logger.debug(line);
    }
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

std::vector<PluginDirectory> plugin_search_path(const char* host_dir, const char* env_backend_dir) {
    std::vector<PluginDirectory> dirs;
    auto add = [&dirs](const fs::path& dir, grey_plugin_origin origin) {
        std::error_code ec;
        const fs::path absolute = fs::absolute(dir, ec);
        const fs::path named = normal_form(ec ? dir : absolute);
        if (std::none_of(dirs.begin(), dirs.end(), [&](const PluginDirectory& d) { return d.path == named; }))
            dirs.push_back({named, origin, GREY_PLUGIN_DIR_MISSING, {}, {}});
    };
    if (host_dir != nullptr && *host_dir != '\0') add(host_dir, GREY_PLUGIN_ORIGIN_HOST);
    if (env_backend_dir != nullptr && *env_backend_dir != '\0') add(env_backend_dir, GREY_PLUGIN_ORIGIN_ENVIRONMENT);
    if (const fs::path file = file_holding_libgrey(); !file.empty()) add(file.parent_path() / "grey", GREY_PLUGIN_ORIGIN_BESIDE_LIBRARY);
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
                                     std::to_string(GREY_BACKEND_ABI_VERSION) + " needs at least " +
                                     std::to_string(GREY_BACKEND_VTABLE_MIN_SIZE));
    // Slots past what the plugin was built with are absent: clear whatever its entry point left there.
    if (vt.struct_size < sizeof vt)
        std::memset(reinterpret_cast<unsigned char*>(&vt) + vt.struct_size, 0, sizeof vt - vt.struct_size);
    if (vt.name == nullptr || expected_name != vt.name)
        fail(GREY_ERROR_BACKEND, "it calls itself '" + std::string(vt.name ? vt.name : "(null)") + "' but its file says '" + expected_name + "'");
    if (const char* slot = missing_required_slot(vt)) fail(GREY_ERROR_BACKEND, std::string("its required slot ") + slot + " is NULL");

    void* state = nullptr;
    detail::clear_last_error();
    const grey_status started = vt.init(&host, &state);
    if (started != GREY_OK) {
        const std::string detail = detail::last_error();
        if (started == GREY_ERROR_UNSUPPORTED) fail(GREY_ERROR_UNSUPPORTED, with_detail("not offered on this machine", detail));
        fail(GREY_ERROR_BACKEND, with_detail(std::string("init failed (") + grey_status_string(started) + ")", detail));
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

namespace {

// Checks that one plugin's file can be trusted, then opens and starts it; fills `report` with the outcome.
void load_one(const Candidate& candidate, const grey_backend_host& host, BackendReport& report, LoadedBackends& result) {
    const TrustedPath file = resolve_trusted(candidate.path, PathKind::RegularFile);
    if (file.state != TrustedPath::State::Trusted) {
        report.outcome = GREY_BACKEND_FAILED;
        report.reason = "refused: " + file.reason;
        return;
    }
    void* library = dlopen(file.real_path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr) {
        const char* why = dlerror();
        report.outcome = GREY_BACKEND_FAILED;
        report.reason = std::string("dlopen failed: ") + (why ? why : "unknown error");
        return;
    }
    auto entry = reinterpret_cast<grey_backend_entry_fn>(dlsym(library, GREY_BACKEND_ENTRY_SYMBOL));
    if (entry == nullptr) {
        dlclose(library);
        report.outcome = GREY_BACKEND_FAILED;
        report.reason = std::string("it exports no ") + GREY_BACKEND_ENTRY_SYMBOL + " entry point";
        return;
    }
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

std::string paths_in(const std::vector<PluginDirectory>& dirs, grey_plugin_dir_state state) {
    std::vector<std::string> paths;
    for (const auto& dir : dirs)
        if (dir.state == state) paths.push_back(dir.path.string());
    return join(paths, ", ");
}

}  // namespace

LoadedBackends load_plugins(const LoaderRequest& request, const grey_backend_host& host, const Logger& logger) {
    LoadedBackends result;
    result.directories = request.search_path;
    inspect_directories(result.directories, logger);
    std::set<std::string> seen;  // names already loaded or tried: the first directory wins
    seen.insert("host");

    for (const auto& dir : result.directories) {
        if (dir.state != GREY_PLUGIN_DIR_SEARCHED) continue;
        for (const auto& found : list_candidates(dir.real_path)) {
            // Reported under the directory's name as given; load_one opens the real path it checks.
            const Candidate candidate{found.name, dir.path / found.path.filename()};
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
                load_one(candidate, host, report, result);
            }
            const std::string line = "backend '" + report.name + "' (" + report.path + "): " + report.reason;
            logger.log(report.outcome == GREY_BACKEND_FAILED ? GREY_LOG_WARNING : GREY_LOG_INFO, line);
            result.reports.push_back(std::move(report));
        }
    }

    const std::string searched = paths_in(result.directories, GREY_PLUGIN_DIR_SEARCHED);
    const std::string refused = paths_in(result.directories, GREY_PLUGIN_DIR_REFUSED);
    for (const auto& name : request.requested) {
        if (name == "host" || seen.count(name)) continue;
        std::string reason = "requested, but no libgrey-backend-" + name + ".so in " +
                             (searched.empty() ? std::string("any directory (none could be searched)") : searched);
        if (!refused.empty()) reason += "; not searched, as untrusted: " + refused;
        BackendReport report{name, "", GREY_BACKEND_NOT_FOUND, reason, 0};
        logger.warning("backend '" + name + "': " + report.reason);
        result.reports.push_back(std::move(report));
    }
    return result;
}

}  // namespace grey
