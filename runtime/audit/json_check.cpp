#include "audit/json_check.hpp"

#include <algorithm>
#include <array>
#include <clocale>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <locale.h>
#include <memory_resource>
#include <span>
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
    Checker(std::string_view text, JsonScan scan)
        : begin_(reinterpret_cast<const uint8_t*>(text.data())), p_(begin_), end_(p_ + text.size()), scan_(scan) {}

    JsonCheck run() {
        // nlohmann skips a UTF-8 byte order mark and rejects any other text starting with 0xEF.
        if (p_ != end_ && *p_ == 0xEF) {
            if (end_ - p_ < 3 || p_[1] != 0xBB || p_[2] != 0xBF) return malformed();
            p_ += 3;
        }
        // Iterative, with the open containers on a stack: a deeply nested payload must not overflow
        // the appending thread's stack (and is refused beyond max_json_depth anyway).
        enum class Next { Value, ObjectKey, AfterValue } next = Next::Value;
        for (;;) {
            skip_whitespace();
            switch (next) {
                case Next::Value:
                    if (p_ == end_) return malformed();
                    if (*p_ == '{' || *p_ == '[') {
                        // An empty container counts as a level too: "[]" is depth 1.
                        if (open_.size() == max_json_depth) return {JsonVerdict::TooDeep, offset(), {}};
                        const uint8_t bracket = *p_++;
                        skip_whitespace();
                        if (p_ != end_ && *p_ == (bracket == '{' ? '}' : ']')) {
                            ++p_;
                            next = Next::AfterValue;
                        } else {
                            open_.push_back({bracket, keys_.size(), arena_.size()});
                            next = bracket == '{' ? Next::ObjectKey : Next::Value;
                        }
                        continue;
                    }
                    if (!scalar()) return malformed();
                    next = Next::AfterValue;
                    continue;
                case Next::ObjectKey:
                    if (p_ == end_ || *p_ != '"' || !key()) return malformed();
                    skip_whitespace();
                    if (p_ == end_ || *p_ != ':') return malformed();
                    ++p_;
                    next = Next::Value;
                    continue;
                case Next::AfterValue:
                    if (open_.empty()) return p_ == end_ ? JsonCheck{} : malformed();
                    if (p_ == end_) return malformed();
                    if (*p_ == ',') {
                        ++p_;
                        next = open_.back().bracket == '{' ? Next::ObjectKey : Next::Value;
                    } else if (*p_ == (open_.back().bracket == '{' ? '}' : ']')) {
                        ++p_;
                        if (open_.back().bracket == '{') {
                            if (const Key* repeated = repeated_key()) return {JsonVerdict::DuplicateKey, repeated->text_offset, raw_key(*repeated)};
                            keys_.resize(open_.back().first_key);
                            arena_.resize(open_.back().arena_start);
                        }
                        open_.pop_back();
                    } else {
                        return malformed();
                    }
                    continue;
            }
        }
    }

private:
    struct Container {
        uint8_t bracket;
        size_t first_key;    // this object's keys are keys_[first_key..]
        size_t arena_start;  // ...and their unescaped bytes arena_[arena_start..]
    };
    struct Key {
        size_t arena_offset;  // unescaped bytes in arena_
        size_t length;
        size_t text_offset;   // of the opening quote in the text
        size_t text_length;   // quotes included
    };

    [[nodiscard]] size_t offset() const { return static_cast<size_t>(p_ - begin_); }
    JsonCheck malformed() const { return {JsonVerdict::Malformed, offset(), {}}; }

    std::string_view unescaped(const Key& k) const { return std::string_view(arena_).substr(k.arena_offset, k.length); }
    std::string raw_key(const Key& k) const { return std::string(reinterpret_cast<const char*>(begin_) + k.text_offset, k.text_length); }

    // The later of two equal keys in the object being closed, or nullptr. Most objects have a handful
    // of keys, compared pairwise; a large one is sorted (an object may hold ~100,000 keys in 1 MiB).
    const Key* repeated_key() {
        const std::span<const Key> keys = std::span<const Key>(keys_).subspan(open_.back().first_key);
        constexpr size_t pairwise_limit = 16;
        if (keys.size() <= pairwise_limit) {
            for (size_t i = 1; i < keys.size(); ++i)
                for (size_t j = 0; j < i; ++j)
                    if (unescaped(keys[i]) == unescaped(keys[j])) return &keys[i];
            return nullptr;
        }
        std::vector<const Key*> sorted;
        sorted.reserve(keys.size());
        for (const Key& k : keys) sorted.push_back(&k);
        std::sort(sorted.begin(), sorted.end(), [&](const Key* a, const Key* b) {
            const auto ua = unescaped(*a), ub = unescaped(*b);
            return ua != ub ? ua < ub : a->text_offset < b->text_offset;
        });
        const Key* first = nullptr;
        for (size_t i = 1; i < sorted.size(); ++i)
            if (unescaped(*sorted[i]) == unescaped(*sorted[i - 1]) && (first == nullptr || sorted[i]->text_offset < first->text_offset))
                first = sorted[i];
        return first;
    }

    void skip_whitespace() {
        while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
    }

    bool scalar() {
        switch (*p_) {
            case '"': return string(nullptr);
            case 't': return literal("true");
            case 'f': return literal("false");
            case 'n': return literal("null");
            default: return number();
        }
    }

    // An object key: checked as any string, and its unescaped bytes kept until the object closes.
    bool key() {
        Key k{arena_.size(), 0, offset(), 0};
        if (!string(&arena_)) return false;
        k.length = arena_.size() - k.arena_offset;
        k.text_length = offset() - k.text_offset;
        keys_.push_back(k);
        return true;
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

    // One escape after its backslash; appends what it stands for to `out` (UTF-8) when there is one.
    bool escape(std::pmr::string* out) {
        if (p_ == end_) return false;
        const uint8_t c = *p_++;
        char simple = 0;
        switch (c) {
            case '"': case '\\': case '/': simple = static_cast<char>(c); break;
            case 'b': simple = '\b'; break;
            case 'f': simple = '\f'; break;
            case 'n': simple = '\n'; break;
            case 'r': simple = '\r'; break;
            case 't': simple = '\t'; break;
            case 'u': break;
            default: return false;
        }
        if (simple != 0) {
            if (out != nullptr) out->push_back(simple);
            return true;
        }
        uint32_t unit = 0;
        if (!hex4(unit)) return false;
        if (unit >= 0xDC00 && unit <= 0xDFFF) return false;  // a low surrogate with no high one before it
        uint32_t code_point = unit;
        if (unit >= 0xD800 && unit <= 0xDBFF) {
            // A high surrogate must be followed at once by an escaped low surrogate.
            if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return false;
            p_ += 2;
            uint32_t low = 0;
            if (!hex4(low) || low < 0xDC00 || low > 0xDFFF) return false;
            code_point = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
        }
        if (out != nullptr) append_utf8(*out, code_point);
        return true;
    }

    static void append_utf8(std::pmr::string& out, uint32_t cp) {
        if (cp < 0x80) {
            out.push_back(static_cast<char>(cp));
        } else if (cp < 0x800) {
            out.push_back(static_cast<char>(0xC0 | cp >> 6));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        } else if (cp < 0x10000) {
            out.push_back(static_cast<char>(0xE0 | cp >> 12));
            out.push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3F)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        } else {
            out.push_back(static_cast<char>(0xF0 | cp >> 18));
            out.push_back(static_cast<char>(0x80 | (cp >> 12 & 0x3F)));
            out.push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3F)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        }
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

    // A string starting at its opening quote; with `out`, its unescaped bytes are appended there.
    bool string(std::pmr::string* out) {
        ++p_;  // the opening quote
        const uint8_t* run = p_;  // bytes since the last escape, copied in one go
        auto flush = [&] {
            if (out != nullptr) out->append(reinterpret_cast<const char*>(run), static_cast<size_t>(p_ - run));
        };
        while (p_ != end_) {
            // Plain ASCII, most of a payload's strings, is passed over many bytes at a time
            // (json_scan.hpp): byte by byte this loop was the largest part of an append's own work.
            p_ += plain_run(p_, static_cast<size_t>(end_ - p_), scan_);
            if (p_ == end_) break;
            const uint8_t c = *p_;
            if (c == '"') {
                flush();
                ++p_;
                return true;
            }
            if (c == '\\') {
                flush();
                ++p_;
                if (!escape(out)) return false;
                run = p_;
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

    const uint8_t* begin_;
    const uint8_t* p_;
    const uint8_t* end_;
    JsonScan scan_;
    // A payload of a few objects and keys, nearly every one, is checked without touching the heap.
    std::array<std::byte, 2048> scratch_;
    std::pmr::monotonic_buffer_resource memory_{scratch_.data(), scratch_.size()};
    std::pmr::vector<Container> open_{&memory_};
    std::pmr::vector<Key> keys_{&memory_};  // keys of the open objects, outermost first
    std::pmr::string arena_{&memory_};      // their unescaped bytes
};

}  // namespace

JsonCheck check_json(std::string_view text, JsonScan scan) { return Checker(text, scan).run(); }

std::string json_problem_text(const JsonCheck& check) {
    const std::string at = " (at byte " + std::to_string(check.offset) + ")";
    switch (check.verdict) {
        case JsonVerdict::Valid: return "is valid JSON";
        case JsonVerdict::Malformed: return "is not valid JSON" + at;
        case JsonVerdict::TooDeep: return "nests arrays and objects deeper than " + std::to_string(max_json_depth) + " levels" + at;
        case JsonVerdict::DuplicateKey: {
            constexpr size_t shown = 64;
            const std::string key = check.key.size() > shown ? check.key.substr(0, shown) + "..." : check.key;
            return "repeats the key " + key + " in one object" + at;
        }
    }
    return "is not valid JSON";
}

}  // namespace grey::audit
