// Little-endian fields of the codec streams: appending them to an output, and reading them from
// untrusted bytes with a bounds check that fails with GREY_ERROR_CORRUPT naming the field.
#pragma once

#include "core/error.hpp"

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

namespace grey::codec {

static_assert(std::endian::native == std::endian::little, "the codec streams assume a little-endian host");

template <typename T>
void put(std::vector<std::byte>& out, T value) {
    const size_t at = out.size();
    out.resize(at + sizeof(T));
    std::memcpy(out.data() + at, &value, sizeof(T));
}

template <typename T>
void put_at(std::span<std::byte> out, size_t offset, T value) {
    std::memcpy(out.data() + offset, &value, sizeof(T));
}

template <typename T>
T load(const std::byte* at) noexcept {
    T value;
    std::memcpy(&value, at, sizeof(T));
    return value;
}

// Reads fields in order from `bytes`; `what` names the stream in messages ("float payload").
class FieldReader {
public:
    FieldReader(std::span<const std::byte> bytes, const char* what) : bytes_(bytes), what_(what) {}

    [[nodiscard]] size_t offset() const noexcept { return offset_; }
    [[nodiscard]] size_t remaining() const noexcept { return bytes_.size() - offset_; }

    std::span<const std::byte> take(uint64_t count, const char* field) {
        if (count > remaining())
            fail(GREY_ERROR_CORRUPT, std::string(what_) + ": " + field + " needs " + std::to_string(count) + " bytes at offset " +
                                         std::to_string(offset_) + " but only " + std::to_string(remaining()) + " remain");
        const auto out = bytes_.subspan(offset_, static_cast<size_t>(count));
        offset_ += static_cast<size_t>(count);
        return out;
    }

    template <typename T>
    T read(const char* field) {
        return load<T>(take(sizeof(T), field).data());
    }

    // Fails unless every byte has been read: trailing bytes are as suspect as missing ones.
    void expect_end() const {
        if (remaining() != 0)
            fail(GREY_ERROR_CORRUPT, std::string(what_) + ": " + std::to_string(remaining()) + " unexpected bytes after the end");
    }

private:
    std::span<const std::byte> bytes_;
    const char* what_;
    size_t offset_ = 0;
};

[[noreturn]] inline void corrupt(const char* what, const std::string& detail) {
    fail(GREY_ERROR_CORRUPT, std::string(what) + ": " + detail);
}

}  // namespace grey::codec
