// The machine model: detected through grey.h's device queries, or read from a devices file.
#include "plan/machine_model.hpp"

#include "core/error.hpp"
#include "plan/yaml_reader.hpp"

#include <algorithm>
#include <cmath>
#include <set>

namespace grey::plan {
namespace {

// A name llama.cpp could take as a buffer type in -ot: no separators of its syntax.
bool is_buffer_name(const std::string& name) {
    return !name.empty() && name.size() < GREY_NAME_MAX &&
           std::all_of(name.begin(), name.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'; });
}

// PCIe bandwidth per lane and direction, GB/s, by generation (after line coding).
double pcie_lane_gbps(uint64_t generation) {
    static constexpr double per_lane[] = {0, 0.25, 0.5, 0.985, 1.969, 3.938, 7.563};
    return generation < std::size(per_lane) ? per_lane[generation] : 0;
}

// llama.cpp's buffer type name for a backend's device.
std::string buffer_name(const grey_device_spec& spec) {
    const std::string backend = spec.backend;
    const std::string index = std::to_string(spec.backend_device_index);
    if (spec.type == GREY_DEVICE_CPU) return "CPU";
    if (backend == "cuda") return "CUDA" + index;
    if (backend == "hip") return "ROCm" + index;
    if (backend == "level0") return "SYCL" + index;
    std::string upper = backend;
    std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    return upper + index;
}

}  // namespace

Machine read_devices_file(const std::string& path) {
    YamlReader in(path, "devices file");
    const YAML::Node& root = in.root();
    Machine machine;
    machine.source = path;
    if (in.check_map(root, "", {"version", "devices"})) {
        if (const uint64_t version = in.unsigned_integer(root, "", "version"); in.ok() && version != 1)
            in.problem(root["version"], "version", "unsupported version " + std::to_string(version) + " (this libgrey reads version 1)");
        const YAML::Node list = root["devices"];
        if (!list.IsDefined()) in.problem(root, "devices", "missing");
        else if (!list.IsSequence() || list.size() == 0) in.problem(list, "devices", "expected a non-empty list of devices");
        else {
            std::set<std::string> names;
            size_t cpus = 0;
            for (size_t i = 0; i < list.size(); ++i) {
                const YAML::Node d = list[i];
                const std::string at = "devices[" + std::to_string(i) + "]";
                if (!in.check_map(d, at, {"name", "type", "memory_gib", "memory_bytes", "bandwidth_gbps", "link_gbps", "safety_margin",
                                          "thermal_slowdown_c"}))
                    continue;
                Device device;
                device.name = in.text(d, at, "name");
                if (!device.name.empty() && !is_buffer_name(device.name))
                    in.problem(d["name"], at + ".name", "'" + device.name + "' is not a buffer type name (letters, digits, '_' and '-')");
                else if (!device.name.empty() && !names.insert(device.name).second)
                    in.problem(d["name"], at + ".name", "'" + device.name + "' is used twice");
                const std::string type = in.text(d, at, "type");
                if (type == "cpu") device.type = GREY_DEVICE_CPU, ++cpus;
                else if (type == "gpu") device.type = GREY_DEVICE_GPU;
                else if (!type.empty()) in.problem(d["type"], at + ".type", "expected gpu or cpu, got '" + type + "'");
                const bool gib = d["memory_gib"].IsDefined();
                const bool bytes = d["memory_bytes"].IsDefined();
                if (gib == bytes) in.problem(d, at, "give exactly one of memory_gib and memory_bytes");
                else if (gib) device.memory_free_bytes = static_cast<uint64_t>(in.number(d, at, "memory_gib", 0, 1u << 24) * 1073741824.0);
                else device.memory_free_bytes = in.unsigned_integer(d, at, "memory_bytes");
                device.bandwidth_gbps = in.number(d, at, "bandwidth_gbps", 0.001, 1e6);
                const double no_link = 0;
                device.link_gbps = in.number(d, at, "link_gbps", 0, 1e6, &no_link);
                const double margin = device.type == GREY_DEVICE_CPU ? kCpuSafetyMargin : kGpuSafetyMargin;
                device.safety_margin = in.number(d, at, "safety_margin", 0, 0.9, &margin);
                device.thermal_slowdown_c = in.number(d, at, "thermal_slowdown_c", 0, 200, &no_link);
                machine.devices.push_back(device);
            }
            if (cpus != 1) in.problem(list, "devices", "expected exactly one device of type cpu (the host), found " + std::to_string(cpus));
        }
    }
    in.finish();
    return machine;
}

Machine detect_machine(grey_context* context) {
    Machine machine;
    machine.source = "detected";
    uint32_t count = 0;
    if (const grey_status s = grey_device_count(context, &count); s != GREY_OK) fail(s, grey_last_error());
    std::set<std::string> names;
    for (uint32_t i = 0; i < count; ++i) {
        grey_device_spec spec{};
        spec.struct_size = sizeof spec;
        if (const grey_status s = grey_device_spec_get(context, i, &spec); s != GREY_OK) fail(s, grey_last_error());
        Device device;
        device.type = spec.type;
        device.name = buffer_name(spec);
        if (!names.insert(device.name).second) continue;  // one host, however many backends report it
        const auto ok = [](const auto& field) { return field.state == GREY_FIELD_OK; };
        if (ok(spec.memory_free_bytes)) device.memory_free_bytes = spec.memory_free_bytes.value;
        else if (ok(spec.memory_total_bytes)) device.memory_free_bytes = spec.memory_total_bytes.value;
        if (ok(spec.peak_memory_bandwidth_gbps)) device.bandwidth_gbps = spec.peak_memory_bandwidth_gbps.value;
        if (ok(spec.pcie_generation_current) && ok(spec.pcie_width_current))
            device.link_gbps = pcie_lane_gbps(spec.pcie_generation_current.value) * static_cast<double>(spec.pcie_width_current.value);
        if (ok(spec.temperature_slowdown_c)) device.thermal_slowdown_c = spec.temperature_slowdown_c.value;
        device.safety_margin = device.type == GREY_DEVICE_CPU ? kCpuSafetyMargin : kGpuSafetyMargin;
        machine.devices.push_back(device);
    }
    if (std::none_of(machine.devices.begin(), machine.devices.end(), [](const Device& d) { return d.type == GREY_DEVICE_CPU; }))
        fail(GREY_ERROR_INTERNAL, "device detection reported no host CPU");
    return machine;
}

}  // namespace grey::plan
