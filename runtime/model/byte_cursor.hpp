// Bounds-checked little-endian reading from untrusted bytes: every read first checks that what it needs
// is there, and a short read fails with GREY_ERROR_CORRUPT naming the field and its offset.
#pragma once

#include "core/error.hpp"

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

namespace grey::model {

static_assert(std::endian::native == std::endian::little, "the model readers assume a little-endian host");

class ByteCursor {
public:
    ByteCursor(std::span<const std::byte> bytes, std::string file_kind) : bytes_(bytes), kind_(std::move(file_kind)) {}

    [[nodiscard]] uint64_t offset() const noexcept { return offset_; }
    [[nodiscard]] uint64_t remaining() const noexcept { return bytes_.size() - offset_; }

    [[noreturn]] void corrupt(const std::string& what) const {
        fail(GREY_ERROR_CORRUPT, kind_ + ": " + what + " (at byte " + std::to_string(offset_) + " of " + std::to_string(bytes_.size()) + ")");
    }

    std::span<const std::byte> take(uint64_t count, const char* what) {
        if (count > remaining())
            corrupt(std::string(what) + " needs " + std::to_string(count) + " bytes but only " + std::to_string(remaining()) + " remain");
        const auto out = bytes_.subspan(offset_, count);
        offset_ += count;
        return out;
    }

    template <typename T>
    T read(const char* what) {
        T value;
        std::memcpy(&value, take(sizeof(T), what).data(), sizeof(T));
        return value;
    }

    std::string_view read_text(uint64_t length, const char* what) {
        const auto raw = take(length, what);
        return {reinterpret_cast<const char*>(raw.data()), raw.size()};
    }

    // The bytes from `begin` up to the current offset (begin <= offset()).
    [[nodiscard]] std::span<const std::byte> since(uint64_t begin) const noexcept { return bytes_.subspan(begin, offset_ - begin); }

    void seek(uint64_t offset, const char* what) {
        if (offset > bytes_.size()) corrupt(std::string(what) + " lies past the end of the file");
        offset_ = offset;
    }

private:
    std::span<const std::byte> bytes_;
    std::string kind_;
    uint64_t offset_ = 0;
};

}  // namespace grey::model
