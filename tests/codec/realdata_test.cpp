// Every codec round-trips bit-exactly on real weights: all-MiniLM-L6-v2's F32 tensors (the file
// scripts/fetch-model.sh fetches, passed in GREY_TEST_MINILM) and the same weights converted to bf16 and
// fp16. The float codec must compress real bf16 weights by more than 1.2x (a behaviour; the exact
// ratio and speed are the bench's: bench/codec_bench.cpp).
#include "codec_test_support.hpp"

#include "common/dtype.hpp"
#include "common/numeric.hpp"
#include "model/model_file.hpp"

#include <cstdlib>
#include <fstream>
#include <iterator>

namespace grey::codec::test {
namespace {

struct RealWeights {
    std::vector<std::byte> file;
    std::vector<std::span<const std::byte>> f32_tensors;
};

const RealWeights& real_weights() {
    static const RealWeights weights = [] {
        RealWeights w;
        const char* path = std::getenv("GREY_TEST_MINILM");
        if (path == nullptr) return w;
        std::ifstream in(path, std::ios::binary);
        const std::vector<char> text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        w.file.resize(text.size());
        std::memcpy(w.file.data(), text.data(), text.size());
        const auto model = model::parse_safetensors(w.file);
        for (const auto& tensor : model.tensors)
            if (tensor.dtype == GREY_DTYPE_F32) w.f32_tensors.push_back(tensor.data);
        return w;
    }();
    return weights;
}

std::vector<std::byte> converted(std::span<const std::byte> f32, grey_dtype dtype) {
    const size_t n = f32.size() / 4;
    std::vector<std::byte> out(n * 2);
    for (size_t i = 0; i < n; ++i) {
        float v;
        std::memcpy(&v, f32.data() + i * 4, 4);
        const uint16_t bits = dtype == GREY_DTYPE_BF16 ? common::f32_to_bf16(v) : common::f32_to_f16(v);
        std::memcpy(out.data() + i * 2, &bits, 2);
    }
    return out;
}

class RealWeightsRoundTrip : public ::testing::TestWithParam<grey_dtype> {};

TEST_P(RealWeightsRoundTrip, EveryCodecIsBitExact) {
    const auto& weights = real_weights();
    if (weights.f32_tensors.empty()) GTEST_SKIP() << "GREY_TEST_MINILM is not set (ctest sets it from scripts/fetch-model.sh)";
    ASSERT_GT(weights.f32_tensors.size(), 50u);
    const grey_dtype dtype = GetParam();
    uint64_t raw_total = 0;
    uint64_t float_total = 0;
    for (const auto& tensor : weights.f32_tensors) {
        const auto bytes = dtype == GREY_DTYPE_F32 ? std::vector<std::byte>(tensor.begin(), tensor.end()) : converted(tensor, dtype);
        raw_total += bytes.size();
        for (CodecId codec : codecs_for(dtype)) {
            const auto container = expect_round_trip(bytes, {codec, dtype, kDefaultBlockSize, 1}, std::string(codec_name(codec)));
            if (codec == CodecId::floats) float_total += container.size();
            if (::testing::Test::HasFailure()) return;
        }
    }
    const double ratio = static_cast<double>(raw_total) / static_cast<double>(float_total);
    std::printf("float codec on real %s weights: %llu -> %llu bytes, ratio %.4f\n", common::dtype_name(dtype),
                static_cast<unsigned long long>(raw_total), static_cast<unsigned long long>(float_total), ratio);
    if (dtype == GREY_DTYPE_BF16) {
        EXPECT_GT(ratio, 1.2);
    }
    EXPECT_GT(ratio, 1.0);
}

INSTANTIATE_TEST_SUITE_P(MiniLM, RealWeightsRoundTrip, ::testing::Values(GREY_DTYPE_BF16, GREY_DTYPE_F16, GREY_DTYPE_F32),
                         [](const auto& param_info) { return std::string(common::dtype_name(param_info.param)); });

}  // namespace
}  // namespace grey::codec::test
