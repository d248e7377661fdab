// Small text helpers shared by the runtime.
#pragma once

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

}  // namespace grey
