// What one async call costs the calling thread, measured in C++ through grey.h alone (no interpreter in
// the way): the median and spread of the wall time of grey_quantize_buffer_async (int8-token, 1 x 4,096
// F32), grey_buffer_write_async (64 KiB of grey_host_alloc memory) and grey_buffer_fill_async (64 KiB, one
// kernel) and grey_event_record, each on one stream that is synchronized every --batch calls; beside them
// grey_version() and the clock alone. bench/stream_gpu_bench.py runs it and prints its rows
// beside the same calls made through ctypes.
//
//   grey_stream_enqueue_bench --backend-dir build/gpu/lib/grey [--backend cuda] [--device N]
//                             [--repeat 200] [--batch 50] [--json]
//
// --device: the device index (default: the first device of --backend). Every figure is in microseconds.
#include <grey.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

struct Options {
    std::string backend_dir;
    std::string backend = "cuda";
    long device = -1;
    int repeat = 200;
    int batch = 50;
    bool json = false;
};

[[noreturn]] void die(const char* what, grey_status status) {
    std::fprintf(stderr, "stream_enqueue_bench: %s failed: %s (%s)\n", what, grey_last_error(), grey_status_string(status));
    std::exit(1);
}

void check(grey_status status, const char* what) {
    if (status != GREY_OK) die(what, status);
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        const auto value = [&] {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "stream_enqueue_bench: %s needs a value\n", argv[i]);
                std::exit(2);
            }
            return std::string(argv[++i]);
        };
        if (arg == "--backend-dir") o.backend_dir = value();
        else if (arg == "--backend") o.backend = value();
        else if (arg == "--device") o.device = std::stol(value());
        else if (arg == "--repeat") o.repeat = std::stoi(value());
        else if (arg == "--batch") o.batch = std::stoi(value());
        else if (arg == "--json") o.json = true;
        else {
            std::fprintf(stderr, "stream_enqueue_bench: unknown argument '%s'\n", argv[i]);
            std::exit(2);
        }
    }
    if (o.repeat < 1 || o.batch < 1) {
        std::fprintf(stderr, "stream_enqueue_bench: --repeat and --batch must be at least 1\n");
        std::exit(2);
    }
    return o;
}

struct Spread {
    double median = 0, p10 = 0, p90 = 0;
};

Spread spread_of(std::vector<double> samples) {
    std::sort(samples.begin(), samples.end());
    const auto at = [&](double q) { return samples[static_cast<size_t>(q * static_cast<double>(samples.size() - 1))]; };
    return {at(0.5), at(0.1), at(0.9)};
}

using Clock = std::chrono::steady_clock;

// Times `call` one call at a time, `batch` calls between synchronizations of `stream` (so the queue never
// fills), after a warm-up batch; microseconds.
template <typename Call>
Spread per_call(const Options& o, grey_stream* stream, Call&& call) {
    for (int i = 0; i < o.batch; ++i) call();
    check(grey_stream_synchronize(stream), "grey_stream_synchronize");
    std::vector<double> samples;
    samples.reserve(static_cast<size_t>(o.repeat) * static_cast<size_t>(o.batch));
    for (int r = 0; r < o.repeat; ++r) {
        for (int i = 0; i < o.batch; ++i) {
            const auto t0 = Clock::now();
            call();
            samples.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
        }
        check(grey_stream_synchronize(stream), "grey_stream_synchronize");
    }
    return spread_of(std::move(samples));
}

grey_device_spec spec_of(grey_context* context, uint32_t device) {
    grey_device_spec spec{};
    spec.struct_size = sizeof spec;
    check(grey_device_spec_get(context, device, &spec), "grey_device_spec_get");
    return spec;
}

uint32_t device_of(grey_context* context, const Options& o) {
    if (o.device >= 0) return static_cast<uint32_t>(o.device);
    uint32_t count = 0;
    check(grey_device_count(context, &count), "grey_device_count");
    for (uint32_t i = 0; i < count; ++i) {
        if (o.backend == spec_of(context, i).backend) return i;
    }
    std::fprintf(stderr, "stream_enqueue_bench: no device of backend '%s'\n", o.backend.c_str());
    std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
    const Options o = parse(argc, argv);
    grey_context_options options = GREY_CONTEXT_OPTIONS_INIT;
    options.backends = o.backend == "host" ? nullptr : o.backend.c_str();
    options.backend_dir = o.backend_dir.empty() ? nullptr : o.backend_dir.c_str();
    options.require_backends = o.backend == "host" ? 0 : 1;
    grey_context* context = nullptr;
    check(grey_context_create(&options, &context), "grey_context_create");
    const uint32_t device = device_of(context, o);
    const grey_device_spec spec = spec_of(context, device);

    constexpr uint64_t kElements = 4096, kCopyBytes = 64 << 10;
    grey_tensor_desc desc = GREY_TENSOR_DESC_INIT;
    desc.dtype = GREY_DTYPE_F32;
    desc.rank = 2;
    desc.shape[0] = 1;
    desc.shape[1] = kElements;
    grey_quant_params params = GREY_QUANT_PARAMS_INIT;
    check(grey_quant_params_from_name("int8-token", &params), "grey_quant_params_from_name");
    uint64_t packed_bytes = 0;
    check(grey_quant_size(&desc, &params, &packed_bytes), "grey_quant_size");

    grey_buffer *source = nullptr, *packed = nullptr, *target = nullptr;
    check(grey_buffer_create(context, device, kElements * sizeof(float), &source), "grey_buffer_create");
    check(grey_buffer_create(context, device, packed_bytes, &packed), "grey_buffer_create");
    check(grey_buffer_create(context, device, kCopyBytes, &target), "grey_buffer_create");
    std::vector<float> ones(kElements, 1.0f);
    check(grey_buffer_write(source, 0, ones.data(), kElements * sizeof(float)), "grey_buffer_write");
    void* host = nullptr;
    check(grey_host_alloc(context, device, kCopyBytes, &host), "grey_host_alloc");
    std::memset(host, 0x3C, kCopyBytes);
    grey_stream* stream = nullptr;
    check(grey_stream_create(context, device, &stream), "grey_stream_create");

    const auto enqueue = [](grey_status status, const char* what) {
        if (status != GREY_OK) die(what, status);
    };
    volatile uint64_t sink = 0;
    const Spread clock = per_call(o, stream, [] {});
    const Spread version = per_call(o, stream, [&] { sink = sink + grey_version(); });
    const Spread quantize = per_call(o, stream, [&] {
        enqueue(grey_quantize_buffer_async(&desc, source, 0, &params, packed, 0, stream), "grey_quantize_buffer_async");
    });
    const Spread write = per_call(o, stream, [&] {
        enqueue(grey_buffer_write_async(target, 0, host, kCopyBytes, stream), "grey_buffer_write_async");
    });
    const Spread fill = per_call(o, stream, [&] { enqueue(grey_buffer_fill_async(target, 0, 0x5A, kCopyBytes, stream), "grey_buffer_fill_async"); });
    grey_event* event = nullptr;
    check(grey_event_create(context, device, &event), "grey_event_create");
    const Spread record = per_call(o, stream, [&] { enqueue(grey_event_record(event, stream), "grey_event_record"); });
    grey_event_destroy(event);

    struct Row {
        const char* key;
        const char* what;
        Spread s;
    };
    const Row rows[] = {{"clock", "the clock alone (two reads)", clock},
                        {"version", "grey_version()", version},
                        {"quantize_async", "grey_quantize_buffer_async int8-token 1x4096 F32", quantize},
                        {"write_async", "grey_buffer_write_async 64 KiB pinned", write},
                        {"fill_async", "grey_buffer_fill_async 64 KiB (one kernel)", fill},
                        {"event_record", "grey_event_record (a timed event)", record}};
    if (o.json) {
        std::printf("{\"device\": \"%s\", \"backend\": \"%s\", \"samples\": %d", spec.name.value, spec.backend, o.repeat * o.batch);
        for (const Row& r : rows) std::printf(", \"%s_us\": {\"median\": %.3f, \"p10\": %.3f, \"p90\": %.3f}", r.key, r.s.median, r.s.p10, r.s.p90);
        std::printf("}\n");
    } else {
        std::printf("device %u: %s (%s); %d calls each, a synchronize every %d; microseconds a call\n", device, spec.name.value, spec.backend,
                    o.repeat * o.batch, o.batch);
        std::printf("%-52s %8s %8s %8s\n", "call", "median", "p10", "p90");
        for (const Row& r : rows) std::printf("%-52s %8.2f %8.2f %8.2f\n", r.what, r.s.median, r.s.p10, r.s.p90);
    }

    grey_stream_destroy(stream);
    check(grey_host_free(context, host), "grey_host_free");
    grey_buffer_destroy(target);
    grey_buffer_destroy(packed);
    grey_buffer_destroy(source);
    grey_context_destroy(context);
    return sink == 1 ? 3 : 0;
}
