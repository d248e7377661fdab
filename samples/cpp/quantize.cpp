// Quantizes one real weight matrix in every format libgrey knows and prints each format's error,
// through the C API from C++ with owning handles and exceptions.
//
//   c++ -std=c++20 -Iinclude samples/cpp/quantize.cpp -Lbuild/default/lib -Wl,-rpath,$PWD/build/default/lib -lgrey
//   ./a.out [MODEL.safetensors|MODEL.gguf]
//
// The input is picked as samples/c/quantize.c picks it: the first two-dimensional F32, F16 or BF16
// tensor whose rows are a multiple of 128 long, of the model named on the command line or of the
// MiniLM weights scripts/fetch-model.sh caches; else a deterministic synthetic 256 x 512 tensor.
#include <grey.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct ModelDeleter {
    void operator()(grey_model* m) const noexcept { grey_model_destroy(m); }
};
using Model = std::unique_ptr<grey_model, ModelDeleter>;

void check(grey_status status, const char* what) {
    if (status != GREY_OK) throw std::runtime_error(std::string(what) + " failed: " + grey_last_error());
}

// $GREY_CACHE_DIR, else $XDG_CACHE_HOME/libgrey, else ~/.cache/libgrey (as scripts/fetch-model.sh).
std::filesystem::path default_model() {
    const auto env = [](const char* name) -> std::optional<std::string> {
        const char* value = std::getenv(name);
        if (value == nullptr || *value == '\0') return std::nullopt;
        return value;
    };
    std::filesystem::path cache;
    if (auto dir = env("GREY_CACHE_DIR")) cache = *dir;
    else if (auto xdg = env("XDG_CACHE_HOME")) cache = std::filesystem::path(*xdg) / "libgrey";
    else cache = std::filesystem::path(env("HOME").value_or(".")) / ".cache" / "libgrey";
    return cache / "all-minilm-l6-v2" / "model.safetensors";
}

// The synthetic stand-in: an LCG whose values are exact in float, so every language makes the same.
std::vector<float> synthetic(size_t n) {
    std::vector<float> values(n);
    uint32_t state = 12345u;
    for (auto& v : values) {
        state = state * 1664525u + 1013904223u;
        v = (static_cast<float>(state >> 8) / 16777216.0f - 0.5f) / 16.0f;
    }
    return values;
}

void report_every_format(const grey_tensor_desc& desc, const void* data, uint64_t size) {
    for (uint32_t i = 0; i < grey_quant_name_count(); ++i) {
        const char* name = grey_quant_name_at(i);
        grey_quant_params params = GREY_QUANT_PARAMS_INIT;
        check(grey_quant_params_from_name(name, &params), "grey_quant_params_from_name");
        uint64_t bytes = 0;
        check(grey_quant_size(&desc, &params, &bytes), "grey_quant_size");
        std::vector<std::byte> out(bytes);
        grey_quant_report r{};
        r.struct_size = sizeof r;
        check(grey_quantize(&desc, data, size, &params, out.data(), out.size(), &r), "grey_quantize");
        std::printf("quantize %s: bits_per_weight %.4f rel_rmse %.8f sqnr_db %.4f max_abs_err %.8f\n", name,
                    r.bits_per_weight, r.rel_rmse, r.sqnr_db, r.max_abs_err);
    }
}

}  // namespace

int main(int argc, char** argv) try {
    const std::filesystem::path path = argc > 1 ? std::filesystem::path(argv[1]) : default_model();
    if (argc <= 1 && !std::filesystem::exists(path)) {
        constexpr uint64_t rows = 256, cols = 512;
        const auto values = synthetic(rows * cols);
        grey_tensor_desc desc = GREY_TENSOR_DESC_INIT;
        desc.rank = 2;
        desc.shape[0] = rows;
        desc.shape[1] = cols;
        std::cout << "note: no model at " << path.string() << " (scripts/fetch-model.sh fetches one): using a synthetic tensor\n"
                  << "input: synthetic [" << rows << ", " << cols << "] F32\n" << std::flush;
        report_every_format(desc, values.data(), values.size() * sizeof(float));
        return 0;
    }
    grey_model* raw = nullptr;
    check(grey_model_create(path.c_str(), &raw), "grey_model_create");
    const Model model(raw);
    uint64_t count = 0;
    check(grey_model_tensor_count(model.get(), &count), "grey_model_tensor_count");
    for (uint64_t i = 0; i < count; ++i) {
        grey_model_tensor t{};
        t.struct_size = sizeof t;
        check(grey_model_tensor_get(model.get(), i, &t), "grey_model_tensor_get");
        const grey_dtype d = t.desc->dtype;
        const bool plain = d == GREY_DTYPE_F32 || d == GREY_DTYPE_F16 || d == GREY_DTYPE_BF16;
        if (!plain || t.desc->rank != 2 || t.desc->shape[1] % 128 != 0) continue;
        std::cout << "input: " << t.name << " [" << t.desc->shape[0] << ", " << t.desc->shape[1] << "] " << grey_dtype_name(d)
                  << " of " << path.string() << "\n" << std::flush;
        report_every_format(*t.desc, t.data, t.size_bytes);
        return 0;
    }
    throw std::runtime_error(path.string() + " has no 2-D float tensor with rows a multiple of 128");
} catch (const std::exception& e) {
    std::cerr << "quantize: " << e.what() << "\n";
    return 1;
}
