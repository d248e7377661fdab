// What the GPU conformance programs share: counted checks, a scoped buffer, and the run over every GPU
// device of a context made from the command line. grey.h only, no test framework, so the programs build
// wherever libgrey builds.
#pragma once

#include "grey.h"

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace gpu_check {

struct Tally {
    int passed = 0;
    int failed = 0;
    bool print_passes = true;  // false: print only failures (GREY_VERBOSE set prints them anyway)
};

inline Tally& tally() {
    static Tally t;
    return t;
}

inline void check(bool ok, const std::string& what) {
    Tally& t = tally();
    (ok ? t.passed : t.failed) += 1;
    if (!ok || t.print_passes || std::getenv("GREY_VERBOSE") != nullptr) std::printf("%s  %s\n", ok ? "PASS" : "FAIL", what.c_str());
    if (!ok && *grey_last_error()) std::printf("      last error: %s\n", grey_last_error());
}

inline bool ok(grey_status s) { return s == GREY_OK; }

struct Buffer {
    Buffer(grey_context* c, uint32_t device, uint64_t size) { status = grey_buffer_create(c, device, size, &handle); }
    ~Buffer() { grey_buffer_destroy(handle); }
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
    grey_buffer* handle = nullptr;
    grey_status status;
};

struct Options {
    bool quick = false;         // --quick: small sizes, for compute-sanitizer
    const char* backend_dir = nullptr;
    const char* model = nullptr;  // --model FILE, where the program takes one
};

// Parses [--quick] [--backend-dir DIR] (and [--model FILE] when `takes_model`), makes a context, seeds a
// generator freshly (the seed is printed so a failure can be replayed), runs `per_gpu` on every GPU
// device and prints "<name>: N passed, M failed". Returns the process exit code.
inline int run(int argc, char** argv, const char* name, bool takes_model,
               const std::function<void(grey_context*, uint32_t, const grey_device_spec&, const Options&, std::mt19937_64&)>& per_gpu) {
    Options options;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--quick") == 0) options.quick = true;
        else if (std::strcmp(argv[i], "--backend-dir") == 0 && i + 1 < argc) options.backend_dir = argv[++i];
        else if (takes_model && std::strcmp(argv[i], "--model") == 0 && i + 1 < argc) options.model = argv[++i];
        else {
            std::fprintf(stderr, "usage: %s [--quick] [--backend-dir DIR]%s\n", argv[0], takes_model ? " [--model FILE]" : "");
            return 2;
        }
    }
    grey_context_options context_options = GREY_CONTEXT_OPTIONS_INIT;
    context_options.backend_dir = options.backend_dir;
    grey_context* context = nullptr;
    if (!ok(grey_context_create(&context_options, &context))) {
        std::printf("FAIL  context: %s\n", grey_last_error());
        return 1;
    }
    std::random_device seed_source;
    const uint64_t seed = (static_cast<uint64_t>(seed_source()) << 32) | seed_source();
    std::mt19937_64 rng(seed);
    std::printf("INFO  seed %" PRIu64 "\n", seed);
    uint32_t count = 0;
    if (grey_device_count(context, &count) != GREY_OK) count = 0;
    uint32_t gpus = 0;
    for (uint32_t d = 0; d < count; ++d) {
        grey_device_spec spec{};
        spec.struct_size = sizeof spec;
        if (!ok(grey_device_spec_get(context, d, &spec)) || spec.type != GREY_DEVICE_GPU) continue;
        ++gpus;
        std::printf("INFO  device %u: %s (%s)\n", d, spec.name.value, spec.backend);
        per_gpu(context, d, spec, options, rng);
    }
    check(gpus > 0, "at least one GPU device is offered");
    grey_context_destroy(context);
    std::printf("%s: %d passed, %d failed\n", name, tally().passed, tally().failed);
    return tally().failed == 0 ? 0 : 1;
}

}  // namespace gpu_check
