// Streams, events and an async quantization, through the C API from C++ with owning handles and
// exceptions: one stream uploads a tensor, a second waits for it through an event, quantizes it to q4_0
// in four row blocks, checksums and reads the result back, all before one synchronize; then a NaN input
// fails at synchronize with the synchronous call's message.
//
//   c++ -std=c++20 -Iinclude samples/cpp/async.cpp -Lbuild/default/lib -Wl,-rpath,$PWD/build/default/lib -lgrey
//   ./a.out [DEVICE]
//
// DEVICE (default 0, the host) is the device the streams run on. The input is the synthetic 256 x 512
// tensor of samples/c/quantize.c; every async sample in samples/ prints the same lines.
#include <grey.h>

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

constexpr uint64_t kRows = 256, kCols = 512, kBlocks = 4;

void check(grey_status status, const char* what) {
    if (status != GREY_OK) throw std::runtime_error(std::string(what) + " failed: " + grey_last_error());
}

template <typename T, void (*Destroy)(T*)>
struct Deleter {
    void operator()(T* p) const noexcept { Destroy(p); }
};
using Context = std::unique_ptr<grey_context, Deleter<grey_context, grey_context_destroy>>;
using Buffer = std::unique_ptr<grey_buffer, Deleter<grey_buffer, grey_buffer_destroy>>;
using Stream = std::unique_ptr<grey_stream, Deleter<grey_stream, grey_stream_destroy>>;
using Event = std::unique_ptr<grey_event, Deleter<grey_event, grey_event_destroy>>;

// Host memory from grey_host_alloc: the streams use it after the calls return.
class HostMemory {
public:
    HostMemory(grey_context* context, uint32_t device, uint64_t size) : context_(context) {
        check(grey_host_alloc(context, device, size, &memory_), "grey_host_alloc");
    }
    ~HostMemory() {
        // Memory this context gave: freeing it cannot fail.
        if (grey_host_free(context_, memory_) != GREY_OK) std::fputs("async: grey_host_free failed\n", stderr);
    }
    HostMemory(const HostMemory&) = delete;
    HostMemory& operator=(const HostMemory&) = delete;
    [[nodiscard]] std::byte* data() const noexcept { return static_cast<std::byte*>(memory_); }

private:
    grey_context* context_;
    void* memory_ = nullptr;
};

// The synthetic stand-in: an LCG whose values are exact in float32, so every language makes the same.
void synthetic(std::span<float> values) {
    uint32_t state = 12345u;
    for (float& v : values) {
        state = state * 1664525u + 1013904223u;
        v = (static_cast<float>(state >> 8) / 16777216.0f - 0.5f) / 16.0f;
    }
}

grey_tensor_desc desc_of(uint64_t rows) {
    grey_tensor_desc desc = GREY_TENSOR_DESC_INIT;
    desc.dtype = GREY_DTYPE_F32;
    desc.rank = 2;
    desc.shape[0] = rows;
    desc.shape[1] = kCols;
    return desc;
}

void run(grey_context* context, uint32_t device) {
    const grey_tensor_desc whole = desc_of(kRows), block = desc_of(kRows / kBlocks);
    grey_quant_params params = GREY_QUANT_PARAMS_INIT;
    check(grey_quant_params_from_name("q4_0", &params), "grey_quant_params_from_name");
    uint64_t packed_bytes = 0, block_bytes = 0;
    check(grey_quant_size(&whole, &params, &packed_bytes), "grey_quant_size");
    check(grey_quant_size(&block, &params, &block_bytes), "grey_quant_size");
    const uint64_t plain_bytes = kRows * kCols * sizeof(float);

    HostMemory host(context, device, plain_bytes + packed_bytes + sizeof(uint64_t));
    const std::span<float> values(reinterpret_cast<float*>(host.data()), kRows * kCols);
    const std::span<std::byte> packed(host.data() + plain_bytes, packed_bytes);
    auto* checksum = reinterpret_cast<uint64_t*>(host.data() + plain_bytes + packed_bytes);
    synthetic(values);
    std::vector<std::byte> expected(packed_bytes);
    check(grey_quantize(&whole, values.data(), plain_bytes, &params, expected.data(), packed_bytes, nullptr), "grey_quantize");

    const auto make_buffer = [&](uint64_t size) {
        grey_buffer* b = nullptr;
        check(grey_buffer_create(context, device, size, &b), "grey_buffer_create");
        return Buffer(b);
    };
    const auto make_stream = [&] {
        grey_stream* s = nullptr;
        check(grey_stream_create(context, device, &s), "grey_stream_create");
        return Stream(s);
    };
    const Buffer plain = make_buffer(plain_bytes), quantized = make_buffer(packed_bytes);
    const Stream upload = make_stream(), work = make_stream();
    grey_event* raw_event = nullptr;
    check(grey_event_create(context, device, &raw_event), "grey_event_create");
    const Event uploaded(raw_event);

    check(grey_buffer_write_async(plain.get(), 0, values.data(), plain_bytes, upload.get()), "grey_buffer_write_async");
    check(grey_event_record(uploaded.get(), upload.get()), "grey_event_record");
    check(grey_stream_wait_event(work.get(), uploaded.get()), "grey_stream_wait_event");
    for (uint64_t i = 0; i < kBlocks; ++i)
        check(grey_quantize_buffer_async(&block, plain.get(), i * (plain_bytes / kBlocks), &params, quantized.get(), i * block_bytes, work.get()),
              "grey_quantize_buffer_async");
    check(grey_buffer_checksum_async(quantized.get(), 0, packed_bytes, checksum, work.get()), "grey_buffer_checksum_async");
    check(grey_buffer_read_async(quantized.get(), 0, packed.data(), packed_bytes, work.get()), "grey_buffer_read_async");
    check(grey_stream_synchronize(work.get()), "grey_stream_synchronize");
    check(grey_stream_synchronize(upload.get()), "grey_stream_synchronize");
    if (std::memcmp(packed.data(), expected.data(), packed_bytes) != 0)
        throw std::runtime_error("the async quantization differs from the synchronous one");
    std::printf("async input: synthetic [%" PRIu64 ", %" PRIu64 "] F32\n", kRows, kCols);
    std::printf("async q4_0: %" PRIu64 " quantizations of [%" PRIu64 ", %" PRIu64 "] on 2 streams, %" PRIu64
                " bytes, checksum %016" PRIx64 ", equal to the synchronous call\n",
                kBlocks, kRows / kBlocks, kCols, packed_bytes, *checksum);

    // A NaN input: the failure arrives at synchronize, in the words of the synchronous call.
    values[5] = std::nanf("");
    check(grey_buffer_write(plain.get(), 0, values.data(), plain_bytes), "grey_buffer_write");
    const grey_status synchronous = grey_quantize_buffer(&block, plain.get(), 0, &params, quantized.get(), 0, nullptr);
    const std::string synchronous_message = grey_last_error();
    check(grey_quantize_buffer_async(&block, plain.get(), 0, &params, quantized.get(), 0, work.get()), "grey_quantize_buffer_async");
    const grey_status later = grey_stream_synchronize(work.get());
    if (synchronous != GREY_ERROR_INVALID_ARGUMENT || later != synchronous || synchronous_message != grey_last_error())
        throw std::runtime_error("a NaN input gave '" + std::string(grey_last_error()) + "' at synchronize, '" + synchronous_message +
                                 "' synchronously");
    std::printf("async nan: refused at synchronize with the synchronous call's message\n");
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const auto device = static_cast<uint32_t>(argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 0);
        grey_context* raw = nullptr;
        check(grey_context_create(nullptr, &raw), "grey_context_create");
        const Context context(raw);
        run(context.get(), device);
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "async: " << e.what() << "\n";
        return 1;
    }
}
