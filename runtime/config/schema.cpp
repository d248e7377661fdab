#include "config/schema.hpp"

#include "core/text.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace grey::config {
namespace {

using namespace std::string_literals;

// The balanced column is the product's reference configuration (tests/data/reference-config.yaml),
// value for value, and the repository's config/grey.yaml.
const std::vector<KeySpec>& table() {
    static const std::vector<KeySpec> keys = {
        {"version", ValueType::Choice, 0, 0, {"1.0"}, {"1.0"s, "1.0"s, "1.0"s},
         "Schema version of the file. Only \"1.0\" exists.",
         "the configuration loader"},
        {"detection.auto_detect", ValueType::Boolean, 0, 0, {}, {true, true, true},
         "Load every backend plugin found. false: load only the backends the host names.",
         "the plugin loader (grey_context_create)"},
        {"detection.fallback_to_defaults", ValueType::Boolean, 0, 0, {}, {false, false, false},
         "Accepted for compatibility. libgrey never substitutes a default for a value it could not "
         "detect: such a field is reported unavailable with its reason, whatever this says."},
        {"detection.gpu_index", ValueType::Integer, -1, 1023, {}, {int64_t{-1}, int64_t{-1}, int64_t{-1}},
         "The GPU that single-device commands act on (index among GPUs); -1 means the first."},
        {"targets.ram_multiplier", ValueType::Real, 1.0, 64.0, {}, {2.0, 8.0, 12.0},
         "Effective memory multiplier (logical / physical bytes) the user aims for. A goal, never a "
         "reported result: results are measured.",
         "greyctl simulate-ram (compared with the measured multiplier)"},
        {"targets.performance_uplift", ValueType::Real, 0.0, 1.0, {}, {0.0, 0.02, 0.05},
         "Sustained throughput gain the user aims for, as a fraction (0.02 = 2%)."},
        {"memory.deduplication.enabled", ValueType::Boolean, 0, 0, {}, {true, true, true},
         "Share identical sealed buffers.", "grey_memory_compact without a policy"},
        {"memory.deduplication.scan_interval_ms", ValueType::Integer, 0, 3600000, {},
         {int64_t{1000}, int64_t{100}, int64_t{20}},
         "How often sealed buffers are scanned for duplicates: a background thread compacts each device "
         "with the policy of memory.deduplication.enabled and memory.compression.*, leaving mapped buffers "
         "and buffers with async work in flight alone. 0 turns the scan off.",
         "the background scan (memory tiers), when deduplication or compression is enabled"},
        {"memory.deduplication.block_size_kb", ValueType::Integer, 4, 16384, {},
         {int64_t{64}, int64_t{64}, int64_t{64}},
         "Block size, KiB, in which sealed buffers are deduplicated and compressed.",
         "the memory tiers (grey_buffer_compress, grey_memory_compact)"},
        {"memory.compression.enabled", ValueType::Boolean, 0, 0, {}, {false, true, true},
         "Compress sealed buffers.", "grey_memory_compact without a policy"},
        {"memory.compression.algorithm", ValueType::Choice, 0, 0, {"lz4", "zstd", "none"},
         {"lz4"s, "lz4"s, "zstd"s}, "Codec for compressed residency.",
         "the memory tiers (GREY_CODEC_DEFAULT, grey_memory_compact without a policy)"},
        {"memory.compression.pinned_host_mb", ValueType::Integer, 0, 16777216, {},
         {int64_t{4096}, int64_t{4096}, int64_t{4096}},
         "Page-locked host memory, MiB per device, that the containers of buffers compressed in host "
         "memory may hold, so that a map copies them to the device by a DMA queued on its stream. A "
         "container past it is held in pageable memory: the same bytes, copied slower. 0 pins none.",
         "the memory tiers (grey_buffer_compress and grey_memory_compact to compressed_host)"},
        {"memory.cache.working_set_mb", ValueType::Integer, 1, 16777216, {},
         {int64_t{1024}, int64_t{1024}, int64_t{1024}},
         "Size of each device's working-set cache, MiB: dense copies of mapped compressed or "
         "deduplicated buffers, least recently used freed first.",
         "the memory tiers (grey_buffer_map_access)"},
        {"memory.allocation.pool_size_mb", ValueType::Integer, 1, 16777216, {},
         {int64_t{512}, int64_t{1024}, int64_t{4096}}, "Initial size of each device's memory pool, MiB."},
        {"memory.allocation.fragmentation_threshold", ValueType::Real, 0.0, 1.0, {}, {0.10, 0.15, 0.25},
         "Fragmentation (1 - largest free block / free bytes) above which the pool compacts."},
        {"thermal.enabled", ValueType::Boolean, 0, 0, {}, {true, true, true}, "Run the thermal governor.",
         "the governor (grey_governor_configure)"},
        {"thermal.target_temp_c", ValueType::Real, 20.0, 120.0, {}, {70.0, 75.0, 80.0},
         "Temperature the governor steers towards, degrees Celsius. Must be below max_temp_c.",
         "the governor (grey_governor_configure)"},
        {"thermal.max_temp_c", ValueType::Real, 20.0, 120.0, {}, {80.0, 83.0, 85.0},
         "Temperature the governor never lets work push past, degrees Celsius.",
         "the governor (grey_governor_configure)"},
        {"thermal.throttle_strategy", ValueType::Choice, 0, 0, {"proactive", "reactive"},
         {"proactive"s, "proactive"s, "reactive"s},
         "proactive: pace work before the target is reached; reactive: only once it is exceeded.",
         "the governor (grey_governor_configure)"},
        {"scheduling.fairness_enabled", ValueType::Boolean, 0, 0, {}, {true, true, true},
         "Share devices fairly between tenants.",
         "the governor (grey_governor_configure)"},
        {"scheduling.priority_levels", ValueType::Integer, 1, 16, {}, {int64_t{3}, int64_t{3}, int64_t{5}},
         "Number of distinct priority levels.",
         "the governor (grey_governor_configure)"},
        {"scheduling.preemption_allowed", ValueType::Boolean, 0, 0, {}, {false, false, true},
         "Whether higher-priority work may preempt running work.",
         "the governor (grey_governor_configure)"},
        {"host.threads", ValueType::Integer, 0, 4096, {}, {int64_t{0}, int64_t{0}, int64_t{0}},
         "Threads that host quantization and dequantization share out over, the calling thread's included; "
         "0 means one per core the process may run on (its CPU affinity mask). Read when a context is "
         "created. The results are the same bits whatever the count.",
         "the context's worker pool (grey_context_create)"},
        {"daemon.port", ValueType::Integer, 1, 65535, {}, {int64_t{8090}, int64_t{8090}, int64_t{8090}},
         "TCP port of greyctl daemon (loopback only unless configured otherwise).",
         "greyd (greyctl daemon)"},
        {"daemon.health_check_interval_s", ValueType::Integer, 1, 86400, {},
         {int64_t{60}, int64_t{30}, int64_t{10}}, "Seconds between the daemon's health checks.",
         "greyd (greyctl daemon)"},
        {"daemon.proof_artifact_dir", ValueType::Text, 0, 0, {}, {"./proofs"s, "./proofs"s, "./proofs"s},
         "Directory where proof artifacts are written.",
         "greyctl --proof and greyd"},
        {"daemon.log_level", ValueType::Choice, 0, 0, {"DEBUG", "INFO", "WARNING", "ERROR"},
         {"INFO"s, "INFO"s, "INFO"s}, "Least severe message the daemon logs."},
        {"safety.dry_run_default", ValueType::Boolean, 0, 0, {}, {true, true, false},
         "Commands that change device state only report what they would do unless told otherwise.",
         "greyctl apply and rollback"},
        {"safety.rollback_window_s", ValueType::Integer, 0, 604800, {},
         {int64_t{600}, int64_t{300}, int64_t{120}}, "Seconds during which an enforced change can be rolled back.",
         "greyctl apply and rollback"},
        {"safety.backup_before_enforce", ValueType::Boolean, 0, 0, {}, {true, true, true},
         "Record the previous device settings before changing them.",
         "greyctl apply and rollback"},
        {"safety.require_explicit_consent", ValueType::Boolean, 0, 0, {}, {true, true, true},
         "Changing device state needs an explicit confirmation flag.",
         "greyctl apply and rollback"},
    };
    return keys;
}

}  // namespace

std::span<const KeySpec> schema() { return table(); }

const KeySpec* find_key(std::string_view path) {
    for (const auto& key : table())
        if (key.path == path) return &key;
    return nullptr;
}

bool is_section(std::string_view path) {
    if (path.empty()) return true;
    for (const auto& key : table())
        if (key.path.size() > path.size() && key.path.starts_with(path) && key.path[path.size()] == '.') return true;
    return false;
}

bool parse_profile(std::string_view name, Profile& out) {
    if (name == "conservative") out = Profile::Conservative;
    else if (name == "balanced") out = Profile::Balanced;
    else if (name == "aggressive") out = Profile::Aggressive;
    else return false;
    return true;
}

std::string_view profile_name(Profile profile) {
    switch (profile) {
        case Profile::Conservative: return "conservative";
        case Profile::Balanced: return "balanced";
        case Profile::Aggressive: return "aggressive";
    }
    return "balanced";
}

std::string_view type_name(ValueType type) {
    switch (type) {
        case ValueType::Boolean: return "a boolean (true or false)";
        case ValueType::Integer: return "an integer";
        case ValueType::Real: return "a number";
        case ValueType::Text: return "a string";
        case ValueType::Choice: return "one of the listed words";
    }
    return "a value";
}

namespace {
std::string range_text(const KeySpec& key) {
    char buffer[96];
    if (key.type == ValueType::Integer)
        std::snprintf(buffer, sizeof buffer, "[%lld, %lld]", static_cast<long long>(key.min), static_cast<long long>(key.max));
    else
        std::snprintf(buffer, sizeof buffer, "[%g, %g]", key.min, key.max);
    return buffer;
}
}  // namespace

bool parse_value(const KeySpec& key, std::string_view text, Value& out, std::string& problem) {
    // Before anything quotes the text: a message would stop at the NUL byte, as would a C caller.
    if (problem = nul_byte_problem(text, "the value"); !problem.empty()) return false;
    const std::string quoted = "'" + std::string(text) + "'";
    switch (key.type) {
        case ValueType::Boolean:
            if (text == "true" || text == "True" || text == "TRUE") { out = true; return true; }
            if (text == "false" || text == "False" || text == "FALSE") { out = false; return true; }
            problem = "expected a boolean (true or false), got " + quoted;
            return false;
        case ValueType::Integer: {
            int64_t v = 0;
            const char* end = text.data() + text.size();
            auto [ptr, ec] = std::from_chars(text.data(), end, v);
            if (text.empty() || ec != std::errc() || ptr != end) {
                problem = "expected an integer, got " + quoted;
                return false;
            }
            if (static_cast<double>(v) < key.min || static_cast<double>(v) > key.max) {
                problem = "value " + std::string(text) + " is out of range " + range_text(key);
                return false;
            }
            out = v;
            return true;
        }
        case ValueType::Real: {
            const std::string s(text);
            char* end = nullptr;
            errno = 0;
            const double v = s.empty() ? 0.0 : std::strtod(s.c_str(), &end);
            if (s.empty() || end != s.c_str() + s.size() || errno == ERANGE || !std::isfinite(v)) {
                problem = "expected a number, got " + quoted;
                return false;
            }
            if (v < key.min || v > key.max) {
                problem = "value " + s + " is out of range " + range_text(key);
                return false;
            }
            out = v;
            return true;
        }
        case ValueType::Text:
            if (text.empty()) {
                problem = "must not be empty";
                return false;
            }
            out = std::string(text);
            return true;
        case ValueType::Choice: {
            if (std::find(key.choices.begin(), key.choices.end(), text) != key.choices.end()) {
                out = std::string(text);
                return true;
            }
            problem = "expected one of " + join(key.choices, " | ") + ", got " + quoted;
            return false;
        }
    }
    problem = "unknown type";
    return false;
}

std::string format_value(const Value& value) {
    struct Visitor {
        std::string operator()(bool b) const { return b ? "true" : "false"; }
        std::string operator()(int64_t i) const { return std::to_string(i); }
        std::string operator()(double d) const {
            // Shortest text that reads back as the same double; always visibly a real number.
            char buffer[64];
            auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, d);
            std::string s(buffer, ec == std::errc() ? end : buffer);
            if (s.find_first_of(".eEni") == std::string::npos) s += ".0";
            return s;
        }
        std::string operator()(const std::string& s) const { return s; }
    };
    return std::visit(Visitor{}, value);
}

}  // namespace grey::config
