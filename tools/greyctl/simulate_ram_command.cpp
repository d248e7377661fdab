// greyctl simulate-ram: loads a model once per tenant into sealed buffers on a device, through the
// library's allocator, quantization, deduplication and compression, and reports what the device then
// holds, measured by grey_memory_stats: logical and physical bytes, what each stage saved, the
// effective multiplier beside the configured target, and the quality it cost. Every buffer is read back
// and compared with the bytes it was loaded from before anything is reported, so a lossless stage is
// shown to be lossless on these bytes. Nothing is estimated: a figure it did not measure it does not print.
#include "commands.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace greyctl {
namespace {

using json = nlohmann::ordered_json;

struct SimulateRamOptions {
    std::string model;
    uint32_t tenants = 1;
    std::string weights_format;  // empty: the model's own tensors
    std::string codec = "none";
    std::string tier = "device";
    std::string backend = "host";
    bool isolate_tenants = false;
    bool as_json = false;
    ProofOptions proof;
};

ModelPtr open_model(const std::string& path) {
    grey_model* model = nullptr;
    check(grey_model_create(path.c_str(), &model));
    return ModelPtr(model);
}

std::vector<grey_model_tensor> tensors_of(const grey_model* model) { return list_all(model, grey_model_tensor_count, grey_model_tensor_get); }

grey_codec codec_of(const std::string& name) {
    for (int c = GREY_CODEC_LZ4; c <= GREY_CODEC_BITMASK; ++c)
        if (name == grey_codec_name(static_cast<grey_codec>(c))) return static_cast<grey_codec>(c);
    return GREY_CODEC_DEFAULT;
}

// A temporary directory, removed with everything in it when the run ends.
struct TemporaryDirectory {
    std::filesystem::path path;
    TemporaryDirectory() {
        std::string pattern = (std::filesystem::temp_directory_path() / "greyctl-simulate-ram-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) throw ApiError(GREY_ERROR_IO, "cannot create a temporary directory: " + std::string(std::strerror(errno)));
        path = pattern;
    }
    ~TemporaryDirectory() {
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
    }
};

json memory_json(const grey_memory_stats& s) {
    json residency = json::object();
    for (int r = GREY_RESIDENCY_RAW; r <= GREY_RESIDENCY_COMPRESSED_HOST; ++r)
        residency[grey_residency_name(static_cast<grey_residency>(r))] = s.buffers_by_residency[r];
    return {{"logical_bytes", s.logical_bytes},
            {"physical_bytes", s.physical_bytes},
            {"physical_device_bytes", s.physical_device_bytes},
            {"physical_host_bytes", s.physical_host_bytes},
            {"pinned_host_bytes", s.pinned_host_bytes},
            {"saved_dedup_bytes", s.saved_dedup_bytes},
            {"saved_compression_bytes", s.saved_compression_bytes},
            {"saved_quantization_bytes", s.saved_quantization_bytes},
            {"effective_multiplier", s.effective_multiplier},
            {"buffers", s.buffer_count},
            {"buffers_by_residency", residency},
            {"shared_blocks", s.shared_blocks},
            {"constant_blocks", s.constant_blocks}};
}

double configured_target(grey_context* context) {
    const std::string text = read_text([&](char* buffer, size_t size, size_t* length) {
        return grey_config_get(grey_context_config(context), "targets.ram_multiplier", buffer, size, length);
    });
    return std::stod(text);
}

std::string config_text(grey_context* context, const char* key) {
    return read_text([&](char* buffer, size_t size, size_t* length) { return grey_config_get(grey_context_config(context), key, buffer, size, length); });
}

// The quantization's quality cost, from the library's report.
json quality_of(const json& report) {
    double max_abs = 0;
    for (const auto& row : report["tensors"]) max_abs = std::max(max_abs, row["max_abs_err"].get<double>());
    const auto& total = report["total"];
    return {{"lossless", false},
            {"tensors_quantized", report["tensors"].size()},
            {"tensors_kept", report["kept"].size()},
            {"bits_per_weight", total["bits_per_weight"]},
            {"rel_rmse", total["rel_rmse"]},
            {"sqnr_db", total["sqnr_db"]},
            {"max_abs_err", max_abs},
            {"reference", "float64, per tensor (grey_model_quantize)"}};
}

std::string quant_json(const grey_model_quant_result* result) {
    return read_text([&](char* buffer, size_t size, size_t* length) { return grey_model_quant_result_json(result, buffer, size, length); });
}

void print_simulate_ram_report(const json& r) {
    const auto& m = r["measured"];
    std::printf("model %s: %llu tensor(s) per tenant, %u tenant(s) on %s device %u\n", r["model"].get<std::string>().c_str(),
                static_cast<unsigned long long>(r["tensors_per_tenant"].get<uint64_t>()), r["tenants"].get<uint32_t>(),
                r["backend"].get<std::string>().c_str(), r["device"].get<uint32_t>());
    std::printf("  %-26s %16s\n", "measured", "bytes");
    for (const char* key : {"logical_bytes", "physical_bytes", "physical_device_bytes", "physical_host_bytes", "pinned_host_bytes",
                            "saved_quantization_bytes", "saved_dedup_bytes", "saved_compression_bytes"})
        std::printf("  %-26s %16llu\n", key, static_cast<unsigned long long>(m[key].get<uint64_t>()));
    std::printf("  loaded raw, before compaction: %llu bytes physical\n", static_cast<unsigned long long>(r["physical_bytes_loaded_raw"].get<uint64_t>()));
    std::printf("  effective multiplier (logical / physical): %.3fx; target targets.ram_multiplier %.3fx: %s\n",
                m["effective_multiplier"].get<double>(), r["target"]["ram_multiplier"].get<double>(),
                r["target"]["met"].get<bool>() ? "met" : "not met");
    const auto& q = r["quality"];
    if (q["lossless"].get<bool>())
        std::printf("  quality: lossless, every byte read back equal (%llu bytes)\n", static_cast<unsigned long long>(r["verification"]["bytes"].get<uint64_t>()));
    else
        std::printf("  quality: %s, rel_rmse %.5f, max_abs_err %.3e over %zu tensor(s) (%zu kept); the stages after it read back equal (%llu bytes)\n",
                    r["weights_format"].get<std::string>().c_str(), q["rel_rmse"].get<double>(), q["max_abs_err"].get<double>(),
                    q["tensors_quantized"].get<size_t>(), q["tensors_kept"].get<size_t>(),
                    static_cast<unsigned long long>(r["verification"]["bytes"].get<uint64_t>()));
    for (const auto& t : r["per_tenant"])
        std::printf("  tenant %llu: logical %llu, physical %llu (shared blocks split evenly), %.3fx\n",
                    static_cast<unsigned long long>(t["tenant"].get<uint64_t>()), static_cast<unsigned long long>(t["logical_bytes"].get<uint64_t>()),
                    static_cast<unsigned long long>(t["physical_bytes"].get<uint64_t>()), t["effective_multiplier"].get<double>());
}

int run_simulate_ram(const GlobalOptions& global, const SimulateRamOptions& o) {
    const grey_codec codec = codec_of(o.codec);
    if (o.codec != "none" && codec == GREY_CODEC_DEFAULT) throw ApiError(GREY_ERROR_INVALID_ARGUMENT, "unknown codec '" + o.codec + "'");
    BackendDevice target = open_backend_device(global, o.backend);
    grey_context* context = target.context.get();

    // Quantization first, on the device, into a temporary model file: its tensors are what is loaded.
    TemporaryDirectory scratch;
    std::string loaded_path = o.model;
    json quality = {{"lossless", true}};
    std::map<std::string, uint64_t> source_bytes;  // quantized tensor -> the bytes of the tensor it replaces
    const ModelPtr original = open_model(o.model);
    const auto original_tensors = tensors_of(original.get());
    uint64_t model_bytes = 0;
    for (const auto& t : original_tensors) model_bytes += t.size_bytes;
    if (!o.weights_format.empty()) {
        loaded_path = (scratch.path / "quantized.safetensors").string();
        grey_model_quant_options options = GREY_MODEL_QUANT_OPTIONS_INIT;
        options.context = context;
        options.device = target.device;
        grey_model_quant_result* raw = nullptr;
        check(grey_model_quantize(o.model.c_str(), loaded_path.c_str(), o.weights_format.c_str(), &options, &raw));
        const QuantResultPtr result(raw);
        const json report = json::parse(quant_json(result.get()));
        quality = quality_of(report);
        std::map<std::string, uint64_t> original_size;
        for (const auto& t : original_tensors) original_size[t.name] = t.size_bytes;
        for (const auto& row : report["tensors"]) {
            const std::string name = row["name"].get<std::string>();
            source_bytes[name] = original_size.at(name);
        }
    }
    const ModelPtr model = open_model(loaded_path);
    const auto tensors = tensors_of(model.get());

    // Every tenant loads every tensor into a sealed buffer of its own.
    std::vector<BufferPtr> buffers;
    std::vector<const grey_model_tensor*> sources;
    uint64_t empty_tensors = 0;
    for (uint32_t tenant = 0; tenant < o.tenants; ++tenant)
        for (const auto& t : tensors) {
            if (t.size_bytes == 0) {
                empty_tensors += tenant == 0 ? 1 : 0;
                continue;
            }
            grey_buffer_options options = GREY_BUFFER_OPTIONS_INIT;
            options.device = target.device;
            options.size_bytes = t.size_bytes;
            options.tenant = tenant;
            options.sharing_domain = o.isolate_tenants ? tenant : 0;
            options.dtype = t.desc->dtype;
            const auto found = source_bytes.find(t.name);
            options.source_bytes = found != source_bytes.end() ? found->second : 0;
            grey_buffer* buffer = nullptr;
            check(grey_buffer_create_with_options(context, &options, &buffer));
            buffers.emplace_back(buffer);
            sources.push_back(&t);
            check(grey_buffer_write(buffer, 0, t.data, t.size_bytes));
            check(grey_buffer_seal(buffer));
        }
    grey_memory_stats loaded{};
    loaded.struct_size = sizeof loaded;
    check(grey_device_memory_stats_get(context, target.device, &loaded));

    grey_compact_policy policy = GREY_COMPACT_POLICY_INIT;
    policy.compress = o.codec == "none" ? 0u : 1u;
    policy.tier = o.tier == "host" ? GREY_RESIDENCY_COMPRESSED_HOST : GREY_RESIDENCY_COMPRESSED_DEVICE;
    policy.codec = codec;
    grey_compact_result compacted{};
    compacted.struct_size = sizeof compacted;
    check(grey_memory_compact(context, target.device, &policy, &compacted));

    // Every byte back, decoded from wherever it now lives, against what was loaded.
    uint64_t verified = 0;
    std::vector<unsigned char> back;
    for (size_t i = 0; i < buffers.size(); ++i) {
        back.resize(sources[i]->size_bytes);
        check(grey_buffer_read(buffers[i].get(), 0, back.data(), back.size()));
        if (std::memcmp(back.data(), sources[i]->data, back.size()) != 0)
            throw ApiError(GREY_ERROR_INTERNAL, std::string("tensor '") + sources[i]->name + "' read back different from what was loaded");
        verified += back.size();
    }

    grey_memory_stats stats{};
    stats.struct_size = sizeof stats;
    check(grey_device_memory_stats_get(context, target.device, &stats));
    json per_tenant = json::array();
    for (uint32_t tenant = 0; tenant < o.tenants; ++tenant) {
        grey_memory_stats t{};
        t.struct_size = sizeof t;
        check(grey_device_memory_stats_tenant_get(context, target.device, tenant, &t));
        per_tenant.push_back({{"tenant", tenant}, {"logical_bytes", t.logical_bytes}, {"physical_bytes", t.physical_bytes},
                              {"effective_multiplier", t.effective_multiplier}});
    }
    const double goal = configured_target(context);
    grey_device_spec spec{};
    spec.struct_size = sizeof spec;
    check(grey_device_spec_get(context, target.device, &spec));
    const json report = {
        {"model", o.model},
        {"model_tensor_bytes", model_bytes},
        {"tensors_per_tenant", tensors.size() - empty_tensors},
        {"tenants", o.tenants},
        {"sharing", o.isolate_tenants ? "a sharing domain per tenant" : "one sharing domain"},
        {"backend", spec.backend},
        {"device", target.device},
        {"weights_format", o.weights_format.empty() ? json(nullptr) : json(o.weights_format)},
        {"codec", o.codec},
        {"tier", o.codec == "none" ? json(nullptr) : json(o.tier)},
        {"block_size_kb", std::stoll(config_text(context, "memory.deduplication.block_size_kb"))},
        {"baseline", {{"what", "each tenant's private copy of the model's tensors as stored in the file"}, {"bytes", model_bytes * o.tenants}}},
        {"physical_bytes_loaded_raw", loaded.physical_bytes},
        {"compaction", {{"buffers_deduplicated", compacted.buffers_deduplicated}, {"buffers_compressed", compacted.buffers_compressed}}},
        {"measured", memory_json(stats)},
        {"per_tenant", per_tenant},
        {"quality", quality},
        {"verification", {{"buffers", buffers.size()}, {"bytes", verified}, {"bit_exact", true}}},
        {"target", {{"ram_multiplier", goal}, {"met", stats.effective_multiplier >= goal}}}};
    if (o.as_json)
        std::cout << report.dump(2) << "\n";
    else
        print_simulate_ram_report(report);
    if (o.proof.enabled) {
        const json device = {{"index", target.device}, {"backend", spec.backend},
                             {"name", spec.name.state == GREY_FIELD_OK ? json(spec.name.value) : json(nullptr)}};
        const std::string id = write_proof_artifact(global, o.proof, "simulate-ram", {o.model}, json::array({device}).dump(), report.dump());
        std::fprintf(stderr, "result recorded in the audit log: proof artifact %s\n", id.c_str());
    }
    return 0;
}

}  // namespace

void add_simulate_ram_command(CLI::App& app, const GlobalOptions& global, Runner& run) {
    auto o = std::make_shared<SimulateRamOptions>();
    auto* cmd = app.add_subcommand("simulate-ram", "Load a model for N tenants into sealed buffers and measure what deduplication, "
                                                   "compression and quantization leave on the device");
    cmd->add_option("--model", o->model, "safetensors or GGUF file")->required();
    cmd->add_option("--tenants", o->tenants, "Tenants each loading the whole model (default 1)")->check(CLI::Range(1, 1024));
    cmd->add_option("--weights-format", o->weights_format, "Quantize eligible tensors first, in this format (the policy of greyctl quantize)")
        ->check(CLI::IsMember(quant_format_names()));
    cmd->add_option("--codec", o->codec, "Compress the buffers that share nothing and each shared block once: none (default), lz4, zstd, float or bitmask")
        ->check(CLI::IsMember({"none", "lz4", "zstd", "float", "bitmask"}));
    cmd->add_option("--tier", o->tier, "Where compressed buffers live: device (default) or host")->check(CLI::IsMember({"device", "host"}));
    cmd->add_option("--backend", o->backend, "Where the buffers live: host (default), or a backend plugin such as cuda");
    cmd->add_flag("--isolate-tenants", o->isolate_tenants, "Give every tenant its own sharing domain (nothing is shared between tenants)");
    add_json_flag(*cmd, o->as_json, "Print JSON instead of a table");
    add_proof_options(*cmd, o->proof);
    cmd->callback([&global, &run, o] { run = [&global, o] { return run_simulate_ram(global, *o); }; });
}

}  // namespace greyctl
