// greyctl validate-performance: the same workload with and without the governor, side by side, with
// cooldowns between runs; throughput, energy, time held back by each reason and peak temperature, with
// their spread over repeats. Losses are reported as plainly as gains.
#include "commands.hpp"
#include "exit_codes.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <thread>
#include <vector>

namespace greyctl {
namespace {

using json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

struct ValidateOptions {
    std::string workload = "builtin";
    double duration_s = 10.0;
    double cooldown_s = 5.0;
    int repeats = 3;
    uint32_t device = 0;
    double chunk_ms = 20.0;
    bool as_json = false;
    bool no_proof = false;
    ProofOptions proof;
};

// The builtin workload: single-precision matrix products on this CPU, one chunk at a time.
class MatmulChunk {
public:
    MatmulChunk() : a_(kN * kN, 1.0f / kN), b_(kN * kN, 0.5f), c_(kN * kN, 0.0f) {}
    // Returns the floating-point operations done.
    double run(double target_ms) {
        double flops = 0.0;
        const auto end = Clock::now() + std::chrono::duration<double, std::milli>(target_ms);
        do {
            for (size_t i = 0; i < kN; ++i)
                for (size_t k = 0; k < kN; ++k) {
                    const float aik = a_[i * kN + k];
                    for (size_t j = 0; j < kN; ++j) c_[i * kN + j] += aik * b_[k * kN + j];
                }
            flops += 2.0 * kN * kN * kN;
        } while (Clock::now() < end);
        return flops;
    }

private:
    static constexpr size_t kN = 96;
    std::vector<float> a_, b_, c_;
};

std::optional<double> f64(const grey_field_f64& f) { return f.state == GREY_FIELD_OK ? std::optional(f.value) : std::nullopt; }
std::optional<double> u64(const grey_field_u64& f) { return f.state == GREY_FIELD_OK ? std::optional(static_cast<double>(f.value)) : std::nullopt; }

json opt(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

// One run of the workload for the duration, governed or not.
json run_once(grey_context* context, const ValidateOptions& o, bool governed) {
    // The context's own configuration, with thermal control off for the ungoverned run. Admissions go
    // through the scheduler in both runs, so its overhead is in both.
    grey_config* raw = nullptr;
    check(grey_config_create(nullptr, &raw));
    ConfigPtr config(raw);
    const std::string yaml = read_text([&](char* b, size_t n, size_t* len) { return grey_config_to_yaml(grey_context_config(context), b, n, len); });
    check(grey_config_load_string(config.get(), yaml.c_str(), "the context's configuration"));
    if (!governed) check(grey_config_set(config.get(), "thermal.enabled", "false"));
    grey_governor_options g = GREY_GOVERNOR_OPTIONS_INIT;
    grey_governor* gov_raw = nullptr;
    check(grey_governor_create(context, &g, &gov_raw));
    GovernorPtr governor(gov_raw);
    check(grey_governor_configure(governor.get(), config.get()));
    grey_tenant_options t = GREY_TENANT_OPTIONS_INIT;
    t.name = "validate";
    grey_tenant* tenant_raw = nullptr;
    check(grey_tenant_create(governor.get(), &t, &tenant_raw));
    TenantPtr tenant(tenant_raw);

    auto sample = [&] {
        grey_device_telemetry tel{};
        tel.struct_size = sizeof tel;
        check(grey_device_telemetry_get(context, o.device, &tel));
        return tel;
    };
    const grey_device_telemetry first = sample();
    std::optional<double> peak;
    // A jthread: when the workload throws, its destructor stops and joins the sampler (a joinable
    // std::thread would terminate the process instead of letting the error be reported).
    std::jthread sampler([&](const std::stop_token& stop) {
        while (!stop.stop_requested()) {
            grey_device_telemetry tel{};
            tel.struct_size = sizeof tel;
            if (grey_device_telemetry_get(context, o.device, &tel) == GREY_OK)
                if (auto temp = f64(tel.temperature_c)) peak = std::max(peak.value_or(*temp), *temp);
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    });

    double work = 0.0;
    uint64_t estimate_ns = static_cast<uint64_t>(o.chunk_ms * 1e6);
    MatmulChunk matmul;
    const auto start = Clock::now();
    const auto end = start + std::chrono::duration<double>(o.duration_s);
    while (Clock::now() < end) {
        grey_admission a{};
        a.struct_size = sizeof a;
        check(grey_govern_admit(tenant.get(), o.device, estimate_ns, GREY_WAIT_FOREVER, &a));
        const auto chunk_start = Clock::now();
        if (o.workload == "builtin") {
            work += matmul.run(o.chunk_ms * a.batch_scale);
        } else {
            if (std::system(o.workload.c_str()) != 0) throw std::runtime_error("the workload command failed: " + o.workload);
            work += 1.0;
        }
        const auto actual = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - chunk_start).count());
        check(grey_govern_release(tenant.get(), a.ticket, std::max<uint64_t>(actual, 1)));
        estimate_ns = std::max<uint64_t>(actual, 1);
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    sampler.request_stop();
    sampler.join();
    const grey_device_telemetry last = sample();
    grey_govern_device_state s{};
    s.struct_size = sizeof s;
    check(grey_governor_device_state_get(governor.get(), o.device, &s));

    auto delta = [](const std::optional<double>& a, const std::optional<double>& b, double scale) -> std::optional<double> {
        if (!a || !b) return std::nullopt;
        return (*b - *a) * scale;
    };
    return {{"governed", governed},
            {"seconds", seconds},
            {"throughput", work / seconds},
            {"energy_j", opt(delta(u64(first.energy_total_mj), u64(last.energy_total_mj), 1e-3))},
            {"peak_temperature_c", opt(peak)},
            {"throttled_s",
             {{"device_power", opt(delta(u64(first.throttle_time_power_ns), u64(last.throttle_time_power_ns), 1e-9))},
              {"device_thermal", opt(delta(u64(first.throttle_time_thermal_ns), u64(last.throttle_time_thermal_ns), 1e-9))},
              {"governor_pacing", s.paced_ns * 1e-9},
              {"governor_hot", s.hot_ns * 1e-9},
              {"governor_unknown_temperature", s.unknown_ns * 1e-9}}},
            {"governor_mode_at_end", grey_govern_mode_name(s.mode)}};
}

// mean, sample standard deviation, min and max of a key over runs; null when any run lacks it.
json spread(const std::vector<json>& runs, const std::function<json(const json&)>& get) {
    std::vector<double> v;
    for (const json& r : runs) {
        const json x = get(r);
        if (!x.is_number()) return nullptr;
        v.push_back(x.get<double>());
    }
    if (v.empty()) return nullptr;
    double mean = 0.0;
    for (double x : v) mean += x / static_cast<double>(v.size());
    double var = 0.0;
    for (double x : v) var += (x - mean) * (x - mean);
    const double sd = v.size() > 1 ? std::sqrt(var / static_cast<double>(v.size() - 1)) : 0.0;
    return {{"mean", mean}, {"stdev", sd}, {"min", *std::min_element(v.begin(), v.end())}, {"max", *std::max_element(v.begin(), v.end())}, {"n", v.size()}};
}

std::string verdict(const json& governed, const json& ungoverned, bool higher_is_better, const char* what) {
    if (!governed.is_object() || !ungoverned.is_object()) return std::string(what) + ": not measured (the device does not report it)";
    const double g = governed["mean"].get<double>(), u = ungoverned["mean"].get<double>();
    char text[256];
    if (u == 0.0) {
        std::snprintf(text, sizeof text, "%s: governed %.4g, ungoverned %.4g", what, g, u);
        return text;
    }
    const double change = (g - u) / std::abs(u) * 100.0;
    const bool better = higher_is_better ? change > 0 : change < 0;
    // A difference no larger than twice the combined run-to-run spread is not called a gain or a loss.
    const double sg = governed["stdev"].get<double>(), su = ungoverned["stdev"].get<double>();
    const bool spread_known = governed["n"].get<int>() > 1 && ungoverned["n"].get<int>() > 1;
    const bool within_spread = spread_known && std::abs(g - u) <= 2.0 * std::sqrt(sg * sg + su * su);
    std::snprintf(text, sizeof text, "%s: governed %.4g +- %.2g, ungoverned %.4g +- %.2g: %.1f%% %s (%s)", what, g, sg, u, su,
                  std::abs(change), change >= 0 ? "higher" : "lower",
                  std::abs(change) < 1e-9 ? "no change" : within_spread ? "within the run-to-run spread" : better ? "a gain" : "a LOSS");
    return text;
}

int run_validate(const GlobalOptions& global, const ValidateOptions& o) {
    ContextPtr context = open_context(global, "");
    uint32_t devices = 0;
    check(grey_device_count(context.get(), &devices));
    if (o.device >= devices)
        throw CommandError(Exit::usage, "--device " + std::to_string(o.device) + ": no such device (" + std::to_string(devices) + " devices)");
    std::vector<json> governed, ungoverned;
    for (int r = 0; r < o.repeats; ++r) {
        // The order alternates (ungoverned first, then governed first, ...), so that neither side always
        // runs on the card the other has just warmed.
        const bool governed_first = r % 2 == 1;
        for (const bool with : {governed_first, !governed_first}) {
            if (!(r == 0 && with == governed_first)) std::this_thread::sleep_for(std::chrono::duration<double>(o.cooldown_s));
            json run = run_once(context.get(), o, with);
            run["repeat"] = r;
            run["second_in_pair"] = with != governed_first;
            if (!o.as_json)
                std::fprintf(stderr, "run %d %s: throughput %.4g/s, peak %s\n", r, with ? "governed" : "ungoverned", run["throughput"].get<double>(),
                             run["peak_temperature_c"].dump().c_str());
            (with ? governed : ungoverned).push_back(run);
        }
    }
    auto summary = [&](const std::vector<json>& runs) {
        return json{{"throughput", spread(runs, [](const json& r) { return r["throughput"]; })},
                    {"energy_j", spread(runs, [](const json& r) { return r["energy_j"]; })},
                    {"energy_per_unit_j", spread(runs, [](const json& r) {
                         return r["energy_j"].is_number() ? json(r["energy_j"].get<double>() / (r["throughput"].get<double>() * r["seconds"].get<double>()))
                                                          : json(nullptr);
                     })},
                    {"peak_temperature_c", spread(runs, [](const json& r) { return r["peak_temperature_c"]; })},
                    {"throttled_s",
                     {{"device_power", spread(runs, [](const json& r) { return r["throttled_s"]["device_power"]; })},
                      {"device_thermal", spread(runs, [](const json& r) { return r["throttled_s"]["device_thermal"]; })},
                      {"governor_pacing", spread(runs, [](const json& r) { return r["throttled_s"]["governor_pacing"]; })},
                      {"governor_hot", spread(runs, [](const json& r) { return r["throttled_s"]["governor_hot"]; })},
                      {"governor_unknown_temperature", spread(runs, [](const json& r) { return r["throttled_s"]["governor_unknown_temperature"]; })}}}};
    };
    grey_device_spec spec{};
    spec.struct_size = sizeof spec;
    check(grey_device_spec_get(context.get(), o.device, &spec));
    const json g = summary(governed), u = summary(ungoverned);
    json verdicts = json::array({verdict(g["throughput"], u["throughput"], true, "throughput (units/s)"),
                                 verdict(g["energy_per_unit_j"], u["energy_per_unit_j"], false, "energy per unit (J)"),
                                 verdict(g["peak_temperature_c"], u["peak_temperature_c"], false, "peak temperature (C)")});
    // Whatever the figures say, the governor can only have caused a difference by holding work back.
    double held_back_s = 0.0;
    for (const char* reason : {"governor_pacing", "governor_hot", "governor_unknown_temperature"})
        if (const json& x = g["throttled_s"][reason]; x.is_object()) held_back_s += x["mean"].get<double>();
    if (held_back_s == 0.0)
        verdicts.push_back("the governor held back no work in the governed runs (pacing, hot and unknown temperature: 0 s): "
                           "a difference above is not its doing (run order, the device's own power or thermal limits, noise)");
    const json results = {{"workload", o.workload},
                          {"units", o.workload == "builtin" ? "floating-point operations" : "command runs"},
                          {"device", {{"index", o.device}, {"backend", spec.backend}, {"name", spec.name.state == GREY_FIELD_OK ? json(spec.name.value) : json(nullptr)}}},
                          {"duration_s", o.duration_s},
                          {"cooldown_s", o.cooldown_s},
                          {"repeats", o.repeats},
                          {"governed", g},
                          {"ungoverned", u},
                          {"verdicts", verdicts},
                          {"runs", {{"governed", governed}, {"ungoverned", ungoverned}}}};
    if (o.as_json) std::cout << results.dump(2) << "\n";
    else
        for (const json& v : verdicts) std::printf("%s\n", v.get<std::string>().c_str());
    if (!o.no_proof) {
        const json device = {{"index", o.device}, {"backend", spec.backend}, {"name", results["device"]["name"]},
                             {"uuid", spec.uuid.state == GREY_FIELD_OK ? json(spec.uuid.value) : json(nullptr)}};
        const std::string id = write_proof_artifact(global, o.proof, "validate-performance", {}, json::array({device}).dump(), results.dump());
        std::fprintf(stderr, "result recorded in the audit log: proof artifact %s\n", id.c_str());
    }
    return 0;
}

}  // namespace

void add_validate_command(CLI::App& app, const GlobalOptions& global, Runner& run) {
    auto o = std::make_shared<ValidateOptions>();
    auto* cmd = app.add_subcommand("validate-performance", "Run a workload with and without the governor and compare");
    cmd->add_option("--workload", o->workload, "'builtin' (matrix products on the CPU, paced chunk by chunk) or a shell command run repeatedly");
    cmd->add_option("--duration", o->duration_s, "Seconds per run (default 10)")->check(CLI::Range(0.1, 86400.0));
    cmd->add_option("--cooldown", o->cooldown_s, "Seconds of rest before each run after the first (default 5)")->check(CLI::Range(0.0, 3600.0));
    cmd->add_option("--repeats", o->repeats, "Pairs of runs (default 3)")->check(CLI::Range(1, 1000));
    cmd->add_option("--device", o->device, "Device index (default 0)");
    cmd->add_option("--chunk-ms", o->chunk_ms, "Builtin: milliseconds of work per admission (default 20)")->check(CLI::Range(0.1, 10000.0));
    add_json_flag(*cmd, o->as_json, "Print the whole result as JSON");
    cmd->add_flag("--no-proof", o->no_proof, "Do not record the result in the audit log");
    cmd->add_option("--audit-log", o->proof.audit_log, "Audit log (default: <daemon.proof_artifact_dir>/audit.log)");
    cmd->add_option("--audit-key", o->proof.audit_key, "Writer key (default: <daemon.proof_artifact_dir>/audit.key.writer)");
    cmd->callback([&global, &run, o] { run = [&global, o] { return run_validate(global, *o); }; });
}

}  // namespace greyctl
