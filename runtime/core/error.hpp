// Internal error model: code inside libgrey throws grey::Error; every C entry point converts it (and
// anything else) into a grey_status plus a thread-local message at the ABI boundary, via abi_guard.
#pragma once

#include "grey.h"

#include <cstdint>
#include <cstring>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>

namespace grey {

class Error : public std::runtime_error {
public:
    Error(grey_status status, std::string message) : std::runtime_error(std::move(message)), status_(status) {}
    [[nodiscard]] grey_status status() const noexcept { return status_; }

private:
    grey_status status_;
};

[[noreturn]] inline void fail(grey_status status, std::string message) { throw Error(status, std::move(message)); }

// Throws GREY_ERROR_INVALID_ARGUMENT naming `what` when `pointer` is NULL.
template <typename T>
void require_non_null(const T* pointer, const char* what) {
    if (pointer == nullptr) fail(GREY_ERROR_INVALID_ARGUMENT, std::string(what) + " must not be NULL");
}

namespace detail {
void set_last_error(std::string message) noexcept;
void clear_last_error() noexcept;
const char* last_error() noexcept;
}  // namespace detail

// Runs `body`; maps every exception to a status and records its message for grey_last_error().
template <typename Body>
grey_status abi_guard(Body&& body) noexcept {
    try {
        detail::clear_last_error();
        std::forward<Body>(body)();
        return GREY_OK;
    } catch (const Error& e) {
        detail::set_last_error(e.what());
        return e.status();
    } catch (const std::bad_alloc&) {
        detail::set_last_error("host memory allocation failed");
        return GREY_ERROR_OUT_OF_MEMORY;
    } catch (const std::exception& e) {
        detail::set_last_error(std::string("internal error: ") + e.what());
        return GREY_ERROR_INTERNAL;
    } catch (...) {
        detail::set_last_error("internal error: unknown exception");
        return GREY_ERROR_INTERNAL;
    }
}

// An input struct from a caller built against this or a newer header: NULL gives `defaults`; a
// struct_size below this version's size is refused (the struct's _INIT macro sets it), and members a
// newer caller sets beyond it must be zero.
template <typename Struct>
Struct read_input_struct(const Struct* given, const Struct& defaults, const char* what) {
    Struct value = defaults;
    if (given == nullptr) return value;
    if (given->struct_size < sizeof(Struct))
        fail(GREY_ERROR_INVALID_ARGUMENT, std::string(what) + "->struct_size is " + std::to_string(given->struct_size) +
                                              "; initialise it with its _INIT macro");
    const auto* extra = reinterpret_cast<const unsigned char*>(given) + sizeof(Struct);
    for (size_t i = 0; i < given->struct_size - sizeof(Struct); ++i)
        if (extra[i] != 0) fail(GREY_ERROR_UNSUPPORTED, std::string(what) + " sets fields that this libgrey does not know");
    std::memcpy(&value, given, sizeof value);
    value.struct_size = sizeof value;
    return value;
}

// The caller's out-struct protocol (grey.h): a struct_size below the struct's first released size is
// refused; the caller's struct_size is kept, and as much is filled as it has room for.
template <typename Struct>
void require_struct_size(const Struct& out, size_t first_released_size, const char* what) {
    if (out.struct_size < first_released_size)
        fail(GREY_ERROR_INVALID_ARGUMENT, std::string(what) + "->struct_size is " + std::to_string(out.struct_size) +
                                              "; set it to sizeof the struct (at least " +
                                              std::to_string(first_released_size) + ")");
}

// Copies `full` into the caller's output struct, as much of it as the caller's struct_size holds
// (zeroing the rest), after checking that size.
template <typename Struct>
void copy_out_struct(const Struct& full, Struct* out, size_t first_released_size, const char* what) {
    require_non_null(out, what);
    require_struct_size(*out, first_released_size, what);
    const uint32_t caller_size = out->struct_size;
    const size_t n = caller_size < sizeof(Struct) ? caller_size : sizeof(Struct);
    auto* bytes = reinterpret_cast<unsigned char*>(out);
    const auto* src = reinterpret_cast<const unsigned char*>(&full);
    for (size_t i = 0; i < n; ++i) bytes[i] = src[i];
    for (size_t i = n; i < caller_size; ++i) bytes[i] = 0;
    out->struct_size = caller_size;
}

// The integer a C caller put in an enum parameter. C allows any int there, and reading an out-of-range
// value through the C++ enum type is undefined, so ABI entry points inspect enums through this first.
template <typename Enum>
int64_t raw_enum(const Enum& value) noexcept {
    static_assert(sizeof(Enum) == sizeof(int32_t));
    int32_t raw;
    std::memcpy(&raw, &value, sizeof raw);
    return raw;
}

// Copies `text` into a caller buffer with the NUL-terminated buffer protocol of grey.h.
void copy_out_text(const std::string& text, char* buffer, size_t buffer_size, size_t* out_length);

}  // namespace grey
