// Small text helpers shared by the runtime.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>

namespace grey {

// Joins the items of `range`, each turned into text by `to_text`, with `separator` between them.
template <typename Range, typename ToText>
std::string join(const Range& range, std::string_view separator, ToText&& to_text) {
    std::string out;
    for (const auto& item : range) {
        if (!out.empty()) out.append(separator);
        out.append(to_text(item));
    }
    return out;
}

template <typename Range>
std::string join(const Range& range, std::string_view separator) {
    return join(range, separator, [](const auto& item) { return std::string(item); });
}

// Copies `text` into a fixed-size field of a public struct, cut to fit and always NUL-terminated.
template <std::size_t N>
void copy_text(char (&field)[N], std::string_view text) {
    const std::size_t n = std::min(N - 1, text.size());
    std::memcpy(field, text.data(), n);
    field[n] = '\0';
}

// Text read from a file (a tensor name, a metadata key, a configuration key or value) reaches C callers
// as a NUL-terminated string: holding a NUL byte, it would read shorter than the file has it, and two
// different names as one. What is wrong with `text`, named `what` ("a tensor name holds a NUL byte
// (byte 1 of 3), where a C string would end"); empty when it holds none.
inline std::string nul_byte_problem(std::string_view text, const std::string& what) {
    const auto nul = text.find('\0');
    if (nul == std::string_view::npos) return {};
    return what + " holds a NUL byte (byte " + std::to_string(nul) + " of " + std::to_string(text.size()) + "), where a C string would end";
}

}  // namespace grey
