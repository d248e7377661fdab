// The appender's JSON check must accept exactly what nlohmann::json::accept accepts (the check it
// replaced), less documents nested deeper than max_json_depth or repeating a key in an object:
// hand-picked edge cases, then random mutations of valid documents, compared one by one.
#include "audit/json_check.hpp"
#include "json_reference.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <random>
#include <string>
#include <vector>

namespace grey::audit {
namespace {

bool reference(const std::string& text) { return test::StrictJsonReference::accepts(text); }

std::string nested(size_t depth, std::string_view open = "[", std::string_view close = "]", std::string_view inner = "") {
    std::string text;
    for (size_t i = 0; i < depth; ++i) text += open;
    text += inner;
    for (size_t i = 0; i < depth; ++i) text += close;
    return text;
}

TEST(JsonCheck, EdgeCasesAgreeWithNlohmann) {
    const std::vector<std::string> cases = {
        "", " ", "{}", "[]", " {} ", "\t\n\r{}\n", "{", "}", "[", "]", "{]", "[}", "{}}", "[]]", "{}{}", "{} x",
        "null", "true", "false", "nul", "truee", "True", "NULL", "\"\"", "\"a\"", "\"a", "a\"",
        "0", "-0", "01", "-01", "1.", ".5", "1.5", "-1.5e10", "1e", "1e+", "1e+5", "1E-5", "+1", "--1", "-", "0x10",
        "1e308", "1e309", "-1e309", "1e-400", "2e-324", "1.7976931348623157e308", "1.7976931348623159e308",
        "18446744073709551615", "18446744073709551616", "-9223372036854775808", "-9223372036854775809",
        std::string(300, '9'), std::string(309, '9'), std::string(310, '9'), "-" + std::string(400, '9'),
        std::string(400, '9') + ".5", "0." + std::string(400, '0') + "1", "[1,]", "[,1]", "[1,,2]", "{\"a\":1,}",
        "{,}", "{\"a\"}", "{\"a\":}", "{\"a\" 1}", "{1:1}", "{\"a\":1 \"b\":2}", "[1 2]", "{\"a\":[{\"b\":null}]}",
        "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\a\"", "\"\\x41\"", "\"\\u0041\"", "\"\\u00e9\"", "\"\\u00E9\"", "\"\\u004\"",
        "\"\\u004g\"", "\"\\ud83d\\ude00\"", "\"\\ud83d\"", "\"\\ude00\"", "\"\\ud83d\\u0041\"", "\"\\ud83dx\"",
        "\"\\ud83d\\ud83d\"", "\"\\uDBFF\\uDFFF\"", "\"\\u0000\"", "\"tab\there\"", "\"nl\nhere\"", "\"\x7f\"",
        "\"\xc3\xa9\"", "\"\xc3\"", "\"\xc3\x28\"", "\"\xc0\xaf\"", "\"\xc1\xbf\"", "\"\xe0\x80\xaf\"", "\"\xe0\xa0\x80\"",
        "\"\xed\x9f\xbf\"", "\"\xed\xa0\x80\"", "\"\xef\xbf\xbf\"", "\"\xf0\x8f\xbf\xbf\"", "\"\xf0\x90\x80\x80\"",
        "\"\xf4\x8f\xbf\xbf\"", "\"\xf4\x90\x80\x80\"", "\"\xf5\x80\x80\x80\"", "\"\xff\"", "\"\x80\"", "\"\xe2\x82\"",
        "\xef\xbb\xbf{}", "\xef\xbb{}", "\xef{}", "{}\xef\xbb\xbf", "\xef\xbb\xbf", " \xef\xbb\xbf{}",
        "/* c */ {}", "{} // c", "[1]\n", std::string(10000, '[') + std::string(10000, ']'),
        std::string(10000, '[') + std::string(9999, ']'), "{\"figure\":\"" + std::string(188, 'x') + "\"}",
        // Nesting: 64 levels pass, 65 do not, whatever the containers.
        nested(64), nested(65), nested(63, "{\"a\":", "}", "[]"), nested(64, "{\"a\":", "}", "[]"), nested(64, "[{\"k\":", "}]"),
        nested(32, "[{\"k\":", "}]", "1"), nested(33, "[{\"k\":", "}]", "1"), nested(60000), nested(100000, "[", "]", "0"),
        // Keys: repeated in one object (also when written differently), or only in different objects.
        "{\"a\":1,\"a\":2}", "{\"a\":1,\"b\":2}", "{\"a\":1,\"\\u0061\":2}", "{\"\\u00e9\":1,\"\xc3\xa9\":2}",
        "{\"\\ud83d\\ude00\":1,\"\xf0\x9f\x98\x80\":2}", "{\"\\n\":1,\"\\u000a\":2}", "{\"\\/\":1,\"/\":2}",
        "{\"a\":{\"a\":1}}", "[{\"a\":1},{\"a\":1}]", "{\"a\":{\"b\":1,\"b\":1}}", "{\"a\":[],\"b\":{},\"a\":null}",
        "{\"\":1,\"\":2}", "{\"a\":1,\"A\":2}", "{\"ab\":1,\"a\":2,\"b\":3}", "{\"a\":1,\"a\":2",
    };
    for (const auto& text : cases) EXPECT_EQ(valid_json(text), reference(text)) << "input: " << text.substr(0, 300);
}

// Strings are scanned many bytes at a time: every kind of byte that needs a look, at every place in
// and around such a word, with the error offset the byte-by-byte scan gives.
TEST(JsonCheck, EveryByteOfALongStringIsLookedAt) {
    const std::vector<std::string> specials = {"\"", "\\n", "\\u0041", "\\q", std::string(1, '\0'), "\x01", "\x1f", " ",
                                               "\x7f", "\xc3\xa9", "\xc3", "\xff", "\x80", "\xf0\x9f\x98\x80", "\xed\xa0\x80"};
    for (size_t length = 0; length < 40; ++length)
        for (size_t at = 0; at <= length; ++at)
            for (const auto& special : specials) {
                std::string text = "[\"" + std::string(at, 'a') + special + std::string(length - at, 'b') + "\"]";
                EXPECT_EQ(valid_json(text), reference(text)) << "input: " << text;
                const JsonCheck check = check_json(text);
                if (check.verdict == JsonVerdict::Malformed && special.size() == 1 && static_cast<uint8_t>(special[0]) < 0x20) {
                    EXPECT_EQ(check.offset, 2 + at) << "input: " << text;
                }
            }
}

// Strings are passed over 64 bytes at a time in AVX-512 registers where the CPU has them, else eight at a
// time: plain_run finds the same run both ways, for every kind of byte that needs a look at every place
// of strings up to past three 64-byte pieces (and the end of the buffer, where the 64-byte path loads
// under a mask), and the checker gives the same verdict and offset.
TEST(JsonCheck, BothScansAgree) {
    const std::vector<uint8_t> specials = {'"', '\\', 0x00, 0x01, 0x1f, 0x80, 0xc3, 0xff};
    for (size_t length = 0; length <= 200; ++length)
        for (size_t at = 0; at <= length; ++at)
            for (const uint8_t special : specials) {
                // Exactly `length` bytes on the heap, so that a read past the end is an error under ASan.
                std::vector<uint8_t> bytes(length, 'a');
                if (at < length) bytes[at] = special;
                const size_t expected = at < length ? at : length;
                ASSERT_EQ(plain_run(bytes.data(), bytes.size(), JsonScan::EightBytes), expected) << length << " " << at;
                ASSERT_EQ(plain_run(bytes.data(), bytes.size(), JsonScan::Any), expected) << length << " " << at;
                std::string text = "[\"" + std::string(bytes.begin(), bytes.end()) + "\"]";
                const JsonCheck any = check_json(text, JsonScan::Any), words = check_json(text, JsonScan::EightBytes);
                EXPECT_EQ(any.verdict, words.verdict) << length << " " << at;
                EXPECT_EQ(any.offset, words.offset) << length << " " << at;
            }
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw"))
        GTEST_SKIP() << "no AVX-512 F and BW: the 64-byte scan was not run (both calls took the 8-byte one)";
}

TEST(JsonCheck, SaysWhatIsWrongAndWhere) {
    const JsonCheck deep = check_json(nested(60000));
    EXPECT_EQ(deep.verdict, JsonVerdict::TooDeep);
    EXPECT_EQ(deep.offset, max_json_depth);
    EXPECT_NE(json_problem_text(deep).find("deeper than 64 levels"), std::string::npos) << json_problem_text(deep);
    EXPECT_EQ(check_json(nested(max_json_depth)).verdict, JsonVerdict::Valid);

    const JsonCheck repeated = check_json("{\"a\":1,\"b\":{\"c\":2},\"\\u0061\":3}");
    EXPECT_EQ(repeated.verdict, JsonVerdict::DuplicateKey);
    EXPECT_EQ(repeated.key, "\"\\u0061\"");
    EXPECT_EQ(repeated.offset, 19u);
    EXPECT_NE(json_problem_text(repeated).find("repeats the key \"\\u0061\""), std::string::npos) << json_problem_text(repeated);

    // A large object is checked by sorting its keys; the repeated key is still the one found first.
    std::string large = "{";
    for (int i = 0; i < 5000; ++i) large += "\"k" + std::to_string(i) + "\":0,";
    large += "\"k17\":1,\"k3\":2}";
    const JsonCheck late = check_json(large);
    EXPECT_EQ(late.verdict, JsonVerdict::DuplicateKey);
    EXPECT_EQ(late.key, "\"k17\"");
    large.replace(large.rfind("\"k17\""), 5, "\"x17\"");
    large.replace(large.rfind("\"k3\""), 4, "\"x3\"");
    EXPECT_EQ(check_json(large).verdict, JsonVerdict::Valid);

    EXPECT_EQ(check_json("{\"a\" 1}").verdict, JsonVerdict::Malformed);
    EXPECT_EQ(check_json("{\"a\" 1}").offset, 5u);
}

// Random JSON values, dumped by nlohmann (valid by construction), with escapes and multi-byte text.
nlohmann::json random_value(std::mt19937& random, int depth) {
    static const std::vector<std::string> words = {"a", "é", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\"q\"", "back\\slash", "\n\t", "\x01", ""};
    switch (random() % (depth > 3 ? 5 : 7)) {
        case 0: return nullptr;
        case 1: return random() % 2 == 0;
        case 2: return static_cast<int64_t>(random()) - (1ll << 31);
        case 3: return std::ldexp(static_cast<double>(random()) / 1e3, static_cast<int>(random() % 200) - 100);
        case 4: return words[random() % words.size()] + words[random() % words.size()];
        case 5: {
            nlohmann::json array = nlohmann::json::array();
            for (unsigned i = random() % 4; i > 0; --i) array.push_back(random_value(random, depth + 1));
            return array;
        }
        default: {
            nlohmann::json object = nlohmann::json::object();
            for (unsigned i = random() % 4; i > 0; --i) object[words[random() % words.size()]] = random_value(random, depth + 1);
            return object;
        }
    }
}

TEST(JsonCheck, RandomMutationsAgreeWithNlohmann) {
    std::mt19937 random(20261123);
    // Bytes that matter to the grammar, and some that never may appear (the C API's strings have no NUL).
    const std::string alphabet = "{}[]\",:\\/ \t\n\r0123456789-+.eEtrufalsnbx\x01\x1f\x7f\x80\xbf\xc2\xdf\xe0\xed\xef\xf0\xf4\xf5\xff";
    int accepted = 0;
    for (int i = 0; i < 20000; ++i) {
        std::string text = random_value(random, 0).dump(random() % 2 == 0 ? -1 : 1, ' ', random() % 2 == 0);
        ASSERT_TRUE(valid_json(text)) << text;
        // Some documents sit near the nesting limit, some repeat a key (written as is, or escaped).
        if (random() % 8 == 0) text = nested(max_json_depth - 3 + random() % 6, "[", "]", text);
        if (random() % 8 == 0 && text.size() > 2 && text.front() == '{' && text.find('"') != std::string::npos) {
            const size_t quote = text.find('"');
            const size_t end = text.find('"', quote + 1);
            if (end != std::string::npos) text.insert(1, text.substr(quote, end - quote + 1) + ":0,");
        }
        for (unsigned edits = random() % 4; edits > 0 && !text.empty(); --edits) {
            const size_t at = random() % (text.size() + 1);
            const char c = alphabet[random() % alphabet.size()];
            switch (random() % 3) {
                case 0: text.insert(at, 1, c); break;
                case 1: if (at < text.size()) text.erase(at, 1); break;
                default: if (at < text.size()) text[at] = c; break;
            }
        }
        const bool expected = reference(text);
        accepted += expected ? 1 : 0;
        ASSERT_EQ(valid_json(text), expected) << "input: " << text;
    }
    // Both outcomes were exercised in earnest.
    EXPECT_GT(accepted, 2000);
    EXPECT_LT(accepted, 18000);
}

}  // namespace
}  // namespace grey::audit
