#include "quant/model_api_support.hpp"

#include <sys/stat.h>

namespace grey::quant {

void require_output_is_not_input(const std::string& input, const std::string& output) {
    struct stat in {}, out {};
    if (::stat(output.c_str(), &out) == 0 && ::stat(input.c_str(), &in) == 0 && in.st_dev == out.st_dev && in.st_ino == out.st_ino)
        fail(GREY_ERROR_INVALID_ARGUMENT, "output '" + output + "' is the input file ('" + input + "')");
}

}  // namespace grey::quant
