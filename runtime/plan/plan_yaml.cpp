// plan.yaml is written by hand rather than by an emitter so that its layout (one line per tensor, the
// comments) is fixed, and read back with yaml-cpp, every figure checked and cross-checked.
#include "plan/plan_yaml.hpp"

#include "core/error.hpp"
#include "plan/yaml_reader.hpp"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cinttypes>
#include <functional>
#include <cstdio>
#include <map>

namespace grey::plan {
namespace {

// A double-quoted YAML scalar (which JSON's escapes are a subset of).
std::string yaml_quoted(std::string_view text) { return nlohmann::json(std::string(text)).dump(-1, ' ', true); }

// Six significant digits: a number read back and written again gives the same text.
std::string number(double v) {
    char text[40];
    std::snprintf(text, sizeof text, "%.6g", v);
    return text;
}

const char* format_name(grey_model_format f) { return f == GREY_MODEL_FORMAT_GGUF ? "gguf" : "safetensors"; }

std::string weight_format(const std::string& f) { return f.empty() ? "as-stored" : f; }

}  // namespace

std::string plan_to_yaml(const Plan& p) {
    std::string y;
    const auto line = [&](const std::string& text) { y += text + "\n"; };
    line("# A libgrey plan (docs/plan.md). Made from the model's metadata and the machine below; figures in bytes.");
    line(std::string("schema: ") + kPlanSchema);
    line("model:");
    line("  path: " + yaml_quoted(p.model_path));
    line(std::string("  format: ") + format_name(p.model_format));
    line("  architecture: " + yaml_quoted(p.arch.name));
    line("  architecture_source: " + yaml_quoted(p.arch.source));
    line("  layers: " + std::to_string(p.arch.layers));
    line("  embedding: " + std::to_string(p.arch.embedding));
    line("  heads: " + std::to_string(p.arch.heads));
    line("  kv_heads: " + std::to_string(p.arch.kv_heads));
    line("  key_length: " + std::to_string(p.arch.key_length));
    line("  value_length: " + std::to_string(p.arch.value_length));
    line("  context_trained: " + std::to_string(p.arch.context_trained));
    line("  experts: " + std::to_string(p.arch.experts));
    line("  experts_used: " + std::to_string(p.arch.experts_used));
    line(std::string("  causal: ") + (p.arch.causal ? "true" : "false"));
    line("workload:");
    line(std::string("  kind: ") + grey_workload_kind_name(p.request.kind));
    line("  context: " + std::to_string(p.request.context));
    line("  batch: " + std::to_string(p.request.batch));
    line(std::string("  batch_recommended: ") + (p.batch_recommended ? "true" : "false"));
    line("  tenants: " + std::to_string(p.request.tenants));
    line("kv:");
    line(std::string("  runtime: ") + grey_kv_runtime_name(p.request.kv_runtime));
    line("  precision: " + p.kv_precision);
    line("  bytes_per_token: " + std::to_string(p.kv_bytes_per_token));
    line("  bytes: " + std::to_string(p.kv_bytes()));
    line("weights:");
    line("  format: " + weight_format(p.weight_format));
    uint64_t file_bytes = 0, planned = 0;
    for (size_t i = 0; i < p.tensors.size(); ++i) file_bytes += p.tensors[i].bytes, planned += p.placed[i].bytes;
    line("  file_bytes: " + std::to_string(file_bytes));
    line("  planned_bytes: " + std::to_string(planned));
    line("predicted:");
    line("  steps_per_s: " + number(p.predicted_steps_per_s));
    line("devices:");
    for (size_t d = 0; d < p.devices.size(); ++d) {
        const auto& dev = p.devices[d];
        const auto& u = p.usage[d];
        line("  - name: " + dev.name);
        line(std::string("    type: ") + grey_device_type_name(dev.type));
        line("    memory_free_bytes: " + std::to_string(dev.memory_free_bytes));
        line("    safety_margin: " + number(dev.safety_margin));
        line("    bandwidth_gbps: " + number(dev.bandwidth_gbps));
        line("    link_gbps: " + number(dev.link_gbps));
        line("    thermal_slowdown_c: " + number(dev.thermal_slowdown_c));
        line("    budget_bytes: " + std::to_string(u.budget_bytes));
        line("    weight_bytes: " + std::to_string(u.weight_bytes));
        line("    kv_bytes: " + std::to_string(u.kv_bytes));
        line("    other_bytes: " + std::to_string(u.other_bytes));
        line("    predicted_bytes: " + std::to_string(u.predicted_bytes()));
        line("    read_bytes_per_step: " + number(u.read_bytes_per_step));
        line("    thermal_target_c: " + number(u.thermal_target_c));
        line("    thermal_max_c: " + number(u.thermal_max_c));
    }
    line("tensors:");
    for (size_t i = 0; i < p.tensors.size(); ++i) {
        const auto& t = p.tensors[i];
        const auto& pl = p.placed[i];
        std::string shape;
        for (size_t k = 0; k < t.shape.size(); ++k) shape += (k ? ", " : "") + std::to_string(t.shape[k]);
        line("  - {name: " + yaml_quoted(t.name) + ", role: " + grey_tensor_role_name(t.role) + ", layer: " + std::to_string(t.layer) +
             ", dtype: " + grey_dtype_name(t.dtype) + ", shape: [" + shape + "], file_bytes: " + std::to_string(t.bytes) +
             ", device: " + p.devices[pl.device].name + ", format: " + weight_format(pl.format) + ", bytes: " + std::to_string(pl.bytes) + "}");
    }
    return y;
}

std::string plan_to_json(const Plan& p) {
    // The same tree as the YAML, through a YAML parse of it, so the two cannot drift apart.
    const YAML::Node root = YAML::Load(plan_to_yaml(p));
    const std::function<nlohmann::ordered_json(const YAML::Node&)> convert = [&](const YAML::Node& n) -> nlohmann::ordered_json {
        if (n.IsMap()) {
            nlohmann::ordered_json o = nlohmann::ordered_json::object();
            for (const auto& kv : n) o[kv.first.Scalar()] = convert(kv.second);
            return o;
        }
        if (n.IsSequence()) {
            nlohmann::ordered_json a = nlohmann::ordered_json::array();
            for (const auto& item : n) a.push_back(convert(item));
            return a;
        }
        const std::string s = n.Scalar();
        if (n.Tag() == "!") return s;  // quoted in the YAML: a string whatever it looks like
        if (s == "true" || s == "false") return s == "true";
        if (!s.empty() && (std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '-')) {
            char* end = nullptr;
            if (s.find_first_of(".eE") == std::string::npos) {
                errno = 0;
                const long long v = std::strtoll(s.c_str(), &end, 10);
                if (end == s.c_str() + s.size() && errno == 0) return v;
                const unsigned long long u = std::strtoull(s.c_str(), &end, 10);
                if (end == s.c_str() + s.size()) return u;
            }
            const double v = std::strtod(s.c_str(), &end);
            if (end == s.c_str() + s.size()) return v;
        }
        return s;
    };
    return convert(root).dump(2) + "\n";
}

Plan read_plan_yaml(const std::string& path) {
    YamlReader in(path, "plan file");
    const YAML::Node& root = in.root();
    Plan p;
    if (!in.check_map(root, "", {"schema", "model", "workload", "kv", "weights", "predicted", "devices", "tensors"})) in.finish();
    if (const std::string schema = in.text(root, "", "schema"); !schema.empty() && schema != kPlanSchema)
        in.problem(root["schema"], "schema", "'" + schema + "' is not " + kPlanSchema + " (the schema this libgrey reads)");
    in.finish();  // nothing else is meaningful under another schema

    const auto u32 = [&](const YAML::Node& m, const std::string& at, const char* key) {
        const uint64_t v = in.unsigned_integer(m, at, key);
        if (v > UINT32_MAX) in.problem(m[key], at + "." + key, "is larger than " + std::to_string(UINT32_MAX));
        return static_cast<uint32_t>(v);
    };
    const auto boolean = [&](const YAML::Node& m, const std::string& at, const char* key) {
        const std::string v = in.text(m, at, key);
        if (v != "true" && v != "false" && m[key].IsDefined()) in.problem(m[key], at + "." + key, "expected true or false");
        return v == "true";
    };
    const auto section = [&](const char* key, std::initializer_list<const char*> keys) {
        const YAML::Node n = root[key];
        if (!n.IsDefined()) in.problem(root, key, "missing");
        else in.check_map(n, key, keys);
        return n.IsMap() ? n : YAML::Node(YAML::NodeType::Map);
    };

    const YAML::Node model = section("model", {"path", "format", "architecture", "architecture_source", "layers", "embedding", "heads", "kv_heads",
                                               "key_length", "value_length", "context_trained", "experts", "experts_used", "causal"});
    p.model_path = in.text(model, "model", "path");
    if (const std::string f = in.text(model, "model", "format"); f == "gguf") p.model_format = GREY_MODEL_FORMAT_GGUF;
    else if (f == "safetensors") p.model_format = GREY_MODEL_FORMAT_SAFETENSORS;
    else if (model["format"].IsDefined()) in.problem(model["format"], "model.format", "expected gguf or safetensors, got '" + f + "'");
    p.arch.name = in.text(model, "model", "architecture");
    p.arch.source = in.text(model, "model", "architecture_source");
    p.arch.layers = u32(model, "model", "layers");
    p.arch.embedding = u32(model, "model", "embedding");
    p.arch.heads = u32(model, "model", "heads");
    p.arch.kv_heads = u32(model, "model", "kv_heads");
    p.arch.key_length = u32(model, "model", "key_length");
    p.arch.value_length = u32(model, "model", "value_length");
    p.arch.context_trained = in.unsigned_integer(model, "model", "context_trained");
    p.arch.experts = u32(model, "model", "experts");
    p.arch.experts_used = u32(model, "model", "experts_used");
    p.arch.causal = boolean(model, "model", "causal");

    const YAML::Node workload = section("workload", {"kind", "context", "batch", "batch_recommended", "tenants"});
    const std::string kind = in.text(workload, "workload", "kind");
    if (grey_workload_kind_from_name(kind.c_str(), &p.request.kind) != GREY_OK && workload["kind"].IsDefined())
        in.problem(workload["kind"], "workload.kind", "'" + kind + "' is not inference, llm-inference or training");
    p.request.context = in.unsigned_integer(workload, "workload", "context");
    p.request.batch = u32(workload, "workload", "batch");
    p.batch_recommended = boolean(workload, "workload", "batch_recommended");
    p.request.tenants = u32(workload, "workload", "tenants");
    if (workload["batch"].IsDefined() && p.request.batch == 0) in.problem(workload["batch"], "workload.batch", "must be at least 1");
    if (workload["tenants"].IsDefined() && p.request.tenants == 0) in.problem(workload["tenants"], "workload.tenants", "must be at least 1");

    const YAML::Node kv = section("kv", {"runtime", "precision", "bytes_per_token", "bytes"});
    // Absent in plans written before the field: those were sized for libgrey's formats.
    const std::string runtime = in.text(kv, "kv", "runtime", "libgrey");
    if (grey_kv_runtime_from_name(runtime.c_str(), &p.request.kv_runtime) != GREY_OK)
        in.problem(kv["runtime"], "kv.runtime", "'" + runtime + "' is not libgrey or llama-cpp");
    p.kv_precision = in.text(kv, "kv", "precision");
    const bool known_kv = p.kv_precision == "none" || kv_element_bytes(GREY_KV_RUNTIME_LIBGREY, p.kv_precision);
    if (!known_kv && kv["precision"].IsDefined()) in.problem(kv["precision"], "kv.precision", "'" + p.kv_precision + "' is not none, f16, int8, int4 or int2");
    else if (known_kv && p.kv_precision != "none" && !kv_element_bytes(p.request.kv_runtime, p.kv_precision))
        in.problem(kv["precision"], "kv.precision", p.kv_precision + " is no cache type of kv.runtime " + runtime);
    p.kv_bytes_per_token = in.unsigned_integer(kv, "kv", "bytes_per_token");
    const uint64_t kv_total = in.unsigned_integer(kv, "kv", "bytes");

    const YAML::Node weights = section("weights", {"format", "file_bytes", "planned_bytes"});
    p.weight_format = in.text(weights, "weights", "format");
    if (p.weight_format == "as-stored") p.weight_format.clear();
    const uint64_t file_total = in.unsigned_integer(weights, "weights", "file_bytes");
    const uint64_t planned_total = in.unsigned_integer(weights, "weights", "planned_bytes");

    const YAML::Node predicted = section("predicted", {"steps_per_s"});
    p.predicted_steps_per_s = in.number(predicted, "predicted", "steps_per_s", 0, 1e12);

    std::map<std::string, uint32_t> device_index;
    std::vector<uint64_t> listed_weights, listed_predicted;
    const YAML::Node devices = root["devices"];
    if (!devices.IsDefined()) in.problem(root, "devices", "missing");
    else if (!devices.IsSequence() || devices.size() == 0) in.problem(devices, "devices", "expected a non-empty list");
    else
        for (size_t i = 0; i < devices.size(); ++i) {
            const YAML::Node d = devices[i];
            const std::string at = "devices[" + std::to_string(i) + "]";
            if (!in.check_map(d, at, {"name", "type", "memory_free_bytes", "safety_margin", "bandwidth_gbps", "link_gbps", "thermal_slowdown_c",
                                      "budget_bytes", "weight_bytes", "kv_bytes", "other_bytes", "predicted_bytes", "read_bytes_per_step",
                                      "thermal_target_c", "thermal_max_c"}))
                continue;
            Device dev;
            DeviceUsage u;
            dev.name = in.text(d, at, "name");
            if (!device_index.emplace(dev.name, static_cast<uint32_t>(p.devices.size())).second)
                in.problem(d["name"], at + ".name", "'" + dev.name + "' is used twice");
            const std::string type = in.text(d, at, "type");
            if (type == "gpu") dev.type = GREY_DEVICE_GPU;
            else if (type != "cpu" && d["type"].IsDefined()) in.problem(d["type"], at + ".type", "expected gpu or cpu, got '" + type + "'");
            dev.memory_free_bytes = in.unsigned_integer(d, at, "memory_free_bytes");
            dev.safety_margin = in.number(d, at, "safety_margin", 0, 0.9);
            dev.bandwidth_gbps = in.number(d, at, "bandwidth_gbps", 0, 1e6);
            dev.link_gbps = in.number(d, at, "link_gbps", 0, 1e6);
            dev.thermal_slowdown_c = in.number(d, at, "thermal_slowdown_c", 0, 200);
            u.budget_bytes = in.unsigned_integer(d, at, "budget_bytes");
            u.weight_bytes = in.unsigned_integer(d, at, "weight_bytes");
            u.kv_bytes = in.unsigned_integer(d, at, "kv_bytes");
            u.other_bytes = in.unsigned_integer(d, at, "other_bytes");
            const uint64_t predicted_bytes = in.unsigned_integer(d, at, "predicted_bytes");
            if (in.ok() && predicted_bytes != u.predicted_bytes())
                in.problem(d["predicted_bytes"], at + ".predicted_bytes", std::to_string(predicted_bytes) + " is not weight_bytes + kv_bytes + other_bytes (" +
                                                                              std::to_string(u.predicted_bytes()) + ")");
            if (in.ok() && u.predicted_bytes() > u.budget_bytes)
                in.problem(d["predicted_bytes"], at + ".predicted_bytes", "exceeds budget_bytes (" + std::to_string(u.budget_bytes) + ")");
            u.read_bytes_per_step = in.number(d, at, "read_bytes_per_step", 0, 1e18);
            u.thermal_target_c = in.number(d, at, "thermal_target_c", 0, 200);
            u.thermal_max_c = in.number(d, at, "thermal_max_c", 0, 200);
            p.devices.push_back(dev);
            p.usage.push_back(u);
        }

    std::vector<uint64_t> placed_on(p.devices.size());
    uint64_t file_sum = 0, planned_sum = 0;
    const YAML::Node tensors = root["tensors"];
    if (!tensors.IsDefined()) in.problem(root, "tensors", "missing");
    else if (!tensors.IsSequence()) in.problem(tensors, "tensors", "expected a list");
    else
        for (size_t i = 0; i < tensors.size(); ++i) {
            const YAML::Node t = tensors[i];
            const std::string at = "tensors[" + std::to_string(i) + "]";
            if (!in.check_map(t, at, {"name", "role", "layer", "dtype", "shape", "file_bytes", "device", "format", "bytes"})) continue;
            TensorInfo info;
            PlacedTensor placed;
            info.name = in.text(t, at, "name");
            const std::string role = in.text(t, at, "role");
            bool known_role = false;
            for (int r = GREY_TENSOR_ROLE_OTHER; r <= GREY_TENSOR_ROLE_OUTPUT; ++r)
                if (role == grey_tensor_role_name(static_cast<grey_tensor_role>(r))) info.role = static_cast<grey_tensor_role>(r), known_role = true;
            if (!known_role && t["role"].IsDefined()) in.problem(t["role"], at + ".role", "'" + role + "' is not a tensor role");
            const std::string layer = in.text(t, at, "layer");
            char* end = nullptr;
            const long parsed_layer = std::strtol(layer.c_str(), &end, 10);
            if (layer.empty() || end != layer.c_str() + layer.size() || parsed_layer < -1 || parsed_layer > INT32_MAX) {
                if (t["layer"].IsDefined()) in.problem(t["layer"], at + ".layer", "expected -1 or a layer number, got '" + layer + "'");
            } else {
                info.layer = static_cast<int32_t>(parsed_layer);
            }
            const std::string dtype = in.text(t, at, "dtype");
            bool known_dtype = false;
            for (int k = GREY_DTYPE_F32; k <= GREY_DTYPE_OTHER; ++k)
                if (dtype == grey_dtype_name(static_cast<grey_dtype>(k))) info.dtype = static_cast<grey_dtype>(k), known_dtype = true;
            if (!known_dtype && t["dtype"].IsDefined()) in.problem(t["dtype"], at + ".dtype", "'" + dtype + "' is not a dtype");
            const YAML::Node shape = t["shape"];
            if (!shape.IsSequence()) in.problem(shape.IsDefined() ? shape : t, at + ".shape", "expected a list of dimensions");
            else
                for (size_t k = 0; k < shape.size(); ++k) {
                    const std::string s = shape[k].IsScalar() ? shape[k].Scalar() : "";
                    const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
                    if (s.empty() || end != s.c_str() + s.size() || s[0] == '-') in.problem(shape[k], at + ".shape", "expected a dimension, got '" + s + "'");
                    info.shape.push_back(v);
                }
            info.bytes = in.unsigned_integer(t, at, "file_bytes");
            const std::string device = in.text(t, at, "device");
            if (const auto it = device_index.find(device); it != device_index.end()) placed.device = it->second;
            else if (t["device"].IsDefined()) in.problem(t["device"], at + ".device", "'" + device + "' is not one of the plan's devices");
            placed.format = in.text(t, at, "format");
            if (placed.format == "as-stored") placed.format.clear();
            else if (grey_quant_params params{}; t["format"].IsDefined() &&
                                                 (params.struct_size = sizeof params, grey_quant_params_from_name(placed.format.c_str(), &params) != GREY_OK))
                in.problem(t["format"], at + ".format", "'" + placed.format + "' is not as-stored or a quantization format name");
            placed.bytes = in.unsigned_integer(t, at, "bytes");
            if (placed.device < placed_on.size()) placed_on[placed.device] += placed.bytes;
            file_sum += info.bytes;
            planned_sum += placed.bytes;
            p.tensors.push_back(std::move(info));
            p.placed.push_back(std::move(placed));
        }

    // The totals must be what the parts add up to: an edited figure is caught rather than trusted.
    if (in.ok()) {
        for (size_t d = 0; d < p.devices.size(); ++d)
            if (placed_on[d] != p.usage[d].weight_bytes)
                in.problem(devices[d]["weight_bytes"], "devices[" + std::to_string(d) + "].weight_bytes",
                           std::to_string(p.usage[d].weight_bytes) + " is not the sum of the tensors placed on " + p.devices[d].name + " (" +
                               std::to_string(placed_on[d]) + ")");
        if (file_sum != file_total) in.problem(weights["file_bytes"], "weights.file_bytes", "is not the sum of the tensors' file_bytes (" + std::to_string(file_sum) + ")");
        if (planned_sum != planned_total) in.problem(weights["planned_bytes"], "weights.planned_bytes", "is not the sum of the tensors' bytes (" + std::to_string(planned_sum) + ")");
        if (kv_total != p.kv_bytes()) in.problem(kv["bytes"], "kv.bytes", "is not the sum of the devices' kv_bytes (" + std::to_string(p.kv_bytes()) + ")");
        // The cache as the runtime stores it: a runtime or precision edited alone is caught.
        const uint64_t per_token = kv_token_bytes(p.arch, p.request.kv_runtime, p.kv_precision);
        if (p.kv_bytes_per_token != per_token)
            in.problem(kv["bytes_per_token"], "kv.bytes_per_token", std::to_string(p.kv_bytes_per_token) + " is not what " + p.kv_precision +
                                                                        " takes in kv.runtime " + runtime + " (" + std::to_string(per_token) + ")");
        const uint64_t cache = kv_layer_bytes(p.arch, p.request.kv_runtime, p.kv_precision, p.request.context, p.request.batch) * p.arch.layers;
        if (kv_total != cache)
            in.problem(kv["bytes"], "kv.bytes", std::to_string(kv_total) + " is not the cache kv.runtime " + runtime + " holds in " + p.kv_precision +
                                                    " for the workload's context and batch (" + std::to_string(cache) + ")");
        size_t cpus = 0;
        for (const auto& d : p.devices) cpus += d.type == GREY_DEVICE_CPU;
        if (cpus != 1) in.problem(devices, "devices", "expected exactly one device of type cpu, found " + std::to_string(cpus));
    }
    in.finish();
    return p;
}

}  // namespace grey::plan
