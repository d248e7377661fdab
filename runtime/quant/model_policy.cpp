// The whole-model quantization policy (grey.h, "Whole models"). Patterns are RE2: matching takes time
// linear in the name, whatever the pattern, and never recurses (an ECMAScript engine backtracks,
// exponentially on some patterns, and std::regex's recursion overflowed the stack on a
// 50,000-character name).
#include "quant/model_policy.hpp"

#include "core/error.hpp"
#include "model/dtype.hpp"
#include "quant/format.hpp"

#include <re2/re2.h>

#include <cstring>
#include <sstream>

namespace grey::quant {
namespace {

grey_quant_params params_of(const std::string& format, grey_quant_calibration calibration, const std::string& where) {
    for (const auto& named : named_params()) {
        if (format != named.name) continue;
        grey_quant_params params = GREY_QUANT_PARAMS_INIT;
        params.format = named.format;
        params.group_size = named.group_size;
        params.calibration = calibration;
        return params;
    }
    std::string valid;
    for (const auto& named : named_params()) valid += (valid.empty() ? "" : ", ") + std::string(named.name);
    fail(GREY_ERROR_INVALID_ARGUMENT, "unknown quantization format name '" + format + "'" + where + "; valid names: " + valid);
}

bool is_float(grey_dtype dtype) { return dtype == GREY_DTYPE_F32 || dtype == GREY_DTYPE_F16 || dtype == GREY_DTYPE_BF16; }

// Convolution weights: [out, in, k...], three dimensions or more.
bool is_conv(const PolicyTensor& t) { return is_float(t.dtype) && t.shape.size() >= 3; }

// The critical layers every peer keeps in full precision, by the names the common model families give
// them (Hugging Face, GGUF, PyTorch): the reason stated for each.
constexpr std::pair<const char*, const char*> critical_layers[] = {
    {R"((?i)embed|(^|[._])(wte|wpe)([._]|$)|token_embd)", "embedding (critical layer)"},
    {R"((?i)(^|[._])(lm_head|embed_out)([._]|$)|^output\.weight$)", "output layer (critical layer)"},
    {R"((?i)norm|(^|[._])ln(_?[0-9a-z])?[._])", "normalization (critical layer)"},
    {R"((?i)(^|[._])bias$)", "bias (critical layer)"},
};

}  // namespace

ModelPolicy::ModelPolicy(const PolicyOptions& options)
    : format_(options.format),
      params_(params_of(options.format, options.calibration, "")),
      keep_critical_(options.keep_critical),
      keep_(compile_lines(options.keep_patterns, "keep pattern")),
      quantize_(compile_lines(options.quantize_patterns, "quantize pattern")) {
    std::istringstream lines(options.format_overrides);
    for (std::string line; std::getline(lines, line);) {
        if (line.empty()) continue;
        const auto split = line.rfind('=');
        if (split == std::string::npos || split == 0)
            fail(GREY_ERROR_INVALID_ARGUMENT, "format override '" + line + "' is not PATTERN=FORMAT");
        Override o;
        o.format = line.substr(split + 1);
        o.params = params_of(o.format, options.calibration, " in format override '" + line + "'");
        auto compiled = compile_lines(line.substr(0, split), "format override pattern");
        o.pattern = std::move(compiled.front());
        overrides_.push_back(std::move(o));
    }
    for (const auto& [pattern, reason] : critical_layers) critical_.emplace_back(std::make_unique<re2::RE2>(pattern), reason);
}

ModelPolicy::~ModelPolicy() = default;

std::vector<ModelPolicy::Pattern> ModelPolicy::compile_lines(const std::string& lines, const char* what) {
    std::vector<Pattern> compiled;
    std::istringstream in(lines);
    for (std::string line; std::getline(in, line);) {
        if (line.empty()) continue;
        auto regex = std::make_unique<re2::RE2>(line, re2::RE2::Quiet);
        if (!regex->ok())
            fail(GREY_ERROR_INVALID_ARGUMENT, std::string(what) + " '" + line + "' is not a valid regular expression: " + regex->error());
        compiled.push_back({line, std::move(regex)});
    }
    return compiled;
}

const ModelPolicy::Pattern* ModelPolicy::first_match(const std::vector<Pattern>& patterns, const std::string& name) {
    for (const auto& p : patterns)
        if (re2::RE2::PartialMatch(name, *p.regex)) return &p;
    return nullptr;
}

std::optional<std::string> ModelPolicy::critical_reason(const PolicyTensor& tensor, bool first_conv, bool last_conv) const {
    if (!keep_critical_ || first_match(quantize_, tensor.name) != nullptr) return std::nullopt;
    for (const auto& [regex, reason] : critical_)
        if (re2::RE2::PartialMatch(tensor.name, *regex)) return reason;
    if (first_conv) return "first convolution (critical layer)";
    if (last_conv) return "last convolution (critical layer)";
    return std::nullopt;
}

std::vector<TensorDecision> ModelPolicy::decide(std::span<const PolicyTensor> tensors) const {
    std::optional<size_t> first_conv, last_conv;
    for (size_t i = 0; i < tensors.size(); ++i)
        if (is_conv(tensors[i])) {
            if (!first_conv) first_conv = i;
            last_conv = i;
        }
    std::vector<TensorDecision> decisions;
    decisions.reserve(tensors.size());
    for (size_t i = 0; i < tensors.size(); ++i) {
        const PolicyTensor& t = tensors[i];
        TensorDecision d;
        if (!is_float(t.dtype)) {
            const char* name = model::dtype_name(raw_enum(t.dtype));
            d.kept = std::string("not a float tensor (") + (name != nullptr ? name : "unknown type") + ")";
        } else if (const Pattern* keep = first_match(keep_, t.name)) {
            d.kept = "matches keep pattern '" + keep->text + "'";
        } else if (t.shape.size() < 2) {
            d.kept = "one-dimensional (bias or norm)";
        } else if (auto critical = critical_reason(t, first_conv == i, last_conv == i)) {
            d.kept = std::move(critical);
        } else {
            d.format = format_;
            d.params = params_;
            for (const auto& o : overrides_)
                if (re2::RE2::PartialMatch(t.name, *o.pattern.regex)) {
                    d.format = o.format;
                    d.params = o.params;
                    break;
                }
            try {
                d.quantized_bytes = make_layout(t.shape, d.params).bytes;
            } catch (const Error& e) {
                d.kept = d.format + " cannot hold it: " + e.what();
            }
        }
        decisions.push_back(std::move(d));
    }
    return decisions;
}

}  // namespace grey::quant
