// greyctl detect: every device's specification (and, on request, live telemetry), as a table or JSON.
#include "commands.hpp"
#include "exit_codes.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <thread>
#include <vector>

namespace greyctl {
namespace {

using json = nlohmann::ordered_json;

struct DetectOptions {
    bool as_json = false;
    bool debug = false;
    bool telemetry = false;
    bool all_fields = false;
    std::string backend;
    std::string query;     // --query: comma-separated field keys, printed as CSV (or JSON)
    bool no_header = false;
    double watch_s = 0;    // --watch: seconds between samples (0: one sample)
    uint64_t count = 0;    // --count: samples to take with --watch (0: until interrupted)
    ProofOptions proof;
};

// The library's name for an enum value, or "unknown" for one newer than this greyctl.
const char* known(const char* name) { return name != nullptr ? name : "unknown"; }

std::vector<grey_plugin_dir_info> plugin_dirs(grey_context* ctx) { return list_all(ctx, grey_plugin_dir_count, grey_plugin_dir_info_get); }

// Every directory the loader considered, whether it searched it, and why.
void print_plugin_dirs(std::FILE* out, const std::vector<grey_plugin_dir_info>& dirs) {
    std::fprintf(out, "plugin directories (in search order):\n");
    for (const auto& dir : dirs) {
        std::fprintf(out, "  %-9s %-14s %s\n", known(grey_plugin_dir_state_name(dir.state)), known(grey_plugin_origin_name(dir.origin)), dir.path);
        if (*dir.real_path != '\0' && std::string(dir.real_path) != dir.path)
            std::fprintf(out, "  %-24s -> %s\n", "", dir.real_path);
        std::fprintf(out, "  %-24s %s\n", "", dir.reason);
    }
}

// One field read generically through its descriptor: the value as JSON, plus state and source.
struct FieldReading {
    grey_field_desc desc;
    json value;
    grey_field_state state;
    grey_source source;
};

std::vector<FieldReading> read_fields(const void* group_struct, grey_field_group group) {
    std::vector<FieldReading> out;
    for (int f = 0; f < GREY_FIELD_COUNT; ++f) {
        grey_field_desc desc{};
        desc.struct_size = sizeof desc;
        check(grey_field_describe(static_cast<grey_field>(f), &desc));
        if (desc.group != group) continue;
        const char* at = static_cast<const char*>(group_struct) + desc.offset;
        FieldReading r{desc, nullptr, GREY_FIELD_UNSUPPORTED, GREY_SOURCE_NONE};
        switch (desc.kind) {
            case GREY_FIELD_KIND_U64: {
                const auto* field = reinterpret_cast<const grey_field_u64*>(at);
                r.value = field->value;
                r.state = field->state;
                r.source = field->source;
                break;
            }
            case GREY_FIELD_KIND_F64: {
                const auto* field = reinterpret_cast<const grey_field_f64*>(at);
                r.value = field->value;
                r.state = field->state;
                r.source = field->source;
                break;
            }
            default: {
                const auto* field = reinterpret_cast<const grey_field_text*>(at);
                r.value = std::string(field->value);
                r.state = field->state;
                r.source = field->source;
                break;
            }
        }
        if (r.state != GREY_FIELD_OK) r.value = nullptr;
        out.push_back(std::move(r));
    }
    return out;
}

std::string field_reason(grey_context* context, uint32_t device, grey_field field) {
    return read_text([&](char* b, size_t n, size_t* len) { return grey_device_field_reason(context, device, field, b, n, len); });
}

json group_json(grey_context* context, uint32_t device, const std::vector<FieldReading>& readings, json& object) {
    json unavailable = json::object();
    json states = json::object();
    json sources = json::object();
    for (const auto& r : readings) {
        object[r.desc.key] = r.value;
        if (r.state == GREY_FIELD_OK) {
            sources[r.desc.key] = known(grey_source_name(r.source));
        } else {
            unavailable[r.desc.key] = field_reason(context, device, r.desc.field);
            states[r.desc.key] = known(grey_field_state_name(r.state));
        }
    }
    object["unavailable"] = unavailable;
    object["unavailable_states"] = states;
    object["sources"] = sources;
    return object;
}

std::string human_bytes(uint64_t bytes) {
    char buffer[32];
    const double gib = static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0);
    if (gib >= 1.0) std::snprintf(buffer, sizeof buffer, "%.1f GiB", gib);
    else std::snprintf(buffer, sizeof buffer, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
    return buffer;
}

std::string text_of(const FieldReading& r) {
    if (r.state != GREY_FIELD_OK) return std::string("(") + known(grey_field_state_name(r.state)) + ")";
    if (r.value.is_string()) return r.value.get<std::string>();
    std::ostringstream out;
    if (r.desc.kind == GREY_FIELD_KIND_F64) {
        char buffer[32];
        std::snprintf(buffer, sizeof buffer, "%.1f", r.value.get<double>());
        out << buffer;
    } else {
        out << r.value.get<uint64_t>();
    }
    if (*r.desc.unit) out << ' ' << r.desc.unit;
    return out.str();
}

// The non-empty pieces of `text` between `separator`s.
std::vector<std::string> split(const std::string& text, char separator) {
    std::vector<std::string> pieces;
    std::istringstream in(text);
    for (std::string piece; std::getline(in, piece, separator);)
        if (!piece.empty()) pieces.push_back(piece);
    return pieces;
}

// The loader's report: every backend candidate, loaded or not, and why.
std::vector<grey_backend_info> backend_candidates(grey_context* ctx) {
    return list_all(ctx, grey_backend_candidate_count, grey_backend_info_get);
}

// For --debug when a named backend did not load: what the loader tried and where it looked.
void print_why_backends_failed(const GlobalOptions& global, const std::string& backends) {
    ContextPtr context = open_context(global, backends, BackendRequirement::report_only);
    for (const auto& info : backend_candidates(context.get()))
        std::fprintf(stderr, "  %-8s %-9s %s %s\n", info.name, known(grey_backend_outcome_name(info.outcome)), info.path, info.reason);
    print_plugin_dirs(stderr, plugin_dirs(context.get()));
}

// The keys a device has in detect's JSON outside its fields (which grey_field_describe names).
const std::vector<std::string> device_keys = {"index", "backend", "backend_device_index", "vendor", "type"};

// Whether `key` names a telemetry field: asking for one samples telemetry.
bool is_telemetry_key(const std::string& key) {
    if (key == "timestamp_ns") return true;
    for (int f = 0; f < GREY_FIELD_COUNT; ++f) {
        grey_field_desc desc{};
        desc.struct_size = sizeof desc;
        check(grey_field_describe(static_cast<grey_field>(f), &desc));
        if (key == desc.key) return desc.group == GREY_FIELD_GROUP_TELEMETRY;
    }
    return false;
}

// --query's keys, each checked: an unknown one is a usage error naming the nearest key there is.
std::vector<std::string> query_keys(const std::string& query) {
    std::vector<std::string> known_keys = device_keys;
    known_keys.push_back("timestamp_ns");
    for (int f = 0; f < GREY_FIELD_COUNT; ++f) {
        grey_field_desc desc{};
        desc.struct_size = sizeof desc;
        check(grey_field_describe(static_cast<grey_field>(f), &desc));
        known_keys.emplace_back(desc.key);
    }
    std::vector<std::string> keys;
    for (std::string key : split(query, ',')) {
        key.erase(0, key.find_first_not_of(' '));
        key.erase(key.find_last_not_of(' ') + 1);
        if (std::find(known_keys.begin(), known_keys.end(), key) == known_keys.end()) {
            const std::string nearest = nearest_name(key, known_keys);
            throw CommandError(Exit::usage, "--query: unknown field '" + key + "'" + (nearest.empty() ? "" : "; did you mean '" + nearest + "'?") +
                                                " (greyctl detect --all --telemetry lists every field)");
        }
        keys.push_back(key);
    }
    if (keys.empty()) throw CommandError(Exit::usage, "--query: name at least one field (e.g. --query index,name,memory_free_bytes)");
    return keys;
}

// A CSV cell (RFC 4180): quoted when it holds a comma, quote or line break.
std::string csv_cell(const std::string& text) {
    if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
    std::string quoted = "\"";
    for (const char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
    return quoted + "\"";
}

// One device's value of `key` in detect's JSON, where telemetry keys sit under "telemetry".
json query_value(const json& device, const std::string& key) {
    if (device.contains(key)) return device[key];
    if (device.contains("telemetry") && device["telemetry"].contains(key)) return device["telemetry"][key];
    return nullptr;
}

// Prints the --query rows of one sample: CSV (with a header line first unless --no-header; an
// unavailable value as [STATE]), or JSON {"devices": [{key: value...}]} (one line per sample with --watch).
void print_query(const std::vector<std::string>& keys, const json& devices, const DetectOptions& opts, bool first_sample) {
    if (opts.as_json) {
        json rows = json::array();
        for (const auto& device : devices) {
            json row = json::object();
            for (const auto& key : keys) row[key] = query_value(device, key);
            rows.push_back(row);
        }
        const json out = {{"devices", rows}};
        std::cout << (opts.watch_s > 0 ? out.dump() : out.dump(2)) << std::endl;
        return;
    }
    std::string text;
    if (first_sample && !opts.no_header)
        for (size_t i = 0; i < keys.size(); ++i) text += (i ? "," : "") + csv_cell(keys[i]) + (i + 1 == keys.size() ? "\n" : "");
    for (const auto& device : devices) {
        for (size_t i = 0; i < keys.size(); ++i) {
            const json value = query_value(device, keys[i]);
            std::string cell;
            if (value.is_null()) {
                const json& states = device.contains(keys[i]) ? device["unavailable_states"] : device["telemetry"]["unavailable_states"];
                cell = "[" + states.value(keys[i], std::string("unavailable")) + "]";
            } else {
                cell = value.is_string() ? value.get<std::string>() : value.dump();
            }
            text += (i ? "," : "") + csv_cell(cell);
        }
        text += "\n";
    }
    std::cout << text << std::flush;
}

void detect_once(const GlobalOptions& global, const DetectOptions& opts, grey_context* ctx, const std::vector<std::string>& keys,
                 bool with_telemetry, bool first_sample);

int run_detect(const GlobalOptions& global, const DetectOptions& opts) {
    const std::vector<std::string> keys = opts.query.empty() ? std::vector<std::string>{} : query_keys(opts.query);
    if (opts.count != 0 && opts.watch_s <= 0) throw CommandError(Exit::usage, "--count needs --watch SECONDS");
    if (!keys.empty() && (opts.debug || opts.all_fields || opts.proof.enabled))
        throw CommandError(Exit::usage, "--query prints the fields it names: it does not go with --debug, --all or --proof");
    if (opts.watch_s > 0 && opts.proof.enabled) throw CommandError(Exit::usage, "--proof records one sample: it does not go with --watch");
    const bool telemetry = opts.telemetry || std::any_of(keys.begin(), keys.end(), is_telemetry_key);
    ContextPtr context;
    try {
        context = open_context(global, opts.backend);
    } catch (const ApiError&) {
        if (opts.debug && !opts.backend.empty()) print_why_backends_failed(global, opts.backend);
        throw;
    }
    for (uint64_t sample = 0;; ++sample) {
        if (sample != 0) std::this_thread::sleep_for(std::chrono::duration<double>(opts.watch_s));
        detect_once(global, opts, context.get(), keys, telemetry, sample == 0);
        if (opts.watch_s <= 0 || (opts.count != 0 && sample + 1 >= opts.count)) return 0;
        if (keys.empty() && !opts.as_json) std::printf("\n");
    }
}

void detect_once(const GlobalOptions& global, const DetectOptions& opts, grey_context* ctx, const std::vector<std::string>& keys,
                 bool with_telemetry, bool first_sample) {
    const std::vector<std::string> wanted = split(opts.backend, ',');
    const std::vector<grey_backend_info> infos = backend_candidates(ctx);
    json backends = json::array();
    for (const auto& info : infos)
        backends.push_back({{"name", info.name}, {"path", info.path}, {"outcome", known(grey_backend_outcome_name(info.outcome))},
                            {"reason", info.reason}, {"device_count", info.device_count}});

    uint32_t count = 0;
    check(grey_device_count(ctx, &count));
    json devices = json::array();
    std::vector<std::pair<grey_device_spec, std::vector<FieldReading>>> table;
    for (uint32_t d = 0; d < count; ++d) {
        grey_device_spec spec{};
        spec.struct_size = sizeof spec;
        check(grey_device_spec_get(ctx, d, &spec));
        if (!wanted.empty() && std::find(wanted.begin(), wanted.end(), spec.backend) == wanted.end()) continue;
        json device = {{"index", d}, {"backend", spec.backend}, {"backend_device_index", spec.backend_device_index},
                       {"vendor", known(grey_vendor_name(spec.vendor))}, {"type", known(grey_device_type_name(spec.type))}};
        auto readings = read_fields(&spec, GREY_FIELD_GROUP_SPEC);
        group_json(ctx, d, readings, device);
        if (with_telemetry) {
            grey_device_telemetry telemetry{};
            telemetry.struct_size = sizeof telemetry;
            check(grey_device_telemetry_get(ctx, d, &telemetry));
            json t = {{"timestamp_ns", telemetry.timestamp_ns}};
            auto treadings = read_fields(&telemetry, GREY_FIELD_GROUP_TELEMETRY);
            group_json(ctx, d, treadings, t);
            if (telemetry.throttle_reasons.state == GREY_FIELD_OK) {
                json names = json::array();
                for (uint32_t bit = 1; bit != 0; bit <<= 1)
                    if ((telemetry.throttle_reasons.value & bit) != 0)
                        if (const char* n = grey_throttle_reason_name(bit)) names.push_back(n);
                t["throttle_reason_names"] = names;
            }
            device["telemetry"] = t;
            readings.insert(readings.end(), treadings.begin(), treadings.end());
        }
        devices.push_back(device);
        table.emplace_back(spec, std::move(readings));
    }

    if (opts.proof.enabled) {
        json identity = json::array();
        for (const auto& device : devices)
            identity.push_back({{"backend", device["backend"]}, {"name", device["name"]}, {"uuid", device["uuid"]},
                                {"pci_bus_id", device["pci_bus_id"]}});
        std::vector<std::string> inputs;
        if (!global.config_path.empty()) inputs.push_back(global.config_path);
        const std::string id = write_proof_artifact(global, opts.proof, "detect", inputs, identity.dump(), json{{"devices", devices}}.dump());
        std::fprintf(stderr, "greyctl: proof artifact %s written and recorded in the audit log\n", id.c_str());
    }

    if (!keys.empty()) {
        print_query(keys, devices, opts, first_sample);
        return;
    }
    if (opts.as_json) {
        json out = {{"libgrey_version", grey_version_string()}, {"devices", devices}};
        if (opts.debug) {
            out["backends"] = backends;
            json search_path = json::array();
            json dirs = json::array();
            for (const auto& dir : plugin_dirs(ctx)) {
                search_path.push_back(dir.path);
                dirs.push_back({{"path", dir.path}, {"real_path", dir.real_path}, {"origin", known(grey_plugin_origin_name(dir.origin))},
                                {"state", known(grey_plugin_dir_state_name(dir.state))}, {"reason", dir.reason}});
            }
            out["search_path"] = search_path;
            out["plugin_dirs"] = dirs;
        }
        // One line per sample with --watch (JSON Lines), so that a reader can parse each as it comes.
        std::cout << (opts.watch_s > 0 ? out.dump() : out.dump(2)) << std::endl;
        return;
    }

    std::printf("%-3s %-8s %-4s %-44s %12s %12s %6s\n", "#", "BACKEND", "TYPE", "NAME", "MEMORY", "FREE", "UNITS");
    for (size_t i = 0; i < table.size(); ++i) {
        const auto& spec = table[i].first;
        auto mem = [](const grey_field_u64& f) { return f.state == GREY_FIELD_OK ? human_bytes(f.value) : std::string("-"); };
        std::printf("%-3u %-8s %-4s %-44.44s %12s %12s %6s\n", devices[i]["index"].get<unsigned>(), spec.backend,
                    spec.type == GREY_DEVICE_GPU ? "gpu" : "cpu", spec.name.state == GREY_FIELD_OK ? spec.name.value : "-",
                    mem(spec.memory_total_bytes).c_str(), mem(spec.memory_free_bytes).c_str(),
                    spec.compute_units.state == GREY_FIELD_OK ? std::to_string(spec.compute_units.value).c_str() : "-");
    }
    if (opts.all_fields || opts.telemetry) {
        for (size_t i = 0; i < table.size(); ++i) {
            const unsigned index = devices[i]["index"].get<unsigned>();
            std::printf("\ndevice %u (%s):\n", index, table[i].first.backend);
            for (const auto& r : table[i].second) {
                if (r.state == GREY_FIELD_OK) std::printf("  %-30s %s\n", r.desc.key, text_of(r).c_str());
                else std::printf("  %-30s %s %s\n", r.desc.key, text_of(r).c_str(), field_reason(ctx, index, r.desc.field).c_str());
            }
        }
    }
    if (opts.debug) {
        std::printf("\nbackends tried:\n");
        for (const auto& info : infos)
            std::printf("  %-10s %-9s %s\n             %s\n", info.name, known(grey_backend_outcome_name(info.outcome)), info.path, info.reason);
        print_plugin_dirs(stdout, plugin_dirs(ctx));
    }
    std::fflush(stdout);
}

}  // namespace

void add_detect_command(CLI::App& app, const GlobalOptions& global, Runner& run) {
    auto opts = std::make_shared<DetectOptions>();
    auto* detect = app.add_subcommand("detect", "List every device with its specification");
    add_json_flag(*detect, opts->as_json, "Print JSON: {\"devices\": [...]}");
    detect->add_option("--backend", opts->backend, "Only this backend's devices (comma-separated names)");
    detect->add_flag("--debug", opts->debug, "Also list every backend tried and every plugin directory, and why each was or was not used");
    detect->add_flag("--telemetry", opts->telemetry, "Also sample live telemetry");
    detect->add_flag("--all", opts->all_fields, "Print every field of every device");
    detect->add_option("--query", opts->query,
                       "Print only these fields, comma-separated (index,name,memory_free_bytes,...), as CSV with a header line, "
                       "or as JSON with --json; a telemetry field samples telemetry");
    detect->add_flag("--no-header", opts->no_header, "With --query: no CSV header line");
    detect->add_option("--watch", opts->watch_s, "Sample again every SECONDS until interrupted (with --json: one JSON document per line)")
        ->check(CLI::Range(0.01, 86400.0));
    detect->add_option("--count", opts->count, "With --watch: stop after this many samples");
    add_proof_options(*detect, opts->proof);
    detect->callback([&global, &run, opts] { run = [&global, opts] { return run_detect(global, *opts); }; });
}

}  // namespace greyctl
