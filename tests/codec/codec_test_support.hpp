// Inputs for the codec tests: deterministic random and adversarial bytes, and the codecs each dtype
// can use.
#pragma once

#include "codec/codec_id.hpp"
#include "codec_inputs.hpp"
#include "codec/container.hpp"
#include "core/error.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace grey::codec::test {

inline std::vector<CodecId> codecs_for(grey_dtype dtype) {
    std::vector<CodecId> out = {CodecId::raw, CodecId::bitmask, CodecId::lz4, CodecId::zstd};
    if (dtype == GREY_DTYPE_F16 || dtype == GREY_DTYPE_BF16 || dtype == GREY_DTYPE_F32 || dtype == GREY_DTYPE_F64)
        out.push_back(CodecId::floats);
    return out;
}

// Encodes, checks the sizes query, decodes both ways and compares bit for bit.
inline std::vector<std::byte> expect_round_trip(std::span<const std::byte> data, const EncodeOptions& options, const std::string& what) {
    const auto container = encode(data, options);
    const auto sizes = container_sizes(container);
    EXPECT_EQ(sizes.raw_size, data.size()) << what;
    EXPECT_EQ(sizes.container_size, container.size()) << what;
    const auto decoded = decode(container);
    EXPECT_TRUE(std::equal(decoded.begin(), decoded.end(), data.begin(), data.end()))
        << what << ": decode is not bit-exact";
    std::vector<std::byte> into(data.size(), std::byte{0xAA});
    decode_into(container, into);
    EXPECT_TRUE(std::equal(into.begin(), into.end(), data.begin(), data.end())) << what << ": decode_into is not bit-exact";
    return container;
}

// The status and message a call fails with; GREY_OK when it does not fail.
template <typename Body>
std::pair<grey_status, std::string> failure_of(Body&& body) {
    try {
        body();
    } catch (const Error& e) {
        return {e.status(), e.what()};
    }
    return {GREY_OK, ""};
}

}  // namespace grey::codec::test
