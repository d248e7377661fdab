// A plan as llama.cpp's command-line arguments, and the check that llama.cpp would place every tensor
// where the plan does. llama.cpp's rules (common/arg.cpp, src/llama-model.cpp): -ot's value is split on
// ',' into entries "PATTERN=BUFFER" (split at the first '='); a tensor takes the buffer of the first
// entry whose std::regex (ECMAScript) regex_search finds in its name; a tensor no entry matches follows
// its layer, which -ngl puts on the GPU when it is among the last ngl layers of n_layer + 1 (the output
// layer counting as the last), and the input layer (token embedding) stays on the CPU.
#pragma once

#include "plan/plan.hpp"

#include <string>
#include <vector>

namespace grey::plan {

// The arguments, in order ("-ngl", "999", "-ot", "...", "-c", "4096", ...). GREY_ERROR_UNSUPPORTED when
// llama.cpp cannot run the plan as it stands (a KV precision it has no cache type for, weights the plan
// quantizes that the file does not hold quantized).
std::vector<std::string> llama_cpp_args(const Plan& plan);

// Throws GREY_ERROR_INVALID_ARGUMENT naming the first tensor llama.cpp would place elsewhere than the
// plan with this -ot value and -ngl, or the entry that does not parse.
void check_llama_cpp_overrides(const Plan& plan, const std::string& overrides, uint32_t gpu_layers);

}  // namespace grey::plan
