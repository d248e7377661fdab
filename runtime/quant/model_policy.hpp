// Which tensors of a model are quantized, in which format, and why the others keep their precision:
// the policy grey_model_quantize applies (grey.h, "Whole models", lists its rules in order).
#pragma once

#include "grey.h"

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace re2 {
class RE2;
}

namespace grey::quant {

// A tensor as the policy sees it.
struct PolicyTensor {
    std::string name;
    grey_dtype dtype = GREY_DTYPE_F32;
    std::vector<uint64_t> shape;
};

// What happens to one tensor.
struct TensorDecision {
    std::optional<std::string> kept;  // why it keeps its precision; empty when it is quantized
    std::string format;               // the format name it is quantized in
    grey_quant_params params{};
    uint64_t quantized_bytes = 0;
};

struct PolicyOptions {
    std::string format;  // the default format's name
    grey_quant_calibration calibration = GREY_CALIBRATION_RTN;
    bool keep_critical = true;
    std::string keep_patterns;      // one RE2 pattern per line
    std::string quantize_patterns;  // one RE2 pattern per line
    std::string format_overrides;   // one "PATTERN=FORMAT" per line
};

class ModelPolicy {
public:
    // Compiles every pattern and checks every format name: GREY_ERROR_INVALID_ARGUMENT naming the
    // first that is wrong.
    explicit ModelPolicy(const PolicyOptions& options);
    ~ModelPolicy();
    ModelPolicy(const ModelPolicy&) = delete;
    ModelPolicy& operator=(const ModelPolicy&) = delete;

    // One decision per tensor, in order; the first and last convolution are found over all of them.
    [[nodiscard]] std::vector<TensorDecision> decide(std::span<const PolicyTensor> tensors) const;

private:
    struct Pattern {
        std::string text;
        std::unique_ptr<re2::RE2> regex;
    };
    struct Override {
        Pattern pattern;
        std::string format;
        grey_quant_params params{};
    };
    static std::vector<Pattern> compile_lines(const std::string& lines, const char* what);
    static const Pattern* first_match(const std::vector<Pattern>& patterns, const std::string& name);
    std::optional<std::string> critical_reason(const PolicyTensor& tensor, bool first_conv, bool last_conv) const;

    std::string format_;
    grey_quant_params params_{};
    bool keep_critical_;
    std::vector<Pattern> keep_;
    std::vector<Pattern> quantize_;
    std::vector<Override> overrides_;
    std::vector<std::pair<std::unique_ptr<re2::RE2>, std::string>> critical_;  // pattern, reason
};

}  // namespace grey::quant
