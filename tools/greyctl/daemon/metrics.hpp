// The Prometheus text exposition (format 0.0.4) of greyd's status document.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace greyctl::daemon {

// `status` is the document /status serves (daemon.cpp builds it); every metric comes from it, so the
// two never disagree.
std::string render_metrics(const nlohmann::ordered_json& status);

// A label value escaped as the exposition format requires (backslash, double quote, newline).
std::string escape_label(const std::string& value);

}  // namespace greyctl::daemon
