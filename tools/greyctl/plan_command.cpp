// greyctl plan: from a model file and a machine (detected, or a devices file) to a plan (grey_plan_create):
// plan.yaml, its JSON form, or the llama.cpp arguments that run it.
#include "commands.hpp"
#include "exit_codes.hpp"

#include <cstdio>
#include <iostream>
#include <memory>
#include <vector>

namespace greyctl {
namespace {

struct PlanOptions {
    std::string workload = "llm-inference";
    std::string model;
    std::string plan;  // an existing plan.yaml instead of a model
    uint64_t context = 0;
    uint32_t batch = 0;
    uint32_t tenants = 1;
    std::string kv_precision = "auto";
    std::string kv_runtime;  // "": llama-cpp when this call emits llama.cpp arguments, else libgrey
    std::string devices;
    std::string output;
    bool force = false;
    bool as_json = false;
    std::string emit;
    std::string check_ot;
    uint32_t ngl = 999;
};

// An argument as a POSIX shell reads it back.
std::string shell_word(const std::string& arg) {
    if (!arg.empty() && arg.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.,/:=") == std::string::npos)
        return arg;
    std::string quoted = "'";
    for (const char c : arg) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return quoted + "'";
}

PlanPtr make_plan(const GlobalOptions& global, const PlanOptions& o) {
    grey_plan* raw = nullptr;
    if (!o.plan.empty()) {
        check(grey_plan_load(o.plan.c_str(), &raw));
        return PlanPtr(raw);
    }
    if (o.model.empty()) throw CommandError(Exit::usage, "give --model FILE (or --plan FILE to read a plan)");
    grey_workload workload = GREY_WORKLOAD_INIT;
    check(grey_workload_kind_from_name(o.workload.c_str(), &workload.kind));
    workload.context = o.context;
    workload.batch = o.batch;
    workload.tenants = o.tenants;
    check(grey_kv_precision_from_name(o.kv_precision.c_str(), &workload.kv_precision));
    // A plan made to be run by llama.cpp right away is sized as llama.cpp stores its KV cache.
    std::string runtime = o.kv_runtime;
    if (runtime.empty()) runtime = o.emit == "llama-cpp" && workload.kind == GREY_WORKLOAD_LLM_INFERENCE ? "llama-cpp" : "libgrey";
    check(grey_kv_runtime_from_name(runtime.c_str(), &workload.kv_runtime));
    ContextPtr context;
    if (o.devices.empty()) context = open_context(global, "");
    check(grey_plan_create(context.get(), o.model.c_str(), &workload, o.devices.empty() ? nullptr : o.devices.c_str(), &raw));
    return PlanPtr(raw);
}

void print_summary(const grey_plan* plan) {
    grey_plan_summary s{};
    s.struct_size = sizeof s;
    check(grey_plan_summary_get(plan, &s));
    std::printf("%s, context %llu, batch %u%s, %u tenant(s); KV %s, %.1f MiB; weights %.1f MiB as planned (%.1f MiB in the file)\n",
                grey_workload_kind_name(s.kind), static_cast<unsigned long long>(s.context), s.batch,
                s.batch_recommended ? " (recommended)" : "", s.tenants, s.kv_quantized ? grey_kv_format_name(s.kv_format) : s.kv_bytes != 0 ? "f16" : "none",
                static_cast<double>(s.kv_bytes) / 1048576.0, static_cast<double>(s.weight_bytes_planned) / 1048576.0,
                static_cast<double>(s.weight_bytes_file) / 1048576.0);
    for (uint32_t d = 0; d < s.device_count; ++d) {
        grey_plan_device dev{};
        dev.struct_size = sizeof dev;
        check(grey_plan_device_get(plan, d, &dev));
        std::printf("  %-8s predicted %10.1f MiB of %10.1f MiB budget (weights %.1f, KV %.1f, other %.1f), reads %.1f MiB per step\n", dev.name,
                    static_cast<double>(dev.predicted_bytes) / 1048576.0, static_cast<double>(dev.budget_bytes) / 1048576.0,
                    static_cast<double>(dev.weight_bytes) / 1048576.0, static_cast<double>(dev.kv_bytes) / 1048576.0,
                    static_cast<double>(dev.other_bytes) / 1048576.0, dev.read_bytes_per_step / 1048576.0);
    }
}

int run_plan(const GlobalOptions& global, const PlanOptions& o) {
    const PlanPtr plan = make_plan(global, o);
    if (!o.check_ot.empty()) {
        // A tensor that lands elsewhere is the check failing, not a bad argument.
        if (grey_plan_check_llama_cpp_overrides(plan.get(), o.check_ot.c_str(), o.ngl) != GREY_OK) {
            const std::string why = grey_last_error();
            if (o.as_json) std::cout << nlohmann::ordered_json{{"ok", false}, {"detail", why}}.dump(2) << "\n";
            else std::fprintf(stderr, "greyctl: %s\n", why.c_str());
            return code_of(Exit::check_failed);
        }
        if (o.as_json) std::cout << nlohmann::ordered_json{{"ok", true}, {"detail", ""}}.dump(2) << "\n";
        else std::printf("every tensor lands where the plan puts it\n");
        return 0;
    }
    if (!o.output.empty())
        write_new_text_file(o.output, read_text([&](char* b, size_t n, size_t* len) { return grey_plan_to_yaml(plan.get(), b, n, len); }), o.force);
    if (o.emit == "llama-cpp") {
        const std::string lines = read_text([&](char* b, size_t n, size_t* len) { return grey_plan_llama_cpp_args(plan.get(), b, n, len); });
        std::string command;
        std::vector<std::string> args;
        for (size_t start = 0, end; start < lines.size(); start = end + 1) {
            end = lines.find('\n', start);
            args.push_back(lines.substr(start, end - start));
            command += (command.empty() ? "" : " ") + shell_word(args.back());
        }
        if (o.as_json) std::cout << nlohmann::ordered_json{{"engine", o.emit}, {"args", args}, {"command", command}}.dump(2) << "\n";
        else std::printf("%s\n", command.c_str());
    } else if (o.as_json) {
        std::fputs(read_text([&](char* b, size_t n, size_t* len) { return grey_plan_to_json(plan.get(), b, n, len); }).c_str(), stdout);
    } else if (!o.output.empty()) {
        print_summary(plan.get());
        std::printf("wrote %s\n", o.output.c_str());
    } else {
        std::fputs(read_text([&](char* b, size_t n, size_t* len) { return grey_plan_to_yaml(plan.get(), b, n, len); }).c_str(), stdout);
    }
    return 0;
}

}  // namespace

void add_plan_command(CLI::App& app, const GlobalOptions& global, Runner& run) {
    auto* cmd = app.add_subcommand("plan", "Plan a model on this machine or one a devices file describes: placement, formats, KV, batch");
    auto options = std::make_shared<PlanOptions>();
    cmd->add_option("--workload", options->workload, "What the model will do")
        ->check(CLI::IsMember({"inference", "llm-inference", "training"}))
        ->capture_default_str();
    cmd->add_option("--model", options->model, "The GGUF or safetensors file (its metadata alone is read)");
    cmd->add_option("--plan", options->plan, "Read this plan.yaml instead of planning (for --emit, --check-ot, --json)")->excludes("--model");
    cmd->add_option("--context", options->context, "Tokens per sequence (default: the model's, at most 4096)");
    cmd->add_option("--batch", options->batch, "Sequences at once (default: the largest that fits, at most 256)");
    cmd->add_option("--tenants", options->tenants, "Workloads sharing each device equally")->check(CLI::Range(1u, 1024u))->capture_default_str();
    cmd->add_option("--kv-precision", options->kv_precision,
                    "The KV cache's precision (llm-inference): auto (f16 first; for --kv-runtime libgrey int8 where that puts more weights "
                    "on the GPU), or fixed "
                    "(then only the weights are quantized to fit)")
        ->check(CLI::IsMember({"auto", "f16", "int8", "int4", "int2"}))
        ->capture_default_str();
    cmd->add_option("--kv-runtime", options->kv_runtime,
                    "Whose cache formats size the KV cache: libgrey (its KV compressor) or llama-cpp (f16, q8_0, q4_0 cache types, "
                    "no int2; the context padded to 256). Default: llama-cpp with --emit llama-cpp when this call makes the plan, "
                    "else libgrey")
        ->check(CLI::IsMember({"libgrey", "llama-cpp"}))
        ->excludes("--plan");
    cmd->add_option("--devices", options->devices, "A devices file describing the machine (default: the devices detected here)");
    cmd->add_option("-o,--output", options->output, "Write the plan to this plan.yaml");
    cmd->add_flag("--force", options->force, "Replace --output if it exists");
    add_json_flag(*cmd, options->as_json, "Print the plan as JSON");
    cmd->add_option("--emit", options->emit, "Print the arguments that run the plan in this engine")->check(CLI::IsMember({"llama-cpp"}));
    cmd->add_option("--check-ot", options->check_ot, "Check an -ot value: does every tensor land where the plan puts it?");
    cmd->add_option("--ngl", options->ngl, "The -ngl that goes with --check-ot")->capture_default_str();
    cmd->callback([&run, &global, options] { run = [&global, options] { return run_plan(global, *options); }; });
}

}  // namespace greyctl
