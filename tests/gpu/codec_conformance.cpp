// The CUDA plugin's codec slots on a real GPU, called through its vtable (the plugin loaded as libgrey
// loads it): every block the device decodes must come out as the host decoder's bytes, a damaged payload
// must fault exactly when the host decoder refuses it, and the block hashes must equal libxxhash's.
// Without --quick it then measures, on real weights (--model: a model file's F16 tensors, and the same
// converted to BF16, repeated to 512 MiB, as bench/codec_gpu_bench.py builds them beside nvCOMP): the
// float codec's ratio beside the order-0 entropy bound, the decode's GB/s of output and the hash's GB/s,
// each beside a device-to-device copy of the same bytes. --activations (a file of F16 tensors a network
// produced, e.g. bench/relu_activations.py's post-ReLU activations): the bitmask codec on each tensor as
// it is, its zeros the network's own.
//
//   grey_gpu_codec_conformance [--quick | --bench-only] --backend-dir DIR [--model FILE] [--activations FILE]
//
// --bench-only skips the checks and measures only (what tests/gpu/run.sh's profile step hands to ncu).
#include "codec/container.hpp"
#include "codec/device_jobs.hpp"
#include "common/numeric.hpp"
#include "core/error.hpp"
#include "grey.h"
#include "grey_backend.h"
#include "tests/codec/codec_inputs.hpp"

#include <dlfcn.h>
#include <xxhash.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <vector>

namespace {

using grey::codec::CodecId;
using grey::codec::test::elements;

// Random bytes from the run's generator (its seed is printed).
std::vector<std::byte> random_bytes(size_t n, std::mt19937_64& rng) { return grey::codec::test::random_bytes(n, rng()); }

int passed = 0, failed = 0;
std::string last_error;

void check(bool ok, const std::string& what) {
    (ok ? passed : failed) += 1;
    if (!ok) std::printf("FAIL  %s%s%s\n", what.c_str(), last_error.empty() ? "" : ": ", last_error.c_str());
}

// The plugin, started with a minimal host.
struct Plugin {
    void* library = nullptr;
    grey_backend_vtable vt{};
    grey_backend_host host{};
    void* state = nullptr;

    bool open(const std::string& directory) {
        const std::string path = directory + "/libgrey-backend-cuda.so";
        library = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (library == nullptr) return std::printf("cannot open %s: %s\n", path.c_str(), dlerror()), false;
        auto entry = reinterpret_cast<grey_backend_entry_fn>(dlsym(library, GREY_BACKEND_ENTRY_SYMBOL));
        vt.struct_size = sizeof vt;
        if (entry == nullptr || entry(GREY_BACKEND_ABI_VERSION, &vt) != GREY_OK) return std::printf("%s has no usable entry\n", path.c_str()), false;
        if (vt.codec_decode == nullptr || vt.block_hashes == nullptr) return std::printf("%s has no codec slots\n", path.c_str()), false;
        host.struct_size = offsetof(grey_backend_host, parallel_for);
        host.abi_version = GREY_BACKEND_ABI_VERSION;
        host.log = [](void*, grey_log_level, const char*) {};
        host.set_error = [](void*, const char* message) { last_error = message; };
        uint32_t devices = 0;
        return vt.init(&host, &state) == GREY_OK && vt.device_count(state, &devices) == GREY_OK && devices > 0;
    }
    ~Plugin() {
        if (state != nullptr) vt.shutdown(state);
    }
    grey_backend_buffer* upload(const void* bytes, uint64_t size) const {
        grey_backend_buffer* b = nullptr;
        if (vt.buffer_alloc(state, 0, std::max<uint64_t>(size, 1), &b) != GREY_OK) return nullptr;
        if (size > 0) vt.buffer_write(state, b, 0, bytes, size);
        return b;
    }
};

// Decodes `container` on the device; returns the faults and the output read back.
struct DeviceResult {
    std::vector<uint32_t> faults;
    std::vector<std::byte> output;
    bool launched = false;
};

DeviceResult decode_on_device(const Plugin& p, const std::vector<std::byte>& container, uint64_t raw_size) {
    DeviceResult result;
    const auto info = grey::codec::read_container_info(container);
    const auto plan = grey::codec::device_decode_plan(container, info, 0, raw_size);
    result.faults.assign(plan.jobs.size(), 0);
    result.output.assign(raw_size, std::byte{0});
    grey_backend_buffer* in = p.upload(container.data(), container.size());
    grey_backend_buffer* out = p.upload(nullptr, 0);
    if (raw_size > 0) {
        p.vt.buffer_free(p.state, out);
        p.vt.buffer_alloc(p.state, 0, raw_size, &out);
    }
    std::vector<grey_backend_codec_block> blocks(plan.jobs.size());
    if (!blocks.empty()) std::memcpy(blocks.data(), plan.jobs.data(), blocks.size() * sizeof blocks[0]);
    const std::vector<grey_backend_buffer*> containers(blocks.size(), in);
    result.launched = blocks.empty() || p.vt.codec_decode(p.state, containers.data(), out, blocks.data(), static_cast<uint32_t>(blocks.size()),
                                                          result.faults.data()) == GREY_OK;
    // Blocks only the host decodes (lz4, zstd) are filled in from the host's decode.
    if (raw_size > 0) p.vt.buffer_read(p.state, out, 0, result.output.data(), raw_size);
    const auto host = plan.host_blocks.empty() ? std::vector<std::byte>{} : grey::codec::decode(container);
    for (uint32_t b : plan.host_blocks)
        std::memcpy(result.output.data() + uint64_t{b} * info.block_size, host.data() + uint64_t{b} * info.block_size, info.blocks[b].raw_size);
    p.vt.buffer_free(p.state, in);
    p.vt.buffer_free(p.state, out);
    return result;
}

void conformance(const Plugin& p, bool quick, std::mt19937_64& rng) {
    const float nan_payload = std::bit_cast<float>(0x7FC01234u);
    struct Input {
        std::string name;
        grey_dtype dtype;
        std::vector<std::byte> data;
    };
    std::vector<Input> inputs;
    // --quick (under compute-sanitizer): fewer sizes and block sizes, every codec and input kind.
    const std::vector<size_t> sizes = quick ? std::vector<size_t>{3, 4097, 70000} : std::vector<size_t>{0, 1, 3, 16, 17, 241, 4097, 65536, 1 << 20, 3 * 65536 + 6};
    const std::vector<uint32_t> block_sizes = quick ? std::vector<uint32_t>{16, 4096} : std::vector<uint32_t>{16, 4096, 65536};
    for (size_t n : sizes) {
        inputs.push_back({"random u8", GREY_DTYPE_U8, random_bytes(n, rng)});
        inputs.push_back({"sine bf16", GREY_DTYPE_BF16, elements<uint16_t>(n, [](size_t i) {
                              return grey::common::f32_to_bf16(std::sin(0.11f * static_cast<float>(i)) * 0.02f);
                          })});
        inputs.push_back({"sine f32", GREY_DTYPE_F32, elements<float>(n, [](size_t i) { return std::sin(0.37f * static_cast<float>(i)); })});
        inputs.push_back({"sparse f16", GREY_DTYPE_F16,
                          elements<uint16_t>(n, [](size_t i) { return static_cast<uint16_t>(i % 7 == 0 ? 0x3C00 + i % 300 : 0); })});
        inputs.push_back({"sparse u8", GREY_DTYPE_U8, elements<uint8_t>(n, [](size_t i) { return static_cast<uint8_t>(i % 3 == 0 ? i : 0); })});
        inputs.push_back({"nan/-0/inf f32", GREY_DTYPE_F32, elements<float>(n, [&](size_t i) {
                              return i % 3 == 0 ? nan_payload : i % 3 == 1 ? -0.0f : INFINITY;
                          })});
        inputs.push_back({"f64", GREY_DTYPE_F64, elements<double>(n, [](size_t i) { return 1.0 / static_cast<double>(i % 50 + 1); })});
        inputs.push_back({"zeros", GREY_DTYPE_F32, std::vector<std::byte>(n)});
        inputs.push_back({"fill bf16", GREY_DTYPE_BF16, elements<uint16_t>(n, [](size_t) { return uint16_t{0x3F80}; })});
    }
    for (const Input& input : inputs)
        for (const CodecId codec : {CodecId::raw, CodecId::bitmask, CodecId::floats, CodecId::lz4})
            for (const uint32_t block_size : block_sizes) {
                const uint32_t width = grey::codec::element_width_of(input.dtype);
                if (codec == CodecId::floats && width == 1) continue;
                if (block_size % width != 0) continue;
                const std::string what = input.name + " (" + std::to_string(input.data.size()) + " bytes), " +
                                         std::string(grey::codec::codec_name(codec)) + ", blocks of " + std::to_string(block_size);
                const auto container = grey::codec::encode(input.data, {codec, input.dtype, block_size, 1});
                last_error.clear();
                const DeviceResult r = decode_on_device(p, container, input.data.size());
                check(r.launched, what + ": codec_decode");
                check(std::all_of(r.faults.begin(), r.faults.end(), [](uint32_t f) { return f == 0; }), what + ": no block faults");
                check(r.output == input.data, what + ": the host's bytes");
            }

    // Damaged payloads: a fault exactly when the host decoder refuses, the original bytes otherwise.
    const auto weights = elements<uint16_t>(quick ? 6000 : 60000, [](size_t i) {
        return grey::common::f32_to_bf16(std::sin(0.3f * static_cast<float>(i)) * 0.1f);
    });
    for (const CodecId codec : {CodecId::floats, CodecId::bitmask}) {
        const auto data = codec == CodecId::floats ? weights : elements<uint16_t>(weights.size(), [](size_t i) {
            return static_cast<uint16_t>(i % 5 == 0 ? 0x4000 + i % 1000 : 0);
        });
        const auto container = grey::codec::encode(data, {codec, GREY_DTYPE_BF16, 1u << 20, 1});
        const auto info = grey::codec::read_container_info(container);
        int agree = 0, total = 0, faults = 0;
        for (int trial = 0; trial < (quick ? 20 : 300); ++trial) {
            auto damaged = container;
            const uint64_t at = info.payload_start + rng() % info.blocks[0].stored_size;
            damaged[at] ^= static_cast<std::byte>(1u << (rng() % 8));
            const DeviceResult r = decode_on_device(p, damaged, data.size());
            bool host_refuses = false;
            try {
                (void)grey::codec::decode(damaged);
            } catch (const grey::Error&) {
                host_refuses = true;
            }
            const bool fault = r.faults.at(0) != 0;
            faults += fault;
            agree += r.launched && fault == host_refuses && (fault || r.output == data);
            ++total;
        }
        check(agree == total, std::string(grey::codec::codec_name(codec)) + ": " + std::to_string(agree) + " of " + std::to_string(total) +
                                  " damaged payloads fault exactly when the host refuses them (" + std::to_string(faults) + " faulted)");
    }

    // Blocks of several one-block containers in one call (a deduplicated buffer's stored blocks).
    {
        std::vector<std::vector<std::byte>> pieces;
        std::vector<grey_backend_buffer*> containers;
        std::vector<grey_backend_codec_block> blocks;
        std::vector<std::byte> expected;
        for (int i = 0; i < 9; ++i) {
            pieces.push_back(elements<uint16_t>(65536 - 2 * (i == 8), [i](size_t e) {
                return grey::common::f32_to_bf16(std::sin(0.01f * static_cast<float>(e * (i + 1))) * 0.1f);
            }));
            const auto container = grey::codec::encode(pieces.back(), {i % 2 == 0 ? CodecId::floats : CodecId::bitmask, GREY_DTYPE_BF16, 65536, 1});
            const auto plan = grey::codec::device_decode_plan(container, grey::codec::read_container_info(container), 0, pieces.back().size());
            grey_backend_codec_block block{};
            std::memcpy(&block, &plan.jobs.at(0), sizeof block);
            block.output = expected.size();
            blocks.push_back(block);
            containers.push_back(p.upload(container.data(), container.size()));
            expected.insert(expected.end(), pieces.back().begin(), pieces.back().end());
        }
        grey_backend_buffer* out = nullptr;
        p.vt.buffer_alloc(p.state, 0, expected.size(), &out);
        std::vector<uint32_t> faults(blocks.size(), 1);
        last_error.clear();
        const bool launched = p.vt.codec_decode(p.state, containers.data(), out, blocks.data(), static_cast<uint32_t>(blocks.size()), faults.data()) == GREY_OK;
        std::vector<std::byte> back(expected.size());
        p.vt.buffer_read(p.state, out, 0, back.data(), back.size());
        check(launched && std::all_of(faults.begin(), faults.end(), [](uint32_t f) { return f == 0; }) && back == expected,
              "nine one-block containers in one call");
        for (grey_backend_buffer* c : containers) p.vt.buffer_free(p.state, c);
        p.vt.buffer_free(p.state, out);
    }

    // Block hashes against libxxhash.
    for (const uint64_t size : {1ull, 100ull, 240ull, 241ull, 1024ull, 1025ull, 65536ull, 3ull * 65536 + 17})
        for (const uint32_t block : {16u, 1000u, 65536u})
            for (const uint64_t seed : {uint64_t{0}, uint64_t{rng()}}) {
                const auto data = random_bytes(size, rng);
                grey_backend_buffer* b = p.upload(data.data(), data.size());
                std::vector<uint64_t> hashes((size + block - 1) / block, 0);
                last_error.clear();
                const bool launched = p.vt.block_hashes(p.state, b, 0, size, block, seed, hashes.data()) == GREY_OK;
                bool same = launched;
                for (size_t i = 0; i < hashes.size(); ++i)
                    same = same && hashes[i] == XXH3_64bits_withSeed(data.data() + i * block, std::min<uint64_t>(block, size - i * block), seed);
                check(same, "block hashes of " + std::to_string(size) + " bytes in blocks of " + std::to_string(block));
                p.vt.buffer_free(p.state, b);
            }
}

// Every F16 tensor of a model file, in file order.
// Every F16 tensor of a model file, by name, in file order.
std::vector<std::pair<std::string, std::vector<std::byte>>> model_f16_tensors(const char* path) {
    grey_model* model = nullptr;
    if (grey_model_create(path, &model) != GREY_OK) return {};
    std::vector<std::pair<std::string, std::vector<std::byte>>> out;
    uint64_t count = 0;
    if (grey_model_tensor_count(model, &count) == GREY_OK)
        for (uint64_t i = 0; i < count; ++i) {
            grey_model_tensor tensor{};
            tensor.struct_size = sizeof tensor;
            if (grey_model_tensor_get(model, i, &tensor) != GREY_OK || tensor.desc->dtype != GREY_DTYPE_F16) continue;
            const auto* bytes = static_cast<const std::byte*>(tensor.data);
            out.emplace_back(tensor.name, std::vector<std::byte>(bytes, bytes + tensor.size_bytes));
        }
    grey_model_destroy(model);
    return out;
}

std::vector<std::byte> model_f16(const char* path) {
    std::vector<std::byte> out;
    for (const auto& [name, bytes] : model_f16_tensors(path)) out.insert(out.end(), bytes.begin(), bytes.end());
    return out;
}

double order0_bits(const std::vector<std::byte>& data, uint32_t width) {
    // The entropy of the symbol (the byte below the sign) plus that of the rest, per element, in bits.
    std::vector<uint64_t> symbols(256, 0), rest(1u << 16, 0);
    const uint64_t n = data.size() / width;
    for (uint64_t i = 0; i < n; ++i) {
        uint64_t element = 0;
        std::memcpy(&element, data.data() + i * width, width);
        ++symbols[(element >> (8 * width - 9)) & 0xFF];
        ++rest[((element >> (8 * width - 1)) << 7) | (element & 0x7F)];
    }
    const auto entropy = [n](const std::vector<uint64_t>& counts) {
        double bits = 0;
        for (uint64_t c : counts)
            if (c != 0) bits -= static_cast<double>(c) * std::log2(static_cast<double>(c) / static_cast<double>(n));
        return bits;
    };
    return entropy(symbols) + entropy(rest);
}

template <typename Body>
double best_seconds(int repeat, Body&& body) {
    double best = 1e30;
    for (int i = 0; i < repeat; ++i) {
        const auto start = std::chrono::steady_clock::now();
        body();
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    return best;
}

// Times the device decode of `data` encoded with `options`, beside a device copy and the block hash of
// the same bytes, checking first that it decodes bit for bit; prints one row, `aside` in its fourth column.
void bench_row(const Plugin& p, const char* name, const char* codec, const std::vector<std::byte>& data,
               const grey::codec::EncodeOptions& options, const std::string& aside) {
    const auto container = grey::codec::encode(data, options);
    const auto info = grey::codec::read_container_info(container);
    const auto plan = grey::codec::device_decode_plan(container, info, 0, data.size());
    std::vector<grey_backend_codec_block> blocks(plan.jobs.size());
    std::memcpy(blocks.data(), plan.jobs.data(), blocks.size() * sizeof blocks[0]);
    std::vector<uint32_t> faults(blocks.size());
    grey_backend_buffer* in = p.upload(container.data(), container.size());
    grey_backend_buffer* out = nullptr;
    grey_backend_buffer* copy = nullptr;
    p.vt.buffer_alloc(p.state, 0, data.size(), &out);
    p.vt.buffer_alloc(p.state, 0, data.size(), &copy);
    std::vector<uint64_t> hashes(data.size() / options.block_size);
    const std::vector<grey_backend_buffer*> containers(blocks.size(), in);
    const auto decode = [&] {
        p.vt.codec_decode(p.state, containers.data(), out, blocks.data(), static_cast<uint32_t>(blocks.size()), faults.data());
    };
    decode();
    std::vector<std::byte> back(data.size());
    p.vt.buffer_read(p.state, out, 0, back.data(), back.size());
    check(back == data && plan.host_blocks.empty() && std::all_of(faults.begin(), faults.end(), [](uint32_t f) { return f == 0; }),
          std::string(name) + " " + codec + " real weights decode on the device bit for bit");
    const double t_decode = best_seconds(7, decode);
    const double t_copy = best_seconds(7, [&] { p.vt.buffer_copy(p.state, copy, 0, out, 0, data.size()); });
    const double t_hash = best_seconds(7, [&] { p.vt.block_hashes(p.state, out, 0, data.size(), options.block_size, 0x1234, hashes.data()); });
    const double gb = static_cast<double>(data.size()) / 1e9;
    std::printf("%-6s %-15s %8.3fx %9s %12.1f %12.1f %12.1f %12.2f\n", name, codec,
                static_cast<double>(data.size()) / static_cast<double>(container.size()), aside.c_str(), gb / t_decode, gb / t_copy,
                gb / t_hash, t_copy / t_decode);
    p.vt.buffer_free(p.state, in);
    p.vt.buffer_free(p.state, out);
    p.vt.buffer_free(p.state, copy);
}

// `bits16` with every element whose magnitude is below the `fraction` quantile set to +0 (magnitude
// pruning: the sparse weights the bitmask codec is for).
std::vector<std::byte> pruned(const std::vector<std::byte>& bits16, double fraction) {
    const size_t n = bits16.size() / 2;
    std::vector<uint16_t> magnitudes(n);
    for (size_t i = 0; i < n; ++i) {
        uint16_t h = 0;
        std::memcpy(&h, bits16.data() + 2 * i, 2);
        magnitudes[i] = static_cast<uint16_t>(h & 0x7FFF);  // bf16 magnitudes order as their bits
    }
    auto sorted = magnitudes;
    const size_t cut = static_cast<size_t>(fraction * static_cast<double>(n));
    std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(cut), sorted.end());
    const uint16_t threshold = sorted[cut];
    auto out = bits16;
    for (size_t i = 0; i < n; ++i)
        if (magnitudes[i] < threshold) std::memset(out.data() + 2 * i, 0, 2);
    return out;
}

// `base` repeated to 512 MiB: large enough that the decode, not the launch, is timed.
std::vector<std::byte> repeated(const std::vector<std::byte>& base) {
    std::vector<std::byte> data;
    while (data.size() < (512u << 20)) data.insert(data.end(), base.begin(), base.end());
    data.resize(512u << 20);
    return data;
}

double zero_share(const std::vector<std::byte>& bits16) {
    size_t zeros = 0;
    for (size_t i = 0; i + 1 < bits16.size(); i += 2) zeros += bits16[i] == std::byte{0} && bits16[i + 1] == std::byte{0};
    return static_cast<double>(zeros) / static_cast<double>(bits16.size() / 2);
}

// Activations as a network left them (a file of F16 tensors, e.g. bench/relu_activations.py's): the
// bitmask codec on each tensor and on all of them together, their zeros the ReLU's own.
void bench_activations(const Plugin& p, const char* path) {
    auto tensors = model_f16_tensors(path);
    if (tensors.empty()) {
        check(false, std::string("reading F16 tensors from ") + path);
        return;
    }
    std::vector<std::byte> all;
    for (const auto& [name, bytes] : tensors) all.insert(all.end(), bytes.begin(), bytes.end());
    tensors.emplace_back("all", std::move(all));
    std::printf("\nactivations: %s, each tensor as it is (F16), repeated to 512 MiB\n", path);
    std::printf("%-6s %-15s %9s %9s %12s %12s %12s %12s\n", "dtype", "codec", "ratio", "zeros", "decode GB/s", "copy GB/s", "hash GB/s", "decode/copy");
    for (const auto& [name, bytes] : tensors) {
        const std::string label = "bitmask " + name;
        char zeros[16];
        std::snprintf(zeros, sizeof zeros, "%.1f%%", 100 * zero_share(bytes));
        bench_row(p, "f16", label.c_str(), repeated(bytes), {CodecId::bitmask, GREY_DTYPE_F16, 65536}, zeros);
    }
}

void bench(const Plugin& p, const char* model) {
    const auto f16 = model_f16(model);
    if (f16.empty()) {
        check(false, std::string("reading ") + model);
        return;
    }
    auto bf16 = f16;
    for (size_t i = 0; i + 1 < bf16.size(); i += 2) {
        uint16_t h = 0;
        std::memcpy(&h, f16.data() + i, 2);
        const uint16_t b = grey::common::f32_to_bf16(grey::common::f16_to_f32(h));
        std::memcpy(bf16.data() + i, &b, 2);
    }
    std::printf("\nreal weights: %s, %.1f MiB of F16 (and the same as BF16), repeated to 512 MiB\n", model, static_cast<double>(f16.size()) / (1 << 20));
    std::printf("%-6s %-15s %9s %9s %12s %12s %12s %12s\n", "dtype", "codec", "ratio", "bound", "decode GB/s", "copy GB/s", "hash GB/s", "decode/copy");
    const std::vector<std::tuple<const char*, grey_dtype, const std::vector<std::byte>*>> sets = {{"bf16", GREY_DTYPE_BF16, &bf16},
                                                                                                 {"f16", GREY_DTYPE_F16, &f16}};
    for (const auto& [name, dtype, base] : sets) {
        const auto data = repeated(*base);
        char bound[16];
        std::snprintf(bound, sizeof bound, "%.3fx", static_cast<double>(data.size()) * 8 / order0_bits(data, 2));
        bench_row(p, name, "float", data, {CodecId::floats, dtype, 65536}, bound);
    }
    for (const double fraction : {0.5, 0.9}) {
        const auto data = repeated(pruned(bf16, fraction));
        bench_row(p, "bf16", fraction == 0.5 ? "bitmask 50%" : "bitmask 90%", data, {CodecId::bitmask, GREY_DTYPE_BF16, 65536}, "-");
    }
    std::printf("(GB/s of decoded bytes; each call synchronous, best of 7; copy: buffer_copy of the same bytes, device to device;\n"
                " bitmask: the BF16 weights with the smallest-magnitude 50%% / 90%% set to zero)\n");
}

}  // namespace

int main(int argc, char** argv) {
    bool quick = false, bench_only = false;
    const char* backend_dir = nullptr;
    const char* model = nullptr;
    const char* activations = nullptr;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--quick") quick = true;
        else if (a == "--bench-only") bench_only = true;
        else if (a == "--backend-dir" && i + 1 < argc) backend_dir = argv[++i];
        else if (a == "--model" && i + 1 < argc) model = argv[++i];
        else if (a == "--activations" && i + 1 < argc) activations = argv[++i];
        else return std::printf("usage: %s [--quick | --bench-only] --backend-dir DIR [--model FILE] [--activations FILE]\n", argv[0]), 2;
    }
    if (backend_dir == nullptr) return std::printf("--backend-dir is needed\n"), 2;
    Plugin plugin;
    if (!plugin.open(backend_dir)) return std::printf("no CUDA device through the plugin: %s\n", last_error.c_str()), 1;
    const uint64_t seed = std::random_device{}();
    std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
    std::mt19937_64 rng(seed);
    try {
        if (!bench_only) conformance(plugin, quick, rng);
        if (!quick && model != nullptr) bench(plugin, model);
        if (!quick && activations != nullptr) bench_activations(plugin, activations);
    } catch (const std::exception& e) {
        check(false, std::string("exception: ") + e.what());
    }
    std::printf("codec conformance: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
