#include "audit/json_check.hpp"

#include <clocale>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <locale.h>
#include <string>
#include <vector>

namespace grey::audit {

namespace {

bool is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

int hex_value(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// strtod in the "C" locale whatever the host set with setlocale (nlohmann patches the decimal point for
// the same reason).
double parse_double(const std::string& token) {
    static const locale_t c_locale = ::newlocale(LC_ALL_MASK, "C", nullptr);
    return ::strtod_l(token.c_str(), nullptr, c_locale);
}

class Checker {
public:
    explicit Checker(std::string_view text)
        : p_(reinterpret_cast<const uint8_t*>(text.data())), end_(p_ + text.size()) {}

    bool run() {
        // nlohmann skips a UTF-8 byte order mark and rejects any other text starting with 0xEF.
        if (p_ != end_ && *p_ == 0xEF) {
            if (end_ - p_ < 3 || p_[1] != 0xBB || p_[2] != 0xBF) return false;
            p_ += 3;
        }
        // Iterative, with the open containers on a stack: a deeply nested payload must not overflow
        // the appending thread's stack.
        std::vector<uint8_t> open;
        enum class Next { Value, Key, AfterValue } next = Next::Value;
        for (;;) {
            skip_whitespace();
            switch (next) {
                case Next::Value:
                    if (p_ == end_) return false;
                    if (*p_ == '{' || *p_ == '[') {
                        const uint8_t bracket = *p_++;
                        skip_whitespace();
                        if (p_ != end_ && *p_ == (bracket == '{' ? '}' : ']')) {
                            ++p_;
                            next = Next::AfterValue;
                        } else {
                            open.push_back(bracket);
                            next = bracket == '{' ? Next::Key : Next::Value;
                        }
                        continue;
                    }
                    if (!scalar()) return false;
                    next = Next::AfterValue;
                    continue;
                case Next::Key:
                    if (p_ == end_ || *p_ != '"' || !string()) return false;
                    skip_whitespace();
                    if (p_ == end_ || *p_ != ':') return false;
                    ++p_;
                    next = Next::Value;
                    continue;
                case Next::AfterValue:
                    if (open.empty()) return p_ == end_;
                    if (p_ == end_) return false;
                    if (*p_ == ',') {
                        ++p_;
                        next = open.back() == '{' ? Next::Key : Next::Value;
                    } else if (*p_ == (open.back() == '{' ? '}' : ']')) {
                        ++p_;
                        open.pop_back();
                    } else {
                        return false;
                    }
                    continue;
            }
        }
    }

private:
    void skip_whitespace() {
        while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
    }

    bool scalar() {
        switch (*p_) {
            case '"': return string();
            case 't': return literal("true");
            case 'f': return literal("false");
            case 'n': return literal("null");
            default: return number();
        }
    }

    bool literal(std::string_view word) {
        if (static_cast<size_t>(end_ - p_) < word.size() || std::string_view(reinterpret_cast<const char*>(p_), word.size()) != word)
            return false;
        p_ += word.size();
        return true;
    }

    bool number() {
        const uint8_t* start = p_;
        if (*p_ == '-') ++p_;
        if (p_ == end_) return false;
        if (*p_ == '0') {
            ++p_;
        } else if (*p_ >= '1' && *p_ <= '9') {
            while (p_ != end_ && is_digit(*p_)) ++p_;
        } else {
            return false;
        }
        const auto integer_digits = p_ - start;
        if (p_ != end_ && *p_ == '.') {
            ++p_;
            if (p_ == end_ || !is_digit(*p_)) return false;
            while (p_ != end_ && is_digit(*p_)) ++p_;
        }
        bool exponent = false;
        if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
            ++p_;
            if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
            if (p_ == end_ || !is_digit(*p_)) return false;
            while (p_ != end_ && is_digit(*p_)) ++p_;
            exponent = true;
        }
        // nlohmann refuses a number that overflows a double (an integer too long for 64 bits is read as
        // one). Without an exponent and with at most 300 integer digits that cannot happen.
        if (!exponent && integer_digits <= 300) return true;
        return std::isfinite(parse_double(std::string(start, p_)));
    }

    bool hex4(uint32_t& out) {
        if (end_ - p_ < 4) return false;
        out = 0;
        for (int i = 0; i < 4; ++i) {
            const int v = hex_value(p_[i]);
            if (v < 0) return false;
            out = out << 4 | static_cast<uint32_t>(v);
        }
        p_ += 4;
        return true;
    }

    bool escape() {
        if (p_ == end_) return false;
        switch (*p_++) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't': return true;
            case 'u': break;
            default: return false;
        }
        uint32_t unit = 0;
        if (!hex4(unit)) return false;
        if (unit >= 0xDC00 && unit <= 0xDFFF) return false;  // a low surrogate with no high one before it
        if (unit < 0xD800 || unit > 0xDBFF) return true;
        // A high surrogate must be followed at once by an escaped low surrogate.
        if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return false;
        p_ += 2;
        return hex4(unit) && unit >= 0xDC00 && unit <= 0xDFFF;
    }

    // One UTF-8 sequence of 2 to 4 bytes starting at p_ (RFC 3629's table: no overlong forms, no
    // surrogates, nothing past U+10FFFF).
    bool utf8_sequence() {
        const uint8_t lead = *p_;
        int continuation = 0;
        uint8_t low = 0x80, high = 0xBF;  // the allowed range of the first continuation byte
        if (lead >= 0xC2 && lead <= 0xDF) continuation = 1;
        else if (lead == 0xE0) continuation = 2, low = 0xA0;
        else if ((lead >= 0xE1 && lead <= 0xEC) || lead == 0xEE || lead == 0xEF) continuation = 2;
        else if (lead == 0xED) continuation = 2, high = 0x9F;
        else if (lead == 0xF0) continuation = 3, low = 0x90;
        else if (lead >= 0xF1 && lead <= 0xF3) continuation = 3;
        else if (lead == 0xF4) continuation = 3, high = 0x8F;
        else return false;
        if (end_ - p_ <= continuation) return false;
        if (p_[1] < low || p_[1] > high) return false;
        for (int i = 2; i <= continuation; ++i)
            if (p_[i] < 0x80 || p_[i] > 0xBF) return false;
        p_ += continuation + 1;
        return true;
    }

    bool string() {
        ++p_;  // the opening quote
        while (p_ != end_) {
            const uint8_t c = *p_;
            if (c == '"') {
                ++p_;
                return true;
            }
            if (c == '\\') {
                ++p_;
                if (!escape()) return false;
            } else if (c < 0x20) {
                return false;
            } else if (c < 0x80) {
                ++p_;
            } else if (!utf8_sequence()) {
                return false;
            }
        }
        return false;
    }

    const uint8_t* p_;
    const uint8_t* end_;
};

}  // namespace

bool valid_json(std::string_view text) { return Checker(text).run(); }

}  // namespace grey::audit
