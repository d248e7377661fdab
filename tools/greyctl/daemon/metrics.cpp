#include "metrics.hpp"

#include <cmath>
#include <cstdio>
#include <map>
#include <vector>

namespace greyctl::daemon {
namespace {

using json = nlohmann::ordered_json;

// Collects samples by family so that each family's HELP and TYPE come once, before its samples.
class Exposition {
public:
    void add(const std::string& name, const char* type, const char* help, const std::string& labels, double value) {
        auto [it, inserted] = families_.try_emplace(name);
        if (inserted) {
            order_.push_back(name);
            it->second = "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
        }
        char number[64];
        if (std::isnan(value)) std::snprintf(number, sizeof number, "NaN");
        else std::snprintf(number, sizeof number, "%.15g", value);
        it->second += name + (labels.empty() ? "" : "{" + labels + "}") + " " + number + "\n";
    }
    [[nodiscard]] std::string text() const {
        std::string out;
        for (const auto& name : order_) out += families_.at(name);
        return out;
    }

private:
    std::vector<std::string> order_;
    std::map<std::string, std::string> families_;
};

double number(const json& value) { return value.is_number() ? value.get<double>() : std::nan(""); }

}  // namespace

std::string escape_label(const std::string& value) {
    std::string out;
    for (const char c : value) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

std::string render_metrics(const json& status) {
    Exposition m;
    const json& d = status["daemon"];
    m.add("grey_daemon_info", "gauge", "greyd's version and revision.",
          "version=\"" + escape_label(d["version"].get<std::string>()) + "\",revision=\"" + escape_label(d["revision"].get<std::string>()) + "\"", 1);
    m.add("grey_daemon_uptime_seconds", "gauge", "Seconds since greyd started.", "", number(d["uptime_s"]));
    const json& health = status["health"];
    m.add("grey_daemon_health_ok", "gauge", "1 when the last health check found no problem.", "", health["ok"].get<bool>() ? 1 : 0);
    m.add("grey_daemon_health_checks_total", "counter", "Health checks run.", "", number(health["checks"]));
    m.add("grey_daemon_control_refused_total", "counter", "Control connections refused for their peer credentials.", "",
          number(d["control_refused"]));
    const json& stop = status["emergency_stop"];
    m.add("grey_emergency_stop_active", "gauge", "1 while an emergency stop is in force.", "", stop["active"].get<bool>() ? 1 : 0);
    m.add("grey_emergency_stops_total", "counter", "Emergency stops since greyd started.", "", number(stop["count"]));
    const json& g = status["governor"];
    m.add("grey_governor_steps_total", "counter", "Control steps the governor has run.", "", number(g["steps"]));
    m.add("grey_governor_target_celsius", "gauge", "thermal.target_temp_c in force.", "", number(g["target_temp_c"]));
    m.add("grey_governor_max_celsius", "gauge", "thermal.max_temp_c in force.", "", number(g["max_temp_c"]));

    static const char* const kModes[] = {"off", "no_sensor", "cool", "pacing", "hot", "unknown", "stopped"};
    for (const json& dev : status["devices"]) {
        const std::string id = "device=\"" + std::to_string(dev["index"].get<int>()) + "\"";
        m.add("grey_device_info", "gauge", "A device: its backend and name.",
              id + ",backend=\"" + escape_label(dev["backend"].get<std::string>()) + "\",name=\"" +
                  escape_label(dev["name"].is_string() ? dev["name"].get<std::string>() : "") + "\"",
              1);
        const json& t = dev["telemetry"];
        // A reading the device does not give is left out, never written as 0.
        auto reading = [&](const char* key, const std::string& name, const char* type, const char* help, double scale) {
            if (t.contains(key) && t[key].is_number()) m.add(name, type, help, id, t[key].get<double>() * scale);
        };
        reading("temperature_c", "grey_device_temperature_celsius", "gauge", "Device temperature.", 1.0);
        reading("power_draw_mw", "grey_device_power_watts", "gauge", "Power draw.", 1e-3);
        reading("energy_total_mj", "grey_device_energy_joules_total", "counter", "Energy since an unspecified start.", 1e-3);
        reading("utilization_percent", "grey_device_utilization_ratio", "gauge", "Compute utilisation.", 1e-2);
        reading("memory_used_bytes", "grey_device_memory_used_bytes", "gauge", "Device memory in use.", 1.0);
        reading("graphics_clock_mhz", "grey_device_graphics_clock_hertz", "gauge", "Graphics clock.", 1e6);
        reading("throttle_time_power_ns", "grey_device_throttle_power_seconds_total", "counter", "Time the device held itself back for power.", 1e-9);
        reading("throttle_time_thermal_ns", "grey_device_throttle_thermal_seconds_total", "counter", "Time the device held itself back for heat.", 1e-9);
        if (t.contains("throttle_reasons") && t["throttle_reasons"].is_array())
            for (const json& reason : t["throttle_reasons"])
                m.add("grey_device_throttle_reason_active", "gauge", "A throttle reason the device reports now.",
                      id + ",reason=\"" + escape_label(reason.get<std::string>()) + "\"", 1);
        const json& gov = dev["governor"];
        for (const char* mode : kModes)
            m.add("grey_governor_mode", "gauge", "The governor's mode on a device (1 for the current one).", id + ",mode=\"" + mode + "\"",
                  gov["mode"] == mode ? 1 : 0);
        m.add("grey_governor_duty_ratio", "gauge", "Fraction of device time the pacer admits.", id, number(gov["duty"]));
        m.add("grey_governor_batch_scale_ratio", "gauge", "Batch size suggested to hosts, as a fraction.", id, number(gov["batch_scale"]));
        if (gov["temperature_known"].get<bool>()) {
            m.add("grey_governor_temperature_slope_celsius_per_second", "gauge", "Least-squares temperature slope.", id, number(gov["slope_c_per_s"]));
            m.add("grey_governor_predicted_celsius", "gauge", "Temperature predicted at the horizon.", id, number(gov["predicted_c"]));
        }
        m.add("grey_governor_waiting", "gauge", "Requests queued for admission.", id, number(gov["waiting"]));
        m.add("grey_governor_running", "gauge", "Admitted work not yet released.", id, number(gov["running"]));
        m.add("grey_governor_admitted_total", "counter", "Admissions.", id, number(gov["admitted_count"]));
        m.add("grey_governor_admitted_cost_seconds_total", "counter", "Estimated device time admitted.", id, number(gov["admitted_cost_ns"]) * 1e-9);
        m.add("grey_governor_paced_seconds_total", "counter", "Time with a duty below 1 (governor action: pacing).", id, number(gov["paced_ns"]) * 1e-9);
        m.add("grey_governor_hot_seconds_total", "counter", "Time admitting priority 0 only (governor action: hot).", id, number(gov["hot_ns"]) * 1e-9);
        m.add("grey_governor_unknown_seconds_total", "counter", "Time with the temperature unknown.", id, number(gov["unknown_ns"]) * 1e-9);
        m.add("grey_governor_stopped_seconds_total", "counter", "Time under an emergency stop.", id, number(gov["stopped_ns"]) * 1e-9);
        m.add("grey_governor_mode_changes_total", "counter", "Mode changes.", id, number(gov["mode_changes"]));
        m.add("grey_governor_yield_requests_total", "counter", "Running work asked to yield.", id, number(gov["yield_requests"]));
        // Only what the device measured; no memory multiplier until one is measured (docs/govern.md).
        if (dev["memory"]["total_bytes"].is_number())
            m.add("grey_device_memory_total_bytes", "gauge", "Device memory in total.", id, number(dev["memory"]["total_bytes"]));
    }
    for (const json& t : status["tenants"]) {
        const std::string id = "tenant=\"" + escape_label(t["name"].get<std::string>()) + "\"";
        m.add("grey_tenant_weight", "gauge", "A tenant's weight.", id, number(t["weight"]));
        m.add("grey_tenant_priority", "gauge", "A tenant's priority level (0 is the highest).", id, number(t["priority"]));
        m.add("grey_tenant_admitted_total", "counter", "Admissions of a tenant.", id, number(t["admitted_count"]));
        m.add("grey_tenant_admitted_cost_seconds_total", "counter", "Estimated device time admitted to a tenant.", id, number(t["admitted_cost_ns"]) * 1e-9);
        m.add("grey_tenant_actual_cost_seconds_total", "counter", "Device time a tenant reported on release.", id, number(t["actual_cost_ns"]) * 1e-9);
        m.add("grey_tenant_wait_seconds_total", "counter", "Time a tenant's requests waited, summed.", id, number(t["waited_total_ns"]) * 1e-9);
        m.add("grey_tenant_wait_max_seconds", "gauge", "The longest a tenant's request waited.", id, number(t["wait_max_ns"]) * 1e-9);
        m.add("grey_tenant_timeouts_total", "counter", "A tenant's admissions that timed out.", id, number(t["timeouts"]));
        m.add("grey_tenant_refused_total", "counter", "A tenant's requests refused by an emergency stop.", id, number(t["refused_stopped"]));
        m.add("grey_tenant_waiting", "gauge", "A tenant's queued requests.", id, number(t["waiting"]));
        m.add("grey_tenant_running", "gauge", "A tenant's admitted work not yet released.", id, number(t["running"]));
    }
    const json& audit = status["audit"];
    if (audit["enabled"].get<bool>()) {
        m.add("grey_audit_records", "gauge", "Durable records in greyd's audit log.", "", number(audit["records"]));
        m.add("grey_audit_epoch", "gauge", "The audit writer key's epoch.", "", number(audit["epoch"]));
        m.add("grey_audit_head_info", "gauge", "Leaf hash of the audit log's last record.", "head=\"" + audit["head"].get<std::string>() + "\"", 1);
    }
    return m.text();
}

}  // namespace greyctl::daemon
