// The Level Zero backend's KV-cache kernels (kernels/opencl/grey_kv.clcpp), executed on the CPU through
// OpenCL as the backend launches them (backends/level0/kv_launch.hpp builds the same argument blocks,
// tables and launch shapes), against the host backend's KV operations (backends/host/kv): kv_store and
// kv_compress byte for byte, kv_attend within the tolerance the GPU KV conformance holds the CUDA kernels
// to against the host (tests/gpu/kv_conformance.cpp: |kernel - host| / (1 + |host|) <= 2e-4). Shapes
// cover head_dim from 1 to 256 (multiples of 16 and not), KV heads shared by 1, 4 and 8 query heads,
// tokens_per_block 1 to 32 with a ragged last block, dense and quantized blocks mixed in one sequence,
// every grey_kv_format, both window dtypes and K rotation on and off. The blocks are OpenCL shared
// virtual memory, so that the kernels reach them through tables of addresses as they reach Level Zero
// device memory.
#include "opencl_cpu.hpp"

#include "host/kv/host_kv.hpp"
#include "level0/kernel_images.hpp"
#include "level0/kv_launch.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

namespace gc = grey::common;
namespace l0 = grey::level0;

// Fine-grained shared virtual memory: the host reads and writes it in place, the kernels through its
// address.
class Svm {
public:
    Svm(cl_context context, size_t bytes) : context_(context), bytes_(bytes) {
        pointer_ = clSVMAlloc(context, CL_MEM_READ_WRITE | CL_MEM_SVM_FINE_GRAIN_BUFFER, bytes == 0 ? 16 : bytes, 0);
        EXPECT_NE(pointer_, nullptr) << "clSVMAlloc of " << bytes << " bytes";
    }
    ~Svm() {
        if (pointer_ != nullptr) clSVMFree(context_, pointer_);
    }
    Svm(const Svm&) = delete;
    Svm& operator=(const Svm&) = delete;
    [[nodiscard]] unsigned char* bytes() const noexcept { return static_cast<unsigned char*>(pointer_); }
    [[nodiscard]] uint64_t address() const noexcept { return reinterpret_cast<uint64_t>(pointer_); }
    [[nodiscard]] size_t size() const noexcept { return bytes_; }
    [[nodiscard]] void* pointer() const noexcept { return pointer_; }

private:
    cl_context context_;
    size_t bytes_;
    void* pointer_;
};

struct Shape {
    uint32_t layers, kv_heads, head_dim, tokens_per_block, format, group_size, window_bf16, hadamard_k, ratio;
};

std::string describe(const Shape& s) {
    static const char* formats[] = {"int8", "int4", "int2", "fp8_e4m3"};
    return "layers " + std::to_string(s.layers) + ", kv_heads " + std::to_string(s.kv_heads) + " x" + std::to_string(s.ratio) + ", head_dim " +
           std::to_string(s.head_dim) + ", tokens_per_block " + std::to_string(s.tokens_per_block) + ", " + formats[s.format] + ", group " +
           std::to_string(s.group_size) + (s.window_bf16 != 0 ? ", bf16" : ", fp16") + (s.hadamard_k != 0 ? ", hadamard_k" : "");
}

gc::KvLayout layout_of(const Shape& s) {
    // As the runtime makes it (runtime/kv/kv_shape.cpp): V's groups clipped to head_dim.
    return {s.layers, s.kv_heads, s.head_dim, s.tokens_per_block, s.format, std::min(s.group_size, s.head_dim), s.window_bf16, s.hadamard_k};
}

// Every grey_kv_format, both window dtypes, K rotated and not, and the shapes' edges.
std::vector<Shape> shapes() {
    std::vector<Shape> all;
    for (uint32_t format = 0; format < 4; ++format) {
        all.push_back({2, 2, 64, 16, format, 32, 1, 0, 4});
        all.push_back({1, 1, 128, 16, format, 64, 0, 1, 8});  // multi-query, rotated K, fp16 window
        all.push_back({3, 4, 80, 5, format, 32, 1, 0, 1});    // head_dim not a power of two nor a multiple of 32 codes per byte
        all.push_back({2, 2, 32, 32, format, 128, 0, 0, 2});  // V's groups clipped to head_dim
    }
    all.push_back({1, 2, 256, 8, gc::kv_int4, 128, 1, 1, 4});
    all.push_back({1, 1, 16, 1, gc::kv_int2, 32, 1, 1, 1});  // one token a block
    all.push_back({2, 3, 1, 3, gc::kv_int8, 32, 0, 0, 2});   // one channel
    all.push_back({1, 2, 24, 7, gc::kv_fp8_e4m3, 32, 1, 0, 3});
    return all;
}

std::vector<float> random_floats(std::mt19937& rng, size_t n, float spread) {
    std::normal_distribution<float> normal(0.0f, spread);
    std::vector<float> out(n);
    for (auto& v : out) v = normal(rng);
    return out;
}

// Values that reach the rules' edges: signed zeros, constant runs (a group whose scale is 0), outliers,
// values beside ties, and tiny ones.
std::vector<float> awkward_floats(std::mt19937& rng, size_t n, uint32_t head_dim) {
    std::vector<float> out = random_floats(rng, n, 1.0f);
    for (size_t i = 0; i < n; ++i) {
        switch ((i / head_dim + i) % 9) {
            case 0: out[i] = (i % 2) != 0 ? -0.0f : 0.0f; break;
            case 1: out[i] = 3.0f; break;
            case 2: out[i] *= 1000.0f; break;
            case 3: out[i] = std::ldexp(out[i], -120); break;
            case 4: out[i] = 0.5f + static_cast<float>(i % 3) * 0.25f; break;
            default: break;
        }
    }
    return out;
}

// Signed zeros of either sign among values of one sign (`sign` +1 or -1), so that a group's minimum
// (or maximum) is a tie between -0 and +0, which the rule resolves in the host's order.
std::vector<float> signed_zeros(std::mt19937& rng, size_t n, float sign) {
    std::vector<float> out = random_floats(rng, n, 1.0f);
    for (size_t i = 0; i < n; ++i) {
        const uint32_t pick = static_cast<uint32_t>(rng() % 3);
        out[i] = pick == 0 ? 0.0f : pick == 1 ? -0.0f : sign * std::fabs(out[i]);
    }
    return out;
}

// The data of a test case: 0 random, 1 awkward, 2 signed-zero ties.
std::vector<float> case_floats(int kind, std::mt19937& rng, size_t n, uint32_t head_dim, bool keys) {
    if (kind == 1) return awkward_floats(rng, n, keys ? head_dim : head_dim + 3);
    if (kind == 2) return signed_zeros(rng, n, keys ? 1.0f : -1.0f);
    return random_floats(rng, n, keys ? 1.0f : 2.0f);
}

const char* case_name(int kind) { return kind == 1 ? ", awkward values" : kind == 2 ? ", signed-zero ties" : ""; }

std::string first_difference(const unsigned char* expected, const unsigned char* actual, size_t n) {
    for (size_t i = 0; i < n; ++i)
        if (expected[i] != actual[i])
            return "byte " + std::to_string(i) + " of " + std::to_string(n) + ": host " + std::to_string(expected[i]) + ", kernel " +
                   std::to_string(actual[i]);
    return "";
}

class KvOnOpenCl : public grey::test::OpenClCpu {
protected:
    // Runs `name` of grey_kv.clcpp over `items` work items as the backend launches it, its only argument
    // `args`, the SVM it reaches through addresses declared to the runtime.
    template <typename Args>
    void launch(const char* name, const Args& args, uint64_t items, const std::vector<const Svm*>& memory) {
        const cl_kernel k = kernel(GREY_LEVEL0_KV_SPIRV, name, l0::module_build_flags(l0::KernelModule::kv));
        std::vector<void*> pointers;
        for (const Svm* m : memory) pointers.push_back(m->pointer());
        ASSERT_EQ(clSetKernelExecInfo(k, CL_KERNEL_EXEC_INFO_SVM_PTRS, pointers.size() * sizeof(void*), pointers.data()), CL_SUCCESS);
        run(k, l0::kv_group_count(items), l0::kKvGroupSize, {value_argument(args)});
    }

    std::unique_ptr<Svm> svm(size_t bytes) { return std::make_unique<Svm>(context_, bytes); }

    template <typename T>
    std::unique_ptr<Svm> svm_of(const std::vector<T>& values) {
        auto m = svm(values.size() * sizeof(T));
        if (!values.empty()) std::memcpy(m->bytes(), values.data(), values.size() * sizeof(T));
        return m;
    }

    // `tokens` tokens of layers layer_first.. stored through the kernel and through the host into copies
    // of the same blocks (each starting as `fill`), slots spread over `block_count` blocks in an order
    // that is not the tokens'. Returns the host's blocks; the kernel's are compared to them.
    void store_both(const gc::KvLayout& l, uint32_t layer_first, uint32_t layer_count, const std::vector<float>& keys,
                    const std::vector<float>& values, uint32_t block_count, std::vector<std::unique_ptr<Svm>>& device_blocks,
                    std::vector<std::vector<unsigned char>>& host_blocks, const std::vector<uint32_t>& block_of,
                    const std::vector<uint32_t>& slots) {
        const auto tokens = static_cast<uint32_t>(slots.size());
        std::vector<uint64_t> addresses(tokens);
        std::vector<uint8_t*> host_pointers(tokens);
        for (uint32_t i = 0; i < tokens; ++i) {
            addresses[i] = device_blocks[block_of[i]]->address();
            host_pointers[i] = host_blocks[block_of[i]].data();
        }
        auto k = svm_of(keys), v = svm_of(values), table = svm_of(addresses), slot_table = svm_of(slots);
        auto rotated = svm(l0::kv_store_rotated_bytes(l, layer_count, tokens));
        const grey_kvl0_store_args args = l0::kv_store_args(l, layer_first, layer_count, tokens, k->address(), v->address(), table->address(),
                                                            slot_table->address(), l.hadamard_k != 0 ? rotated->address() : 0);
        std::vector<const Svm*> memory{k.get(), v.get(), table.get(), slot_table.get(), rotated.get()};
        for (uint32_t b = 0; b < block_count; ++b) memory.push_back(device_blocks[b].get());
        launch(l0::kKvStoreKernelName, args, l0::kv_store_items(args), memory);
        grey::host::kv_store(l, layer_first, layer_count, keys.data(), values.data(), host_pointers, slots);
    }

    // Full window-form blocks of random (or awkward) K and V, every slot of every layer, the same on both
    // sides (checked).
    void full_blocks(const gc::KvLayout& l, uint32_t count, std::mt19937& rng, int kind, std::vector<std::unique_ptr<Svm>>& device_blocks,
                     std::vector<std::vector<unsigned char>>& host_blocks) {
        const uint64_t dense = gc::kv_dense_block_bytes(l);
        for (uint32_t b = 0; b < count; ++b) {
            device_blocks.push_back(svm(dense));
            std::memset(device_blocks.back()->bytes(), 0xEE, dense);
            host_blocks.emplace_back(dense, 0xEE);
        }
        const uint32_t tokens = count * l.tokens_per_block;
        const size_t n = size_t{l.layers} * tokens * l.kv_heads * l.head_dim;
        const std::vector<float> keys = case_floats(kind, rng, n, l.head_dim, true);
        const std::vector<float> values = case_floats(kind, rng, n, l.head_dim, false);
        std::vector<uint32_t> block_of(tokens), slots(tokens);
        for (uint32_t i = 0; i < tokens; ++i) {
            block_of[i] = i / l.tokens_per_block;
            slots[i] = i % l.tokens_per_block;
        }
        store_both(l, 0, l.layers, keys, values, count, device_blocks, host_blocks, block_of, slots);
        for (uint32_t b = 0; b < count; ++b)
            ASSERT_EQ(first_difference(host_blocks[b].data(), device_blocks[b]->bytes(), dense), "") << "block " << b;
    }

    // The quantized form of `sources` through grey_kvk_params and grey_kvk_codes into fresh blocks
    // (starting as 0xEE, so that unwritten padding shows), and through the host (into zeroed memory).
    void compress_both(const gc::KvLayout& l, const std::vector<std::unique_ptr<Svm>>& sources,
                       const std::vector<std::vector<unsigned char>>& host_sources, std::vector<std::unique_ptr<Svm>>& destinations,
                       std::vector<std::vector<unsigned char>>& host_destinations) {
        const uint64_t bytes = gc::kv_compressed_block_bytes(l);
        std::vector<uint64_t> from, to;
        for (size_t b = 0; b < sources.size(); ++b) {
            destinations.push_back(svm(bytes));
            std::memset(destinations.back()->bytes(), 0xEE, bytes);
            from.push_back(sources[b]->address());
            to.push_back(destinations.back()->address());
            host_destinations.emplace_back(bytes, 0);
            grey::host::kv_compress(l, host_sources[b].data(), host_destinations.back().data());
        }
        auto from_table = svm_of(from), to_table = svm_of(to);
        const grey_kvl0_compress_args args = l0::kv_compress_args(l, static_cast<uint32_t>(sources.size()), from_table->address(), to_table->address());
        std::vector<const Svm*> memory{from_table.get(), to_table.get()};
        for (const auto& s : sources) memory.push_back(s.get());
        for (const auto& d : destinations) memory.push_back(d.get());
        launch(l0::kKvParamsKernelName, args, l0::kv_params_items(args), memory);
        launch(l0::kKvCodesKernelName, args, l0::kv_codes_items(args), memory);
    }
};

}  // namespace

TEST_F(KvOnOpenCl, StoreWritesTheHostsWindowFormBytes) {
    std::mt19937 rng(21);
    for (const Shape& s : shapes()) {
        const gc::KvLayout l = layout_of(s);
        const uint64_t dense = gc::kv_dense_block_bytes(l);
        // Three blocks, a few tokens in scattered slots (the last block partly filled), into a subrange of
        // the layers when there are several.
        const uint32_t block_count = 3;
        const uint32_t tokens = std::min<uint32_t>(2 * l.tokens_per_block + 1, block_count * l.tokens_per_block);
        std::vector<uint32_t> order(block_count * l.tokens_per_block);
        for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
        std::shuffle(order.begin(), order.end(), rng);
        std::vector<uint32_t> block_of(tokens), slots(tokens);
        for (uint32_t i = 0; i < tokens; ++i) {
            block_of[i] = order[i] / l.tokens_per_block;
            slots[i] = order[i] % l.tokens_per_block;
        }
        const uint32_t layer_first = s.layers > 1 ? 1 : 0, layer_count = s.layers - layer_first;
        const size_t n = size_t{layer_count} * tokens * l.kv_heads * l.head_dim;
        for (int kind : {0, 1, 2}) {
            std::vector<std::unique_ptr<Svm>> device_blocks;
            std::vector<std::vector<unsigned char>> host_blocks;
            for (uint32_t b = 0; b < block_count; ++b) {
                device_blocks.push_back(svm(dense));
                std::memset(device_blocks.back()->bytes(), 0xEE, dense);
                host_blocks.emplace_back(dense, 0xEE);
            }
            const std::vector<float> keys = case_floats(kind, rng, n, l.head_dim, true);
            const std::vector<float> values = case_floats(kind, rng, n, l.head_dim, false);
            store_both(l, layer_first, layer_count, keys, values, block_count, device_blocks, host_blocks, block_of, slots);
            for (uint32_t b = 0; b < block_count; ++b)
                EXPECT_EQ(first_difference(host_blocks[b].data(), device_blocks[b]->bytes(), dense), "")
                    << describe(s) << case_name(kind) << ", block " << b;
        }
    }
}

// F16 and BF16 input, converted as the host converts it, with K rotated and not; and the rows' checks:
// the first NaN or infinity of K, then of V, found where the plugin looks for it.
TEST_F(KvOnOpenCl, StoreReadsHalfInputAndNotesTheFirstNonFiniteValue) {
    std::mt19937 rng(19);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (const uint32_t rotate : {0u, 1u})
        for (const grey_dtype dtype : {GREY_DTYPE_F16, GREY_DTYPE_BF16}) {
            gc::KvLayout l{};
            l.layers = 2;
            l.kv_heads = 2;
            l.head_dim = 32;
            l.tokens_per_block = 4;
            l.format = gc::kv_int4;
            l.group_size = 32;
            l.window_bf16 = 1;
            l.hadamard_k = rotate;
            const uint32_t tokens = 3;
            const size_t n = size_t{l.layers} * tokens * l.kv_heads * l.head_dim;
            // Halves of random values, and the floats they are.
            std::vector<uint16_t> halves(2 * n);
            std::vector<float> floats(2 * n);
            for (size_t i = 0; i < 2 * n; ++i) {
                const float x = normal(rng);
                halves[i] = dtype == GREY_DTYPE_BF16 ? gc::f32_to_bf16(x) : gc::f32_to_f16(x);
                floats[i] = dtype == GREY_DTYPE_BF16 ? gc::bf16_to_f32(halves[i]) : gc::f16_to_f32(halves[i]);
            }
            const auto run = [&](std::vector<unsigned char>& device_bytes, std::vector<unsigned char>& host_bytes) {
                auto block = svm(gc::kv_dense_block_bytes(l));
                std::memset(block->bytes(), 0xEE, gc::kv_dense_block_bytes(l));
                host_bytes.assign(gc::kv_dense_block_bytes(l), 0xEE);
                const std::vector<uint32_t> slots{2, 0, 3};
                const std::vector<uint64_t> addresses(tokens, block->address());
                const std::vector<uint16_t> k_half(halves.begin(), halves.begin() + static_cast<long>(n)), v_half(halves.begin() + static_cast<long>(n), halves.end());
                auto k = svm_of(k_half), v = svm_of(v_half), table = svm_of(addresses), slot_table = svm_of(slots);
                auto rotated = svm(l0::kv_store_rotated_bytes(l, l.layers, tokens));
                grey_kvl0_store_args args = l0::kv_store_args(l, 0, l.layers, tokens, k->address(), v->address(), table->address(),
                                                              slot_table->address(), rotate != 0 ? rotated->address() : 0, dtype);
                auto checks = svm(l0::kv_store_checks_bytes(args));
                args.checks = checks->address();
                launch(l0::kKvStoreKernelName, args, l0::kv_store_items(args), {k.get(), v.get(), table.get(), slot_table.get(), rotated.get(), checks.get(), block.get()});
                std::vector<uint8_t*> pointers(tokens, host_bytes.data());
                grey::host::kv_store(l, 0, l.layers, floats.data(), floats.data() + n, pointers, slots);
                device_bytes.assign(block->bytes(), block->bytes() + gc::kv_dense_block_bytes(l));
                const auto* words = reinterpret_cast<const uint32_t*>(checks->bytes());
                return l0::kv_store_first_non_finite(args, std::span(words, l0::kv_store_checks_bytes(args) / 4));
            };
            std::vector<unsigned char> device_bytes, host_bytes;
            EXPECT_EQ(run(device_bytes, host_bytes), UINT64_MAX);
            EXPECT_EQ(first_difference(host_bytes.data(), device_bytes.data(), host_bytes.size()), "") << "dtype " << dtype << " rotate " << rotate;

            // An infinity in V's row 5 and a NaN in K's row 7 (and a later one): K's is the first.
            const uint16_t infinity = dtype == GREY_DTYPE_BF16 ? 0x7F80 : 0x7C00, nan = dtype == GREY_DTYPE_BF16 ? 0x7FC0 : 0x7E00;
            halves[n + 5 * l.head_dim + 9] = infinity;
            EXPECT_EQ(run(device_bytes, host_bytes), n + 5 * l.head_dim + 9);
            halves[7 * l.head_dim + 30] = nan;
            halves[8 * l.head_dim + 1] = nan;
            EXPECT_EQ(run(device_bytes, host_bytes), 7 * l.head_dim + 30);
        }
}

TEST_F(KvOnOpenCl, CompressWritesTheHostsParametersAndCodes) {
    std::mt19937 rng(18);
    for (const Shape& s : shapes())
        for (int kind : {0, 1, 2}) {
            const gc::KvLayout l = layout_of(s);
            std::vector<std::unique_ptr<Svm>> dense, packed;
            std::vector<std::vector<unsigned char>> host_dense, host_packed;
            full_blocks(l, 3, rng, kind, dense, host_dense);
            compress_both(l, dense, host_dense, packed, host_packed);
            for (size_t b = 0; b < packed.size(); ++b)
                EXPECT_EQ(first_difference(host_packed[b].data(), packed[b]->bytes(), packed[b]->size()), "")
                    << describe(s) << case_name(kind) << ", block " << b;
        }
}

TEST_F(KvOnOpenCl, AttendMatchesTheHostOverDenseAndQuantizedBlocks) {
    std::mt19937 rng(7);
    for (const Shape& s : shapes()) {
        const gc::KvLayout l = layout_of(s);
        const uint32_t per_block = l.tokens_per_block;
        // A ragged batch: sequence lengths in tokens, each sequence over blocks of its own; a sequence's
        // blocks before its last are quantized in turn with dense ones (the window), the last is dense and
        // partly filled; the third sequence attends to a sliding window (first > 0).
        const std::vector<uint64_t> lengths{3 * uint64_t{per_block} + 1, 1, 5 * uint64_t{per_block} - (per_block > 1 ? 2 : 0), 2 * uint64_t{per_block}};
        uint32_t block_count = 0;
        std::vector<uint64_t> offsets{0};
        for (uint64_t n : lengths) offsets.push_back(block_count += static_cast<uint32_t>((n + per_block - 1) / per_block));
        std::vector<std::unique_ptr<Svm>> dense, packed;
        std::vector<std::vector<unsigned char>> host_dense, host_packed;
        full_blocks(l, block_count, rng, 0, dense, host_dense);
        compress_both(l, dense, host_dense, packed, host_packed);
        std::vector<uint64_t> addresses(block_count), first(lengths.size()), last(lengths.size());
        std::vector<uint8_t> quantized(block_count);
        std::vector<const uint8_t*> host_blocks(block_count);
        for (size_t q = 0; q < lengths.size(); ++q) {
            last[q] = lengths[q];
            first[q] = q == 2 ? lengths[q] / 2 + 1 : 0;
            for (uint64_t b = offsets[q]; b < offsets[q + 1]; ++b) {
                quantized[b] = b + 1 < offsets[q + 1] && (b - offsets[q]) % 3 != 1 ? 1 : 0;
                addresses[b] = quantized[b] != 0 ? packed[b]->address() : dense[b]->address();
                host_blocks[b] = quantized[b] != 0 ? host_packed[b].data() : host_dense[b].data();
            }
        }
        const uint32_t query_heads = l.kv_heads * s.ratio;
        const auto batch = static_cast<uint32_t>(lengths.size());
        const size_t io = size_t{batch} * query_heads * l.head_dim;
        const std::vector<float> queries = random_floats(rng, io, 1.0f);
        const float scale = 1.0f / std::sqrt(static_cast<float>(l.head_dim));
        for (uint32_t layer : {0u, l.layers - 1}) {
            std::vector<float> expected(io);
            grey::host::kv_attend(l, {host_blocks, quantized, offsets, first, last}, layer, query_heads, scale, queries.data(), expected.data());

            const std::vector<uint64_t> entries = l0::kv_block_entries(addresses, quantized);
            const std::vector<grey_kvl0_sequence> sequences = l0::kv_sequences(first, last, offsets);
            auto block_table = svm_of(entries), sequence_table = svm_of(sequences), q = svm_of(queries), out = svm(io * sizeof(float));
            auto rotated = svm(l0::kv_attend_rotated_bytes(l, batch, query_heads));
            const grey_kvl0_attend_args args =
                l0::kv_attend_args(l, batch, layer, query_heads, scale, sequence_table->address(), block_table->address(), q->address(),
                                   out->address(), l.hadamard_k != 0 ? rotated->address() : 0);
            std::vector<const Svm*> memory{block_table.get(), sequence_table.get(), q.get(), out.get(), rotated.get()};
            for (const auto& d : dense) memory.push_back(d.get());
            for (const auto& p : packed) memory.push_back(p.get());
            launch(l0::kKvAttendKernelName, args, l0::kv_attend_items(args), memory);
            const auto* actual = reinterpret_cast<const float*>(out->bytes());
            double worst = 0;
            for (size_t i = 0; i < io; ++i)
                worst = std::max(worst, std::fabs(static_cast<double>(actual[i]) - expected[i]) / (1.0 + std::fabs(expected[i])));
            EXPECT_LE(worst, 2e-4) << describe(s) << ", layer " << layer;
        }
    }
}

TEST(KvLaunch, RefusesLayoutsTheKernelsDoNotTake) {
    gc::KvLayout l{2, 4, 96, 16, gc::kv_int4, 32, 1, 1};
    try {
        l0::kv_check_layout(l, 8);
        ADD_FAILURE() << "a rotated K with head_dim 96 was accepted";
    } catch (const std::domain_error& e) {
        EXPECT_NE(std::string(e.what()).find("head_dim 96, which is not a power of two"), std::string::npos) << e.what();
    }
    l.hadamard_k = 0;
    EXPECT_NO_THROW(l0::kv_check_layout(l, 8));
    EXPECT_THROW(l0::kv_check_layout(l, 6), std::invalid_argument);
    EXPECT_THROW(l0::kv_check_layout(l, 0), std::invalid_argument);
    l.format = 4;
    EXPECT_THROW(l0::kv_check_layout(l, 8), std::domain_error);
}
