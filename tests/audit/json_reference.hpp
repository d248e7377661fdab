// The reference for the audit log's JSON check (runtime/audit/json_check.hpp), built on nlohmann's own
// SAX parser: what nlohmann::json::accept accepts, nested at most max_json_depth deep, with no key
// repeated in an object (nlohmann compares keys unescaped, as the check must). Used by the unit test
// and by the json_check fuzz target.
#pragma once

#include "audit/json_check.hpp"

#include <nlohmann/json.hpp>

#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace grey::audit::test {

class StrictJsonReference : public nlohmann::json_sax<nlohmann::json> {
public:
    static bool accepts(std::string_view text) {
        StrictJsonReference sax;
        return nlohmann::json::sax_parse(text, &sax);
    }

    bool null() override { return true; }
    bool boolean(bool) override { return true; }
    bool number_integer(number_integer_t) override { return true; }
    bool number_unsigned(number_unsigned_t) override { return true; }
    bool number_float(number_float_t, const string_t&) override { return true; }
    bool string(string_t&) override { return true; }
    bool binary(binary_t&) override { return true; }
    bool start_object(std::size_t) override { return open(); }
    bool key(string_t& name) override { return keys_.back().insert(name).second; }
    bool end_object() override { return close(); }
    bool start_array(std::size_t) override { return open(); }
    bool end_array() override { return close(); }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }

private:
    bool open() {
        if (keys_.size() == max_json_depth) return false;
        keys_.emplace_back();  // arrays get one too, and never use it
        return true;
    }
    bool close() {
        keys_.pop_back();
        return true;
    }
    std::vector<std::set<std::string>> keys_;
};

}  // namespace grey::audit::test
