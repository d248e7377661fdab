// SHA-256 and HMAC-SHA256 as the audit log computes them (OpenSSL's block functions, precomputed HMAC
// pads) against RFC 4231's vectors and against OpenSSL's EVP_MAC / EVP digest on random inputs.
#include "audit/crypto.hpp"
#include "audit/sha256_ni.hpp"
#include "audit/sha256_x16.hpp"
#include "core/error.hpp"

#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <random>
#include <string>
#include <vector>

namespace grey::audit {
namespace {

constexpr Lanes all_lanes[] = {Lanes::Any, Lanes::OneAtATime, Lanes::Sixteen, Lanes::ShaNi};
const char* lane_name(Lanes lanes) {
    switch (lanes) {
        case Lanes::Any: return "any";
        case Lanes::OneAtATime: return "one at a time";
        case Lanes::Sixteen: return "16 lanes";
        case Lanes::ShaNi: return "SHA-NI";
    }
    return "?";
}

// HMAC pads a key shorter than the block with zeros, so a shorter RFC key equals its zero-extension.
SecretKey padded_key(const std::vector<uint8_t>& bytes) {
    Hash key{};
    std::copy(bytes.begin(), bytes.end(), key.begin());
    return SecretKey(key);
}

Hash evp_hmac(const SecretKey& key, Bytes message) {
    EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
    char digest[] = "SHA256";
    const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
    Hash out{};
    size_t length = 0;
    EXPECT_EQ(EVP_MAC_init(ctx, key.bytes().data(), key.bytes().size(), params), 1);
    EXPECT_EQ(EVP_MAC_update(ctx, message.data(), message.size()), 1);
    EXPECT_EQ(EVP_MAC_final(ctx, out.data(), &length, out.size()), 1);
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return out;
}

Hash evp_sha256(Bytes message) {
    Hash out{};
    unsigned int length = 0;
    EXPECT_EQ(EVP_Digest(message.data(), message.size(), out.data(), &length, EVP_sha256(), nullptr), 1);
    return out;
}

TEST(AuditCrypto, HmacMatchesRfc4231) {
    struct Case {
        std::vector<uint8_t> key;
        std::string message;
        const char* expected;
    };
    const std::vector<Case> cases = {
        {std::vector<uint8_t>(20, 0x0b), "Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
        {{'J', 'e', 'f', 'e'}, "what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        {std::vector<uint8_t>(20, 0xaa), std::string(50, '\xdd'), "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
        {{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25}, std::string(50, '\xcd'),
         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
    };
    for (const auto& c : cases) {
        const HmacSha256 mac(padded_key(c.key));
        EXPECT_EQ(to_hex(mac.mac(c.message)), c.expected);
        EXPECT_EQ(to_hex(mac.mac(c.message)), c.expected);  // the pads are reusable
    }
}

TEST(AuditCrypto, HmacAndSha256MatchEvpOnRandomInputs) {
    std::mt19937 random(4231);
    Sha256 sha;
    for (int i = 0; i < 300; ++i) {
        Hash key_bytes{};
        for (auto& b : key_bytes) b = static_cast<uint8_t>(random());
        const SecretKey key(key_bytes);
        std::vector<uint8_t> message(static_cast<size_t>(i) * 7 % 1100);  // across block boundaries, and empty
        for (auto& b : message) b = static_cast<uint8_t>(random());
        EXPECT_EQ(HmacSha256(key).mac(message), evp_hmac(key, message)) << "length " << message.size();
        EXPECT_EQ(sha.hash(-1, message), evp_sha256(message));
        std::vector<uint8_t> prefixed{0x01};
        prefixed.insert(prefixed.end(), message.begin(), message.end());
        const size_t split = message.size() / 3;
        EXPECT_EQ(sha.hash(0x01, Bytes(message).first(split), Bytes(message).subspan(split)), evp_sha256(prefixed));
    }
    EXPECT_EQ(to_hex(sha.hash(-1, {})), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

// Hashing a message piece by piece (as a writer seals the first blocks of records ahead of the rest)
// gives the one-shot digests, wherever the pieces split.
TEST(AuditCrypto, PiecewiseHashesMatchOneShot) {
    std::mt19937 random(6962);
    Sha256 sha;
    const HmacSha256 mac(padded_key({7, 7, 7}));
    std::vector<uint8_t> message(300);
    for (auto& b : message) b = static_cast<uint8_t>(random());
    for (size_t split = 0; split <= message.size(); ++split) {
        const Bytes whole(message);
        Sha256State leaf = sha.begin(0x00);
        leaf.update(whole.first(split));
        Sha256State copy = leaf;  // a state may be copied part way
        leaf.update(whole.subspan(split));
        copy.update(whole.subspan(split));
        EXPECT_EQ(leaf.finish(), sha.hash(0x00, whole)) << split;
        EXPECT_EQ(copy.finish(), sha.hash(0x00, whole)) << split;
        Sha256State inner = mac.begin();
        inner.update(whole.first(split));
        inner.update(whole.subspan(split));
        EXPECT_EQ(mac.finish(inner), mac.mac(whole)) << split;
    }
}

// Every message length from 0 to 300 bytes, so that the padding, which libgrey lays out itself for a
// state on a block boundary (one or two final blocks), is checked at every offset against EVP; and the
// states begun in place of an earlier use give the same digests as fresh ones.
TEST(AuditCrypto, EveryShortLengthMatchesEvp) {
    std::mt19937 random(2104);
    Sha256 sha;
    Hash key_bytes{};
    for (auto& b : key_bytes) b = static_cast<uint8_t>(random());
    const SecretKey key(key_bytes);
    const HmacSha256 mac(key);
    std::vector<uint8_t> message(300);
    for (auto& b : message) b = static_cast<uint8_t>(random());
    Sha256State reused = sha.begin(0x01);
    Sha256State reused_inner = mac.begin();
    for (size_t length = 0; length <= message.size(); ++length) {
        const Bytes m = Bytes(message).first(length);
        std::vector<uint8_t> prefixed{0x00};
        prefixed.insert(prefixed.end(), m.begin(), m.end());
        EXPECT_EQ(sha.hash(-1, m), evp_sha256(m)) << length;
        EXPECT_EQ(sha.hash(0x00, m), evp_sha256(prefixed)) << length;
        EXPECT_EQ(mac.mac(m), evp_hmac(key, m)) << length;
        // Whole blocks first (the state then on a block boundary), or an unaligned piece first.
        for (const size_t first : {prefixed.size() / 64 * 64, size_t{1}}) {
            if (first == 0 || first > prefixed.size()) continue;
            sha.begin(0x00, reused);
            reused.update(Bytes(prefixed).subspan(1, first - 1));
            EXPECT_EQ(reused.finish_public(Bytes(prefixed).subspan(first)), evp_sha256(prefixed)) << length << " " << first;
        }
        mac.begin(reused_inner);
        reused_inner.update(m.first(length / 64 * 64));
        reused_inner.update(m.subspan(length / 64 * 64));
        EXPECT_EQ(mac.finish(reused_inner), evp_hmac(key, m)) << length;
    }
}

// Many MACs or Merkle nodes at once (four interleaved on the SHA extensions, or sixteen to an AVX-512
// pass, the rest one at a time) give what one at a time gives, on every path, for every count up to
// past four passes.
TEST(AuditCrypto, ManyAtOnceMatchesOneAtATime) {
    std::mt19937 random(1616);
    Sha256 sha;
    Hash key_bytes{};
    for (auto& b : key_bytes) b = static_cast<uint8_t>(random());
    const HmacSha256 mac(SecretKey{key_bytes});
    for (const Lanes lanes : all_lanes)
        for (size_t count = 0; count <= 70; ++count) {
            std::vector<Hash> messages(2 * count);
            for (auto& m : messages)
                for (auto& b : m) b = static_cast<uint8_t>(random());
            std::vector<Hash> macs(count), parents(count);
            mac.mac_many(std::span(messages).first(count), macs, lanes);
            sha.nodes(messages, parents, lanes);
            for (size_t i = 0; i < count; ++i) {
                EXPECT_EQ(macs[i], evp_hmac(SecretKey{key_bytes}, messages[i])) << lane_name(lanes) << " " << count << " " << i;
                EXPECT_EQ(parents[i], sha.hash(0x01, messages[2 * i], messages[2 * i + 1])) << lane_name(lanes) << " " << count << " " << i;
            }
        }
}

// The multi-message paths the tests above compare are the ones this CPU has; a path it lacks falls back
// to one at a time there, and is reported here as skipped.
TEST(AuditCrypto, MultiMessagePathsOfThisCpu) {
    std::string missing;
    if (!have_sha256_ni()) missing += "no SHA extensions (SHA-NI): the four-stream path was not run; ";
    if (!have_sha256_x16()) missing += "no AVX-512 F and BW: the 16-lane path was not run; ";
    if (!missing.empty()) GTEST_SKIP() << missing;
}

// Leaf states of many messages at once (Sha256::begin_many: four interleaved on the SHA extensions, or
// sixteen to an AVX-512 pass read straight from one buffer) are the states one at a time gives, on every
// path (OneAtATime is the path of a CPU with neither), for every block count a record's leaf prefix takes, messages at
// any offset (the buffer's first byte and last bytes included), and every count up to past four passes:
// finished with any tail, each gives EVP's digest of the whole message.
TEST(AuditCrypto, BeginManyMatchesOneAtATime) {
    std::mt19937 random(2525);
    Sha256 sha;
    std::vector<uint8_t> buffer(4096);
    for (auto& b : buffer) b = static_cast<uint8_t>(random());
    const std::vector<uint8_t> tail = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28,
                                       29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54,
                                       55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80};
    for (const int prefix : {0x00, -1}) {
        for (size_t blocks = 0; blocks <= 6; ++blocks) {
            // Whole blocks, and lengths that are not (those take the one-at-a-time path on every CPU).
            for (const size_t extra : {size_t{0}, size_t{5}}) {
                const size_t length = blocks * 64 + extra - (prefix >= 0 && blocks * 64 + extra > 0 ? 1 : 0);
                for (const size_t count : {size_t{0}, size_t{1}, size_t{3}, size_t{4}, size_t{15}, size_t{16}, size_t{17}, size_t{35}, size_t{70}}) {
                    std::vector<size_t> offsets(count);
                    for (size_t i = 0; i < count; ++i) offsets[i] = random() % (buffer.size() - length + 1);
                    if (count > 1) {
                        offsets[0] = 0;                             // the buffer's first byte
                        offsets[count - 1] = buffer.size() - length;  // ...and its last
                    }
                    std::vector<std::vector<Sha256State>> states;
                    for (const Lanes lanes : all_lanes) {
                        std::vector<Sha256State> s(count);
                        std::vector<Sha256State*> pointers;
                        for (auto& state : s) pointers.push_back(&state);
                        sha.begin_many(prefix, buffer.data(), offsets, length, pointers, lanes);
                        states.push_back(std::move(s));
                    }
                    for (size_t i = 0; i < count; ++i) {
                        std::vector<uint8_t> message;
                        if (prefix >= 0) message.push_back(static_cast<uint8_t>(prefix));
                        message.insert(message.end(), buffer.begin() + static_cast<std::ptrdiff_t>(offsets[i]),
                                       buffer.begin() + static_cast<std::ptrdiff_t>(offsets[i] + length));
                        for (const size_t t : {size_t{0}, size_t{31}, size_t{55}, size_t{56}, size_t{80}}) {
                            std::vector<uint8_t> whole = message;
                            whole.insert(whole.end(), tail.begin(), tail.begin() + static_cast<std::ptrdiff_t>(t));
                            for (size_t path = 0; path < states.size(); ++path) {
                                Sha256State state = states[path][i];
                                EXPECT_EQ(state.finish_public(Bytes(tail).first(t)), evp_sha256(whole))
                                    << lane_name(all_lanes[path]) << " prefix " << prefix << " length " << length << " count " << count << " " << i << " tail " << t;
                            }
                        }
                    }
                }
            }
        }
    }
    std::vector<Sha256State> states(2);
    std::vector<Sha256State*> pointers{&states[0]};
    const std::vector<size_t> two{0, 64};
    EXPECT_THROW(sha.begin_many(0x00, buffer.data(), two, 63, pointers), Error);
}

TEST(AuditCrypto, HashComparisonIsExact) {
    Hash a{};
    for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<uint8_t>(i * 37);
    EXPECT_TRUE(equal_ct(a, Bytes(a)));
    for (size_t i = 0; i < a.size(); ++i)
        for (int bit = 0; bit < 8; ++bit) {
            Hash b = a;
            b[i] ^= static_cast<uint8_t>(1u << bit);
            EXPECT_FALSE(equal_ct(a, Bytes(b))) << i << " " << bit;
        }
    EXPECT_FALSE(equal_ct(a, Bytes(a).first(31)));
}

TEST(AuditCrypto, MovedHmacKeepsItsKey) {
    HmacSha256 a(padded_key({1, 2, 3}));
    const Hash expected = a.mac("m");
    HmacSha256 b(std::move(a));
    EXPECT_EQ(b.mac("m"), expected);
    HmacSha256 c(padded_key({9}));
    c = std::move(b);
    EXPECT_EQ(c.mac("m"), expected);
}

}  // namespace
}  // namespace grey::audit
