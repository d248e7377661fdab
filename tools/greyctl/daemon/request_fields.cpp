#include "request_fields.hpp"

#include <algorithm>
#include <stdexcept>

namespace greyctl::daemon {

RequestFields::RequestFields(const nlohmann::ordered_json& request, std::initializer_list<const char*> fields)
    : request_(request), command_(request.at("command").get<std::string>()) {
    for (const auto& [key, value] : request.items()) {
        if (key == "command") continue;
        if (std::none_of(fields.begin(), fields.end(), [&](const char* f) { return key == f; }))
            throw std::invalid_argument(command_ + ": unknown field " + nlohmann::ordered_json(key).dump());
    }
}

const nlohmann::ordered_json* RequestFields::find(const char* field, bool has_fallback) const {
    const auto it = request_.find(field);
    if (it != request_.end()) return &*it;
    if (!has_fallback) throw std::invalid_argument(command_ + ": the field '" + field + "' is required");
    return nullptr;
}

std::string RequestFields::text(const char* field, size_t max_bytes, std::optional<std::string> fallback) const {
    const auto* value = find(field, fallback.has_value());
    if (value == nullptr) return *fallback;
    if (!value->is_string()) throw std::invalid_argument(command_ + ": '" + field + "' must be a string");
    std::string s = value->get<std::string>();
    if (s.empty() || s.size() > max_bytes)
        throw std::invalid_argument(command_ + ": '" + field + "' must be 1 to " + std::to_string(max_bytes) + " bytes (it is " +
                                    std::to_string(s.size()) + ")");
    if (const size_t nul = s.find('\0'); nul != std::string::npos)
        throw std::invalid_argument(command_ + ": '" + field + "' holds a NUL byte (at byte " + std::to_string(nul) + ")");
    return s;
}

uint64_t RequestFields::count(const char* field, uint64_t max, std::optional<uint64_t> fallback) const {
    const auto* value = find(field, fallback.has_value());
    if (value == nullptr) return *fallback;
    if (!value->is_number_unsigned() || value->get<uint64_t>() > max)
        throw std::invalid_argument(command_ + ": '" + field + "' must be an integer from 0 to " + std::to_string(max));
    return value->get<uint64_t>();
}

double RequestFields::number(const char* field) const {
    const auto* value = find(field, false);
    if (!value->is_number()) throw std::invalid_argument(command_ + ": '" + field + "' must be a number");
    return value->get<double>();
}

}  // namespace greyctl::daemon
