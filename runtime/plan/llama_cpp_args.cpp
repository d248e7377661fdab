#include "plan/llama_cpp_args.hpp"

#include "core/error.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <regex>
#include <set>

namespace grey::plan {
namespace {

constexpr uint32_t kAllLayers = 999;

// A literal in an ECMAScript regex that also survives llama.cpp's split on ',' and '='.
std::string regex_literal(std::string_view text) {
    std::string out;
    for (const char c : text) {
        if (c == ',') out += "\\x2C";
        else if (c == '=') out += "\\x3D";
        else {
            if (std::string_view("\\^$.|?*+()[]{}/").find(c) != std::string_view::npos) out += '\\';
            out += c;
        }
    }
    return out;
}

std::string alternatives(const std::vector<std::string>& items) {
    if (items.size() == 1) return items.front();
    std::string out = "(?:";
    for (size_t i = 0; i < items.size(); ++i) out += (i ? "|" : "") + items[i];
    return out + ")";
}

// GGUF's block prefix "blk.N." and what follows it; nullopt for a name outside the blocks.
std::optional<std::pair<int32_t, std::string>> block_parts(const TensorInfo& t) {
    const std::string prefix = "blk." + std::to_string(t.layer) + ".";
    if (t.layer < 0 || t.name.rfind(prefix, 0) != 0) return std::nullopt;
    return std::make_pair(t.layer, t.name.substr(prefix.size()));
}

bool is_input_layer(const TensorInfo& t) {
    return t.name.rfind("token_embd", 0) == 0 || t.name.rfind("token_types", 0) == 0 || t.name.rfind("position_embd", 0) == 0;
}

std::vector<uint32_t> gpus(const Plan& plan) {
    std::vector<uint32_t> out;
    for (uint32_t d = 0; d < plan.devices.size(); ++d)
        if (plan.devices[d].type == GREY_DEVICE_GPU) out.push_back(d);
    return out;
}

uint32_t host(const Plan& plan) {
    for (uint32_t d = 0; d < plan.devices.size(); ++d)
        if (plan.devices[d].type == GREY_DEVICE_CPU) return d;
    return 0;
}

// Where llama.cpp puts a tensor no -ot entry matches: nullopt when it depends on llama.cpp's split of
// layers between several GPUs.
std::optional<uint32_t> default_device(const Plan& plan, const TensorInfo& t, uint32_t gpu_layers) {
    const auto accelerators = gpus(plan);
    const uint32_t cpu = host(plan);
    if (is_input_layer(t) || gpu_layers == 0 || accelerators.empty()) return cpu;
    const int64_t n_layer = plan.arch.layers;
    const int64_t first_gpu_layer = std::max<int64_t>(n_layer + 1 - gpu_layers, 0);
    const int64_t layer = t.layer >= 0 ? t.layer : n_layer;  // the output layer counts as layer n_layer
    if (layer < first_gpu_layer) return cpu;
    if (accelerators.size() > 1) return std::nullopt;
    return accelerators.front();
}

struct Entry {
    std::string text;
    std::string pattern;
    std::string buffer;
    std::regex regex;
};

std::vector<Entry> parse_entries(const std::string& overrides) {
    std::vector<Entry> entries;
    if (overrides.empty()) return entries;
    size_t start = 0;
    while (true) {
        const size_t comma = overrides.find(',', start);
        const std::string text = overrides.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        const size_t eq = text.find('=');
        if (eq == std::string::npos)
            fail(GREY_ERROR_INVALID_ARGUMENT, "-ot entry '" + text + "' has no '=' (llama.cpp reads PATTERN=BUFFER)");
        Entry e{text, text.substr(0, eq), text.substr(eq + 1), {}};
        try {
            e.regex = std::regex(e.pattern);
        } catch (const std::regex_error& err) {
            fail(GREY_ERROR_INVALID_ARGUMENT, "-ot entry '" + text + "': the pattern is not an ECMAScript regex: " + err.what());
        }
        entries.push_back(std::move(e));
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return entries;
}

}  // namespace

void check_llama_cpp_overrides(const Plan& plan, const std::string& overrides, uint32_t gpu_layers) {
    const auto entries = parse_entries(overrides);
    for (const auto& e : entries)
        if (std::none_of(plan.devices.begin(), plan.devices.end(), [&](const Device& d) { return d.name == e.buffer; }))
            fail(GREY_ERROR_INVALID_ARGUMENT, "-ot entry '" + e.text + "' names buffer '" + e.buffer + "', which is no device of the plan");
    for (size_t i = 0; i < plan.tensors.size(); ++i) {
        const auto& t = plan.tensors[i];
        const std::string& wanted = plan.devices[plan.placed[i].device].name;
        const auto match = std::find_if(entries.begin(), entries.end(), [&](const Entry& e) { return std::regex_search(t.name, e.regex); });
        if (match != entries.end()) {
            if (match->buffer != wanted)
                fail(GREY_ERROR_INVALID_ARGUMENT, "-ot entry " + std::to_string(match - entries.begin() + 1) + " '" + match->text +
                                                      "' sends tensor '" + t.name + "' to " + match->buffer + ", but the plan puts it on " + wanted);
            continue;
        }
        const auto fallback = default_device(plan, t, gpu_layers);
        if (!fallback)
            fail(GREY_ERROR_INVALID_ARGUMENT, "no -ot entry matches tensor '" + t.name + "', and -ngl " + std::to_string(gpu_layers) +
                                                  " leaves its device to llama.cpp's split between GPUs; the plan puts it on " + wanted);
        if (plan.devices[*fallback].name != wanted)
            fail(GREY_ERROR_INVALID_ARGUMENT, "no -ot entry matches tensor '" + t.name + "', so -ngl " + std::to_string(gpu_layers) +
                                                  " puts it on " + plan.devices[*fallback].name + ", but the plan puts it on " + wanted);
    }
}

std::vector<std::string> llama_cpp_args(const Plan& plan) {
    static const std::map<std::string, std::string> cache_types{{"f16", "f16"}, {"int8", "q8_0"}, {"int4", "q4_0"}};
    if (plan.model_format != GREY_MODEL_FORMAT_GGUF)
        fail(GREY_ERROR_UNSUPPORTED, "llama.cpp reads GGUF files; '" + plan.model_path + "' is safetensors");
    if (plan.request.kind != GREY_WORKLOAD_LLM_INFERENCE)
        fail(GREY_ERROR_UNSUPPORTED, "llama.cpp arguments are for workload llm-inference");
    const auto cache = cache_types.find(plan.kv_precision);
    if (cache == cache_types.end())
        fail(GREY_ERROR_UNSUPPORTED, "llama.cpp has no KV cache type for the plan's " + plan.kv_precision + " KV cache");
    for (size_t i = 0; i < plan.tensors.size(); ++i)
        if (!plan.placed[i].format.empty())
            fail(GREY_ERROR_UNSUPPORTED, "the plan quantizes tensors to " + plan.placed[i].format + " (first '" + plan.tensors[i].name +
                                             "'), which llama.cpp cannot do as it loads: write the quantized file first (greyctl quantize) and plan for it");

    const auto accelerators = gpus(plan);
    const uint32_t gpu_layers = accelerators.empty() ? 0 : kAllLayers;
    // Per device, the tensors no default would put there: in blocks, suffix -> layers; outside, names.
    std::map<uint32_t, std::map<std::string, std::set<int32_t>>> block_entries;
    std::map<uint32_t, std::vector<std::string>> other_entries;
    for (size_t i = 0; i < plan.tensors.size(); ++i) {
        const auto& t = plan.tensors[i];
        const uint32_t d = plan.placed[i].device;
        if (default_device(plan, t, gpu_layers) == std::optional<uint32_t>(d)) continue;
        if (const auto parts = block_parts(t)) block_entries[d][parts->second].insert(parts->first);
        else other_entries[d].push_back(regex_literal(t.name));
    }
    std::vector<std::string> entries;
    for (const auto& [d, suffixes] : block_entries) {
        // Suffixes sent to this device for the same layers share an entry.
        std::map<std::set<int32_t>, std::vector<std::string>> by_layers;
        for (const auto& [suffix, layers] : suffixes) by_layers[layers].push_back(regex_literal(suffix));
        for (const auto& [layers, names] : by_layers) {
            std::vector<std::string> numbers;
            for (const int32_t l : layers) numbers.push_back(std::to_string(l));
            entries.push_back("^blk\\." + alternatives(numbers) + "\\." + alternatives(names) + "$=" + plan.devices[d].name);
        }
    }
    for (const auto& [d, names] : other_entries) entries.push_back("^" + alternatives(names) + "$=" + plan.devices[d].name);

    std::vector<std::string> args{"-ngl", std::to_string(gpu_layers)};
    if (accelerators.size() > 1) {
        // The KV cache and compute of a layer follow llama.cpp's split of layers: in proportion to the
        // layers the plan gives each GPU.
        std::vector<uint64_t> layers_on(plan.devices.size());
        for (size_t i = 0; i < plan.tensors.size(); ++i)
            if (plan.tensors[i].role == GREY_TENSOR_ROLE_ATTENTION && plan.tensors[i].name.find("attn_k.") != std::string::npos)
                ++layers_on[plan.placed[i].device];
        std::string split;
        for (size_t g = 0; g < accelerators.size(); ++g) split += (g ? "," : "") + std::to_string(layers_on[accelerators[g]]);
        args.insert(args.end(), {"--split-mode", "layer", "-ts", split});
    }
    if (!entries.empty()) {
        std::string value;
        for (size_t i = 0; i < entries.size(); ++i) value += (i ? "," : "") + entries[i];
        check_llama_cpp_overrides(plan, value, gpu_layers);
        args.insert(args.end(), {"-ot", value});
    } else {
        check_llama_cpp_overrides(plan, "", gpu_layers);
    }
    args.insert(args.end(), {"-c", std::to_string(plan.request.context * plan.request.batch), "-ctk", cache->second, "-ctv", cache->second});
    if (plan.request.batch > 1) args.insert(args.end(), {"-np", std::to_string(plan.request.batch)});
    if (plan.kv_precision != "f16") args.insert(args.end(), {"-fa", "on"});
    return args;
}

}  // namespace grey::plan
